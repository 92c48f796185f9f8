#!/usr/bin/env bash
# Install CongoDB, the pure-JS MongoDB wire server the store contract tests
# run against (no mongod exists in Debian): its dependencies from the
# committed package-lock.json (npm ci), then the server itself out of the
# @push.rocks/smartmongo 2.2.0 tarball, checked against the integrity below
# and unpacked into t/mongo/smartmongo/ (its own dependencies are not
# installed: CongoDB needs only the ones in package.json).  Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
integrity="sha512-ovVCNoJ3D0aBuKtoKaQWWQKvBngaGJq9fAPQigzji1EHsS1XyGpXWCpe5nq/ptGvBROOcpqZcOFEGAcrnb+OjA=="
[ -f smartmongo/dist_ts/congodb/index.js ] && [ -d node_modules ] && exit 0
command -v npm >/dev/null || { echo "t/mongo/setup.sh: npm is missing" >&2; exit 1; }
[ -d node_modules ] || npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --loglevel=error @push.rocks/smartmongo@2.2.0 >/dev/null)
got="sha512-$(openssl dgst -sha512 -binary "$tmp"/push.rocks-smartmongo-2.2.0.tgz | base64 -w0)"
if [ "$got" != "$integrity" ]; then
    echo "t/mongo/setup.sh: smartmongo tarball integrity mismatch ($got)" >&2
    exit 1
fi
rm -rf smartmongo.new
mkdir smartmongo.new
tar xzf "$tmp"/push.rocks-smartmongo-2.2.0.tgz -C smartmongo.new --strip-components=1
# resolve bson, mingo, ... from t/mongo/node_modules
rm -rf smartmongo && mv smartmongo.new smartmongo

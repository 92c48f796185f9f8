#!/usr/bin/env bash
# Install the Debian packages the build, run and tests need -- only those
# that are missing, so a machine that has them never runs apt-get.
set -euo pipefail
pkgs=(nginx nginx-dev libjansson-dev libjwt-dev libsqlite3-dev libcrypt-dev
      libuv1-dev libhiredis-dev libcurl4-openssl-dev libssl-dev libcmocka-dev
      redis-server sqlite3 pkg-config gcc make dpkg-dev curl debhelper lintian
      logrotate python3-pytest python3-requests python3-websocket
      python3-hypothesis python3-jsonschema wrk
      libmongoc-dev libbson-dev python3-pymongo
      chromium)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
        || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing missing packages: ${missing[*]}"
    sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        --no-install-recommends "${missing[@]}"
fi

# the end-to-end test's socket.io-client, the OpenAPI 3.1 meta-schema
# (t/openapi), the web UI's build tools and the browser test's
# playwright-core, each from its committed lock file
repo=$(cd "$(dirname "$0")/.." && pwd)
for dir in "$repo/t/e2e" "$repo/t/openapi" "$repo/web" "$repo/t/browser"; do
    if [ -f "$dir/package-lock.json" ] && [ ! -d "$dir/node_modules" ]; then
        if command -v npm >/dev/null; then
            (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        else
            echo "npm is missing: ${dir#$repo/} cannot be installed (its tests are skipped)"
        fi
    fi
done

# CongoDB, the MongoDB-wire server `make integration-mongo` tests against,
# from its committed lock file and a checked tarball (t/mongo/setup.sh)
if command -v npm >/dev/null; then
    "$repo/t/mongo/setup.sh"
else
    echo "npm is missing: make integration-mongo needs TEST_MONGODB_URI"
fi

#!/usr/bin/env bash
# Install the Debian packages the build, run and tests need -- only those
# that are missing, so a machine that has them never runs apt-get.
set -euo pipefail
pkgs=(nginx nginx-dev libjansson-dev libjwt-dev libsqlite3-dev libcrypt-dev
      libuv1-dev libhiredis-dev libcurl4-openssl-dev libssl-dev libcmocka-dev
      redis-server sqlite3 pkg-config gcc make dpkg-dev curl
      python3-pytest python3-requests python3-websocket wrk)
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

# the end-to-end test's socket.io-client, from the committed lock file
e2e=$(cd "$(dirname "$0")/.." && pwd)/t/e2e
if [ -f "$e2e/package-lock.json" ] && [ ! -d "$e2e/node_modules" ]; then
    if command -v npm >/dev/null; then
        (cd "$e2e" && npm ci --no-audit --no-fund --loglevel=error)
    else
        echo "npm is missing: the socket.io-client end-to-end test will be skipped"
    fi
fi

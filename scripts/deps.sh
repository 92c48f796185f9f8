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
((${#missing[@]})) || exit 0
echo "installing missing packages: ${missing[*]}"
sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"

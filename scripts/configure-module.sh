#!/usr/bin/env bash
# Configure the dynamic module exactly as Debian's dh_nginx does, with the
# flags the packaged nginx was built with (so the stock binary loads it).
# Usage: configure-module.sh <repo> <builddir>
# EXTRA_CC_OPT / EXTRA_LD_OPT add flags (e.g. -fsanitize=address for an
# ASan build of the module, loaded with LD_PRELOAD=libasan.so).
set -euo pipefail
repo=$1 build=$2
src=/usr/share/nginx/src
[ -f "$src/conf_flags" ] || { echo "nginx-dev is missing: run make deps" >&2; exit 1; }
mkdir -p "$build"
cd "$src"
. ./conf_flags
echo "configuring ngx_http_ticket_module in $build"
./configure \
    --with-cc-opt="$(dpkg-buildflags --get CFLAGS) -fPIC $(dpkg-buildflags --get CPPFLAGS) ${EXTRA_CC_OPT:-}" \
    --with-ld-opt="$(dpkg-buildflags --get LDFLAGS) -fPIC ${EXTRA_LD_OPT:-}" \
    "${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$repo" --builddir="$build" \
    > "$build/configure.log" 2>&1 || { tail -20 "$build/configure.log" >&2; exit 1; }

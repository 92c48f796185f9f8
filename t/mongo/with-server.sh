#!/usr/bin/env bash
# Run a command with TEST_MONGODB_URI pointing at a MongoDB-wire server:
# the one already in TEST_MONGODB_URI, else a CongoDB started here on a
# free port (t/mongo/congo.js) and stopped afterwards.
#   t/mongo/with-server.sh COMMAND [ARGS...]
set -euo pipefail
if [ -n "${TEST_MONGODB_URI:-}" ]; then
    exec "$@"
fi
here=$(cd "$(dirname "$0")" && pwd)
"$here/setup.sh"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp /tmp/congodb.XXXXXX)
node "$here/congo.js" "$port" >"$log" 2>&1 &
congo=$!
trap 'kill "$congo" 2>/dev/null || true; wait "$congo" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 200); do
    grep -q "^listening" "$log" && break
    kill -0 "$congo" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.05
done
TEST_MONGODB_URI="mongodb://127.0.0.1:$port" "$@"

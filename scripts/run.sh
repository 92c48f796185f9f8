#!/usr/bin/env bash
# `make run`: nginx (2 workers, private prefix var/nginx) + ticketd in the
# foreground on 127.0.0.1:$PORT with the SQLite store var/tickets.db, or
# the MongoDB database of STORE=mongodb://host:port/database.
# Ctrl-C (SIGINT) or SIGTERM stops both.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
port=${PORT:-8080}
var=$repo/var
prefix=$var/nginx
mkdir -p "$prefix/logs" "$prefix/tmp"
# the outbox holds users' mail: not for other local users (as ticketd
# itself would create it)
mkdir -p -m 750 "$var/outbox"

if [ ! -s "$var/jwt.secret" ]; then
    umask 077
    head -c 48 /dev/urandom | base64 | tr -d '\n' > "$var/jwt.secret"
    umask 022
    echo "created a random JWT secret in var/jwt.secret"
fi

# the web UI served at / (web/dist), rebuilt when missing or stale
if ! make --no-print-directory -s web; then
    echo "warning: the web UI could not be built (node and npm needed); the API runs without it" >&2
fi

# STORE=mongodb://host:port/database selects the MongoDB backend; the
# default is the SQLite file var/tickets.db (STORE=sqlite:/path for another)
store=${STORE:-$var/tickets.db}
case $store in
    mongodb://*|mongodb+srv://*) store_uri=$store ;;
    sqlite:*) store=${store#sqlite:}; store_uri=sqlite:$store ;;
    *) store_uri=sqlite:$store ;;
esac

scripts/nginx-conf.sh "$prefix" "$port" "$store" "$var/jwt.secret" \
    "$var/ticketd.sock" > "$prefix/nginx.conf"
/usr/sbin/nginx -t -q -p "$prefix" -c "$prefix/nginx.conf"

pids=()
stop() {
    trap - INT TERM EXIT
    echo; echo "stopping nginx and ticketd"
    kill -QUIT "$(cat "$prefix/nginx.pid" 2>/dev/null)" 2>/dev/null || true
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop INT TERM EXIT

# AI triage: Gemini or an OpenAI-compatible API when a key is in the
# environment (TRIAGE_PROVIDER, AI_URL, AI_MODEL override), else offline
provider=${TRIAGE_PROVIDER:-}
if [ -z "$provider" ]; then
    if [ -n "${GEMINI_API_KEY:-}" ]; then provider=gemini
    elif [ -n "${OPENAI_API_KEY:-}" ]; then provider=openai
    else provider=offline; fi
fi
ai_args=(--triage-provider "$provider")
[ -n "${AI_URL:-}" ] && ai_args+=(--ai-url "$AI_URL")
[ -n "${AI_MODEL:-}" ] && ai_args+=(--ai-model "$AI_MODEL")

# REDIS=redis://host:port/db: nginx caches list pages there and ticketd
# bridges events to other hosts through it (optional); both sign what they
# put there with keys derived from var/jwt.secret.  A Redis password goes
# in a file, REDIS_PASSWORD_FILE (never on a command line, where every
# local user can read it).
redis_args=()
if [ -n "${REDIS:-}" ]; then
    redis_args=(--redis "$REDIS")
    [ -n "${REDIS_PASSWORD_FILE:-}" ] && \
        redis_args+=(--redis-password-file "$REDIS_PASSWORD_FILE")
fi

build/ticketd --socket "$var/ticketd.sock" --store "$store_uri" \
    --jwt-secret-file "$var/jwt.secret" \
    --outbox "$var/outbox" "${ai_args[@]}" "${redis_args[@]}" \
    --log "$var/ticketd.log" &
pids+=($!)
/usr/sbin/nginx -p "$prefix" -c "$prefix/nginx.conf" -g 'daemon off;' &
pids+=($!)

up=0
for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/api/health" >/dev/null 2>&1; then
        up=1
        break
    fi
    sleep 0.1
done
if [ "$up" != 1 ]; then
    echo "the API did not come up on port $port; last lines of the logs:" >&2
    tail -n 20 "$prefix/logs/error.log" "$var/ticketd.log" >&2 || true
    exit 1
fi
echo "ticket assistant is running at http://127.0.0.1:$port/  (API: http://127.0.0.1:$port/api/health)"
echo "logs: var/nginx/logs/error.log, var/ticketd.log -- press Ctrl-C to stop"
wait -n "${pids[@]}" || true

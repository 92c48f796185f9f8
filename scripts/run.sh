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
    sqlite:*) store=${store#sqlite:} ;;
esac

# ticketd's settings go into the same nginx.conf (ticketd -c reads it):
# MAIL_FROM, MAIL_REPLY_TO, PUBLIC_URL (links in mail; default this
# address), TRIAGE_PROVIDER, AI_URL, AI_MODEL, ASSIGN_WEIGHTS, ... (the
# list in scripts/nginx-conf.sh).  Keys from the environment are written
# to files under var/ readable by this user only: nginx.conf names the
# files, never the keys.
export PUBLIC_URL=${PUBLIC_URL:-http://127.0.0.1:$port}
export OUTBOX=${OUTBOX:-$var/outbox}
export DAEMON_LOG=${DAEMON_LOG:-$var/ticketd.log}
secret_to_file() {     # $1 the key, $2 the file; prints the file
    (umask 077; printf '%s' "$1" > "$2")
    chmod 600 "$2"
    printf '%s' "$2"
}
provider=${TRIAGE_PROVIDER:-}
if [ -z "$provider" ]; then
    if [ -n "${GEMINI_API_KEY:-}" ]; then provider=gemini
    elif [ -n "${OPENAI_API_KEY:-}" ]; then provider=openai
    else provider=offline; fi
fi
export TRIAGE_PROVIDER=$provider
if [ "$provider" = gemini ] && [ -n "${GEMINI_API_KEY:-}" ]; then
    export AI_KEY_FILE=$(secret_to_file "$GEMINI_API_KEY" "$var/ai.key")
elif [ "$provider" = openai ] && [ -n "${OPENAI_API_KEY:-}" ]; then
    export AI_KEY_FILE=$(secret_to_file "$OPENAI_API_KEY" "$var/ai.key")
fi
if [ -n "${SENDGRID_API_KEY:-}" ]; then
    export SENDGRID_KEY_FILE=$(secret_to_file "$SENDGRID_API_KEY" \
                                              "$var/sendgrid.key")
fi
if [ -n "${SMTP_PASSWORD:-}" ]; then
    export SMTP_PASSWORD_FILE=$(secret_to_file "$SMTP_PASSWORD" \
                                               "$var/smtp.password")
fi
# REDIS=redis://host:port/db: nginx caches list pages there and ticketd
# bridges events to other hosts through it (optional); both sign what they
# put there with keys derived from var/jwt.secret.  A Redis password goes
# in a file, REDIS_PASSWORD_FILE (never in nginx.conf or on a command
# line).  Both are read by nginx-conf.sh.

scripts/nginx-conf.sh "$prefix" "$port" "$store" "$var/jwt.secret" \
    "$var/ticketd.sock" > "$prefix/nginx.conf"
/usr/sbin/nginx -t -q -p "$prefix" -c "$prefix/nginx.conf"
build/ticketd -t -c "$prefix/nginx.conf" >/dev/null

pids=()
stop() {
    trap - INT TERM EXIT
    echo; echo "stopping nginx and ticketd"
    kill -QUIT "$(cat "$prefix/nginx.pid" 2>/dev/null)" 2>/dev/null || true
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop INT TERM EXIT

# the one configuration: the same file nginx reads
build/ticketd -c "$prefix/nginx.conf" &
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

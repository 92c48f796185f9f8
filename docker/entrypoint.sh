#!/bin/sh
# Start ticketd and nginx in one container; stop both when either exits
# or on SIGTERM.  The store, Redis and secret come from the environment
# (see docker/Dockerfile), so one image is every node of the topology.
# Everything goes into nginx.conf (its conf.d/ticket.conf), and ticketd
# reads the same file: ticketd -c /etc/nginx/nginx.conf.
set -eu

store=${TICKET_STORE:-sqlite:/var/lib/ticket/tickets.db}
redis=${TICKET_REDIS:-}
secret=/etc/ticket/jwt.secret

# the packaged ticket.conf, with this node's store and cache
conf_in=${TICKET_CONF_IN:-/etc/ticket/ticket.conf.in}
conf=${TICKET_CONF:-/etc/nginx/conf.d/ticket.conf}
sed -e "s#^ticket_store .*#ticket_store            $store;#" "$conf_in" > "$conf"
if [ -n "$redis" ]; then
    printf 'ticket_redis            %s;\n' "$redis" >> "$conf"
fi
# a Redis password only ever in a file (TICKET_REDIS_PASSWORD_FILE)
redis_pw=/etc/ticket/redis.password
if [ -n "$redis" ] && [ -n "${TICKET_REDIS_PASSWORD_FILE:-}" ]; then
    printf 'ticket_redis_password_file %s;\n' "$redis_pw" >> "$conf"
fi

# ticketd's settings from the environment, each written only when set:
# MAIL_FROM, MAIL_REPLY_TO, PUBLIC_URL, TRIAGE_PROVIDER, AI_URL, AI_MODEL,
# MAIL_TRANSPORT, SMTP_URL, SMTP_USER, ASSIGN_WEIGHTS (README: the
# ticket_* directive of each)
directive() {      # $1 name, $2 value: one quoted word
    [ -n "$2" ] || return 0
    printf '%s "%s";\n' "$1" "$(printf '%s' "$2" | sed 's/[\\"]/\\&/g')" \
        >> "$conf"
}
printf 'ticket_outbox           /var/lib/ticket/outbox;\n' >> "$conf"
directive ticket_mail_from "${MAIL_FROM:-}"
directive ticket_mail_reply_to "${MAIL_REPLY_TO:-}"
directive ticket_public_url "${PUBLIC_URL:-}"
directive ticket_ai_provider "${TRIAGE_PROVIDER:-}"
directive ticket_ai_url "${AI_URL:-}"
directive ticket_ai_model "${AI_MODEL:-}"
directive ticket_mail_transport "${MAIL_TRANSPORT:-}"
directive ticket_smtp_url "${SMTP_URL:-}"
directive ticket_smtp_user "${SMTP_USER:-}"
[ -n "${ASSIGN_WEIGHTS:-}" ] && \
    printf 'ticket_assign_weights %s;\n' "$ASSIGN_WEIGHTS" >> "$conf"
# keys only ever in files readable by ticketd (www-data) alone
key_file() {       # $1 directive, $2 key, $3 file
    [ -n "$2" ] || return 0
    (umask 077; printf '%s' "$2" > "$3")
    chown www-data "$3" 2>/dev/null || true
    printf '%s %s;\n' "$1" "$3" >> "$conf"
}
ai_key=${GEMINI_API_KEY:-${OPENAI_API_KEY:-}}
[ -z "${ENTRYPOINT_RENDER_ONLY:-}" ] && {
    key_file ticket_ai_key_file "$ai_key" /etc/ticket/ai.key
    key_file ticket_sendgrid_key_file "${SENDGRID_API_KEY:-}" \
        /etc/ticket/sendgrid.key
    key_file ticket_smtp_password_file "${SMTP_PASSWORD:-}" \
        /etc/ticket/smtp.password
}
# (the tests render the configuration only, and check it with nginx -t)
[ -n "${ENTRYPOINT_RENDER_ONLY:-}" ] && exit 0

# every node must sign and check tokens with the same key
if [ -n "${JWT_SECRET_FILE:-}" ]; then
    cp "$JWT_SECRET_FILE" "$secret"
elif [ -n "${JWT_SECRET:-}" ]; then
    printf '%s' "$JWT_SECRET" > "$secret"
elif [ ! -s "$secret" ]; then
    echo "entrypoint: no JWT_SECRET given; a random one only suits a single node" >&2
    head -c 48 /dev/urandom | base64 | tr -d '\n' > "$secret"
fi
chgrp www-data "$secret"
chmod 640 "$secret"
if [ -n "$redis" ] && [ -n "${TICKET_REDIS_PASSWORD_FILE:-}" ]; then
    cp "$TICKET_REDIS_PASSWORD_FILE" "$redis_pw"
    chgrp www-data "$redis_pw"
    chmod 640 "$redis_pw"
fi
nginx -t -q
# ticketd reads what nginx reads; the log goes to the container's stderr
ticketd -t -c /etc/nginx/nginx.conf >/dev/null
set -- -c /etc/nginx/nginx.conf --log /dev/stderr

# ticketd runs as the worker user (the SQLite file and the socket are its)
su -s /bin/sh www-data -c 'exec "$0" "$@"' -- /usr/local/bin/ticketd "$@" &
daemon=$!
nginx -g 'daemon off;' &
web=$!
trap 'kill -TERM $daemon 2>/dev/null; kill -QUIT $web 2>/dev/null' TERM INT
wait $web || true
kill -TERM $daemon 2>/dev/null || true
wait

#!/bin/sh
# Start ticketd and nginx in one container; stop both when either exits
# or on SIGTERM.  The store, Redis and secret come from the environment
# (see docker/Dockerfile), so one image is every node of the topology.
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

# the bridge and cache keys derive from the JWT secret (README: the wire)
set -- --socket /run/ticket/ticketd.sock --store "$store" \
       --jwt-secret-file "$secret" \
       --outbox /var/lib/ticket/outbox --log /dev/stderr
[ -n "$redis" ] && set -- "$@" --redis "$redis"
[ -n "$redis" ] && [ -n "${TICKET_REDIS_PASSWORD_FILE:-}" ] && \
    set -- "$@" --redis-password-file "$redis_pw"
[ -n "${TRIAGE_PROVIDER:-}" ] && set -- "$@" --triage-provider "$TRIAGE_PROVIDER"

# ticketd runs as the worker user (the SQLite file and the socket are its)
su -s /bin/sh www-data -c 'exec "$0" "$@"' -- /usr/local/bin/ticketd "$@" &
daemon=$!
nginx -g 'daemon off;' &
web=$!
trap 'kill -TERM $daemon 2>/dev/null; kill -QUIT $web 2>/dev/null' TERM INT
wait $web || true
kill -TERM $daemon 2>/dev/null || true
wait

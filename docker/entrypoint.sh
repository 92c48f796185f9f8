#!/bin/sh
# Start ticketd and nginx; stop both when either exits or on SIGTERM.
set -eu
secret=/etc/ticket/jwt.secret
if [ ! -s "$secret" ]; then
    if [ -n "${JWT_SECRET:-}" ]; then
        printf '%s' "$JWT_SECRET" > "$secret"
    else
        head -c 48 /dev/urandom | base64 | tr -d '\n' > "$secret"
    fi
    chgrp www-data "$secret"; chmod 640 "$secret"
fi
su -s /bin/sh www-data -c "ticketd --socket /run/ticket/ticketd.sock \
    --store sqlite:/var/lib/ticket/tickets.db" &
daemon=$!
nginx -g 'daemon off;' &
web=$!
trap 'kill -TERM $daemon; kill -QUIT $web' TERM INT
wait $web
kill -TERM $daemon 2>/dev/null || true
wait

#!/usr/bin/env bash
# The install test of the Debian packages (make test-deb; needs root).
#
#   t/pkg/test_install.sh DIR      (DIR holds the .debs make deb built)
#
# As a sysadmin would: dpkg -i both packages (apt-get install -f for any
# missing dependency), check what they put where (files, modes, owners,
# the module enabled in /etc/nginx/modules-enabled, the unit and the site
# present but not enabled), then run the SYSTEM nginx (/usr/sbin/nginx) on
# a test nginx.conf that includes /etc/nginx/modules-enabled/*.conf and the
# shipped site with only its listen and access_log changed (a private
# port, private pid, logs and temp paths), and the unit's own ExecStartPre
# and ExecStart (ticketd -t -c / -c on that nginx.conf) as www-data -- no
# systemd in CI containers, so as the unit would: /run/ticket made, the
# working directory /var/lib/ticket, umask 0027.  t/pkg/smoke.py drives
# the API (signup, login, a ticket triaged and assigned by ticketd offline,
# comments, the web UI) and both processes are reloaded; then everything
# is stopped and both packages purged, and the test checks what is left.
#
# It refuses to run when either package is installed or their paths exist
# already (it would purge someone's installation), and it leaves nginx
# installed.  On any failure the cleanup still stops what it started and
# purges the packages.
set -euo pipefail

debs=${1:?usage: test_install.sh DIR-WITH-THE-DEBS}
here=$(cd "$(dirname "$0")" && pwd)
mod_deb=$(ls "$debs"/libnginx-mod-http-ticket_*.deb 2>/dev/null | head -1)
tkd_deb=$(ls "$debs"/ticketd_*.deb 2>/dev/null | head -1)
[ -n "$mod_deb" ] && [ -n "$tkd_deb" ] || { echo "no .debs in $debs (make deb)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "the install test needs root (dpkg -i)" >&2; exit 1; }

fails=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
known() { dpkg-query -W -f='${Status}' "$1" >/dev/null 2>&1 && ! dpkg-query -W -f='${Status}' "$1" | grep -q 'not-installed'; }
stat_is() { [ "$(stat -c '%a %U:%G' "$1" 2>/dev/null)" = "$2" ] || { echo "     $1 is $(stat -c '%a %U:%G' "$1" 2>&1), wanted $2"; return 1; }; }

# make test runs this with SKIP_WHEN_INSTALLED=1: on a machine where the
# packages are in use the test is skipped, saying why, instead of failing
refuse() {
    if [ -n "${SKIP_WHEN_INSTALLED:-}" ]; then
        echo "SKIPPED the install test of the Debian packages: $*"
        exit 0
    fi
    echo "$*" >&2
    exit 1
}
for p in libnginx-mod-http-ticket ticketd; do
    if known "$p"; then
        refuse "$p is installed (or not purged) on this machine: not touching it"
    fi
done
for d in /etc/ticket /var/lib/ticket /var/log/ticket /run/ticket; do
    [ ! -e "$d" ] || refuse "$d exists already: not touching it"
done
installed nginx || { echo "the system nginx is not installed (make deps)" >&2; exit 1; }

T=$(mktemp -d /tmp/ticket-pkg.XXXXXX)
chmod 0755 "$T"
nginx_started= ticketd_pid= purged=

cleanup() {
    set +e
    if [ -n "$ticketd_pid" ] && kill -0 "$ticketd_pid" 2>/dev/null; then
        kill -TERM "$ticketd_pid"; wait "$ticketd_pid" 2>/dev/null
    fi
    if [ -n "$nginx_started" ] && [ -f "$T/nginx.pid" ]; then
        /usr/sbin/nginx -c "$T/nginx.conf" -s stop 2>/dev/null
        for _ in $(seq 50); do [ -f "$T/nginx.pid" ] || break; sleep 0.1; done
    fi
    if [ -z "$purged" ]; then
        dpkg --purge ticketd libnginx-mod-http-ticket >/dev/null 2>&1
    fi
    # what the test itself made: the store (kept by the purge on purpose)
    # and the runtime directory the unit would have had from systemd
    rm -rf /var/lib/ticket /run/ticket
    rm -rf "$T"
}
trap cleanup EXIT

echo "== dpkg -i"
if ! dpkg -i "$mod_deb" "$tkd_deb"; then
    echo "dpkg -i left dependencies to install: apt-get install -f"
    DEBIAN_FRONTEND=noninteractive apt-get install -f -y -qq --no-install-recommends
fi
check "both packages installed" installed libnginx-mod-http-ticket
check "ticketd installed" installed ticketd

echo "== files"
abi=$(dpkg-query -W -f='${Provides}' nginx | tr ',' '\n' | grep -o 'nginx-abi-[^ ]*' | head -1)
check "the module depends on the installed nginx's ABI ($abi)" \
    sh -c "dpkg-query -W -f='\${Depends}' libnginx-mod-http-ticket | grep -qw -- '$abi'"
check "module in /usr/lib/nginx/modules" test -f /usr/lib/nginx/modules/ngx_http_ticket_module.so
check "module conf in modules-available" \
    grep -q '^load_module modules/ngx_http_ticket_module.so;' /usr/share/nginx/modules-available/mod-http-ticket.conf
check "module enabled (50-mod-http-ticket.conf link)" \
    test "$(readlink /etc/nginx/modules-enabled/50-mod-http-ticket.conf)" = /usr/share/nginx/modules-available/mod-http-ticket.conf
check "ticketd in /usr/sbin" test -x /usr/sbin/ticketd
check "ticketd(8)" test -f /usr/share/man/man8/ticketd.8.gz
check "unit file" test -f /lib/systemd/system/ticketd.service
check "unit not enabled" test ! -e /etc/systemd/system/multi-user.target.wants/ticketd.service
check "example site in sites-available" test -f /etc/nginx/sites-available/ticket
check "example site not enabled" test ! -e /etc/nginx/sites-enabled/ticket
check "web UI" test -f /usr/share/ticket/web/index.html
check "logrotate file" test -f /etc/logrotate.d/ticketd
check "README.Debian" test -f /usr/share/doc/ticketd/README.Debian
check "/etc/ticket 750 root:www-data" stat_is /etc/ticket "750 root:www-data"
check "jwt.secret 640 root:www-data" stat_is /etc/ticket/jwt.secret "640 root:www-data"
check "jwt.secret holds at least 32 bytes" test "$(tr -d '\n' < /etc/ticket/jwt.secret | wc -c)" -ge 32
check "/var/lib/ticket 750 www-data" stat_is /var/lib/ticket "750 www-data:www-data"
check "/var/log/ticket 750 www-data" stat_is /var/log/ticket "750 www-data:www-data"
if command -v systemd-analyze >/dev/null; then
    # offline: the unit's syntax, its directives, the binaries it names
    out=$(systemd-analyze verify /lib/systemd/system/ticketd.service 2>&1) \
        && pass "systemd-analyze verify ticketd.service" \
        || { fail "systemd-analyze verify ticketd.service"; echo "$out"; }
fi
if command -v logrotate >/dev/null; then
    out=$(logrotate -d /etc/logrotate.d/ticketd 2>&1) \
        && pass "logrotate -d /etc/logrotate.d/ticketd" \
        || { fail "logrotate -d /etc/logrotate.d/ticketd"; echo "$out"; }
else
    echo "skip logrotate -d (logrotate is not installed; ticketd only recommends it)"
fi

echo "== the system nginx with the shipped site on a private port"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/tmp"
# the shipped site, with only where it listens and logs changed
sed -e "s|^\([[:space:]]*\)listen[[:space:]].*;|\1listen 127.0.0.1:$port;|" \
    -e "s|/var/log/nginx/ticket.access.log|$T/access.log|" \
    /etc/nginx/sites-available/ticket > "$T/site.conf"
check "the site copy changed only listen and access_log" \
    test "$(diff /etc/nginx/sites-available/ticket "$T/site.conf" | grep -c '^>')" = 2
cat > "$T/nginx.conf" <<CONF
# the install test's nginx.conf: Debian's layout, private paths
user www-data;
worker_processes 2;
pid $T/nginx.pid;
error_log $T/error.log info;
include /etc/nginx/modules-enabled/*.conf;
events { worker_connections 512; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path $T/tmp/body;
    proxy_temp_path $T/tmp/proxy;
    fastcgi_temp_path $T/tmp/fastcgi;
    uwsgi_temp_path $T/tmp/uwsgi;
    scgi_temp_path $T/tmp/scgi;
    access_log $T/access.log;
    # ticketd's log where the package's logrotate file looks for it
    ticket_daemon_log /var/log/ticket/ticketd.log;
    include $T/site.conf;
}
CONF
chmod 0644 "$T/nginx.conf" "$T/site.conf"

/usr/sbin/nginx -t -q -c "$T/nginx.conf" -g "error_log $T/error.log;" \
    && pass "nginx -t" || { fail "nginx -t"; exit 1; }

# the unit's commands, with the test's nginx.conf for /etc/nginx/nginx.conf
unit=/lib/systemd/system/ticketd.service
pre=$(sed -n 's/^ExecStartPre=//p' "$unit" | sed "s|/etc/nginx/nginx.conf|$T/nginx.conf|")
start=$(sed -n 's/^ExecStart=//p' "$unit" | sed "s|/etc/nginx/nginx.conf|$T/nginx.conf|")
as_unit() {
    # User=www-data, Group=www-data, UMask=0027, WorkingDirectory
    (cd /var/lib/ticket && umask 0027 && exec setpriv --reuid=www-data \
        --regid=www-data --init-groups --no-new-privs "$@")
}
install -d -o www-data -g www-data -m 0750 /run/ticket   # RuntimeDirectory=ticket
# shellcheck disable=SC2086
if as_unit $pre > "$T/ticketd-t.out" 2>&1; then
    pass "ExecStartPre: $pre"
else
    fail "ExecStartPre: $pre"; cat "$T/ticketd-t.out"; exit 1
fi
check "ticketd -t does not print the secret" \
    sh -c "! grep -qF \"\$(tr -d '\n' < /etc/ticket/jwt.secret)\" '$T/ticketd-t.out'"

/usr/sbin/nginx -c "$T/nginx.conf" && nginx_started=1
# the subshell execs setpriv which execs ticketd: $! is ticketd itself
# shellcheck disable=SC2086
(cd /var/lib/ticket && umask 0027 && exec setpriv --reuid=www-data \
    --regid=www-data --init-groups --no-new-privs $start) 2> "$T/ticketd.log" &
ticketd_pid=$!
echo "ExecStart: $start (pid $ticketd_pid)"

echo "== API smoke test"
if ! /usr/bin/python3 "$here/smoke.py" "http://127.0.0.1:$port" \
        --ticketd-pid "$ticketd_pid" --nginx-conf "$T/nginx.conf"; then
    fail "API smoke test"
    echo "--- nginx error.log"; tail -30 "$T/error.log"
    echo "--- ticketd"; tail -30 "$T/ticketd.log" /var/log/ticket/ticketd.log
else
    pass "API smoke test"
fi
check "the store is www-data's, 640" stat_is /var/lib/ticket/tickets.db "640 www-data:www-data"
check "mail went to the outbox in /var/lib/ticket" \
    sh -c "ls /var/lib/ticket/outbox/*.eml >/dev/null 2>&1"
check "everything in /var/lib/ticket is www-data's" \
    test -z "$(find /var/lib/ticket ! -user www-data)"

# the README's online backup, while both run
if command -v sqlite3 >/dev/null; then
    install -d -o www-data -g www-data -m 0750 "$T/backup"
    check "online backup as www-data (sqlite3 .backup)" \
        runuser -u www-data -- sqlite3 /var/lib/ticket/tickets.db ".backup $T/backup/tickets.db"
    check "the backup passes integrity_check" \
        test "$(sqlite3 "$T/backup/tickets.db" 'PRAGMA integrity_check')" = ok
    check "the backup holds the ticket and its two comments" \
        test "$(sqlite3 "$T/backup/tickets.db" 'SELECT (SELECT count(*) FROM tickets), (SELECT count(*) FROM comments)')" = "1|2"
else
    echo "skip the backup (no sqlite3 command)"
fi
echo "== the upgrade path: dpkg -i again over the running system"
secret_before=$(md5sum < /etc/ticket/jwt.secret)
if dpkg -i "$mod_deb" "$tkd_deb" > "$T/upgrade.out" 2>&1; then
    pass "dpkg -i over the installed packages"
else
    fail "dpkg -i over the installed packages"; cat "$T/upgrade.out"
fi
check "the secret survived the upgrade" test "$(md5sum < /etc/ticket/jwt.secret)" = "$secret_before"
check "the module is still enabled" test -L /etc/nginx/modules-enabled/50-mod-http-ticket.conf
check "the site is still not enabled" test ! -e /etc/nginx/sites-enabled/ticket
check "the API still answers with ticketd linked" \
    sh -c "curl -sf http://127.0.0.1:$port/api/health | grep -q '\"daemon\":\"connected\"'"
# running, not a zombie nobody reaped yet (kill -0 succeeds on one)
alive() { [ -r "/proc/$1/stat" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat")" != Z ]; }
check "ticketd still running" alive "$ticketd_pid"
check "ticketd logs to /var/log/ticket/ticketd.log (www-data, 640)" \
    stat_is /var/log/ticket/ticketd.log "640 www-data:www-data"
check "ticketd reopened its log on SIGHUP" grep -q "log reopened" /var/log/ticket/ticketd.log

# a rotation by the shipped logrotate file; its postrotate is "systemctl
# reload ticketd" (= SIGHUP) when systemd runs, so here the test sends it
if command -v logrotate >/dev/null; then
    check "logrotate -f rotates ticketd.log" \
        logrotate -f -s "$T/logrotate.state" /etc/logrotate.d/ticketd
    check "the rotated log is ticketd.log.1" test -s /var/log/ticket/ticketd.log.1
    kill -HUP "$ticketd_pid"
    for _ in $(seq 100); do
        grep -q "log reopened" /var/log/ticket/ticketd.log 2>/dev/null && break
        sleep 0.1
    done
    check "after SIGHUP ticketd writes the new ticketd.log" \
        grep -q "log reopened" /var/log/ticket/ticketd.log
fi

echo "== stop and purge"
kill -TERM "$ticketd_pid" || true
wait "$ticketd_pid" && pass "ticketd stopped cleanly on SIGTERM" || fail "ticketd exit status on SIGTERM"
ticketd_pid=
/usr/sbin/nginx -c "$T/nginx.conf" -s quit
for _ in $(seq 100); do [ -f "$T/nginx.pid" ] || break; sleep 0.1; done
check "nginx stopped" test ! -f "$T/nginx.pid"
nginx_started=
rm -rf /run/ticket

dpkg --purge ticketd libnginx-mod-http-ticket 2> "$T/purge.err" && purged=1
cat "$T/purge.err"
check "both purged" sh -c "! dpkg-query -W -f='\${Status}\\n' libnginx-mod-http-ticket ticketd 2>/dev/null | grep -qv not-installed"
check "the purge said it kept the store" grep -q "kept /var/lib/ticket" "$T/purge.err"
for f in /usr/sbin/ticketd /usr/lib/nginx/modules/ngx_http_ticket_module.so \
         /usr/share/nginx/modules-available/mod-http-ticket.conf \
         /etc/nginx/modules-enabled/50-mod-http-ticket.conf \
         /etc/nginx/modules-enabled/50-mod-http-ticket.conf.removed \
         /etc/nginx/sites-available/ticket /etc/logrotate.d/ticketd \
         /lib/systemd/system/ticketd.service /usr/share/ticket \
         /etc/ticket /var/log/ticket; do
    check "gone: $f" test ! -e "$f" -a ! -L "$f"
done
check "kept: /var/lib/ticket/tickets.db (the site's data)" test -f /var/lib/ticket/tickets.db
check "nginx still installed" installed nginx

if [ "$fails" -gt 0 ]; then
    echo "install test: $fails check(s) failed"
    exit 1
fi
echo "install test: all checks passed"

#!/bin/bash
# Builds and runs t/unit/http_client_selftest.c against local servers it
# starts here: a threaded HTTP/1.1 server (answers after a delay, never
# answers, sends big bodies, echoes requests, redirects, counts its
# connections) and a small SMTP sink (refuses chosen recipients and
# messages, checks AUTH PLAIN, stores what it accepts).
#
#   t/unit/http_client_selftest.sh              build and run
#   t/unit/http_client_selftest.sh --valgrind   run under valgrind (leaks
#                                               and errors exit 9)
#
# Not part of `make unit`: it needs libcurl and daemon/ sources.

set -euo pipefail

cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BIN=$BUILD/http_client_selftest
CC=${CC:-gcc}
CFLAGS="-std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow \
-Wpointer-arith -Wformat=2 -Werror=format-security -g -O2 \
-DHTTP_CLIENT_SELFTEST"

VALGRIND=()
if [ "${1:-}" = "--valgrind" ]; then
    VALGRIND=(valgrind --leak-check=full --error-exitcode=9 -q)
fi

TMP=$(mktemp -d)
PIDS=()
# shellcheck disable=SC2317  # runs from the EXIT trap
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

# --- the HTTP server -------------------------------------------------------
cat > "$TMP/http_server.py" <<'PY'
import http.server, sys, threading, time, urllib.parse

lock = threading.Lock()
connections = 0

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024          # 100 connects at once, no SYN drops

    def handle_error(self, request, client_address):
        pass                           # clients that give up are expected

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"      # keep-alive, so reuse can be seen

    def setup(self):
        global connections
        with lock:
            connections += 1
        super().setup()

    def log_message(self, *args):
        pass

    def reply(self, code, body, headers=(), chunked=False):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 65536):
                part = body[i:i + 65536]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        try:
            if u.path == "/delay":
                time.sleep(int(q.get("ms", "0")) / 1000)
                self.reply(200, b"ok")
            elif u.path == "/hang":
                time.sleep(3600)
            elif u.path == "/big":
                self.reply(200, b"x" * int(q["bytes"]),
                           chunked=q.get("chunked") == "1")
            elif u.path == "/redirect":
                self.reply(302, b"", [("Location", "/delay?ms=0")])
            elif u.path == "/stats":
                self.reply(200, str(connections).encode())
            else:
                self.reply(404, b"not found")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        lines = ["method=" + self.command]
        lines += ["%s=%s" % (k.lower(), v) for k, v in self.headers.items()]
        lines += ["length=%d" % n, "", ""]
        self.reply(200, "\n".join(lines).encode() + body)

    do_PUT = do_POST

srv = Server(("127.0.0.1", 0), Handler)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
srv.serve_forever()
PY

# --- the SMTP sink (asyncio; smtpd is gone from Python 3.12) -------------
cat > "$TMP/smtp_sink.py" <<'PY'
import asyncio, base64, os, sys

outdir, portfile = sys.argv[1], sys.argv[2]
count = 0

async def session(reader, writer):
    global count
    def send(line):
        writer.write(line.encode() + b"\r\n")
    send("220 sink ESMTP")
    rcpts, sender = [], None
    while True:
        await writer.drain()
        raw = await reader.readline()
        if not raw:
            break
        cmd = raw.decode(errors="replace").rstrip("\r\n")
        verb = cmd.split(" ", 1)[0].upper()
        if verb == "EHLO":
            send("250-sink"); send("250-AUTH PLAIN"); send("250 SIZE 1048576")
        elif verb == "HELO":
            send("250 sink")
        elif verb == "AUTH":
            parts = cmd.split()
            if len(parts) > 2:
                creds = parts[2]
            else:
                send("334 "); await writer.drain()
                creds = (await reader.readline()).decode().strip()
            try:
                _, user, pw = base64.b64decode(creds).split(b"\0")
            except Exception:
                send("501 5.5.2 bad AUTH data"); continue
            if (user, pw) == (b"mailer", b"secret"):
                send("235 2.7.0 authenticated")
            else:
                send("535 5.7.8 authentication failed")
        elif verb == "MAIL":
            sender, rcpts = cmd[cmd.find(":") + 1:].strip(), []
            send("250 2.1.0 ok")
        elif verb == "RCPT":
            addr = cmd[cmd.find(":") + 1:].strip()
            if "reject-550" in addr:
                send("550 5.1.1 no such user")
            elif "tempfail-451" in addr:
                send("451 4.3.0 try again later")
            else:
                rcpts.append(addr); send("250 2.1.5 ok")
        elif verb == "DATA":
            if not rcpts:
                send("503 5.5.1 no recipients"); continue
            send("354 end with <CRLF>.<CRLF>"); await writer.drain()
            data = b""
            while True:
                line = await reader.readline()
                if not line:
                    return
                if line == b".\r\n":
                    break
                if line.startswith(b"."):
                    line = line[1:]
                data += line
            if b"X-Sink: reject-data" in data:
                send("554 5.6.0 message refused"); continue
            count += 1
            with open(os.path.join(outdir, "mail-%d.eml" % count), "wb") as f:
                f.write(("X-Envelope: %s -> %s\r\n" % (sender, " ".join(rcpts))).encode())
                f.write(data)
            send("250 2.0.0 queued as %d" % count)
        elif verb in ("RSET", "NOOP"):
            rcpts = []; send("250 2.0.0 ok")
        elif verb == "QUIT":
            send("221 2.0.0 bye"); await writer.drain(); break
        else:
            send("502 5.5.1 not implemented")
    writer.close()

async def main():
    srv = await asyncio.start_server(session, "127.0.0.1", 0)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.sockets[0].getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    async with srv:
        await srv.serve_forever()

asyncio.run(main())
PY

mkdir -p "$TMP/mail" "$BUILD"
python3 "$TMP/http_server.py" "$TMP/http.port" & PIDS+=($!)
python3 "$TMP/smtp_sink.py" "$TMP/mail" "$TMP/smtp.port" & PIDS+=($!)
DEAD_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

echo "  CC      $BIN"
# shellcheck disable=SC2086
$CC $CFLAGS -Idaemon -Ishared/core daemon/log.c \
    shared/core/ts_validate.c t/unit/http_client_selftest.c -o "$BIN" -luv \
    -lcurl -ljansson -lpthread

for _ in $(seq 50); do
    [ -f "$TMP/http.port" ] && [ -f "$TMP/smtp.port" ] && break
    sleep 0.1
done
HTTP_PORT=$(cat "$TMP/http.port")
SMTP_PORT=$(cat "$TMP/smtp.port")

rc=0
timeout 120 "${VALGRIND[@]}" "$BIN" "$HTTP_PORT" "$DEAD_PORT" "$SMTP_PORT" \
    || rc=$?

# What the sink stored: the two mails that were accepted, whole.
if grep -q "^Subject: selftest plain" "$TMP"/mail/*.eml 2>/dev/null \
   && grep -q "bob@example.test" "$TMP"/mail/*.eml \
   && grep -q "^\.a line starting with a dot" "$TMP"/mail/*.eml \
   && grep -q "^Subject: selftest auth" "$TMP"/mail/*.eml \
   && [ "$(find "$TMP/mail" -name '*.eml' | wc -l)" -eq 2 ]; then
    echo "ok   - the sink stored exactly the 2 accepted mails, intact"
else
    echo "FAIL - the sink's mailbox is not what was sent:"; ls -l "$TMP/mail"
    rc=1
fi
exit $rc

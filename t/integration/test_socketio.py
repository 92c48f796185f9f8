"""Real time (DESIGN §6): WebSocket (RFC 6455) + Engine.IO v4 + Socket.IO v5
served inside nginx by `ticket_socketio`, against the real nginx (2
workers), module, ticketd and SQLite.

The client here is hand-written on a plain socket (RawWS / Sio below) so
that every byte can be chosen: masked or not, fragmented, one byte at a
time, a socket that never reads.  One test also goes through the
python3-websocket library as a third-party client.  The real
socket.io-client is driven by t/e2e (test_socketio_e2e.py).

Sections: handshake, Engine.IO, Socket.IO CONNECT, rooms, delivery,
RFC 6455 framing, slow readers, reload.
"""

import base64
import hashlib
import json
import os
import re
import socket
import struct
import time

import pytest
import websocket

from conftest import JSON_CT, jwt_claims, poll, tail, unique_name

SIO_PATH = "/socket.io/?EIO=4&transport=websocket"
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OID = re.compile(r"^[0-9a-f]{24}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
MIB = 1024 * 1024
STATUS_EVENT = '42["user_status_changed"'

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10

# A second Socket.IO location with small limits, for the directives.
SMALL_PATH = "/sio-small/?EIO=4&transport=websocket"
SMALL_LOCATION = """
        location /sio-small/ {
            ticket_socketio;
            ticket_thread_pool ticket;
            ticket_socketio_ping 30s 30s;
            ticket_socketio_max_message 4k;
            ticket_socketio_send_buffer 16k;
        }"""


# --- a WebSocket client on a plain socket ----------------------------------

def mask_bytes(payload, key):
    n = len(payload)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big")
            ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def encode_frame(opcode, payload=b"", fin=True, mask=True, rsv=0,
                 length=None):
    """One client frame.  length overrides the declared payload length
    (to declare more than is sent)."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    m = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, m | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, m | 127, n)
    if mask:
        key = os.urandom(4)
        return hdr + key + mask_bytes(payload, key)
    return hdr + payload


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class Closed(Exception):
    """The server closed: code is the close frame's code (None when the
    connection ended without a close frame)."""

    def __init__(self, code, reason=b""):
        super().__init__("closed with %r %r" % (code, reason))
        self.code = code
        self.reason = reason


class RawWS:
    """A WebSocket client on a plain TCP socket."""

    def __init__(self, port, path=SIO_PATH, rcvbuf=None, timeout=5,
                 headers=None, upgrade=True):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # before connect, so the window is small from the start
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.status = None
        self.headers = {}
        self.key = base64.b64encode(os.urandom(16)).decode()
        if upgrade:
            self.handshake(path, headers)

    # handshake

    def handshake(self, path=SIO_PATH, headers=None, method="GET"):
        h = {"Host": "127.0.0.1:%d" % self.port, "Upgrade": "websocket",
             "Connection": "Upgrade", "Sec-WebSocket-Key": self.key,
             "Sec-WebSocket-Version": "13"}
        for k, v in (headers or {}).items():
            if v is None:
                h.pop(k, None)
            else:
                h[k] = v
        req = "%s %s HTTP/1.1\r\n%s\r\n" % (
            method, path, "".join("%s: %s\r\n" % kv for kv in h.items()))
        self.sock.sendall(req.encode())
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        if self.status != 101:
            # read the body of the refusal
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                self._fill()
            self.body, self.buf = self.buf[:n], self.buf[n:]
        return self.status

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise Closed(None)
        self.buf += data

    def _need(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    # frames

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", **kw):
        self.sock.sendall(encode_frame(opcode, payload, **kw))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str)
                        else text)

    def recv_frame(self, timeout=None):
        """(fin, opcode, payload) of the next server frame; Closed on EOF."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        b0, b1 = self._need(2)
        assert b1 & 0x80 == 0, "server frames must not be masked"
        assert b0 & 0x70 == 0, "server frames must not set RSV bits"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self._need(n)

    def expect_close(self, timeout=5, skip_text=True):
        """Read until the server's close frame; its code (None when the
        connection just ended).  Text frames before it are skipped (or
        fail the test when skip_text is false)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "no close from the server within %ss" % timeout
            try:
                fin, op, payload = self.recv_frame(left)
            except Closed:
                return None
            except ConnectionResetError:
                return None
            except socket.timeout:
                raise AssertionError(
                    "no close from the server within %ss" % timeout)
            if op == OP_CLOSE:
                assert fin
                if len(payload) >= 2:
                    return struct.unpack("!H", payload[:2])[0]
                return 1005
            assert skip_text, "unexpected frame %r %r" % (op, payload[:200])

    def expect_eof(self, timeout=5):
        """The server ends the TCP connection (after its close frame)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                fin, op, payload = self.recv_frame(timeout)
        except (Closed, ConnectionResetError):
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Sio(RawWS):
    """A Socket.IO client: handshake, open packet, and packets as text
    messages; answers the server's pings by itself."""

    def __init__(self, port, path=SIO_PATH, token=None, **kw):
        super().__init__(port, path, **kw)
        assert self.status == 101, (self.status, self.headers,
                                    getattr(self, "body", b""))
        self.events = []            # (name, args) received, in order
        self.acks = {}              # ack id -> args
        self.pings = 0
        self.answer_pings = True
        self.skip_status = True     # next_packet() records but skips
                                    # user_status_changed
        self.open = self.next_packet(5)
        assert self.open.startswith("0{"), self.open
        self.open_data = json.loads(self.open[1:])
        self.sid = None
        if token is not None:
            reply = self.connect(token)
            assert reply.startswith("40{"), reply
            self.sid = json.loads(reply[2:])["sid"]

    def next_packet(self, timeout=5):
        """The next text message that is not a ping we answered (events and
        acks are also recorded); Closed when the server closes."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no packet within %ss" % timeout)
            fin, op, payload = self.recv_frame(left)
            if op == OP_CLOSE:
                code = (struct.unpack("!H", payload[:2])[0]
                        if len(payload) >= 2 else 1005)
                raise Closed(code, payload[2:])
            if op == OP_PING:
                self.send_frame(OP_PONG, payload)
                continue
            if op != OP_TEXT:
                continue
            assert fin, "the server does not fragment"
            text = payload.decode("utf-8")
            if text == "2" and self.answer_pings:
                self.pings += 1
                self.send_text("3")
                continue
            self._record(text)
            if text.startswith(STATUS_EVENT) and self.skip_status:
                continue            # recorded; presence may send these
            return text

    def _record(self, text):
        if text.startswith("42"):
            body = text[2:]
            m = re.match(r"^(\d+)", body)
            if m:
                body = body[len(m.group(1)):]
            arr = json.loads(body)
            self.events.append((arr[0], arr[1:]))
        elif text.startswith("43"):
            m = re.match(r"^43(\d+)(.*)$", text, re.S)
            self.acks[int(m.group(1))] = json.loads(m.group(2))

    def connect(self, token, timeout=5):
        self.send_text("40" + json.dumps({"token": token}))
        return self.next_packet(timeout)

    def emit(self, event, *args, ack=None):
        self.send_text("42%s%s" % ("" if ack is None else ack,
                                   json.dumps([event] + list(args))))

    def call(self, event, *args, ack=1, timeout=5):
        """emit with an ack id and wait for that ack; its args."""
        self.emit(event, *args, ack=ack)
        deadline = time.monotonic() + timeout
        while ack not in self.acks:
            self.next_packet(max(0.01, deadline - time.monotonic()))
        return self.acks.pop(ack)

    def join(self, ticket_id, ack=1):
        return self.call("join_ticket", ticket_id, ack=ack)

    def wait_event(self, name, pred=None, timeout=1.0):
        """The args of the first recorded or arriving event `name` (for
        which pred(args) holds); AssertionError after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            for i, (n, args) in enumerate(self.events):
                if n == name and (pred is None or pred(args)):
                    del self.events[i]
                    return args
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s within %ss; got %r" % (
                    name, timeout, self.events))
            skip, self.skip_status = self.skip_status, False
            try:
                self.next_packet(left)
            except socket.timeout:
                pass
            finally:
                self.skip_status = skip

    def drain(self, duration):
        """Read for duration seconds; the packets received."""
        got = []
        deadline = time.monotonic() + duration
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return got
            try:
                got.append(self.next_packet(left))
            except socket.timeout:
                return got

    def room_events(self, ticket_id=None):
        """Recorded events other than user_status_changed and the staff's
        collision awareness (ticket_viewers, user_typing: a staff socket
        gets ticket_viewers on every join), for the ticket if given."""
        return [(n, a) for n, a in self.events
                if n not in ("user_status_changed", "ticket_viewers",
                             "user_typing")
                and (ticket_id is None or
                     (a and isinstance(a[0], dict)
                      and a[0].get("ticketId") == ticket_id))]

    def alive(self):
        """The connection answers an Engine.IO ping with a pong."""
        self.send_text("2")
        return self.next_packet(3) == "3"


def sio_on_workers(st, token, per_worker=1, path=SIO_PATH, limit=60):
    """Sockets for token, at least per_worker on every nginx worker:
    [(worker pid, Sio)].  Extra sockets are closed."""
    got, by_pid, extra = [], {}, []
    for _ in range(limit):
        s = Sio(st.port, path, token=token)
        pid = st.worker_of(s.sock)
        assert pid is not None, "no worker holds socket %s" % (
            s.sock.getsockname(),)
        if by_pid.get(pid, 0) < per_worker:
            by_pid[pid] = by_pid.get(pid, 0) + 1
            got.append((pid, s))
        else:
            extra.append(s)
        if len(by_pid) == st.workers and all(
                c >= per_worker for c in by_pid.values()):
            break
    for s in extra:
        s.close()
    assert len(by_pid) == st.workers, (
        "reached only workers %s in %d sockets" % (sorted(by_pid), limit))
    return got


def close_all(socks):
    for s in socks:
        if isinstance(s, tuple):
            s = s[1]
        s.close()


def comment(st, token, ticket_id, text):
    r = st.post("/api/tickets/%s/comments" % ticket_id, token=token,
                json={"text": text})
    assert r.status_code == 200, (r.status_code, r.text)
    return r


def set_status(st, token, ticket_id, status):
    r = st.patch("/api/tickets/%s/status" % ticket_id, token=token,
                 json={"status": status})
    assert r.status_code == 200, (r.status_code, r.text)
    return r


def raw_http(port, request, timeout=5):
    """Send raw request bytes; (status, headers lower-cased, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(body) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return int(lines[0].split()[1]), headers, body
    finally:
        s.close()


def assert_json_error_body(headers, body):
    assert headers.get("content-type") == JSON_CT, headers
    doc = json.loads(body)
    assert isinstance(doc, dict), doc
    return doc


# --- fixtures ----------------------------------------------------------------

@pytest.fixture(scope="module")
def people(stack):
    """A creator with a ticket, and a stranger; (creator, ctoken, ticket,
    stranger, stoken)."""
    creator, ctoken = stack.signup(username=unique_name("creator"))
    ticket = stack.create_ticket(ctoken)
    stranger, stoken = stack.signup(username=unique_name("stranger"))
    return creator, ctoken, ticket, stranger, stoken


# === 1. handshake ===========================================================

def test_upgrade_answers_101_and_the_engine_io_open_packet(stack):
    ws = RawWS(stack.port)
    try:
        assert ws.status == 101, (ws.status, ws.headers)
        assert ws.headers.get("upgrade", "").lower() == "websocket"
        assert "upgrade" in ws.headers.get("connection", "").lower()
        expect = base64.b64encode(hashlib.sha1(
            (ws.key + GUID).encode()).digest()).decode()
        assert ws.headers.get("sec-websocket-accept") == expect, ws.headers
        fin, op, payload = ws.recv_frame(5)
        assert fin and op == OP_TEXT, (fin, op, payload)
        text = payload.decode()
        assert text.startswith("0{"), text
        data = json.loads(text[1:])
        assert set(data) == {"sid", "upgrades", "pingInterval",
                             "pingTimeout", "maxPayload"}, data
        assert isinstance(data["sid"], str) and len(data["sid"]) >= 16, data
        assert data["upgrades"] == []
        assert data["pingInterval"] == 25000, data
        assert data["pingTimeout"] == 20000, data
        assert data["maxPayload"] == MIB, data
    finally:
        ws.close()


def test_every_socket_gets_its_own_sid(stack):
    socks = [Sio(stack.port) for _ in range(6)]
    try:
        sids = [s.open_data["sid"] for s in socks]
        assert len(set(sids)) == len(sids), sids
    finally:
        close_all(socks)


def test_websocket_client_library_connects_and_talks(stack, people):
    """A third-party client (python3-websocket) does the handshake and the
    masking its own way."""
    creator, ctoken, ticket, _, _ = people
    ws = websocket.create_connection(stack.ws_url(), timeout=5)
    try:
        ws.settimeout(5)
        opened = ws.recv()
        assert opened.startswith("0{"), opened
        ws.send('40{"token":"%s"}' % ctoken)
        reply = ws.recv()
        assert reply.startswith("40{"), reply
        assert isinstance(json.loads(reply[2:])["sid"], str)
        ws.send('427["join_ticket","%s"]' % ticket["_id"])
        assert json.loads(ws.recv()[3:]) == [{"ok": True, "room": "joined"}]
        ws.send("2")
        assert ws.recv() == "3"
        # a ping frame is answered by a pong frame with the same bytes
        ws.ping(b"lib-ping")
        op, frame = ws.recv_data_frame(True)
        assert op == websocket.ABNF.OPCODE_PONG, op
        assert frame.data == b"lib-ping", frame.data
    finally:
        ws.close()


def test_polling_transport_is_refused_as_engine_io_does(stack):
    for query in ("EIO=4&transport=polling", "transport=polling&EIO=4&t=x"):
        r = stack.get("/socket.io/?" + query)
        assert r.status_code == 400, (r.status_code, r.text)
        assert r.headers["Content-Type"].startswith("application/json"), \
            r.headers
        assert r.json() == {"code": 0, "message": "Transport unknown"}


def test_version_other_than_13_is_426_naming_13(stack):
    for version in ("8", "12", "14"):
        ws = RawWS(stack.port, upgrade=False)
        try:
            status = ws.handshake(headers={"Sec-WebSocket-Version": version})
            assert status == 426, (version, status, ws.headers)
            assert ws.headers.get("sec-websocket-version") == "13", ws.headers
            assert "sec-websocket-accept" not in ws.headers
        finally:
            ws.close()


@pytest.mark.parametrize("headers", [
    {"Sec-WebSocket-Key": None},
    {"Sec-WebSocket-Key": "not-base64-of-16-bytes"},
    {"Sec-WebSocket-Key": base64.b64encode(b"x" * 15).decode()},
    {"Upgrade": None},
    {"Upgrade": "h2c"},
    {"Connection": "keep-alive"},
    {"Sec-WebSocket-Version": None},
], ids=["no-key", "bad-key", "short-key", "no-upgrade", "other-upgrade",
        "no-connection-upgrade", "no-version"])
def test_bad_handshake_is_400_json(stack, headers):
    ws = RawWS(stack.port, upgrade=False)
    try:
        status = ws.handshake(headers=headers)
        assert status == 400, (status, ws.headers, ws.body)
        assert "sec-websocket-accept" not in ws.headers
        assert ws.headers.get("content-type") == JSON_CT, ws.headers
        assert isinstance(json.loads(ws.body), dict), ws.body
    finally:
        ws.close()


def test_post_is_not_an_upgrade(stack):
    key = base64.b64encode(os.urandom(16)).decode()
    status, headers, body = raw_http(stack.port, (
        "POST %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
        "Sec-WebSocket-Version: 13\r\nContent-Length: 2\r\n\r\n{}"
        % (SIO_PATH, key)).encode())
    assert status == 400, (status, headers, body)
    assert "sec-websocket-accept" not in headers
    assert_json_error_body(headers, body)


def test_plain_get_without_upgrade_is_400_json(stack):
    r = stack.get("/socket.io/?EIO=4&transport=websocket")
    assert r.status_code == 400, r.text
    assert r.headers["Content-Type"] == JSON_CT
    assert isinstance(r.json(), dict), r.text
    s = Sio(stack.port)                 # and the next upgrade works
    assert s.alive()
    s.close()


# === 2. Engine.IO ping / pong ===============================================

def test_server_pings_every_interval_and_pongs_keep_the_socket(make_stack):
    st = make_stack(SIO_PING="1s 1s")
    st.admin, st.admin_token = st.signup(username=unique_name("admin"))
    s = Sio(st.port, token=st.admin_token)
    try:
        assert s.open_data["pingInterval"] == 1000, s.open_data
        assert s.open_data["pingTimeout"] == 1000, s.open_data
        t0 = time.monotonic()
        # answered by next_packet: 4 intervals, 4 pings, still open
        got = s.drain(4.3)
        assert got == [], got
        assert 3 <= s.pings <= 5, s.pings
        assert time.monotonic() - t0 >= 4
        assert s.alive()
        # and still a Socket.IO session: rooms work
        ticket = st.create_ticket(st.admin_token)
        assert s.join(ticket["_id"]) == [{"ok": True, "room": "joined"}]
    finally:
        s.close()


def test_missing_pong_closes_with_1001(make_stack):
    st = make_stack(SIO_PING="1s 1s")
    s = Sio(st.port)
    try:
        s.answer_pings = False
        t0 = time.monotonic()
        assert s.next_packet(3) == "2"
        t_ping = time.monotonic() - t0
        assert 0.7 <= t_ping <= 2.0, t_ping
        code = s.expect_close(4)
        t_close = time.monotonic() - t0
        assert code == 1001, code
        # interval + timeout
        assert 1.7 <= t_close <= 3.5, t_close
        assert s.expect_eof(3)
    finally:
        s.close()
    # closed by the server for good: nginx is fine
    s2 = Sio(st.port)
    assert s2.alive()
    s2.close()


def test_late_pong_after_the_timeout_does_not_save_the_socket(make_stack):
    st = make_stack(SIO_PING="1s 1s")
    s = Sio(st.port)
    try:
        s.answer_pings = False
        assert s.next_packet(3) == "2"
        time.sleep(1.4)
        try:
            s.send_text("3")
        except OSError:
            pass
        assert s.expect_close(3) == 1001
    finally:
        s.close()


def test_client_ping_gets_pong(stack):
    s = Sio(stack.port)
    try:
        for _ in range(3):
            s.send_text("2")
            assert s.next_packet(3) == "3"
    finally:
        s.close()


def test_engine_io_close_packet_closes(stack):
    s = Sio(stack.port)
    try:
        s.send_text("1")
        code = s.expect_close(3)
        assert code in (1000, None), code
        assert s.expect_eof(3)
    finally:
        s.close()


# === 3. Socket.IO CONNECT ===================================================

def test_connect_with_a_valid_token(stack, people):
    creator, ctoken, _, _, _ = people
    s = Sio(stack.port)
    try:
        reply = s.connect(ctoken)
        assert reply.startswith("40{"), reply
        data = json.loads(reply[2:])
        assert set(data) == {"sid"}, data
        assert isinstance(data["sid"], str) and data["sid"], data
    finally:
        s.close()


@pytest.mark.parametrize("packet", ["40", "40{}", '40{"token":""}',
                                    '40{"token":null}', '40{"tok":"x"}'])
def test_connect_without_token_is_access_denied(stack, packet):
    s = Sio(stack.port)
    try:
        s.send_text(packet)
        reply = s.next_packet(3)
        assert reply.startswith("44"), reply
        assert json.loads(reply[2:]) == {
            "message": "Access Denied. No token found."}, reply
        # the socket stays open (the client decides), but unauthenticated
        assert s.alive()
    finally:
        s.close()


def _bad_tokens(st, user_token):
    claims = jwt_claims(user_token)
    now = int(time.time())
    return {
        "garbage": "not.a.jwt",
        "wrong-key": st.make_token(claims, key=b"k" * 64),
        "alg-none": st.make_token(claims, alg="none"),
        "expired": st.make_token(dict(claims, iat=now - 7200,
                                      exp=now - 3600)),
        "unknown-user": st.make_token(dict(claims, _id="0" * 24)),
        "tampered": user_token[:-3] + ("AAA" if user_token[-3:] != "AAA"
                                       else "BBB"),
    }


@pytest.mark.parametrize("which", ["garbage", "wrong-key", "alg-none",
                                   "expired", "unknown-user", "tampered"])
def test_connect_with_a_bad_token_is_invalid_token(stack, people, which):
    _, ctoken, _, _, _ = people
    token = _bad_tokens(stack, ctoken)[which]
    s = Sio(stack.port)
    try:
        reply = s.connect(token)
        assert reply.startswith("44"), (which, reply)
        assert json.loads(reply[2:]) == {"message": "Invalid token"}, reply
    finally:
        s.close()


def test_connect_with_a_revoked_token_is_invalid_token(stack):
    user, token = stack.signup()
    s = Sio(stack.port, token=token)          # valid before the logout
    s.close()
    r = stack.post("/api/auth/logout", token=token)
    assert r.status_code == 200, r.text
    for _ in range(4):                       # whichever worker
        s = Sio(stack.port)
        try:
            reply = s.connect(token)
            assert reply.startswith("44"), reply
            assert json.loads(reply[2:]) == {"message": "Invalid token"}
        finally:
            s.close()


def test_token_of_a_deleted_user_is_invalid(stack):
    user, token = stack.signup()
    assert stack.probe.delete("users", user["_id"]) == 1
    s = Sio(stack.port)
    try:
        reply = s.connect(token)
        assert json.loads(reply[2:]) == {"message": "Invalid token"}, reply
    finally:
        s.close()


def test_connect_to_another_namespace_is_invalid_namespace(stack, people):
    _, ctoken, _, _, _ = people
    s = Sio(stack.port)
    try:
        s.send_text('40/admin,{"token":"%s"}' % ctoken)
        reply = s.next_packet(3)
        assert reply.startswith("44/admin,"), reply
        assert json.loads(reply[len("44/admin,"):]) == {
            "message": "Invalid namespace"}, reply
        # the main namespace still accepts it
        assert s.connect(ctoken).startswith("40{")
    finally:
        s.close()


def test_events_before_connect_are_ignored(stack, people):
    creator, ctoken, ticket, _, _ = people
    s = Sio(stack.port)
    try:
        s.emit("join_ticket", ticket["_id"], ack=5)
        s.emit("join_ticket", ticket["_id"])
        assert s.drain(0.4) == []
        # not a member: a comment is not delivered
        comment(stack, stack.admin_token, ticket["_id"], "before connect")
        assert s.drain(0.6) == []
        assert s.events == [], s.events
        assert s.alive()
        # after CONNECT the same request is answered
        assert s.connect(ctoken).startswith("40{")
        assert s.join(ticket["_id"], ack=6) == [{"ok": True,
                                                 "room": "joined"}]
    finally:
        s.close()


def test_unauthenticated_sockets_get_no_events(stack, people):
    creator, ctoken, ticket, _, _ = people
    anon = [Sio(stack.port) for _ in range(4)]
    try:
        comment(stack, stack.admin_token, ticket["_id"], "to nobody")
        user, _ = stack.signup()
        stack.login(user["username"])           # user_status_changed
        for s in anon:
            assert s.drain(0.3) == [], "unauthenticated socket got events"
            assert s.events == [], s.events
    finally:
        close_all(anon)


def test_connect_error_then_valid_connect(stack, people):
    _, ctoken, ticket, _, _ = people
    s = Sio(stack.port)
    try:
        assert s.connect("bad").startswith("44")
        assert s.connect(ctoken).startswith("40{")
        assert s.join(ticket["_id"]) == [{"ok": True, "room": "joined"}]
    finally:
        s.close()


# === 4. rooms ===============================================================

def test_join_as_creator_admin_and_assignee(stack):
    creator, ctoken = stack.signup()
    mod, mtoken = stack.make_user("moderator", prefix="mod")
    ticket = stack.create_ticket(ctoken)
    stack.probe.assign(ticket["_id"], mod["_id"])
    for token in (ctoken, stack.admin_token, mtoken):
        s = Sio(stack.port, token=token)
        try:
            assert s.join(ticket["_id"], ack=0) == [
                {"ok": True, "room": "joined"}]
            # joining twice is fine
            assert s.join(ticket["_id"], ack=12) == [
                {"ok": True, "room": "joined"}]
        finally:
            s.close()


def test_join_refused_to_those_who_may_not_see_the_ticket(stack, people):
    creator, ctoken, ticket, stranger, stoken = people
    mod, mtoken = stack.make_user("moderator", prefix="mod")
    s = Sio(stack.port, token=stoken)
    m = Sio(stack.port, token=mtoken)
    try:
        refused = [{"ok": False, "error": "Ticket not found"}]
        assert s.join(ticket["_id"]) == refused
        # a moderator not assigned to it is a stranger too
        assert m.join(ticket["_id"]) == refused
        # ids that are no ticket
        assert s.join("0" * 24, ack=2) == refused
        assert s.join("not-an-id", ack=3) == refused
        assert s.call("join_ticket", ack=4) == refused
        assert s.call("join_ticket", 42, ack=5) == refused
        # and nothing is delivered to them
        comment(stack, stack.admin_token, ticket["_id"], "private")
        set_status(stack, stack.admin_token, ticket["_id"], "In Progress")
        s.drain(0.8)
        m.drain(0.1)
        assert s.room_events() == [], s.events
        assert m.room_events() == [], m.events
    finally:
        s.close()
        m.close()


def test_join_without_ack_id_joins_silently(stack):
    creator, ctoken = stack.signup()
    ticket = stack.create_ticket(ctoken)
    s = Sio(stack.port, token=ctoken)
    try:
        s.emit("join_ticket", ticket["_id"])
        time.sleep(0.3)
        comment(stack, stack.admin_token, ticket["_id"], "silent join")
        args = s.wait_event("comment_added", timeout=1)
        assert args[0]["comment"]["text"] == "silent join"
        assert s.acks == {}, s.acks
    finally:
        s.close()


def test_leave_ticket_stops_delivery(stack):
    creator, ctoken = stack.signup()
    ticket = stack.create_ticket(ctoken)
    s = Sio(stack.port, token=ctoken)
    try:
        assert s.join(ticket["_id"]) == [{"ok": True, "room": "joined"}]
        comment(stack, stack.admin_token, ticket["_id"], "one")
        s.wait_event("comment_added", timeout=1)
        assert s.call("leave_ticket", ticket["_id"], ack=2) == [{"ok": True}]
        comment(stack, stack.admin_token, ticket["_id"], "two")
        set_status(stack, stack.admin_token, ticket["_id"], "Completed")
        s.drain(0.8)
        assert s.room_events() == [], s.events
        # leaving a room one is not in is fine too
        assert s.call("leave_ticket", "0" * 24, ack=3) == [{"ok": True}]
        # and one can come back
        assert s.join(ticket["_id"], ack=4) == [{"ok": True,
                                                 "room": "joined"}]
        comment(stack, stack.admin_token, ticket["_id"], "three")
        assert s.wait_event("comment_added", timeout=1)[0]["comment"][
            "text"] == "three"
    finally:
        s.close()


def test_a_socket_joins_at_most_64_rooms_and_leaving_frees_a_place(stack):
    creator, ctoken = stack.signup()
    tickets = [stack.create_ticket(ctoken)["_id"] for _ in range(65)]
    s = Sio(stack.port, token=ctoken)
    other = Sio(stack.port, token=ctoken)
    try:
        for i, tid in enumerate(tickets[:64]):
            assert s.join(tid, ack=i + 1) == [{"ok": True, "room": "joined"}]
        # joining a room again is no new place
        assert s.join(tickets[0], ack=100) == [{"ok": True, "room": "joined"}]
        assert s.join(tickets[64], ack=101) == [{"ok": False,
                                                 "error": "Too many rooms"}]
        # the refused room's events do not reach this socket
        assert other.join(tickets[64], ack=1)[0]["ok"]
        comment(stack, stack.admin_token, tickets[64], "not for s")
        other.wait_event("comment_added", timeout=2)
        s.drain(0.3)
        assert s.room_events(tickets[64]) == [], s.events
        assert s.call("leave_ticket", tickets[3], ack=102) == [{"ok": True}]
        assert s.join(tickets[64], ack=103) == [{"ok": True,
                                                 "room": "joined"}]
        comment(stack, stack.admin_token, tickets[64], "now for s")
        assert s.wait_event("comment_added", timeout=2)[0]["comment"][
            "text"] == "now for s"
        # every one of its rooms still delivers
        comment(stack, stack.admin_token, tickets[63], "last of the first")
        assert s.wait_event("comment_added", timeout=2)[0]["ticketId"] \
            == tickets[63]
    finally:
        s.close()
        other.close()


# === 5. delivery ============================================================

def check_comment_event(args, ticket_id, text, author, role):
    assert len(args) == 1, args
    data = args[0]
    assert set(data) == {"ticketId", "comment"}, data
    assert data["ticketId"] == ticket_id
    c = data["comment"]
    assert set(c) == {"_id", "author", "text", "role", "createdAt"}, c
    assert OID.match(c["_id"]), c
    assert c["text"] == text
    assert c["role"] == role
    assert ISO.match(c["createdAt"]), c
    assert set(c["author"]) == {"_id", "email", "username", "status"}, c
    assert c["author"]["_id"] == author["_id"]
    assert c["author"]["email"] == author["email"]
    assert c["author"]["username"] == author["username"]
    assert "password" not in json.dumps(c)


def test_comment_added_reaches_room_members_on_every_worker(stack):
    creator, ctoken = stack.signup()
    ticket = stack.create_ticket(ctoken)
    tid = ticket["_id"]
    other, otoken = stack.signup()            # authenticated, not a member
    members = (sio_on_workers(stack, ctoken)
               + sio_on_workers(stack, stack.admin_token))
    outsiders = sio_on_workers(stack, otoken)
    try:
        for _, s in members:
            assert s.join(tid) == [{"ok": True, "room": "joined"}]
        # outsiders joined a room of their own
        own = stack.create_ticket(otoken)
        for _, s in outsiders:
            assert s.join(own["_id"]) == [{"ok": True, "room": "joined"}]

        text = "Hello from the admin \u2764 %s" % unique_name()
        t0 = time.monotonic()
        r = comment(stack, stack.admin_token, tid, text)
        received = []
        for pid, s in members:
            args = s.wait_event("comment_added", timeout=1.0)
            check_comment_event(args, tid, text, stack.admin, "admin")
            received.append(args[0]["comment"])
        assert time.monotonic() - t0 < 1.5
        # the event carries the comment the REST answer stored
        stored = [c for c in r.json()["comments"] if c["text"] == text]
        assert len(stored) == 1
        for c in received:
            assert c == stored[0], (c, stored[0])
        text2 = "reply from the creator"
        comment(stack, ctoken, tid, text2)
        for pid, s in members:
            args = s.wait_event("comment_added", timeout=1.0)
            check_comment_event(args, tid, text2, creator, "user")
        # each member got each comment exactly once, outsiders none
        time.sleep(0.3)
        for _, s in members + outsiders:
            s.drain(0.02)
            assert s.room_events(tid) == [], s.events
    finally:
        close_all(members + outsiders)


def test_a_room_bigger_than_one_write_pass_gets_every_event_in_one_order(
        make_stack):
    # a worker writes at most 64 sockets per pass and then yields to its
    # event loop; 300 members (at least 150 on one worker) and comments
    # published concurrently: every member gets every comment once, and
    # all of them in the same order (the one ticketd broadcast them in)
    import threading
    # one account holds the 300 sockets: no per-user socket limit
    stack = make_stack(SIO_USER_SOCKETS="0")
    stack.admin, stack.admin_token = stack.signup(
        username=unique_name("admin"))
    creator, ctoken = stack.signup()
    tid = stack.create_ticket(ctoken)["_id"]
    members = [s for _, s in sio_on_workers(stack, stack.admin_token)]
    try:
        while len(members) < 300:
            members.append(Sio(stack.port, token=ctoken))
        for s in members:
            assert s.join(tid) == [{"ok": True, "room": "joined"}]
        texts = ["burst %d %s" % (i, unique_name()) for i in range(12)]
        errors = []

        def publish(mine):
            try:
                for text in mine:
                    comment(stack, stack.admin_token, tid, text)
            except Exception as e:          # reported below
                errors.append(e)
        threads = [threading.Thread(target=publish, args=(texts[k::3],))
                   for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        orders = set()
        for s in members:
            got = [s.wait_event("comment_added", timeout=5)[0]
                   for _ in texts]
            assert all(a["ticketId"] == tid for a in got)
            orders.add(tuple(a["comment"]["text"] for a in got))
        assert len(orders) == 1, orders
        assert sorted(orders.pop()) == sorted(texts)
        time.sleep(0.2)
        for s in members:
            s.drain(0.001)
            assert s.room_events(tid) == [], s.events
    finally:
        close_all(members)


def test_status_updated_reaches_room_members_on_every_worker(stack):
    creator, ctoken = stack.signup()
    ticket = stack.create_ticket(ctoken)
    tid = ticket["_id"]
    members = sio_on_workers(stack, ctoken, per_worker=2)
    try:
        for _, s in members:
            assert s.join(tid) == [{"ok": True, "room": "joined"}]
        for status in ("In Progress", "Completed", "To-Do"):
            set_status(stack, stack.admin_token, tid, status)
            for _, s in members:
                args = s.wait_event("status_updated", timeout=1.0)
                assert args == [{"ticketId": tid, "status": status}], args
    finally:
        close_all(members)


def test_events_go_only_to_the_ticket_s_room(stack):
    creator, ctoken = stack.signup()
    t1 = stack.create_ticket(ctoken)
    t2 = stack.create_ticket(ctoken)
    s1 = Sio(stack.port, token=ctoken)
    s2 = Sio(stack.port, token=ctoken)
    both = Sio(stack.port, token=ctoken)
    try:
        assert s1.join(t1["_id"])[0]["ok"]
        assert s2.join(t2["_id"])[0]["ok"]
        assert both.join(t1["_id"])[0]["ok"]
        assert both.join(t2["_id"], ack=2)[0]["ok"]
        comment(stack, stack.admin_token, t1["_id"], "for t1")
        comment(stack, stack.admin_token, t2["_id"], "for t2")
        assert s1.wait_event("comment_added")[0]["ticketId"] == t1["_id"]
        assert s2.wait_event("comment_added")[0]["ticketId"] == t2["_id"]
        got = {both.wait_event("comment_added")[0]["ticketId"]
               for _ in range(2)}
        assert got == {t1["_id"], t2["_id"]}
        for s in (s1, s2, both):
            s.drain(0.3)
            assert s.room_events() == [], s.events
    finally:
        close_all([s1, s2, both])


def _status_events_for(s, user_id):
    return [a[0] for n, a in s.events
            if n == "user_status_changed" and a and a[0].get("userId")
            == user_id]


def test_user_status_changed_reaches_every_authenticated_socket(stack):
    user, token = stack.signup()
    watchers = (sio_on_workers(stack, stack.admin_token)
                + sio_on_workers(stack, stack.signup()[1]))
    anon = Sio(stack.port)
    try:
        def expect(status):
            for _, s in watchers:
                args = s.wait_event(
                    "user_status_changed",
                    pred=lambda a: a and a[0].get("userId") == user["_id"]
                    and a[0].get("status") == status, timeout=1.0)
                data = args[0]
                assert set(data) == {"userId", "status", "lastSeen"}, data
                assert ISO.match(data["lastSeen"]) or data["lastSeen"] \
                    is None, data

        r = stack.patch("/api/auth/status", token=token,
                        json={"status": "dnd"})
        assert r.status_code == 200, r.text
        expect("dnd")
        _, token2 = stack.login(user["username"])
        expect("online")
        r = stack.post("/api/auth/logout", token=token2)
        assert r.status_code == 200, r.text
        expect("offline")
        anon.drain(0.2)
        assert anon.events == [], anon.events
    finally:
        close_all(watchers + [anon])


def test_ticket_updated_after_triage_and_assignment(make_stack, tmp_path):
    """The job runner's events: a slow AI provider (the Gemini fake with a
    delay) leaves time to join the room before triage is written."""
    from test_jobs import key_file, moderator, runner_stack
    from client import GeminiFake

    with GeminiFake() as gemini:
        path = key_file(tmp_path, "gemini.key", gemini.key)
        st = runner_stack(make_stack, tmp_path, "--triage-provider",
                          "gemini", "--ai-url", gemini.url,
                          "--ai-key-file", path)
        mod = moderator(st, ["payments", "stripe", "nginx", "api",
                             "node.js"])
        creator, ctoken = st.signup()
        gemini.control(delay_ms=1500)
        members = sio_on_workers(st, ctoken)
        staff = Sio(st.port, token=st.admin_token)
        try:
            ticket = st.create_ticket(ctoken, "Checkout is down",
                                      "Stripe payments fail from our "
                                      "Node.js API behind nginx")
            tid = ticket["_id"]
            for _, s in members:
                assert s.join(tid) == [{"ok": True, "room": "joined"}]
            assert staff.join(tid) == [{"ok": True, "room": "joined"}]
            assert st.probe.ticket(tid)["triage"] is None, \
                "triaged before the join: the test cannot see the event"
            for _, s in members:
                tri = s.wait_event(
                    "ticket_updated",
                    pred=lambda a: "priority" in a[0], timeout=6)[0]
                assert tri["ticketId"] == tid
                assert tri["priority"] in ("Low", "Medium", "High"), tri
                assert tri["summary"], tri
                assert isinstance(tri["relatedSkills"], list), tri
                # the triage's notes for staff are not the requester's
                assert "helpfulNotes" not in tri, tri
                asg = s.wait_event(
                    "ticket_updated",
                    pred=lambda a: "assignedTo" in a[0], timeout=3)[0]
                assert asg["ticketId"] == tid, asg
                assigned = asg["assignedTo"]
                if isinstance(assigned, dict):
                    assigned = assigned["_id"]
                row = st.probe.ticket(tid)
                assert assigned == row["assignedTo"] == mod["_id"], (asg,
                                                                     row)
                assert asg["status"] == "In Progress", asg
                # the creator is in the room: no staff-only explanation
                assert "assignment" not in asg, asg
            # staff get the notes in a staff-only ticket_updated
            notes = staff.wait_event(
                "ticket_updated", pred=lambda a: "helpfulNotes" in a[0],
                timeout=3)[0]
            assert notes == {"ticketId": tid, "helpfulNotes":
                             st.probe.ticket(tid)["helpfulNotes"]}, notes
            assert not [a for _, s in members for n, a in s.events
                        if n == "ticket_updated" and "helpfulNotes" in a[0]]
        finally:
            staff.close()
            close_all(members)


# === 6. RFC 6455 framing ====================================================

def test_unmasked_client_frame_closes_1002(stack):
    s = Sio(stack.port)
    try:
        s.send_frame(OP_TEXT, b"2", mask=False)
        assert s.expect_close(3) == 1002
        assert s.expect_eof(3)
    finally:
        s.close()


@pytest.mark.parametrize("payload", [
    b"\xff", b"42[\"x\",\"\xc3\"]", b"\xc0\xaf", b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80"],
    ids=["ff", "truncated", "overlong", "surrogate", "above-10ffff"])
def test_invalid_utf8_text_closes_1007(stack, payload):
    s = Sio(stack.port)
    try:
        s.send_frame(OP_TEXT, payload)
        assert s.expect_close(3) == 1007
    finally:
        s.close()


def test_invalid_utf8_split_across_fragments_closes_1007(stack):
    s = Sio(stack.port)
    try:
        s.send_frame(OP_TEXT, b"42[\"a\",\"\xe2\x82", fin=False)
        s.send_frame(OP_CONT, b"\x28\"]")      # \xe2\x82\x28: bad 3rd byte
        assert s.expect_close(3) == 1007
    finally:
        s.close()


def test_valid_utf8_split_across_fragments_is_fine(stack, people):
    _, ctoken, ticket, _, _ = people
    s = Sio(stack.port, token=ctoken)
    try:
        # an unknown event whose text splits a 4-byte character
        msg = '421["join_ticket","%s","\U0001F600"]' % ticket["_id"]
        data = msg.encode()
        cut = data.index(b"\xf0") + 2
        s.send_frame(OP_TEXT, data[:cut], fin=False)
        s.send_frame(OP_CONT, data[cut:])
        assert s.next_packet(3) == '431[{"ok":true,"room":"joined"}]'
    finally:
        s.close()


@pytest.mark.parametrize("frames", [
    [encode_frame(OP_TEXT, b"2", rsv=4)],                       # RSV1
    [encode_frame(OP_TEXT, b"2", rsv=1)],                       # RSV3
    [encode_frame(3, b"x")],                                    # reserved op
    [encode_frame(0xB, b"x")],                                  # reserved ctl
    [encode_frame(OP_CONT, b"2")],                              # no start
    [encode_frame(OP_TEXT, b"4", fin=False),
     encode_frame(OP_TEXT, b"2")],                              # new msg
    [encode_frame(OP_PING, b"x", fin=False)],                   # frag ctl
    [encode_frame(OP_PING, b"x" * 126)],                        # big ctl
    [encode_frame(OP_CLOSE, b"\x03")],                          # 1-byte
], ids=["rsv1", "rsv3", "opcode-3", "opcode-11", "orphan-continuation",
        "text-inside-fragmented", "fragmented-ping", "ping-126",
        "close-1-byte"])
def test_protocol_violations_close_1002(stack, frames):
    s = Sio(stack.port)
    try:
        for f in frames:
            s.send_raw(f)
        assert s.expect_close(3) == 1002
        assert s.expect_eof(3)
    finally:
        s.close()


def test_ping_frame_gets_pong_with_the_same_payload(stack):
    s = Sio(stack.port)
    try:
        for payload in (b"", b"hello", os.urandom(125)):
            s.send_frame(OP_PING, payload)
            fin, op, got = s.recv_frame(3)
            assert (fin, op, got) == (True, OP_PONG, payload)
        # a pong from the client is ignored
        s.send_frame(OP_PONG, b"unsolicited")
        assert s.alive()
    finally:
        s.close()


def test_ping_between_fragments_is_answered_and_message_kept(stack, people):
    _, ctoken, ticket, _, _ = people
    s = Sio(stack.port, token=ctoken)
    try:
        data = ('429["join_ticket","%s"]' % ticket["_id"]).encode()
        s.send_frame(OP_TEXT, data[:5], fin=False)
        s.send_frame(OP_PING, b"mid")
        fin, op, got = s.recv_frame(3)
        assert (op, got) == (OP_PONG, b"mid")
        s.send_frame(OP_CONT, data[5:12], fin=False)
        s.send_frame(OP_CONT, data[12:])
        assert s.next_packet(3) == '439[{"ok":true,"room":"joined"}]'
    finally:
        s.close()


@pytest.mark.parametrize("payload,expect", [
    (close_payload(1000, b"bye"), 1000),
    (b"", 1000),
    (close_payload(1001), 1001),
    (close_payload(4000, b"app"), 4000),
], ids=["1000-reason", "empty", "1001", "4000"])
def test_close_frame_is_echoed_and_connection_ends(stack, payload, expect):
    s = Sio(stack.port)
    try:
        s.send_frame(OP_CLOSE, payload)
        assert s.expect_close(3, skip_text=False) == expect
        assert s.expect_eof(3)
    finally:
        s.close()


def test_fragmented_messages_work(stack, people):
    creator, ctoken, ticket, _, _ = people
    s = Sio(stack.port)
    try:
        connect = ('40{"token":"%s"}' % ctoken).encode()
        parts = [connect[i:i + 7] for i in range(0, len(connect), 7)]
        s.send_frame(OP_TEXT, parts[0], fin=False)
        for p in parts[1:-1]:
            s.send_frame(OP_CONT, p, fin=False)
        s.send_frame(OP_CONT, parts[-1])
        assert s.next_packet(3).startswith("40{")
        # empty fragments are fragments too
        s.send_frame(OP_TEXT, b"", fin=False)
        s.send_frame(OP_CONT, ('423["join_ticket","%s"]'
                               % ticket["_id"]).encode(), fin=False)
        s.send_frame(OP_CONT, b"")
        assert s.next_packet(3) == '433[{"ok":true,"room":"joined"}]'
    finally:
        s.close()


def test_events_pipelined_behind_connect_are_answered(stack, people):
    """A client that sends CONNECT and its first events in one write (they
    reach the server before the CONNECT check is back from the thread
    pool) gets every one answered, after the CONNECT answer --
    none is dropped in silence."""
    creator, ctoken, ticket, _, _ = people
    s = RawWS(stack.port)
    try:
        fin, op, payload = s.recv_frame(3)
        assert payload.startswith(b"0{"), payload
        s.send_raw(encode_frame(OP_TEXT, '40{"token":"%s"}' % ctoken)
                   + encode_frame(OP_TEXT, '421["join_ticket","%s"]'
                                  % ticket["_id"])
                   + encode_frame(OP_TEXT, '422["join_ticket","%s"]'
                                  % ("0" * 24))
                   + encode_frame(OP_TEXT, '423["leave_ticket","%s"]'
                                  % ticket["_id"]))
        texts = []
        while len(texts) < 4:
            fin, op, payload = s.recv_frame(5)
            if op == OP_TEXT and not payload.startswith(
                    STATUS_EVENT.encode()):
                texts.append(payload.decode())
        assert texts[0].startswith("40{"), texts
        # joins are answered from the thread pool, a leave at once
        assert sorted(texts[1:]) == [
            '431[{"ok":true,"room":"joined"}]',
            '432[{"ok":false,"error":"Ticket not found"}]',
            '433[{"ok":true}]'], texts
    finally:
        s.close()


def test_byte_by_byte_delivery_works(stack, people):
    """The handshake, then (after the 101, as RFC 6455 4.1 wants) the
    frames, one byte per write."""
    creator, ctoken, ticket, _, _ = people
    s = RawWS(stack.port, upgrade=False)
    try:
        req = ("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n"
               % (SIO_PATH, s.key)).encode()

        def bytewise(data):
            for i in range(len(data)):
                s.send_raw(data[i:i + 1])
                if i % 32 == 0:
                    time.sleep(0.001)

        bytewise(req)
        while b"\r\n\r\n" not in s.buf:
            s._fill()
        head, s.buf = s.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        fin, op, payload = s.recv_frame(3)
        assert payload.startswith(b"0{"), payload
        bytewise(encode_frame(OP_TEXT, '40{"token":"%s"}' % ctoken)
                 + encode_frame(OP_TEXT, '421["join_ticket","%s"]'
                                % ticket["_id"])
                 + encode_frame(OP_PING, b"bytewise")
                 + encode_frame(OP_TEXT, "2"))
        texts, pongs = [], []
        while len(texts) < 3 or not pongs:
            fin, op, payload = s.recv_frame(5)
            if op == OP_TEXT:
                if not payload.startswith(STATUS_EVENT.encode()):
                    texts.append(payload.decode())
            elif op == OP_PONG:
                pongs.append(payload)
        assert texts[0].startswith("40{"), texts
        # the join's ack comes from the thread pool (a store check), the
        # pong at once: either may come first
        assert sorted(texts[1:3]) == sorted(
            ['431[{"ok":true,"room":"joined"}]', "3"]), texts
        assert pongs == [b"bytewise"]
    finally:
        s.close()


def test_frame_header_split_and_64bit_lengths(stack):
    """A 2-byte, a 16-bit and a 64-bit length header, each sent in
    pieces."""
    s = Sio(stack.port)
    try:
        for size in (100, 300, 70000):
            # an event nobody handles, without ack id: no answer, so
            # alive() sees the next packet
            pad = "x" * (size - len('42["pad",""]'))
            frame = encode_frame(OP_TEXT, '42["pad","%s"]' % pad)
            step = 3 if len(frame) < 400 else 4093
            for i in range(0, len(frame), step):
                s.send_raw(frame[i:i + step])
            assert s.alive()
    finally:
        s.close()


def test_message_over_max_closes_1009_and_max_itself_is_fine(stack,
                                                             people):
    _, ctoken, _, _, _ = people
    s = Sio(stack.port, token=ctoken)
    try:
        head, tail_ = '42["pad","', '"]'
        exact = head + "y" * (MIB - len(head) - len(tail_)) + tail_
        assert len(exact) == MIB
        s.send_text(exact)
        assert s.alive(), "a message of exactly the maximum was refused"
        try:
            s.send_text(exact[:-2] + 'y"]')      # MIB + 1
        except OSError:
            pass        # the server may close while we are still sending
        assert s.expect_close(5) == 1009
    finally:
        s.close()


def test_declared_length_over_max_closes_1009_at_once(stack):
    for declared in (MIB + 1, 2 ** 40):
        s = Sio(stack.port)
        try:
            # only the header and 10 bytes: the server must not wait for
            # (or reserve) the rest
            frame = encode_frame(OP_TEXT, b"4" * 10, length=declared)
            s.send_raw(frame)
            assert s.expect_close(3) == 1009, declared
        finally:
            s.close()


def test_fragmented_message_over_max_closes_1009(stack):
    s = Sio(stack.port)
    try:
        chunk = b"z" * (256 * 1024)
        s.send_frame(OP_TEXT, b'42["pad","' + chunk, fin=False)
        try:
            for _ in range(4):
                s.send_frame(OP_CONT, chunk, fin=False)
            s.send_frame(OP_CONT, b'"]')
        except OSError:
            pass                                 # closed while we sent
        assert s.expect_close(5) == 1009
    finally:
        s.close()


def test_small_location_uses_its_own_limits(make_stack):
    st = make_stack(EXTRA_SERVER=SMALL_LOCATION)
    s = Sio(st.port, SMALL_PATH)
    try:
        assert s.open_data["maxPayload"] == 4096, s.open_data
        assert s.open_data["pingInterval"] == 30000, s.open_data
        head, tail_ = '42["pad","', '"]'
        s.send_text(head + "y" * (4096 - len(head) - len(tail_)) + tail_)
        assert s.alive()
        s.send_text(head + "y" * (4097 - len(head) - len(tail_)) + tail_)
        assert s.expect_close(3) == 1009
    finally:
        s.close()
    d = Sio(st.port)                               # the default location
    assert d.open_data["maxPayload"] == MIB
    d.close()


@pytest.mark.parametrize("packet", [
    "", "9", "x", "4", "4x", "49", "42", "42[", '42{"a":1}', "42[]",
    "42[1]", '42["connect"]', '42["disconnect"]', "2probe", "3probe",
    '451-["ev",{"_placeholder":true,"num":0}]',
    '40{"token":', "40[1]", '40/admin{"token":"x"}', "43",
    '42' + '[' * 40 + ']' * 40,
    '4212345678901234567["x"]',
], ids=["empty", "type-9", "letter", "message-alone", "sio-letter",
        "sio-type-9", "event-no-data", "bad-json", "event-object",
        "event-empty", "event-name-number", "reserved-connect",
        "reserved-disconnect", "2probe", "3probe", "binary-event",
        "connect-bad-json", "connect-array", "nsp-no-comma", "ack-no-data",
        "too-deep", "ack-id-too-long"])
def test_malformed_packet_closes_1008(stack, people, packet):
    _, ctoken, _, _, _ = people
    s = Sio(stack.port, token=ctoken)
    try:
        s.send_text(packet)
        assert s.expect_close(3) == 1008, packet
        assert s.expect_eof(3)
    finally:
        s.close()


def test_malformed_packet_before_connect_closes_1008(stack):
    s = Sio(stack.port)
    try:
        s.send_text("42[")
        assert s.expect_close(3) == 1008
    finally:
        s.close()


def test_binary_frames_are_ignored_or_close(stack):
    """Binary messages carry nothing Socket.IO here; the socket must not
    crash the worker either way."""
    s = Sio(stack.port)
    try:
        s.send_frame(OP_BINARY, b"\x00\x01\x02")
        try:
            s.alive()
        except Closed as e:
            assert e.code in (1003, 1008), e.code
    finally:
        s.close()


def test_many_protocol_errors_leave_nginx_healthy(stack, people):
    _, ctoken, ticket, _, _ = people
    for i in range(30):
        s = Sio(stack.port)
        s.send_frame(OP_TEXT, b"2", mask=False)
        s.close()
        s = RawWS(stack.port)
        s.send_raw(encode_frame(OP_TEXT, b"4" * 10, length=2 ** 62)[:6])
        s.close()
    assert not [l for l in stack.error_log().splitlines()
                if "[alert]" in l or "[crit]" in l or "exited on signal"
                in l], tail(stack.error_log())
    s = Sio(stack.port, token=ctoken)
    try:
        assert s.join(ticket["_id"]) == [{"ok": True, "room": "joined"}]
    finally:
        s.close()


# === 7. slow readers ========================================================

def _flood(st, token, tickets, text, count):
    """count comments, round robin over tickets (so no ticket's comment
    list, which each REST answer carries, grows large)."""
    for i in range(count):
        comment(st, token, tickets[i % len(tickets)], text)


def _check_slow_reader(st, path, big_text, n_comments, rooms):
    creator, ctoken = st.signup()
    tickets = [st.create_ticket(ctoken)["_id"] for _ in range(rooms)]
    slow = Sio(st.port, path, token=ctoken, rcvbuf=4096)
    watcher = Sio(st.port, token=ctoken)
    try:
        for i, tid in enumerate(tickets):
            assert slow.join(tid, ack=i)[0]["ok"]
            assert watcher.join(tid, ack=i)[0]["ok"]
        mark = len(st.error_log())
        # the slow socket now never reads; the watcher reads as it goes
        t0 = time.monotonic()
        for i in range(n_comments):
            comment(st, st.admin_token, tickets[i % rooms], big_text)
            if i % 8 == 0:
                watcher.drain(0.001)
            if "slow reader" in st.error_log()[mark:]:
                break
        flood_time = time.monotonic() - t0
        print("slow reader: %d comments of %d bytes in %.1fs" % (
            i + 1, len(big_text.encode()), flood_time))
        line = poll(lambda: [l for l in st.error_log()[mark:].splitlines()
                             if "slow reader" in l], 3)
        assert line, ("the server never closed the slow reader after %d "
                      "comments (%.1fs)\n%s" % (
                          n_comments, flood_time,
                          tail(st.error_log()[mark:])))
        # the slow client finds the end of the stream (a close or EOF)
        # after what the kernel buffered
        slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        code = slow.expect_close(10)
        assert code in (1008, None), code
        # nginx is healthy: the watcher still gets events, new sockets work
        watcher.drain(0.5)
        watcher.events.clear()
        comment(st, st.admin_token, tickets[0], "after the flood")
        args = watcher.wait_event(
            "comment_added",
            pred=lambda a: a[0]["comment"]["text"] == "after the flood",
            timeout=2)
        assert args[0]["ticketId"] == tickets[0]
        print("closed: %s" % line[0])
        fresh = Sio(st.port, path, token=ctoken)
        assert fresh.join(tickets[0])[0]["ok"]
        fresh.close()
        problems = [l for l in st.error_log().splitlines()
                    if "[alert]" in l or "[crit]" in l or "[emerg]" in l
                    or "exited on signal" in l]
        assert not problems, problems
        return line
    finally:
        slow.close()
        watcher.close()


def test_slow_reader_is_closed_at_the_small_send_buffer(make_stack):
    st = make_stack(EXTRA_SERVER=SMALL_LOCATION)
    st.admin, st.admin_token = st.signup(username=unique_name("admin"))
    # ~5.4 KB per event (less than the 16k queue); 16k queue + kernel
    # buffers
    line = _check_slow_reader(st, SMALL_PATH, "x" * 5000, 1500, 16)
    queued = int(re.search(r"slow reader, (\d+) bytes queued", line[0])
                 .group(1))
    assert 8 * 1024 < queued <= 16 * 1024, line


def test_fast_reader_gets_an_event_bigger_than_the_send_buffer(make_stack):
    """A socket that reads everything is not behind: one event larger than
    ticket_socketio_send_buffer (16k here; a 5000-character comment of
    4-byte characters is ~20 KB) must still reach it."""
    st = make_stack(EXTRA_SERVER=SMALL_LOCATION)
    st.admin, st.admin_token = st.signup(username=unique_name("admin"))
    creator, ctoken = st.signup()
    tid = st.create_ticket(ctoken)["_id"]
    s = Sio(st.port, SMALL_PATH, token=ctoken)
    try:
        assert s.join(tid)[0]["ok"]
        assert s.alive()                  # nothing queued, reading
        text = "\U0001F600" * 5000
        comment(st, st.admin_token, tid, text)
        try:
            args = s.wait_event("comment_added", timeout=2)
        except Closed as e:
            raise AssertionError(
                "a reader with an empty queue was closed (%s) on one "
                "~20 KB event; error.log: %s" % (
                    e.code, [l for l in st.error_log().splitlines()
                             if "slow reader" in l]))
        assert args[0]["comment"]["text"] == text
    finally:
        s.close()


def test_slow_reader_is_closed_at_the_default_send_buffer(make_stack):
    st = make_stack()
    st.admin, st.admin_token = st.signup(username=unique_name("admin"))
    # 1 MiB queue + kernel send buffer (up to 4 MB autotuned)
    _check_slow_reader(st, SIO_PATH, "\U0001F600" * 5000, 600, 40)


# === 8. reload ==============================================================

def test_reload_old_workers_close_their_sockets_with_1001(make_stack):
    """`nginx -s reload`: every socket of an old worker (authenticated,
    in a room, unauthenticated, or in the middle of a frame) gets close
    1001 Going Away before the worker exits."""
    st = make_stack()
    st.admin, st.admin_token = st.signup(username=unique_name("admin"))
    creator, ctoken = st.signup()
    ticket = st.create_ticket(ctoken)
    authed = sio_on_workers(st, ctoken, per_worker=2)
    anon = [Sio(st.port) for _ in range(3)]
    half = Sio(st.port)
    half.send_raw(encode_frame(OP_TEXT, b'42["x"]')[:4])   # mid-frame
    try:
        for _, s in authed:
            assert s.join(ticket["_id"])[0]["ok"]
        t0 = time.monotonic()
        st.reload()
        got = {}
        for name, s in ([("authed%d@%d" % (i, pid), s)
                         for i, (pid, s) in enumerate(authed)]
                        + [("anon%d" % i, s) for i, s in enumerate(anon)]
                        + [("half", half)]):
            got[name] = s.expect_close(5)
        assert time.monotonic() - t0 < 8
        assert set(got.values()) == {1001}, (
            "close codes on reload (None: the connection ended without a "
            "close frame): %s" % got)
    finally:
        close_all(authed + anon + [half])


def test_reload_clients_reconnect_to_the_new_workers(make_stack):
    st = make_stack()
    st.admin, st.admin_token = st.signup(username=unique_name("admin"))
    creator, ctoken = st.signup()
    ticket = st.create_ticket(ctoken)
    old = sio_on_workers(st, ctoken, per_worker=2)
    old_pids = {pid for pid, _ in old}
    try:
        for _, s in old:
            assert s.join(ticket["_id"])[0]["ok"]
        t0 = time.monotonic()
        st.reload()
        for pid, s in old:
            s.expect_close(5)           # a close frame (see above) or EOF
            assert s.expect_eof(5)
        # old workers are gone, without waiting for worker_shutdown_timeout
        assert poll(lambda: not (st.nginx_children() & old_pids), 5), (
            st.nginx_children(), old_pids)
        assert time.monotonic() - t0 < 8
        new = sio_on_workers(st, ctoken)
        try:
            assert not ({pid for pid, _ in new} & old_pids)
            for _, s in new:
                assert s.join(ticket["_id"])[0]["ok"]
            comment(st, st.admin_token, ticket["_id"], "after reload")
            for _, s in new:
                assert s.wait_event("comment_added", timeout=1.5)[0][
                    "comment"]["text"] == "after reload"
        finally:
            close_all(new)
        problems = [l for l in st.error_log().splitlines()
                    if "[alert]" in l or "exited on signal" in l]
        assert not problems, problems
    finally:
        close_all(old)

"""Socket abuse is bounded (issue 12 item 4): a socket that never
authenticates is closed after ticket_socketio_connect_timeout; a socket has
a bounded number of store checks in flight and a token bucket on its
events (ticket_socketio_event_rate); a user has at most
ticket_socketio_user_sockets sockets across the node's workers; a slow
reader that is closed is closed at once (its fd and kernel buffers
released).  Directives are validated by `nginx -t`.

Uses the hand-written Socket.IO client of test_socketio.py."""

import json
import os
import re
import time

import pytest

from conftest import nginx_test, poll, render_conf, unique_name
from test_socketio import OP_TEXT, Sio, comment, encode_frame

LIMITED_PATH = "/sio-limited/?EIO=4&transport=websocket"


def limited_location(*directives):
    return """
        location /sio-limited/ {
            ticket_socketio;
            ticket_thread_pool ticket;
            ticket_socketio_send_buffer 16k;
            %s
        }""" % "\n            ".join(directives)


def admin_stack(make_stack, **env):
    st = make_stack(**env)
    st.admin, st.admin_token = st.signup(username=unique_name("admin"))
    return st


def wait_acks(s, ids, timeout=5):
    """Wait for the acks with these ids; {id: its first argument}."""
    deadline = time.monotonic() + timeout
    while not all(i in s.acks for i in ids):
        left = deadline - time.monotonic()
        assert left > 0, "acks missing: %s" % sorted(set(ids) - set(s.acks))
        s.next_packet(left)
    return {i: s.acks.pop(i)[0] for i in ids}


def burst(s, event, arg, ids):
    """Send one event per ack id in a single write."""
    data = b"".join(encode_frame(OP_TEXT, "42%d%s" % (
        i, json.dumps([event, arg]))) for i in ids)
    s.send_raw(data)


# === CONNECT timeout ==========================================================

def test_a_socket_that_never_connects_is_closed_after_the_timeout(
        make_stack):
    st = admin_stack(make_stack, EXTRA_SERVER=limited_location(
        "ticket_socketio_connect_timeout 1s;"))
    idle = Sio(st.port, LIMITED_PATH)
    authed = Sio(st.port, LIMITED_PATH, token=st.admin_token)
    refused = Sio(st.port, LIMITED_PATH)
    try:
        # a refused CONNECT does not stop the clock
        assert refused.connect("not-a-token").startswith("44")
        assert idle.expect_close(5) == 1008
        assert refused.expect_close(5) == 1008
        assert idle.expect_eof(3)
        # an authenticated socket stays, well past the timeout
        assert authed.drain(1.5) == []
        assert authed.alive()
        assert "no CONNECT within 1000 ms" in st.error_log()
    finally:
        idle.close()
        authed.close()
        refused.close()


# === thread tasks in flight and the event rate ================================

def test_store_checks_in_flight_per_socket_are_bounded(make_stack):
    st = admin_stack(make_stack, EXTRA_SERVER=limited_location(
        "ticket_socketio_event_rate 100000 100000;"))
    creator, ctoken = st.signup()
    tid = st.create_ticket(ctoken)["_id"]
    s = Sio(st.port, LIMITED_PATH, token=ctoken)
    try:
        ids = list(range(1, 41))
        burst(s, "join_ticket", tid, ids)
        acks = wait_acks(s, ids)
        busy = [i for i in ids if acks[i] == {
            "ok": False, "error": "Too many requests in progress"}]
        ok = [i for i in ids if acks[i] == {"ok": True, "room": "joined"}]
        assert len(busy) + len(ok) == len(ids), acks
        # four checks at most run for one socket; the rest were refused,
        # not queued behind them
        assert busy, acks
        assert len(ok) >= 4, acks
        # and the socket carries on
        assert s.join(tid, ack=100) == [{"ok": True, "room": "joined"}]
        comment(st, st.admin_token, tid, "still delivered")
        assert s.wait_event("comment_added", timeout=2)
    finally:
        s.close()


def test_events_over_the_rate_are_refused_with_an_error_ack(make_stack):
    st = admin_stack(make_stack, EXTRA_SERVER=limited_location(
        "ticket_socketio_event_rate 1 5;"))
    creator, ctoken = st.signup()
    tid = st.create_ticket(ctoken)["_id"]
    s = Sio(st.port, LIMITED_PATH, token=ctoken)
    other = Sio(st.port, LIMITED_PATH, token=ctoken)
    try:
        ids = list(range(1, 31))
        burst(s, "leave_ticket", tid, ids)
        acks = wait_acks(s, ids)
        ok = [i for i in ids if acks[i] == {"ok": True}]
        limited = [i for i in ids if acks[i] == {
            "ok": False,
            "error": "Too many requests, please try again later."}]
        assert len(ok) + len(limited) == len(ids), acks
        # the bucket holds 5 and refills at 1/s
        assert 5 <= len(ok) <= 7, acks
        assert ok == ids[:len(ok)], acks
        # a join flood from this socket reaches no store check
        burst(s, "join_ticket", tid, list(range(101, 201)))
        acks = wait_acks(s, list(range(101, 201)))
        assert sum(1 for a in acks.values() if a.get("ok")) <= 2, acks
        # another socket has a bucket of its own; REST is unaffected
        assert other.join(tid, ack=1) == [{"ok": True, "room": "joined"}]
        assert st.get("/api/tickets/%s" % tid,
                      token=ctoken).status_code == 200
        assert s.alive()
    finally:
        s.close()
        other.close()


# === sockets per user ========================================================

def test_sockets_per_user_are_capped_across_workers(make_stack):
    st = admin_stack(make_stack, SIO_USER_SOCKETS="3")
    user, token = st.signup()
    held = [Sio(st.port, token=token) for _ in range(3)]
    extra = []
    try:
        refused_on = set()
        for _ in range(60):
            s = Sio(st.port)
            extra.append(s)
            reply = s.connect(token)
            assert reply.startswith("44"), reply
            assert json.loads(reply[2:]) == {
                "message": "Too many connections"}, reply
            refused_on.add(st.worker_of(s.sock))
            if len(refused_on) == st.workers:
                break
        # the count is the node's, whichever worker holds the sockets
        assert len(refused_on) == st.workers, refused_on
        # another user is not affected
        other = Sio(st.port, token=st.signup()[1])
        extra.append(other)
        # a closed socket gives its place back
        held.pop().close()

        def reconnects():
            s = Sio(st.port)
            extra.append(s)
            return s.connect(token).startswith("40{")
        assert poll(reconnects, 5, 0.1)
    finally:
        for s in held + extra:
            s.close()


# === slow readers ============================================================

def _server_inode(st, client_sock):
    """Inode of the server side of this client's connection, or None."""
    client_port = client_sock.getsockname()[1]
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            local, remote = parts[1], parts[2]
            if (int(local.rsplit(":", 1)[1], 16) == st.port
                    and int(remote.rsplit(":", 1)[1], 16) == client_port):
                return parts[9]
    return None


def _fd_targets(pid):
    out = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.add(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return out


def test_a_closed_slow_reader_releases_its_fd_and_buffers_at_once(
        make_stack):
    st = admin_stack(make_stack, EXTRA_SERVER=limited_location())
    creator, ctoken = st.signup()
    tickets = [st.create_ticket(ctoken)["_id"] for _ in range(8)]
    slow = Sio(st.port, LIMITED_PATH, token=ctoken, rcvbuf=4096)
    try:
        for i, tid in enumerate(tickets):
            assert slow.join(tid, ack=i + 1)[0]["ok"]
        pid = st.worker_of(slow.sock)
        inode = _server_inode(st, slow.sock)
        assert pid and inode and inode != "0"
        assert "socket:[%s]" % inode in _fd_targets(pid)
        mark = len(st.error_log())
        for i in range(1500):
            comment(st, st.admin_token, tickets[i % len(tickets)], "x" * 5000)
            if "slow reader" in st.error_log()[mark:]:
                break
        assert poll(lambda: "slow reader" in st.error_log()[mark:], 3)
        # the worker no longer holds the connection, and the kernel does
        # not keep it (with its unsent buffer) for the peer either
        assert poll(lambda: "socket:[%s]" % inode not in _fd_targets(pid),
                    3), "the worker still holds the slow reader's fd"
        assert poll(lambda: _server_inode(st, slow.sock) is None, 3), (
            "the server side of the slow reader's connection lingers")
    finally:
        slow.close()


# === nginx -t ================================================================

@pytest.fixture
def conf_dir(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "tmp").mkdir()
    secret = tmp_path / "jwt.secret"
    secret.write_text("s" * 64)
    text = render_conf(tmp_path, 18098, tmp_path / "t.db", secret,
                       tmp_path / "t.sock", {"BCRYPT_COST": "4"})
    return tmp_path, text


@pytest.mark.parametrize("directive,message", [
    ("ticket_socketio_connect_timeout 0;", "at least 1s"),
    ("ticket_socketio_connect_timeout soon;", "invalid value"),
    ("ticket_socketio_event_rate 0;", "from 1 to 100000"),
    ("ticket_socketio_event_rate 10 0;", "from 1 to 100000"),
    ("ticket_socketio_event_rate ten;", "from 1 to 100000"),
], ids=["timeout-0", "timeout-word", "rate-0", "burst-0", "rate-word"])
def test_nginx_t_rejects_bad_socket_limits(conf_dir, directive, message):
    prefix, text = conf_dir
    text, n = re.subn(r"(ticket_socketio;\n)",
                      r"\1            %s\n" % directive, text)
    assert n == 1
    (prefix / "nginx.conf").write_text(text)
    r = nginx_test(prefix, prefix / "nginx.conf")
    assert r.returncode != 0, r.stderr
    assert "[emerg]" in r.stderr and message in r.stderr, r.stderr


@pytest.mark.parametrize("value,message", [
    ("-1", "from 0 (no limit) to 65535"),
    ("65536", "from 0 (no limit) to 65535"),
    ("3 zone=1k", "at least 32k"),
    ("3 size=1m", "zone=size"),
], ids=["negative", "too-many", "small-zone", "bad-option"])
def test_nginx_t_rejects_bad_user_sockets(conf_dir, value, message):
    prefix, text = conf_dir
    text = text.replace("    ticket_store ",
                        "    ticket_socketio_user_sockets %s;\n"
                        "    ticket_store " % value, 1)
    (prefix / "nginx.conf").write_text(text)
    r = nginx_test(prefix, prefix / "nginx.conf")
    assert r.returncode != 0, r.stderr
    assert "[emerg]" in r.stderr and message in r.stderr, r.stderr


def test_nginx_t_accepts_the_socket_limits(conf_dir):
    prefix, text = conf_dir
    text = text.replace("    ticket_store ",
                        "    ticket_socketio_user_sockets 0;\n"
                        "    ticket_store ", 1)
    text = re.sub(r"(ticket_socketio;\n)",
                  r"\1            ticket_socketio_connect_timeout 5s;\n"
                  r"            ticket_socketio_event_rate 50 200;\n", text)
    (prefix / "nginx.conf").write_text(text)
    r = nginx_test(prefix, prefix / "nginx.conf")
    assert r.returncode == 0, r.stderr

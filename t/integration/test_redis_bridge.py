"""Events cross hosts through Redis pub/sub: two nginx+ticketd pairs, each
with its own store and the same JWT secret, share one real redis-server; an
event made on one pair reaches a socket held by the other, and stopping
Redis keeps each pair working on its own until Redis returns.  Nothing on
the channel is trusted: a message without the right MAC, outside the
replay window or with a frame off the event schema reaches no socket."""
import hashlib
import hmac
import json
import time

import pytest
import websocket

from conftest import Stack, _finish, poll
from redis_util import redis_server  # noqa: F401 (a fixture)

CHANNEL = "ticket:events"


@pytest.fixture
def bridged(make_stack, tmp_path_factory, redis_server):
    """bridged(): two stacks on the bridge, sharing one JWT secret (the
    bridge key derives from it), each with its own store."""
    extra = []
    args = "--jobs 0 --redis redis://127.0.0.1:%d" % redis_server.port

    def factory():
        a = make_stack(TICKETD_ARGS=args)
        b = Stack(tmp_path_factory.mktemp("host-b"),
                  dict(TICKETD_ARGS=args))
        b.secret, b.secret_file = a.secret, a.secret_file
        extra.append(b)
        b.start()
        return a, b

    yield factory
    for b in extra:
        _finish(b)


def bridge_key(secret):
    """HMAC-SHA256(secret, "ticket redis bridge v1"), as README says."""
    return hmac.new(secret, b"ticket redis bridge v1",
                    hashlib.sha256).digest()


def seal(key, frame, origin="00000000000000aa", sent_ms=None):
    """A bridge message as README documents the wire format."""
    body = ("1|%s|%d|" % (origin, int(time.time() * 1000)
                           if sent_ms is None else sent_ms)).encode() + frame
    return hmac.new(key, body, hashlib.sha256).hexdigest().encode() \
        + b"|" + body


def status_frame(user_id, status="dnd", event="user_status_changed",
                 **extra):
    frame = {"type": "event", "event": event, "room": None,
             "data": {"userId": user_id, "status": status,
                      "lastSeen": "2024-01-02T03:04:05.678Z"}}
    frame.update(extra)
    return json.dumps(frame, separators=(",", ":")).encode()


def sio_connect(st, token):
    ws = websocket.create_connection(
        "ws://127.0.0.1:%d/socket.io/?EIO=4&transport=websocket" % st.port,
        timeout=5)
    assert ws.recv().startswith("0{")
    ws.send('40{"token":"%s"}' % token)
    assert ws.recv().startswith("40{")
    return ws


def wait_event(ws, *needles, timeout=5, got=None):
    """The first message holding every needle, or None after timeout;
    every message read goes to got when given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ws.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            msg = ws.recv()
        except websocket.WebSocketTimeoutException:
            break
        if msg == "2":
            ws.send("3")
            continue
        if got is not None:
            got.append(msg)
        if all(n in msg for n in needles):
            return msg
    return None


def test_event_on_one_host_reaches_a_socket_on_the_other(bridged):
    a, b = bridged()
    assert poll(lambda: "subscribed" in a.daemon_log()
                and "subscribed" in b.daemon_log(), 5)

    _, b_admin = b.signup()
    ws = sio_connect(b, b_admin)
    try:
        user, token = a.signup()
        r = a.patch("/api/auth/status", token=token, json={"status": "dnd"})
        assert r.status_code == 200
        msg = wait_event(ws, user["_id"], '"dnd"')
        assert msg is not None, "no event from the other host"
        assert msg.startswith('42["user_status_changed"')
        assert '"dnd"' in msg
    finally:
        ws.close()


def test_redis_stopping_keeps_each_host_working_and_bridging_resumes(
        bridged, redis_server):
    a, b = bridged()
    assert poll(lambda: "subscribed" in b.daemon_log(), 5)

    redis_server.kill()
    assert poll(lambda: "disconnected" in b.daemon_log(), 5)

    # each host still serves and delivers its own events
    _, b_admin = b.signup()
    ws = sio_connect(b, b_admin)
    try:
        user, token = b.signup()
        assert b.patch("/api/auth/status", token=token,
                       json={"status": "dnd"}).status_code == 200
        assert wait_event(ws, user["_id"], '"dnd"') is not None

        # Redis comes back: the bridge reconnects and carries events again
        redis_server.start()
        assert poll(lambda: b.daemon_log().count("subscribed") >= 2
                    and a.daemon_log().count("subscribed") >= 2, 40, 0.5)
        other, otoken = a.signup()
        assert a.patch("/api/auth/status", token=otoken,
                       json={"status": "dnd"}).status_code == 200
        assert wait_event(ws, other["_id"], '"dnd"') is not None
    finally:
        ws.close()


def test_forged_or_replayed_publish_reaches_no_socket(make_stack,
                                                      redis_server):
    """Anyone who reaches Redis can PUBLISH.  Only a message sealed with
    the key derived from the JWT secret, sent within the last 60 s, not
    seen before and carrying a frame of the event schema is delivered, once;
    the rest is dropped and logged.  (The old wire, "<origin>|<frame>", was delivered as is.)"""
    st = make_stack(TICKETD_ARGS="--jobs 0 --redis redis://127.0.0.1:%d"
                    % redis_server.port)
    assert poll(lambda: "subscribed" in st.daemon_log(), 5)
    _, token = st.signup()
    ws = sio_connect(st, token)
    key = bridge_key(st.secret)
    ids = ["%024x" % (0xf0f0 + i) for i in range(10)]
    forged = [
        # the old wire: origin|frame
        b"00000000000000aa|" + status_frame(ids[0]),
        # sealed with another secret, or with the secret itself
        seal(bridge_key(b"x" * 64), status_frame(ids[1])),
        seal(st.secret, status_frame(ids[2])),
        # authentic, but sent 2 minutes ago (a replay) or in the future
        seal(key, status_frame(ids[3]),
             sent_ms=int(time.time() * 1000) - 120000),
        seal(key, status_frame(ids[4]),
             sent_ms=int(time.time() * 1000) + 120000),
        # authentic and fresh, but off the schema
        seal(key, status_frame(ids[5], event="evil")),
        seal(key, status_frame(ids[6], status="<b>root</b>")),
        seal(key, status_frame(ids[7], room="ticket_" + ids[7])),
    ]
    try:
        for msg in forged:
            assert redis_server.command("PUBLISH", CHANNEL, msg) == 1
        # an authentic message, published twice (the copy is a replay),
        # then a control that must arrive, after all the rest
        control = seal(key, status_frame(ids[8]))
        assert redis_server.command("PUBLISH", CHANNEL, control) == 1
        assert redis_server.command("PUBLISH", CHANNEL, control) == 1
        assert redis_server.command("PUBLISH", CHANNEL,
                                    seal(key, status_frame(ids[9]))) == 1
        got = []
        arrived = wait_event(ws, ids[9], got=got) is not None
        leaked = [i for i in ids[:8] if any(i in m for m in got)]
        assert not leaked, (leaked, got)
        assert arrived, \
            "the authentic message never arrived\n" + st.daemon_log()[-3000:]
        assert sum(ids[8] in m for m in got) == 1, got
    finally:
        ws.close()
    log = st.daemon_log()
    assert log.count("redis bridge: dropped") >= 9, log[-3000:]
    assert "a replay" in log, log[-3000:]
    assert "bad MAC" in log and "replay window" in log, log[-3000:]
    assert "unknown event" in log, log[-3000:]


def test_bridge_checks_its_handshake_and_resolves_the_host_name(
        make_stack, tmp_path):
    """The bridge sends the cache's AUTH/SELECT and reads the replies: a
    wrong password is logged and the connection dropped (and retried), it
    never counts as subscribed; the right one, given with a host name that
    ticketd resolves itself, subscribes."""
    from redis_util import RedisServer, require_redis
    require_redis()
    server = RedisServer(tmp_path, password="right")
    wrong, right = tmp_path / "wrong.pw", tmp_path / "right.pw"
    wrong.write_text("wrong\n")
    right.write_text("right\n")
    for f in (wrong, right):
        f.chmod(0o600)
    try:
        bad = make_stack(TICKETD_ARGS="--jobs 0 --redis "
                         "redis://127.0.0.1:%d/2 --redis-password-file %s"
                         % (server.port, wrong))
        assert poll(lambda: "AUTH refused" in bad.daemon_log(), 5), \
            bad.daemon_log()[-2000:]
        assert "subscribed" not in bad.daemon_log()

        good = make_stack(TICKETD_ARGS="--jobs 0 --redis "
                          "redis://localhost:%d/2 --redis-password-file %s"
                          % (server.port, right))
        assert poll(lambda: "subscribed" in good.daemon_log(), 10), \
            good.daemon_log()[-2000:]
        assert "refused" not in good.daemon_log()
    finally:
        server.close()

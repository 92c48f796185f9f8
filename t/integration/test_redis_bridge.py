"""Events cross hosts through Redis pub/sub: two nginx+ticketd pairs, each
with its own store, share one real redis-server; an event made on one pair
reaches a socket held by the other, and stopping Redis keeps each pair
working on its own until Redis returns."""
import time

import pytest
import websocket

from conftest import poll
from redis_util import redis_server  # noqa: F401 (a fixture)


def sio_connect(st, token):
    ws = websocket.create_connection(
        "ws://127.0.0.1:%d/socket.io/?EIO=4&transport=websocket" % st.port,
        timeout=5)
    assert ws.recv().startswith("0{")
    ws.send('40{"token":"%s"}' % token)
    assert ws.recv().startswith("40{")
    return ws


def wait_event(ws, *needles, timeout=5):
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
        if all(n in msg for n in needles):
            return msg
    return None


def test_event_on_one_host_reaches_a_socket_on_the_other(make_stack,
                                                         redis_server):
    args = "--jobs 0 --redis redis://127.0.0.1:%d" % redis_server.port
    a = make_stack(TICKETD_ARGS=args)
    b = make_stack(TICKETD_ARGS=args)
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
        make_stack, redis_server):
    args = "--jobs 0 --redis redis://127.0.0.1:%d" % redis_server.port
    a = make_stack(TICKETD_ARGS=args)
    b = make_stack(TICKETD_ARGS=args)
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

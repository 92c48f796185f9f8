"""Presence from sockets: a user with a socket open on any worker is
online, goes offline (with lastSeen) only after the grace period once the
last socket closes, a reconnect within the grace keeps them online, and a
chosen dnd survives connecting.  Every authenticated socket hears it."""
import time

import websocket

from conftest import poll

GRACE_MS = 1500


def connect(st, token):
    ws = websocket.create_connection(st.url("/socket.io/?EIO=4&transport="
                                            "websocket").replace("http",
                                                                 "ws", 1),
                                     timeout=5)
    assert ws.recv().startswith("0{")
    ws.send('40{"token":"%s"}' % token)
    assert ws.recv().startswith("40{")
    return ws


def status_of(st, user_id):
    return st.probe.user(user_id)


def heard(ws, *needles, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ws.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            msg = ws.recv()
        except websocket.WebSocketTimeoutException:
            return None
        if msg == "2":
            ws.send("3")
        elif all(n in msg for n in needles):
            return msg
    return None


def test_online_while_connected_offline_after_grace(make_stack):
    st = make_stack(TICKETD_ARGS="--jobs 0 --presence-grace-ms %d" % GRACE_MS)
    _, admin_token = st.signup()
    user, token = st.signup()
    # offline as sockets leave it (logout), not "appear offline"
    assert st.post("/api/auth/logout", token=token).status_code == 200
    _, token = st.login(user["email"])
    assert st.probe.set_fields("users", user["_id"], status="offline") == 1
    watcher = connect(st, admin_token)
    try:
        sockets = [connect(st, token) for _ in range(3)]     # both workers
        assert poll(lambda: status_of(st, user["_id"])["status"] == "online",
                    5)
        assert heard(watcher, "user_status_changed", user["_id"], "online")

        # closing some sockets, or all and reconnecting within the grace,
        # keeps the user online
        sockets.pop().close()
        sockets.pop().close()
        sockets.pop().close()
        time.sleep(GRACE_MS / 3000)
        again = connect(st, token)
        time.sleep(GRACE_MS / 1000 + 0.5)
        assert status_of(st, user["_id"])["status"] == "online"

        closed_at = time.time() * 1000
        again.close()
        assert heard(watcher, "user_status_changed", user["_id"], "offline",
                     timeout=GRACE_MS / 1000 + 3)
        row = status_of(st, user["_id"])
        assert row["status"] == "offline"
        assert row["lastSeen"] >= closed_at + GRACE_MS - 200
    finally:
        watcher.close()


def test_dnd_survives_connecting(make_stack):
    st = make_stack(TICKETD_ARGS="--jobs 0 --presence-grace-ms %d" % GRACE_MS)
    user, token = st.signup()
    assert st.patch("/api/auth/status", token=token,
                    json={"status": "dnd"}).status_code == 200
    ws = connect(st, token)
    try:
        time.sleep(0.5)
        assert status_of(st, user["_id"])["status"] == "dnd"
    finally:
        ws.close()
    time.sleep(GRACE_MS / 1000 + 0.7)
    assert status_of(st, user["_id"])["status"] == "dnd"


def test_appear_offline_survives_connecting(make_stack):
    st = make_stack(TICKETD_ARGS="--jobs 0 --presence-grace-ms %d" % GRACE_MS)
    user, token = st.signup()
    assert st.patch("/api/auth/status", token=token,
                    json={"status": "offline"}).status_code == 200
    ws = connect(st, token)
    try:
        time.sleep(0.7)
        assert status_of(st, user["_id"])["status"] == "offline"
    finally:
        ws.close()
    # choosing online again hands presence back to the sockets
    assert st.patch("/api/auth/status", token=token,
                    json={"status": "online"}).status_code == 200
    ws = connect(st, token)
    ws.close()
    assert poll(lambda: status_of(st, user["_id"])["status"] == "offline",
                GRACE_MS / 1000 + 3)

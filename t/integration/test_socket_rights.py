"""Sockets follow REST's rules continuously (DESIGN §7, issue 12 item 3):
logout, demotion, reassignment and token expiry reach the sockets already
open, on every worker and, through the Redis bridge, on every host.  The
rights events behind this (session_revoked, user_changed,
ticket_access_changed) are internal: no client ever receives one.

Uses the hand-written Socket.IO client of test_socketio.py."""

import json
import socket
import time

from conftest import Stack, _finish, jwt_claims, poll, unique_name
from redis_util import redis_server  # noqa: F401 (a fixture)
from test_socketio import Closed, Sio, close_all, comment, sio_on_workers

INTERNAL = ("session_revoked", "user_changed", "ticket_access_changed",
            "rights_resync")
JOINED = [{"ok": True, "room": "joined"}]
REFUSED = [{"ok": False, "error": "Ticket not found"}]


def expect_disconnected(s, timeout=5):
    """The server ends the session: a Socket.IO DISCONNECT ("41"), then the
    connection closes.  Returns the packets seen before the close."""
    got = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("the socket is still open after %ss; got "
                                 "%r" % (timeout, got))
        try:
            got.append(s.next_packet(left))
        except (Closed, ConnectionResetError):
            break
        except socket.timeout:
            raise AssertionError("the socket is still open after %ss; got "
                                 "%r" % (timeout, got))
    assert "41" in got, got
    return got


def no_internal_events(*socks):
    for s in socks:
        names = [n for n, _ in s.events]
        assert not set(names) & set(INTERNAL), names


def wait_room_left(s, ticket_id, timeout=5):
    args = s.wait_event("room_left", timeout=timeout)
    assert args == [{"ticketId": ticket_id}], args


def demote(st, user, role="user"):
    r = st.post("/api/auth/update-user", token=st.admin_token,
                json={"email": user["email"], "role": role})
    assert r.status_code == 200, (r.status_code, r.text)


# === logout ===================================================================

def test_logout_closes_that_token_s_sockets_on_every_worker(stack):
    user, token = stack.signup()
    _, other_token = stack.login(user["username"])     # a second session
    tid = stack.create_ticket(token)["_id"]
    doomed = sio_on_workers(stack, token)
    kept = sio_on_workers(stack, other_token)
    try:
        for _, s in doomed + kept:
            assert s.join(tid) == JOINED
        r = stack.post("/api/auth/logout", token=token)
        assert r.status_code == 200, r.text
        for _, s in doomed:
            expect_disconnected(s)
        # the closed sockets get nothing more; the other session is intact
        comment(stack, stack.admin_token, tid, "after the logout")
        for _, s in kept:
            args = s.wait_event("comment_added", timeout=2)
            assert args[0]["comment"]["text"] == "after the logout"
            assert s.alive()
        for _, s in doomed:
            assert [n for n, _ in s.events if n == "comment_added"] == []
        no_internal_events(*[s for _, s in doomed + kept])
    finally:
        close_all(doomed + kept)


# === demotion ================================================================

def test_demoted_admin_leaves_the_rooms_they_may_no_longer_see(stack):
    creator, ctoken = stack.signup()
    foreign = stack.create_ticket(ctoken)["_id"]
    admin2, a2token = stack.make_user("admin", prefix="admin2")
    own = stack.create_ticket(a2token)["_id"]
    socks = sio_on_workers(stack, a2token)
    try:
        for _, s in socks:
            assert s.join(foreign) == JOINED
            assert s.join(own, ack=2) == JOINED
        demote(stack, admin2)
        for _, s in socks:
            wait_room_left(s, foreign)
        # REST says 404 now, and so do the sockets
        assert stack.get("/api/tickets/%s" % foreign,
                         token=a2token).status_code == 404
        comment(stack, stack.admin_token, foreign, "not for a user any more")
        comment(stack, stack.admin_token, own, "still theirs")
        for _, s in socks:
            args = s.wait_event("comment_added", timeout=2)
            assert args[0]["ticketId"] == own, args
            s.drain(0.3)
            assert s.room_events(foreign) == [], s.events
            assert s.join(foreign, ack=3) == REFUSED
            assert s.alive()
        no_internal_events(*[s for _, s in socks])
    finally:
        close_all(socks)


def test_events_right_after_a_demotion_never_reach_the_demoted(stack):
    """The demotion's push is applied before the events behind it on the
    link: a comment posted the moment update-user answers reaches the
    other watchers, never the demoted admin's sockets (their re-check is
    still in the thread pool then: what arrives meanwhile is held)."""
    creator, ctoken = stack.signup()
    admin2, a2token = stack.make_user("admin", prefix="racer")
    watcher = Sio(stack.port, token=stack.admin_token)
    socks = []
    try:
        for rnd in range(6):
            tid = stack.create_ticket(ctoken)["_id"]
            assert watcher.join(tid, ack=10 + rnd) == JOINED
            demote(stack, admin2, "admin")
            socks = sio_on_workers(stack, a2token)
            for _, s in socks:
                assert s.join(tid) == JOINED
            demote(stack, admin2)
            text = "round %d after the demotion" % rnd
            comment(stack, stack.admin_token, tid, text)
            watcher.wait_event(
                "comment_added", timeout=5,
                pred=lambda a, t=text: a[0]["comment"]["text"] == t)
            for _, s in socks:
                wait_room_left(s, tid)
                s.drain(0.2)
                got = [a for n, a in s.events if n == "comment_added"]
                assert got == [], (rnd, got)
            close_all(socks)
            socks = []
    finally:
        close_all(socks)
        watcher.close()


# === reassignment ============================================================

def test_reassignment_by_the_job_runner_removes_the_former_assignee(
        make_stack, tmp_path):
    from test_jobs import runner_stack, wait_ticket
    st = runner_stack(make_stack, tmp_path)
    old, _ = st.make_user("moderator", ["nginx"], prefix="old")
    old, otoken = st.login(old["username"])
    new, _ = st.make_user("moderator", ["nginx"], prefix="new")
    st.login(new["username"])
    creator, ctoken = st.signup()
    tid = st.create_ticket(ctoken, "nginx is down", "nginx fails")["_id"]
    wait_ticket(st, tid, lambda row: row["assignedTo"], what="assigned")
    # by hand (as an admin's fix would): the ticket is the old one's
    st.probe.assign(tid, old["_id"])
    socks = sio_on_workers(st, otoken)
    watcher = Sio(st.port, token=ctoken)
    try:
        for _, s in socks:
            assert s.join(tid) == JOINED
        assert watcher.join(tid) == JOINED
        # the old moderator goes dnd; the ticket is unassigned and its
        # assignment job run again: the runner picks someone else
        r = st.patch("/api/auth/status", token=otoken,
                     json={"status": "dnd"})
        assert r.status_code == 200, r.text
        assert st.probe.set_fields("tickets", tid, assignedTo=None) == 1
        job = st.probe.jobs(kind="assign", containing=tid)[0]
        assert st.probe.set_fields("jobs", job["_id"], state="pending",
                                   runAfter=0, attempts=0) == 1
        row = wait_ticket(st, tid, lambda row: row["assignedTo"]
                          and row["assignedTo"] != old["_id"],
                          what="reassigned")
        # the ticket_updated that follows the push on the link reached the
        # creator, not the former assignee (held during the re-check)
        watcher.wait_event("ticket_updated", timeout=5)
        for _, s in socks:
            wait_room_left(s, tid)
            assert s.room_events(tid) == [], s.events
            assert s.join(tid, ack=5) == REFUSED
        comment(st, st.admin_token, tid, "after the reassignment")
        assert watcher.wait_event("comment_added", timeout=2)
        for _, s in socks:
            s.drain(0.3)
            assert [n for n, _ in s.room_events(tid)
                    if n == "comment_added"] == [], s.events
        assert row["assignedTo"] != old["_id"]
        # the creator keeps the room
        assert watcher.alive()
        no_internal_events(watcher, *[s for _, s in socks])
    finally:
        close_all(socks + [watcher])


# === token expiry ============================================================

def test_a_socket_closes_when_its_token_expires(stack):
    user, token = stack.signup()
    tid = stack.create_ticket(token)["_id"]
    now = int(time.time())
    short = stack.make_token(dict(jwt_claims(token), iat=now, exp=now + 2))
    s = Sio(stack.port, token=short)
    try:
        assert s.join(tid) == JOINED
        expect_disconnected(s, timeout=6)
    finally:
        s.close()


# === the link to ticketd was down ============================================

def test_a_worker_whose_link_was_down_reauthorises_its_sockets(make_stack):
    st = make_stack()
    st.admin, st.admin_token = st.signup(username=unique_name("admin"))
    creator, ctoken = st.signup()
    tid = st.create_ticket(ctoken)["_id"]
    admin2, a2token = st.make_user("admin", prefix="admin2")
    socks = sio_on_workers(st, a2token)
    try:
        for _, s in socks:
            assert s.join(tid) == JOINED
        st.stop_daemon()
        # the demotion's push is lost: no daemon to carry it
        demote(st, admin2)
        for _, s in socks:
            s.drain(0.3)
            assert "room_left" not in [n for n, _ in s.events]
        st.start_daemon()
        for _, s in socks:
            wait_room_left(s, tid, timeout=10)
            assert s.join(tid, ack=7) == REFUSED
    finally:
        close_all(socks)


# === store errors ============================================================

def test_a_store_error_at_connect_is_a_server_error_not_invalid_token(
        stack):
    user, token = stack.signup()
    stack.probe.break_revocations()     # SQLite only: skips on MongoDB
    try:
        for _ in range(4):                      # whichever worker
            s = Sio(stack.port)
            try:
                reply = s.connect(token)
                assert reply.startswith("44"), reply
                assert json.loads(reply[2:]) == {
                    "message": "Internal server error"}, reply
            finally:
                s.close()
    finally:
        stack.probe.repair_revocations()
    s = Sio(stack.port, token=token)
    s.close()


# === two hosts through Redis =================================================

def two_hosts(make_stack, redis_server, tmp_path_factory):
    """Two nginx+ticketd nodes over one store and one secret, bridged by
    Redis, both subscribed; the caller _finish()es b."""
    args = "--jobs 0 --redis redis://127.0.0.1:%d" % redis_server.port
    a = make_stack(TICKETD_ARGS=args)
    a.admin, a.admin_token = a.signup(username=unique_name("admin"))
    b = Stack(tmp_path_factory.mktemp("stack"), {"TICKETD_ARGS": args})
    b.store = a.store
    b.secret = a.secret
    b.secret_file.write_bytes(a.secret)
    b.start()
    try:
        assert poll(lambda: "subscribed" in a.daemon_log()
                    and "subscribed" in b.daemon_log(), 5)
    except BaseException:
        _finish(b)
        raise
    return a, b


def test_logout_on_one_host_closes_the_socket_held_by_the_other(
        make_stack, redis_server, tmp_path_factory):
    """Two nginx+ticketd nodes over one store and one secret, bridged by
    Redis: a logout on A closes that token's socket on B; a demotion on A
    makes B's socket leave the room."""
    a, b = two_hosts(make_stack, redis_server, tmp_path_factory)
    socks = []
    try:
        user, token = a.signup()
        creator, ctoken = a.signup()
        tid = a.create_ticket(ctoken)["_id"]
        admin2, a2token = a.make_user("admin", prefix="admin2")
        on_b = Sio(b.port, token=token)
        admin_b = Sio(b.port, token=a2token)
        socks = [on_b, admin_b]
        assert admin_b.join(tid) == JOINED
        r = a.post("/api/auth/logout", token=token)
        assert r.status_code == 200, r.text
        expect_disconnected(on_b)
        demote(a, admin2)
        wait_room_left(admin_b, tid)
        no_internal_events(admin_b)
    finally:
        close_all(socks)
        _finish(b)



def test_a_host_whose_bridge_was_down_reauthorises_its_sockets(
        make_stack, redis_server, tmp_path_factory):
    """A demotion on A while Redis is away never crosses to B; when the
    bridges are back, B's sockets fall back to the store (A tells the
    others its publishes were lost, B knows it missed theirs), so the
    demoted admin's socket on B leaves the room it may no longer see."""
    a, b = two_hosts(make_stack, redis_server, tmp_path_factory)
    socks = []
    try:
        creator, ctoken = a.signup()
        tid = a.create_ticket(ctoken)["_id"]
        admin2, a2token = a.make_user("admin", prefix="admin2")
        admin_b = Sio(b.port, token=a2token)
        socks = [admin_b]
        assert admin_b.join(tid) == JOINED

        redis_server.kill()
        assert poll(lambda: "disconnected" in a.daemon_log()
                    and "disconnected" in b.daemon_log(), 5)
        demote(a, admin2)
        admin_b.drain(0.5)
        assert "room_left" not in [n for n, _ in admin_b.events]

        redis_server.start()
        wait_room_left(admin_b, tid, timeout=40)
        assert admin_b.join(tid, ack=2) == REFUSED
        no_internal_events(admin_b)
    finally:
        close_all(socks)
        _finish(b)

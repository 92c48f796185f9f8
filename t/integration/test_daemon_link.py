"""The link between the nginx workers and ticketd: hello, events, REST
that keeps working while the daemon is away, and a socket only the workers'
user may use."""

import json
import os
import re
import socket
import struct
import subprocess

from conftest import poll, unique_name
from test_socketio import close_all, sio_on_workers

HELLO = re.compile(r"link \d+: hello from nginx worker (\d+) pid (\d+)")


def health_states(stack):
    """The daemon state each nginx worker reports in /api/health."""
    states = []
    for pid, (status, _, body) in stack.each_worker("GET",
                                                    "/api/health").items():
        assert status == 200, (pid, status, body)
        data = json.loads(body)
        assert data["status"] == "ok" and data["store"] == "ok", data
        states.append(data["daemon"])
    assert len(states) == 2
    return states


def all_workers_say(stack, state, times=3):
    """Every worker reports state, several times in a row."""
    return all(health_states(stack) == [state, state] for _ in range(times))


def hellos(text):
    return HELLO.findall(text)


def status_event_everywhere(watchers, user_id, status=None):
    """The user_status_changed payloads for user_id (with that status) as
    every watcher socket -- one per worker, so through ticketd -- got
    them."""
    return [s.wait_event(
        "user_status_changed",
        pred=lambda a: a and a[0].get("userId") == user_id
        and (status is None or a[0].get("status") == status),
        timeout=5)[0] for _, s in watchers]


def test_every_worker_says_hello_at_start(stack):
    found = poll(lambda: len(hellos(stack.daemon_log())) >= 2 and
                 hellos(stack.daemon_log()), 5)
    assert found, stack.daemon_log()
    workers = {w for w, _ in found}
    assert workers == {"0", "1"}, found
    assert all_workers_say(stack, "connected")


def test_status_change_event_reaches_daemon_with_payload(stack):
    _, watcher_token = stack.signup()
    user, token = stack.signup()
    watchers = sio_on_workers(stack, watcher_token)
    try:
        r = stack.patch("/api/auth/status", token=token,
                        json={"status": "dnd"})
        assert r.status_code == 200
        # the signup's own "online" event may come first: wait for this
        # change's
        payloads = status_event_everywhere(watchers, user["_id"], "dnd")
    finally:
        close_all(watchers)
    for payload in payloads:
        assert payload == {"userId": user["_id"], "status": "dnd",
                           "lastSeen": r.json()["lastSeen"]}


def test_daemon_restart_rest_keeps_working_and_workers_reconnect(make_stack):
    st = make_stack()
    _, admin_token = st.signup()                  # the admin
    assert poll(lambda: all_workers_say(st, "connected"), 5)

    assert st.stop_daemon() == 0                  # SIGTERM: clean exit

    assert poll(lambda: all_workers_say(st, "disconnected"), 5, 0.2), \
        health_states(st)

    # REST works without the daemon, and the job waits in the store
    user, token = st.signup()
    assert user["role"] == "user"
    jobs = st.probe.jobs(containing=user["email"])
    assert len(jobs) == 1, jobs
    assert jobs[0]["kind"] == "email" and jobs[0]["state"] == "pending"
    assert jobs[0]["payload"]["template"] == "welcome"
    r = st.patch("/api/auth/status", token=token, json={"status": "dnd"})
    assert r.status_code == 200, r.text
    st.login(user["username"])

    since = len(st.daemon_log())
    st.start_daemon()

    assert poll(lambda: all_workers_say(st, "connected"), 10, 0.2), \
        health_states(st)

    found = poll(lambda: len(hellos(st.daemon_log()[since:])) >= 2 and
                 hellos(st.daemon_log()[since:]), 5)
    assert found, st.daemon_log()[since:]
    assert {w for w, _ in found} == {"0", "1"}, found

    # events flow again after the reconnect
    watchers = sio_on_workers(st, admin_token)
    try:
        other, _ = st.signup(username=unique_name("after"))
        status_event_everywhere(watchers, other["_id"], "online")
    finally:
        close_all(watchers)


def test_daemon_restart_keeps_stack_healthy(stack):
    since = len(stack.daemon_log())
    stack.restart_daemon()
    assert poll(lambda: all_workers_say(stack, "connected"), 10, 0.2), \
        health_states(stack)
    assert poll(lambda: len(hellos(stack.daemon_log()[since:])) >= 2, 5)
    watchers = sio_on_workers(stack, stack.admin_token)
    try:
        user, _ = stack.signup()
        status_event_everywhere(watchers, user["_id"], "online")
    finally:
        close_all(watchers)


# A link client run as another uid (nobody), in group 0 so that the 0660
# root:root socket itself lets it connect: it sends one event frame (a
# forged presence change) and reads until told to stop on stdin, then
# prints what it got.  Only ticketd's peer check stands in its way.
PEER_CLIENT = r'''
import json, os, select, socket, struct, sys, time
os.setgroups([0]); os.setgid(0); os.setuid(65534)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
frame = json.dumps({"type": "event", "event": "user_status_changed",
                    "room": None, "data": {"userId": sys.argv[2],
                    "status": "dnd", "lastSeen": None}}).encode()
try:
    s.sendall(struct.pack(">I", len(frame)) + frame)
except OSError:
    pass
print("ready", flush=True)
sys.stdin.readline()
got, eof = b"", False
# until the link closes, or 2 s pass without a byte, or 4 s in all
# (ticketd pushes its metrics on every link every 2 s: silence may never
# come)
deadline = time.monotonic() + 4
while True:
    left = deadline - time.monotonic()
    r, _, _ = select.select([s], [], [], min(2, max(left, 0)))
    if not r:
        break
    try:
        chunk = s.recv(65536)
    except OSError:
        chunk = b""
    if not chunk:
        eof = True
        break
    got += chunk
print(json.dumps({"bytes": len(got), "eof": eof,
                  "text": got.decode("latin-1")}), flush=True)
'''


def run_peer(stack, forged_user, trigger):
    """Run PEER_CLIENT against stack's socket; trigger() makes an event
    while it is linked.  Returns its report."""
    os.chmod(os.path.dirname(str(stack.sock)), 0o755)
    proc = subprocess.Popen(
        ["/usr/bin/python3", "-c", PEER_CLIENT, str(stack.sock),
         forged_user], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        trigger()
        out, err = proc.communicate("go\n", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_a_link_client_of_another_uid_is_refused(stack):
    """A local process of another user that can open the socket reads no
    event and cannot inject one: ticketd checks the peer's uid
    (SO_PEERCRED) and closes the link at once."""
    forged = "%024x" % 0xbadbad
    since = len(stack.daemon_log())
    user, token = stack.signup()

    watchers = sio_on_workers(stack, stack.admin_token)

    def trigger():
        r = stack.patch("/api/auth/status", token=token,
                        json={"status": "dnd"})
        assert r.status_code == 200
        status_event_everywhere(watchers, user["_id"], "dnd")

    try:
        report = run_peer(stack, forged, trigger)
        # the forged presence change reached no worker
        for _, w in watchers:
            w.drain(0.3)
            assert not [a for n, a in w.events if n == "user_status_changed"
                        and a[0].get("userId") == forged], w.events
    finally:
        close_all(watchers)
    assert report["eof"] and report["bytes"] == 0, report
    log = stack.daemon_log()[since:]
    assert "refused a peer with uid 65534" in log, log
    assert forged not in log, log
    # the workers still link and deliver
    assert all_workers_say(stack, "connected")


def test_the_link_user_may_link(make_stack):
    """--link-user names the nginx workers' user (www-data on Debian): its
    processes link and receive events."""
    st = make_stack(TICKETD_ARGS="--jobs 0 --link-user nobody")
    _, admin_token = st.signup()
    user, token = st.signup()
    watchers = sio_on_workers(st, admin_token)

    def trigger():
        r = st.patch("/api/auth/status", token=token, json={"status": "dnd"})
        assert r.status_code == 200
        status_event_everywhere(watchers, user["_id"], "dnd")

    try:
        report = run_peer(st, user["_id"], trigger)
    finally:
        close_all(watchers)
    assert report["bytes"] > 0 and user["_id"] in report["text"], report
    assert "refused a peer" not in st.daemon_log()


def test_event_frames_off_the_schema_are_not_fanned_out(stack):
    """Every event frame from a link is checked against the one event
    schema before ticketd fans it out: an unknown event, a ticket event
    to another room, or a rights event with extra data goes nowhere."""
    def frame(obj):
        data = json.dumps(obj).encode()
        return struct.pack(">I", len(data)) + data

    uid, tid = "%024x" % 0xabc, "%024x" % 0xdef
    bad = [
        {"type": "event", "event": "evil", "room": None, "data": {}},
        {"type": "event", "event": "status_updated", "room": "ticket_" + uid,
         "data": {"ticketId": tid, "status": "Completed"}},
        {"type": "event", "event": "user_changed", "room": None,
         "data": {"userId": uid, "role": "admin"}},
    ]
    good = {"type": "event", "event": "user_changed", "room": None,
            "data": {"userId": "%024x" % 0x600d}}
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(str(stack.sock))
        s.sendall(b"".join(frame(b) for b in bad) + frame(good))
        got = b""
        while b"%024x" % 0x600d not in got:
            chunk = s.recv(65536)
            assert chunk, got
            got += chunk
    finally:
        s.close()
    assert b'"evil"' not in got and tid.encode() not in got \
        and uid.encode() not in got, got
    assert stack.daemon_log().count("event frame dropped") >= 3

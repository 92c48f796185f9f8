"""The link between the nginx workers and ticketd: hello, events, and REST
that keeps working while the daemon is away."""

import json
import re

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
    rows = st.sql("SELECT kind, state, payload FROM jobs WHERE payload LIKE ?",
                  ("%" + user["email"] + "%",))
    assert len(rows) == 1
    assert rows[0]["kind"] == "email" and rows[0]["state"] == "pending"
    assert json.loads(rows[0]["payload"])["template"] == "welcome"
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

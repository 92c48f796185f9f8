"""Where user data could leak on the host: files the system creates hold
it (the store, the mail outbox) and are not readable by other local users
-- the SQLite file and its -wal and -shm are created 0640, the outbox
folder 0750 and its .eml files 0640, whatever the umask allowed -- and
ticketd's log does not copy the events it relays (comment text, emails,
presence): they are traced at debug level, by name and room only."""

import os
import stat

import pytest

from conftest import poll, sqlite_only, unique_name
from test_jobs import outbox_mails, runner_stack
from test_socketio import Sio

# no bit for "other", no group write
NOT_SHARED = stat.S_IRWXO | stat.S_IWGRP


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@sqlite_only
def test_store_and_outbox_files_are_not_world_readable(make_stack, tmp_path):
    # the permissive umask of a typical shell: what the files get is then
    # the code's choice, not the environment's
    old = os.umask(0o022)
    try:
        st = runner_stack(make_stack, tmp_path)
    finally:
        os.umask(old)

    # the admin's welcome mail was written to the outbox by the runner
    mails = poll(lambda: outbox_mails(st.outbox), 10)
    assert mails, st.daemon_log()[-2000:]

    # nginx's threads and ticketd hold connections: the WAL files exist
    for suffix in ("", "-wal", "-shm"):
        path = "%s%s" % (st.store, suffix)
        assert os.path.exists(path), path
        assert mode(path) & NOT_SHARED == 0, (path, oct(mode(path)))

    assert mode(st.outbox) & NOT_SHARED == 0, oct(mode(st.outbox))
    for name in mails:
        path = st.outbox / name
        assert mode(path) & (NOT_SHARED | stat.S_IXGRP) == 0, (
            path, oct(mode(path)))


@pytest.mark.parametrize("verbose", [False, True], ids=["info", "debug"])
def test_ticketd_log_never_holds_the_events_it_relays(make_stack, verbose):
    st = make_stack(TICKETD_ARGS="--jobs 0" + (" --verbose" if verbose
                                              else ""))
    admin, admin_token = st.signup()
    user, token = st.signup()
    ticket = st.create_ticket(token)
    secret_text = unique_name("private-words")
    sio = Sio(st.port, token=token)
    try:
        assert sio.join(ticket["_id"]) == [{"ok": True, "room": "joined"}]
        r = st.post("/api/tickets/%s/comments" % ticket["_id"],
                    token=admin_token, json={"text": secret_text})
        assert r.status_code == 200, r.text
        r = st.patch("/api/auth/status", token=admin_token,
                     json={"status": "dnd"})
        assert r.status_code == 200, r.text
        # both went through ticketd to the socket
        [added] = sio.wait_event("comment_added", timeout=5)
        assert added["comment"]["text"] == secret_text
        sio.wait_event("user_status_changed", timeout=5,
                       pred=lambda a: a[0].get("userId") == admin["_id"]
                       and a[0].get("status") == "dnd")
    finally:
        sio.close()

    log = st.daemon_log()
    assert "listening on" in log, log[-2000:]        # the log is written
    for private in (secret_text, admin["email"], user["email"]):
        assert private not in log, (private, log[-2000:])
    event_lines = [l for l in log.splitlines() if ": event " in l]
    if verbose:
        # traced at debug: name, room and size
        assert any(" debug: " in l and "event comment_added room=ticket_%s"
                   % ticket["_id"] in l for l in event_lines), event_lines
    assert all(" debug: " in l for l in event_lines), event_lines

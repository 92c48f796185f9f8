"""The real socket.io-client (4.8, pinned in t/e2e/package-lock.json)
against the stack: t/e2e/e2e_socketio.test.js connects as the admin and as
a ticket's creator (2 sockets each), joins the room with acks, has the
admin comment through the REST API and checks that every member socket
gets comment_added within a second, that a bad token gets connect_error
"Invalid token" and that a stranger is refused the room and gets nothing.

Needs node and `cd t/e2e && npm ci` (make deps does it); skipped with the
reason printed otherwise.
"""

import os
import shutil
import subprocess

import pytest

from conftest import skip_printed, REPO, tail, unique_name

E2E = REPO / "t" / "e2e"
SCRIPT = E2E / "e2e_socketio.test.js"


def _skip(reason):
    skip_printed("test_socketio_e2e", reason)


@pytest.fixture
def node():
    path = shutil.which("node")
    if path is None:
        _skip("node is not installed")
    if not (E2E / "node_modules" / "socket.io-client").is_dir():
        _skip("%s is missing: run `cd t/e2e && npm ci` (or make deps)"
              % (E2E / "node_modules"))
    return path


def test_real_socket_io_client_end_to_end(make_stack, node):
    # short pings, so the client's pong handling is exercised too
    st = make_stack(SIO_PING="1s 1s")
    st.admin, st.admin_token = st.signup(username=unique_name("admin"))
    creator, ctoken = st.signup(username=unique_name("creator"))
    stranger, stoken = st.signup(username=unique_name("stranger"))
    ticket = st.create_ticket(ctoken)

    env = dict(os.environ)
    env.update({
        "SIO_URL": st.url(""),
        "ADMIN_TOKEN": st.admin_token,
        "ADMIN_ID": st.admin["_id"],
        "CREATOR_TOKEN": ctoken,
        "CREATOR_ID": creator["_id"],
        "STRANGER_TOKEN": stoken,
        "TICKET_ID": ticket["_id"],
        "PING_CHECK_MS": "2500",
        "NODE_NO_WARNINGS": "1",
    })
    try:
        out = subprocess.run([node, str(SCRIPT)], cwd=str(E2E), env=env,
                             capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired as e:
        pytest.fail("node did not finish in 30 s\n%s\n%s" % (
            e.stdout, tail(st.error_log())))
    print(out.stdout)
    assert out.returncode == 0, (
        "node exited with %s\n--- stdout ---\n%s\n--- stderr ---\n%s\n"
        "--- error.log tail ---\n%s" % (out.returncode, out.stdout,
                                        out.stderr, tail(st.error_log())))
    assert "not ok" not in out.stdout, out.stdout
    assert "# all " in out.stdout, out.stdout

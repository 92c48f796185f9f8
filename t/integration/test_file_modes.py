"""Files the system creates hold user data (the store, the mail outbox)
and are not readable by other local users: the SQLite file and its -wal
and -shm are created 0640, the outbox folder 0750 and its .eml files 0640,
whatever the umask of whoever started the processes allowed."""

import os
import stat

from conftest import poll, sqlite_only
from test_jobs import outbox_mails, runner_stack

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

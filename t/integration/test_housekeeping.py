"""ticketd's housekeeping: finished jobs are deleted after their retention
(--job-retention for done jobs, --dead-job-retention for dead ones, kept
30 days by default for admins), so the jobs table does not grow with every
mail and ticket ever handled."""

import pytest

from conftest import poll
from test_jobs import key_file, runner_stack
from test_jobs_mail import MAIL_FROM, dead_welcome
from client import SendGridFake      # t/fakes, put on the path by test_jobs


@pytest.fixture
def sendgrid():
    with SendGridFake() as fake:
        yield fake


def states(st, address):
    return [j["state"] for j in st.probe.jobs(containing=address)]


def test_done_jobs_are_purged_after_the_retention_dead_jobs_are_kept(
        make_stack, tmp_path, sendgrid):
    st = runner_stack(make_stack, tmp_path, "--mail-transport", "sendgrid",
                      "--sendgrid-url", sendgrid.url, "--sendgrid-key-file",
                      key_file(tmp_path, "sg.key", sendgrid.key),
                      "--mail-from", MAIL_FROM,
                      "--job-retention", "1", "--sweep-interval", "1")
    # the admin's welcome mail is sent (done); the next one is refused
    # for good (dead)
    user, _, job = dead_welcome(st, sendgrid)
    assert job["state"] == "dead", job

    # a job done after the other died: once it is purged, a sweep ran
    # when the dead job was older than the done retention
    sendgrid.control("ok")
    other, _ = st.signup()
    assert poll(lambda: states(st, other["email"]) == ["done"], 10), \
        states(st, other["email"])
    assert poll(lambda: states(st, other["email"]) == [], 10), \
        (states(st, other["email"]), st.daemon_log()[-2000:])
    assert states(st, st.admin["email"]) == []

    # the dead job is still there for the admins
    assert states(st, user["email"]) == ["dead"]
    r = st.get("/api/jobs?state=dead", token=st.admin_token)
    assert r.status_code == 200, r.text
    assert [j["_id"] for j in r.json()["jobs"]] == [job["_id"]]
    assert "housekeeping: purged" in st.daemon_log()


def test_dead_jobs_are_purged_after_their_own_retention(
        make_stack, tmp_path, sendgrid):
    st = runner_stack(make_stack, tmp_path, "--mail-transport", "sendgrid",
                      "--sendgrid-url", sendgrid.url, "--sendgrid-key-file",
                      key_file(tmp_path, "sg.key", sendgrid.key),
                      "--mail-from", MAIL_FROM, "--job-retention", "0",
                      "--dead-job-retention", "1", "--sweep-interval", "1")
    user, _, job = dead_welcome(st, sendgrid)
    assert job["state"] == "dead", job
    assert poll(lambda: states(st, user["email"]) == [], 10), \
        states(st, user["email"])
    # --job-retention 0 keeps done jobs
    assert states(st, st.admin["email"]) == ["done"]

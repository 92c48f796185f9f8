"""Email jobs (DESIGN §5.4) through SendGrid v3 and SMTP, each replaced by
its fake from t/fakes.  Email jobs have 8 attempts; a refusal that will
never succeed (4xx from SendGrid but 429, 5xx from SMTP) is dead at once,
listed for admins and retried by them."""

import json

import pytest

from conftest import assert_error, poll
from test_jobs import (FRONTEND_SKILLS, FRONTEND_TICKET, WELCOME_SUBJECT,
                       address_of, assert_no_secrets, assigned, key_file,
                       moderator, runner_stack, wait_ticket)
from client import SendGridFake, SmtpFake    # t/fakes, put on the path
                                             # by test_jobs

MAIL_FROM = "support@example.com"


@pytest.fixture
def sendgrid():
    with SendGridFake() as fake:
        yield fake


@pytest.fixture
def smtp():
    with SmtpFake() as fake:
        yield fake


def sendgrid_stack(make_stack, tmp_path, fake):
    path = key_file(tmp_path, "sendgrid.key", fake.key)
    return runner_stack(make_stack, tmp_path, "--mail-transport", "sendgrid",
                        "--sendgrid-url", fake.url, "--sendgrid-key-file",
                        path, "--mail-from", MAIL_FROM)


def smtp_stack(make_stack, tmp_path, fake):
    return runner_stack(make_stack, tmp_path, "--mail-transport", "smtp",
                        "--smtp-url", fake.url, "--mail-from", MAIL_FROM)


def welcome_job(st, address):
    jobs = [j for j in st.probe.jobs(kind="email", containing=address)
            if j["payload"]["template"] == "welcome"]
    assert len(jobs) == 1, jobs
    return jobs[0]


def wait_job(st, address, pred, timeout=5, what="the state"):
    """The welcome job of address once pred(job) holds."""
    def reached():
        job = welcome_job(st, address)
        return job if pred(job) else None

    job = poll(reached, timeout, 0.05)
    assert job, "welcome job to %s: %s not reached in %ss: %s" % (
        address, what, timeout, welcome_job(st, address))
    return job


def sent_to(mails, address):
    return [m for m in mails if address in m["to"]]


# --- SendGrid ---------------------------------------------------------------

def test_sendgrid_delivers_the_welcome_mail_with_the_api_key(
        make_stack, tmp_path, sendgrid):
    st = sendgrid_stack(make_stack, tmp_path, sendgrid)
    mails = sendgrid.wait_mails(1)
    assert len(mails) == 1, mails
    mail = mails[0]
    assert mail["to"] == [st.admin["email"]], mail
    assert mail["subject"] == WELCOME_SUBJECT, mail
    assert mail["from"] == MAIL_FROM, mail
    assert mail["content"][0]["type"] == "text/plain", mail
    assert st.admin["username"] in mail["content"][0]["value"], mail

    reqs = sendgrid.requests(path="/v3/mail/send")
    assert len(reqs) == 1, reqs
    assert reqs[0]["headers"]["authorization"] == "Bearer %s" % sendgrid.key
    job = wait_job(st, st.admin["email"], lambda j: j["state"] == "done")
    assert job["attempts"] == 1, job


def test_sendgrid_server_error_is_retried_until_delivered(
        make_stack, tmp_path, sendgrid):
    st = sendgrid_stack(make_stack, tmp_path, sendgrid)
    sendgrid.wait_mails(1)                          # the admin's
    sendgrid.control("error", status=500, count=1)
    user, _ = st.signup()
    job = wait_job(st, user["email"], lambda j: j["state"] == "done",
                   what="delivery")
    assert job["attempts"] == 2, job
    assert len(sent_to(sendgrid.mails(), user["email"])) == 1
    modes = [r["mode"] for r in sendgrid.requests(path="/v3/mail/send")]
    assert modes == ["ok", "error", "ok"], modes


def dead_welcome(st, sendgrid):
    """A user whose welcome mail SendGrid refuses with 400: (user, token,
    job) once the job has an outcome."""
    sendgrid.wait_mails(1)                          # the admin's
    sendgrid.control("error", status=400)
    user, token = st.signup()
    job = wait_job(st, user["email"], lambda j: j["state"] != "pending"
                   and j["state"] != "running", what="an outcome")
    return user, token, job


def test_sendgrid_rejected_mail_is_dead_at_once_with_its_error(
        make_stack, tmp_path, sendgrid):
    st = sendgrid_stack(make_stack, tmp_path, sendgrid)
    user, _, job = dead_welcome(st, sendgrid)
    assert job["state"] == "dead", job
    assert job["attempts"] == 1, job
    assert len(sendgrid.requests(path="/v3/mail/send")) == 2
    r = st.get("/api/jobs?state=dead", token=st.admin_token)
    assert r.status_code == 200, r.text
    listed = r.json()["jobs"]
    assert [j["_id"] for j in listed] == [job["_id"]], listed
    for where, error in (("store", job["lastError"]),
                         ("GET /api/jobs", listed[0]["lastError"])):
        assert error and "400" in error, \
            "lastError of the dead job in the %s: %r" % (where, error)


def test_admin_lists_dead_jobs_and_retries_them(make_stack, tmp_path,
                                                sendgrid):
    st = sendgrid_stack(make_stack, tmp_path, sendgrid)
    user, token, job = dead_welcome(st, sendgrid)
    assert job["state"] == "dead", job

    # admins find it among the dead jobs
    r = st.get("/api/jobs?state=dead", token=st.admin_token)
    assert r.status_code == 200, r.text
    dead = r.json()["jobs"]
    assert [j["_id"] for j in dead] == [job["_id"]], dead
    assert dead[0]["state"] == "dead" and dead[0]["attempts"] == 1, dead
    assert dead[0]["kind"] == "email", dead
    assert dead[0]["maxAttempts"] == 8, dead
    assert dead[0]["payload"]["to"] == user["email"], dead
    r = st.get("/api/jobs?state=done&limit=1", token=st.admin_token)
    assert r.status_code == 200 and len(r.json()["jobs"]) == 1, r.text
    assert r.json()["jobs"][0]["state"] == "done", r.text

    # and only admins
    assert_error(st.get("/api/jobs?state=dead", token=token), 403)
    assert_error(st.post("/api/jobs/%s/retry" % job["_id"], token=token),
                 403)
    assert_error(st.get("/api/jobs"), 401)

    # only a dead job can be retried; an unknown one is 404
    done = welcome_job(st, st.admin["email"])
    assert_error(st.post("/api/jobs/%s/retry" % done["_id"],
                         token=st.admin_token), 400)
    assert_error(st.post("/api/jobs/%s/retry" % ("0" * 24),
                         token=st.admin_token), 404)

    # retried once SendGrid takes mail again: delivered
    sendgrid.control("ok")
    r = st.post("/api/jobs/%s/retry" % job["_id"], token=st.admin_token)
    assert r.status_code == 200, r.text
    job = wait_job(st, user["email"], lambda j: j["state"] == "done",
                   what="delivery")
    assert job["attempts"] == 1, job                # a fresh set of tries
    mails = sent_to(sendgrid.mails(), user["email"])
    assert len(mails) == 1 and mails[0]["subject"] == WELCOME_SUBJECT, mails
    r = st.get("/api/jobs?state=dead", token=st.admin_token)
    assert r.json()["jobs"] == [], r.json()


def test_no_password_hash_or_token_in_any_job_or_mail(make_stack, tmp_path,
                                                      sendgrid):
    st = sendgrid_stack(make_stack, tmp_path, sendgrid)
    mod = moderator(st, FRONTEND_SKILLS)
    creator, ctoken = st.signup()
    tid = st.create_ticket(ctoken, *FRONTEND_TICKET)["_id"]
    wait_ticket(st, tid, assigned, what="assignment")
    for token in (st.admin_token, ctoken):          # staff opens, creator
        r = st.post("/api/tickets/%s/comments" % tid, token=token,
                    json={"text": "Any news on this?"})
        assert r.status_code == 200, r.text
    applicant, atoken = st.signup()
    r = st.post("/api/mod-requests", token=atoken, json={"skills": "css"})
    assert r.status_code == 201, r.text
    r = st.post("/api/mod-requests/%s/decide" % r.json()["request"]["_id"],
                token=st.admin_token, json={"action": "accept"})
    assert r.status_code == 200, r.text

    states = st.wait_jobs_settled()
    assert set(states) == {"done"}, (states, st.probe.jobs(kind="email"))
    jobs = st.probe.jobs(kind="email")
    templates = {j["payload"]["template"] for j in jobs}
    assert templates >= {"welcome", "assigned", "comment",
                         "modreq_submitted", "modreq_new",
                         "modreq_accepted"}, templates
    mails = sendgrid.mails()
    assert len(mails) == len(jobs), (mails, jobs)
    assert sent_to(mails, mod["email"]) and sent_to(mails, creator["email"])

    assert_no_secrets("a job payload",
                      [json.dumps(j["payload"]) for j in st.probe.jobs()])
    r = st.get("/api/jobs?limit=500", token=st.admin_token)
    assert_no_secrets("GET /api/jobs", [r.text])
    assert_no_secrets("a mail", [json.dumps(m["body"]) for m in mails])


# --- SMTP -------------------------------------------------------------------

def test_smtp_delivers_the_mail_with_its_headers(make_stack, tmp_path, smtp):
    st = smtp_stack(make_stack, tmp_path, smtp)
    msgs = smtp.wait_messages(1)
    assert len(msgs) == 1, msgs
    assert msgs[0]["from"] == MAIL_FROM, msgs[0]
    assert msgs[0]["to"] == [st.admin["email"]], msgs[0]
    mail = smtp.parsed()[0]
    assert mail["Subject"] == WELCOME_SUBJECT, mail
    assert address_of(mail["To"]) == st.admin["email"], mail
    assert mail["To"].addresses[0].display_name == st.admin["username"]
    assert MAIL_FROM in mail["From"], mail
    assert mail["Date"] and mail["Message-ID"], mail
    assert st.admin["username"] in mail.get_content(), mail.get_content()
    job = wait_job(st, st.admin["email"], lambda j: j["state"] == "done")
    assert job["attempts"] == 1, job


def test_smtp_rejected_recipient_is_dead_at_once(make_stack, tmp_path, smtp):
    st = smtp_stack(make_stack, tmp_path, smtp)
    smtp.wait_messages(1)                           # the admin's
    smtp.control("reject")                          # 550 on RCPT
    user, _ = st.signup()
    job = wait_job(st, user["email"], lambda j: j["state"] == "dead",
                   timeout=3, what="dead")
    assert job["attempts"] == 1, job
    assert job["lastError"] and "550" in job["lastError"], \
        "lastError of a dead job: %r" % job["lastError"]


def test_smtp_temporary_failure_is_retried_until_delivered(
        make_stack, tmp_path, smtp):
    st = smtp_stack(make_stack, tmp_path, smtp)
    smtp.wait_messages(1)                           # the admin's
    smtp.control("error", count=1)                  # 451 on RCPT, once
    user, _ = st.signup()
    job = wait_job(st, user["email"], lambda j: j["state"] == "done",
                   what="delivery")
    assert job["attempts"] == 2, job
    msgs = [m for m in smtp.messages() if m["to"] == [user["email"]]]
    assert len(msgs) == 1, smtp.messages()


# --- Unicode ----------------------------------------------------------------

UNICODE_TITLE = "Не могу войти — 登录失败 🙂"
UNICODE_COMMENT = "Здравствуйте! " + "Привет " * 40


def unicode_comment_mail(st):
    """A ticket with a non-ASCII title and an admin's Russian comment on
    it; returns the creator, once every job is done."""
    creator, token = st.signup()
    tid = st.create_ticket(token, UNICODE_TITLE, "Пароль не подходит")["_id"]
    r = st.post("/api/tickets/%s/comments" % tid, token=st.admin_token,
                json={"text": UNICODE_COMMENT})
    assert r.status_code == 200, r.text
    states = st.wait_jobs_settled()
    assert set(states) == {"done"}, (states, st.probe.jobs(kind="email"))
    return creator


def test_smtp_sends_unicode_subject_and_body_as_7bit_mime(make_stack,
                                                          tmp_path, smtp):
    """The fake refuses raw 8-bit data (no BODY=8BITMIME was declared) and
    lines over 998, as a strict server does: the message gets through
    only as RFC 2047 words and quoted-printable, and decodes back."""
    st = smtp_stack(make_stack, tmp_path, smtp)
    creator = unicode_comment_mail(st)
    [msg] = [m for m in smtp.messages() if m["to"] == [creator["email"]]
             and "comment" in m["data"]]
    assert all(ord(ch) < 0x80 for ch in msg["data"]), msg["data"][:400]
    assert all(len(line) <= 76 for line in msg["data"].split("\r\n"))
    mail = [m for m in smtp.parsed()
            if address_of(m["To"]) == creator["email"]
            and str(m["Subject"]).startswith("New comment")][0]
    assert str(mail["Subject"]) == 'New comment on "%s"' % UNICODE_TITLE
    assert mail["To"].addresses[0].display_name == creator["username"]
    assert mail.get_content_charset() == "utf-8"
    body = mail.get_content().replace("\r\n", "\n")
    assert UNICODE_COMMENT.strip()[:200] in body, body


def test_sendgrid_carries_unicode_as_json_text(make_stack, tmp_path,
                                               sendgrid):
    st = sendgrid_stack(make_stack, tmp_path, sendgrid)
    creator = unicode_comment_mail(st)
    [mail] = [m for m in sent_to(sendgrid.mails(), creator["email"])
              if m["subject"].startswith("New comment")]
    assert mail["subject"] == 'New comment on "%s"' % UNICODE_TITLE
    assert UNICODE_COMMENT.strip()[:200] in mail["content"][0]["value"]
    to = mail["body"]["personalizations"][0]["to"][0]
    assert to == {"email": creator["email"], "name": creator["username"]}
    # the request body itself was valid UTF-8 JSON
    [req] = [r for r in sendgrid.requests(path="/v3/mail/send")
             if creator["email"] in json.dumps(r["body"])
             and "New comment" in json.dumps(r["body"])]
    assert isinstance(req["body"], dict), req

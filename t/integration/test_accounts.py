"""Accounts (issue 15 item 4): a user changes their password, or resets a
forgotten one through a mailed single-use link.

POST /api/auth/password {currentPassword, newPassword} -> 200 {user, token}
and every other session of the user ends (REST and sockets);
POST /api/auth/password-reset {email} -> 202 whatever the address;
POST /api/auth/password-reset/confirm {token, password} -> 200, every
session ends, the token is used up.  Runs on SQLite and on MongoDB
(TEST_STORE=mongodb)."""

import concurrent.futures
import re
from urllib.parse import parse_qs, urlparse

import pytest
from hypothesis import given, strategies as hst

from conftest import DEFAULT_PASSWORD, assert_error, jwt_claims, poll, \
    unique_name
from test_api_properties import any_text, budget, text_field
from test_jobs import RUNNER_ARGS, mails_to, outbox_mails
from test_socket_rights import expect_disconnected
from test_socketio import Sio, close_all, sio_on_workers

NEW_PASSWORD = "N3w-passw0rd-ok"
RESET_SENT = ("If an account with that email exists, a password reset "
              "link was sent to it.")
BAD_RESET = "Invalid or expired reset token"
HOUR_MS = 3600 * 1000


def change(st, token, current, new):
    return st.post("/api/auth/password", token=token,
                   json={"currentPassword": current, "newPassword": new})


def request_reset(st, email):
    return st.post("/api/auth/password-reset", json={"email": email})


def confirm(st, token, password=NEW_PASSWORD):
    return st.post("/api/auth/password-reset/confirm",
                   json={"token": token, "password": password})


def session_ok(st, token):
    return st.get("/api/tickets", token=token).status_code == 200


def reset_jobs(st, email):
    """The reset mails stored for an address (the runner is off in the
    default stack, so they stay in the store)."""
    return [j for j in st.probe.jobs(kind="email", containing=email)
            if j["payload"]["template"] == "password_reset"
            and j["payload"]["to"] == email]


def last_reset_token(st, email):
    jobs = reset_jobs(st, email)
    assert jobs, "no reset mail stored for %s" % email
    return jobs[-1]["payload"]["resetToken"]


# === change =================================================================

def test_change_answers_a_new_token_and_ends_every_other_session(stack):
    user, first = stack.signup()
    _, second = stack.login(user["username"])
    before = stack.probe.user(user["_id"])

    r = change(stack, first, DEFAULT_PASSWORD, NEW_PASSWORD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"user", "token"}, body
    assert body["user"]["_id"] == user["_id"]
    assert "password" not in body["user"]
    fresh = body["token"]
    assert jwt_claims(fresh)["sv"] == 1

    # the caller's new token works; the two issued before do not
    assert session_ok(stack, fresh)
    for old in (first, second):
        assert_error(stack.get("/api/tickets", token=old), 401,
                     "Invalid token")
    # only the new password logs in
    stack.login(user["username"], expect=401)
    stack.login(user["username"], NEW_PASSWORD)

    after = stack.probe.user(user["_id"])
    assert after["password"] != before["password"]
    assert after["password"].startswith("$2b$")
    assert stack.probe.session_epoch(user["_id"]) == 1
    # the notice is stored as a job with the change
    notices = [j for j in stack.probe.jobs(kind="email",
                                           containing=user["email"])
               if j["payload"]["template"] == "password_changed"]
    assert len(notices) == 1, notices
    assert notices[0]["payload"]["how"] == "change"


def test_wrong_current_password_is_400_and_changes_nothing(stack):
    user, token = stack.signup()
    before = stack.probe.user(user["_id"])
    r = change(stack, token, "not-the-password", NEW_PASSWORD)
    assert_error(r, 400, "Current password is incorrect")
    assert stack.probe.user(user["_id"]) == before
    assert session_ok(stack, token)
    stack.login(user["username"])


def test_new_password_rules_are_signup_s(stack):
    user, token = stack.signup()
    before = stack.probe.user(user["_id"])
    bad = [
        {"currentPassword": DEFAULT_PASSWORD, "newPassword": "short7!"},
        {"currentPassword": DEFAULT_PASSWORD, "newPassword": "é" * 129},
        {"currentPassword": DEFAULT_PASSWORD, "newPassword": 12345678},
        {"currentPassword": DEFAULT_PASSWORD},
        {"newPassword": NEW_PASSWORD},
        {"currentPassword": DEFAULT_PASSWORD,
         "newPassword": DEFAULT_PASSWORD},
    ]
    for body in bad:
        r = stack.post("/api/auth/password", token=token, json=body)
        assert_error(r, 400)
    assert stack.probe.user(user["_id"]) == before
    # 128 code points of two bytes each is within the limit
    r = change(stack, token, DEFAULT_PASSWORD, "é" * 128)
    assert r.status_code == 200, r.text
    stack.login(user["username"], "é" * 128)


def test_change_needs_a_session(stack):
    assert_error(stack.post("/api/auth/password",
                            json={"currentPassword": DEFAULT_PASSWORD,
                                  "newPassword": NEW_PASSWORD}), 401)


def test_wrong_current_passwords_lock_the_account_like_logins(stack):
    user, token = stack.signup()
    for _ in range(5):
        assert_error(change(stack, token, "wrong-guess", NEW_PASSWORD), 400)
    r = change(stack, token, DEFAULT_PASSWORD, NEW_PASSWORD)
    assert_error(r, 429)
    assert int(r.headers["Retry-After"]) > 0
    # the same counter as logins: the account is locked there too
    assert_error(stack.post("/api/auth/login",
                            json={"identifier": user["username"],
                                  "password": DEFAULT_PASSWORD}), 429)


def test_change_closes_the_other_sessions_sockets_on_every_worker(stack):
    user, token = stack.signup()
    _, other = stack.login(user["username"])
    doomed = sio_on_workers(stack, token) + sio_on_workers(stack, other)
    try:
        r = change(stack, token, DEFAULT_PASSWORD, NEW_PASSWORD)
        assert r.status_code == 200, r.text
        for _, s in doomed:
            expect_disconnected(s)
        # an old token cannot open a socket again; the new one can
        s = Sio(stack.port)
        try:
            reply = s.connect(token)
            assert reply.startswith("44"), reply
        finally:
            s.close()
        fresh = Sio(stack.port, token=r.json()["token"])
        fresh.close()
    finally:
        close_all(doomed)


# === reset request ============================================================

def test_reset_request_is_202_with_one_answer_for_every_address(stack):
    user, _ = stack.signup()
    known = request_reset(stack, user["email"].upper())
    unknown = request_reset(stack, "nobody_%s@example.com" % unique_name())
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json() == {"message": RESET_SENT}

    stored = stack.probe.reset_token(user["_id"])
    assert stored is not None
    assert re.fullmatch(r"[0-9a-f]{64}", stored["tokenHash"]), stored
    left = stored["expiresAt"] - stack.now_ms()
    assert HOUR_MS - 60000 < left <= HOUR_MS, left
    # the mail carries the token; the store keeps only its hash
    tok = last_reset_token(stack, user["email"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", tok), tok
    assert tok not in stored["tokenHash"]


def test_reset_request_for_an_unknown_address_stores_nothing(stack):
    email = "ghost_%s@example.com" % unique_name()
    before = stack.probe.count("users")
    assert request_reset(stack, email).status_code == 202
    assert stack.probe.jobs(containing=email) == []
    assert stack.probe.count("users") == before


def test_reset_request_needs_a_valid_email(stack):
    for body in ({}, {"email": "not-an-email"}, {"email": 5},
                 {"email": "x" * 250 + "@e.io"}):
        assert_error(stack.post("/api/auth/password-reset", json=body), 400)


def test_mails_per_address_are_capped_but_the_answer_stays_202(stack):
    user, _ = stack.signup()
    for _ in range(7):
        r = request_reset(stack, user["email"])
        assert r.status_code == 202 and r.json() == {"message": RESET_SENT}
    # ticket_login_lockout failures=5 in the default stack
    assert len(reset_jobs(stack, user["email"])) == 5


# === reset confirm ==========================================================

def test_confirm_sets_the_password_ends_every_session_and_is_single_use(
        stack):
    user, token = stack.signup()
    _, other = stack.login(user["username"])
    assert request_reset(stack, user["email"]).status_code == 202
    tok = last_reset_token(stack, user["email"])

    r = confirm(stack, tok)
    assert r.status_code == 200, r.text
    assert r.json() == {"message": "Password reset, please log in"}
    for old in (token, other):
        assert_error(stack.get("/api/tickets", token=old), 401)
    stack.login(user["username"], expect=401)
    _, fresh = stack.login(user["username"], NEW_PASSWORD)
    assert session_ok(stack, fresh)
    assert stack.probe.reset_token(user["_id"]) is None

    # used up: a second confirm changes nothing
    before = stack.probe.user(user["_id"])
    assert_error(confirm(stack, tok, "An0ther-password"), 400, BAD_RESET)
    assert stack.probe.user(user["_id"]) == before
    assert session_ok(stack, fresh)


def test_a_newer_request_replaces_the_older_link(stack):
    user, _ = stack.signup()
    request_reset(stack, user["email"])
    older = last_reset_token(stack, user["email"])
    request_reset(stack, user["email"])
    newer = last_reset_token(stack, user["email"])
    assert older != newer
    assert_error(confirm(stack, older), 400, BAD_RESET)
    assert confirm(stack, newer).status_code == 200


def test_an_expired_token_is_refused_and_changes_nothing(stack):
    user, token = stack.signup()
    request_reset(stack, user["email"])
    tok = last_reset_token(stack, user["email"])
    stack.probe.expire_reset(user["_id"])
    before = stack.probe.user(user["_id"])
    assert_error(confirm(stack, tok), 400, BAD_RESET)
    assert stack.probe.user(user["_id"]) == before
    assert session_ok(stack, token)
    stack.login(user["username"])


def test_malformed_and_unknown_tokens_are_400(stack):
    user, _ = stack.signup()
    request_reset(stack, user["email"])
    tok = last_reset_token(stack, user["email"])
    for bad in ("", "short", tok[:-1], tok + "A", "!" * 43,
                ("B" if tok[0] != "B" else "C") + tok[1:]):
        r = confirm(stack, bad)
        assert_error(r, 400)
    for body in ({"token": tok}, {"password": NEW_PASSWORD},
                 {"token": tok, "password": "short7!"},
                 {"token": tok, "password": "x" * 129},
                 {"token": 5, "password": NEW_PASSWORD}):
        assert_error(stack.post("/api/auth/password-reset/confirm",
                                json=body), 400)
    # none of that used the token up
    assert confirm(stack, tok).status_code == 200


def test_racing_confirms_one_wins(stack):
    user, _ = stack.signup()
    request_reset(stack, user["email"])
    tok = last_reset_token(stack, user["email"])
    passwords = ["Racer-%d-password" % i for i in range(6)]
    with concurrent.futures.ThreadPoolExecutor(len(passwords)) as ex:
        answers = list(ex.map(lambda p: confirm(stack, tok, p), passwords))
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] + [400] * (len(passwords) - 1), codes
    winner = passwords[[r.status_code for r in answers].index(200)]
    stack.login(user["username"], winner)
    assert stack.probe.session_epoch(user["_id"]) == 1


def test_reset_clears_the_login_lockout(stack):
    user, _ = stack.signup()
    for _ in range(5):
        stack.login(user["username"], "bad-guess", expect=401)
    stack.login(user["username"], expect=429)
    request_reset(stack, user["email"])
    assert confirm(stack, last_reset_token(stack, user["email"])) \
        .status_code == 200
    stack.login(user["username"], NEW_PASSWORD)


def test_confirm_closes_every_socket_of_the_user(stack):
    user, token = stack.signup()
    socks = sio_on_workers(stack, token)
    try:
        request_reset(stack, user["email"])
        r = confirm(stack, last_reset_token(stack, user["email"]))
        assert r.status_code == 200, r.text
        for _, s in socks:
            expect_disconnected(s)
    finally:
        close_all(socks)


def test_the_job_list_never_shows_a_reset_token(stack, admin):
    _, admin_token = admin
    user, _ = stack.signup()
    request_reset(stack, user["email"])
    tok = last_reset_token(stack, user["email"])
    r = stack.get("/api/jobs?state=pending&limit=500", token=admin_token)
    assert r.status_code == 200, r.text
    assert tok not in r.text
    mine = [j for j in r.json()["jobs"]
            if j["payload"].get("template") == "password_reset"
            and j["payload"].get("to") == user["email"]]
    assert mine and all(j["payload"]["resetToken"] == "[redacted]"
                        for j in mine)


# === end to end: mails and rate limit =========================================

def test_reset_link_arrives_by_mail_and_works(make_stack, tmp_path):
    outbox = tmp_path / "outbox"
    st = make_stack(
        PUBLIC_URL="https://help.example.test/",
        TICKETD_ARGS=" ".join(RUNNER_ARGS + [
            "--triage-provider", "offline", "--mail-transport", "outbox",
            "--outbox", str(outbox)]))
    user, _ = st.signup()
    assert request_reset(st, user["email"]).status_code == 202

    def reset_mail():
        got = mails_to(outbox_mails(outbox), user["email"],
                       "Reset your password")
        return got[0] if got else None

    mail = poll(reset_mail, 15)
    assert mail is not None, st.daemon_log()[-3000:]
    text = mail.get_content()
    links = re.findall(r"https://help\.example\.test/reset\?token=\S+", text)
    assert len(links) == 1, text
    url = urlparse(links[0])
    tok = parse_qs(url.query)["token"][0]

    assert confirm(st, tok).status_code == 200
    st.login(user["username"], NEW_PASSWORD)
    notice = poll(lambda: mails_to(outbox_mails(outbox), user["email"],
                                   "Your password was changed"), 15)
    assert notice, sorted(outbox_mails(outbox))


def test_account_routes_have_a_stricter_rate_limit(make_stack):
    st = make_stack(ACCOUNT_RATE_LIMIT="3")
    email = "limit_%s@example.com" % unique_name()
    for _ in range(3):
        assert request_reset(st, email).status_code == 202
    r = request_reset(st, email)
    assert_error(r, 429)
    assert int(r.headers["Retry-After"]) > 0
    assert r.headers["RateLimit-Limit"] == "3"
    # the zone is the account routes' own: the rest of the API is open
    assert st.get("/api/health").status_code == 200
    r = confirm(st, "A" * 43)
    assert r.status_code == 429


# === properties (Hypothesis, test_api_properties.py's profiles) ===============

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.fixture(scope="module")
def account(stack):
    """One account whose password the properties below keep changing."""
    user, token = stack.signup()
    return {"user": user, "token": token, "password": DEFAULT_PASSWORD}


@budget(40)
@given(new=text_field([7, 8, 128, 129]))
def test_a_new_password_is_taken_iff_8_to_128_code_points_and_new(
        stack, account, new):
    before = stack.probe.user(account["user"]["_id"])
    r = change(stack, account["token"], account["password"], new)
    # (a NUL, even escaped, makes the whole body invalid JSON for the API)
    ok = (8 <= len(new) <= 128 and new != account["password"]
          and "\x00" not in new)
    assert r.status_code == (200 if ok else 400), (r.status_code, r.text)
    if not ok:
        assert stack.probe.user(account["user"]["_id"]) == before
        assert session_ok(stack, account["token"])
        return
    # byte for byte: the new password logs in, the old token is dead
    assert_error(stack.get("/api/tickets", token=account["token"]), 401)
    account["token"] = r.json()["token"]
    account["password"] = new
    assert session_ok(stack, account["token"])
    r = stack.post("/api/auth/login",
                   json={"identifier": account["user"]["username"],
                         "password": new})
    assert r.status_code == 200, r.text


@budget(60)
@given(tok=hst.one_of(any_text(60),
                      hst.text(alphabet=B64URL, min_size=41, max_size=45)))
def test_any_token_but_the_mailed_one_is_400_and_changes_nothing(
        stack, account, tok):
    request_reset(stack, account["user"]["email"])

    def state():
        # the other users' rows are left out: the sockets of the tests
        # above going offline (ticketd's presence) rewrite them meanwhile
        return (stack.probe.user(account["user"]["_id"]),
                stack.probe.snapshot(skip=("users",)))

    before = state()
    r = confirm(stack, tok)
    assert_error(r, 400)
    assert state() == before

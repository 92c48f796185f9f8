"""Signup, login, lockout, presence, password hashes, hostile input and
concurrent signups, against the real nginx + module + ticketd + SQLite."""

import json
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import (DEFAULT_PASSWORD, JSON_CT, assert_error, contains_key,
                      needs_unique_indexes,
                      unique_name)
from test_socketio import Sio

HEX24 = re.compile(r"^[0-9a-f]{24}$")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

# Hashes made by the original app's library, not by our code.
#
# OpenBSD's bcrypt test vector: password "U*U", cost 5.
OPENBSD_PASSWORD = "U*U"
OPENBSD_HASH = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
# Made once with bcryptjs 2.4.3 (the Node app's library) under Node 20:
#   cd /tmp && npm init -y >/dev/null && npm install bcryptjs@2
#   node -e "console.log(require('bcryptjs').hashSync('correct horse battery', 10))"
# bcryptjs writes "$2a$"; the "$2b$" form is the same hash with the prefix
# changed (identical algorithm for passwords under 255 bytes).
NODE_PASSWORD = "correct horse battery"
NODE_HASH_2A = "$2a$10$zDU1jZvv9CcY1L3RRwJlsuSLJEgxyrJ3e5ABEd7IjbBrX.nGxt3ae"
NODE_HASH_2B = "$2b$10$zDU1jZvv9CcY1L3RRwJlsuSLJEgxyrJ3e5ABEd7IjbBrX.nGxt3ae"


def status_event(sio, user_id, status=None):
    """The user_status_changed payload for user_id (with that status) that
    the authenticated socket sio receives."""
    [data] = sio.wait_event(
        "user_status_changed",
        pred=lambda a: a and a[0].get("userId") == user_id
        and (status is None or a[0].get("status") == status), timeout=5)
    return data


def signup_body(**over):
    name = unique_name()
    body = {"username": name, "email": "%s@example.com" % name,
            "password": DEFAULT_PASSWORD}
    body.update(over)
    return body


# --- signup ---------------------------------------------------------------

def test_signup_returns_user_and_token_without_password(stack):
    name = unique_name()
    r = stack.post("/api/auth/signup", json={
        "username": name, "email": "%s@example.com" % name,
        "password": DEFAULT_PASSWORD})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == JSON_CT
    body = r.json()
    assert set(body) >= {"user", "token"}
    user = body["user"]
    assert HEX24.match(user["_id"]), user
    assert user["username"] == name
    assert user["email"] == "%s@example.com" % name
    assert user["role"] == "user"
    assert user["skills"] == []
    assert user["status"] == "online"
    assert ISO_Z.match(user["lastSeen"]), user
    assert ISO_Z.match(user["createdAt"]), user
    assert user["totalTicketsResolved"] == 0
    assert user["averageResolutionTimeHours"] == 24
    assert not contains_key(body, "password"), body
    assert DEFAULT_PASSWORD not in r.text
    assert "$2" not in r.text
    assert len(body["token"].split(".")) == 3


def test_signup_stores_a_bcrypt_hash_with_the_configured_cost(stack):
    user, _ = stack.signup()
    row = stack.probe.user(user["_id"])
    assert row["password"].startswith("$2b$04$"), row["password"]
    assert len(row["password"]) == 60
    assert row["status"] == "online"


def test_signup_stores_email_lower_case(stack):
    name = unique_name()
    user, _ = stack.signup(username=name, email="%s@Example.COM" % name.upper())
    assert user["email"] == "%s@example.com" % name.lower()
    assert stack.probe.user(user["_id"])["email"] == \
        "%s@example.com" % name.lower()


def test_signup_ignores_role_in_body(stack):
    user, token = stack.signup(role="admin")
    assert user["role"] == "user"
    assert stack.probe.user(user["_id"])["role"] == "user"
    assert stack.get("/api/users", token=token).status_code == 403


@pytest.mark.parametrize("skills,expected", [
    ([" Python ", "python", "React", "REACT "], ["python", "react"]),
    ("Go, rust ,GO,  ", ["go", "rust"]),
    ([], []),
])
def test_signup_normalises_skills(stack, skills, expected):
    user, _ = stack.signup(skills=skills)
    assert user["skills"] == expected
    assert stack.probe.user(user["_id"])["skills"] == expected


def test_signup_duplicate_email_in_any_case_is_409(stack):
    user, _ = stack.signup()
    before = stack.probe.count("users")
    r = stack.post("/api/auth/signup", json=signup_body(
        email=user["email"].upper()))
    assert_error(r, 409, "Email already registered")
    assert stack.probe.count("users") == before


def test_signup_duplicate_username_in_any_case_is_409(stack):
    user, _ = stack.signup()
    before = stack.probe.count("users")
    r = stack.post("/api/auth/signup", json=signup_body(
        username=user["username"].upper()))
    assert_error(r, 409, "Username already taken")
    assert stack.probe.count("users") == before


@pytest.mark.parametrize("field,value", [
    ("username", {"a": 1}),
    ("username", 12345),
    ("username", ["abcdef"]),
    ("username", None),
    ("username", True),
    ("email", 5),
    ("email", {"$ne": ""}),
    ("email", None),
    ("password", None),
    ("password", 12345678),
    ("password", ["Passw0rd-correct"]),
    ("skills", 42),
    ("skills", {"a": "b"}),
    ("skills", [1, 2]),
])
def test_signup_wrong_type_is_400(stack, field, value):
    before = stack.probe.count("users")
    r = stack.post("/api/auth/signup", json=signup_body(**{field: value}))
    assert_error(r, 400)
    assert stack.probe.count("users") == before


@pytest.mark.parametrize("missing", ["username", "email", "password"])
def test_signup_missing_field_is_400(stack, missing):
    body = signup_body()
    del body[missing]
    assert_error(stack.post("/api/auth/signup", json=body), 400)


def long_valid_email(total):
    """A syntactically valid address of exactly total characters."""
    local = "a" * 64
    labels = []
    remaining = total - len(local) - 1 - len(".com")
    while remaining > 0:
        n = min(63, remaining)
        if remaining - n == 1:       # never leave a lone "." with no label
            n -= 1
        labels.append("b" * n)
        remaining -= n + 1
    address = "%s@%s.com" % (local, ".".join(labels))
    assert len(address) == total, len(address)
    return address


@pytest.mark.parametrize("field,value", [
    ("username", "ab"),
    ("username", "a" * 33),
    ("username", "has space"),
    ("username", "slash/name"),
    ("username", "emoji\u263a"),
    ("username", ""),
    ("email", "notanemail"),
    ("email", "a@"),
    ("email", "@example.com"),
    ("email", "two@@example.com"),
    ("email", ""),
    ("email", long_valid_email(255)),
    ("password", "short77"),
    ("password", "p" * 129),
    ("password", ""),
])
def test_signup_out_of_bounds_is_400(stack, field, value):
    before = stack.probe.count("users")
    r = stack.post("/api/auth/signup", json=signup_body(**{field: value}))
    assert_error(r, 400)
    assert stack.probe.count("users") == before


def test_signup_accepts_values_at_the_bounds(stack):
    for name in ("a" + secrets.token_hex(1),
                 "Z." + secrets.token_hex(14) + "-_"):
        user, _ = stack.signup(username=name)
        assert user["username"] == name
    assert len(name) == 32
    stack.signup(password="p" * 8)
    stack.signup(password="p" * 128)
    email = long_valid_email(254)
    user, _ = stack.signup(email=email)
    assert user["email"] == email


@pytest.mark.parametrize("raw", [
    b"{not json",
    b'{"username": "abc",',
    b"",
    b"\x00",
])
def test_signup_invalid_json_is_400(stack, raw):
    r = stack.post("/api/auth/signup", data=raw,
                   headers={"Content-Type": "application/json"})
    assert_error(r, 400)
    if raw.strip(b"\x00"):
        assert r.json()["error"] == "Invalid JSON body"


@pytest.mark.parametrize("raw", [b"[]", b'"x"', b"42", b"null", b"true",
                                 b'[{"username":"abc"}]'])
def test_signup_json_that_is_not_an_object_is_400(stack, raw):
    r = stack.post("/api/auth/signup", data=raw,
                   headers={"Content-Type": "application/json"})
    assert_error(r, 400)


def test_signup_duplicate_json_keys_are_400(stack):
    name = unique_name()
    raw = ('{"username":"%s","email":"%s@example.com","password":"%s",'
           '"username":"other_%s"}' % (name, name, DEFAULT_PASSWORD, name))
    before = stack.probe.count("users")
    r = stack.post("/api/auth/signup", data=raw.encode(),
                   headers={"Content-Type": "application/json"})
    assert_error(r, 400)
    assert stack.probe.count("users") == before


def test_signup_stores_welcome_email_job_without_password(stack):
    password = "Welcome-" + secrets.token_hex(8)
    user, _ = stack.signup(password=password)
    stored_hash = stack.probe.user(user["_id"])["password"]
    jobs = stack.probe.jobs(containing=user["email"])
    assert len(jobs) == 1, jobs
    job = jobs[0]
    assert job["kind"] == "email"
    # the job runner may already have picked it up; it is never lost
    assert job["state"] in ("pending", "running", "done"), job
    payload = job["payload"]
    text = json.dumps(payload)
    assert payload.get("template") == "welcome", payload
    assert user["email"] in text
    assert password not in text
    assert stored_hash not in text
    assert "$2b$" not in text
    assert not contains_key(payload, "password")


# --- login ----------------------------------------------------------------

def test_login_by_email_or_username_in_any_case(stack):
    user, _ = stack.signup()
    for ident in (user["email"], user["email"].upper(), user["username"],
                  user["username"].upper()):
        r = stack.post("/api/auth/login",
                       json={"identifier": ident, "password": DEFAULT_PASSWORD})
        assert r.status_code == 200, (ident, r.text)
        body = r.json()
        assert body["user"]["_id"] == user["_id"]
        assert body["user"]["status"] == "online"
        assert not contains_key(body, "password")
        assert stack.get("/api/auth/users", token=body["token"]) \
            .status_code == 403     # a working token, for a plain user


def test_login_accepts_email_field_like_the_original_clients(stack):
    user, _ = stack.signup()
    r = stack.post("/api/auth/login",
                   json={"email": user["email"], "password": DEFAULT_PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["_id"] == user["_id"]


def test_login_sets_status_online(stack):
    user, token = stack.signup()
    r = stack.patch("/api/auth/status", token=token,
                    json={"status": "offline"})
    assert r.status_code == 200, r.text
    assert stack.probe.user(user["_id"])["status"] == "offline"
    logged, _ = stack.login(user["username"])
    assert logged["status"] == "online"
    assert stack.probe.user(user["_id"])["status"] == "online"


def test_login_unknown_user_and_wrong_password_give_same_401(stack):
    user, _ = stack.signup()
    wrong = stack.post("/api/auth/login", json={
        "identifier": user["username"], "password": "not-the-password"})
    unknown = stack.post("/api/auth/login", json={
        "identifier": unique_name("ghost"), "password": "not-the-password"})
    assert_error(wrong, 401, "Invalid credentials")
    assert_error(unknown, 401, "Invalid credentials")
    assert wrong.text == unknown.text


@pytest.mark.parametrize("body", [
    {"password": DEFAULT_PASSWORD},
    {"identifier": "someone"},
    {"identifier": 42, "password": DEFAULT_PASSWORD},
    {"identifier": "someone", "password": None},
    {"identifier": ["someone"], "password": DEFAULT_PASSWORD},
])
def test_login_missing_or_wrong_type_fields_are_400(stack, body):
    assert_error(stack.post("/api/auth/login", json=body), 400)


def test_lockout_after_five_failures_even_with_correct_password(stack):
    user, _ = stack.signup()
    for i in range(5):
        r = stack.post("/api/auth/login", json={
            "identifier": user["username"], "password": "wrong-%d" % i})
        assert_error(r, 401, "Invalid credentials")
    r = stack.post("/api/auth/login", json={
        "identifier": user["username"], "password": DEFAULT_PASSWORD})
    assert_error(r, 429,
                 "Too many failed login attempts, please try again later.")
    retry = int(r.headers["Retry-After"])
    assert 0 < retry <= 15 * 60
    # another account is not affected
    other, _ = stack.signup()
    stack.login(other["username"])


def test_lockout_counts_the_identifier_case_insensitively(stack):
    user, _ = stack.signup()
    name = user["username"]
    for i, ident in enumerate([name, name.upper(), name, name.upper(), name]):
        r = stack.post("/api/auth/login",
                       json={"identifier": ident, "password": "wrong-%d" % i})
        assert_error(r, 401, "Invalid credentials")
    r = stack.post("/api/auth/login", json={
        "identifier": user["username"].lower(), "password": DEFAULT_PASSWORD})
    assert_error(r, 429,
                 "Too many failed login attempts, please try again later.")


def test_lockout_applies_to_unknown_identifier_too(stack):
    ghost = unique_name("ghost")
    for i in range(5):
        r = stack.post("/api/auth/login",
                       json={"identifier": ghost, "password": "pw-%d" % i})
        assert_error(r, 401, "Invalid credentials")
    r = stack.post("/api/auth/login",
                   json={"identifier": ghost, "password": "pw-x"})
    assert_error(r, 429,
                 "Too many failed login attempts, please try again later.")
    assert int(r.headers["Retry-After"]) > 0


LOCKED = "Too many failed login attempts, please try again later."


def test_lockout_is_per_account_username_and_email_share_it(stack):
    user, _ = stack.signup()
    idents = [user["username"], user["email"], user["username"].upper(),
              user["email"].upper(), user["email"]]
    for i, ident in enumerate(idents):
        r = stack.post("/api/auth/login",
                       json={"identifier": ident, "password": "wrong-%d" % i})
        assert_error(r, 401, "Invalid credentials")
    # five failures spread over both names lock the account under both
    for ident in (user["username"], user["email"]):
        r = stack.post("/api/auth/login", json={
            "identifier": ident, "password": DEFAULT_PASSWORD})
        assert_error(r, 429, LOCKED)
        assert int(r.headers["Retry-After"]) > 0


def test_lockout_unknown_identifiers_each_keep_their_own_count(stack):
    ghost = unique_name("ghost")
    for i in range(4):
        r = stack.post("/api/auth/login",
                       json={"identifier": ghost, "password": "pw-%d" % i})
        assert_error(r, 401, "Invalid credentials")
    # another unknown name is not the same counter: answered like any
    r = stack.post("/api/auth/login", json={
        "identifier": "%s@example.com" % ghost, "password": "pw-x"})
    assert_error(r, 401, "Invalid credentials")
    r = stack.post("/api/auth/login",
                   json={"identifier": ghost, "password": "pw-4"})
    assert_error(r, 401, "Invalid credentials")
    r = stack.post("/api/auth/login",
                   json={"identifier": ghost, "password": "pw-5"})
    assert_error(r, 429, LOCKED)


def test_concurrent_wrong_passwords_get_no_more_guesses_than_allowed(
        make_stack):
    # cost 10 (~50 ms a hash): the guesses overlap in the password pools
    # of both workers, the race a check-then-count would lose
    st = make_stack(BCRYPT_COST="10")
    user, _ = st.signup()
    start = threading.Barrier(30)

    def guess(i):
        start.wait()
        return st.post("/api/auth/login", json={
            "identifier": user["email"] if i % 2 else user["username"],
            "password": "wrong-%d" % i})

    with ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(guess, range(30)))
    statuses = sorted(r.status_code for r in answers)
    # a 401 is a password that was checked: exactly the five allowed
    assert statuses.count(401) == 5, statuses
    assert statuses.count(429) == 25, statuses
    for r in answers:
        assert_error(r, r.status_code)
    r = st.post("/api/auth/login", json={
        "identifier": user["username"], "password": DEFAULT_PASSWORD})
    assert_error(r, 429, LOCKED)


def test_lockout_lifts_after_the_lock_time(make_stack):
    st = make_stack(LOCKOUT="failures=3 window=15m lock=2s")
    user, _ = st.signup()
    for i in range(3):
        st.login(user["username"], "wrong-%d" % i, expect=401)
    r = st.post("/api/auth/login", json={
        "identifier": user["username"], "password": DEFAULT_PASSWORD})
    assert_error(r, 429)
    assert 0 < int(r.headers["Retry-After"]) <= 2
    locked_at = time.monotonic()
    time.sleep(2.2)
    deadline = locked_at + 5
    while True:
        r = st.post("/api/auth/login", json={
            "identifier": user["username"], "password": DEFAULT_PASSWORD})
        if r.status_code != 429 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["_id"] == user["_id"]


# --- passwords from the original app --------------------------------------

def insert_user(stack, password_hash):
    uid = secrets.token_hex(12)
    name = unique_name("legacy")
    now = int(time.time() * 1000)
    stack.probe.insert("users", _id=uid, username=name,
                       email="%s@example.com" % name, password=password_hash,
                       role="user", skills=[], status="offline",
                       createdAt=now, updatedAt=now)
    return uid, name


@pytest.mark.parametrize("password,hashed", [
    (NODE_PASSWORD, NODE_HASH_2B),
    (NODE_PASSWORD, NODE_HASH_2A),
    (OPENBSD_PASSWORD, OPENBSD_HASH),
], ids=["bcryptjs-2b-cost10", "bcryptjs-2a-cost10", "openbsd-2a-cost5"])
def test_login_verifies_hash_made_by_the_original_app(stack, password, hashed):
    uid, name = insert_user(stack, hashed)
    stack.login(name, "wrong " + password, expect=401)
    user, token = stack.login(name, password)
    assert user["_id"] == uid
    assert user["status"] == "online"
    r = stack.patch("/api/auth/status", token=token, json={"status": "dnd"})
    assert r.status_code == 200, r.text


def test_cost_10_stack_verifies_node_hash_and_hashes_at_cost_10(make_stack):
    """The production cost: an original-app hash logs in, and new
    passwords get $2b$10$ like the original's."""
    st = make_stack(BCRYPT_COST="10")
    uid, name = insert_user(st, NODE_HASH_2B)
    user, _ = st.login(name, NODE_PASSWORD)
    assert user["_id"] == uid
    st.login(name, NODE_PASSWORD + "x", expect=401)
    fresh, _ = st.signup()
    row = st.probe.user(fresh["_id"])
    assert row["password"].startswith("$2b$10$"), row["password"]


# --- presence -------------------------------------------------------------

@pytest.mark.parametrize("status", ["online", "offline", "dnd"])
def test_status_update_returns_and_stores_presence(stack, status):
    user, token = stack.signup()
    sio = Sio(stack.port, token=stack.admin_token)
    try:
        r = stack.patch("/api/auth/status", token=token,
                        json={"status": status})
        assert r.status_code == 200, r.text
        data = status_event(sio, user["_id"], status)
    finally:
        sio.close()
    body = r.json()
    assert body["status"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert ISO_Z.match(body["lastSeen"]), body
    assert stack.probe.user(user["_id"])["status"] == status
    assert data["lastSeen"] == body["lastSeen"], data


@pytest.mark.parametrize("body", [
    {"status": "away"}, {"status": "ONLINE"}, {"status": 1},
    {"status": None}, {"status": ["online"]}, {},
])
def test_status_update_rejects_bad_values(stack, body):
    user, token = stack.signup()
    r = stack.patch("/api/auth/status", token=token, json=body)
    assert_error(r, 400)
    assert stack.probe.user(user["_id"])["status"] == "online"


def test_signup_and_login_emit_user_status_changed(stack):
    sio = Sio(stack.port, token=stack.admin_token)
    try:
        user, _ = stack.signup()
        status_event(sio, user["_id"], "online")
        stack.login(user["email"])
        status_event(sio, user["_id"], "online")
    finally:
        sio.close()


# --- hostile input --------------------------------------------------------

INJECTION_STRINGS = [
    "' OR 1=1 --",
    "admin'--",
    "\"; DROP TABLE users; --",
    "x\u0000y",
    "a" * 20000,
    "%00%27",
    "${jndi:ldap://x}",
]


def signup_injection_cases():
    for field in ("username", "email", "password"):
        for value in INJECTION_STRINGS + [{"$gt": ""}]:
            if field == "password" and isinstance(value, str) \
                    and 8 <= len(value) <= 128 and "\u0000" not in value:
                continue        # a valid password, whatever it looks like
            yield pytest.param(field, value,
                               id="%s-%s" % (field, repr(value)[:20]))


@pytest.mark.parametrize("field,value", signup_injection_cases())
def test_signup_injection_shaped_input_is_rejected(stack, field, value):
    before = stack.probe.count("users")
    r = stack.post("/api/auth/signup", json=signup_body(**{field: value}))
    assert r.status_code in (400, 401), (r.status_code, r.text[:300])
    assert_error(r, r.status_code)
    assert stack.probe.count("users") == before


@pytest.mark.parametrize("field", ["identifier", "password"])
@pytest.mark.parametrize("value", INJECTION_STRINGS + [{"$gt": ""},
                                                       {"$ne": None}],
                         ids=lambda v: repr(v)[:20])
def test_login_injection_shaped_input_never_logs_in(stack, field, value):
    user, _ = stack.signup()
    body = {"identifier": user["username"], "password": DEFAULT_PASSWORD}
    body[field] = value
    before = stack.probe.count("users")
    r = stack.post("/api/auth/login", json=body)
    assert r.status_code in (400, 401), (r.status_code, r.text[:300])
    assert_error(r, r.status_code)
    assert "token" not in r.json()
    assert stack.probe.count("users") == before


@pytest.mark.parametrize("path", ["/api/auth/signup", "/api/auth/login"])
def test_invalid_utf8_body_is_400(stack, path):
    before = stack.probe.count("users")
    raw = (b'{"username":"bad\xff\xfe","identifier":"bad\xc3\x28",'
           b'"email":"x\xe2\x82@example.com","password":"Passw0rd-\xf0\x28"}')
    r = stack.post(path, data=raw, headers={"Content-Type": "application/json"})
    assert_error(r, 400)
    assert stack.probe.count("users") == before


# --- concurrency ----------------------------------------------------------

def run_concurrently(stack, bodies):
    barrier = threading.Barrier(len(bodies))

    def one(body):
        barrier.wait(10)
        return requests.post(stack.url("/api/auth/signup"), json=body,
                             timeout=30)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(one, bodies))


@needs_unique_indexes
def test_concurrent_signups_with_same_email_create_one_user(stack):
    email = "%s@example.com" % unique_name("race")
    before = stack.probe.count("users")
    responses = run_concurrently(stack, [
        signup_body(username=unique_name(), email=email) for _ in range(20)])
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) == 1, codes
    assert codes.count(409) == 19, codes
    for r in responses:
        if r.status_code == 409:
            assert_error(r, 409, "Email already registered")
    assert stack.probe.count("users") == before + 1
    assert stack.probe.count("users", email=email) == 1


def test_concurrent_distinct_signups_all_succeed(stack):
    before = stack.probe.count("users")
    bodies = [signup_body() for _ in range(20)]
    responses = run_concurrently(stack, bodies)
    assert [r.status_code for r in responses] == [200] * 20, \
        [(r.status_code, r.text[:100]) for r in responses]
    ids = {r.json()["user"]["_id"] for r in responses}
    assert len(ids) == 20
    assert stack.probe.count("users") == before + 20

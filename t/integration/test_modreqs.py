"""Moderator requests: applying (skills normalised, identity from the
account, one pending at a time, the 72 h cooldown after a rejection),
the admin's list and decisions, and the email jobs."""

import re
import threading

import pytest

from conftest import assert_error

OID = re.compile(r"^[0-9a-f]{24}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
REQUEST_KEYS = {"_id", "applicant", "username", "email", "skills", "status",
                "reviewedBy", "createdAt", "updatedAt", "rejectedAt"}
PERSON_KEYS = {"_id", "email", "username", "status"}
HOUR_MS = 3600 * 1000


def apply(stack, token, skills, **extra):
    body = {"skills": skills}
    body.update(extra)
    return stack.post("/api/mod-requests", token=token, json=body)


def applied(stack, token, skills="linux"):
    r = apply(stack, token, skills)
    assert r.status_code == 201, r.text
    return r.json()["request"]


def decide(stack, token, request_id, action, alias=False):
    if alias:
        return stack.patch("/api/mod-requests/" + request_id, token=token,
                           json={"action": action})
    return stack.post("/api/mod-requests/%s/decide" % request_id, token=token,
                      json={"action": action})


def me(stack, token):
    r = stack.get("/api/mod-requests/me", token=token)
    assert r.status_code == 200, r.text
    return r.json()


def role_of(stack, user_id):
    return stack.probe.user(user_id)["role"]


def skills_of(stack, user_id):
    return stack.probe.user(user_id)["skills"]


def email_jobs(stack, email):
    return len(stack.probe.jobs(kind="email", containing=email))


def admin_emails(stack):
    return [u["email"] for u in stack.probe.users(role="admin")]


# --- applying ---------------------------------------------------------------

def test_apply_with_comma_string_normalises_skills(stack):
    user, token = stack.signup()
    r = apply(stack, token, " Go, rust ,GO,, Linux ")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["message"] == "Request created"
    req = body["request"]
    assert REQUEST_KEYS <= set(req), sorted(req)
    assert OID.match(req["_id"])
    assert req["applicant"] == user["_id"]
    assert req["username"] == user["username"]
    assert req["email"] == user["email"]
    assert req["skills"] == ["go", "rust", "linux"]
    assert req["status"] == "pending"
    assert req["reviewedBy"] is None and req["rejectedAt"] is None
    assert ISO.match(req["createdAt"]) and ISO.match(req["updatedAt"])
    row = stack.probe.modreq(req["_id"])
    assert row["applicant"] == user["_id"] and row["status"] == "pending"
    assert row["skills"] == ["go", "rust", "linux"]


def test_apply_with_array_normalises_skills(stack):
    _, token = stack.signup()
    req = applied(stack, token, [" Java ", "JAVA", "Python", "python ", "C"])
    assert req["skills"] == ["java", "python", "c"]


def test_apply_takes_username_and_email_from_the_account(stack):
    user, token = stack.signup()
    r = apply(stack, token, "docker", username="someone_else",
              email="forged@example.com")
    if r.status_code == 400:        # refusing the extra keys is fine too
        return
    assert r.status_code == 201, r.text
    req = r.json()["request"]
    assert req["username"] == user["username"]
    assert req["email"] == user["email"]
    row = stack.probe.modreq(req["_id"])
    assert (row["username"], row["email"]) == (user["username"],
                                               user["email"])


@pytest.mark.parametrize("skills", [
    "", "  ", " , ,, ", [], [""], ["  "], 5, None, {"go": 1}, [1, "go"],
    [["go"]], ["s%d" % i for i in range(51)],
    ",".join("s%d" % i for i in range(51)),
])
def test_apply_rejects_invalid_skills_with_400(stack, skills):
    user, token = stack.signup()
    assert_error(apply(stack, token, skills), 400)
    assert stack.probe.modreqs(applicant=user["_id"]) == []


def test_apply_accepts_exactly_50_skills(stack):
    _, token = stack.signup()
    req = applied(stack, token, ["s%d" % i for i in range(50)])
    assert req["skills"] == ["s%d" % i for i in range(50)]


def test_apply_without_skills_is_400(stack):
    _, token = stack.signup()
    assert_error(stack.post("/api/mod-requests", token=token, json={}), 400)


def test_admin_and_moderator_cannot_apply(stack, admin):
    _, admin_token = admin
    _, mod_token = stack.make_user("moderator", prefix="mod")
    for tok in (admin_token, mod_token):
        assert_error(apply(stack, tok, "linux"), 400)


def test_second_application_while_pending_is_400(stack):
    user, token = stack.signup()
    applied(stack, token, "go")
    assert_error(apply(stack, token, "rust"), 400)
    assert len(stack.probe.modreqs(applicant=user["_id"])) == 1


def test_apply_needs_a_token(stack):
    assert_error(stack.post("/api/mod-requests", json={"skills": "go"}), 401,
                 "Access Denied. No token found.")


def test_ten_concurrent_applications_create_one_request(stack):
    user, token = stack.signup()
    results = []
    lock = threading.Lock()
    barrier = threading.Barrier(10)

    def go(i):
        barrier.wait()
        r = apply(stack, token, "skill%d" % i)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results)
    assert codes == [201] + [400] * 9, [(r.status_code, r.text)
                                        for r in results]
    for r in results:
        if r.status_code == 400:
            assert_error(r, 400)
    rows = stack.probe.modreqs(applicant=user["_id"])
    assert [r["status"] for r in rows] == ["pending"]


def test_apply_emails_the_applicant_and_every_admin(stack):
    user, token = stack.signup()
    admins = admin_emails(stack)
    assert admins
    before = {e: email_jobs(stack, e) for e in admins}
    mine = email_jobs(stack, user["email"])
    applied(stack, token, "go")
    assert email_jobs(stack, user["email"]) == mine + 1
    for e in admins:
        assert email_jobs(stack, e) == before[e] + 1, e


# --- me ---------------------------------------------------------------------

def test_me_without_request(stack):
    _, token = stack.signup()
    assert me(stack, token) == {"request": None, "cooldownHours": 0}


def test_me_shows_the_pending_request(stack):
    user, token = stack.signup()
    req = applied(stack, token, "Go, SQL")
    got = me(stack, token)
    assert got["cooldownHours"] == 0
    assert got["request"]["_id"] == req["_id"]
    assert got["request"]["status"] == "pending"
    assert got["request"]["skills"] == ["go", "sql"]
    assert got["request"]["applicant"] == user["_id"]


def test_me_needs_a_token(stack):
    assert_error(stack.get("/api/mod-requests/me"), 401)


# --- the admin's list -------------------------------------------------------

def test_admin_lists_pending_newest_first_with_applicant(stack, admin):
    _, admin_token = admin
    people = [stack.signup() for _ in range(3)]
    reqs = [applied(stack, tok, "go") for _, tok in people]
    now = stack.now_ms()
    # createdAt: reqs[1] newest, then reqs[0], then reqs[2]
    for req, age in zip(reqs, (2, 1, 3)):
        assert stack.probe.set_fields("moderatorrequests", req["_id"],
                                      createdAt=now - age * 60000) == 1
    decided, decided_token = stack.signup()
    done = applied(stack, decided_token, "c")
    assert decide(stack, admin_token, done["_id"],
                  "reject").status_code == 200

    r = stack.get("/api/mod-requests", token=admin_token)
    assert r.status_code == 200, r.text
    listed = r.json()["requests"]
    assert all(x["status"] == "pending" for x in listed), listed
    pending = stack.probe.count("moderatorrequests", status="pending")
    assert len(listed) == pending
    listed_ids = [x["_id"] for x in listed]
    assert done["_id"] not in listed_ids
    mine = [i for i in listed_ids if i in {q["_id"] for q in reqs}]
    assert mine == [reqs[1]["_id"], reqs[0]["_id"], reqs[2]["_id"]]
    stamps = [x["createdAt"] for x in listed]
    assert stamps == sorted(stamps, reverse=True)
    by_id = {x["_id"]: x for x in listed}
    for (user, _), req in zip(people, reqs):
        applicant = by_id[req["_id"]]["applicant"]
        assert set(applicant) == PERSON_KEYS, applicant
        assert applicant["_id"] == user["_id"]
        assert applicant["email"] == user["email"]
        assert applicant["username"] == user["username"]
    assert "password" not in r.text


def test_list_is_403_for_user_and_moderator(stack):
    _, token = stack.signup()
    _, mod_token = stack.make_user("moderator", prefix="mod")
    for tok in (token, mod_token):
        assert_error(stack.get("/api/mod-requests", token=tok), 403)


# --- deciding ---------------------------------------------------------------

@pytest.mark.parametrize("alias", [False, True])
def test_accept_makes_a_moderator_and_merges_skills(stack, admin, alias):
    admin_user, admin_token = admin
    user, token = stack.signup(skills=["Linux", "Go"])
    req = applied(stack, token, "GO, Python")
    before = email_jobs(stack, user["email"])
    r = decide(stack, admin_token, req["_id"], "accept", alias=alias)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"] == "Request processed"
    assert body["request"]["_id"] == req["_id"]
    assert body["request"]["status"] == "accepted"
    reviewer = body["request"]["reviewedBy"]
    if isinstance(reviewer, dict):
        reviewer = reviewer.get("_id")
    assert reviewer == admin_user["_id"], body
    assert role_of(stack, user["_id"]) == "moderator"
    skills = skills_of(stack, user["_id"])
    assert sorted(s.lower() for s in skills) == ["go", "linux", "python"], \
        skills
    row = stack.probe.modreq(req["_id"])
    assert (row["status"], row["reviewedBy"]) == ("accepted",
                                                  admin_user["_id"])
    assert email_jobs(stack, user["email"]) == before + 1
    # the role is re-read: the same token now acts as a moderator
    assert_error(apply(stack, token, "more"), 400)
    assert me(stack, token)["request"]["status"] == "accepted"


@pytest.mark.parametrize("alias", [False, True])
def test_deciding_twice_is_400(stack, admin, alias):
    _, admin_token = admin
    _, token = stack.signup()
    req = applied(stack, token)
    assert decide(stack, admin_token, req["_id"], "accept",
                  alias=alias).status_code == 200
    for action in ("accept", "reject"):
        assert_error(decide(stack, admin_token, req["_id"], action,
                            alias=alias), 400)
        assert_error(decide(stack, admin_token, req["_id"], action,
                            alias=not alias), 400)
    assert stack.probe.modreq(req["_id"])["status"] == "accepted"


@pytest.mark.parametrize("alias", [False, True])
def test_reject_starts_a_72_hour_cooldown(stack, admin, alias):
    _, admin_token = admin
    user, token = stack.signup()
    req = applied(stack, token)
    before = email_jobs(stack, user["email"])
    r = decide(stack, admin_token, req["_id"], "reject", alias=alias)
    assert r.status_code == 200, r.text
    got = r.json()["request"]
    assert got["status"] == "rejected"
    assert ISO.match(got["rejectedAt"]), got
    assert role_of(stack, user["_id"]) == "user"
    assert email_jobs(stack, user["email"]) == before + 1

    r = apply(stack, token, "go")
    body = assert_error(r, 400)
    assert isinstance(body.get("cooldownHours"), int), body
    assert body["cooldownHours"] == 72, body
    status = me(stack, token)
    assert isinstance(status["cooldownHours"], int), status
    assert status["cooldownHours"] == 72
    assert status["request"]["status"] == "rejected"


def test_cooldown_hours_are_rounded_up(stack, admin):
    _, admin_token = admin
    user, token = stack.signup()
    req = applied(stack, token)
    assert decide(stack, admin_token, req["_id"], "reject").status_code == 200
    # rejected 70.5 h ago: 1.5 h left -> 2
    assert stack.probe.set_fields(
        "moderatorrequests", req["_id"],
        rejectedAt=stack.now_ms() - int(70.5 * HOUR_MS)) == 1
    body = assert_error(apply(stack, token, "go"), 400)
    assert body["cooldownHours"] == 2, body
    assert me(stack, token)["cooldownHours"] == 2
    # 71 h 59 min ago: 1 min left -> 1
    assert stack.probe.set_fields(
        "moderatorrequests", req["_id"],
        rejectedAt=stack.now_ms() - 72 * HOUR_MS + 60000) == 1
    body = assert_error(apply(stack, token, "go"), 400)
    assert body["cooldownHours"] == 1, body


def test_reapply_after_the_cooldown(stack, admin):
    _, admin_token = admin
    user, token = stack.signup()
    req = applied(stack, token)
    assert decide(stack, admin_token, req["_id"], "reject").status_code == 200
    assert stack.probe.set_fields(
        "moderatorrequests", req["_id"],
        rejectedAt=stack.now_ms() - 73 * HOUR_MS) == 1
    assert me(stack, token)["cooldownHours"] == 0
    again = applied(stack, token, "Rust")
    assert again["_id"] != req["_id"]
    assert again["skills"] == ["rust"]
    got = me(stack, token)
    assert got["request"]["_id"] == again["_id"]      # the latest
    assert got["cooldownHours"] == 0
    assert len(stack.probe.modreqs(applicant=user["_id"])) == 2


def test_concurrent_decisions_process_a_request_once(stack, admin):
    _, admin_token = admin
    second, second_token = stack.make_user("admin", prefix="adm")
    try:
        user, token = stack.signup()
        req = applied(stack, token)
        before = email_jobs(stack, user["email"])
        results = []
        lock = threading.Lock()
        barrier = threading.Barrier(8)

        def go(i):
            barrier.wait()
            r = decide(stack, (admin_token, second_token)[i % 2], req["_id"],
                       ("accept", "reject")[(i // 2) % 2], alias=i >= 4)
            with lock:
                results.append(r)

        threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r.status_code for r in results)
        assert codes == [200] + [400] * 7, [(r.status_code, r.text)
                                            for r in results]
        [winner] = [r for r in results if r.status_code == 200]
        final = winner.json()["request"]["status"]
        assert stack.probe.modreq(req["_id"])["status"] == final
        assert role_of(stack, user["_id"]) == (
            "moderator" if final == "accepted" else "user")
        assert email_jobs(stack, user["email"]) == before + 1
    finally:
        r = stack.post("/api/auth/update-user", token=admin_token,
                       json={"email": second["email"], "role": "user"})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("action", ["approve", "", "ACCEPTED", 5, None,
                                    ["accept"], {"$ne": None}])
def test_invalid_action_is_400(stack, admin, action):
    _, admin_token = admin
    _, token = stack.signup()
    req = applied(stack, token)
    for alias in (False, True):
        assert_error(decide(stack, admin_token, req["_id"], action,
                            alias=alias), 400)
    assert_error(stack.post("/api/mod-requests/%s/decide" % req["_id"],
                            token=admin_token, json={}), 400)
    assert stack.probe.modreq(req["_id"])["status"] == "pending"


@pytest.mark.parametrize("bad", ["123", "zzzzzzzzzzzzzzzzzzzzzzzz",
                                 "ffffffffffffffffffffffff",
                                 "0123456789abcdef01234567f"])
def test_decide_malformed_or_unknown_id_is_404(stack, admin, bad):
    _, admin_token = admin
    for alias in (False, True):
        assert_error(decide(stack, admin_token, bad, "accept", alias=alias),
                     404)


def test_decide_is_403_for_user_and_moderator(stack):
    applicant, token = stack.signup()
    req = applied(stack, token)
    _, other_token = stack.signup()
    _, mod_token = stack.make_user("moderator", prefix="mod")
    for tok in (token, other_token, mod_token):
        for alias in (False, True):
            assert_error(decide(stack, tok, req["_id"], "accept",
                                alias=alias), 403)
    assert role_of(stack, applicant["_id"]) == "user"
    assert stack.probe.modreq(req["_id"])["status"] == "pending"

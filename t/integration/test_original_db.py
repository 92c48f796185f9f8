"""The MongoDB backend opens the original Node app's database, and keeps its
jobs without transactions.

A database written the way Mongoose writes it (t/fixtures/original_db.py:
ObjectIds, BSON dates, __v, bcryptjs cost-10 hashes, embedded comments, none
of this project's own fields) is served as is: its users log in with their
original passwords, their tickets list and open with comments and authors,
and the running system writes into it.  Then the job outbox: documents left
the way a writer that crashed between its two steps leaves them get their
jobs delivered exactly once.

MongoDB backend only (TEST_STORE=mongodb, or TEST_MONGODB_URI for a real
mongod); skipped on SQLite with that reason.
"""

import datetime
import sys
import time
from pathlib import Path

import pytest

from conftest import (BACKEND, Stack, _finish, assert_error, poll,
                      unique_name)

pytestmark = pytest.mark.skipif(
    BACKEND != "mongodb",
    reason="MongoDB backend only: run with TEST_STORE=mongodb "
           "(make integration-mongo) or TEST_MONGODB_URI")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def load_fixture(db):
    """t/fixtures/original_db.py's loader (imported here: it needs pymongo,
    which a SQLite-only machine may lack)."""
    sys.path.insert(0, str(FIXTURES))
    from original_db import load_fixture as load
    return load(db)


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """A stack over a database the original app wrote (loaded before the
    stack starts, as an operator pointing the new system at it would)."""
    st = Stack(tmp_path_factory.mktemp("original"), None)
    ids = load_fixture(st.probe.db)
    try:
        st.start()
    except BaseException:
        st.stop()
        raise
    st.ids = ids
    yield st
    _finish(st)


def login(st, who, ident=None):
    r = st.post("/api/auth/login", json={
        "identifier": ident or who, "password": st.ids["passwords"][who]})
    assert r.status_code == 200, (who, r.status_code, r.text)
    return r.json()


def test_original_users_log_in_with_their_passwords(original):
    st = original
    for who in st.ids["passwords"]:
        body = login(st, who)
        assert body["user"]["_id"] == st.ids["users"][who]
        assert body["user"]["username"] == who
        assert "password" not in body["user"]
        assert body["token"]


def test_login_by_email_and_any_case(original):
    st = original
    assert login(st, "alice", "ALICE@example.com")["user"]["username"] \
        == "alice"
    assert login(st, "Bob.Builder", "bob.builder")["user"]["_id"] \
        == st.ids["users"]["Bob.Builder"]


def test_wrong_password_is_refused(original):
    r = original.post("/api/auth/login", json={"identifier": "alice",
                                                "password": "not-hers-1"})
    assert_error(r, 401, "Invalid credentials")


def test_roles_and_stats_are_the_originals(original):
    st = original
    admin = login(st, "founder")
    assert admin["user"]["role"] == "admin"
    r = st.get("/api/auth/users", token=admin["token"])
    assert r.status_code == 200, r.text
    users = {u["username"]: u for u in r.json()}
    assert set(st.ids["users"]) <= set(users)
    maria = users["mod_maria"]
    assert maria["role"] == "moderator"
    assert maria["skills"] == ["React", "Node.js", "MongoDB"]
    assert maria["totalTicketsResolved"] == 3
    assert maria["averageResolutionTimeHours"] == 18.5
    assert users["alice"]["averageResolutionTimeHours"] == 24
    assert maria["createdAt"].endswith("Z")


def test_user_lists_own_tickets_with_people_populated(original):
    st = original
    alice = login(st, "alice")
    r = st.get("/api/tickets", token=alice["token"])
    assert r.status_code == 200, r.text
    body = r.json()
    got = {t["_id"]: t for t in body["tickets"]}
    assert set(got) == {st.ids["tickets"]["login"],
                        st.ids["tickets"]["export"]}
    assert body["pagination"]["total"] == 2
    t = got[st.ids["tickets"]["login"]]
    assert t["createdBy"]["username"] == "alice"
    assert t["assignedTo"]["username"] == "mod_maria"
    assert t["priority"] == "High" and t["status"] == "In Progress"
    assert t["relatedSkills"] == ["React", "Node.js"]
    assert got[st.ids["tickets"]["export"]]["assignedTo"] is None
    # newest update first
    updated = [x["updatedAt"] for x in body["tickets"]]
    assert updated == sorted(updated, reverse=True)


def test_ticket_opens_with_comments_and_authors(original):
    st = original
    alice = login(st, "alice")
    tid = st.ids["tickets"]["login"]
    r = st.get("/api/tickets/%s" % tid, token=alice["token"])
    assert r.status_code == 200, r.text
    t = r.json()["ticket"]
    assert t["title"] == "Cannot log in after password reset"
    texts = [c["text"] for c in t["comments"]]
    assert texts == ["Can you tell me which browser you use?",
                     "Firefox 120 on Linux.",
                     "Thanks, we are looking into it."]
    authors = [c["author"]["username"] for c in t["comments"]]
    assert authors == ["mod_maria", "alice", "mod_maria"]
    assert t["comments"][0]["role"] is None        # written before roles
    assert t["comments"][1]["role"] == "user"
    r = st.get("/api/tickets/%s/comments" % tid, token=alice["token"])
    assert r.status_code == 200, r.text
    assert [c["author"]["_id"] for c in r.json()["comments"]] == [
        st.ids["users"]["mod_maria"], st.ids["users"]["alice"],
        st.ids["users"]["mod_maria"]]


def test_moderator_and_admin_scopes(original):
    st = original
    maria = login(st, "mod_maria")
    r = st.get("/api/tickets", token=maria["token"])
    assert {t["_id"] for t in r.json()["tickets"]} == {
        st.ids["tickets"]["login"], st.ids["tickets"]["dark"]}
    admin = login(st, "founder")
    r = st.get("/api/tickets?limit=100", token=admin["token"])
    assert {st.ids["tickets"][k] for k in ("login", "export", "dark")} <= {
        t["_id"] for t in r.json()["tickets"]}
    r = st.get("/api/tickets?status=Completed", token=admin["token"])
    assert [t["_id"] for t in r.json()["tickets"]] == [
        st.ids["tickets"]["dark"]]
    r = st.get("/api/tickets?search=CSV", token=admin["token"])
    assert [t["_id"] for t in r.json()["tickets"]] == [
        st.ids["tickets"]["export"]]


def test_new_writes_land_in_the_old_documents(original):
    st = original
    maria = login(st, "mod_maria")
    tid = st.ids["tickets"]["login"]
    r = st.post("/api/tickets/%s/comments" % tid, token=maria["token"],
                json={"text": "Fixed on our side, please retry."})
    assert r.status_code == 200, r.text
    assert r.json()["comments"][-1]["author"]["username"] == "mod_maria"
    doc = st.probe.db.tickets.find_one({"_id": _oid(tid)})
    assert len(doc["comments"]) == 4 and doc["__v"] == 3
    assert isinstance(doc["comments"][-1]["createdAt"], datetime.datetime)
    assert not doc.get("pendingJobs")      # the email job was delivered
    assert st.probe.jobs(kind="email", containing=tid)


def test_pending_request_of_the_original_app_is_decided(original):
    st = original
    admin = login(st, "founder")
    r = st.get("/api/mod-requests", token=admin["token"])
    assert r.status_code == 200, r.text
    reqs = r.json()["requests"]
    assert [q["_id"] for q in reqs] == [st.ids["requests"]["bob"]]
    assert reqs[0]["applicant"]["username"] == "Bob.Builder"
    r = st.post("/api/mod-requests/%s/decide" % st.ids["requests"]["bob"],
                token=admin["token"], json={"action": "accept"})
    assert r.status_code == 200, r.text
    bob = login(st, "Bob.Builder")
    assert bob["user"]["role"] == "moderator"
    assert {s.lower() for s in bob["user"]["skills"]} == {"python", "django"}


def test_signup_next_to_original_users_is_a_plain_user(original):
    st = original
    user, token = st.signup()
    assert user["role"] == "user"
    # the original's usernames stay taken, whatever their case
    st.signup(username="ALICE", email="%s@example.com" % unique_name(),
              expect=409)
    st.signup(username=unique_name(), email="Maria@Example.com", expect=409)


# --- the job outbox: what a crashed writer leaves behind -------------------

def _oid(hexid):
    from bson import ObjectId
    return ObjectId(hexid)


def test_jobs_left_in_an_outbox_are_delivered_once(make_stack):
    """A writer that died after its ticket update and before moving the
    job into "jobs" (or after inserting it, before pulling it out) leaves
    pendingJobs behind; the sweep delivers each job exactly once."""
    from bson import ObjectId
    st = make_stack()
    _, token = st.signup()
    tid = st.create_ticket(token)["_id"]
    db = st.probe.db
    now = datetime.datetime.utcnow().replace(microsecond=0)

    def job(kind):
        return {"_id": ObjectId(), "kind": kind,
                "payload": {"template": "outbox-test", "ticketId": tid},
                "state": "pending", "attempts": 0, "maxAttempts": 5,
                "runAfter": now + datetime.timedelta(hours=1),
                "leaseUntil": None, "lastError": None, "dedupeKey": None,
                "createdAt": now, "updatedAt": now}

    lost, half = job("email"), job("email")
    db.jobs.insert_one(dict(half))        # inserted, never pulled out
    db.tickets.update_one({"_id": ObjectId(tid)},
                          {"$push": {"pendingJobs": {"$each": [lost, half]}}})
    st.restart_daemon()                   # the sweep runs at open

    def delivered():
        doc = db.tickets.find_one({"_id": ObjectId(tid)})
        return not doc.get("pendingJobs")
    assert poll(delivered, 10), db.tickets.find_one({"_id": ObjectId(tid)})
    for j in (lost, half):
        assert db.jobs.count_documents({"_id": j["_id"]}) == 1
    assert len(st.probe.jobs(containing="outbox-test")) == 2


def test_half_applied_stats_are_finished_once(make_stack):
    """Stats whose ticket flag flipped but whose moderator update did not
    happen (statsPending left) are applied by the sweep, once."""
    from bson import ObjectId
    st = make_stack()
    st.admin, st.admin_token = st.signup()            # the first: admin
    mod, _ = st.make_user("moderator", prefix="mod")
    _, token = st.signup()
    tid = st.create_ticket(token)["_id"]
    db = st.probe.db
    db.tickets.update_one({"_id": ObjectId(tid)}, {"$set": {
        "statsCounted": True, "assignedTo": ObjectId(mod["_id"]),
        "statsPending": {"moderator": ObjectId(mod["_id"]), "hours": 6.0}}})
    st.restart_daemon()
    assert poll(lambda: "statsPending" not in db.tickets.find_one(
        {"_id": ObjectId(tid)}), 10)
    u = db.users.find_one({"_id": ObjectId(mod["_id"])})
    assert u["totalTicketsResolved"] == 1
    assert abs(u["averageResolutionTimeHours"] - 6.0) < 1e-9
    st.restart_daemon()                               # a second sweep
    time.sleep(0.5)
    u = db.users.find_one({"_id": ObjectId(mod["_id"])})
    assert u["totalTicketsResolved"] == 1

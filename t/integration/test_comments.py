"""Comments on a ticket: who may open the conversation and who may reply,
text bounds, the populated answer, the comment_added event and the
notification-email jobs."""

import json
import re

import pytest

from conftest import assert_error, contains_key
from test_socketio import Sio

OID = re.compile(r"^[0-9a-f]{24}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
COMMENT_KEYS = {"_id", "author", "text", "role", "createdAt"}
PERSON_KEYS = {"_id", "email", "username", "status"}


def comment(stack, token, ticket_id, text):
    return stack.post("/api/tickets/%s/comments" % ticket_id, token=token,
                      json={"text": text})


def comments_of(stack, token, ticket_id):
    return stack.get("/api/tickets/%s/comments" % ticket_id, token=token)


def texts(r):
    return [c["text"] for c in r.json()["comments"]]


def check_comment(c, author, role, text):
    assert set(c) == COMMENT_KEYS, c
    assert OID.match(c["_id"]), c
    assert set(c["author"]) == PERSON_KEYS, c["author"]
    assert c["author"]["_id"] == author["_id"]
    assert c["author"]["email"] == author["email"]
    assert c["author"]["username"] == author["username"]
    assert c["role"] == role
    assert c["text"] == text
    assert ISO.match(c["createdAt"]), c


@pytest.fixture
def scene(stack):
    """A user's ticket assigned to a moderator, plus an outsider and an
    unassigned moderator."""
    creator, creator_token = stack.signup()
    mod, mod_token = stack.make_user("moderator", prefix="mod")
    other_mod, other_mod_token = stack.make_user("moderator", prefix="mod")
    stranger, stranger_token = stack.signup()
    t = stack.create_ticket(creator_token)
    stack.assign(t["_id"], mod["_id"])
    return dict(t=t["_id"], creator=creator, creator_token=creator_token,
                mod=mod, mod_token=mod_token, other_mod_token=other_mod_token,
                stranger_token=stranger_token)


def admins(stack):
    return [dict(r) for r in stack.sql(
        "SELECT _id, email FROM users WHERE role = 'admin'")]


def email_jobs_to(stack, email):
    return [j for j in stack.jobs(kind="email", containing=email)]


# --- who may comment --------------------------------------------------------

def test_creator_cannot_open_the_conversation(stack, scene):
    assert_error(comment(stack, scene["creator_token"], scene["t"],
                         "hello?"), 403)
    assert stack.sql("SELECT count(*) FROM comments WHERE ticket = ?",
                     (scene["t"],))[0][0] == 0


def test_assigned_moderator_opens_then_creator_replies(stack, scene):
    r = comment(stack, scene["mod_token"], scene["t"], "How can I help?")
    assert r.status_code == 200, r.text
    [c] = r.json()["comments"]
    check_comment(c, scene["mod"], "moderator", "How can I help?")

    r = comment(stack, scene["creator_token"], scene["t"], "It broke.")
    assert r.status_code == 200, r.text
    assert set(texts(r)) == {"How can I help?", "It broke."}
    by_text = {c["text"]: c for c in r.json()["comments"]}
    check_comment(by_text["It broke."], scene["creator"], "user",
                  "It broke.")
    check_comment(by_text["How can I help?"], scene["mod"], "moderator",
                  "How can I help?")
    assert not contains_key(r.json(), "password")
    rows = stack.sql("SELECT author, role, text FROM comments"
                     " WHERE ticket = ? ORDER BY createdAt", (scene["t"],))
    assert [(r["author"], r["role"]) for r in rows] == [
        (scene["mod"]["_id"], "moderator"), (scene["creator"]["_id"], "user")]


def test_admin_opens_the_conversation(stack, admin, scene):
    admin_user, admin_token = admin
    r = comment(stack, admin_token, scene["t"], "Admin here.")
    assert r.status_code == 200, r.text
    [c] = r.json()["comments"]
    check_comment(c, admin_user, "admin", "Admin here.")
    r = comment(stack, scene["creator_token"], scene["t"], "Thanks")
    assert r.status_code == 200, r.text
    assert len(r.json()["comments"]) == 2


def test_admin_opens_an_unassigned_ticket(stack, admin):
    _, admin_token = admin
    _, token = stack.signup()
    t = stack.create_ticket(token)["_id"]
    assert_error(comment(stack, token, t, "anyone?"), 403)
    assert comment(stack, admin_token, t, "yes").status_code == 200
    assert comment(stack, token, t, "great").status_code == 200


def test_stranger_and_unassigned_moderator_get_404(stack, scene):
    for tok in (scene["stranger_token"], scene["other_mod_token"]):
        assert_error(comment(stack, tok, scene["t"], "butting in"), 404)
        assert_error(comments_of(stack, tok, scene["t"]), 404)
    # also once the conversation is open
    assert comment(stack, scene["mod_token"], scene["t"],
                   "open").status_code == 200
    for tok in (scene["stranger_token"], scene["other_mod_token"]):
        assert_error(comment(stack, tok, scene["t"], "butting in"), 404)
        assert_error(comments_of(stack, tok, scene["t"]), 404)
    assert stack.sql("SELECT count(*) FROM comments WHERE ticket = ?",
                     (scene["t"],))[0][0] == 1


@pytest.mark.parametrize("bad", ["123", "zzzzzzzzzzzzzzzzzzzzzzzz",
                                 "ffffffffffffffffffffffff",
                                 "0123456789abcdef01234567f"])
def test_comment_on_malformed_or_unknown_ticket_is_404(stack, admin, bad):
    _, admin_token = admin
    assert_error(comment(stack, admin_token, bad, "hi"), 404)
    assert_error(comments_of(stack, admin_token, bad), 404)


def test_comment_needs_a_token(stack, scene):
    assert_error(stack.post("/api/tickets/%s/comments" % scene["t"],
                            json={"text": "x"}), 401)
    assert_error(stack.get("/api/tickets/%s/comments" % scene["t"]), 401)


# --- text -------------------------------------------------------------------

@pytest.mark.parametrize("text", ["x", "y" * 5000, "  padded  ",
                                  " " + "z" * 5000 + "\n"])
def test_comment_text_within_bounds_is_stored_trimmed(stack, scene, text):
    r = comment(stack, scene["mod_token"], scene["t"], text)
    assert r.status_code == 200, r.text
    assert texts(r) == [text.strip()]
    assert stack.sql("SELECT text FROM comments WHERE ticket = ?",
                     (scene["t"],))[0][0] == text.strip()


@pytest.mark.parametrize("body", [
    {"text": "w" * 5001}, {"text": ""}, {"text": "   \n\t "}, {},
    {"text": 5}, {"text": None}, {"text": ["hi"]}, {"text": {"$ne": None}},
    {"text": True},
])
def test_comment_text_out_of_bounds_or_wrong_type_is_400(stack, scene, body):
    r = stack.post("/api/tickets/%s/comments" % scene["t"],
                   token=scene["mod_token"], json=body)
    assert_error(r, 400)
    assert stack.sql("SELECT count(*) FROM comments WHERE ticket = ?",
                     (scene["t"],))[0][0] == 0


# --- reading ----------------------------------------------------------------

def test_everyone_who_sees_the_ticket_reads_the_comments(stack, admin, scene):
    _, admin_token = admin
    assert comments_of(stack, scene["creator_token"],
                       scene["t"]).json() == {"comments": []}
    comment(stack, scene["mod_token"], scene["t"], "first")
    comment(stack, scene["creator_token"], scene["t"], "second")
    for tok in (admin_token, scene["mod_token"], scene["creator_token"]):
        r = comments_of(stack, tok, scene["t"])
        assert r.status_code == 200, r.text
        assert sorted(texts(r)) == ["first", "second"]
        for c in r.json()["comments"]:
            assert set(c) == COMMENT_KEYS and set(c["author"]) == PERSON_KEYS
    one = stack.get("/api/tickets/" + scene["t"],
                    token=scene["creator_token"]).json()["ticket"]
    assert sorted(c["text"] for c in one["comments"]) == ["first", "second"]
    assert not contains_key(one, "password")


def test_comment_role_is_the_role_when_written(stack, admin, scene):
    _, admin_token = admin
    comment(stack, scene["mod_token"], scene["t"], "as moderator")
    r = stack.post("/api/auth/update-user", token=admin_token,
                   json={"email": scene["mod"]["email"], "role": "user"})
    assert r.status_code == 200, r.text
    r = comments_of(stack, scene["creator_token"], scene["t"])
    [c] = r.json()["comments"]
    assert c["role"] == "moderator"


# --- events and email -------------------------------------------------------

def test_comment_emits_comment_added_to_the_ticket_room(stack, scene):
    sio = Sio(stack.port, token=scene["creator_token"])
    try:
        assert sio.join(scene["t"]) == [{"ok": True, "room": "joined"}]
        r = comment(stack, scene["mod_token"], scene["t"], "event me")
        assert r.status_code == 200, r.text
        [payload] = sio.wait_event("comment_added", timeout=5)
    finally:
        sio.close()
    line = json.dumps(payload)
    assert payload["ticketId"] == scene["t"]
    check_comment(payload["comment"], scene["mod"], "moderator", "event me")
    assert payload["comment"]["_id"] == r.json()["comments"][0]["_id"]
    assert "password" not in line


def test_staff_comment_emails_the_creator(stack, admin, scene):
    _, admin_token = admin
    email = scene["creator"]["email"]
    before = len(email_jobs_to(stack, email))
    assert comment(stack, scene["mod_token"], scene["t"],
                   "from mod").status_code == 200
    assert len(email_jobs_to(stack, email)) == before + 1
    assert comment(stack, admin_token, scene["t"],
                   "from admin").status_code == 200
    assert len(email_jobs_to(stack, email)) == before + 2
    job = email_jobs_to(stack, email)[-1]
    assert job["state"] in ("pending", "running", "done"), job
    assert "password" not in json.dumps(job["payload"])


def test_creator_comment_emails_the_assignee_not_the_admins(stack, scene):
    assert comment(stack, scene["mod_token"], scene["t"],
                   "open").status_code == 200
    mod_email = scene["mod"]["email"]
    admin_before = {a["email"]: len(email_jobs_to(stack, a["email"]))
                    for a in admins(stack)}
    before = len(email_jobs_to(stack, mod_email))
    assert comment(stack, scene["creator_token"], scene["t"],
                   "reply").status_code == 200
    assert len(email_jobs_to(stack, mod_email)) == before + 1
    for email, n in admin_before.items():
        assert len(email_jobs_to(stack, email)) == n, email


def test_creator_comment_on_unassigned_ticket_emails_every_admin(stack,
                                                                  admin):
    _, admin_token = admin
    second_admin, _ = stack.make_user("admin", prefix="adm")
    try:
        _, token = stack.signup()
        t = stack.create_ticket(token)["_id"]
        assert comment(stack, admin_token, t, "open").status_code == 200
        every = admins(stack)
        assert len(every) >= 2
        before = {a["email"]: len(email_jobs_to(stack, a["email"]))
                  for a in every}
        assert comment(stack, token, t, "reply").status_code == 200
        for a in every:
            assert len(email_jobs_to(stack, a["email"])) == \
                before[a["email"]] + 1, a
    finally:
        r = stack.post("/api/auth/update-user", token=admin_token,
                       json={"email": second_admin["email"], "role": "user"})
        assert r.status_code == 200, r.text

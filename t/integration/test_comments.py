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
    stack.probe.assign(t["_id"], mod["_id"])
    return dict(t=t["_id"], creator=creator, creator_token=creator_token,
                mod=mod, mod_token=mod_token, other_mod_token=other_mod_token,
                stranger_token=stranger_token)


def admins(stack):
    return [{"_id": u["_id"], "email": u["email"]}
            for u in stack.probe.users(role="admin")]


def email_jobs_to(stack, email):
    return [j for j in stack.probe.jobs(kind="email", containing=email)]


# --- who may comment --------------------------------------------------------

def test_creator_cannot_open_the_conversation(stack, scene):
    assert_error(comment(stack, scene["creator_token"], scene["t"],
                         "hello?"), 403)
    assert stack.probe.comments(scene["t"]) == []


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
    rows = stack.probe.comments(scene["t"])
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
    assert len(stack.probe.comments(scene["t"])) == 1


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
    assert stack.probe.comments(scene["t"])[0]["text"] == text.strip()


@pytest.mark.parametrize("body", [
    {"text": "w" * 5001}, {"text": ""}, {"text": "   \n\t "}, {},
    {"text": 5}, {"text": None}, {"text": ["hi"]}, {"text": {"$ne": None}},
    {"text": True},
])
def test_comment_text_out_of_bounds_or_wrong_type_is_400(stack, scene, body):
    r = stack.post("/api/tickets/%s/comments" % scene["t"],
                   token=scene["mod_token"], json=body)
    assert_error(r, 400)
    assert stack.probe.comments(scene["t"]) == []


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


# --- text is Unicode (DESIGN §7) --------------------------------------------

# The bug report: an admin's Russian comment of ~300 characters got 500 and
# was lost (the mail excerpt was cut inside a character).
HELLO_RU = "Здравствуйте! " + "Привет " * 40
SCRIPTS = {
    "cyrillic": HELLO_RU,
    "cjk": "登录失败：无法访问我的账户。请帮忙！" * 5,
    "arabic": "لا يمكنني تسجيل الدخول منذ الأمس (login)",
    "emoji": "🙂🔥🚀 4-byte " * 20,
    "combining": "Cafe\u0301 re\u0301sume\u0301 Z\u0351\u0357a\u034cl\u0301g\u0312o",
    "zero_width": "zero\u200bwidth\u200c join\u200d\ufeff rtl\u200f mark",
}
EMOJI = "😀"          # U+1F600: one code point, 4 bytes of UTF-8


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_comment_in_any_script_comes_back_byte_identical(stack, admin,
                                                         scene, name):
    _, admin_token = admin
    text = SCRIPTS[name]
    r = comment(stack, admin_token, scene["t"], text)
    assert r.status_code == 200, r.text
    assert texts(r) == [text.strip()]
    for tok in (scene["creator_token"], scene["mod_token"]):
        assert texts(comments_of(stack, tok, scene["t"])) == [text.strip()]
    one = stack.get("/api/tickets/" + scene["t"],
                    token=scene["creator_token"]).json()["ticket"]
    assert [c["text"] for c in one["comments"]] == [text.strip()]
    [job] = email_jobs_to(stack, scene["creator"]["email"])[-1:]
    excerpt = job["payload"]["excerpt"]
    assert text.strip().startswith(excerpt) and len(excerpt) <= 200, excerpt
    assert len(excerpt) == min(200, len(text.strip()))


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_title_and_description_in_any_script_come_back_identical(
        stack, scene, name):
    title = SCRIPTS[name][:200].strip()
    description = (SCRIPTS[name] + "\n") * 3
    t = stack.create_ticket(scene["creator_token"], title, description)
    assert t["title"] == title
    assert t["description"] == description.strip()
    got = stack.get("/api/tickets/" + t["_id"],
                    token=scene["creator_token"]).json()["ticket"]
    assert (got["title"], got["description"]) == (title,
                                                   description.strip())
    listed = stack.get("/api/tickets?limit=100",
                       token=scene["creator_token"]).json()["tickets"]
    [row] = [x for x in listed if x["_id"] == t["_id"]]
    assert (row["title"], row["description"]) == (title,
                                                  description.strip())


@pytest.mark.parametrize("unit", [EMOJI, "e\u0301", "\u200b", "ж"])
def test_comment_limit_counts_code_points(stack, scene, unit):
    """5000 code points pass whatever their size in bytes (20000 for
    emoji); one more is 400 and nothing is stored.  A letter with a
    combining mark is two code points."""
    per = len(unit)
    text = (unit * (5000 // per + 1))[:5000]
    over = text + "x"
    r = comment(stack, scene["mod_token"], scene["t"], over)
    assert_error(r, 400)
    assert texts(comments_of(stack, scene["mod_token"], scene["t"])) == []
    r = comment(stack, scene["mod_token"], scene["t"], text)
    assert r.status_code == 200, r.text
    assert texts(r) == [text]


@pytest.mark.parametrize("field,limit,other", [
    ("title", 200, {"description": "d"}),
    ("description", 10000, {"title": "t"}),
])
def test_ticket_text_limits_count_code_points(stack, scene, field, limit,
                                              other):
    token = scene["creator_token"]

    def post(body):
        # raw UTF-8 (4 bytes an emoji), not \\ud83d\\ude00 escapes (12):
        # 10001 escaped emoji would pass the 100 KB body limit
        return stack.post("/api/tickets", token=token,
                          data=json.dumps(body, ensure_ascii=False).encode(),
                          headers={"Content-Type": "application/json"})

    body = dict(other, **{field: EMOJI * (limit + 1)})
    assert_error(post(body), 400)
    body[field] = EMOJI * limit
    r = post(body)
    assert r.status_code == 201, r.text
    assert r.json()["ticket"][field] == EMOJI * limit


def test_comment_mail_in_any_script_decodes_from_the_outbox(make_stack,
                                                            tmp_path):
    """With ticketd running jobs: the notification .eml is 7-bit MIME
    (RFC 2047 Subject, quoted-printable body, lines <= 76), and Python's
    email package decodes it to the ticket title in the Subject and a
    200-character prefix of the comment in the body."""
    from test_jobs import mails_to, outbox_mails, runner_stack
    st = runner_stack(make_stack, tmp_path)
    creator, token = st.signup()
    title = "Не могу войти 登录失败 🙂 " + "ж" * 150
    tid = st.create_ticket(token, title, "Пароль не подходит")["_id"]
    for text in (HELLO_RU, SCRIPTS["emoji"] * 3, SCRIPTS["combining"],
                 SCRIPTS["arabic"]):
        r = st.post("/api/tickets/%s/comments" % tid, token=st.admin_token,
                    json={"text": text})
        assert r.status_code == 200, r.text
    assert set(st.wait_jobs_settled()) == {"done"}, st.probe.jobs(kind="email")
    mails = [m for m in mails_to(outbox_mails(st.outbox), creator["email"])
             if str(m["Subject"]).startswith("New comment")]
    assert len(mails) == 4, outbox_mails(st.outbox)
    subject = 'New comment on "%s"' % title
    excerpts = []
    for m in mails:
        assert str(m["Subject"]) == subject[:200], m["Subject"]
        assert m.get_content_type() == "text/plain"
        assert m.get_content_charset() == "utf-8"
        assert m["Content-Transfer-Encoding"] in ("quoted-printable",
                                                  "base64")
        body = m.get_content().replace("\r\n", "\n")
        excerpts.append(body.split("\n\n", 1)[1].rstrip("\n"))
    for text in (HELLO_RU, SCRIPTS["emoji"] * 3, SCRIPTS["combining"],
                 SCRIPTS["arabic"]):
        want = text.strip()[:200]
        assert want in excerpts, (want, excerpts)
    for path in st.outbox.glob("*.eml"):
        raw = path.read_bytes()
        assert max(raw) < 0x80, path          # 7-bit: no raw UTF-8
        for line in raw.split(b"\r\n"):
            assert len(line) <= 76, line


def test_comments_per_ticket_are_bounded(make_stack):
    """ticket_max_comments 3: the fourth comment is 409 and nothing of it
    (comment, mail job) is stored; racing posts never pass the limit."""
    st = make_stack(MAX_COMMENTS="3")
    st.admin, st.admin_token = st.signup()
    creator, token = st.signup()
    tid = st.create_ticket(token)["_id"]
    for i in range(3):
        r = comment(st, st.admin_token, tid, "c%d" % i)
        assert r.status_code == 200, r.text
    before = len(email_jobs_to(st, creator["email"]))
    r = comment(st, st.admin_token, tid, "one too many")
    assert_error(r, 409)
    assert texts(comments_of(st, token, tid)) == ["c0", "c1", "c2"]
    assert len(email_jobs_to(st, creator["email"])) == before

    # a second ticket, filled by 8 concurrent posts: exactly 3 land
    from concurrent.futures import ThreadPoolExecutor
    tid2 = st.create_ticket(token)["_id"]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(
            lambda i: comment(st, st.admin_token, tid2,
                              "r%d" % i).status_code, range(8)))
    assert sorted(codes) == [200] * 3 + [409] * 5, codes
    assert len(texts(comments_of(st, token, tid2))) == 3


def test_notices_reach_every_admin_however_many(make_stack):
    """20 admins: a creator's comment on an unassigned ticket and a new
    moderator application each store one mail job per admin (the list used
    to stop at 16)."""
    st = make_stack()
    st.admin, st.admin_token = st.signup()
    for _ in range(19):
        st.make_user("admin", prefix="adm")
    every = admins(st)
    assert len(every) == 20, every
    _, token = st.signup()
    tid = st.create_ticket(token)["_id"]
    assert comment(st, st.admin_token, tid, "open").status_code == 200
    assert comment(st, token, tid, "reply").status_code == 200
    jobs = [j for j in st.probe.jobs(kind="email")
            if j["payload"]["template"] == "comment"
            and j["payload"]["excerpt"] == "reply"]
    assert sorted(j["payload"]["to"] for j in jobs) == \
        sorted(a["email"] for a in every)

    r = st.post("/api/mod-requests", token=token, json={"skills": "css"})
    assert r.status_code == 201, r.text
    jobs = [j for j in st.probe.jobs(kind="email")
            if j["payload"]["template"] == "modreq_new"]
    assert sorted(j["payload"]["to"] for j in jobs) == \
        sorted(a["email"] for a in every)

"""Internal notes and collision awareness (issue 15 items 2 and 7), on the
real nginx, module, ticketd and store (SQLite, or MongoDB with
TEST_STORE=mongodb).

Internal notes: `POST /api/tickets/:id/comments` with `"internal": true`
from staff on the ticket (the assigned moderator, an admin); the note
carries `"internal": true` and never reaches the requester -- not over
REST, not on a socket (also after a demotion), not by mail -- and is no
first response.  The triage's helpfulNotes are staff-only too.

Collision awareness: the staff in a ticket's room get ticket_viewers and
user_typing, the requester never; a status change or a reply with
`expectedUpdatedAt` (or If-Unmodified-Since) on a ticket changed since is
refused with 409 {message, ticket}, and nothing is written.

Socket assertions that something did NOT arrive use the order of the
hub instead of a timer: the staff-only event is first seen by a staff
socket (so ticketd has sent it to every worker), then a public event is
sent, and once the requester's socket has that one, it has had every
frame before it.
"""

import email.utils
import json

import pytest
from hypothesis import given
from hypothesis import strategies as hst

from conftest import assert_error, poll
from test_api_properties import budget
from redis_util import redis_server  # noqa: F401 (a fixture)
from test_socketio import Sio


def comment(st, token, tid, text, **extra):
    return st.post("/api/tickets/%s/comments" % tid, token=token,
                   json=dict(text=text, **extra))


def texts(comments):
    return [c["text"] for c in comments]


@pytest.fixture
def scene(stack):
    """A user's ticket assigned to a moderator (who opened the
    conversation), another moderator, and the admin."""
    creator, creator_token = stack.signup()
    mod, mod_token = stack.make_user("moderator", prefix="mod")
    other, other_token = stack.make_user("moderator", prefix="mod")
    t = stack.create_ticket(creator_token)
    stack.probe.assign(t["_id"], mod["_id"])
    r = comment(stack, mod_token, t["_id"], "Hello, looking into it")
    assert r.status_code == 200, r.text
    return dict(t=t["_id"], creator=creator, creator_token=creator_token,
                mod=mod, mod_token=mod_token, other=other,
                other_token=other_token)


def ticket_of(st, token, tid):
    r = st.get("/api/tickets/" + tid, token=token)
    assert r.status_code == 200, r.text
    return r.json()["ticket"]


# --- REST ---------------------------------------------------------------------

def test_internal_note_is_read_by_staff_only(stack, scene):
    t = scene["t"]
    r = comment(stack, scene["mod_token"], t, "Refund is suspicious",
                internal=True)
    assert r.status_code == 200, r.text
    mine = r.json()["comments"]
    assert texts(mine)[-1] == "Refund is suspicious"
    assert mine[-1]["internal"] is True
    # a public comment keeps the keys it always had
    assert "internal" not in mine[0], mine[0]

    [stored] = [c for c in stack.probe.comments(t)
                if c["text"] == "Refund is suspicious"]
    assert stored["internal"] is True

    # staff: the moderator and the admin see it, flagged
    for token in (scene["mod_token"], stack.admin_token):
        notes = [c for c in ticket_of(stack, token, t)["comments"]
                 if c.get("internal")]
        assert texts(notes) == ["Refund is suspicious"]
        r = stack.get("/api/tickets/%s/comments" % t, token=token)
        assert "Refund is suspicious" in texts(r.json()["comments"])

    # the requester: detail, comment list and the answer of their own
    # reply hold the public conversation only
    one = ticket_of(stack, scene["creator_token"], t)
    assert texts(one["comments"]) == ["Hello, looking into it"]
    r = stack.get("/api/tickets/%s/comments" % t,
                  token=scene["creator_token"])
    assert texts(r.json()["comments"]) == ["Hello, looking into it"]
    r = comment(stack, scene["creator_token"], t, "Any news?")
    assert r.status_code == 200, r.text
    assert texts(r.json()["comments"]) == ["Hello, looking into it",
                                           "Any news?"]
    assert "suspicious" not in r.text


def test_internal_note_from_anyone_but_staff_is_403_and_stores_nothing(
        stack, scene):
    t = scene["t"]
    before = len(stack.probe.comments(t))
    r = comment(stack, scene["creator_token"], t, "let me in",
                internal=True)
    assert_error(r, 403)
    # a moderator not on the ticket does not see it at all
    assert_error(comment(stack, scene["other_token"], t, "hi",
                         internal=True), 404)
    for bad in ("yes", 1, [], {}):
        assert_error(comment(stack, scene["mod_token"], t, "x",
                             internal=bad), 400)
    assert len(stack.probe.comments(t)) == before
    # false is a public comment
    r = comment(stack, scene["mod_token"], t, "public", internal=False)
    assert r.status_code == 200, r.text
    assert "internal" not in r.json()["comments"][-1]


def test_internal_note_mails_nobody_and_is_no_first_response(stack, scene):
    t = scene["t"]
    creator_mail = scene["creator"]["email"]
    first = stack.probe.ticket(t)["firstResponseAt"]
    assert first is not None          # the opening public comment
    mails = len(stack.probe.jobs(kind="email", containing=creator_mail))
    assert comment(stack, scene["mod_token"], t, "note to self",
                   internal=True).status_code == 200
    assert comment(stack, stack.admin_token, t, "admin note",
                   internal=True).status_code == 200
    assert len(stack.probe.jobs(kind="email",
                                containing=creator_mail)) == mails
    assert not stack.probe.jobs(kind="email", containing="note to self")
    assert stack.probe.ticket(t)["firstResponseAt"] == first
    # a public one mails the requester as before
    assert comment(stack, scene["mod_token"], t,
                   "public again").status_code == 200
    assert len(stack.probe.jobs(kind="email",
                                containing=creator_mail)) == mails + 1


def test_first_response_is_the_first_public_staff_comment(stack):
    creator, creator_token = stack.signup()
    mod, mod_token = stack.make_user("moderator", prefix="mod")
    tid = stack.create_ticket(creator_token)["_id"]
    stack.probe.assign(tid, mod["_id"])
    assert ticket_of(stack, mod_token, tid)["firstResponseAt"] is None
    before = ticket_of(stack, creator_token, tid)["updatedAt"]
    r = comment(stack, mod_token, tid, "internal first", internal=True)
    assert r.status_code == 200, r.text
    assert ticket_of(stack, mod_token, tid)["firstResponseAt"] is None
    # an internal note moves nothing the requester sees
    assert ticket_of(stack, creator_token, tid)["updatedAt"] == before
    r = comment(stack, mod_token, tid, "public answer")
    assert r.status_code == 200, r.text
    at = r.json()["comments"][-1]["createdAt"]
    for token in (creator_token, mod_token):
        assert ticket_of(stack, token, tid)["firstResponseAt"] == at
    assert comment(stack, creator_token, tid, "thanks").status_code == 200
    assert comment(stack, mod_token, tid, "more").status_code == 200
    assert ticket_of(stack, mod_token, tid)["firstResponseAt"] == at
    listed = [x for x in stack.get("/api/tickets?limit=100",
                                   token=creator_token).json()["tickets"]
              if x["_id"] == tid]
    assert listed[0]["firstResponseAt"] == at


def test_helpful_notes_are_for_staff(stack, scene):
    t = scene["t"]
    stack.probe.set_fields("tickets", t, helpfulNotes="Check the gateway",
                           summary="Payment fails", priority="High")
    mine = ticket_of(stack, scene["creator_token"], t)
    assert "helpfulNotes" not in mine and mine["summary"] == "Payment fails"
    page = stack.get("/api/tickets?limit=100",
                     token=scene["creator_token"]).json()["tickets"]
    assert all("helpfulNotes" not in x for x in page), page
    for token in (scene["mod_token"], stack.admin_token):
        assert ticket_of(stack, token, t)["helpfulNotes"] == \
            "Check the gateway"
        page = stack.get("/api/tickets?limit=100",
                         token=token).json()["tickets"]
        [x] = [x for x in page if x["_id"] == t]
        assert x["helpfulNotes"] == "Check the gateway"
    # a moderator filing a ticket (not assigned to it) reads its triage
    # like any staff, but not the internal notes of its handlers
    own = stack.create_ticket(scene["other_token"])["_id"]
    stack.probe.assign(own, scene["mod"]["_id"])
    stack.probe.set_fields("tickets", own, helpfulNotes="hint")
    assert comment(stack, scene["mod_token"], own, "hi").status_code == 200
    assert comment(stack, scene["mod_token"], own, "about them",
                   internal=True).status_code == 200
    mine = ticket_of(stack, scene["other_token"], own)
    assert mine["helpfulNotes"] == "hint"
    assert texts(mine["comments"]) == ["hi"]
    assert_error(comment(stack, scene["other_token"], own, "me too",
                         internal=True), 403)


# --- sockets -----------------------------------------------------------------

def comment_texts(sio):
    return [a[0]["comment"]["text"] for n, a in sio.events
            if n == "comment_added"]


def test_internal_note_reaches_staff_sockets_only(stack, scene):
    t = scene["t"]
    socks = {k: Sio(stack.port, token=tok) for k, tok in (
        ("creator", scene["creator_token"]), ("mod", scene["mod_token"]),
        ("admin", stack.admin_token))}
    try:
        for s in socks.values():
            assert s.join(t) == [{"ok": True, "room": "joined"}]
        r = comment(stack, scene["mod_token"], t, "staff eyes only",
                    internal=True)
        assert r.status_code == 200, r.text
        [ev] = socks["admin"].wait_event("comment_added", timeout=5)
        assert ev["comment"]["internal"] is True
        assert ev["comment"]["text"] == "staff eyes only"
        [ev] = socks["mod"].wait_event("comment_added", timeout=5)
        assert ev["comment"]["internal"] is True
        # then a public one: once the requester has it, it had all before
        assert comment(stack, scene["mod_token"], t,
                       "public reply").status_code == 200
        [ev] = socks["creator"].wait_event("comment_added", timeout=5)
        assert ev["comment"]["text"] == "public reply"
        assert "internal" not in ev["comment"]
        assert "staff eyes only" not in json.dumps(socks["creator"].events)
    finally:
        for s in socks.values():
            s.close()


def test_a_demoted_moderator_s_socket_gets_no_internal_note(stack, scene):
    """Demotion hands the person's open tickets back (issue 15 item 1):
    their socket leaves the room at once and gets neither the notes nor
    the conversation that follow; REST hides the ticket from them."""
    t = scene["t"]
    mod = Sio(stack.port, token=scene["mod_token"])
    adm = Sio(stack.port, token=stack.admin_token)
    try:
        assert mod.join(t) == [{"ok": True, "room": "joined"}]
        assert adm.join(t) == [{"ok": True, "room": "joined"}]
        r = stack.post("/api/auth/update-user", token=stack.admin_token,
                       json={"email": scene["mod"]["email"], "role": "user"})
        assert r.status_code == 200, r.text
        mod.wait_event("room_left", timeout=5)
        assert comment(stack, stack.admin_token, t, "after demotion",
                       internal=True).status_code == 200
        adm.wait_event("comment_added", lambda a: a[0]["comment"][
            "text"] == "after demotion", timeout=5)
        assert comment(stack, stack.admin_token, t,
                       "public after").status_code == 200
        adm.wait_event("comment_added", lambda a: a[0]["comment"][
            "text"] == "public after", timeout=5)
        assert "after demotion" not in comment_texts(mod)
        assert "public after" not in comment_texts(mod)
        r = stack.get("/api/tickets/%s/comments" % t,
                      token=scene["mod_token"])
        assert r.status_code == 404, r.text
    finally:
        mod.close()
        adm.close()


def viewer_ids(args):
    return sorted(v["_id"] for v in args[0]["viewers"])


def test_staff_see_who_views_and_types_the_requester_does_not(stack,
                                                               scene):
    t = scene["t"]
    mod_id, admin_id = scene["mod"]["_id"], stack.admin["_id"]
    adm = Sio(stack.port, token=stack.admin_token)
    mod = Sio(stack.port, token=scene["mod_token"])
    creator = Sio(stack.port, token=scene["creator_token"])
    try:
        assert creator.join(t) == [{"ok": True, "room": "joined"}]
        assert adm.join(t) == [{"ok": True, "room": "joined"}]
        adm.wait_event("ticket_viewers",
                       lambda a: viewer_ids(a) == [admin_id], timeout=5)
        assert mod.join(t) == [{"ok": True, "room": "joined"}]
        [ev] = adm.wait_event("ticket_viewers", lambda a: viewer_ids(a) ==
                              sorted([mod_id, admin_id]), timeout=5)
        assert ev["ticketId"] == t
        names = {v["_id"]: v["username"] for v in ev["viewers"]}
        assert names[mod_id] == scene["mod"]["username"]
        mod.wait_event("ticket_viewers", lambda a: viewer_ids(a) ==
                       sorted([mod_id, admin_id]), timeout=5)

        # typing: to the other staff, not back to the typist
        assert mod.call("typing", {"ticketId": t, "typing": True},
                        ack=7) == [{"ok": True}]
        [ev] = adm.wait_event("user_typing", timeout=5)
        assert ev == {"ticketId": t, "typing": True,
                      "user": {"_id": mod_id,
                               "username": scene["mod"]["username"]}}
        assert mod.call("typing", {"ticketId": t, "typing": False},
                        ack=8) == [{"ok": True}]
        [ev] = adm.wait_event("user_typing", timeout=5)
        assert ev["typing"] is False
        # the requester's typing goes nowhere
        assert creator.call("typing", {"ticketId": t, "typing": True},
                            ack=9) == [{"ok": True}]

        # leaving: the list shrinks
        assert mod.call("leave_ticket", t, ack=10) == [{"ok": True}]
        adm.wait_event("ticket_viewers",
                       lambda a: viewer_ids(a) == [admin_id], timeout=5)

        # the requester had none of it (the public event comes after)
        assert comment(stack, scene["mod_token"], t,
                       "order mark").status_code == 200
        creator.wait_event("comment_added", timeout=5)
        got = {n for n, _ in creator.events}
        assert not got & {"ticket_viewers", "user_typing"}, creator.events
        assert not [a for n, a in adm.events if n == "user_typing"
                    and a[0]["user"]["_id"] == scene["creator"]["_id"]]
        assert not [n for n, _ in mod.events if n == "user_typing"]
    finally:
        for s in (adm, mod, creator):
            s.close()


# --- 409 on a changed ticket ------------------------------------------------

def test_reply_and_status_on_a_changed_ticket_are_409(stack, scene):
    t = scene["t"]
    loaded = ticket_of(stack, scene["mod_token"], t)["updatedAt"]
    # someone else changes it meanwhile
    assert comment(stack, scene["creator_token"], t,
                   "meanwhile").status_code == 200
    now = ticket_of(stack, scene["mod_token"], t)
    assert now["updatedAt"] != loaded
    before = len(stack.probe.comments(t))

    r = comment(stack, scene["mod_token"], t, "stale reply",
                expectedUpdatedAt=loaded)
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["message"] and body["ticket"]["_id"] == t
    assert body["ticket"]["updatedAt"] == now["updatedAt"]
    assert "meanwhile" in texts(body["ticket"]["comments"])
    r = stack.patch("/api/tickets/%s/status" % t, token=scene["mod_token"],
                    json={"status": "Completed",
                          "expectedUpdatedAt": loaded})
    assert r.status_code == 409, r.text
    assert r.json()["ticket"]["status"] == now["status"]
    assert len(stack.probe.comments(t)) == before
    assert stack.probe.ticket(t)["status"] == now["status"]

    # with what it is now: accepted (as ISO text and as ms)
    r = comment(stack, scene["mod_token"], t, "fresh reply",
                expectedUpdatedAt=now["updatedAt"])
    assert r.status_code == 200, r.text
    fresh = stack.probe.ticket(t)["updatedAt"]
    r = stack.patch("/api/tickets/%s/status" % t, token=scene["mod_token"],
                    json={"status": "In Progress",
                          "expectedUpdatedAt": fresh})
    assert r.status_code == 200, r.text


def test_the_requester_s_409_holds_no_staff_notes(stack, scene):
    t = scene["t"]
    loaded = ticket_of(stack, scene["creator_token"], t)["updatedAt"]
    stack.probe.set_fields("tickets", t, helpfulNotes="staff hint")
    assert comment(stack, scene["mod_token"], t, "secret",
                   internal=True).status_code == 200
    assert comment(stack, scene["mod_token"], t,
                   "public").status_code == 200
    r = comment(stack, scene["creator_token"], t, "late",
                expectedUpdatedAt=loaded)
    assert r.status_code == 409, r.text
    assert "secret" not in r.text and "staff hint" not in r.text
    assert "helpfulNotes" not in r.json()["ticket"]


def test_if_unmodified_since_header(stack, scene):
    t = scene["t"]
    url = "/api/tickets/%s/comments" % t
    old = email.utils.formatdate(0, usegmt=True)          # 1970
    future = email.utils.formatdate(4102444800, usegmt=True)  # 2100
    r = stack.post(url, token=scene["mod_token"], json={"text": "old"},
                   headers={"If-Unmodified-Since": old})
    assert r.status_code == 409, r.text
    r = stack.post(url, token=scene["mod_token"], json={"text": "ok"},
                   headers={"If-Unmodified-Since": future})
    assert r.status_code == 200, r.text
    # not a date: ignored (RFC 9110)
    r = stack.post(url, token=scene["mod_token"], json={"text": "ok 2"},
                   headers={"If-Unmodified-Since": "yesterday"})
    assert r.status_code == 200, r.text
    # the body's field wins over the header
    now = stack.probe.ticket(t)["updatedAt"]
    r = stack.post(url, token=scene["mod_token"],
                   json={"text": "ok 3", "expectedUpdatedAt": now},
                   headers={"If-Unmodified-Since": old})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("bad", ["yesterday", "2024-13-01T00:00:00.000Z",
                                 "2024-01-01", 0, -5, 1.5, True, [], {}])
def test_malformed_expected_updated_at_is_400(stack, scene, bad):
    t = scene["t"]
    before = len(stack.probe.comments(t))
    assert_error(comment(stack, scene["mod_token"], t, "x",
                         expectedUpdatedAt=bad), 400)
    r = stack.patch("/api/tickets/%s/status" % t, token=scene["mod_token"],
                    json={"status": "Completed", "expectedUpdatedAt": bad})
    assert_error(r, 400)
    assert len(stack.probe.comments(t)) == before
    assert stack.probe.ticket(t)["status"] != "Completed"


# --- across hosts (Redis bridge) ------------------------------------------

def test_viewers_and_typing_cross_hosts(make_stack, tmp_path_factory,
                                        redis_server):
    """Two nginx+ticketd hosts on one store and one Redis: the staff on
    each host see the other host's viewers (the union of both lists) and
    typing; the requester on either host sees neither."""
    from conftest import Stack, _finish
    args = "--jobs 0 --redis redis://127.0.0.1:%d" % redis_server.port
    a = make_stack(TICKETD_ARGS=args)
    b = Stack(tmp_path_factory.mktemp("host-b"), dict(TICKETD_ARGS=args))
    b.secret, b.secret_file, b.store = a.secret, a.secret_file, a.store
    b.start()
    socks = []
    try:
        assert poll(lambda: "subscribed" in a.daemon_log()
                    and "subscribed" in b.daemon_log(), 5)
        a.admin, a.admin_token = a.signup()
        creator, ctoken = a.signup()
        mod, mtoken = a.make_user("moderator", prefix="mod")
        tid = a.create_ticket(ctoken)["_id"]
        a.probe.assign(tid, mod["_id"])

        adm = Sio(a.port, token=a.admin_token)          # host A
        socks.append(adm)
        assert adm.join(tid) == [{"ok": True, "room": "joined"}]
        adm.wait_event("ticket_viewers", lambda x: viewer_ids(x) ==
                       [a.admin["_id"]], timeout=5)
        req = Sio(b.port, token=ctoken)                 # host B
        socks.append(req)
        assert req.join(tid) == [{"ok": True, "room": "joined"}]
        m = Sio(b.port, token=mtoken)                   # host B
        socks.append(m)
        assert m.join(tid) == [{"ok": True, "room": "joined"}]
        both = sorted([a.admin["_id"], mod["_id"]])
        adm.wait_event("ticket_viewers", lambda x: viewer_ids(x) == both,
                       timeout=5)
        m.wait_event("ticket_viewers", lambda x: viewer_ids(x) == both,
                     timeout=5)

        assert m.call("typing", {"ticketId": tid, "typing": True},
                      ack=5) == [{"ok": True}]
        [ev] = adm.wait_event("user_typing", timeout=5)
        assert ev["user"]["_id"] == mod["_id"] and ev["typing"] is True

        m.close()                   # a closed socket stops viewing
        adm.wait_event("ticket_viewers", lambda x: viewer_ids(x) ==
                       [a.admin["_id"]], timeout=5)

        # the requester on host B had none of it (a public event after)
        r = a.post("/api/tickets/%s/comments" % tid, token=a.admin_token,
                   json={"text": "order mark"})
        assert r.status_code == 200, r.text
        req.wait_event("comment_added", timeout=5)
        assert not {n for n, _ in req.events} & {"ticket_viewers",
                                                 "user_typing"}, req.events
    finally:
        for s in socks:
            s.close()
        _finish(b)


# --- property: the requester reads exactly the public conversation --------

@budget(20)
@given(steps=hst.lists(hst.tuples(hst.sampled_from(["mod", "admin",
                                                     "creator"]),
                                   hst.booleans()),
                       min_size=1, max_size=8))
def test_any_mix_of_notes_and_replies_keeps_the_notes_from_the_requester(
        stack, steps):
    """Whatever the order of public comments and internal notes by the
    moderator, an admin and the creator: the creator reads exactly the
    public ones, staff read all in order, the requester's mails count the
    public staff comments only, firstResponseAt is the first public staff
    comment's time, and every refused step (the creator's note, the
    creator first) stores nothing."""
    creator, ctoken = stack.signup()
    mod, mtoken = stack.make_user("moderator", prefix="mod")
    tid = stack.create_ticket(ctoken)["_id"]
    stack.probe.assign(tid, mod["_id"])
    tokens = {"mod": mtoken, "admin": stack.admin_token, "creator": ctoken}
    model, public_staff = [], 0       # [(text, internal, who)]
    for i, (who, internal) in enumerate(steps):
        text = "step %d %s %s" % (i, who, "note" if internal else "reply")
        opened = any(not n and w != "creator" for _, n, w in model)
        r = comment(stack, tokens[who], tid, text, internal=internal)
        if who == "creator" and (internal or not opened):
            assert_error(r, 403)
            continue
        assert r.status_code == 200, r.text
        model.append((text, internal, who))
        public_staff += who != "creator" and not internal

    public = [t for t, n, _ in model if not n]
    seen = stack.get("/api/tickets/%s/comments" % tid, token=ctoken).json()
    assert texts(seen["comments"]) == public
    one = ticket_of(stack, ctoken, tid)
    assert texts(one["comments"]) == public
    staff = ticket_of(stack, mtoken, tid)["comments"]
    assert [(c["text"], bool(c.get("internal"))) for c in staff] == \
        [(t, n) for t, n, _ in model]
    mails = stack.probe.jobs(kind="email", containing=creator["email"])
    assert len([j for j in mails if "step " in json.dumps(j["payload"])]) \
        == public_staff
    firsts = [c["createdAt"] for c, (_, n, w) in zip(staff, model)
              if not n and w != "creator"]
    assert one["firstResponseAt"] == (firsts[0] if firsts else None)
    assert len(stack.probe.comments(tid)) == len(model)


# --- history -------------------------------------------------------------------

def test_an_internal_note_is_in_the_staff_history_only(stack, scene):
    """The note's history entry: staff-only, by its author, its text (cut
    to 140 code points with an ellipsis); the requester's history never
    has it, a public reply writes none."""
    t = scene["t"]
    long_note = "\u0416" * 150 + " tail"
    for text in ("Check the invoice \U0001f9fe", long_note):
        r = comment(stack, scene["mod_token"], t, text, internal=True)
        assert r.status_code == 200, r.text
    r = comment(stack, scene["mod_token"], t, "A public answer")
    assert r.status_code == 200, r.text

    def notes(token):
        r = stack.get("/api/tickets/%s/history" % t, token=token)
        assert r.status_code == 200, r.text
        return [e for e in r.json()["history"] if e["action"] == "note"]

    for token in (scene["mod_token"], stack.admin_token):
        got = notes(token)
        assert [(e["actor"]["_id"], e["from"], e["to"], e["staffOnly"])
                for e in got] == [
            (scene["mod"]["_id"], None, "Check the invoice \U0001f9fe", True),
            (scene["mod"]["_id"], None, "\u0416" * 140 + "\u2026", True)]
    assert notes(scene["creator_token"]) == []

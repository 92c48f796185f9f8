"""A ticket's history (issue 15 item 5) and the staff's canned responses
(item 6).

History: GET /api/tickets/:id/history -> {history: [{_id, at, actor,
action, from, to, staffOnly[, explanation]}]}, written by the store in the
write that makes each change (SQLite: the same transaction; MongoDB: the
same single-document update, through the ticket's history outbox).  These
tests drive the real stack: creation, the offline triage and the automatic
assignment by ticketd's runner, status changes by hand; they check every
entry appears once, in order, with its from/to/actor, that the requester
never sees staff-only entries or explanations, and that a refused change
writes nothing.

Canned responses: GET/POST /api/canned-responses, PATCH/DELETE
/api/canned-responses/:id, staff only, shared team-wide, changed by their
owner or an admin; title 1..100 and body 1..5000 code points after trim.
"""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from conftest import BACKEND, REPO, assert_error

from test_jobs import (BILLING_SKILLS, BILLING_TICKET, assigned, moderator,
                       runner_stack, wait_ticket)

CANNED = "/api/canned-responses"

# Hypothesis' files go to build/, never into the source tree
set_hypothesis_home_dir(str(REPO / "build" / "hypothesis"))


def history(stack, ticket_id, token, expect=200):
    r = stack.get("/api/tickets/%s/history" % ticket_id, token=token)
    assert r.status_code == expect, (r.status_code, r.text)
    return r.json().get("history") if expect == 200 else r


def summary(entries):
    """(action, actor id or None, from, to) of each entry, in order."""
    return [(e["action"], e["actor"]["_id"] if e["actor"] else None,
             e["from"], e["to"]) for e in entries]


# --- history, end to end -------------------------------------------------------

def test_history_records_each_change_once_in_order_with_its_actor(
        make_stack, tmp_path):
    st = runner_stack(make_stack, tmp_path)
    mod = moderator(st, BILLING_SKILLS)
    _, mod_token = st.login(mod["username"])
    creator, creator_token = st.make_user(prefix="req")
    title, text = BILLING_TICKET
    tid = st.create_ticket(creator_token, title, text)["_id"]
    row = wait_ticket(st, tid, assigned, what="triage and assignment")
    assert row["assignedTo"] == mod["_id"], row["assignment"]
    st.wait_jobs_settled()

    r = st.patch("/api/tickets/%s/status" % tid, token=mod_token,
                 json={"status": "Completed"})
    assert r.status_code == 200, r.text

    full = history(st, tid, st.admin_token)
    triage = [("priority", None, None, row["priority"])]
    if row["relatedSkills"]:
        triage.append(("skills", None, [], row["relatedSkills"]))
    expected = ([("created", creator["_id"], None, "To-Do")] + triage +
                [("status", None, "To-Do", "In Progress"),
                 ("assignee", None, None,
                  {"_id": mod["_id"], "username": mod["username"]}),
                 ("status", mod["_id"], "In Progress", "Completed")])
    assert summary(full) == expected, json.dumps(full, indent=1)
    # times never go backwards; people are {_id, username}
    ats = [e["at"] for e in full]
    assert ats == sorted(ats), ats
    assert full[0]["actor"] == {"_id": creator["_id"],
                                "username": creator["username"]}, full[0]
    # the assignment carries the explanation the assign job stored
    [assign] = [e for e in full if e["action"] == "assignee"]
    assert assign["explanation"] == row["assignment"], assign
    assert not any(e["staffOnly"] for e in full), full
    # the store holds exactly these, once each
    stored = st.probe.history(tid)
    assert [(e["action"], e["actor"], e["from"], e["to"]) for e in stored] \
        == [(a, who, f, t) for a, who, f, t in expected], stored

    # the assigned moderator sees the same; the requester sees it without
    # the explanation; anyone else gets the ticket's 404
    assert history(st, tid, mod_token) == full
    mine = history(st, tid, creator_token)
    assert summary(mine) == expected, mine
    assert not any("explanation" in e for e in mine), mine
    _, stranger = st.make_user(prefix="other")
    assert_error(history(st, tid, stranger, expect=404), 404,
                 "Ticket not found")
    assert_error(history(st, "0" * 24, st.admin_token, expect=404), 404)
    assert_error(history(st, "not-an-id", st.admin_token, expect=404), 404)
    r = st.get("/api/tickets/%s/history" % tid)
    assert_error(r, 401)


def test_staff_only_entries_are_hidden_from_the_requester(stack):
    creator, token = stack.make_user(prefix="req")
    tid = stack.create_ticket(token)["_id"]
    # an entry another feature writes (an internal note): staff only
    note = {"action": "note", "staffOnly": True, "to": "checked the logs"}
    stack.probe.add_history(tid, actor=stack.admin["_id"], **note)
    staff = history(stack, tid, stack.admin_token)
    assert [e["action"] for e in staff] == ["created", "note"], staff
    assert staff[1]["staffOnly"] is True and staff[1]["actor"]["_id"] \
        == stack.admin["_id"], staff
    mine = history(stack, tid, token)
    assert [e["action"] for e in mine] == ["created"], mine
    assert "checked the logs" not in json.dumps(mine)


def test_a_refused_or_empty_change_writes_no_history(stack):
    creator, token = stack.make_user(prefix="req")
    mod, mod_token = stack.make_user("moderator", prefix="mod")
    other, other_token = stack.make_user("moderator", prefix="mod")
    tid = stack.create_ticket(token)["_id"]
    stack.probe.assign(tid, mod["_id"])      # the runner's work, by hand
    before = stack.probe.history(tid)
    assert [e["action"] for e in before] == ["created"], before

    path = "/api/tickets/%s/status" % tid
    for who, body, status in [
            (mod_token, {"status": "Done"}, 400),
            (mod_token, {"status": 3}, 400),
            (mod_token, {}, 400),
            (other_token, {"status": "Completed"}, 404),   # not theirs
            (token, {"status": "Completed"}, 403)]:
        r = stack.patch(path, token=who, json=body)
        assert_error(r, status)
        assert stack.probe.history(tid) == before, (body, status)
    r = stack.patch("/api/tickets/%s/status" % ("f" * 24), token=mod_token,
                    json={"status": "Completed"})
    assert_error(r, 404)

    # the same status again changes nothing worth an entry
    r = stack.patch(path, token=mod_token, json={"status": "To-Do"})
    assert r.status_code == 200, r.text
    assert stack.probe.history(tid) == before
    r = stack.patch(path, token=stack.admin_token,
                    json={"status": "In Progress"})
    assert r.status_code == 200, r.text
    after = history(stack, tid, token)
    assert summary(after)[1:] == [("status", stack.admin["_id"], "To-Do",
                                   "In Progress")], after


# --- canned responses ---------------------------------------------------------

def canned(stack, token, title="Greeting", body="Hello, thanks for writing.",
           expect=201):
    r = stack.post(CANNED, token=token, json={"title": title, "body": body})
    assert r.status_code == expect, (r.status_code, r.text)
    return r.json().get("cannedResponse") if expect == 201 else r


def test_canned_responses_rights_matrix(stack):
    user, user_token = stack.make_user(prefix="req")
    a, a_token = stack.make_user("moderator", prefix="moda")
    b, b_token = stack.make_user("moderator", prefix="modb")

    mine = canned(stack, a_token, "Refund steps", "Go to Billing > Refunds.")
    assert mine["owner"] == {"_id": a["_id"], "username": a["username"]}
    assert mine["title"] == "Refund steps", mine
    path = "%s/%s" % (CANNED, mine["_id"])

    # users: 403 everywhere, nothing changes
    before = stack.probe.canned()
    for method, url, body in [("GET", CANNED, None),
                              ("POST", CANNED, {"title": "t", "body": "b"}),
                              ("PATCH", path, {"title": "x"}),
                              ("DELETE", path, None)]:
        r = stack.request(method, url, token=user_token, json=body)
        assert_error(r, 403)
    assert stack.probe.canned() == before

    # the team shares them: B lists and reads A's, but cannot change them
    r = stack.get(CANNED, token=b_token)
    assert r.status_code == 200, r.text
    assert mine["_id"] in [c["_id"] for c in r.json()["cannedResponses"]]
    assert_error(stack.patch(path, token=b_token, json={"title": "x"}), 403)
    assert_error(stack.request("DELETE", path, token=b_token), 403)
    assert stack.probe.canned() == before

    # the owner and an admin can
    r = stack.patch(path, token=a_token, json={"body": "  New body.  "})
    assert r.status_code == 200, r.text
    got = r.json()["cannedResponse"]
    assert got["body"] == "New body." and got["title"] == "Refund steps"
    r = stack.patch(path, token=stack.admin_token, json={"title": "Refunds"})
    assert r.status_code == 200, r.text
    assert r.json()["cannedResponse"]["title"] == "Refunds"
    assert r.json()["cannedResponse"]["owner"]["_id"] == a["_id"]
    [row] = stack.probe.canned(_id=mine["_id"])
    assert (row["title"], row["body"]) == ("Refunds", "New body."), row

    r = stack.request("DELETE", path, token=stack.admin_token)
    assert r.status_code == 200, r.text
    assert stack.probe.canned(_id=mine["_id"]) == []
    assert_error(stack.request("DELETE", path, token=a_token), 404)
    assert_error(stack.patch(path, token=a_token, json={"title": "x"}), 404)
    assert_error(stack.patch(CANNED + "/nope", token=a_token,
                             json={"title": "x"}), 404)

    # the owner deletes their own; the list is sorted by title
    for t in ("b second", "A first", "c third"):
        canned(stack, b_token, t, "text")
    r = stack.get(CANNED, token=stack.admin_token)
    titles = [c["title"] for c in r.json()["cannedResponses"]]
    assert [t for t in titles if t in ("b second", "A first", "c third")] \
        == ["A first", "b second", "c third"], titles
    last = r.json()["cannedResponses"][-1]
    r = stack.request("DELETE", "%s/%s" % (CANNED, last["_id"]),
                      token=b_token)
    assert r.status_code == 200, r.text


def test_canned_response_validation_changes_nothing(stack):
    a, token = stack.make_user("moderator", prefix="mod")
    mine = canned(stack, token)
    path = "%s/%s" % (CANNED, mine["_id"])
    before = stack.probe.canned()
    for body in [{}, {"title": "t"}, {"body": "b"},
                 {"title": "   ", "body": "b"},
                 {"title": "t", "body": ""},
                 {"title": "x" * 101, "body": "b"},
                 {"title": "t", "body": "y" * 5001},
                 {"title": ["t"], "body": "b"},
                 {"title": "t", "body": 5}]:
        assert_error(stack.post(CANNED, token=token, json=body), 400)
    for body in [{}, {"title": ""}, {"body": "z" * 5001}, {"title": 1},
                 {"title": "\u00e9" * 101}]:
        assert_error(stack.patch(path, token=token, json=body), 400)
    assert stack.probe.canned() == before
    # the limits count code points: 100 emoji and 5000 of them pass
    got = canned(stack, token, "\U0001F600" * 100, "\u00e9" * 5000)
    assert got["title"] == "\U0001F600" * 100, got


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=120)


@settings(max_examples=25 if BACKEND == "sqlite" else 10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(title=_text, body=_text)
def test_canned_text_is_accepted_iff_within_limits_and_round_trips(
        stack, title, body):
    token = getattr(stack, "_canned_mod_token", None)
    if token is None:
        _, token = stack.make_user("moderator", prefix="mod")
        stack._canned_mod_token = token
    # the documented trim is of ASCII whitespace; NUL is refused as text
    ws = " \t\n\r\f\v"
    t, b = title.strip(ws), body.strip(ws)
    ok = 1 <= len(t) <= 100 and 1 <= len(b) <= 5000 \
        and "\x00" not in title + body
    r = stack.post(CANNED, token=token, json={"title": title, "body": body})
    assert r.status_code == (201 if ok else 400), (r.status_code, r.text)
    if ok:
        got = r.json()["cannedResponse"]
        assert (got["title"], got["body"]) == (t, b), got
        r = stack.get(CANNED, token=token)
        assert got in r.json()["cannedResponses"]
        stack.request("DELETE", "%s/%s" % (CANNED, got["_id"]), token=token)

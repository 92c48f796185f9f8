"""Assignment by hand and hand-back (issue 15 item 1):
PATCH /api/tickets/:id/assignee {"assignedTo": "<user id>" | null}.

Admins point a ticket at any moderator or admin, or hand it back; the
assigned moderator may only hand it back.  A hand assignment carries the
manual marker (assignedBy) and survives a later assignment job; a ticket
handed back goes through the assignment job again without the person it
was taken from; a demotion hands back the person's open tickets; the
absence rule (ticket_assign_absence) hands back the To-Do tickets of staff
away longer than the configured time.  Every change emails the new
assignee and pushes ticket_updated and ticket_access_changed (the former
assignee leaves the room).  Each change writes the ticket's history
(GET /api/tickets/:id/history): "assignee" from -> to by who made it (the
absence rule: ticketd, actor null, with an explanation naming the rule)
and "status" when a hand-back moves In Progress to To-Do.  Runs on SQLite
and, with TEST_STORE=mongodb, on MongoDB.
"""

import pytest

from conftest import assert_error, poll, unique_name
from test_jobs import (BILLING_SKILLS, BILLING_TICKET, RUNNER_ARGS,
                       moderator, outbox_mails, runner_stack, wait_ticket)
from test_socket_rights import JOINED, REFUSED, wait_room_left
from test_socketio import Sio, close_all, sio_on_workers

PATH = "/api/tickets/%s/assignee"


def set_assignee(st, token, tid, to, expect=200):
    r = st.patch(PATH % tid, token=token, json={"assignedTo": to})
    assert r.status_code == expect, (r.status_code, r.text)
    return r.json()


def history(st, tid, token=None):
    r = st.get("/api/tickets/%s/history" % tid,
               token=token or st.admin_token)
    assert r.status_code == 200, r.text
    return r.json()["history"]


def person(e, key):
    """The _id of a history entry's person field (from, to, actor)."""
    return e[key] and e[key]["_id"]


def hand_changes(st, tid, token=None):
    """(actor, from, to) of the assignee entries that name someone."""
    return [(person(e, "actor"), person(e, "from"), person(e, "to"))
            for e in history(st, tid, token)
            if e["action"] == "assignee" and (e["from"] or e["to"])]


def mails_to(st, address, template="assigned"):
    return [j for j in st.probe.jobs(kind="email", containing=address)
            if j["payload"].get("template") == template]


def reassign_jobs(st, tid):
    """The assignment jobs of a ticket that carry an exclusion list."""
    return [j for j in st.probe.jobs(kind="assign", containing=tid)
            if j["payload"].get("exclude")]


@pytest.fixture
def people(stack):
    """A requester with a ticket, two moderators (each with a token)."""
    creator, ctoken = stack.signup()
    m1, t1 = stack.make_user("moderator", prefix="mod")
    m2, t2 = stack.make_user("moderator", prefix="mod")
    tid = stack.create_ticket(ctoken)["_id"]
    return dict(creator=creator, ctoken=ctoken, m1=m1, t1=t1, m2=m2, t2=t2,
                tid=tid)


# === rights ===================================================================

def test_admin_assigns_by_hand_with_marker_mail_and_answer(stack, people):
    p = people
    body = set_assignee(stack, stack.admin_token, p["tid"], p["m1"]["_id"])
    assert body["message"] == "Ticket assigned", body
    ticket = body["ticket"]
    assert ticket["assignedTo"]["_id"] == p["m1"]["_id"], ticket
    assert ticket["assignment"]["manual"] is True, ticket
    assert ticket["assignment"]["assignedBy"]["_id"] == stack.admin["_id"]
    row = stack.probe.ticket(p["tid"])
    assert row["assignedTo"] == p["m1"]["_id"], row
    assert row["assignedBy"] == stack.admin["_id"], row
    # the "Ticket Assigned" mail to the new assignee, with the ticket id
    [mail] = mails_to(stack, p["m1"]["email"])
    assert mail["payload"]["ticketId"] == p["tid"], mail
    # the moderator now sees it; the other one does not
    r = stack.get("/api/tickets/" + p["tid"], token=p["t1"])
    assert r.status_code == 200, r.text
    assert_error(stack.get("/api/tickets/" + p["tid"], token=p["t2"]), 404)


def test_rights_matrix(stack, people):
    p = people
    set_assignee(stack, stack.admin_token, p["tid"], p["m1"]["_id"])
    before = stack.probe.ticket(p["tid"])
    # the requester sees the ticket but may not move it
    for to in (p["m2"]["_id"], None):
        assert_error(stack.patch(PATH % p["tid"], token=p["ctoken"],
                                 json={"assignedTo": to}), 403)
    # another moderator does not even see it
    for to in (p["m2"]["_id"], None):
        assert_error(stack.patch(PATH % p["tid"], token=p["t2"],
                                 json={"assignedTo": to}), 404)
    # the assigned moderator may not pass it to someone else
    assert_error(stack.patch(PATH % p["tid"], token=p["t1"],
                             json={"assignedTo": p["m2"]["_id"]}), 403)
    assert stack.probe.ticket(p["tid"]) == before
    # ... but may hand it back, and then loses sight of it
    body = set_assignee(stack, p["t1"], p["tid"], None)
    assert body["message"] == "Ticket handed back", body
    assert body["ticket"]["assignedTo"] is None, body
    assert "assignment" not in body["ticket"], body
    row = stack.probe.ticket(p["tid"])
    assert row["assignedTo"] is None and row["assignedBy"] is None, row
    assert_error(stack.get("/api/tickets/" + p["tid"], token=p["t1"]), 404)
    # the hand-back queued the assignment job again, without them
    [job] = reassign_jobs(stack, p["tid"])
    assert job["payload"]["exclude"] == [p["m1"]["_id"]], job
    # an admin may set anyone, including an admin
    body = set_assignee(stack, stack.admin_token, p["tid"],
                        stack.admin["_id"])
    assert body["ticket"]["assignedTo"]["_id"] == stack.admin["_id"]


def test_same_assignee_again_changes_nothing(stack, people):
    p = people
    set_assignee(stack, stack.admin_token, p["tid"], p["m1"]["_id"])
    before = stack.probe.ticket(p["tid"])
    body = set_assignee(stack, stack.admin_token, p["tid"], p["m1"]["_id"])
    assert body["message"] == "Assignee unchanged", body
    assert stack.probe.ticket(p["tid"]) == before
    assert len(mails_to(stack, p["m1"]["email"])) == 1


# === history ==================================================================

def test_history_names_who_assigned_and_who_handed_back(stack, people):
    p = people
    admin = stack.admin["_id"]
    m1, m2 = p["m1"]["_id"], p["m2"]["_id"]
    set_assignee(stack, stack.admin_token, p["tid"], m1)
    set_assignee(stack, stack.admin_token, p["tid"], m2)
    r = stack.patch("/api/tickets/%s/status" % p["tid"],
                    token=stack.admin_token, json={"status": "In Progress"})
    assert r.status_code == 200, r.text
    before = history(stack, p["tid"])
    # refused or empty changes record nothing
    set_assignee(stack, stack.admin_token, p["tid"], m2)      # unchanged
    assert_error(stack.patch(PATH % p["tid"], token=p["ctoken"],
                             json={"assignedTo": None}), 403)
    assert_error(stack.patch(PATH % p["tid"], token=stack.admin_token,
                             json={"assignedTo": p["creator"]["_id"]}), 400)
    assert history(stack, p["tid"]) == before
    set_assignee(stack, p["t2"], p["tid"], None)               # hand-back

    full = history(stack, p["tid"])
    assert full[:len(before)] == before
    hand = [e for e in full if e["action"] == "assignee"]
    assert [(person(e, "actor"), person(e, "from"), person(e, "to"))
            for e in hand] == [(admin, None, m1), (admin, m1, m2),
                               (m2, m2, None)], hand
    assert hand[0]["to"]["username"] == p["m1"]["username"], hand
    assert hand[1]["from"]["username"] == p["m1"]["username"], hand
    assert hand[0]["actor"]["username"] == stack.admin["username"], hand
    # by hand: the stored marker is the explanation (staff only)
    assert hand[1]["explanation"]["manual"] is True, hand
    assert hand[1]["explanation"]["assignedBy"]["_id"] == admin, hand
    assert not any(e["staffOnly"] for e in hand), hand
    # the hand-back moved In Progress back to To-Do, by the same person,
    # right after the assignee entry
    last = full[-2:]
    assert [e["action"] for e in last] == ["assignee", "status"], full
    assert (last[1]["from"], last[1]["to"]) == ("In Progress", "To-Do")
    assert person(last[1], "actor") == m2, last
    # the requester sees the same changes, without the explanations
    mine = history(stack, p["tid"], p["ctoken"])
    assert [(e["action"], e["from"], e["to"]) for e in mine] == \
        [(e["action"], e["from"], e["to"]) for e in full], mine
    assert not any("explanation" in e for e in mine), mine
    # what the store holds: the same entries
    stored = [e for e in stack.probe.history(p["tid"])
              if e["action"] == "assignee"]
    assert [(e["actor"], person(e, "from"), person(e, "to"))
            for e in stored] == [(admin, None, m1), (admin, m1, m2),
                                 (m2, m2, None)], stored


# === bad input ================================================================

@pytest.mark.parametrize("body", [
    {}, {"assignedTo": 5}, {"assignedTo": True}, {"assignedTo": ""},
    {"assignedTo": "xyz"}, {"assignedTo": "ABCDEF0123456789ABCDEF01"},
    {"assignedTo": "0123456789abcdef0123456789abcdef"},
    {"assignedTo": ["0123456789abcdef01234567"]},
    {"assignedTo": {"_id": "0123456789abcdef01234567"}},
])
def test_bad_bodies_are_400_and_change_nothing(stack, people, body):
    p = people
    before = stack.probe.ticket(p["tid"])
    assert_error(stack.patch(PATH % p["tid"], token=stack.admin_token,
                             json=body), 400)
    assert stack.probe.ticket(p["tid"]) == before


def test_target_must_be_staff(stack, people):
    p = people
    before = stack.probe.ticket(p["tid"])
    for to in (p["creator"]["_id"], "0123456789abcdef01234567"):
        assert_error(stack.patch(PATH % p["tid"], token=stack.admin_token,
                                 json={"assignedTo": to}), 400,
                     "assignedTo must be a moderator or an admin")
    assert stack.probe.ticket(p["tid"]) == before
    assert mails_to(stack, p["creator"]["email"]) == []


def test_unknown_and_malformed_ticket_ids_are_404(stack, people):
    for tid in ("0123456789abcdef01234567", "nope", "ABCDEF0123456789abcdef01"):
        assert_error(stack.patch(PATH % tid, token=stack.admin_token,
                                 json={"assignedTo": None}), 404)


def test_hand_back_of_an_unassigned_ticket_is_400(stack, people):
    p = people
    assert stack.probe.ticket(p["tid"])["assignedTo"] is None
    assert_error(stack.patch(PATH % p["tid"], token=stack.admin_token,
                             json={"assignedTo": None}), 400)
    assert reassign_jobs(stack, p["tid"]) == []


def test_no_token_is_401(stack, people):
    assert_error(stack.patch(PATH % people["tid"],
                             json={"assignedTo": None}), 401)


# === with the job runner =======================================================

def billing_ticket(st):
    _, ctoken = st.signup()
    return st.create_ticket(ctoken, *BILLING_TICKET)["_id"], ctoken


def test_manual_assignment_survives_a_later_assign_job(make_stack, tmp_path):
    st = runner_stack(make_stack, tmp_path)
    expert = moderator(st, BILLING_SKILLS, prefix="expert")
    other = moderator(st, [], prefix="other")
    tid, _ = billing_ticket(st)
    wait_ticket(st, tid, lambda row: row["assignedTo"], what="assigned")
    st.wait_jobs_settled()
    set_assignee(st, st.admin_token, tid, other["_id"])
    # the assignment job runs again (as a retry would): it finds the hand
    # assignment and leaves it, though the expert scores higher
    job = st.probe.jobs(kind="assign", containing=tid)[0]
    assert st.probe.set_fields("jobs", job["_id"], state="pending",
                               runAfter=0, attempts=0) == 1
    poll(lambda: st.probe.job(job["_id"])["state"] == "done", 10)
    row = st.probe.ticket(tid)
    assert row["assignedTo"] == other["_id"], row
    assert row["assignedBy"] == st.admin["_id"], row
    assert row["assignment"]["manual"] is True, row
    assert expert["_id"] != other["_id"]


def test_hand_back_excludes_the_person(make_stack, tmp_path):
    st = runner_stack(make_stack, tmp_path)
    st.login(st.admin["username"])                  # online
    expert = moderator(st, BILLING_SKILLS, prefix="expert")
    _, etoken = st.login(expert["username"])
    tid, _ = billing_ticket(st)
    # the expert is the best candidate: the job gives it to them
    row = wait_ticket(st, tid, lambda row: row["assignedTo"],
                      what="assigned")
    assert row["assignedTo"] == expert["_id"], row["assignment"]
    st.wait_jobs_settled()
    set_assignee(st, etoken, tid, None)
    # assigned again, to the only other candidate, never back to them
    row = wait_ticket(st, tid, lambda row: row["assignedTo"],
                      what="reassigned")
    assert row["assignedTo"] == st.admin["_id"], row["assignment"]
    assert row["assignment"]["excluded"] == [expert["_id"]], row
    assert row["assignedBy"] is None, row
    st.wait_jobs_settled()
    # the new assignee got the "Ticket Assigned" mail
    assert mails_to(st, st.admin["email"]), st.probe.jobs(kind="email")


def test_demotion_hands_back_open_tickets(make_stack, tmp_path):
    st = runner_stack(make_stack, tmp_path)
    st.login(st.admin["username"])
    mod = moderator(st, BILLING_SKILLS, prefix="demoted")
    _, mtoken = st.login(mod["username"])
    open_tid, _ = billing_ticket(st)
    done_tid, _ = billing_ticket(st)
    for tid in (open_tid, done_tid):
        wait_ticket(st, tid, lambda row: row["assignedTo"], what="assigned")
    st.wait_jobs_settled()
    for tid in (open_tid, done_tid):
        if st.probe.ticket(tid)["assignedTo"] != mod["_id"]:
            set_assignee(st, st.admin_token, tid, mod["_id"])
    r = st.patch("/api/tickets/%s/status" % done_tid, token=mtoken,
                 json={"status": "Completed"})
    assert r.status_code == 200, r.text

    r = st.post("/api/auth/update-user", token=st.admin_token,
                json={"email": mod["email"], "role": "user"})
    assert r.status_code == 200, r.text
    assert st.probe.user(mod["_id"])["role"] == "user"
    # the open ticket went back through the assignment job, without them
    [job] = reassign_jobs(st, open_tid)
    assert job["payload"]["exclude"] == [mod["_id"]], job
    row = wait_ticket(st, open_tid, lambda row: row["assignedTo"],
                      what="reassigned")
    assert row["assignedTo"] == st.admin["_id"], row
    assert_error(st.get("/api/tickets/" + open_tid, token=mtoken), 404)
    # a completed ticket keeps its history: still theirs
    assert st.probe.ticket(done_tid)["assignedTo"] == mod["_id"]
    assert reassign_jobs(st, done_tid) == []
    # the history: handed back by the admin who demoted them, In Progress
    # back to To-Do, then the job's assignment (actor null)
    full = history(st, open_tid)
    [back] = [i for i, e in enumerate(full) if e["action"] == "assignee"
              and person(e, "from") == mod["_id"] and e["to"] is None]
    e = full[back]
    assert person(e, "actor") == st.admin["_id"], e
    assert e["explanation"]["rule"] == "demotion", e
    assert "role became user" in e["explanation"]["reason"], e
    s = full[back + 1]
    assert (s["action"], s["from"], s["to"]) == \
        ("status", "In Progress", "To-Do"), full
    assert person(s, "actor") == st.admin["_id"], s
    again = [x for x in full[back + 1:] if x["action"] == "assignee"]
    assert [(x["actor"], person(x, "to")) for x in again] == \
        [(None, st.admin["_id"])], full
    assert not [x for x in history(st, done_tid)
                if x["action"] == "assignee" and x["to"] is None
                and x["from"]], "a completed ticket was handed back"


def test_absence_rule_hands_back_to_do_tickets(make_stack, tmp_path):
    outbox = tmp_path / "outbox"
    st = make_stack(ASSIGN_ABSENCE="1s", PUBLIC_URL="http://desk.example.org",
                    TICKETD_ARGS=" ".join(
        RUNNER_ARGS + ["--triage-provider", "offline", "--mail-transport",
                       "outbox", "--outbox", str(outbox)]))
    st.admin, st.admin_token = st.signup(username=unique_name("admin"))
    st.login(st.admin["username"])
    away = moderator(st, BILLING_SKILLS, prefix="away")
    _, atoken = st.login(away["username"])
    here = moderator(st, [], prefix="here")
    tids = [billing_ticket(st)[0] for _ in range(2)]
    for tid in tids:
        wait_ticket(st, tid, lambda row: row["assignedTo"], what="assigned")
    st.wait_jobs_settled()
    # one To-Do ticket each, by hand
    for tid, who in zip(tids, (away, here)):
        if st.probe.ticket(tid)["assignedTo"] != who["_id"]:
            set_assignee(st, st.admin_token, tid, who["_id"])
        r = st.patch("/api/tickets/%s/status" % tid, token=st.admin_token,
                     json={"status": "To-Do"})
        assert r.status_code == 200, r.text
    r = st.patch("/api/auth/status", token=atoken, json={"status": "dnd"})
    assert r.status_code == 200, r.text
    # after a second away, the sweep hands the ticket back
    row = wait_ticket(st, tids[0], lambda row: row["assignedTo"]
                      != away["_id"], timeout=15, what="handed back")
    [job] = reassign_jobs(st, tids[0])
    assert job["payload"]["exclude"] == [away["_id"]], job
    # the one online keeps theirs
    assert st.probe.ticket(tids[1])["assignedTo"] == here["_id"]
    assert "absence rule" in st.daemon_log()
    assert row["assignedTo"] != away["_id"]
    # the history: handed back by ticketd (actor null), the rule named;
    # it was To-Do, so no status entry comes with it
    full = history(st, tids[0])
    [back] = [i for i, e in enumerate(full) if e["action"] == "assignee"
              and person(e, "from") == away["_id"] and e["to"] is None]
    e = full[back]
    assert e["actor"] is None, e
    assert e["explanation"]["rule"] == "absence", e
    assert e["explanation"]["directive"] == "ticket_assign_absence", e
    assert "absence rule" in e["explanation"]["reason"], e
    assert not any(x["action"] == "status" and x["from"] == "In Progress"
                   and x["to"] == "To-Do" and x["actor"] is None
                   for x in full), full
    assert not any(x["action"] == "assignee" and person(x, "from")
                   == here["_id"] and x["to"] is None
                   for x in history(st, tids[1])), "the one online lost it"
    # item 8: the "Ticket Assigned" mail links the ticket
    st.wait_jobs_settled()
    links = [m.get_content().replace("\r", "")
             for m in outbox_mails(outbox).values()
             if m["Subject"].startswith("Ticket Assigned")]
    for tid in tids:
        assert any("Open it: http://desk.example.org/tickets/%s\n" % tid
                   in text for text in links), links


# === real time ================================================================

def test_reassignment_pushes_ticket_updated_and_removes_the_former(stack):
    creator, ctoken = stack.signup()
    old, otoken = stack.make_user("moderator", prefix="old")
    new, ntoken = stack.make_user("moderator", prefix="new")
    tid = stack.create_ticket(ctoken)["_id"]
    set_assignee(stack, stack.admin_token, tid, old["_id"])
    socks = sio_on_workers(stack, otoken)
    watcher = Sio(stack.port, token=ctoken)
    newcomer = Sio(stack.port, token=ntoken)       # in no room
    try:
        for _, s in socks:
            assert s.join(tid) == JOINED
        assert watcher.join(tid) == JOINED
        set_assignee(stack, stack.admin_token, tid, new["_id"])
        args = watcher.wait_event("ticket_updated", timeout=5)
        assert args[0]["ticketId"] == tid, args
        assert args[0]["assignedTo"]["_id"] == new["_id"], args
        assert "assignment" not in args[0], args
        # the new assignee's own sockets hear ticket_assigned (their list
        # follows); the requester's do not
        args = newcomer.wait_event("ticket_assigned", timeout=5)
        assert args == [{"ticketId": tid, "userId": new["_id"]}], args
        watcher.drain(0.3)
        assert "ticket_assigned" not in [n for n, _ in watcher.events]
        for _, s in socks:
            wait_room_left(s, tid)
            assert s.join(tid, ack=5) == REFUSED
    finally:
        close_all(socks + [watcher, newcomer])


# === properties ===============================================================

from hypothesis import HealthCheck, given, settings          # noqa: E402
from hypothesis import strategies as hst                     # noqa: E402
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402

from conftest import REPO                                    # noqa: E402

# Hypothesis' files go to build/, never into the source tree
set_hypothesis_home_dir(str(REPO / "build" / "hypothesis"))

json_values = hst.recursive(
    hst.none() | hst.booleans() | hst.integers() | hst.floats(
        allow_nan=False, allow_infinity=False) | hst.text(max_size=30),
    lambda inner: hst.lists(inner, max_size=3) | hst.dictionaries(
        hst.text(max_size=8), inner, max_size=3), max_leaves=6)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=hst.one_of(json_values, hst.text(
    alphabet="0123456789abcdefABCDEF", min_size=20, max_size=28)))
def test_any_assignee_value_but_a_staff_id_is_400_and_changes_nothing(
        stack, people, value):
    """Oracle: the only accepted values are a staff member's id (and null
    when the ticket is assigned, which it is not here)."""
    p = people
    staff = {p["m1"]["_id"], p["m2"]["_id"], stack.admin["_id"]}
    if isinstance(value, str) and value in staff:
        return
    before = stack.probe.ticket(p["tid"])
    r = stack.patch(PATH % p["tid"], token=stack.admin_token,
                    json={"assignedTo": value})
    assert_error(r, 400)
    assert stack.probe.ticket(p["tid"]) == before

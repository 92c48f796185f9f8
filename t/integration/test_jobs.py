"""Background jobs (DESIGN §5): triage, assignment, stats and email run by
ticketd's job runner against the real nginx + module and a real SQLite
file.  Each test starts its own stack with the runner on (the default stack
passes --jobs 0) and short poll, retry and lease times.

This file: offline triage + assignment end to end, stats, manual
assignment, presence, lease recovery.  The provider, mail-transport and
crash tests are in test_jobs_ai.py, test_jobs_mail.py and
test_jobs_reliability.py; they import the helpers below by name.
"""

import email
import email.policy
import json
import signal
import sys

from conftest import REPO, poll, unique_name
from test_socketio import Sio

sys.path.insert(0, str(REPO / "t" / "fakes"))

# Short times so that retries and leases play out within seconds.
RUNNER_ARGS = ["--jobs", "64", "--poll-ms", "200", "--retry-base-ms", "100",
               "--lease", "3"]

# Ticket texts whose skills belong to one moderator each.
BILLING_SKILLS = ["billing", "payments"]
FRONTEND_SKILLS = ["react", "frontend", "css"]
DEVOPS_SKILLS = ["devops", "docker", "nginx"]
BILLING_TICKET = ("Payment failed at checkout",
                  "The payment failed at checkout when I paid by card.")
FRONTEND_TICKET = ("CSS button misaligned in React app",
                   "The CSS of the submit button is misaligned in our React "
                   "app.")
DEVOPS_TICKET = ("nginx returns 502 after docker deploy",
                 "Since the last docker deploy nginx answers 502 Bad "
                 "Gateway.")

PRIORITIES = ("Low", "Medium", "High")
WELCOME_SUBJECT = "Welcome to Ticket Assistant"


def runner_stack(make_stack, tmp_path, *args):
    """A stack whose ticketd runs jobs (RUNNER_ARGS + args; offline triage
    and the outbox tmp_path/outbox unless args choose otherwise), with its
    admin signed up as st.admin / st.admin_token.  st.outbox is the outbox
    folder."""
    args = list(args)
    if "--triage-provider" not in args:
        args += ["--triage-provider", "offline"]
    outbox = tmp_path / "outbox"
    if "--mail-transport" not in args:
        # explicit: a SENDGRID_API_KEY in the environment would choose
        # SendGrid otherwise
        args += ["--mail-transport", "outbox", "--outbox", str(outbox)]
    assert not any(" " in a for a in args), args   # TICKETD_ARGS is split
    st = make_stack(TICKETD_ARGS=" ".join(RUNNER_ARGS + args))
    st.outbox = outbox
    st.admin, st.admin_token = st.signup(username=unique_name("admin"))
    assert st.admin["role"] == "admin", st.admin
    return st


def key_file(tmp_path, name, key):
    """An API key written to a file of the test's temp dir; its path."""
    path = tmp_path / name
    path.write_text(key + "\n")
    path.chmod(0o600)
    return str(path)


def moderator(st, skills, prefix="mod"):
    """A moderator with these skills, logged in (presence online);
    returns the user."""
    user, _ = st.make_user("moderator", skills, prefix=prefix)
    user, _ = st.login(user["username"])
    assert user["role"] == "moderator" and user["status"] == "online", user
    return user


def wait_ticket(st, ticket_id, pred, timeout=10, what="the condition"):
    """The ticket's store row once pred(row) holds; fails with the row, the
    ticket's jobs and the daemon log tail otherwise."""
    def reached():
        row = st.probe.ticket(ticket_id)
        return row if row and pred(row) else None

    row = poll(reached, timeout, 0.05)
    assert row, "ticket %s: %s not reached in %ss\nrow: %s\njobs: %s\n%s" % (
        ticket_id, what, timeout, st.probe.ticket(ticket_id),
        st.probe.jobs(containing=ticket_id), "\n".join(
            st.daemon_log().splitlines()[-30:]))
    return row


def triaged(row):
    return row["triage"] is not None


def assigned(row):
    return row["assignedTo"] is not None


def outbox_mails(folder):
    """{file name: email.message.EmailMessage} of the finished .eml files
    in an outbox folder (a .tmp file is a write in progress)."""
    if not folder.exists():
        return {}
    return {p.name: email.message_from_bytes(p.read_bytes(),
                                             policy=email.policy.default)
            for p in sorted(folder.glob("*.eml"))}


def address_of(header):
    """The address of a To/From header, without its display name."""
    return header.addresses[0].addr_spec


def mails_to(mails, address, subject_prefix=""):
    """The mails of outbox_mails() addressed to address whose subject
    starts with subject_prefix."""
    return [m for m in mails.values()
            if address_of(m["To"]) == address
            and str(m["Subject"]).startswith(subject_prefix)]


def assert_no_secrets(where, texts):
    """No bcrypt hash ($2…) and no JWT (eyJ…) in any of texts."""
    for text in texts:
        assert "$2" not in text, "password hash in %s: %s" % (where, text)
        assert "eyJ" not in text, "token in %s: %s" % (where, text)


def assert_explanation(expl, chosen, candidate_ids):
    """The stored assignment explanation names the chosen moderator and
    holds every candidate's three terms and the weighted score."""
    assert expl["chosen"] == chosen, expl
    assert isinstance(expl.get("reason"), str) and expl["reason"], expl
    got = {c["_id"] for c in expl["candidates"]}
    assert got == set(candidate_ids), (got, candidate_ids)
    for c in expl["candidates"]:
        for term in ("skill", "availability", "performance", "score"):
            assert isinstance(c.get(term), (int, float)), (term, c)
            assert 0 <= c[term] <= 1, (term, c)
        expect = (0.5 * c["skill"] + 0.3 * c["availability"]
                  + 0.2 * c["performance"])
        assert abs(c["score"] - expect) < 0.002, c
        assert isinstance(c.get("eligible"), bool), c
        assert isinstance(c.get("tied"), bool), c
    best = max(expl["candidates"], key=lambda c: c["score"])
    chosen_c = [c for c in expl["candidates"] if c["_id"] == chosen][0]
    assert chosen_c["eligible"], expl
    assert chosen_c["score"] >= best["score"] - 0.05 - 1e-9, expl


# --- 1. offline triage + assignment, end to end -----------------------------

def test_offline_triage_assigns_each_ticket_to_the_moderator_with_its_skills(
        make_stack, tmp_path):
    st = runner_stack(make_stack, tmp_path)
    mods = {"billing": moderator(st, BILLING_SKILLS),
            "frontend": moderator(st, FRONTEND_SKILLS),
            "devops": moderator(st, DEVOPS_SKILLS)}
    creator, ctoken = st.signup()
    texts = {"billing": BILLING_TICKET, "frontend": FRONTEND_TICKET,
             "devops": DEVOPS_TICKET}
    # ticketd is paused (its links stay up) while the tickets are made
    # and the creator's socket joins their rooms, so it sees every
    # ticket_updated
    sio = Sio(st.port, token=ctoken)
    st.daemon_proc.send_signal(signal.SIGSTOP)
    try:
        tickets = {k: st.create_ticket(ctoken, title=t, description=d)
                   for k, (t, d) in texts.items()}
        for ticket in tickets.values():
            assert sio.join(ticket["_id"]) == [{"ok": True,
                                                "room": "joined"}]
    finally:
        st.daemon_proc.send_signal(signal.SIGCONT)
    candidates = [st.admin["_id"]] + [m["_id"] for m in mods.values()]

    for key, ticket in tickets.items():
        tid, mod = ticket["_id"], mods[key]
        row = wait_ticket(st, tid, assigned, what="assignment")

        # triage: the offline provider's answer is stored on the ticket
        assert row["triage"]["provider"] == "offline", row["triage"]
        assert row["triage"]["fallback"] is False, row["triage"]
        assert row["triage"]["error"] is None, row["triage"]
        assert row["priority"] in PRIORITIES, row
        assert row["summary"] and row["helpfulNotes"], row
        skills = [s.lower() for s in row["relatedSkills"]]
        assert set(skills) & set(mod["skills"]), (skills, mod["skills"])

        # assignment: the moderator with the skills, with the explanation
        assert row["assignedTo"] == mod["_id"], (key, row["assignment"])
        assert row["status"] == "In Progress", row
        assert_explanation(row["assignment"], mod["_id"], candidates)

        # the API shows the AI fields to the creator, the explanation only
        # to staff
        r = st.get("/api/tickets/%s" % tid, token=st.admin_token)
        assert r.status_code == 200, r.text
        doc = r.json()["ticket"]
        for field in ("summary", "priority", "helpfulNotes",
                      "relatedSkills"):
            assert doc[field] == row[field], (field, doc[field], row[field])
        assert doc["triage"]["provider"] == "offline", doc["triage"]
        assert doc["assignment"]["chosen"] == mod["_id"], doc["assignment"]
        assert doc["assignedTo"]["_id"] == mod["_id"], doc["assignedTo"]
        assert doc["status"] == "In Progress", doc
        r = st.get("/api/tickets/%s" % tid, token=ctoken)
        assert r.status_code == 200, r.text
        doc = r.json()["ticket"]
        assert doc["priority"] == row["priority"], doc
        assert "assignment" not in doc, doc

        # one ticket_updated for the triage, one for the assignment
        [tri] = sio.wait_event(
            "ticket_updated", timeout=5,
            pred=lambda a: a[0].get("ticketId") == tid and "priority" in a[0])
        assert tri["priority"] == row["priority"], tri
        assert "helpfulNotes" not in tri, tri      # staff-only
        [asg] = sio.wait_event(
            "ticket_updated", timeout=5,
            pred=lambda a: a[0].get("ticketId") == tid
            and "assignedTo" in a[0])
        assert asg["status"] == "In Progress", asg

        # the moderator is told by mail
        mails = poll(lambda: mails_to(outbox_mails(st.outbox), mod["email"],
                                      "Ticket Assigned"), 5)
        assert len(mails) == 1, sorted(outbox_mails(st.outbox))
        assert texts[key][0] in str(mails[0]["Subject"]), mails[0]["Subject"]
        assert tid in mails[0].get_content(), mails[0].get_content()

    # and no other ticket_updated
    sio.close()
    assert [a for n, a in sio.events if n == "ticket_updated"] == [], \
        sio.events

    # every signup got its welcome mail, once
    people = [st.admin, creator] + list(mods.values())
    assert poll(lambda: all(mails_to(outbox_mails(st.outbox), p["email"],
                                     WELCOME_SUBJECT) for p in people), 5)
    mails = outbox_mails(st.outbox)
    for p in people:
        welcome = mails_to(mails, p["email"], WELCOME_SUBJECT)
        assert len(welcome) == 1, (p["email"], sorted(mails))
        assert welcome[0]["From"] and welcome[0]["Date"], welcome[0]
    assert len(mails) == len(people) + len(tickets), sorted(mails)

    states = st.wait_jobs_settled()
    assert set(states) == {"done"}, (states, st.probe.jobs())
    assert_no_secrets("a mail", [m.as_string() for m in mails.values()])
    assert_no_secrets("a job payload", [json.dumps(j["payload"])
                                        for j in st.probe.jobs()])


# --- 6. stats ---------------------------------------------------------------

def test_completed_ticket_counts_once_in_moderator_stats(make_stack,
                                                          tmp_path):
    st = runner_stack(make_stack, tmp_path)
    mod = moderator(st, FRONTEND_SKILLS)
    _, ctoken = st.signup()
    tid = st.create_ticket(ctoken, *FRONTEND_TICKET)["_id"]
    wait_ticket(st, tid, lambda r: r["assignedTo"] == mod["_id"],
                what="assignment to the moderator")
    # the ticket was opened ten hours ago
    opened = st.probe.ticket(tid)["createdAt"]
    assert st.probe.set_fields("tickets", tid,
                               createdAt=opened - 10 * 3600 * 1000) == 1

    def mod_stats():
        u = st.probe.user(mod["_id"])
        return {k: u[k] for k in ("totalTicketsResolved",
                                  "averageResolutionTimeHours")}

    assert mod_stats()["totalTicketsResolved"] == 0, mod_stats()
    path = "/api/tickets/%s/status" % tid
    r = st.patch(path, token=st.admin_token, json={"status": "Completed"})
    assert r.status_code == 200, r.text
    stats = poll(lambda: mod_stats()["totalTicketsResolved"] and mod_stats(),
                 5)
    assert stats, (mod_stats(), st.probe.jobs(kind="stats"))
    assert stats["totalTicketsResolved"] == 1, stats
    assert abs(stats["averageResolutionTimeHours"] - 10.0) < 0.02, stats
    assert st.probe.ticket(tid)["statsCounted"] == 1

    # reopened and completed again: still counted once
    for status in ("In Progress", "Completed"):
        r = st.patch(path, token=st.admin_token, json={"status": status})
        assert r.status_code == 200, r.text
    states = st.wait_jobs_settled()
    assert set(states) == {"done"}, (states, st.probe.jobs(kind="stats"))
    stats = mod_stats()
    assert stats["totalTicketsResolved"] == 1, stats
    assert abs(stats["averageResolutionTimeHours"] - 10.0) < 0.02, stats

    # the admins' user list shows the same figures
    r = st.get("/api/users", token=st.admin_token)
    assert r.status_code == 200, r.text
    me = [u for u in r.json() if u["_id"] == mod["_id"]][0]
    assert me["totalTicketsResolved"] == 1, me
    assert abs(me["averageResolutionTimeHours"] - 10.0) < 0.02, me


# --- 7. manual assignment ---------------------------------------------------

def test_runner_never_overrides_manual_assignment_or_completed_status(
        make_stack, tmp_path):
    st = runner_stack(make_stack, tmp_path)
    billing = moderator(st, BILLING_SKILLS)
    other = moderator(st, FRONTEND_SKILLS)
    _, ctoken = st.signup()

    st.stop_daemon()                    # the runner is off meanwhile
    by_hand = st.create_ticket(ctoken, *BILLING_TICKET)["_id"]
    st.probe.assign(by_hand, other["_id"])    # as an admin would
    done = st.create_ticket(ctoken, *BILLING_TICKET)["_id"]
    r = st.patch("/api/tickets/%s/status" % done, token=st.admin_token,
                 json={"status": "Completed"})
    assert r.status_code == 200, r.text
    assert st.probe.ticket(by_hand)["triage"] is None
    st.start_daemon()

    row = wait_ticket(st, by_hand, triaged, what="triage")
    row2 = wait_ticket(st, done, triaged, what="triage")
    states = st.wait_jobs_settled()
    assert "dead" not in states, (states, st.probe.jobs())
    row = st.probe.ticket(by_hand)
    assert row["assignedTo"] == other["_id"], row
    assert row["status"] == "To-Do", row
    assert row["triage"]["provider"] == "offline", row
    # nobody was told the ticket went to the billing moderator
    assert not [j for j in st.probe.jobs(kind="email", containing=by_hand)
                if j["payload"]["template"] == "assigned"
                and j["payload"]["to"] == billing["email"]]

    row2 = st.probe.ticket(done)
    assert row2["status"] == "Completed", row2
    assert row2["triage"] is not None, row2


# --- 8. presence ------------------------------------------------------------

def test_assignment_skips_offline_and_dnd_moderators(make_stack, tmp_path):
    st = runner_stack(make_stack, tmp_path)
    away = {}
    for status in ("offline", "dnd"):
        user, token = st.make_user("moderator", FRONTEND_SKILLS,
                                   prefix=status)
        r = st.patch("/api/auth/status", token=token,
                     json={"status": status})
        assert r.status_code == 200 and r.json()["status"] == status, r.text
        away[status] = user
    online = moderator(st, FRONTEND_SKILLS, prefix="online")
    _, ctoken = st.signup()

    # three tickets: with presence ignored, the tie-break (least recently
    # assigned) would hand the away moderators some of them
    ids = [st.create_ticket(ctoken, *FRONTEND_TICKET)["_id"]
           for _ in range(3)]
    for tid in ids:
        row = wait_ticket(st, tid, assigned, what="assignment")
        assert row["assignedTo"] == online["_id"], row["assignment"]
        cands = {c["_id"]: c for c in row["assignment"]["candidates"]}
        for status, user in away.items():
            assert cands[user["_id"]]["status"] == status, cands
            assert cands[user["_id"]]["eligible"] is False, cands
        assert cands[online["_id"]]["eligible"] is True, cands


# --- 10. lease recovery -----------------------------------------------------

def test_running_job_with_expired_lease_is_claimed_again(make_stack,
                                                         tmp_path):
    st = runner_stack(make_stack, tmp_path)
    _, ctoken = st.signup()
    st.stop_daemon()
    expired = st.create_ticket(ctoken, *FRONTEND_TICKET)["_id"]
    leased = st.create_ticket(ctoken, *DEVOPS_TICKET)["_id"]
    jobs = {tid: st.probe.jobs(kind="triage", containing=tid)[0]["_id"]
            for tid in (expired, leased)}
    # two runners that died holding a claim: one lease is over, the other
    # runs 2.5 s longer
    now = st.now_ms()
    until = {expired: now - 1000, leased: now + 2500}
    for tid, job in jobs.items():
        assert st.probe.set_fields("jobs", job, state="running",
                                   attempts=1, leaseUntil=until[tid]) == 1
    st.start_daemon()

    wait_ticket(st, expired, triaged, timeout=5, what="triage")
    wait_ticket(st, leased, triaged, timeout=8, what="triage")
    st.wait_jobs_settled()
    for tid, job in jobs.items():
        row = st.probe.job(job)
        assert row["state"] == "done", row
        assert row["attempts"] == 2, row        # claimed once more
        # a lease still running is respected: not claimed before its end
        assert row["updatedAt"] >= until[tid], (row, until[tid])

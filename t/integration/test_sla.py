"""SLA (issue 15 item 3): response and resolution targets per priority
(ticket_sla, ticket_sla_warning), the dates set at triage and moved by a
priority change (PATCH /api/tickets/:id/priority), the staff-only "sla"
object, the warning and breach jobs, GET /api/tickets?sla=, and
analytics' "% within SLA" per priority -- on the real nginx + module +
ticketd, on SQLite and (TEST_STORE=mongodb) on MongoDB.

Dates are checked against createdAt plus the configured targets, which
the tests choose; situations in the past are made by backdating a
ticket's createdAt through the store probe before its priority is set
(the dates are computed from createdAt then), so no test waits for hours.
The job tests use targets of seconds and poll for the outcome.
"""

import subprocess

import pytest
from hypothesis import given, strategies as hs

from conftest import (REPO, TICKETD, assert_error, nginx_test, poll,
                      render_conf, unique_name)
from test_api_properties import budget
from test_jobs import RUNNER_ARGS, mails_to, outbox_mails

HOUR = 3600 * 1000
# the defaults (README): response / resolution per priority, in ms
DEFAULTS = {"High": (1 * HOUR, 8 * HOUR), "Medium": (4 * HOUR, 24 * HOUR),
            "Low": (24 * HOUR, 72 * HOUR)}


def iso_ms(text):
    """Milliseconds of an ISO-8601 UTC date as the API writes it."""
    import datetime
    d = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(d.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000
               + 0.5)


def get_ticket(st, tid, token):
    r = st.get("/api/tickets/%s" % tid, token=token)
    assert r.status_code == 200, r.text
    return r.json()["ticket"]


def set_priority(st, tid, priority, token, expect=200):
    r = st.patch("/api/tickets/%s/priority" % tid, token=token,
                 json={"priority": priority})
    assert r.status_code == expect, (r.status_code, r.text)
    return r.json().get("ticket") if expect == 200 else r


def backdated_ticket(st, user_token, age_ms, priority):
    """A ticket created age_ms ago (its createdAt backdated in the store)
    with priority set by the admin; returns its id."""
    t = st.create_ticket(user_token)
    st.probe.set_fields("tickets", t["_id"],
                        createdAt=st.now_ms() - age_ms)
    set_priority(st, t["_id"], priority, st.admin_token)
    return t["_id"]


def list_ids(st, token, query):
    ids, page = [], 1
    while True:
        r = st.get("/api/tickets?limit=100&page=%d&%s" % (page, query),
                   token=token)
        assert r.status_code == 200, r.text
        body = r.json()
        ids += [t["_id"] for t in body["tickets"]]
        if page >= body["pagination"]["pages"]:
            return ids
        page += 1


# --- dates, visibility, priority changes (default stack, no runner) -------

def test_priority_change_sets_the_default_targets_from_created_at(stack):
    _, utok = stack.make_user()
    t = stack.create_ticket(utok)
    assert get_ticket(stack, t["_id"], stack.admin_token)["sla"] is None

    for prio in ("High", "Low", "Medium"):
        doc = set_priority(stack, t["_id"], prio, stack.admin_token)
        created = iso_ms(doc["createdAt"])
        resp, res = DEFAULTS[prio]
        assert doc["priority"] == prio
        assert iso_ms(doc["sla"]["firstResponseDue"]) == created + resp
        assert iso_ms(doc["sla"]["resolutionDue"]) == created + res
        # deadline is the resolution date (the original schema's field)
        assert doc["deadline"] == doc["sla"]["resolutionDue"]
        assert doc["sla"]["breached"] is False
        row = stack.probe.ticket(t["_id"])
        assert row["deadline"] == created + res
        assert row["firstResponseDue"] == created + resp

    # the jobs of the last dates are stored, deduplicated by date
    breach = [j for j in stack.probe.jobs(kind="sla_breach")
              if j["payload"]["ticketId"] == t["_id"]]
    dues = {(j["payload"]["target"], j["payload"]["due"]) for j in breach}
    created = iso_ms(t["createdAt"])
    assert ("response", created + DEFAULTS["Medium"][0]) in dues
    assert ("resolution", created + DEFAULTS["Medium"][1]) in dues
    assert len(breach) == 2 * 3


def test_sla_is_for_staff_only(stack):
    user, utok = stack.make_user()
    t = stack.create_ticket(utok)
    set_priority(stack, t["_id"], "High", stack.admin_token)

    assert "sla" not in get_ticket(stack, t["_id"], utok)
    r = stack.get("/api/tickets?limit=100", token=utok)
    assert r.status_code == 200
    assert all("sla" not in x for x in r.json()["tickets"])
    assert_error(stack.get("/api/tickets?sla=breached", token=utok), 403)

    r = stack.get("/api/tickets?limit=100", token=stack.admin_token)
    mine = [x for x in r.json()["tickets"] if x["_id"] == t["_id"]]
    assert mine and mine[0]["sla"]["resolutionDue"] is not None


def test_priority_route_rights_and_bad_input(stack):
    user, utok = stack.make_user()
    mod, mtok = stack.make_user("moderator")
    t = stack.create_ticket(utok)
    before = stack.probe.ticket(t["_id"])

    set_priority(stack, t["_id"], "High", utok, expect=403)
    # a moderator not on the ticket does not see it
    set_priority(stack, t["_id"], "High", mtok, expect=404)
    for bad in ("high", "Urgent", "", 3, None):
        r = stack.patch("/api/tickets/%s/priority" % t["_id"],
                        token=stack.admin_token, json={"priority": bad})
        assert_error(r, 400)
    set_priority(stack, "0" * 24, "High", stack.admin_token, expect=404)
    assert stack.probe.ticket(t["_id"]) == before

    # the assigned moderator may
    stack.probe.assign(t["_id"], mod["_id"])
    doc = set_priority(stack, t["_id"], "Low", mtok)
    assert doc["priority"] == "Low"


def test_list_filter_breached_and_due_soon(stack):
    _, utok = stack.make_user()
    # High: 1 h response, 8 h resolution, warning at 80 %
    late = backdated_ticket(stack, utok, 2 * HOUR, "High")
    soon = backdated_ticket(stack, utok, 50 * 60 * 1000, "High")
    fresh = backdated_ticket(stack, utok, 0, "High")
    answered = backdated_ticket(stack, utok, 50 * 60 * 1000, "High")
    r = stack.post("/api/tickets/%s/comments" % answered,
                   token=stack.admin_token, json={"text": "On it"})
    assert r.status_code == 200, r.text

    breached = list_ids(stack, stack.admin_token, "sla=breached")
    due_soon = list_ids(stack, stack.admin_token, "sla=due_soon")
    assert late in breached and late not in due_soon
    assert soon in due_soon and soon not in breached
    assert fresh not in breached and fresh not in due_soon
    # responded: the response target is met; resolution is hours away
    assert answered not in breached and answered not in due_soon

    # the filter agrees with the objects it returns
    for tid in (late, soon, fresh, answered):
        sla = get_ticket(stack, tid, stack.admin_token)["sla"]
        assert sla["breached"] == (tid in breached)
        assert sla["dueSoon"] == (tid in due_soon)
    assert get_ticket(stack, answered, stack.admin_token)["sla"][
        "firstResponseAt"] is not None

    for bad in ("Breached", "soon", "", "breached,due_soon"):
        assert_error(stack.get("/api/tickets?sla=%s" % bad,
                               token=stack.admin_token), 400)


def test_requester_comment_is_no_first_response(stack):
    _, utok = stack.make_user()
    tid = backdated_ticket(stack, utok, 2 * HOUR, "High")
    r = stack.post("/api/tickets/%s/comments" % tid,
                   token=stack.admin_token, json={"text": "Hello"})
    assert r.status_code == 200
    first = stack.probe.ticket(tid)["firstResponseAt"]
    # answered late: marked at the missed date
    assert first is not None
    row = stack.probe.ticket(tid)
    assert row["slaBreachedAt"] == row["firstResponseDue"]
    r = stack.post("/api/tickets/%s/comments" % tid, token=utok,
                   json={"text": "Thanks"})
    assert r.status_code == 200
    assert stack.probe.ticket(tid)["firstResponseAt"] == first

    # a ticket whose only comments are its creator's has no response
    mod, mtok = stack.make_user("moderator")
    t = stack.create_ticket(mtok)          # a moderator's own ticket
    set_priority(stack, t["_id"], "High", stack.admin_token)
    stack.probe.assign(t["_id"], mod["_id"])
    r = stack.post("/api/tickets/%s/comments" % t["_id"], token=mtok,
                   json={"text": "note to self"})
    assert r.status_code == 200
    assert stack.probe.ticket(t["_id"])["firstResponseAt"] is None


def history(st, tid, token):
    r = st.get("/api/tickets/%s/history" % tid, token=token)
    assert r.status_code == 200, r.text
    return r.json()["history"]


def sla_entries(st, tid, token):
    return [h for h in history(st, tid, token) if h["action"] == "sla"]


def test_history_of_priority_changes_and_breaches(stack):
    user, utok = stack.make_user()
    t = stack.create_ticket(utok)
    tid = t["_id"]
    set_priority(stack, tid, "High", stack.admin_token)
    set_priority(stack, tid, "High", stack.admin_token)   # no change
    set_priority(stack, tid, "Low", stack.admin_token)

    # a priority set by hand: public entries by the staff member, in order
    for token in (stack.admin_token, utok):
        prio = [h for h in history(stack, tid, token)
                if h["action"] == "priority"]
        assert [(h["from"], h["to"]) for h in prio] == \
            [(None, "High"), ("High", "Low")]
        assert all(h["staffOnly"] is False and h["actor"] is not None
                   for h in prio)
    assert prio[0]["actor"]["_id"] == stack.admin["_id"]
    assert sla_entries(stack, tid, stack.admin_token) == []

    # answered late: the breach is marked with a staff-only "sla" entry
    late = backdated_ticket(stack, utok, 2 * HOUR, "High")
    r = stack.post("/api/tickets/%s/comments" % late,
                   token=stack.admin_token, json={"text": "Sorry, late"})
    assert r.status_code == 200, r.text
    marks = sla_entries(stack, late, stack.admin_token)
    assert [(m["actor"], m["from"], m["to"], m["staffOnly"])
            for m in marks] == \
        [(None, None, {"breached": "firstResponse"}, True)]
    assert sla_entries(stack, late, utok) == []
    # a second late reply marks nothing more
    stack.post("/api/tickets/%s/comments" % late, token=stack.admin_token,
               json={"text": "Again"})
    assert len(sla_entries(stack, late, stack.admin_token)) == 1

    # answered in time, completed past the resolution date: "resolution"
    done = backdated_ticket(stack, utok, DEFAULTS["High"][1] + HOUR, "High")
    stack.probe.set_fields("tickets", done,
                           firstResponseAt=stack.now_ms() - 9 * HOUR)
    r = stack.patch("/api/tickets/%s/status" % done, token=stack.admin_token,
                    json={"status": "Completed"})
    assert r.status_code == 200, r.text
    marks = sla_entries(stack, done, stack.admin_token)
    assert [(m["actor"], m["to"], m["staffOnly"]) for m in marks] == \
        [(None, {"breached": "resolution"}, True)]
    row = stack.probe.ticket(done)
    assert row["slaBreachedAt"] == row["deadline"]

    # completed in time: no mark, no entry
    ok = backdated_ticket(stack, utok, 0, "High")
    r = stack.patch("/api/tickets/%s/status" % ok, token=stack.admin_token,
                    json={"status": "Completed"})
    assert r.status_code == 200, r.text
    assert sla_entries(stack, ok, stack.admin_token) == []
    assert stack.probe.ticket(ok)["slaBreachedAt"] is None

    # a refused priority change records nothing
    before = history(stack, tid, stack.admin_token)
    set_priority(stack, tid, "High", utok, expect=403)
    assert history(stack, tid, stack.admin_token) == before


def test_analytics_within_sla_per_priority(stack):
    _, utok = stack.make_user()
    # completed in time, completed late, and open ones
    for prio in ("High", "Medium", "Low"):
        ok = backdated_ticket(stack, utok, 0, prio)
        stack.post("/api/tickets/%s/comments" % ok, token=stack.admin_token,
                   json={"text": "Done soon"})
        late = backdated_ticket(stack, utok, DEFAULTS[prio][1] + HOUR, prio)
        backdated_ticket(stack, utok, 0, prio)
        for tid in (ok, late):
            r = stack.patch("/api/tickets/%s/status" % tid,
                            token=stack.admin_token,
                            json={"status": "Completed"})
            assert r.status_code == 200, r.text

    r = stack.get("/api/analytics", token=stack.admin_token)
    assert r.status_code == 200, r.text
    sla = r.json()["sla"]

    # the same figures from the tickets themselves
    completed = {p: [0, 0] for p in DEFAULTS}
    for tid in list_ids(stack, stack.admin_token, "status=Completed"):
        doc = get_ticket(stack, tid, stack.admin_token)
        if doc["sla"] is None:
            continue
        completed[doc["priority"]][0] += 1
        completed[doc["priority"]][1] += bool(doc["sla"]["breached"])
    for prio, (n, b) in completed.items():
        assert n >= 2
        assert sla[prio]["completed"] == n
        assert sla[prio]["breached"] == b
        assert abs(sla[prio]["withinSla"] - 100.0 * (n - b) / n) < 1e-9


def _clear_of_boundaries(case):
    """Ages at least a minute from the warning (80 %) and due dates of the
    response target, so the test's clock and the server's agree."""
    prio, age_min = case[0], case[1]
    resp_min = DEFAULTS[prio][0] // 60000
    return all(abs(age_min - b) > 1 for b in (resp_min * 0.8, resp_min))


@budget(20)
@given(hs.tuples(hs.sampled_from(sorted(DEFAULTS)),
                 hs.integers(min_value=0, max_value=100 * 60),
                 hs.booleans(), hs.booleans()).filter(_clear_of_boundaries))
def test_breached_and_due_soon_follow_the_dates_on_any_ticket(stack, case):
    """For any priority, age, answered or not, completed or not: the sla
    object and both filters say what the dates say.  The staff answer
    (if any) and the completion happen now, at the ticket's age, so the
    response date -- the earliest -- decides: past it, breached (marked
    when answered or completed late); otherwise due soon while open,
    unanswered and past 80 % of the response target."""
    prio, age_min, answered, completed = case
    _, utok = stack.make_user()
    tid = backdated_ticket(stack, utok, age_min * 60000, prio)
    if answered:
        r = stack.post("/api/tickets/%s/comments" % tid,
                       token=stack.admin_token, json={"text": "Looking"})
        assert r.status_code == 200, r.text
    if completed:
        r = stack.patch("/api/tickets/%s/status" % tid,
                        token=stack.admin_token, json={"status": "Completed"})
        assert r.status_code == 200, r.text

    resp_min = DEFAULTS[prio][0] // 60000
    breached = age_min > resp_min
    due_soon = (not breached and not completed and not answered
                and age_min >= resp_min * 0.8)
    sla = get_ticket(stack, tid, stack.admin_token)["sla"]
    assert (sla["breached"], sla["dueSoon"]) == (breached, due_soon), sla
    r = stack.get("/api/tickets?limit=100&sla=breached&search=%s" %
                  get_ticket(stack, tid, stack.admin_token)["title"],
                  token=stack.admin_token)
    assert r.status_code == 200
    assert (tid in [t["_id"] for t in r.json()["tickets"]]) == breached
    r = stack.get("/api/tickets?limit=100&sla=due_soon&search=%s" %
                  get_ticket(stack, tid, stack.admin_token)["title"],
                  token=stack.admin_token)
    assert (tid in [t["_id"] for t in r.json()["tickets"]]) == due_soon


# --- configuration --------------------------------------------------------

@pytest.mark.parametrize("directive,value,words", [
    ("ticket_sla", "High=1x/8h", ["ticket_sla", "1x"]),
    ("ticket_sla", "Urgent=1h/8h", ["ticket_sla", "Urgent"]),
    ("ticket_sla", "High=8h/1h", ["ticket_sla", "longer"]),
    ("ticket_sla", "High=1h", ["ticket_sla", "Priority=response"]),
    ("ticket_sla_warning", "100%", ["ticket_sla_warning", "1% to 99%"]),
    ("ticket_sla_warning", "soon", ["ticket_sla_warning", "soon"]),
])
def test_bad_sla_settings_are_refused_by_nginx_and_ticketd(
        tmp_path, directive, value, words):
    (tmp_path / "logs").mkdir()
    (tmp_path / "tmp").mkdir()
    secret = tmp_path / "jwt.secret"
    secret.write_text("s" * 64)
    env = {"BCRYPT_COST": "4"}
    env["SLA" if directive == "ticket_sla" else "SLA_WARNING"] = value
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_conf(tmp_path, 18098, tmp_path / "t.db", secret,
                                tmp_path / "t.sock", env))
    r = nginx_test(tmp_path, conf)
    assert r.returncode != 0
    assert all(w in r.stderr for w in words), r.stderr
    d = subprocess.run([str(TICKETD), "-t", "-c", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert d.returncode != 0
    out = d.stdout + d.stderr
    assert all(w in out for w in words), out


def test_good_sla_settings_pass_both(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "tmp").mkdir()
    secret = tmp_path / "jwt.secret"
    secret.write_text("s" * 64)
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_conf(
        tmp_path, 18097, tmp_path / "t.db", secret, tmp_path / "t.sock",
        {"BCRYPT_COST": "4", "SLA": "High=30m/4h Low=2d/7d",
         "SLA_WARNING": "45m"}))
    r = nginx_test(tmp_path, conf)
    assert r.returncode == 0, r.stderr
    d = subprocess.run([str(TICKETD), "-t", "-c", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert d.returncode == 0, d.stdout + d.stderr


# --- the jobs (a stack with the runner on, targets of seconds) ------------

def sla_runner_stack(make_stack, tmp_path, **env):
    """A stack whose ticketd runs jobs (offline triage, mail to the outbox
    st.outbox) with these nginx-conf.sh settings; its admin signed up."""
    st = make_stack(TICKETD_ARGS=" ".join(
        RUNNER_ARGS + ["--triage-provider", "offline", "--mail-transport",
                       "outbox", "--outbox", str(tmp_path / "outbox")]),
        **env)
    st.outbox = tmp_path / "outbox"
    st.admin, st.admin_token = st.signup(username=unique_name("admin"))
    assert st.admin["role"] == "admin", st.admin
    return st


def test_triage_sets_configured_targets_per_priority(make_stack, tmp_path):
    st = sla_runner_stack(make_stack, tmp_path,
                          SLA="High=2h/10h Medium=3h/20h Low=5h/30h")
    _, utok = st.make_user()
    texts = {"High": ("Site is down", "Production outage, urgent."),
             "Low": ("Typo on the page", "Minor typo in the footer."),
             "Medium": ("Export button", "The export gives a wrong file.")}
    want = {"High": (2 * HOUR, 10 * HOUR), "Medium": (3 * HOUR, 20 * HOUR),
            "Low": (5 * HOUR, 30 * HOUR)}
    ids = {p: st.create_ticket(utok, *texts[p])["_id"] for p in texts}
    for prio, tid in ids.items():
        doc = poll(lambda: (lambda d: d if d["sla"] else None)(
            get_ticket(st, tid, st.admin_token)), 15)
        assert doc, "ticket %s not triaged" % tid
        assert doc["priority"] == prio
        created = iso_ms(doc["createdAt"])
        assert iso_ms(doc["sla"]["firstResponseDue"]) == \
            created + want[prio][0]
        assert iso_ms(doc["sla"]["resolutionDue"]) == created + want[prio][1]
        assert "sla" not in get_ticket(st, tid, utok)


def test_warning_mail_then_breach_marked_by_the_jobs(make_stack, tmp_path):
    st = sla_runner_stack(make_stack, tmp_path,
                          SLA="High=3s/6s Medium=3s/6s Low=3s/6s",
                          SLA_WARNING="50%",
                          PUBLIC_URL="https://help.example.com")
    _, utok = st.make_user()
    # a second admin: warnings go to the assignee and to every admin
    admin2, _ = st.make_user("admin", prefix="adm")
    t = st.create_ticket(utok, "Site is down", "Production outage, urgent.")
    tid = t["_id"]

    # the response target is missed (nobody answers): marked by the job
    row = poll(lambda: (lambda r: r if r["slaBreachedAt"] else None)(
        st.probe.ticket(tid)), 30)
    assert row, (st.probe.ticket(tid), st.probe.jobs(kind="sla_breach"))
    assert row["slaBreachedAt"] == row["firstResponseDue"]
    doc = get_ticket(st, tid, st.admin_token)
    assert doc["sla"]["breached"] is True
    assert iso_ms(doc["sla"]["breachedAt"]) == row["firstResponseDue"]
    assert tid in list_ids(st, st.admin_token, "sla=breached")

    # the warning went to the assignee (one of the two admins, the only
    # staff) and to every admin -- each once per target, with the link
    for who in (st.admin["email"], admin2["email"]):
        mails = poll(lambda: mails_to(outbox_mails(st.outbox), who,
                                      "SLA warning") or None, 15)
        assert mails, (who, sorted(outbox_mails(st.outbox)))
        body = mails[0].get_body(("plain",)).get_content()
        assert "https://help.example.com/tickets/%s" % tid in body
    st.wait_jobs_settled()
    for who in (st.admin["email"], admin2["email"]):
        warnings = mails_to(outbox_mails(st.outbox), who, "SLA warning")
        assert 1 <= len(warnings) <= 2     # response and resolution, no more
    # the requester is never told
    assert not mails_to(outbox_mails(st.outbox), doc["createdBy"]["email"],
                        "SLA warning")
    # one breach mark: the resolution's job finds it marked already
    assert st.probe.ticket(tid)["slaBreachedAt"] == row["firstResponseDue"]
    # its history: one staff-only "sla" entry by ticketd, not for the user
    marks = sla_entries(st, tid, st.admin_token)
    assert [(m["actor"], m["to"], m["staffOnly"]) for m in marks] == \
        [(None, {"breached": "firstResponse"}, True)]
    assert sla_entries(st, tid, utok) == []

"""GET /api/analytics (admin only; every metric present on an empty store;
counts that match what the store holds), and a last sweep of hostile
input over every ticket, comment, moderator-request and analytics route:
never a 5xx."""

import datetime
import http.client
import json
import re

import pytest

from conftest import assert_error, contains_key

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS
DATE = re.compile(r"^(\d{4}-\d\d-\d\d)")
TOP_KEYS = {"totals", "daily", "backlog", "firstResponse", "resolution",
            "moderators", "triage", "jobs"}
MODERATOR_KEYS = {"_id", "username", "email", "status", "active", "resolved",
                  "averageResolutionTimeHours"}


def analytics(st, token):
    r = st.get("/api/analytics", token=token)
    assert r.status_code == 200, r.text
    data = r.json()
    assert TOP_KEYS <= set(data), sorted(data)
    assert not contains_key(data, "password")
    return data


def job_counts(st):
    counts = {"pending": 0, "running": 0, "done": 0, "dead": 0}
    counts.update(st.probe.job_states())
    return counts


def check_jobs_match_table(st, token):
    """The jobs block equals the jobs table (read around the request, in
    case the daemon moves a job meanwhile)."""
    for _ in range(5):
        before = job_counts(st)
        got = analytics(st, token)["jobs"]
        if job_counts(st) == before:
            assert {k: got[k] for k in before} == before, (got, before)
            return
    pytest.fail("jobs table kept changing")


def utc_date(ms):
    return datetime.datetime.fromtimestamp(
        ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%d")


def daily_by_date(data):
    out = {}
    for entry in data["daily"]:
        assert {"date", "created", "resolved"} <= set(entry), entry
        m = DATE.match(entry["date"])
        assert m, entry
        assert m.group(1) not in out, ("date twice", entry)
        out[m.group(1)] = entry
    return out


def start_with_admin(make_stack):
    st = make_stack()
    st.admin, st.admin_token = st.signup()
    assert st.admin["role"] == "admin"
    return st


# --- who --------------------------------------------------------------------

def test_analytics_is_admin_only(stack, admin):
    _, admin_token = admin
    _, token = stack.signup()
    _, mod_token = stack.make_user("moderator", prefix="mod")
    for tok in (token, mod_token):
        assert_error(stack.get("/api/analytics", token=tok), 403)
    assert_error(stack.get("/api/analytics"), 401,
                 "Access Denied. No token found.")
    analytics(stack, admin_token)


# --- an empty store ---------------------------------------------------------

def test_fresh_store_reports_every_metric_at_zero(make_stack):
    st = start_with_admin(make_stack)
    data = analytics(st, st.admin_token)

    totals = data["totals"]
    assert totals["tickets"] == 0
    assert {"To-Do", "In Progress", "Completed"} <= set(totals["byStatus"])
    assert all(v == 0 for v in totals["byStatus"].values()), totals
    assert {"Low", "Medium", "High"} <= set(totals["byPriority"])
    assert all(v == 0 for v in totals["byPriority"].values()), totals

    assert isinstance(data["daily"], list) and len(data["daily"]) <= 31
    for entry in daily_by_date(data).values():
        assert entry["created"] == 0 and entry["resolved"] == 0, entry

    assert data["backlog"] == {"under1d": 0, "d1to3": 0, "d3to7": 0,
                               "over7d": 0}
    for key in ("firstResponse", "resolution"):
        assert data[key] == {"medianHours": None, "p90Hours": None,
                             "samples": 0}, (key, data[key])

    assert isinstance(data["moderators"], list)
    for m in data["moderators"]:
        assert MODERATOR_KEYS <= set(m), m
        assert m["active"] == 0 and m["resolved"] == 0, m

    triage = data["triage"]
    assert {"triaged", "pending", "byProvider", "fallbacks"} <= set(triage)
    assert triage["triaged"] == 0 and triage["pending"] == 0
    assert triage["fallbacks"] == 0
    assert not triage["byProvider"], triage       # {} or []

    assert set(data["jobs"]) >= {"pending", "running", "done", "dead"}
    check_jobs_match_table(st, st.admin_token)


# --- counts -----------------------------------------------------------------

def test_counts_match_the_store(make_stack):
    st = start_with_admin(make_stack)
    mod, mod_token = st.make_user("moderator", prefix="mod")
    _, token = st.signup()
    # (status, priority, age in hours, assigned to the moderator)
    plan = [
        ("To-Do", "High", 2, True),             # backlog under1d
        ("To-Do", "Low", 30, False),            # d1to3
        ("In Progress", "Medium", 5 * 24, True),   # d3to7
        ("In Progress", "High", 10 * 24, True),    # over7d
        ("To-Do", None, 40 * 24, False),        # over7d, outside daily
        ("Completed", "High", 10, True),        # resolved in 10 h
        ("Completed", "Low", 20, False),        # 20 h
        ("Completed", None, 50, False),         # 50 h
        ("To-Do", "Medium", 20 * 24, False),    # over7d
    ]
    now = st.now_ms()
    created_ms = []
    for status, priority, age_h, assigned in plan:
        t = st.create_ticket(token)
        ms = now - int(age_h * HOUR_MS)
        created_ms.append(ms)
        assert st.probe.set_fields("tickets", t["_id"], createdAt=ms,
                                   priority=priority) == 1
        if assigned:
            st.probe.assign(t["_id"], mod["_id"])
        if status != "To-Do":
            r = st.patch("/api/tickets/%s/status" % t["_id"],
                         token=st.admin_token, json={"status": status})
            assert r.status_code == 200, r.text
    done_ms = st.now_ms()

    data = analytics(st, st.admin_token)
    totals = data["totals"]
    assert totals["tickets"] == len(plan)
    assert {k: totals["byStatus"].get(k) for k in
            ("To-Do", "In Progress", "Completed")} == \
        {"To-Do": 4, "In Progress": 2, "Completed": 3}, totals
    assert {k: totals["byPriority"].get(k) for k in
            ("Low", "Medium", "High")} == \
        {"Low": 2, "Medium": 2, "High": 3}, totals

    assert data["backlog"] == {"under1d": 1, "d1to3": 1, "d3to7": 1,
                               "over7d": 3}, data["backlog"]

    res = data["resolution"]
    assert res["samples"] == 3, res
    assert res["medianHours"] == pytest.approx(20, abs=0.1), res
    assert 20 - 0.1 <= res["p90Hours"] <= 50 + 0.1, res
    assert res["p90Hours"] >= res["medianHours"]

    daily = daily_by_date(data)
    assert len(data["daily"]) <= 31
    want_created = {}
    for ms in created_ms:
        if now - ms < 29 * DAY_MS:
            want_created[utc_date(ms)] = want_created.get(utc_date(ms), 0) + 1
    for date, n in want_created.items():
        assert date in daily and daily[date]["created"] == n, (date, n, daily)
    assert sum(e["created"] for e in data["daily"]) == \
        sum(want_created.values()), data["daily"]
    assert utc_date(created_ms[4]) not in daily or \
        daily[utc_date(created_ms[4])]["created"] == 0
    resolved = sum(e["resolved"] for e in data["daily"])
    assert resolved == 3, data["daily"]
    assert daily[utc_date(done_ms)]["resolved"] == 3, daily

    by_id = {m["_id"]: m for m in data["moderators"]}
    assert mod["_id"] in by_id, data["moderators"]
    m = by_id[mod["_id"]]
    assert MODERATOR_KEYS <= set(m), m
    assert m["username"] == mod["username"] and m["email"] == mod["email"]
    assert m["active"] == 3, m

    check_jobs_match_table(st, st.admin_token)
    assert len(st.probe.jobs(kind="triage")) == len(plan)


def test_first_response_is_null_without_staff_comments(make_stack):
    st = start_with_admin(make_stack)
    _, token = st.signup()
    st.create_ticket(token)
    data = analytics(st, st.admin_token)
    assert data["firstResponse"]["samples"] == 0
    assert data["firstResponse"]["medianHours"] is None
    assert data["resolution"] == {"medianHours": None, "p90Hours": None,
                                  "samples": 0}
    assert data["totals"]["tickets"] == 1
    assert data["backlog"]["under1d"] == 1


def test_first_response_is_the_first_staff_comment(make_stack):
    st = start_with_admin(make_stack)
    mod, mod_token = st.make_user("moderator", prefix="mod")
    _, token = st.signup()
    now = st.now_ms()
    for age_h, who in ((2, "admin"), (4, "mod"), (9, "admin")):
        t = st.create_ticket(token)["_id"]
        assert st.probe.set_fields("tickets", t,
                                   createdAt=now - age_h * HOUR_MS) == 1
        st.probe.assign(t, mod["_id"])
        staff = st.admin_token if who == "admin" else mod_token
        for tok, text in ((staff, "first"), (token, "reply"),
                          (mod_token, "again")):
            r = st.post("/api/tickets/%s/comments" % t, token=tok,
                        json={"text": text})
            assert r.status_code == 200, r.text
    st.create_ticket(token)                     # no answer yet: no sample
    fr = analytics(st, st.admin_token)["firstResponse"]
    assert fr["samples"] == 3, fr
    assert fr["medianHours"] == pytest.approx(4, abs=0.1), fr
    assert 4 - 0.1 <= fr["p90Hours"] <= 9 + 0.1, fr


# --- hostile input everywhere -----------------------------------------------

HOSTILE_VALUES = [
    {"$ne": None}, {"$gt": ""}, [], ["a", "b"], [{"$ne": 1}], 10 ** 30,
    -(10 ** 30), 2 ** 63, -1, 0, 1.5, 1e308, -1e308, True, False, None,
    "", " ", "\u0000", "a\u0000b", "\U0001F600" * 10, "x" * 20000,
    "<script>alert(1)</script>", "'; DROP TABLE tickets; --",
]

RAW_BODIES = [
    b'{"title":1e999,"description":"d"}',
    b'{"text":1e999}', b'{"skills":1e999}', b'{"status":1e999}',
    b'{"action":1e999}', b"\xff\xfe\xfd", b'{"title":"\xff\xfe",'
    b'"description":"\xc3"}', b'{"text":"\xed\xa0\x80"}',
    b'{"skills":"\xc0\xaf"}', b'{"status":"Completed\x00"}',
    b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b"{}", b"[]", b"null", b"0", b'"x"', b"", b"{\"title\":",
    b'{"title":"a","title":"b"}',
]

HOSTILE_QUERIES = [
    "page=%ff%fe", "limit=%00", "search=%00", "search=%ff%fe%fd",
    "search=%c3", "search=%ed%a0%80", "status=%00Completed",
    "status=Completed%00", "priority=High%00", "page=99999999999999999999",
    "page=9223372036854775807", "page=9223372036854775808",
    "limit=99999999999999999999", "page=-9223372036854775808", "page=1e3",
    "page=0x10", "page=+1", "page=%201", "limit=10%20", "page=1&page=2",
    "search=%25", "search=%", "search=%2", "search=\\", "search=%5C%25%5F",
    "search[$ne]=1", "status[$ne]=x", "page[]=1", "=x", "&&&", "%",
    "search=" + "%e2%82%ac" * 200, "search=" + "%e2%82%ac" * 201,
    "search=" + "a" * 5000,
]

BAD_IDS = ["%00", "%ff", "ffffffffffffffffffffffff%00", "..%2f..%2fusers",
           "'%20OR%201=1", "%25", "a" * 300, "ffffffffffffffffffffffff%2f",
           "-1", "0", "%e2%82%ac" * 8]


def test_no_route_answers_5xx_to_hostile_input(stack, admin):
    _, admin_token = admin
    mod, mod_token = stack.make_user("moderator", prefix="mod")
    _, user_token = stack.signup()
    ticket = stack.create_ticket(user_token)
    stack.probe.assign(ticket["_id"], mod["_id"])
    _, applicant_token = stack.signup()
    r = stack.post("/api/mod-requests", token=applicant_token,
                   json={"skills": "go"})
    request_id = r.json()["request"]["_id"] if r.status_code == 201 \
        else "ffffffffffffffffffffffff"
    tid = ticket["_id"]
    tokens = [admin_token, mod_token, user_token, None]

    body_routes = [
        ("POST", "/api/tickets", ("title", "description")),
        ("PATCH", "/api/tickets/%s/status" % tid, ("status",)),
        ("POST", "/api/tickets/%s/comments" % tid, ("text",)),
        ("POST", "/api/mod-requests", ("skills",)),
        ("POST", "/api/mod-requests/%s/decide" % "ffffffffffffffffffffffff",
         ("action",)),
        ("PATCH", "/api/mod-requests/%s" % "ffffffffffffffffffffffff",
         ("action",)),
    ]
    get_routes = ["/api/tickets", "/api/tickets/%s" % tid,
                  "/api/tickets/%s/comments" % tid, "/api/mod-requests",
                  "/api/mod-requests/me", "/api/analytics"]
    id_routes = [("GET", "/api/tickets/%s"), ("GET", "/api/tickets/%s/comments"),
                 ("POST", "/api/tickets/%s/comments"),
                 ("PATCH", "/api/tickets/%s/status"),
                 ("POST", "/api/mod-requests/%s/decide"),
                 ("PATCH", "/api/mod-requests/%s")]

    failures = []
    conn = [None]

    def send(method, path, token, body):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer %s" % token
        if body is not None:
            headers["Content-Length"] = str(len(body))
        for attempt in range(2):
            if conn[0] is None:
                conn[0] = http.client.HTTPConnection("127.0.0.1", stack.port,
                                                     timeout=15)
            try:
                conn[0].request(method, path, body=body, headers=headers)
                resp = conn[0].getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    conn[0].close()
                    conn[0] = None
                break
            except (http.client.HTTPException, OSError) as e:
                conn[0].close()
                conn[0] = None
                if attempt:
                    failures.append((method, path, body and body[:80],
                                     repr(e)))
                    return
        if resp.status >= 500:
            failures.append((method, path, body and body[:80], resp.status,
                             data[:200]))

    for method, path, fields in body_routes:
        for token in tokens:
            for value in HOSTILE_VALUES:
                for field in fields:
                    body = {f: "ok" for f in fields}
                    body[field] = value
                    send(method, path, token, json.dumps(body).encode())
                send(method, path, token, json.dumps(value).encode())
            for raw in RAW_BODIES:
                send(method, path, token, raw)

    for path in get_routes:
        for token in tokens:
            for q in HOSTILE_QUERIES:
                send("GET", path + "?" + q, token, None)

    for method, pattern in id_routes:
        for token in (admin_token, user_token):
            for bad in BAD_IDS + [request_id, tid]:
                body = None if method == "GET" else b'{"status":"Completed",' \
                    b'"text":"x","action":"reject"}'
                send(method, pattern % bad, token, body)

    # wrong methods and odd paths
    for method in ("PUT", "DELETE", "OPTIONS", "HEAD"):
        for path in get_routes + ["/api/tickets/%s/status" % tid]:
            send(method, path, admin_token, None)
    for path in ("/api/tickets/", "/api/tickets//comments",
                 "/api/tickets/%s/" % tid, "/api/tickets/%s/comments/" % tid,
                 "/api/tickets/%s/status/x" % tid, "/api/mod-requests/",
                 "/api/mod-requests//decide", "/api/mod-requests/me/x",
                 "/api/analytics/", "/api/analytics/x"):
        send("GET", path, admin_token, None)
        send("POST", path, admin_token, b"{}")
    if conn[0] is not None:
        conn[0].close()

    assert not failures, "\n".join(repr(f) for f in failures[:40])
    # the stack is still healthy afterwards
    assert stack.get("/api/health").json()["status"] == "ok"
    assert stack.get("/api/tickets/" + tid, token=user_token).status_code \
        == 200

"""Tickets: creating (validation, the triage job), listing (scope,
pagination, order, filters, literal search), reading one (visibility,
malformed ids, the staff-only assignment explanation) and status changes
(who may, the status_updated event, one stats job per ticket)."""

import json
import re
import threading

import pytest

from conftest import assert_error, contains_key
from test_socketio import Sio

OID = re.compile(r"^[0-9a-f]{24}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
# what a plain user reads; staff also get "helpfulNotes", "triage" (the
# provenance) and, on one ticket, "assignment" (DESIGN §7 staff-only:
# test_staff_only.py, test_notes.py)
TICKET_KEYS = {"_id", "title", "description", "status", "priority", "summary",
               "relatedSkills", "createdBy", "assignedTo", "deadline",
               "createdAt", "updatedAt", "firstResponseAt"}
PERSON_KEYS = {"_id", "email", "username", "status"}
HOUR_MS = 3600 * 1000


def check_person(value, user):
    assert isinstance(value, dict), value
    assert set(value) == PERSON_KEYS, value
    assert value["_id"] == user["_id"]
    assert value["email"] == user["email"]
    assert value["username"] == user["username"]
    assert value["status"] in ("online", "offline", "dnd")


def listing(stack, token, query="", expect=200):
    r = stack.get("/api/tickets" + query, token=token)
    assert r.status_code == expect, (r.status_code, r.text)
    return r.json()


def ids(tickets):
    return [t["_id"] for t in tickets]


def set_status(stack, token, ticket_id, status):
    return stack.patch("/api/tickets/%s/status" % ticket_id, token=token,
                       json={"status": status})


# --- creating ---------------------------------------------------------------

def test_create_answers_201_with_the_ticket_as_documented(stack):
    user, token = stack.signup()
    r = stack.post("/api/tickets", token=token,
                   json={"title": "Printer on fire",
                         "description": "It smells of toner."})
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["message"] == "Ticket created and processing started"
    t = body["ticket"]
    assert TICKET_KEYS <= set(t), sorted(t)
    assert OID.match(t["_id"]), t["_id"]
    assert t["title"] == "Printer on fire"
    assert t["description"] == "It smells of toner."
    assert t["status"] == "To-Do"
    assert "triage" not in t, t
    assert "helpfulNotes" not in t, t
    for k in ("priority", "summary", "deadline", "assignedTo",
              "firstResponseAt"):
        assert t[k] is None, (k, t[k])
    assert t["relatedSkills"] == []
    check_person(t["createdBy"], user)
    assert ISO.match(t["createdAt"]) and ISO.match(t["updatedAt"]), t
    assert not contains_key(body, "password")
    rows = stack.probe.tickets(_id=t["_id"])
    assert len(rows) == 1 and rows[0]["createdBy"] == user["_id"]


def test_create_trims_title_and_description(stack):
    _, token = stack.signup()
    t = stack.create_ticket(token, title="  \t Spaced out \n ",
                            description="\n  body text  \t")
    assert t["title"] == "Spaced out"
    assert t["description"] == "body text"
    row = stack.probe.ticket(t["_id"])
    assert (row["title"], row["description"]) == ("Spaced out", "body text")


@pytest.mark.parametrize("title,description", [
    ("t", "d"),                                     # lower bounds
    ("T" * 200, "D" * 10000),                       # exactly at the bounds
    ("  " + "T" * 200 + "  ", " " + "D" * 10000 + " "),   # at bound after trim
])
def test_create_accepts_lengths_within_bounds(stack, title, description):
    _, token = stack.signup()
    t = stack.create_ticket(token, title=title, description=description)
    assert t["title"] == title.strip()
    assert t["description"] == description.strip()


def test_create_counts_characters_not_bytes(stack):
    """200 non-ASCII characters are 400 bytes: still a valid title."""
    _, token = stack.signup()
    t = stack.create_ticket(token, title="é" * 200, description="ü" * 10000)
    assert t["title"] == "é" * 200
    assert len(t["description"]) == 10000


@pytest.mark.parametrize("body", [
    {"title": "T" * 201, "description": "d"},
    {"title": "t", "description": "D" * 10001},
    {"title": "", "description": "d"},
    {"title": "t", "description": ""},
    {"title": "   \t\n ", "description": "d"},
    {"title": "t", "description": " \n\t  "},
    {"description": "d"},
    {"title": "t"},
    {},
    {"title": 5, "description": "d"},
    {"title": "t", "description": 5},
    {"title": ["t"], "description": "d"},
    {"title": {"$ne": None}, "description": "d"},
    {"title": "t", "description": {"text": "d"}},
    {"title": None, "description": "d"},
    {"title": "t", "description": None},
    {"title": True, "description": "d"},
])
def test_create_rejects_invalid_fields_with_400(stack, body):
    _, token = stack.signup()
    before = stack.probe.count("tickets")
    assert_error(stack.post("/api/tickets", token=token, json=body), 400)
    assert stack.probe.count("tickets") == before


@pytest.mark.parametrize("raw", [b"[]", b'"title"', b"{", b"null",
                                 b'{"title":"a","title":"b","description":"d"}'])
def test_create_rejects_non_object_or_bad_json_with_400(stack, raw):
    _, token = stack.signup()
    r = stack.post("/api/tickets", token=token, data=raw,
                   headers={"Content-Type": "application/json"})
    assert_error(r, 400)


def test_create_needs_a_token(stack):
    assert_error(stack.post("/api/tickets", json={"title": "t",
                                                  "description": "d"}),
                 401, "Access Denied. No token found.")


def test_create_ignores_a_creator_given_in_the_body(stack):
    victim, _ = stack.signup()
    user, token = stack.signup()
    r = stack.post("/api/tickets", token=token,
                   json={"title": "mine", "description": "d",
                         "createdBy": victim["_id"]})
    if r.status_code == 400:            # refusing unknown keys is fine too
        return
    assert r.status_code == 201, r.text
    assert r.json()["ticket"]["createdBy"]["_id"] == user["_id"]
    assert stack.probe.ticket(
        r.json()["ticket"]["_id"])["createdBy"] == user["_id"]


def test_create_stores_exactly_one_triage_job_for_the_ticket(stack):
    _, token = stack.signup()
    tickets = [stack.create_ticket(token) for _ in range(3)]
    for t in tickets:
        jobs = stack.probe.jobs(kind="triage", containing=t["_id"])
        assert len(jobs) == 1, jobs
        assert jobs[0]["state"] in ("pending", "running", "done"), jobs
        assert t["_id"] in json.dumps(jobs[0]["payload"])


# --- listing ----------------------------------------------------------------

def test_list_scope_user_sees_only_own_tickets(stack):
    alice, alice_token = stack.signup()
    _, bob_token = stack.signup()
    mine = {stack.create_ticket(alice_token)["_id"] for _ in range(2)}
    theirs = stack.create_ticket(bob_token)["_id"]
    data = listing(stack, alice_token, "?limit=100")
    assert set(ids(data["tickets"])) == mine
    assert data["pagination"]["total"] == 2
    assert theirs not in ids(data["tickets"])
    for t in data["tickets"]:
        check_person(t["createdBy"], alice)


def test_list_scope_moderator_sees_assigned_or_created(stack):
    mod, mod_token = stack.make_user("moderator", prefix="mod")
    _, user_token = stack.signup()
    assigned = stack.create_ticket(user_token)
    not_assigned = stack.create_ticket(user_token)
    own = stack.create_ticket(mod_token)
    stack.probe.assign(assigned["_id"], mod["_id"])
    data = listing(stack, mod_token, "?limit=100")
    assert set(ids(data["tickets"])) == {assigned["_id"], own["_id"]}
    assert data["pagination"]["total"] == 2
    assert not_assigned["_id"] not in ids(data["tickets"])
    by_id = {t["_id"]: t for t in data["tickets"]}
    check_person(by_id[assigned["_id"]]["assignedTo"], mod)
    assert by_id[own["_id"]]["assignedTo"] is None


def test_list_scope_admin_sees_all(stack, admin):
    _, admin_token = admin
    _, token = stack.signup()
    t = stack.create_ticket(token)
    data = listing(stack, admin_token, "?limit=100")
    total = stack.probe.count("tickets")
    assert data["pagination"]["total"] == total
    assert t["_id"] in ids(listing(stack, admin_token, "?limit=100&search=" +
                                   t["title"])["tickets"])


def test_list_populates_people_without_passwords(stack, admin):
    _, admin_token = admin
    mod, _ = stack.make_user("moderator", prefix="mod")
    user, token = stack.signup()
    t = stack.create_ticket(token)
    stack.probe.assign(t["_id"], mod["_id"])
    data = listing(stack, token)
    [listed] = data["tickets"]
    assert TICKET_KEYS <= set(listed)
    check_person(listed["createdBy"], user)
    check_person(listed["assignedTo"], mod)
    r = stack.get("/api/tickets?limit=100", token=admin_token)
    assert not contains_key(r.json(), "password")
    assert "$2b$" not in r.text


def test_list_pagination_with_23_tickets(stack):
    _, token = stack.signup()
    created = {stack.create_ticket(token)["_id"] for _ in range(23)}

    first = listing(stack, token)                       # defaults
    assert first["pagination"] == {"total": 23, "page": 1, "pages": 3,
                                   "limit": 10}
    assert len(first["tickets"]) == 10
    seen = list(ids(first["tickets"]))
    for page, count in ((2, 10), (3, 3)):
        data = listing(stack, token, "?limit=10&page=%d" % page)
        assert data["pagination"] == {"total": 23, "page": page, "pages": 3,
                                      "limit": 10}
        assert len(data["tickets"]) == count
        seen += ids(data["tickets"])
    assert len(seen) == 23 and set(seen) == created

    beyond = listing(stack, token, "?limit=10&page=4")
    assert beyond["tickets"] == []
    assert beyond["pagination"]["total"] == 23
    assert beyond["pagination"]["page"] == 4
    assert beyond["pagination"]["pages"] == 3

    whole = listing(stack, token, "?limit=100")
    assert whole["pagination"] == {"total": 23, "page": 1, "pages": 1,
                                   "limit": 100}
    assert len(whole["tickets"]) == 23

    exact = listing(stack, token, "?limit=23")
    assert exact["pagination"]["pages"] == 1
    seven = listing(stack, token, "?limit=7&page=4")
    assert seven["pagination"]["pages"] == 4
    assert len(seven["tickets"]) == 2


def test_list_with_no_tickets_is_empty(stack):
    _, token = stack.signup()
    data = listing(stack, token)
    assert data["tickets"] == []
    assert data["pagination"]["total"] == 0
    assert data["pagination"]["page"] == 1
    assert data["pagination"]["limit"] == 10


def test_list_is_sorted_by_updated_at_descending(stack):
    _, token = stack.signup()
    tickets = [stack.create_ticket(token) for _ in range(4)]
    now = stack.now_ms()
    # updatedAt order: t2 newest, then t0, t3, t1
    for t, age_h in zip(tickets, (3, 9, 1, 5)):
        assert stack.probe.set_fields("tickets", t["_id"],
                                      updatedAt=now - age_h * HOUR_MS) == 1
    want = [tickets[i]["_id"] for i in (2, 0, 3, 1)]
    assert ids(listing(stack, token)["tickets"]) == want
    # pages continue the same order
    assert ids(listing(stack, token, "?limit=3&page=1")["tickets"]) == want[:3]
    assert ids(listing(stack, token, "?limit=3&page=2")["tickets"]) == want[3:]
    stamps = [t["updatedAt"] for t in listing(stack, token)["tickets"]]
    assert stamps == sorted(stamps, reverse=True)


def test_list_filters_by_status_and_priority(stack, admin):
    _, admin_token = admin
    _, token = stack.signup()
    t = [stack.create_ticket(token) for _ in range(5)]
    for ticket, status, priority in zip(
            t, ("To-Do", "In Progress", "Completed", "In Progress", "To-Do"),
            ("High", "Low", "High", "Medium", None)):
        assert stack.probe.set_fields("tickets", ticket["_id"],
                                      status=status, priority=priority) == 1

    def got(query):
        return set(ids(listing(stack, token, query)["tickets"]))

    assert got("?status=To-Do") == {t[0]["_id"], t[4]["_id"]}
    assert got("?status=In%20Progress") == {t[1]["_id"], t[3]["_id"]}
    assert got("?status=In+Progress") == {t[1]["_id"], t[3]["_id"]}
    assert got("?status=Completed") == {t[2]["_id"]}
    assert got("?priority=High") == {t[0]["_id"], t[2]["_id"]}
    assert got("?priority=Low") == {t[1]["_id"]}
    assert got("?priority=Medium") == {t[3]["_id"]}
    assert got("?status=In%20Progress&priority=Low") == {t[1]["_id"]}
    assert got("?status=Completed&priority=Low") == set()
    data = listing(stack, token, "?priority=High&limit=1")
    assert data["pagination"]["total"] == 2
    assert data["pagination"]["pages"] == 2
    for ticket in listing(stack, admin_token,
                          "?status=Completed&limit=100")["tickets"]:
        assert ticket["status"] == "Completed"


SEARCH_TITLES = ["100% uptime lost", "snake_case broken", "regex .* eats all",
                 "paren ( unbalanced", "Plain Printer Jam", "under score",
                 "back\\slash path", "Café ÉCOLE"]


@pytest.fixture(scope="module")
def searcher(stack):
    """A user with tickets whose titles hold LIKE and regex characters."""
    _, token = stack.signup()
    made = {}
    for title in SEARCH_TITLES:
        made[title] = stack.create_ticket(token, title=title,
                                          description="desc of " + title)["_id"]
    made["by description"] = stack.create_ticket(
        token, title="no match here",
        description="The MAGIC word is Xylophone")["_id"]
    return token, made


@pytest.mark.parametrize("query,want", [
    ("%25", ["100% uptime lost"]),
    ("_", ["snake_case broken"]),
    (".*", ["regex .* eats all"]),
    ("(", ["paren ( unbalanced"]),
    ("plain printer", ["Plain Printer Jam"]),
    ("PRINTER", ["Plain Printer Jam"]),
    ("xylophone", ["by description"]),
    ("magic WORD", ["by description"]),
    ("0%25 up", ["100% uptime lost"]),
    ("e_c", ["snake_case broken"]),
    ("s.*", []),
    ("^regex", []),
    ("[a-z]", []),
    ("nothing-like-this", []),
    ("%5C", ["back\\slash path"]),
    ("k%5Cs", ["back\\slash path"]),
    ("%5C%25", []),
    ("%5C_", []),
    ("café", ["Café ÉCOLE"]),
])
def test_search_is_a_literal_case_insensitive_substring(stack, searcher,
                                                       query, want):
    token, made = searcher
    data = listing(stack, token, "?limit=100&search=" + query)
    assert set(ids(data["tickets"])) == {made[w] for w in want}, \
        [t["title"] for t in data["tickets"]]
    assert data["pagination"]["total"] == len(want)


@pytest.mark.parametrize("query", [
    "page=0", "page=-1", "page=abc", "page=1.5", "limit=0", "limit=101",
    "limit=-5", "limit=ten", "status=Done", "status=to-do",
    "priority=urgent", "priority=high", "search=" + "a" * 201,
])
def test_list_rejects_invalid_query_values_with_400(stack, query):
    _, token = stack.signup()
    assert_error(stack.get("/api/tickets?" + query, token=token), 400)


def test_list_accepts_search_of_exactly_200_chars(stack):
    _, token = stack.signup()
    data = listing(stack, token, "?search=" + "a" * 200)
    assert data["tickets"] == []


def test_search_bound_counts_characters(stack):
    """200 euro signs are 600 bytes: still 200 characters."""
    _, token = stack.signup()
    euro = "%E2%82%AC"
    assert listing(stack, token, "?search=" + euro * 200)["tickets"] == []
    assert_error(stack.get("/api/tickets?search=" + euro * 201, token=token),
                 400)


def test_search_is_case_insensitive_beyond_ascii(stack, searcher):
    token, made = searcher
    for query in ("école", "CAFÉ", "café école"):
        data = listing(stack, token, "?search=" + query)
        assert ids(data["tickets"]) == [made["Café ÉCOLE"]], (
            query, [t["title"] for t in data["tickets"]])


def test_list_needs_a_token(stack):
    assert_error(stack.get("/api/tickets"), 401,
                 "Access Denied. No token found.")


# --- one ticket -------------------------------------------------------------

def test_get_own_ticket_with_comments(stack):
    user, token = stack.signup()
    t = stack.create_ticket(token, title="Look at me")
    r = stack.get("/api/tickets/" + t["_id"], token=token)
    assert r.status_code == 200, r.text
    got = r.json()["ticket"]
    assert TICKET_KEYS <= set(got)
    assert got["_id"] == t["_id"] and got["title"] == "Look at me"
    assert got["comments"] == []
    check_person(got["createdBy"], user)
    assert not contains_key(r.json(), "password")


def test_get_someone_elses_ticket_is_404(stack):
    _, owner_token = stack.signup()
    _, other_token = stack.signup()
    mod, mod_token = stack.make_user("moderator", prefix="mod")
    t = stack.create_ticket(owner_token)
    for tok in (other_token, mod_token):
        assert_error(stack.get("/api/tickets/" + t["_id"], token=tok), 404)


@pytest.mark.parametrize("bad", [
    "123", "zzzzzzzzzzzzzzzzzzzzzzzz", "0123456789abcdef01234567f",
    "0123456789abcdef0123456", "ffffffffffffffffffffffff",
    "000000000000000000000000", "0123456789abcdef0123456g",
])
def test_get_malformed_or_unknown_id_is_404(stack, admin, bad):
    _, admin_token = admin
    assert_error(stack.get("/api/tickets/" + bad, token=admin_token), 404)


def test_get_shows_assignment_to_staff_only(stack, admin):
    _, admin_token = admin
    mod, mod_token = stack.make_user("moderator", prefix="mod")
    _, token = stack.signup()
    t = stack.create_ticket(token)
    stack.probe.assign(t["_id"], mod["_id"])

    user_view = stack.get("/api/tickets/" + t["_id"], token=token).json()
    assert "assignment" not in user_view["ticket"], user_view
    # a moderator reading a ticket it created (not assigned) is staff too
    own = stack.create_ticket(mod_token)
    r = stack.get("/api/tickets/" + own["_id"], token=mod_token)
    assert r.status_code == 200, r.text
    assert r.json()["ticket"]["assignment"] is None, r.json()
    for tok in (admin_token, mod_token):
        r = stack.get("/api/tickets/" + t["_id"], token=tok)
        assert r.status_code == 200, r.text
        assert "assignment" in r.json()["ticket"], r.json()
        check_person(r.json()["ticket"]["assignedTo"], mod)


def test_assigned_moderator_and_admin_see_the_ticket(stack, admin):
    _, admin_token = admin
    mod, mod_token = stack.make_user("moderator", prefix="mod")
    _, token = stack.signup()
    t = stack.create_ticket(token)
    assert_error(stack.get("/api/tickets/" + t["_id"], token=mod_token), 404)
    stack.probe.assign(t["_id"], mod["_id"])
    for tok in (admin_token, mod_token, token):
        r = stack.get("/api/tickets/" + t["_id"], token=tok)
        assert r.status_code == 200, r.text


# --- status -----------------------------------------------------------------

def test_admin_sets_status(stack, admin):
    _, admin_token = admin
    _, token = stack.signup()
    t = stack.create_ticket(token)
    r = set_status(stack, admin_token, t["_id"], "In Progress")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"] == "Status updated"
    assert body["ticket"]["_id"] == t["_id"]
    assert body["ticket"]["status"] == "In Progress"
    assert stack.probe.ticket(t["_id"])["status"] == "In Progress"
    got = stack.get("/api/tickets/" + t["_id"], token=token).json()["ticket"]
    assert got["status"] == "In Progress"


def test_assigned_moderator_sets_status(stack):
    mod, mod_token = stack.make_user("moderator", prefix="mod")
    _, token = stack.signup()
    t = stack.create_ticket(token)
    stack.probe.assign(t["_id"], mod["_id"])
    r = set_status(stack, mod_token, t["_id"], "Completed")
    assert r.status_code == 200, r.text
    assert r.json()["ticket"]["status"] == "Completed"
    assert stack.probe.ticket(t["_id"])["status"] == "Completed"


def test_unassigned_moderator_cannot_see_so_404(stack):
    _, mod_token = stack.make_user("moderator", prefix="mod")
    _, token = stack.signup()
    t = stack.create_ticket(token)
    assert_error(set_status(stack, mod_token, t["_id"], "Completed"), 404)
    assert stack.probe.ticket(t["_id"])["status"] == "To-Do"


def test_creator_cannot_set_status_403(stack):
    _, token = stack.signup()
    t = stack.create_ticket(token)
    assert_error(set_status(stack, token, t["_id"], "Completed"), 403)
    # a moderator who created the ticket but is not assigned: also 403
    _, mod_token = stack.make_user("moderator", prefix="mod")
    own = stack.create_ticket(mod_token)
    assert_error(set_status(stack, mod_token, own["_id"], "Completed"), 403)
    assert stack.probe.ticket(t["_id"])["status"] == "To-Do"


def test_stranger_setting_status_is_404(stack):
    _, owner_token = stack.signup()
    _, token = stack.signup()
    t = stack.create_ticket(owner_token)
    assert_error(set_status(stack, token, t["_id"], "Completed"), 404)


@pytest.mark.parametrize("status", ["Done", "completed", "", 5, None,
                                    ["Completed"], {"$ne": "To-Do"}])
def test_status_rejects_values_outside_the_enum(stack, admin, status):
    _, admin_token = admin
    _, token = stack.signup()
    t = stack.create_ticket(token)
    assert_error(set_status(stack, admin_token, t["_id"], status), 400)
    r = stack.patch("/api/tickets/%s/status" % t["_id"], token=admin_token,
                    json={})
    assert_error(r, 400)
    assert stack.probe.ticket(t["_id"])["status"] == "To-Do"


@pytest.mark.parametrize("bad", ["123", "zzzzzzzzzzzzzzzzzzzzzzzz",
                                 "ffffffffffffffffffffffff"])
def test_status_on_malformed_or_unknown_id_is_404(stack, admin, bad):
    _, admin_token = admin
    assert_error(set_status(stack, admin_token, bad, "Completed"), 404)


def test_status_update_emits_status_updated_to_the_ticket_room(stack, admin):
    _, admin_token = admin
    _, token = stack.signup()
    t = stack.create_ticket(token)
    sio = Sio(stack.port, token=token)
    try:
        assert sio.join(t["_id"]) == [{"ok": True, "room": "joined"}]
        assert set_status(stack, admin_token, t["_id"],
                          "In Progress").status_code == 200
        [payload] = sio.wait_event("status_updated", timeout=5)
    finally:
        sio.close()
    assert payload["ticketId"] == t["_id"]
    assert payload["status"] == "In Progress"


def test_completing_twice_stores_one_stats_job(stack, admin):
    _, admin_token = admin
    mod, mod_token = stack.make_user("moderator", prefix="mod")
    _, token = stack.signup()
    t = stack.create_ticket(token)
    stack.probe.assign(t["_id"], mod["_id"])
    assert stack.probe.jobs(kind="stats", containing=t["_id"]) == []
    assert set_status(stack, mod_token, t["_id"],
                      "In Progress").status_code == 200
    assert stack.probe.jobs(kind="stats", containing=t["_id"]) == []
    for who, status in ((mod_token, "Completed"), (admin_token, "To-Do"),
                        (mod_token, "Completed"), (admin_token, "In Progress"),
                        (admin_token, "Completed")):
        r = set_status(stack, who, t["_id"], status)
        assert r.status_code == 200, r.text
        assert len(stack.probe.jobs(kind="stats", containing=t["_id"])) == 1
    other = stack.create_ticket(token)
    stack.probe.assign(other["_id"], mod["_id"])
    assert set_status(stack, mod_token, other["_id"],
                      "Completed").status_code == 200
    assert len(stack.probe.jobs(kind="stats", containing=other["_id"])) == 1
    assert len(stack.probe.jobs(kind="stats", containing=t["_id"])) == 1


def test_concurrent_completions_store_one_stats_job(stack, admin):
    _, admin_token = admin
    mod, mod_token = stack.make_user("moderator", prefix="mod")
    _, token = stack.signup()
    t = stack.create_ticket(token)
    stack.probe.assign(t["_id"], mod["_id"])
    results = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def go(tok):
        barrier.wait()
        r = set_status(stack, tok, t["_id"], "Completed")
        with lock:
            results.append(r.status_code)

    threads = [threading.Thread(target=go, args=(tok,))
               for tok in [admin_token, mod_token] * 4]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results == [200] * 8, results
    assert len(stack.probe.jobs(kind="stats", containing=t["_id"])) == 1


def test_status_needs_a_token(stack):
    _, token = stack.signup()
    t = stack.create_ticket(token)
    r = stack.patch("/api/tickets/%s/status" % t["_id"],
                    json={"status": "Completed"})
    assert_error(r, 401)

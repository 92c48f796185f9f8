"""ticket_metrics: Prometheus text of every nginx worker and of ticketd.

The exposition is read with a strict parser of our own (below): every
sample belongs to a family announced by # HELP and # TYPE lines before it,
names and label values follow the format, histograms are cumulative and
end at +Inf with _count equal to it.  The tests then drive the real stack
and check that the numbers move with what they did: requests by route
across both workers, 429s, sockets, rooms and events, a job's run, and
ticketd going away.
"""

import math
import re

import requests

from conftest import poll, unique_name
from redis_util import redis_server  # noqa: F401
from test_socketio import close_all, sio_on_workers

NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")

# Families the module always shows, and those of ticketd's block.
MODULE_FAMILIES = {
    "ticket_http_requests_total": "counter",
    "ticket_rate_limited_total": "counter",
    "ticket_socketio_sockets": "gauge",
    "ticket_socketio_rooms": "gauge",
    "ticket_socketio_events_delivered_total": "counter",
    "ticket_link_connected": "gauge",
    "ticket_cache_requests_total": "counter",
}
DAEMON_FAMILIES = {
    "ticket_daemon_metrics_age_seconds": "gauge",
    "ticket_jobs": "gauge",
    "ticket_jobs_started_total": "counter",
    "ticket_jobs_ended_total": "counter",
    "ticket_job_duration_seconds": "histogram",
    "ticket_triage_duration_seconds": "histogram",
    "ticket_triage_fallbacks_total": "counter",
    "ticket_mails_total": "counter",
    "ticket_daemon_links": "gauge",
    "ticket_bridge_messages_total": "counter",
    "ticket_daemon_cache_requests_total": "counter",
}

RUNNER_ARGS = ("--jobs 16 --poll-ms 200 --triage-provider offline "
               "--mail-transport outbox --outbox {}")


# --- a strict parser of the text format -----------------------------------

class Exposition:
    """Families {name: {"type", "help", "samples": {(name, labels): v}}}."""

    def __init__(self, text):
        self.families = {}
        self.samples = {}           # (sample name, frozenset labels) -> v
        self._parse(text)
        for name, fam in self.families.items():
            if fam["type"] == "histogram":
                self._check_histogram(name, fam)

    @staticmethod
    def _value(text):
        if text in ("+Inf", "-Inf", "NaN"):
            return float(text.replace("Inf", "inf").replace("NaN", "nan"))
        assert re.match(r"^-?[0-9][0-9.e+-]*$", text), "bad value %r" % text
        return float(text)

    @staticmethod
    def _labels(text):
        """name="value",... with the format's escapes only."""
        labels, i = {}, 0
        while i < len(text):
            m = LABEL_NAME_RE.match(text, i)
            assert m, "bad label name at %r" % text[i:]
            name, i = m.group(0), m.end()
            assert text[i:i + 2] == '="', "label %s without =\"" % name
            i += 2
            value = []
            while True:
                assert i < len(text), "unterminated value of %s" % name
                c = text[i]
                if c == "\\":
                    esc = text[i + 1:i + 2]
                    assert esc in ("\\", '"', "n"), "bad escape \\%s" % esc
                    value.append({"\\": "\\", '"': '"', "n": "\n"}[esc])
                    i += 2
                    continue
                if c == '"':
                    i += 1
                    break
                assert c != "\n", "raw newline in a label value"
                value.append(c)
                i += 1
            assert name not in labels, "label %s twice" % name
            labels[name] = "".join(value)
            if i < len(text):
                assert text[i] == ",", "no comma after %s at %r" % (
                    name, text[i:])
                i += 1
        return labels

    def _family_of(self, sample):
        if sample in self.families:
            return sample
        for suffix in ("_bucket", "_sum", "_count"):
            base = sample[:-len(suffix)]
            if sample.endswith(suffix) and base in self.families \
                    and self.families[base]["type"] == "histogram":
                return base
        raise AssertionError("sample %s has no # TYPE before it" % sample)

    def _parse(self, text):
        assert text.endswith("\n"), "the text ends mid-line"
        current = None
        for line in text.split("\n")[:-1]:
            assert line, "an empty line"
            if line.startswith("# HELP "):
                name, _, help_ = line[7:].partition(" ")
                assert NAME_RE.match(name), name
                assert name not in self.families, "family %s twice" % name
                self.families[name] = {"help": help_, "type": None,
                                       "samples": {}}
                current = name
                continue
            if line.startswith("# TYPE "):
                name, _, type_ = line[7:].partition(" ")
                assert name == current, "# TYPE %s without its # HELP" % name
                assert type_ in TYPES, type_
                assert self.families[name]["type"] is None
                self.families[name]["type"] = type_
                continue
            assert not line.startswith("#"), "stray comment %r" % line
            m = re.match(r"^([^{ ]+)(?:\{(.*)\})? (\S+)$", line)
            assert m, "bad sample line %r" % line
            name, labels, value = m.group(1), m.group(2), m.group(3)
            assert NAME_RE.match(name), name
            assert name.startswith("ticket_"), name
            family = self._family_of(name)
            assert family == current, (
                "sample %s outside its family's block" % name)
            labels = self._labels(labels) if labels else {}
            key = (name, frozenset(labels.items()))
            assert key not in self.samples, "series twice: %r" % (key,)
            v = self._value(value)
            self.samples[key] = v
            self.families[family]["samples"][key] = v
        for name, fam in self.families.items():
            assert fam["type"], "family %s has no # TYPE" % name
            assert fam["help"], "family %s has no help text" % name
            if fam["type"] == "counter":
                assert name.endswith("_total"), name
                assert all(v >= 0 for v in fam["samples"].values()), name

    def _check_histogram(self, name, fam):
        series = {}
        for (sample, labels), v in fam["samples"].items():
            rest = frozenset((k, x) for k, x in labels if k != "le")
            entry = series.setdefault(rest, {"buckets": [], "sum": None,
                                             "count": None})
            if sample == name + "_bucket":
                le = dict(labels)["le"]
                entry["buckets"].append((self._value(le), v))
            elif sample == name + "_sum":
                entry["sum"] = v
            elif sample == name + "_count":
                entry["count"] = v
            else:
                raise AssertionError("histogram %s has %s" % (name, sample))
        for rest, entry in series.items():
            buckets = sorted(entry["buckets"])
            assert buckets, "%s%s has no buckets" % (name, dict(rest))
            assert math.isinf(buckets[-1][0]), "%s ends before +Inf" % name
            counts = [c for _, c in buckets]
            assert counts == sorted(counts), "%s not cumulative" % name
            assert entry["count"] == counts[-1], (name, entry)
            assert entry["sum"] is not None, name

    def value(self, name, **labels):
        """A sample's value; 0 for a series not shown yet (a counter's
        series appears with its first count)."""
        return self.samples.get((name, frozenset(labels.items())), 0)

    def total(self, name, **labels):
        """The sum of a family's samples whose labels include these."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items()
                   if n == name and want <= ls)

    def has(self, name, **labels):
        return (name, frozenset(labels.items())) in self.samples

    def series(self, name):
        """{frozenset labels: value} of one sample name."""
        return {labels: v for (n, labels), v in self.samples.items()
                if n == name}


def scrape(st):
    r = requests.get(st.url("/metrics"), timeout=10)
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith(
        "text/plain; version=0.0.4"), r.headers
    return Exposition(r.text)


def requests_total(e, route, code):
    return e.value("ticket_http_requests_total", route=route, code=code)


def scrape_when(st, cond, timeout=10):
    """The first scrape for which cond(exposition) holds (ticketd pushes
    its block every 2 s); AssertionError with the last one otherwise."""
    last = []

    def check():
        e = scrape(st)
        last[:] = [e]
        return e if cond(e) else None

    e = poll(check, timeout, 0.2)
    assert e is not None, "condition not met; last scrape:\n%s" % (
        sorted(last[0].samples.items()) if last else None)
    return e


def with_daemon_block(e):
    return e.has("ticket_jobs_started_total", kind="triage") \
        and e.has("ticket_jobs", kind="triage", state="pending")


# --- the format and the families --------------------------------------------

def test_exposition_is_valid_text_with_every_family_typed(stack):
    e = scrape_when(stack, with_daemon_block)
    for name, type_ in list(MODULE_FAMILIES.items()) + list(
            DAEMON_FAMILIES.items()):
        assert name in e.families, "family %s missing" % name
        assert e.families[name]["type"] == type_, (name,
                                                   e.families[name]["type"])
    # the stack's two workers, each linked to ticketd
    assert e.series("ticket_link_connected") == {
        frozenset({("worker", "0")}): 1, frozenset({("worker", "1")}): 1}
    assert e.value("ticket_daemon_links") == 2
    assert 0 <= e.value("ticket_daemon_metrics_age_seconds") <= 10
    assert e.has("ticket_rate_limited_total", zone="api")


def test_head_answers_headers_only_and_other_methods_405_json(stack):
    r = requests.head(stack.url("/metrics"), timeout=10)
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["Content-Length"]) > 0
    r = requests.post(stack.url("/metrics"), data=b"x", timeout=10)
    assert r.status_code == 405, r.text
    assert r.headers["Allow"] == "GET, HEAD"
    assert r.json()["error"] == "Method not allowed"


def test_other_hosts_are_denied(stack):
    status, _, _ = stack.request_from("127.0.0.2", "GET", "/metrics")
    assert status == 403


# --- requests ---------------------------------------------------------------

def test_requests_are_counted_by_route_template_across_both_workers(stack):
    route = "GET /api/tickets/:id"
    before = scrape(stack)
    rounds = 3
    for i in range(rounds):
        # one request on each worker: two different ids, one template
        got = stack.each_worker("GET", "/api/tickets/%024x" % i)
        assert len(got) == 2
        assert all(s == 401 for s, _, _ in got.values())
        got = stack.each_worker("GET", "/api/health")
        assert all(s == 200 for s, _, _ in got.values())
    got = stack.each_worker("GET", "/api/no/such/route")
    assert all(s == 404 for s, _, _ in got.values())
    # counted in the log phase, just after the answer left: wait for the
    # counts to arrive, then check they are exactly that
    after = scrape_when(stack, lambda e: requests_total(
        e, "unmatched", "404") - requests_total(
        before, "unmatched", "404") >= 2 and requests_total(
        e, route, "401") - requests_total(before, route, "401") >= rounds * 2)

    def delta(**labels):
        return (after.value("ticket_http_requests_total", **labels)
                - before.value("ticket_http_requests_total", **labels))

    assert delta(route=route, code="401") == rounds * 2
    assert delta(route="GET /api/health", code="200") == rounds * 2
    assert delta(route="unmatched", code="404") == 2
    # the raw URIs never become labels
    for labels in after.series("ticket_http_requests_total"):
        assert not any("0000" in v for _, v in labels), labels


def test_a_429_is_counted_as_rate_limited_and_under_its_route(make_stack):
    st = make_stack(RATE_LIMIT="3")
    before = scrape(st)
    statuses = [st.request_from("127.0.0.3", "GET", "/api/health")[0]
                for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    # a request is counted in its log phase, just after its answer left:
    # wait for both counts, then check they are exactly that
    after = scrape_when(st, lambda e: requests_total(
        e, "GET /api/health", "429") - requests_total(
        before, "GET /api/health", "429") >= 2)
    assert (after.value("ticket_rate_limited_total", zone="api")
            - before.value("ticket_rate_limited_total", zone="api")) == 2
    assert (after.value("ticket_http_requests_total",
                        route="GET /api/health", code="429")
            - before.value("ticket_http_requests_total",
                           route="GET /api/health", code="429")) == 2


# --- sockets, rooms, events ---------------------------------------------------

def test_sockets_rooms_and_events_follow_the_sockets(make_stack):
    # a stack of its own: presence events of other tests' users would be
    # delivered to these sockets too
    st = make_stack()
    admin, admin_token = st.signup(username=unique_name("admin"))
    user, token = st.signup(username=unique_name("user"))
    ticket = st.create_ticket(token)
    # dnd: the user's sockets change no presence, so no user_status_changed
    # reaches the sockets while the events are counted
    r = st.patch("/api/auth/status", token=token, json={"status": "dnd"})
    assert r.status_code == 200, r.text
    base = scrape(st)
    assert base.value("ticket_socketio_sockets") == 0
    assert base.value("ticket_socketio_rooms") == 0

    socks = sio_on_workers(st, token, per_worker=2)
    k = len(socks)
    assert k == 4
    for _, s in socks:
        assert s.join(ticket["_id"]) == [{"ok": True, "room": "joined"}]
    e = scrape(st)
    assert e.value("ticket_socketio_sockets") == k
    # one room per worker holding a member
    assert e.value("ticket_socketio_rooms") == 2

    before = e.value("ticket_socketio_events_delivered_total")
    r = st.post("/api/tickets/%s/comments" % ticket["_id"],
                token=admin_token, json={"text": "Looking into it"})
    assert r.status_code == 200, r.text
    for _, s in socks:
        s.wait_event("comment_added", timeout=5)
    after = scrape(st).value("ticket_socketio_events_delivered_total")
    assert after - before == k

    close_all(socks[:2])
    scrape_when(st, lambda x: x.value("ticket_socketio_sockets") == k - 2)
    close_all(socks[2:])
    e = scrape_when(st, lambda x: x.value("ticket_socketio_sockets") == 0)
    assert e.value("ticket_socketio_rooms") == 0


# --- the Redis cache ---------------------------------------------------------

def test_cache_hits_misses_and_errors_are_counted(make_stack, redis_server):
    st = make_stack(REDIS=redis_server.url,
                    TICKETD_ARGS="--redis %s --jobs 0" % redis_server.url)
    user, token = st.signup(username=unique_name("user"))
    st.create_ticket(token)

    def cache(e, result):
        return e.value("ticket_cache_requests_total", result=result)

    base = scrape(st)
    r = st.get("/api/tickets", token=token)
    assert r.status_code == 200, r.text
    first = scrape(st)
    assert cache(first, "miss") > cache(base, "miss")
    for _ in range(4):
        assert st.get("/api/tickets", token=token).status_code == 200
    hits = scrape(st)
    # each list read after the first is a hit (its session may add more)
    assert cache(hits, "hit") - cache(first, "hit") >= 4

    redis_server.kill()
    assert st.get("/api/tickets", token=token).status_code == 200
    down = scrape(st)
    assert cache(down, "error") > cache(hits, "error")


# --- ticketd's block ------------------------------------------------------------

def test_a_job_run_shows_by_kind_and_state_and_in_the_histograms(
        make_stack, tmp_path):
    st = make_stack(TICKETD_ARGS=RUNNER_ARGS.format(tmp_path / "outbox"))
    admin, admin_token = st.signup(username=unique_name("admin"))
    st.wait_jobs_settled()
    before = scrape_when(st, lambda e: e.value(
        "ticket_jobs_ended_total", kind="email", outcome="done") >= 1)

    st.create_ticket(admin_token)
    states = st.wait_jobs_settled()
    assert not states.get("dead"), states

    def ran(e):
        return (e.value("ticket_jobs_ended_total", kind="triage",
                        outcome="done")
                - before.value("ticket_jobs_ended_total", kind="triage",
                               outcome="done")) == 1 \
            and e.total("ticket_jobs", state="pending") == sum(
                e.value("ticket_jobs", kind=k, state="pending")
                for k in ("sla_warn", "sla_breach")) \
            and e.total("ticket_jobs", state="running") == 0

    e = scrape_when(st, ran)
    for kind in ("triage", "assign"):
        assert (e.value("ticket_jobs_started_total", kind=kind)
                - before.value("ticket_jobs_started_total", kind=kind)) >= 1
        assert (e.value("ticket_job_duration_seconds_count", kind=kind)
                - before.value("ticket_job_duration_seconds_count",
                               kind=kind)) >= 1
    assert (e.value("ticket_triage_duration_seconds_count",
                    provider="offline")
            - before.value("ticket_triage_duration_seconds_count",
                           provider="offline")) == 1
    assert e.value("ticket_triage_fallbacks_total", provider="offline") == 0
    # the store's jobs, by kind and state, as the store holds them
    stored = {}
    for job in st.probe.jobs():
        key = (job["kind"], job["state"])
        stored[key] = stored.get(key, 0) + 1
    for kind in ("triage", "assign", "stats", "email", "other"):
        for state in ("pending", "running", "done", "dead"):
            assert e.value("ticket_jobs", kind=kind, state=state) == \
                stored.get((kind, state), 0), (kind, state, stored)
    assert stored.get(("triage", "done")) == 1
    # the welcome mail went to the outbox
    assert e.value("ticket_mails_total", transport="outbox",
                   result="sent") >= 1


def test_ticketd_down_shows_links_down_and_an_ageing_block(make_stack):
    st = make_stack()
    scrape_when(st, lambda e: with_daemon_block(e) and all(
        v == 1 for v in e.series("ticket_link_connected").values()))
    st.kill_daemon()
    down = scrape_when(st, lambda e: all(
        v == 0 for v in e.series("ticket_link_connected").values()))
    age = down.value("ticket_daemon_metrics_age_seconds")
    later = scrape_when(st, lambda e: e.value(
        "ticket_daemon_metrics_age_seconds") > age + 1)
    assert later.value("ticket_daemon_links") in (0, 2)  # stale or gone

    st.start_daemon()
    back = scrape_when(st, lambda e: all(
        v == 1 for v in e.series("ticket_link_connected").values())
        and e.value("ticket_daemon_metrics_age_seconds") < 3
        and e.value("ticket_daemon_links") == 2)
    assert with_daemon_block(back)


def test_counters_survive_a_reload_and_new_workers_show_their_links(
        make_stack):
    st = make_stack()
    for _ in range(3):
        st.each_worker("GET", "/api/health")
    before = scrape_when(st, lambda x: requests_total(
        x, "GET /api/health", "200") >= 6).value(
        "ticket_http_requests_total", route="GET /api/health", code="200")
    assert before >= 6
    old = st.worker_pids()
    st.reload()
    # the zone is the same: the count goes on from where it was (the
    # harness's own readiness probes add to it too; a new zone would have
    # started again near 0)
    st.each_worker("GET", "/api/health")
    e = scrape_when(st, lambda x: requests_total(
        x, "GET /api/health", "200") >= before + 2)
    assert e.value("ticket_http_requests_total", route="GET /api/health",
                   code="200") >= before + 2
    # the old workers closing their links never mark the new ones down
    scrape_when(st, lambda x: all(
        v == 1 for v in x.series("ticket_link_connected").values()))
    assert not (st.worker_pids() & old)

#!/usr/bin/python3
"""Benchmark: the background job runner working off a triage backlog.

With the Gemini fake (t/fakes) answering every call after 500 ms, creates N
tickets as fast as possible and measures how long ticketd's job runner takes
to triage (through the fake) and assign all of them, the throughput against
what the provider concurrency allows, and ticketd's memory while the backlog
is worked off.

Starts the fake with delay_ms=500 and a private nginx (2 workers, RATE_LIMIT
1e9, LOCKOUT off, BCRYPT_COST 4) + ticketd with

  --triage-provider gemini --ai-url <fake> --ai-key-file <fake's key>
  --ai-concurrency C --jobs J --poll-ms 200 --outbox <tmp>

signs up an admin, 5 moderators (promoted through POST /api/auth/update-user,
each with different skills) and a user, then POSTs N tickets as the user
from a pool of keep-alive connections (http.client threads).  A monitor
thread samples every 0.2 s ticketd's VmRSS (/proc/<pid>/status) and, through
a read-only connection to the SQLite file, how many tickets exist and how
many have assignedTo set; the run ends when every ticket is assigned (or at
--timeout).

Prints: create time and rate, the time from the first create to the last
assignment (the assigning UPDATE's updatedAt in the store), the
triage+assignment throughput, the ideal C / 0.5 s and the ratio (target
>= 80 %), RSS at start / at the backlog's peak / peak / end in MiB, provider
calls the fake counted (should be ~N), and any ticket not assigned.
Target: ratio >= 80 % and RSS that does not grow with the backlog.  Figures
are printed, never asserted; the exit status is 0 once they are printed.

Usage: /usr/bin/python3 t/bench/jobs_backlog.py [--quick] [--tickets N]
           [--concurrency C] [--jobs J] [--conns K] [--timeout S]
  --quick   N = 200: a fast check that everything works
"""
import argparse
import http.client
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import REPO, Stack, api  # noqa: E402
sys.path.insert(0, os.path.join(REPO, "t", "fakes"))
from client import GeminiFake  # noqa: E402

PASSWORD = "bench-password-1"
INTERVAL = 0.2                      # monitor period, seconds
MIB = 1024.0                        # VmRSS is in kB

# (username suffix, skills): every moderator covers some of the skills the
# fake derives from the ticket texts below
MODERATORS = [
    ("auth", ["auth", "security"]),
    ("billing", ["payments", "billing", "stripe"]),
    ("backend", ["api", "node.js", "sql"]),
    ("frontend", ["react", "css", "frontend"]),
    ("ops", ["docker", "devops", "nginx", "email"]),
]

TOPICS = [
    ("Cannot log in after password reset",
     "After resetting my password the login page keeps saying invalid "
     "credentials."),
    ("Payment failed with card declined",
     "Checkout shows 'card declined' on the payment step although the bank "
     "says the card is fine."),
    ("API returns 500 on /orders",
     "Our integration gets HTTP 500 from the orders API since this morning; "
     "the SQL error log shows a timeout."),
    ("Dashboard chart does not render",
     "The revenue chart (React frontend) stays blank in Firefox; the CSS "
     "seems not to load."),
    ("Invoice PDF is missing VAT number",
     "Downloaded invoices do not show our VAT number although it is in the "
     "billing profile."),
    ("Webhook deliveries delayed",
     "Webhooks from the Node.js API arrive 10-20 minutes late; the delivery "
     "log shows retries."),
    ("Two-factor code never arrives",
     "The email with the 2FA code never arrives, so I cannot sign in."),
    ("Docker image fails to start",
     "The self-hosted Docker image exits with 'permission denied' behind "
     "our nginx proxy."),
    ("Refund not received",
     "A refund through Stripe was confirmed two weeks ago but has not "
     "reached my account."),
    ("Question about the export feature",
     "Is there a way to export more than 5000 rows at once?"),
]


def step(msg):
    print("  " + msg, flush=True)


def proc_kb(pid, key):
    """A kB figure (VmRSS, VmHWM, ...) from /proc/<pid>/status, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def open_ro(path):
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5,
                         isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 5000")
    return db


class Monitor(threading.Thread):
    """Every INTERVAL s: ticketd's VmRSS and, from the store, tickets
    (total, triaged, assigned) and jobs not finished.  samples: list of
    dicts with t (epoch s), rss (kB), tickets, triaged, assigned, backlog
    (tickets not assigned yet), jobs_open."""

    def __init__(self, pid, store):
        super().__init__(daemon=True)
        self.pid = pid
        self.store = store
        self.samples = []
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.db = None
        self.db_error = None

    def sample(self):
        t = time.time()
        rss = proc_kb(self.pid, "VmRSS")
        tickets = triaged = assigned = jobs_open = None
        try:
            if self.db is None:
                self.db = open_ro(self.store)
            tickets, triaged, assigned = self.db.execute(
                "SELECT count(*), count(triage), count(assignedTo)"
                " FROM tickets").fetchone()
            jobs_open = self.db.execute(
                "SELECT count(*) FROM jobs WHERE state IN ('pending', "
                "'running')").fetchone()[0]
        except sqlite3.Error as e:          # busy, or a transient WAL state
            self.db_error = str(e)
        s = {"t": t, "rss": rss, "tickets": tickets, "triaged": triaged,
             "assigned": assigned,
             "backlog": None if tickets is None else tickets - assigned,
             "jobs_open": jobs_open}
        with self.lock:
            self.samples.append(s)
        return s

    def latest_db(self):
        """The newest sample that has store figures."""
        with self.lock:
            for s in reversed(self.samples):
                if s["tickets"] is not None:
                    return s
        return None

    def run(self):
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(INTERVAL)

    def stop(self):
        self.halt.set()
        self.join(timeout=5)
        final = self.sample()
        if self.db is not None:
            self.db.close()
            self.db = None
        return final


def create_tickets(port, token, n, conns):
    """POST n tickets from `conns` threads, each on one keep-alive
    connection.  Returns (t_first, t_last, ids, failures, latencies_ms)."""
    headers = {"Content-Type": "application/json",
               "Authorization": "Bearer " + token}
    nxt = [0]
    lock = threading.Lock()
    ids, failures, lat = [], [], []
    start = threading.Barrier(conns + 1)

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        my_ids, my_fail, my_lat = [], [], []
        start.wait()
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n:
                break
            title, desc = TOPICS[i % len(TOPICS)]
            body = json.dumps({"title": "%s (#%d)" % (title, i),
                               "description": "%s Reference %d." % (desc, i)})
            t = time.monotonic()
            try:
                conn.request("POST", "/api/tickets", body.encode(), headers)
                r = conn.getresponse()
                raw = r.read()
                status = r.status
            except (http.client.HTTPException, OSError) as e:
                conn.close()                 # reopened by the next request
                my_fail.append((i, 0, str(e)))
                continue
            my_lat.append((time.monotonic() - t) * 1000)
            if status != 201:
                my_fail.append((i, status, raw[:200].decode(errors="replace")))
                continue
            try:
                my_ids.append(json.loads(raw)["ticket"]["_id"])
            except (ValueError, KeyError, TypeError):
                my_fail.append((i, status, "no ticket._id in the answer"))
        conn.close()
        with lock:
            ids.extend(my_ids)
            failures.extend(my_fail)
            lat.extend(my_lat)

    threads = [threading.Thread(target=worker, daemon=True)
               for _ in range(conns)]
    for th in threads:
        th.start()
    start.wait()
    t_first = time.time()
    for th in threads:
        th.join()
    return t_first, time.time(), ids, failures, lat


def pct(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def mib(kb):
    return "%.1f" % (kb / MIB) if kb is not None else "?"


def signup(base, name):
    s, body = api(base, "POST", "/api/auth/signup",
                  {"username": name, "email": "%s@bench.example" % name,
                   "password": PASSWORD})
    if s != 200 or not body or "token" not in body:
        raise SystemExit("signup of %s failed: %d %s" % (name, s, body))
    return body


def rate_between(samples, key, n, lo, hi):
    """samples[key] per second between the first samples with >= lo*n and
    >= hi*n (None if the run never got there)."""
    a = b = None
    for s in samples:
        if s[key] is None:
            continue
        if a is None and s[key] >= lo * n:
            a = s
        if s[key] >= hi * n:
            b = s
            break
    if a is None or b is None or b["t"] <= a["t"]:
        return None
    return (b[key] - a[key]) / (b["t"] - a["t"])


def first_reaching(samples, key, n):
    for s in samples:
        if s[key] is not None and s[key] >= n:
            return s["t"]
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="N = 200 tickets (a fast check)")
    ap.add_argument("--tickets", type=int, default=None,
                    help="tickets to create (default 2000, 200 with --quick)")
    ap.add_argument("--concurrency", type=int, default=16,
                    help="ticketd --ai-concurrency (default 16)")
    ap.add_argument("--jobs", type=int, default=64,
                    help="ticketd --jobs (default 64)")
    ap.add_argument("--delay-ms", type=int, default=500,
                    help="the fake's delay per provider call (default 500)")
    ap.add_argument("--conns", type=int, default=32,
                    help="client connections creating tickets (default 32)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="give up waiting for assignments after S seconds "
                         "(default 4x the ideal time + 60 s)")
    args = ap.parse_args()

    n = args.tickets or (200 if args.quick else 2000)
    conc, delay = args.concurrency, args.delay_ms / 1000.0
    ideal = conc / delay
    timeout = args.timeout or 4 * n / ideal + 60

    print("job runner bench: %d tickets, Gemini fake answering after %d ms, "
          "--ai-concurrency %d --jobs %d --poll-ms 200 (nginx 2 workers)"
          % (n, args.delay_ms, conc, args.jobs), flush=True)

    fake = st = None
    work = tempfile.mkdtemp(prefix="ticket-bench-jobs-")
    res = {}
    try:
        fake = GeminiFake()
        fake.control("ok", delay_ms=args.delay_ms)
        key_file = os.path.join(work, "gemini.key")
        with open(key_file, "w") as f:
            f.write(fake.key + "\n")
        os.chmod(key_file, 0o600)
        daemon_args = ["--triage-provider", "gemini", "--ai-url", fake.url,
                       "--ai-key-file", key_file,
                       "--ai-concurrency", conc, "--jobs", args.jobs,
                       "--poll-ms", 200,
                       "--outbox", os.path.join(work, "outbox")]
        step("gemini fake on %s (delay_ms=%d)" % (fake.url, args.delay_ms))
        st = Stack({"WORKERS": "2", "RATE_LIMIT": "1000000000",
                    "LOCKOUT": "off", "BCRYPT_COST": "4"},
                   prefix="ticket-bench-jobs-", daemon_args=daemon_args)
        st.start()
        pid = st.daemon.pid
        step("stack on %s, ticketd pid %d, store %s" % (st.base, pid, st.store))

        admin = signup(st.base, "bench_admin")
        if admin["user"].get("role") != "admin":
            raise SystemExit("the first signup is not an admin: %s" % admin)
        for suffix, skills in MODERATORS:
            name = "bench_mod_" + suffix
            u = signup(st.base, name)
            s, body = api(st.base, "POST", "/api/auth/update-user",
                          {"email": u["user"]["email"], "role": "moderator",
                           "skills": skills}, token=admin["token"])
            if s != 200:
                raise SystemExit("promoting %s failed: %d %s" % (name, s, body))
        user = signup(st.base, "bench_user")
        step("admin, %d moderators (%s) and a user signed up"
             % (len(MODERATORS), "; ".join("%s: %s" % (m, ",".join(sk))
                                            for m, sk in MODERATORS)))

        mon = Monitor(pid, st.store)
        first = mon.sample()
        mon.start()
        res["rss_start"] = first["rss"]

        t_first, t_created, ids, failures, lat = create_tickets(
            st.port, user["token"], n, args.conns)
        created = len(ids)
        step("%d tickets created in %.2f s (%d failed)"
             % (created, t_created - t_first, len(failures)))

        # wait until every created ticket is assigned
        deadline = time.time() + timeout
        last_progress, last_assigned, t_done = time.time(), -1, None
        while True:
            s = mon.latest_db()
            if s is not None:
                if s["assigned"] != last_assigned:
                    last_assigned, last_progress = s["assigned"], time.time()
                if s["assigned"] >= created and s["tickets"] >= created:
                    t_done = s["t"]
                    break
            if st.daemon.poll() is not None:
                step("WARNING: ticketd exited with %s" % st.daemon.returncode)
                break
            if time.time() > deadline:
                step("WARNING: %.0f s timeout: %s of %d tickets assigned "
                     "(last progress %.0f s ago)"
                     % (timeout, last_assigned, created,
                        time.time() - last_progress))
                break
            time.sleep(INTERVAL)
        final = mon.stop()
        res["rss_end"] = final["rss"]
        res["hwm"] = proc_kb(pid, "VmHWM")
        samples = list(mon.samples)
        if t_done:
            step("all assigned; monitor saw it %.2f s after the first create"
                 % (t_done - t_first))

        # the store's view: the last assignment, provider use, leftovers
        db = open_ro(st.store)
        try:
            first_ms, last_ms = db.execute(
                "SELECT min(createdAt), max(CASE WHEN assignedTo IS NOT NULL"
                " THEN updatedAt END) FROM tickets").fetchone()
            providers = db.execute(
                "SELECT coalesce(triageProvider, '(none)'), triageFallback,"
                " count(*) FROM tickets GROUP BY 1, 2 ORDER BY 3 DESC"
            ).fetchall()
            per_mod = db.execute(
                "SELECT u.username, count(t._id) FROM users u LEFT JOIN"
                " tickets t ON t.assignedTo = u._id WHERE u.role IN"
                " ('moderator', 'admin') GROUP BY u._id ORDER BY u.username"
            ).fetchall()
            jobs = db.execute(
                "SELECT kind, state, count(*), max(attempts) FROM jobs"
                " GROUP BY kind, state ORDER BY kind, state").fetchall()
            retried = db.execute(
                "SELECT count(*) FROM jobs WHERE kind = 'triage'"
                " AND attempts > 1").fetchone()[0]
            unassigned = db.execute(
                "SELECT t._id, t.status, t.triageProvider,"
                " (SELECT group_concat(j.kind || ':' || j.state || ':' ||"
                "  j.attempts || ':' || coalesce(j.lastError, ''), ' | ')"
                "  FROM jobs j WHERE j.payload LIKE '%' || t._id || '%')"
                " FROM tickets t WHERE t.assignedTo IS NULL"
                " ORDER BY t.createdAt LIMIT 10").fetchall()
            n_unassigned = db.execute(
                "SELECT count(*) FROM tickets WHERE assignedTo IS NULL"
            ).fetchone()[0]
        finally:
            db.close()
        calls = [r for r in fake.requests()
                 if "generateContent" in r.get("path", "")]
        res.update(n=n, created=created, failures=failures, lat=lat,
                   t_first=t_first, t_created=t_created, t_done=t_done,
                   first_ms=first_ms, last_ms=last_ms, providers=providers,
                   per_mod=per_mod, jobs=jobs, retried=retried,
                   unassigned=unassigned, n_unassigned=n_unassigned, calls=calls, samples=samples,
                   db_error=mon.db_error)
    finally:
        if st is not None:
            tail = st.log_tail(10) if st.daemon and st.daemon.poll() else ""
            st.stop()
            if tail:
                print("  ticketd/nginx log tail:\n" + tail)
        if fake is not None:
            fake.stop()
        shutil.rmtree(work, ignore_errors=True)

    report(res, n, conc, delay, ideal, args)
    return 0


def timeline(samples, t0, rows=12):
    """About `rows` evenly spaced samples (by time) of the run."""
    if not samples:
        return
    span = samples[-1]["t"] - samples[0]["t"]
    picked, want = [], 0.0
    for s in samples:
        if s["t"] - samples[0]["t"] >= want - 1e-9:
            picked.append(s)
            want += span / (rows - 1) if span > 0 else 1e9
    if picked[-1] is not samples[-1]:
        picked.append(samples[-1])
    print("  timeline:  %7s %8s %8s %8s %8s %9s %9s"
          % ("t s", "tickets", "triaged", "assigned", "backlog", "jobs open",
             "RSS MiB"))
    for s in picked:
        print("             %7.1f %8d %8d %8d %8d %9s %9s"
              % (s["t"] - t0, s["tickets"], s["triaged"], s["assigned"],
                 s["backlog"], s["jobs_open"], mib(s["rss"])))


def report(r, n, conc, delay, ideal, args):
    created, samples = r["created"], r["samples"]
    create_s = r["t_created"] - r["t_first"]
    print()
    print("  %-34s %d requested, %d created, %d failed  (%d connections)"
          % ("tickets", n, created, len(r["failures"]), args.conns))
    for i, status, text in r["failures"][:5]:
        print("  %-34s   #%d: %s %s" % ("", i, status, text))
    print("  %-34s %.2f s   %.0f tickets/s   (p50 %.1f ms, p99 %.1f ms)"
          % ("create", create_s, created / create_s if create_s else 0,
             pct(r["lat"], 50), pct(r["lat"], 99)))

    if r["last_ms"] is not None and created:
        span = r["last_ms"] / 1000.0 - r["t_first"]
        thr = created / span if span > 0 else 0
        print("  %-34s %.2f s   (the last assigning UPDATE's updatedAt)"
              % ("first create -> last assignment", span))
        print("  %-34s %.1f tickets/s" % ("triage+assignment throughput", thr))
        print("  %-34s %.1f tickets/s   (C=%d / %.1f s)"
              % ("ideal", ideal, conc, delay))
        print("  %-34s %.1f %%   (target >= 80 %%)"
              % ("ratio", 100.0 * thr / ideal))
        for key, what in (("triaged", "triaged"), ("assigned", "assigned")):
            steady = rate_between(samples, key, created, 0.1, 0.9)
            reach = first_reaching(samples, key, created)
            print("  %-34s %s   all %s by t=%s"
                  % ("%s 10 %%..90 %% (monitor)" % what,
                     "%.1f tickets/s (%.0f %% of ideal)"
                     % (steady, 100.0 * steady / ideal)
                     if steady is not None else "n/a",
                     what, "%.1f s" % (reach - r["t_first"])
                     if reach else "never"))
    else:
        print("  %-34s none" % "assignments")

    with_db = [s for s in samples if s["backlog"] is not None]
    with_rss = [s for s in samples if s["rss"] is not None]
    if with_rss:
        peak = max(with_rss, key=lambda s: s["rss"])
        at_backlog = max(with_db, key=lambda s: s["backlog"]) if with_db \
            else None
        print("  %-34s start %s   end %s   peak %s (t=%.1f s, backlog %s)"
              "   VmHWM %s"
              % ("ticketd RSS (MiB)", mib(r["rss_start"]), mib(r["rss_end"]),
                 mib(peak["rss"]), peak["t"] - r["t_first"], peak["backlog"],
                 mib(r["hwm"])))
        if at_backlog is not None:
            print("  %-34s %d tickets unassigned, %s jobs open, at t=%.1f s;"
                  " RSS then %s MiB"
                  % ("backlog peak", at_backlog["backlog"],
                     at_backlog["jobs_open"], at_backlog["t"] - r["t_first"],
                     mib(at_backlog["rss"])))
        print("  %-34s %d (every %.1f s)" % ("RSS/store samples",
                                             len(samples), INTERVAL))
        timeline(with_db, r["t_first"])

    calls = r["calls"]
    print("  %-34s %d   (%.2f per created ticket; triage jobs retried: %d)"
          % ("provider calls (fake)", len(calls),
             len(calls) / created if created else 0, r["retried"]))
    times = sorted(c["time"] for c in calls if c.get("time"))
    if len(times) > 1 and times[-1] > times[0]:
        print("  %-34s %.1f calls/s   (first call at t=%.2f s, last at "
              "t=%.2f s, received by the fake)"
              % ("provider call rate", (len(times) - 1) / (times[-1] - times[0]),
                 times[0] - r["t_first"], times[-1] - r["t_first"]))
    print("  %-34s %s" % ("triage provider", ", ".join(
        "%s%s %d" % (p, " (fallback)" if fb else "", c)
        for p, fb, c in r["providers"])))
    print("  %-34s %s" % ("jobs (kind state count)", ", ".join(
        "%s %s %d" % (k, s, c) for k, s, c, _ in r["jobs"])))
    print("  %-34s %s" % ("assigned per moderator/admin", ", ".join(
        "%s %d" % (u, c) for u, c in r["per_mod"])))
    un = r["unassigned"]
    print("  %-34s %d" % ("not assigned", r["n_unassigned"]))
    for tid, status, prov, jobs in un:
        print("  %-34s   %s %s triage=%s jobs: %s"
              % ("", tid, status, prov, jobs or "none"))
    if r["n_unassigned"] > len(un):
        print("  %-34s   ... and %d more" % ("", r["n_unassigned"] - len(un)))
    if r["db_error"]:
        print("  (a store poll failed at least once: %s)" % r["db_error"])


if __name__ == "__main__":
    sys.exit(main())

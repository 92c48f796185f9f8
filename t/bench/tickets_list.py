#!/usr/bin/python3
"""Benchmark: GET /api/tickets stays flat as the store grows; create throughput.

Starts a private nginx (2 workers) + ticketd on a temporary SQLite file
(RATE_LIMIT=1e9, LOCKOUT=off, BCRYPT_COST=4), signs up an admin and a user
through the API (so the schema exists), adds ~1000 filler users and then N
tickets directly with sqlite3 (one transaction per step; the daemon and
nginx keep running, WAL lets them), and measures with
`wrk -t2 -c64 -d<seconds>s --latency`:

  /static-2k                           nginx's own return (reference)
  GET /api/tickets?page=1&limit=10     as the admin (sees all N tickets)
  GET /api/tickets?page=1&limit=10     as the user (owns ~50 of them)

at N = 10 000 and 100 000 (and 1 000 000 with --million), growing the same
store; then POST /api/tickets as the user for 5 s (tickets/s) and checks
that every ticket created has its triage job.  Target: list p50/p99 at the
largest N within 1.5x of the smallest.  Figures are printed, never asserted.

Usage: /usr/bin/python3 t/bench/tickets_list.py [--million] [--quick]
           [--seconds S] [--sizes N1,N2,...]
  --quick   N = 2000 only, 3 s runs: a fast check that everything works
"""
import argparse
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Stack, api, parse_wrk, wrk, wrk_cmd  # noqa: E402

PASSWORD = "bench-password-1"
FILLER_USERS = 1000
USER_TICKETS = 50
DAY_MS = 86400 * 1000
FAKE_HASH = "$2b$10$" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"
HEX24 = re.compile(r"^[0-9a-f]{24}$")

TOPICS = [
    ("Cannot log in after password reset",
     "After resetting my password the login page keeps saying invalid credentials."),
    ("Payment failed with card declined",
     "Checkout shows 'card declined' although the bank says the card is fine."),
    ("API returns 500 on /orders",
     "Our integration gets HTTP 500 from the orders endpoint since this morning."),
    ("Dashboard chart does not render",
     "The revenue chart on the dashboard stays blank in Firefox; console shows a TypeError."),
    ("Invoice PDF is missing VAT number",
     "Downloaded invoices do not show our VAT number although it is in the profile."),
    ("Webhook deliveries delayed",
     "Webhooks arrive 10-20 minutes late; the delivery log shows retries."),
    ("Two-factor code never arrives",
     "The SMS with the 2FA code never arrives, so I am locked out of my account."),
    ("Export to CSV times out",
     "Exporting more than 5000 rows to CSV ends in a gateway timeout."),
    ("Docker image fails to start",
     "The self-hosted image exits with 'permission denied' on /var/lib/app."),
    ("Refund not received",
     "A refund was confirmed two weeks ago but has not reached my account."),
]


def step(msg):
    print("  " + msg, flush=True)


def columns(db, table):
    """{name: (notnull, has_default, is_pk)} from PRAGMA table_info."""
    return {r[1]: (bool(r[3]), r[4] is not None, bool(r[5]))
            for r in db.execute("PRAGMA table_info(%s)" % table)}


def insert_rows(db, table, row_keys, rows):
    """INSERT rows (tuples in row_keys order) after checking the real schema:
    every NOT NULL column without a default must be supplied."""
    cols = columns(db, table)
    if not cols:
        raise SystemExit("table %s does not exist in the store" % table)
    unknown = [k for k in row_keys if k not in cols]
    if unknown:
        raise SystemExit("table %s has no column(s) %s; schema changed?"
                         % (table, ", ".join(unknown)))
    missing = [c for c, (nn, dflt, pk) in cols.items()
               if nn and not dflt and not pk and c not in row_keys]
    if missing:
        raise SystemExit("table %s needs NOT NULL column(s) %s that this bench "
                         "does not fill; update t/bench/tickets_list.py"
                         % (table, ", ".join(missing)))
    sql = "INSERT INTO %s (%s) VALUES (%s)" % (
        table, ", ".join(row_keys), ", ".join("?" * len(row_keys)))
    db.executemany(sql, rows)


def open_store(path):
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 30000")
    db.execute("PRAGMA cache_size = -262144")     # 256 MB for index building
    return db


def add_filler_users(db, now):
    keys = ("_id", "username", "email", "password", "role", "skills",
            "status", "createdAt", "updatedAt")
    rows = [("f1" + "%022x" % i, "filler%04d" % i, "filler%04d@bench.example" % i,
             FAKE_HASH, "user", "[]", "offline", now - 100 * DAY_MS,
             now - 100 * DAY_MS) for i in range(FILLER_USERS)]
    db.execute("BEGIN IMMEDIATE")
    insert_rows(db, "users", keys, rows)
    db.execute("COMMIT")
    return [r[0] for r in rows]


def add_tickets(db, start, end, owners, user_id, user_slots, now, rng):
    """Tickets start..end-1 (ids f"{i:024x}"), one transaction."""
    cols = columns(db, "tickets")
    keys = ["_id", "title", "description", "status", "priority",
            "relatedSkills", "createdBy", "createdAt", "updatedAt"]
    with_completed = "completedAt" in cols
    if with_completed:
        keys.append("completedAt")
    statuses = ["To-Do"] * 35 + ["In Progress"] * 25 + ["Completed"] * 40
    priorities = ["Low", "Medium", "High", None]
    newest = now - 60 * 1000         # all before the create-throughput window

    def gen():
        for i in range(start, end):
            title, desc = TOPICS[i % len(TOPICS)]
            created = newest - rng.randrange(90 * DAY_MS)
            updated = created + rng.randrange(max(1, min(newest - created, 5 * DAY_MS)))
            status = rng.choice(statuses)
            row = ["%024x" % i, "%s (#%d)" % (title, i),
                   "%s Reference %d." % (desc, i), status,
                   rng.choice(priorities), "[]",
                   user_id if i in user_slots else rng.choice(owners),
                   created, updated]
            if with_completed:
                row.append(updated if status == "Completed" else None)
            yield tuple(row)

    db.execute("BEGIN IMMEDIATE")
    insert_rows(db, "tickets", keys, gen())
    db.execute("COMMIT")
    busy, log, done = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy or log != done:
        step("WARNING: WAL checkpoint incomplete (busy=%d, %d of %d pages); "
             "reads may be slower" % (busy, done, log))


def lua_get(path, token):
    with open(path, "w") as f:
        f.write('wrk.headers["Authorization"] = "Bearer %s"\n' % token)
    return path


def lua_create(path, token):
    with open(path, "w") as f:
        f.write('''local n = 0
local headers = {["Content-Type"] = "application/json",
                 ["Authorization"] = "Bearer %s"}
request = function()
  n = n + 1
  local body = string.format('{"title":"Checkout page freezes (bench %%d)",' ..
    '"description":"Clicking Pay now freezes the page; request %%d of the ' ..
    'create-ticket benchmark."}', n, n)
  return wrk.format("POST", "/api/tickets", headers, body)
end
''' % token)
    return path


def fmt_row(label, r, static):
    ratio = r["rps"] / static["rps"] if static["rps"] else 0
    note = ""
    if r["non2xx"]:
        note = "  non-2xx: %d" % r["non2xx"]
    if r["socket_errors"]:
        note += "  socket errors: %s" % r["socket_errors"]
    return "  %-12s %-26s %9.0f %9.2f %9.2f %7.1f%%%s" % (
        "", label, r["rps"], r["lat"].get("50", 0), r["lat"].get("99", 0),
        100 * ratio, note)


def check_list(base, token, expect_total, who):
    status, body = api(base, "GET", "/api/tickets?page=1&limit=10", token=token)
    if status != 200:
        raise SystemExit("GET /api/tickets as %s answered %d %s: are the ticket "
                         "routes built? (make build)" % (who, status, body))
    total = body.get("pagination", {}).get("total")
    if total != expect_total or len(body.get("tickets", [])) != min(10, expect_total):
        print("  WARNING: %s sees total=%s, %d tickets on page 1 (expected %d)"
              % (who, total, len(body.get("tickets", [])), expect_total))
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--million", action="store_true",
                    help="also measure at N = 1 000 000")
    ap.add_argument("--quick", action="store_true",
                    help="N = 2000 only and 3 s runs (a fast check)")
    ap.add_argument("--seconds", type=int, default=None,
                    help="duration of each list run (default 10, 3 with --quick)")
    ap.add_argument("--create-seconds", type=int, default=5)
    ap.add_argument("--sizes", help="comma-separated ticket counts, e.g. 10000,50000")
    args = ap.parse_args()

    if args.sizes:
        sizes = sorted({int(x) for x in args.sizes.split(",")})
    elif args.quick:
        sizes = [2000]
    else:
        sizes = [10000, 100000] + ([1000000] if args.million else [])
    secs = args.seconds or (3 if args.quick else 10)
    if sizes[0] < USER_TICKETS:
        raise SystemExit("sizes must be at least %d" % USER_TICKETS)

    env = {"WORKERS": "2", "RATE_LIMIT": "1000000000", "LOCKOUT": "off",
           "BCRYPT_COST": "4"}
    rng = random.Random(20261127)
    results = []              # (N, {"static":…, "admin":…, "user":…})
    print("ticket bench: GET /api/tickets?page=1&limit=10 vs store size "
          "(nginx 2 workers, wrk -t2 -c64 -d%ds)" % secs, flush=True)
    with Stack(env, prefix="ticket-bench-list-") as st:
        base = st.base
        s, admin = api(base, "POST", "/api/auth/signup",
                       {"username": "bench_admin", "email": "admin@bench.example",
                        "password": PASSWORD})
        if s != 200 or admin["user"]["role"] != "admin":
            raise SystemExit("admin signup failed: %d %s" % (s, admin))
        s, user = api(base, "POST", "/api/auth/signup",
                      {"username": "bench_user", "email": "user@bench.example",
                       "password": PASSWORD})
        if s != 200:
            raise SystemExit("user signup failed: %d %s" % (s, user))
        admin_tok, user_tok = admin["token"], user["token"]
        user_id = user["user"]["_id"]

        db = open_store(st.store)
        triggers = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' "
            "AND tbl_name IN ('users', 'tickets') ORDER BY name")]
        step("store %s; triggers on users/tickets: %s"
             % (st.store, ", ".join(triggers) or "none"))
        now = int(time.time() * 1000)
        t = time.time()
        owners = add_filler_users(db, now)
        step("%d filler users inserted in %.1f s" % (len(owners), time.time() - t))
        user_slots = set(rng.sample(range(sizes[0]), USER_TICKETS))

        get_admin = lua_get(os.path.join(st.tmp, "admin.lua"), admin_tok)
        get_user = lua_get(os.path.join(st.tmp, "user.lua"), user_tok)
        list_url = base + "/api/tickets?page=1&limit=10"
        have = 0
        for n in sizes:
            t = time.time()
            add_tickets(db, have, n, owners, user_id, user_slots, now, rng)
            step("N=%d: %d tickets inserted in %.1f s" % (n, n - have, time.time() - t))
            have = n
            check_list(base, admin_tok, n, "admin")
            check_list(base, user_tok, USER_TICKETS, "user")
            r = {"static": wrk(base + "/static-2k", 64, secs, threads=2),
                 "admin": wrk(list_url, 64, secs, get_admin, threads=2),
                 "user": wrk(list_url, 64, secs, get_user, threads=2)}
            results.append((n, r))

        # create throughput, as the user
        t0 = int(time.time() * 1000) - 1
        create = parse_wrk(subprocess.run(
            wrk_cmd(base + "/api/tickets", 64, args.create_seconds,
                    lua_create(os.path.join(st.tmp, "create.lua"), user_tok),
                    threads=2),
            capture_output=True, text=True, check=True).stdout)
        time.sleep(1)                 # requests still in flight when wrk stopped
        created = {r[0] for r in db.execute(
            "SELECT _id FROM tickets WHERE createdBy = ? AND createdAt >= ?",
            (user_id, t0))}
        referenced = set()
        triage_jobs = 0
        for (payload,) in db.execute("SELECT payload FROM jobs WHERE kind = 'triage'"):
            triage_jobs += 1
            try:
                doc = json.loads(payload)
            except ValueError:
                continue
            stack = [doc]
            while stack:
                v = stack.pop()
                if isinstance(v, dict):
                    stack.extend(v.values())
                elif isinstance(v, list):
                    stack.extend(v)
                elif isinstance(v, str) and HEX24.match(v):
                    referenced.add(v)
        missing = created - referenced
        db.close()

    # ---- report --------------------------------------------------------
    print()
    print("  %-12s %-26s %9s %9s %9s %8s" % ("tickets", "route", "req/s",
                                            "p50 ms", "p99 ms", "/static"))
    for n, r in results:
        print("  %-12s %-26s %9.0f" % ("{:,}".format(n).replace(",", " "),
                                        "/static-2k", r["static"]["rps"]))
        print(fmt_row("list as admin (all N)", r["admin"], r["static"]))
        print(fmt_row("list as user (%d own)" % USER_TICKETS, r["user"], r["static"]))
    if len(results) > 1:
        (n0, r0), (n1, r1) = results[0], results[-1]
        print()
        print("  latency ratio N=%s vs N=%s (target within 1.5x):"
              % ("{:,}".format(n1).replace(",", " "), "{:,}".format(n0).replace(",", " ")))
        for who in ("admin", "user"):
            a, b = r0[who]["lat"], r1[who]["lat"]
            print("    as %-5s  p50 %.2fx   p99 %.2fx"
                  % (who, b["50"] / a["50"] if a.get("50") else 0,
                     b["99"] / a["99"] if a.get("99") else 0))
    ok = create["requests"] - create["non2xx"]
    print()
    print("  create: POST /api/tickets as the user, wrk -t2 -c64 -d%ds (store N=%s)"
          % (args.create_seconds, "{:,}".format(sizes[-1]).replace(",", " ")))
    print("    %9.0f tickets/s   p50 %.2f ms  p99 %.2f ms   (%d answered 2xx, %d not)"
          % (create["rps"] * ok / create["requests"] if create["requests"] else 0,
             create["lat"].get("50", 0), create["lat"].get("99", 0), ok,
             create["non2xx"]))
    print("    tickets in the store: %d   with a triage job: %d   missing: %d"
          "   (triage jobs in total: %d)"
          % (len(created), len(created) - len(missing), len(missing), triage_jobs))
    if missing:
        print("    WARNING: tickets without a triage job, e.g. %s"
              % ", ".join(sorted(missing)[:5]))
    if len(created) < ok:
        print("    WARNING: wrk counted %d 2xx answers but only %d tickets are stored"
              % (ok, len(created)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""GET /api/tickets on both store backends, with and without the Redis
cache, in one run.

For each backend -- SQLite (a file) and MongoDB (CongoDB started here, or
the server in --mongo-uri / TEST_MONGODB_URI: a real mongod) -- a private
stack (2 nginx workers, ticketd with the job runner off) is filled through
the API with --tickets tickets by --users users, then `wrk -c CONNS -d
SECONDS` runs on the first list page (limit 10) as the admin (every ticket)
and as one user (their own), next to nginx's static 2 KB `return` measured
in the same run.  Then a second node over the same store with the Redis
cache (ticket_redis, one local redis-server): the same wrk runs with the
cache warm, and on one connection --samples sequential requests without
the cache, with the cache cold (the list version bumped before each, as a
write does: every request a miss) and warm.  Prints req/s and p50/p99.

    /usr/bin/python3 t/bench/tickets_backends.py [--tickets 2000]
        [--users 20] [--seconds 5] [--conns 16] [--samples 200]
        [--backends sqlite,mongodb] [--mongo-uri mongodb://host:port]
        [--no-redis]

MODULE / TICKETD (environment) pick the build, as for the tests.  The load
generator shares the machine's cores: compare rows, not absolute numbers.
"""

import argparse
import concurrent.futures
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import REPO, Stack, api, parse_wrk  # noqa: E402

# the test harness's CongoDB and redis-server, started the same way
sys.path.insert(0, os.path.join(REPO, "t", "integration"))
import store_probes  # noqa: E402
from redis_util import RedisServer  # noqa: E402

def bump_tickets_version(redis):
    """What any write does: INCR the list pages' version counter, so the
    next list request is a miss (the key is under the Redis run id)."""
    run_id = redis.command("INFO", "server").split("run_id:")[1][:16]
    redis.command("INCR", "ticket:%s:v:tickets" % run_id)


def timed_gets(url, token, samples, before=None):
    """Sequential GETs on one keep-alive connection (before() runs ahead of
    each); returns p50, p99 in ms and the mean rate."""
    import http.client
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    times = []
    try:
        for _ in range(samples):
            if before:
                before()
            t0 = time.perf_counter()
            conn.request("GET", u.path + "?" + u.query,
                         headers={"Authorization": "Bearer " + token})
            r = conn.getresponse()
            r.read()
            times.append((time.perf_counter() - t0) * 1000)
            assert r.status == 200, r.status
    finally:
        conn.close()
    times.sort()
    return {"p50": times[len(times) // 2],
            "p99": times[min(len(times) - 1, int(len(times) * 0.99))],
            "rps": 1000 * len(times) / sum(times)}


def fill(st, tickets, users):
    """Admin + users signed up, tickets created through the API (8 at a
    time); returns (admin token, one user's token)."""
    pw = "Bench-pass-1"
    _, admin = api(st.base, "POST", "/api/auth/signup", {
        "username": "admin_b", "email": "admin_b@example.com",
        "password": pw})
    tokens = []
    for i in range(users):
        status, body = api(st.base, "POST", "/api/auth/signup", {
            "username": "user%d" % i, "email": "user%d@example.com" % i,
            "password": pw})
        assert status == 200, (status, body)
        tokens.append(body["token"])

    def create(i):
        status, body = api(st.base, "POST", "/api/tickets", {
            "title": "Bench ticket %d" % i,
            "description": "Something is broken (%d)." % i},
            token=tokens[i % users])
        assert status == 201, (status, body)

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(create, range(tickets)))
    return admin["token"], tokens[0]


def wrk_get(url, token, conns, seconds):
    cmd = ["wrk", "-t2", "-c%d" % conns, "-d%ds" % seconds, "--latency"]
    if token:
        cmd += ["-H", "Authorization: Bearer " + token]
    out = subprocess.run(cmd + [url], capture_output=True, text=True,
                         check=True).stdout
    return parse_wrk(out)


def row(name, r, ref=None):
    share = " (%4.1f %% of static)" % (100 * r["rps"] / ref) if ref else ""
    return "  %-28s %9.0f req/s%s  p50 %6.2f ms  p99 %7.2f ms%s" % (
        name, r["rps"], share, r["lat"].get("50", 0), r["lat"].get("99", 0),
        "  non-2xx %d" % r["non2xx"] if r["non2xx"] else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tickets", type=int, default=2000)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--samples", type=int, default=200,
                    help="sequential requests for the cold/warm latency")
    ap.add_argument("--backends", default="sqlite,mongodb")
    ap.add_argument("--no-redis", action="store_true",
                    help="only the store, no cache rows")
    ap.add_argument("--mongo-uri",
                    default=os.environ.get("TEST_MONGODB_URI", ""))
    args = ap.parse_args()

    redis = None
    results = []
    tmp = tempfile.mkdtemp(prefix="ticket-bench-redis-")
    try:
        if not args.no_redis:
            redis = RedisServer(tmp)
        for backend in args.backends.split(","):
            if backend == "mongodb":
                base = args.mongo_uri or store_probes.server_uri()
                label = "MongoDB" if args.mongo_uri else "MongoDB (CongoDB)"
                store = store_probes.database_uri(
                    base, "bench_%s" % secrets.token_hex(4))
            else:
                store, label = None, "SQLite"
            env = {"BCRYPT_COST": "4", "RATE_LIMIT": "100000000"}
            res = {"label": label}
            # the stack without a cache, filled through the API
            with Stack(env, "ticket-bench-backends-", ["--jobs", "0"],
                       store) as st:
                t0 = time.monotonic()
                admin, user = fill(st, args.tickets, args.users)
                res["fill_s"] = time.monotonic() - t0
                page = "/api/tickets?page=1&limit=10"
                res["static"] = wrk_get(st.base + "/static-2k", None,
                                        args.conns, args.seconds)
                res["admin"] = wrk_get(st.base + page, admin, args.conns,
                                       args.seconds)
                res["user"] = wrk_get(st.base + page, user, args.conns,
                                      args.seconds)
                res["seq"] = timed_gets(st.base + page, admin, args.samples)
                if redis is not None:
                    # a second node over the same store with the cache
                    # (and the same secret, so the tokens work)
                    cached = Stack(dict(env, REDIS=redis.url),
                                   "ticket-bench-cached-",
                                   ["--jobs", "0", "--redis", redis.url],
                                   st.store)
                    cached.secret_text = st.secret_text
                    with cached as c:
                        url = c.base + page
                        res["cold"] = timed_gets(
                            url, admin, args.samples,
                            before=lambda: bump_tickets_version(redis))
                        res["warm"] = timed_gets(url, admin, args.samples)
                        res["warm_admin"] = wrk_get(url, admin, args.conns,
                                                    args.seconds)
                        res["warm_user"] = wrk_get(url, user, args.conns,
                                                   args.seconds)
            results.append(res)
    finally:
        if redis is not None:
            redis.close()             # CongoDB stops when this process exits
        shutil.rmtree(tmp, ignore_errors=True)

    print("GET /api/tickets?page=1&limit=10, %d tickets by %d users, "
          "wrk -t2 -c%d -d%ds, 2 nginx workers%s" % (
              args.tickets, args.users, args.conns, args.seconds,
              "" if args.no_redis else "; Redis cache on a second node "
              "over the same store"))
    for r in results:
        ref = r["static"]["rps"]
        print("%s (filled through the API in %.1f s, %.0f tickets/s)" % (
            r["label"], r["fill_s"], args.tickets / r["fill_s"]))
        print(row("static 2 KB return", r["static"]))
        print(row("list as admin, no cache", r["admin"], ref))
        print(row("list as user, no cache", r["user"], ref))
        if "warm_admin" in r:
            print(row("list as admin, cache warm", r["warm_admin"], ref))
            print(row("list as user, cache warm", r["warm_user"], ref))
        print("  one connection, %d sequential requests as admin:"
              % args.samples)
        for name in ("seq", "cold", "warm"):
            if name in r:
                x = r[name]
                print("    %-26s p50 %6.2f ms  p99 %7.2f ms  %7.0f req/s" % (
                    {"seq": "no cache", "cold": "cache cold (every one a "
                     "miss)", "warm": "cache warm"}[name],
                    x["p50"], x["p99"], x["rps"]))


if __name__ == "__main__":
    main()

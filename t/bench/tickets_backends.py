#!/usr/bin/python3
"""GET /api/tickets on both store backends, in one run.

For each backend -- SQLite (a file) and MongoDB (CongoDB started here, or
the server in --mongo-uri / TEST_MONGODB_URI: a real mongod) -- a private
stack (2 nginx workers, ticketd with the job runner off) is filled through
the API with --tickets tickets by --users users, then
`wrk -c CONNS -d SECONDS` runs on the first list page (limit 10) as the
admin (every ticket) and as one user (their own), next to nginx's static
2 KB `return` measured in the same run.  Prints req/s and p50/p99 latency.

    /usr/bin/python3 t/bench/tickets_backends.py [--tickets 2000]
        [--users 20] [--seconds 5] [--conns 16] [--backends sqlite,mongodb]
        [--mongo-uri mongodb://host:port]

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
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import REPO, api, free_port, parse_wrk  # noqa: E402

MODULE = os.environ.get("MODULE", os.path.join(
    REPO, "build/nginx/ngx_http_ticket_module.so"))
TICKETD = os.environ.get("TICKETD", os.path.join(REPO, "build/ticketd"))


class BackendStack(benchlib.Stack):
    """benchlib.Stack on a store URI (sqlite file or mongodb://)."""

    def __init__(self, store, env=None):
        super().__init__(dict(env or {}, MODULE=MODULE),
                         prefix="ticket-bench-backends-",
                         daemon_args=["--jobs", "0"])
        if store != "sqlite":
            self.store = store

    def start(self):
        os.makedirs(os.path.join(self.prefix, "logs"))
        os.makedirs(os.path.join(self.prefix, "tmp"))
        with open(self.secret, "w") as f:
            f.write(os.urandom(32).hex())
        conf = subprocess.run([os.path.join(REPO, "scripts/nginx-conf.sh"),
                               self.prefix, str(self.port), self.store,
                               self.secret, self.sock],
                              env=self.env, capture_output=True, text=True,
                              check=True).stdout
        with open(os.path.join(self.prefix, "nginx.conf"), "w") as f:
            f.write(conf)
        uri = self.store if self.store.startswith("mongodb") \
            else "sqlite:" + self.store
        self.daemon = subprocess.Popen(
            [TICKETD, "--socket", self.sock, "--store", uri,
             "--log", os.path.join(self.tmp, "ticketd.log")]
            + self.daemon_args)
        self.nginx = subprocess.Popen(
            [benchlib.NGINX, "-p", self.prefix, "-c",
             os.path.join(self.prefix, "nginx.conf"), "-g", "daemon off;"])
        for _ in range(150):
            try:
                urllib.request.urlopen(self.base + "/api/health", timeout=1)
                return self
            except Exception:
                if self.nginx.poll() is not None \
                        or self.daemon.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError("the bench stack did not come up:\n%s"
                           % self.log_tail())


def start_congo():
    """A CongoDB process on a free port: (Popen, uri)."""
    mongo = os.path.join(REPO, "t", "mongo")
    if not os.path.isdir(os.path.join(mongo, "smartmongo")):
        subprocess.run([os.path.join(mongo, "setup.sh")], check=True)
    port = free_port()
    proc = subprocess.Popen([shutil.which("node") or "node",
                             os.path.join(mongo, "congo.js"), str(port)],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    import socket
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return proc, "mongodb://127.0.0.1:%d" % port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("CongoDB did not start")


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
    ap.add_argument("--backends", default="sqlite,mongodb")
    ap.add_argument("--mongo-uri",
                    default=os.environ.get("TEST_MONGODB_URI", ""))
    args = ap.parse_args()

    congo = None
    results = []
    try:
        for backend in args.backends.split(","):
            if backend == "mongodb":
                base = args.mongo_uri
                label = "MongoDB"
                if not base:
                    congo, base = start_congo()
                    label = "MongoDB (CongoDB)"
                rest, _, opts = base.partition("?")
                hosts = rest.split("://", 1)[1].split("/", 1)[0]
                store = "mongodb://%s/bench_%s%s" % (
                    hosts, secrets.token_hex(4), "?" + opts if opts else "")
            else:
                store, label = "sqlite", "SQLite"
            with BackendStack(store, {"BCRYPT_COST": "4",
                                      "RATE_LIMIT": "100000000"}) as st:
                t0 = time.monotonic()
                admin, user = fill(st, args.tickets, args.users)
                fill_s = time.monotonic() - t0
                page = st.base + "/api/tickets?page=1&limit=10"
                static = wrk_get(st.base + "/static-2k", None, args.conns,
                                 args.seconds)
                as_admin = wrk_get(page, admin, args.conns, args.seconds)
                as_user = wrk_get(page, user, args.conns, args.seconds)
                results.append((label, fill_s, static, as_admin, as_user))
                if backend == "mongodb" and not args.mongo_uri:
                    # drop the data set: CongoDB keeps it in memory
                    pass
    finally:
        if congo is not None:
            congo.terminate()
            congo.wait(10)

    print("GET /api/tickets?page=1&limit=10, %d tickets by %d users, "
          "wrk -t2 -c%d -d%ds, 2 nginx workers" % (
              args.tickets, args.users, args.conns, args.seconds))
    for label, fill_s, static, as_admin, as_user in results:
        print("%s (filled through the API in %.1f s, %.0f tickets/s)" % (
            label, fill_s, args.tickets / fill_s))
        print(row("static 2 KB return", static))
        print(row("list as admin (all)", as_admin, static["rps"]))
        print(row("list as user (own)", as_user, static["rps"]))


if __name__ == "__main__":
    main()

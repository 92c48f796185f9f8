#!/usr/bin/python3
"""Benchmark: the nginx event loop stays free while bcrypt runs.

Starts a private nginx (2 workers) + ticketd on a temporary SQLite file,
bcrypt cost 10 (the original app's), then measures GET /api/health latency
  1. alone, and
  2. while 32 logins are constantly in flight (wrk -c32 on /api/auth/login),
and prints both, with the login throughput and the static 2 KB reference.
Target (issue 2): health p99 under load < 20 ms.  Figures are printed,
never asserted.

Usage: /usr/bin/python3 t/bench/login_health.py [--seconds N]
"""
import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Stack, parse_wrk, wrk  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()

    env = {"RATE_LIMIT": "100000000", "LOCKOUT": "off", "BCRYPT_COST": "10"}
    with Stack(env) as st:
        base, tmp = st.base, st.tmp
        body = json.dumps({"username": "bench", "email": "bench@example.com",
                           "password": "bench-password"}).encode()
        req = urllib.request.Request(base + "/api/auth/signup", data=body,
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5).read()

        script = os.path.join(tmp, "login.lua")
        with open(script, "w") as f:
            f.write('wrk.method = "POST"\n'
                    'wrk.headers["Content-Type"] = "application/json"\n'
                    'wrk.body = \'{"identifier":"bench","password":"bench-password"}\'\n')

        secs = args.seconds
        static = wrk(base + "/static-2k", 16, secs)
        idle = wrk(base + "/api/health", 4, secs)
        login = subprocess.Popen(["wrk", "-t1", "-c32", "-d%ds" % (secs + 4),
                                  "--latency", "-s", script, base + "/api/auth/login"],
                                 stdout=subprocess.PIPE, text=True)
        time.sleep(2)        # let the 32 logins fill the password pool
        loaded = wrk(base + "/api/health", 4, secs)
        login_out = login.communicate()[0]
        login_rps = parse_wrk(login_out)["rps"]

        print("ticket bench: health latency while bcrypt runs "
              "(nginx 2 workers, bcrypt cost 10, %ds runs)" % secs)
        print("  static 2 KB return       : %9.0f req/s" % static["rps"])
        print("  /api/health alone        : %9.0f req/s  p50 %.2f ms  p99 %.2f ms"
              % (idle["rps"], idle["lat"]["50"], idle["lat"]["99"]))
        print("  /api/health + 32 logins  : %9.0f req/s  p50 %.2f ms  p99 %.2f ms"
              "  (target p99 < 20 ms)" % (loaded["rps"], loaded["lat"]["50"],
                                          loaded["lat"]["99"]))
        print("  logins in flight (c=32)  : %9.1f logins/s" % login_rps)
        if idle["non2xx"] or loaded["non2xx"]:
            print("  WARNING: non-2xx health answers: %d / %d"
                  % (idle["non2xx"], loaded["non2xx"]))


if __name__ == "__main__":
    sys.exit(main())

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
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url, conns, seconds, script=None, threads=1):
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds,
           "--latency", url]
    if script:
        cmd[1:1] = ["-s", script]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    lat = {}
    for pct in ("50", "90", "99"):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+([\d.]+)(us|ms|s)" % pct, out, re.M)
        if m:
            v, unit = float(m.group(1)), m.group(2)
            lat[pct] = v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "lat": lat, "non2xx": int(non2xx.group(1)) if non2xx else 0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="ticket-bench-")
    prefix = os.path.join(tmp, "nginx")
    os.makedirs(os.path.join(prefix, "logs"))
    os.makedirs(os.path.join(prefix, "tmp"))
    secret = os.path.join(tmp, "jwt.secret")
    with open(secret, "w") as f:
        f.write(os.urandom(32).hex())
    port = free_port()
    sock = os.path.join(tmp, "ticketd.sock")
    store = os.path.join(tmp, "tickets.db")
    env = dict(os.environ, RATE_LIMIT="100000000", LOCKOUT="off", BCRYPT_COST="10")
    conf = subprocess.run([os.path.join(REPO, "scripts/nginx-conf.sh"), prefix,
                           str(port), store, secret, sock],
                          env=env, capture_output=True, text=True, check=True).stdout
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(conf)

    daemon = subprocess.Popen([os.path.join(REPO, "build/ticketd"), "--socket", sock,
                               "--store", "sqlite:" + store,
                               "--log", os.path.join(tmp, "ticketd.log")])
    nginx = subprocess.Popen(["/usr/sbin/nginx", "-p", prefix, "-c",
                              os.path.join(prefix, "nginx.conf"), "-g", "daemon off;"])
    base = "http://127.0.0.1:%d" % port
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/api/health", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
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
        login_rps = float(re.search(r"Requests/sec:\s+([\d.]+)", login_out).group(1))

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
    finally:
        nginx.send_signal(signal.SIGQUIT)
        daemon.send_signal(signal.SIGTERM)
        nginx.wait(timeout=15)
        daemon.wait(timeout=15)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""Shared helpers for the benchmarks in t/bench (stdlib only).

  Stack     a private nginx (module loaded, WORKERS workers) + ticketd on a
            temporary SQLite file, rendered with scripts/nginx-conf.sh; a
            context manager that always stops both and removes the folder.
  wrk()     runs wrk --latency and parses req/s, latency percentiles (ms),
            the request count and the non-2xx/3xx count.
  api()     one JSON request against the stack: (status, decoded body).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NGINX = "/usr/sbin/nginx"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ms(value, unit):
    v = float(value)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def parse_wrk(out):
    """Figures from wrk --latency output: rps, lat {"50","90","99"} in ms,
    requests (completed), non2xx."""
    lat = {}
    for pct in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+([\d.]+)(us|ms|s)" % pct, out, re.M)
        if m:
            lat[pct] = _ms(m.group(1), m.group(2))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    reqs = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "lat": lat,
            "requests": int(reqs.group(1)) if reqs else 0,
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1).strip() if errors else ""}


def wrk_cmd(url, conns, seconds, script=None, threads=1):
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds,
           "--latency", url]
    if script:
        cmd[1:1] = ["-s", script]
    return cmd


def wrk(url, conns, seconds, script=None, threads=1):
    out = subprocess.run(wrk_cmd(url, conns, seconds, script, threads),
                         capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def api(base, method, path, body=None, token=None, timeout=30):
    """One JSON request; returns (status, decoded body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


class Stack:
    """A private nginx + ticketd in a temporary folder.

    env: nginx-conf.sh overrides (RATE_LIMIT, LOCKOUT, BCRYPT_COST,
    WORKERS, ...); daemon_args: extra ticketd arguments, appended after
    --socket/--store/--log (e.g. ["--jobs", "64", "--poll-ms", "200"]).
    Use as `with Stack(env) as st:`; st.base is the URL, st.store the
    SQLite file, st.tmp the folder, st.daemon the ticketd Popen."""

    def __init__(self, env=None, prefix="ticket-bench-", daemon_args=None,
                 store=None):
        self.env = dict(os.environ, **(env or {}))
        self.daemon_args = [str(a) for a in (daemon_args or ())]
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.prefix = os.path.join(self.tmp, "nginx")
        self.secret = os.path.join(self.tmp, "jwt.secret")
        self.sock = os.path.join(self.tmp, "ticketd.sock")
        # an SQLite file (ours, or another stack's) or a mongodb:// URI
        self.store = store or os.path.join(self.tmp, "tickets.db")
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.daemon = self.nginx = None

    def start(self):
        os.makedirs(os.path.join(self.prefix, "logs"))
        os.makedirs(os.path.join(self.prefix, "tmp"))
        # a node of the same system gets the same secret (secret_text)
        self.secret_text = getattr(self, "secret_text", None) \
            or os.urandom(32).hex()
        with open(self.secret, "w") as f:
            f.write(self.secret_text)
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
            [self.env.get("TICKETD", os.path.join(REPO, "build/ticketd")),
             "--socket", self.sock, "--store", uri,
             "--jwt-secret-file", self.secret,
             "--log", os.path.join(self.tmp, "ticketd.log")]
            + self.daemon_args)
        self.nginx = subprocess.Popen(
            [NGINX, "-p", self.prefix, "-c",
             os.path.join(self.prefix, "nginx.conf"), "-g", "daemon off;"])
        for _ in range(100):
            try:
                urllib.request.urlopen(self.base + "/api/health", timeout=1)
                return self
            except Exception:
                if self.nginx.poll() is not None or self.daemon.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError("the bench stack did not come up on %s; error.log:\n%s"
                           % (self.base, self.log_tail()))

    def log_tail(self, lines=20):
        out = []
        for path in (os.path.join(self.prefix, "logs/error.log"),
                     os.path.join(self.tmp, "ticketd.log")):
            try:
                with open(path, errors="replace") as f:
                    out += f.read().splitlines()[-lines:]
            except OSError:
                pass
        return "\n".join(out)

    def stop(self):
        for proc, sig in ((self.nginx, signal.SIGQUIT),
                          (self.daemon, signal.SIGTERM)):
            if proc is not None and proc.poll() is None:
                proc.send_signal(sig)
        for proc in (self.nginx, self.daemon):
            if proc is None:
                continue
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
        return False

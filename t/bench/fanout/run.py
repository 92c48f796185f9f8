#!/usr/bin/python3
"""Benchmark: fan-out of one event to N sockets in one room.

Three systems, one after the other, each measured with the same generator
(t/bench/fanout/gen.js publishing and orchestrating; the subscribers split
over 2 wsgen.c epoll processes -- or, with --client node, 2 Node + ws
children) at each N:

  ours      a private nginx (2 workers, ticket_socketio) + ticketd
            (benchlib.Stack, RATE_LIMIT=1e9, BCRYPT_COST=4; worker_connections
            raised to 16384 in the rendered conf); every socket authenticates
            as the admin and joins the room of one ticket; an event is
            POST /api/tickets/:id/comments as the admin -> comment_added
  nchan     a private nginx (2 workers) with Debian's ngx_nchan_module.so:
            websocket subscribers on one channel, an event is a POST to the
            nchan_publisher location
  socket.io a Node socket.io 4.8 server (sio_server.js, websocket transport):
            join_ticket joins the room, an event is a POST /emit

For each run: RSS per idle connection = (sum of VmRSS of the server's
processes -- nginx workers, or the Node process after a GC -- with N idle
subscribed sockets, minus the same before they connected) / N; then a
latency phase (--events events, one every --interval ms: p50/p99 delivery
latency from the publish call to the subscriber's message callback) and a
burst phase (--burst events back to back: deliveries/s = deliveries / time
from the first publish to the last delivery).  Generator, publisher and
servers share the machine, so the figures include the generator's own
CPU time; the CPU seconds each part used during the burst (server,
subscribers, publisher; /proc/PID/stat at the generator's phase marks)
are printed too, with the server's CPU per delivery.  Targets (issue): p99 and deliveries/s at least nchan's, at least
5x socket.io's deliveries/s, < 16 KB per idle connection.  Figures are
printed, never asserted.

Usage: /usr/bin/python3 t/bench/fanout/run.py [--quick] [--sizes N1,N2]
           [--events K] [--interval MS] [--burst B] [--procs P]
           [--systems ours,nchan,sio] [--repeat K] [--pub-conc C]
           [--pause-jobs] [--pin] [--client c|node] [--perf FILE]
  --quick   N = 200, 5 events, burst 10: a fast check that everything works
  --perf    `perf record -a -g` during each burst, into FILE.<system>.<N>
"""
import argparse
import json
import os
import resource
import select
import subprocess
import sys
import tempfile
import time
import shutil
import signal
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import benchlib  # noqa: E402
from benchlib import Stack, api, free_port  # noqa: E402

NCHAN_MODULE = "/usr/lib/nginx/modules/ngx_nchan_module.so"
PASSWORD = "bench-password-1"
WORKER_CONNECTIONS = 16384


def step(msg):
    print("  " + msg, flush=True)


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pids):
    """User + system CPU time of the processes (every thread), in s."""
    ticks = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def children(ppid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == ppid:
                out.append(int(d))
        except (OSError, IndexError, ValueError):
            pass
    return out


def wait_http(url, proc, what):
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except Exception:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    raise RuntimeError("%s did not come up on %s" % (what, url))


class FanoutStack(Stack):
    """benchlib.Stack with worker_connections raised (5000 sockets may land
    unevenly on the 2 workers; the rendered default is 4096)."""

    def start(self):
        real_run = benchlib.subprocess.run

        def run(cmd, *a, **kw):
            res = real_run(cmd, *a, **kw)
            if cmd and str(cmd[0]).endswith("nginx-conf.sh"):
                res.stdout = res.stdout.replace(
                    "worker_connections 4096;",
                    "worker_connections %d;" % WORKER_CONNECTIONS).replace(
                    "worker_processes", "worker_rlimit_nofile %d;\nworker_processes"
                    % (WORKER_CONNECTIONS + 1024), 1)
            return res
        benchlib.subprocess.run = run
        try:
            return super().start()
        finally:
            benchlib.subprocess.run = real_run


# ------------------------------------------------------------------ systems
class Ours:
    name = "ours"
    proto = "sio"
    pause_jobs = False

    def __enter__(self):
        # one account holds every socket: no per-user socket limit
        st = FanoutStack({"RATE_LIMIT": "1000000000", "LOCKOUT": "off",
                          "BCRYPT_COST": "4", "SIO_USER_SOCKETS": "0"})
        # comment notification mails go to the temporary folder, not ./outbox
        st.daemon_args = ["--outbox", os.path.join(st.tmp, "outbox")]
        if self.pause_jobs:
            # the comment mails wait in the store: only the fan-out runs
            st.daemon_args += ["--jobs", "0"]
        self.st = st.__enter__()
        base = self.st.base
        s, admin = api(base, "POST", "/api/auth/signup",
                       {"username": "fanadmin", "email": "fanadmin@bench.example",
                        "password": PASSWORD})
        assert s == 200 and admin["user"]["role"] == "admin", (s, admin)
        s, user = api(base, "POST", "/api/auth/signup",
                      {"username": "fanuser", "email": "fanuser@bench.example",
                       "password": PASSWORD})
        assert s == 200, (s, user)
        s, t = api(base, "POST", "/api/tickets",
                   {"title": "Fan-out bench", "description": "One room, many sockets."},
                   token=user["token"])
        assert s == 201, (s, t)
        self.token, self.ticket = admin["token"], t["ticket"]["_id"]
        time.sleep(1.5)          # let triage/assign jobs run before measuring
        self.http = base
        self.ws = base.replace("http:", "ws:") + "/socket.io/?EIO=4&transport=websocket"
        return self

    def rss(self):
        return sum(rss_kb(p) for p in children(self.st.nginx.pid))

    def nprocs(self):
        return "%d nginx workers" % len(children(self.st.nginx.pid))

    def __exit__(self, *exc):
        self.st.__exit__(*exc)


NCHAN_CONF = """
load_module %(module)s;
%(user)s
worker_processes 2;
worker_rlimit_nofile %(nofile)d;
pid %(prefix)s/nginx.pid;
error_log %(prefix)s/logs/error.log warn;
events { worker_connections %(wc)d; }
http {
    access_log %(prefix)s/logs/access.log;
    client_body_temp_path %(prefix)s/tmp/body;
    proxy_temp_path %(prefix)s/tmp/proxy;
    fastcgi_temp_path %(prefix)s/tmp/fastcgi;
    uwsgi_temp_path %(prefix)s/tmp/uwsgi;
    scgi_temp_path %(prefix)s/tmp/scgi;
    server {
        listen 127.0.0.1:%(port)d;
        location = /health { return 200 "ok"; }
        location = /sub {
            nchan_subscriber websocket;
            nchan_channel_id fanout;
        }
        location = /pub {
            nchan_publisher;
            nchan_channel_id fanout;
            nchan_message_buffer_length 16;
            nchan_message_timeout 30s;
        }
    }
}
"""


class Nchan:
    name = "nchan"
    proto = "nchan"
    token = ticket = ""

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="fanout-nchan-")
        for d in ("logs", "tmp"):
            os.makedirs(os.path.join(self.tmp, d))
        self.port = free_port()
        conf = os.path.join(self.tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NCHAN_CONF % {
                "module": NCHAN_MODULE, "prefix": self.tmp, "port": self.port,
                "user": "user root;" if os.getuid() == 0 else "",
                "wc": WORKER_CONNECTIONS, "nofile": WORKER_CONNECTIONS + 1024})
        self.proc = subprocess.Popen([benchlib.NGINX, "-p", self.tmp, "-c", conf,
                                      "-g", "daemon off;"])
        self.http = "http://127.0.0.1:%d" % self.port
        self.ws = "ws://127.0.0.1:%d/sub" % self.port
        try:
            wait_http(self.http + "/health", self.proc, "nchan nginx")
        except BaseException:
            self.__exit__()
            raise
        return self

    def rss(self):
        return sum(rss_kb(p) for p in children(self.proc.pid))

    def nprocs(self):
        return "%d nginx workers" % len(children(self.proc.pid))

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


class SocketIO:
    name = "socket.io"
    proto = "sio"
    token = ""
    ticket = "%024x" % 0xfa0

    def __enter__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(["node", "--expose-gc",
                                      os.path.join(HERE, "sio_server.js"),
                                      str(self.port), self.ticket], cwd=HERE)
        self.http = "http://127.0.0.1:%d" % self.port
        self.ws = "ws://127.0.0.1:%d/socket.io/?EIO=4&transport=websocket" % self.port
        try:
            wait_http(self.http + "/health", self.proc, "socket.io server")
        except BaseException:
            self.__exit__()
            raise
        return self

    def rss(self):
        try:
            urllib.request.urlopen(self.http + "/gc", timeout=10).read()
            time.sleep(0.3)
        except Exception:
            pass
        return rss_kb(self.proc.pid)

    def nprocs(self):
        return "1 node process"

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


SYSTEMS = {"ours": Ours, "nchan": Nchan, "sio": SocketIO}


# --------------------------------------------------------------- generator
def read_json_line(proc, timeout):
    deadline = time.time() + timeout
    buf = b""
    while time.time() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 1)
        if r:
            line = proc.stdout.readline()
            if not line:
                break
            line = line.strip()
            if line.startswith(b"{"):
                return json.loads(line)
            buf += line + b"\n"
        elif proc.poll() is not None:
            break
    raise RuntimeError("generator gave no result (rc=%s) %s" % (proc.poll(), buf[-500:]))


def server_pids(sysobj):
    """Every process of the system under test (nginx master + workers and
    ticketd, the nchan nginx, or the node server)."""
    if sysobj.name == "ours":
        st = sysobj.st
        pids = [st.nginx.pid] + children(st.nginx.pid)
        if getattr(st, "daemon", None) is not None:
            pids.append(st.daemon.pid)
        return pids
    return [sysobj.proc.pid] + children(sysobj.proc.pid)


def pin(pids, cpu):
    for p in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(p)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_one(sysobj, n, opts):
    time.sleep(0.5)
    before = sysobj.rss()
    cmd_prefix = []
    if opts.pin:
        # the server on CPU 0, the generator on CPU 1: each system gets
        # the same single core, and the generator no longer competes
        pin(server_pids(sysobj), 0)
        cmd_prefix = ["taskset", "-c", "1"]
    gen = subprocess.Popen(
        cmd_prefix + ["node", os.path.join(HERE, "gen.js"), "--proto", sysobj.proto,
         "--pub", {"ours": "ours", "nchan": "nchan", "socket.io": "sio"}[sysobj.name],
         "--ws-url", sysobj.ws, "--http-base", sysobj.http, "--n", str(n),
         "--procs", str(opts.procs), "--token", sysobj.token or "-",
         "--ticket", sysobj.ticket or "-", "--events", str(opts.events),
         "--interval", str(opts.interval), "--burst", str(opts.burst),
         "--pub-conc", str(opts.pub_conc),
         "--client", opts.client, "--wsgen", opts.wsgen],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=HERE)
    try:
        ready = read_json_line(gen, 300)
        time.sleep(1.0)
        after = sysobj.rss()
        gen.stdin.write(b"go\n")
        gen.stdin.flush()
        # CPU time of each part at the generator's phase marks
        groups = {"server": server_pids(sysobj), "subscribers": children(gen.pid),
                  "publisher": [gen.pid]}
        if sysobj.name == "ours":
            groups["ticketd"] = [sysobj.st.daemon.pid]
        marks, perf = {}, None
        while True:
            msg = read_json_line(gen, 600)
            if "mark" not in msg:
                break
            marks[msg["mark"]] = {k: cpu_seconds(v) for k, v in groups.items()}
            if opts.perf and msg["mark"] == "burst-start":
                perf = subprocess.Popen(
                    ["perf", "record", "-a", "-g", "-q", "-o",
                     "%s.%s.%d" % (opts.perf, sysobj.name, n)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            elif perf is not None and msg["mark"] == "burst-end":
                perf.send_signal(signal.SIGINT)
                perf.wait()
                perf = None
        res = msg["result"]
        if "burst-start" in marks and "burst-end" in marks:
            res["cpu"] = {k: marks["burst-end"][k] - marks["burst-start"][k]
                          for k in groups}
        gen.wait(timeout=30)
    finally:
        if gen.poll() is None:
            gen.kill()
            gen.wait()
    res["ready"] = ready
    res["rss_before_kb"], res["rss_after_kb"] = before, after
    res["kb_per_conn"] = (after - before) / max(1, ready["ready"])
    res["procs"] = sysobj.nprocs()
    return res


def build_wsgen():
    """Compile wsgen.c into build/ (when missing or older than its source)."""
    src = os.path.join(HERE, "wsgen.c")
    out = os.path.join(HERE, "..", "..", "..", "build", "wsgen")
    out = os.path.normpath(out)
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out,
                        src], check=True)
    return out


def median_result(runs):
    """One result whose every figure is the median over runs."""
    def med(values):
        values = sorted(v for v in values if v is not None)
        return values[len(values) // 2] if values else None
    out = dict(runs[0])
    out["latency"] = dict(runs[0]["latency"])
    for key in ("p50", "p99"):
        out["latency"][key] = med(r["latency"][key] for r in runs)
    if runs[0].get("burst"):
        out["burst"] = dict(runs[0]["burst"])
        for key in ("p50", "p99", "perSecond"):
            out["burst"][key] = med((r.get("burst") or {}).get(key)
                                    for r in runs)
    out["kb_per_conn"] = med(r["kb_per_conn"] for r in runs)
    if all(r.get("cpu") for r in runs):
        out["cpu"] = {k: med(r["cpu"][k] for r in runs) for k in runs[0]["cpu"]}
    return out


def fmt(v, spec="%.2f"):
    return "-" if v is None else spec % v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", default="1000,5000")
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--interval", type=int, default=200)
    ap.add_argument("--burst", type=int, default=50)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--pub-conc", type=int, default=4,
                    help="publish requests in flight during the burst")
    ap.add_argument("--systems", default="ours,nchan,sio")
    ap.add_argument("--pin", action="store_true",
                    help="server on CPU 0, generator on CPU 1")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per system and N (the systems take turns); "
                         "the table shows medians")
    ap.add_argument("--perf", metavar="FILE",
                    help="record `perf record -a -g` during each burst into "
                         "FILE.<system>.<N> (the last run's)")
    ap.add_argument("--pause-jobs", action="store_true",
                    help="run ticketd with --jobs 0: the mail job each "
                         "comment queues is not sent during the run")
    ap.add_argument("--client", choices=("c", "node"), default="c",
                    help="subscribers in wsgen.c processes (default) or in "
                         "Node children")
    opts = ap.parse_args()
    opts.wsgen = build_wsgen() if opts.client == "c" else "-"
    Ours.pause_jobs = opts.pause_jobs
    if opts.quick:
        opts.sizes, opts.events, opts.burst = "200", 5, 10
    sizes = [int(x) for x in opts.sizes.split(",")]
    systems = [s for s in opts.systems.split(",") if s]

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(sizes) + 4096
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(want, soft)), hard))
    if not os.path.isdir(os.path.join(HERE, "node_modules")):
        raise SystemExit("run `npm ci` in t/bench/fanout first (make bench-fanout does)")
    skipped = {}
    if "nchan" in systems and not os.path.exists(NCHAN_MODULE):
        skipped["nchan"] = "%s missing (apt-get install libnginx-mod-nchan)" % NCHAN_MODULE
        systems.remove("nchan")

    print("fan-out bench: one event to N sockets in one room; N = %s; %d events "
          "every %d ms (latency), %d back to back (deliveries/s); generator: "
          "%s, %d processes; %d CPUs"
          % (", ".join(map(str, sizes)), opts.events, opts.interval, opts.burst,
             "wsgen.c (epoll) subscribers, Node %s publisher" % subprocess.run(
                 ["node", "--version"], capture_output=True,
                 text=True).stdout.strip() if opts.client == "c" else
             "Node %s" % subprocess.run(["node", "--version"],
                                        capture_output=True,
                                        text=True).stdout.strip(),
             opts.procs, os.cpu_count()),
          flush=True)
    results = {}
    for n in sizes:
        for k in range(opts.repeat):
            # the systems take turns, so a slow spell of the machine is
            # shared rather than landing on one of them
            for name in systems:
                cls = SYSTEMS[name]
                step("%s, N=%d, run %d/%d ..." % (cls.name, n, k + 1,
                                                 opts.repeat))
                try:
                    with cls() as sysobj:
                        r = run_one(sysobj, n, opts)
                except Exception as e:           # keep the other figures
                    step("  FAILED: %s" % e)
                    continue
                results.setdefault((cls.name, n), []).append(r)
                lat, bur = r["latency"], r.get("burst") or {}
                step("  %d/%d subscribed in %.1f s (%s); latency phase %d/%d "
                     "delivered; burst %d/%d delivered in %.2f s (%.0f/s); "
                     "closed %d"
                     % (r["connected"], n, r["ready"]["connectSeconds"],
                        r["procs"], lat["delivered"], lat["expected"],
                        bur.get("delivered", 0), bur.get("expected", 0),
                        bur.get("seconds", 0), bur.get("perSecond", 0),
                        lat["closed"] + bur.get("closed", 0)))
    results = {key: median_result(runs) for key, runs in results.items()}

    print()
    print("  %-10s %6s %9s %9s %9s %9s %13s %10s"
          % ("system", "N", "p50 ms", "p99 ms", "b.p50 ms", "b.p99 ms",
             "deliveries/s", "KB/idle"))
    for n in sizes:
        for name in ("ours", "nchan", "socket.io"):
            r = results.get((name, n))
            if not r:
                continue
            lat, bur = r["latency"], r.get("burst") or {}
            print("  %-10s %6d %9s %9s %9s %9s %13s %10.1f"
                  % (name, n, fmt(lat["p50"]), fmt(lat["p99"]), fmt(bur.get("p50")),
                     fmt(bur.get("p99")), fmt(bur.get("perSecond"), "%.0f"),
                     r["kb_per_conn"]))
    print("  (p50/p99: latency phase; b.p50/b.p99: latency within the burst; "
          "KB/idle: server RSS growth / N%s)"
          % ("; medians of %d runs" % opts.repeat if opts.repeat > 1 else ""))
    print()
    print("  CPU seconds during the burst (user + system, every thread; "
          "/proc/PID/stat at the generator's marks)")
    print("  %-10s %6s %9s %9s %12s %10s %20s"
          % ("system", "N", "server", "ticketd", "subscribers", "publisher",
             "server us/delivery"))
    for n in sizes:
        for name in ("ours", "nchan", "socket.io"):
            r = results.get((name, n))
            if not r or not r.get("cpu") or not r.get("burst"):
                continue
            cpu, delivered = r["cpu"], r["burst"]["delivered"]
            print("  %-10s %6d %9.2f %9s %12.2f %10.2f %20s"
                  % (name, n, cpu["server"],
                     "%.2f" % cpu["ticketd"] if "ticketd" in cpu else "-",
                     cpu["subscribers"], cpu["publisher"],
                     "%.2f" % (cpu["server"] * 1e6 / delivered) if delivered else "-"))
    print("  (server, ours: both nginx workers, the master and ticketd -- the "
          "REST publish, the store, the mail job and the fan-out; ticketd: "
          "its part of that)")
    print()
    print("  targets: p99 <= nchan's, deliveries/s >= nchan's, >= 5x socket.io's, "
          "< 16 KB per idle connection")
    for n in sizes:
        o = results.get(("ours", n))
        if not o:
            continue
        parts = []
        c = results.get(("nchan", n))
        if c:
            parts.append("p99 %.2fx nchan's (target <= 1)" % (o["latency"]["p99"] / c["latency"]["p99"])
                         if o["latency"]["p99"] and c["latency"]["p99"] else "p99 vs nchan: -")
            if o.get("burst") and c.get("burst") and c["burst"]["perSecond"]:
                parts.append("deliveries/s %.2fx nchan's (target >= 1)"
                             % (o["burst"]["perSecond"] / c["burst"]["perSecond"]))
        s = results.get(("socket.io", n))
        if s and o.get("burst") and s.get("burst") and s["burst"]["perSecond"]:
            parts.append("%.2fx socket.io's (target >= 5)"
                         % (o["burst"]["perSecond"] / s["burst"]["perSecond"]))
        parts.append("%.1f KB/idle (target < 16)" % o["kb_per_conn"])
        print("    N=%-5d %s" % (n, ";  ".join(parts)))
    for name, why in skipped.items():
        print("  SKIPPED %s: %s" % (name, why))


if __name__ == "__main__":
    main()

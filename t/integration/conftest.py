"""Integration harness: the real nginx with the real module, the real ticketd
and a real SQLite file, each stack in its own temporary directory.

A `Stack` renders nginx.conf with scripts/nginx-conf.sh, starts ticketd and
then nginx (in the foreground, as a child process), waits for /api/health,
and in teardown always stops both and checks error.log for [alert]/[emerg]
lines and crashed workers.  Tests look into its store (SQLite or MongoDB)
only through stack.probe, the named probes of store_probes.py.

Fixtures:
  stack       module-scoped default stack (RATE_LIMIT=100000, BCRYPT_COST=4,
              default lockout); the first signup on it is the admin, exposed
              as stack.admin / stack.admin_token.
  admin       (user, token) of that admin.
  make_stack  factory: make_stack(RATE_LIMIT="5", ...) starts a stack with
              those nginx-conf.sh environment overrides; stopped at the end
              of the test.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

# every REST answer a helper receives is checked against the OpenAPI document
import openapi_check

# TEST_STORE=mongodb / TEST_MONGODB_URI: the same suite on MongoDB; tests
# look into the store through stack.probe (store_probes.py)
from store_probes import (BACKEND, IS_CONGO, CONGO_NO_TXN, CONGO_NO_UNIQUE,
                          SQLITE_ONLY, database_uri, open_probe, server_uri)
from store_probes import skip_printed  # noqa: F401 (tests import it here)

# markers for tests that cannot run on every backend (reason printed)
sqlite_only = pytest.mark.skipif(BACKEND != "sqlite", reason=SQLITE_ONLY)
needs_unique_indexes = pytest.mark.skipif(IS_CONGO, reason=CONGO_NO_UNIQUE)
needs_transactions = pytest.mark.skipif(IS_CONGO, reason=CONGO_NO_TXN)

REPO = Path(__file__).resolve().parents[2]
NGINX = "/usr/sbin/nginx"
# `make asan-integration` also runs an ASan build of ticketd
TICKETD = Path(os.environ.get("TICKETD", REPO / "build" / "ticketd"))
# `make asan-integration` points MODULE at an ASan build of the module and
# sets NGINX_LD_PRELOAD to libasan; reports land in PREFIX/asan.<pid>.
MODULE = Path(os.environ.get("MODULE", REPO / "build" / "nginx" /
                             "ngx_http_ticket_module.so"))
NGINX_LD_PRELOAD = os.environ.get("NGINX_LD_PRELOAD", "")
CONF_SCRIPT = REPO / "scripts" / "nginx-conf.sh"

DEFAULT_PASSWORD = "Passw0rd-correct"
JSON_CT = "application/json; charset=utf-8"

# Outside /api/ (so never rate-limited): which worker holds a connection.
WORKER_LOCATION = "        location = /__worker { return 200 $pid; }"

# The default stack never hits the rate limit and hashes fast.
DEFAULT_ENV = {
    "RATE_LIMIT": "100000",
    "ACCOUNT_RATE_LIMIT": "100000",
    "BCRYPT_COST": "4",
    # the REST suites drive tickets by hand; the job runner has its own
    # tests (test_jobs.py), which start stacks with it on
    "TICKETD_ARGS": "--jobs 0",
}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique_name(prefix="u"):
    return "%s_%s" % (prefix, secrets.token_hex(6))


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_claims(token):
    """The claims of a JWT, without checking it."""
    return json.loads(b64url_decode(token.split(".")[1]))


def make_jwt(claims, key, alg="HS256", header=None):
    """An HS256/HS384/HS512 (or "none") JWT signed with key (bytes)."""
    hdr = {"alg": alg, "typ": "JWT"}
    if header:
        hdr.update(header)
    signing_input = (b64url(json.dumps(hdr, separators=(",", ":"))) + "."
                     + b64url(json.dumps(claims, separators=(",", ":"))))
    digests = {"HS256": hashlib.sha256, "HS384": hashlib.sha384,
               "HS512": hashlib.sha512}
    if alg in digests:
        sig = hmac.new(key, signing_input.encode(), digests[alg]).digest()
        return signing_input + "." + b64url(sig)
    return signing_input + "."


def assert_error(r, status, message=None):
    """r is the JSON error the API promises: status, content type, same text
    under "error" and "message"."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers.get("Content-Type") == JSON_CT, r.headers
    body = r.json()
    assert set(body) >= {"error", "message"}, body
    assert body["error"] == body["message"], body
    assert isinstance(body["error"], str) and body["error"], body
    if message is not None:
        assert body["error"] == message, body
    return body


def contains_key(value, key):
    if isinstance(value, dict):
        return key in value or any(contains_key(v, key)
                                   for v in value.values())
    if isinstance(value, list):
        return any(contains_key(v, key) for v in value)
    return False


def exchange(conn, method, path, headers=None, body=None):
    """One request on an http.client connection (kept open): (status,
    headers, body bytes)."""
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    openapi_check.check(method, path, r.status, data,
                        r.headers.get("Content-Type"), r.headers)
    return r.status, r.headers, data


def tail(text, lines=40):
    return "\n".join(text.splitlines()[-lines:])


def read_text(path):
    try:
        return Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return ""


def render_conf(prefix, port, store, secret_file, sock, env=None):
    """nginx.conf text from scripts/nginx-conf.sh with env overrides."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    out = subprocess.run(
        [str(CONF_SCRIPT), str(prefix), str(port), str(store),
         str(secret_file), str(sock)],
        env=full_env, check=True, capture_output=True, text=True, timeout=30)
    return out.stdout


def nginx_env(prefix):
    """Environment for an nginx process: libasan preloaded when the module
    under test is an ASan build, reports written under prefix."""
    env = dict(os.environ)
    if NGINX_LD_PRELOAD:
        env["LD_PRELOAD"] = NGINX_LD_PRELOAD
        env["ASAN_OPTIONS"] = "log_path=%s:detect_leaks=0" % (
            Path(prefix) / "asan")
    return env


def nginx_test(prefix, conf):
    """Run `nginx -t` on conf; returns the CompletedProcess."""
    return subprocess.run(
        [NGINX, "-t", "-p", str(prefix), "-c", str(conf)],
        capture_output=True, text=True, timeout=30, env=nginx_env(prefix))


def poll(fn, timeout, interval=0.1):
    """Call fn until it returns a truthy value or timeout; returns the last
    value (falsy on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class StackError(Exception):
    pass


class Stack:
    """One nginx (with the module) + one ticketd over one SQLite file."""

    def __init__(self, workdir, env=None):
        self.dir = Path(workdir)
        self.prefix = self.dir / "nginx"
        (self.prefix / "logs").mkdir(parents=True, exist_ok=True)
        (self.prefix / "tmp").mkdir(parents=True, exist_ok=True)
        self.env = dict(DEFAULT_ENV)
        self.env.update(env or {})
        self.port = free_port()
        self.store = self.dir / "tickets.db"
        self._probe = None
        if BACKEND == "mongodb":
            # a database of its own on the session's server
            self.store = database_uri(server_uri(),
                                      "ts_" + secrets.token_hex(6))
        self.secret_file = self.dir / "jwt.secret"
        self.secret = secrets.token_hex(32).encode()     # 64 bytes
        self.secret_file.write_bytes(self.secret)
        # sun_path is at most 107 bytes; keep the socket in a short dir
        self._sockdir = tempfile.mkdtemp(prefix="tkt", dir="/tmp")
        self.sock = Path(self._sockdir) / "ticketd.sock"
        self.daemon_log_path = self.dir / "ticketd.log"
        self.daemon_pidfile = self.dir / "ticketd.pid"
        self.conf = self.prefix / "nginx.conf"
        self.error_log_path = self.prefix / "logs" / "error.log"
        self.access_log_path = self.prefix / "logs" / "access.log"
        self.nginx_proc = None
        self.daemon_proc = None
        self.admin = None
        self.admin_token = None

    # --- lifecycle --------------------------------------------------------

    def write_conf(self):
        env = dict(self.env)
        env["EXTRA_SERVER"] = "%s\n%s" % (WORKER_LOCATION,
                                          env.get("EXTRA_SERVER", ""))
        self.conf.write_text(render_conf(self.prefix, self.port, self.store,
                                         self.secret_file, self.sock, env))

    @property
    def workers(self):
        return int(self.env.get("WORKERS", "2"))

    def start(self):
        if not MODULE.exists() or not TICKETD.exists():
            raise StackError("build missing (%s, %s): run `make build` at "
                             "the repository root first" % (MODULE, TICKETD))
        # ticketd reads the nginx.conf nginx will read (ticketd -c)
        self.write_conf()
        self.start_daemon()
        for attempt in range(3):
            self.write_conf()
            self._start_nginx()
            try:
                self.wait_ready()
                return self
            except StackError:
                # free_port() raced with another process: try another port
                if attempt < 2 and self.nginx_proc.poll() is not None \
                        and "Address already in use" in self.error_log():
                    # keep its [emerg] out of the teardown check
                    os.replace(self.error_log_path,
                               "%s.bind-failed-%d" % (self.error_log_path,
                                                      attempt))
                    self.port = free_port()
                    continue
                raise

    def _start_nginx(self):
        if getattr(self, "_nginx_out", None):
            self._nginx_out.close()
        self._nginx_out = open(self.dir / "nginx.stderr", "ab")
        self.nginx_proc = subprocess.Popen(
            [NGINX, "-p", str(self.prefix), "-c", str(self.conf),
             "-g", "daemon off;"],
            stdout=self._nginx_out, stderr=subprocess.STDOUT,
            start_new_session=True, env=nginx_env(self.prefix))

    def wait_ready(self, timeout=10):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.nginx_proc.poll() is not None:
                raise StackError(
                    "nginx exited with %s before answering\n%s\n"
                    "--- error.log tail ---\n%s" % (
                        self.nginx_proc.returncode,
                        read_text(self.dir / "nginx.stderr"),
                        tail(self.error_log())))
            try:
                r = requests.get(self.url("/api/health"), timeout=1)
                # 429: the module answers, this client is just rate-limited
                if r.status_code in (200, 429):
                    return
                last = "HTTP %d %s" % (r.status_code, r.text[:200])
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.05)
        raise StackError(
            "GET /api/health did not answer 200 within %ss (last: %s)\n"
            "--- error.log tail ---\n%s\n--- ticketd log tail ---\n%s" % (
                timeout, last, tail(self.error_log()),
                tail(self.daemon_log())))

    def start_daemon(self, timeout=5):
        assert self.daemon_proc is None, "ticketd already running"
        if not self.conf.exists():
            self.write_conf()
        self._daemon_out = open(self.dir / "ticketd.stderr", "ab")
        # store, socket, secret, Redis...: the ticket_* directives of the
        # stack's nginx.conf, as `make run` starts it; TICKETD_ARGS holds
        # the flags a test overrides (flags win over the file)
        self.daemon_proc = subprocess.Popen(
            [str(TICKETD), "-c", str(self.conf),
             "--log", str(self.daemon_log_path),
             "--pidfile", str(self.daemon_pidfile)]
            + self.env.get("TICKETD_ARGS", "").split(),
            stdout=self._daemon_out, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.daemon_proc.poll() is not None:
                rc = self.daemon_proc.returncode
                self.daemon_proc = None
                raise StackError(
                    "ticketd exited with %s at start\n%s\n%s" % (
                        rc, read_text(self.dir / "ticketd.stderr"),
                        tail(self.daemon_log())))
            if self._socket_accepts():
                return
            time.sleep(0.02)
        raise StackError("ticketd socket %s not ready in %ss\n%s" % (
            self.sock, timeout, tail(self.daemon_log())))

    def _socket_accepts(self):
        if not self.sock.exists():
            return False
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(0.5)
            s.connect(str(self.sock))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def stop_daemon(self, timeout=10):
        """SIGTERM ticketd and wait; returns its exit code."""
        proc, self.daemon_proc = self.daemon_proc, None
        if proc is None:
            return None
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise StackError("ticketd ignored SIGTERM for %ss" % timeout)

    def restart_daemon(self):
        self.stop_daemon()
        self.start_daemon()

    def worker_pids(self):
        conns = self.per_worker()
        for conn in conns.values():
            conn.close()
        return set(conns)

    def reload(self, timeout=10):
        """`nginx -s reload`, then wait until only new workers answer."""
        before = self.worker_pids()
        subprocess.run([NGINX, "-s", "reload", "-p", str(self.prefix),
                        "-c", str(self.conf)],
                       check=True, capture_output=True, timeout=30,
                       env=nginx_env(self.prefix))
        if not poll(lambda: not (self.worker_pids() & before), timeout, 0.1):
            raise StackError("old workers %s still answer %ss after reload"
                             "\n%s" % (before, timeout,
                                        tail(self.error_log())))
        self.wait_ready(timeout)

    def stop(self):
        """Stop nginx (SIGQUIT, SIGKILL after 10 s) and ticketd."""
        errors = []
        if self.nginx_proc is not None and self.nginx_proc.poll() is None:
            self.nginx_proc.send_signal(signal.SIGQUIT)
            try:
                self.nginx_proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.nginx_proc.pid, signal.SIGKILL)
                self.nginx_proc.wait()
                errors.append("nginx did not stop on SIGQUIT within 10 s")
        try:
            rc = self.stop_daemon()
            if rc not in (None, 0):
                errors.append("ticketd exited with %s on SIGTERM" % rc)
        except StackError as e:
            errors.append(str(e))
        for f in ("_nginx_out", "_daemon_out"):
            if getattr(self, f, None):
                getattr(self, f).close()
        if self._probe is not None:
            self._probe.close()
            self._probe = None
        try:
            os.unlink(self.sock)
        except OSError:
            pass
        try:
            os.rmdir(self._sockdir)
        except OSError:
            pass
        return errors

    def log_problems(self):
        """[alert]/[emerg] lines and worker crashes in error.log."""
        problems = [line for line in self.error_log().splitlines()
                    if "[alert]" in line or "[emerg]" in line
                    or "exited on signal" in line]
        for report in sorted(self.prefix.glob("asan.*")):
            problems.append("AddressSanitizer report %s:\n%s" % (
                report, tail(read_text(report))))
        # an ASan/UBSan build of ticketd reports on its stderr
        daemon_err = read_text(self.dir / "ticketd.stderr")
        if "AddressSanitizer" in daemon_err or "runtime error:" in daemon_err:
            problems.append("ticketd sanitizer report:\n%s" % tail(daemon_err))
        return problems

    # --- HTTP -------------------------------------------------------------

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def request(self, method, path, token=None, headers=None, **kw):
        """One request on a new connection (so requests spread over the
        workers)."""
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer %s" % token
        kw.setdefault("timeout", 15)
        return openapi_check.check_response(
            requests.request(method, self.url(path), headers=h, **kw))

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def request_from(self, source_ip, method, path, headers=None,
                     body=None):
        """One request from a chosen loopback address (127.0.0.x), a client
        of its own for the rate limiter.  Returns (status, headers, body)
        with headers an http.client.HTTPMessage."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15,
                                          source_address=(source_ip, 0))
        try:
            return exchange(conn, method, path, headers, body)
        finally:
            conn.close()

    def per_worker(self, source_ip=None, tries=200):
        """Keep-alive connections, one to each nginx worker:
        {worker pid: http.client.HTTPConnection}.  The caller closes them
        (or uses each_worker()).  Found through /__worker, which is outside
        /api/ and so costs nothing against the rate limit."""
        found, extra = {}, []
        try:
            for _ in range(tries):
                conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=15,
                    source_address=(source_ip, 0) if source_ip else None)
                status, _, body = exchange(conn, "GET", "/__worker")
                assert status == 200, (status, body)
                pid = int(body)
                if pid in found:
                    extra.append(conn)
                else:
                    found[pid] = conn
                if len(found) == self.workers:
                    return found
        finally:
            for conn in extra:
                conn.close()
        for conn in found.values():
            conn.close()
        raise StackError("reached only workers %s in %d connections" % (
            sorted(found), tries))

    def each_worker(self, method, path, headers=None, body=None,
                    source_ip=None):
        """The same request once on each worker: {pid: (status, headers,
        body)}."""
        conns = self.per_worker(source_ip)
        try:
            return {pid: exchange(conn, method, path, headers, body)
                    for pid, conn in conns.items()}
        finally:
            for conn in conns.values():
                conn.close()

    @staticmethod
    def auth(token):
        return {"Authorization": "Bearer %s" % token}

    def signup(self, username=None, email=None, password=DEFAULT_PASSWORD,
               skills=None, expect=200, **extra):
        """Sign up a user with unique random names; returns (user, token)."""
        username = username or unique_name()
        email = email or "%s@example.com" % username.lower()
        body = {"username": username, "email": email, "password": password}
        if skills is not None:
            body["skills"] = skills
        body.update(extra)
        r = self.post("/api/auth/signup", json=body)
        assert r.status_code == expect, (r.status_code, r.text)
        data = r.json()
        return data.get("user"), data.get("token")

    def login(self, identifier, password=DEFAULT_PASSWORD, expect=200):
        r = self.post("/api/auth/login",
                      json={"identifier": identifier, "password": password})
        assert r.status_code == expect, (r.status_code, r.text)
        data = r.json()
        return data.get("user"), data.get("token")

    def health(self):
        return self.get("/api/health").json()

    # --- tokens -----------------------------------------------------------

    def make_token(self, claims, alg="HS256", key=None, header=None):
        """A JWT signed with this stack's secret (or key)."""
        return make_jwt(claims, self.secret if key is None else key, alg,
                        header)

    # --- logs and store ---------------------------------------------------

    def daemon_log(self):
        return read_text(self.daemon_log_path)

    def error_log(self):
        return read_text(self.error_log_path)

    def access_log(self):
        return read_text(self.access_log_path)

    def wait_daemon_log(self, *needles, timeout=5, since=0):
        """Wait for a ticketd log line (after byte offset since) holding
        every needle; returns the line or None."""
        def find():
            for line in self.daemon_log()[since:].splitlines():
                if all(n in line for n in needles):
                    return line
            return None
        return poll(find, timeout)

    @property
    def store_uri(self):
        """The store as ticketd's --store takes it."""
        if str(self.store).startswith("mongodb"):
            return str(self.store)
        return "sqlite:%s" % self.store

    @property
    def probe(self):
        """The store's named probes (store_probes.py): the only way tests
        look into the store or change it behind the API's back."""
        if self._probe is None or self._probe.target != str(self.store):
            if self._probe is not None:
                self._probe.close()
            self._probe = open_probe(self.store)
        return self._probe

    # --- tickets, moderators and jobs -------------------------------------

    @staticmethod
    def now_ms():
        return int(time.time() * 1000)

    def make_user(self, role="user", skills=None, prefix="u"):
        """A new account with that role (promoted by the admin through
        update-user); returns (user, token), user as the store has it."""
        user, token = self.signup(username=unique_name(prefix),
                                  skills=skills)
        if role != "user":
            body = {"email": user["email"], "role": role}
            if skills is not None:
                body["skills"] = skills
            r = self.post("/api/auth/update-user", token=self.admin_token,
                          json=body)
            assert r.status_code == 200, (r.status_code, r.text)
            user = dict(user, role=role)
        return user, token

    def create_ticket(self, token, title=None, description=None,
                      expect=201):
        """POST /api/tickets; returns the ticket of the answer."""
        body = {"title": title or unique_name("ticket"),
                "description": description or "Something is broken."}
        r = self.post("/api/tickets", token=token, json=body)
        assert r.status_code == expect, (r.status_code, r.text)
        return r.json().get("ticket")

    # --- the job runner ---------------------------------------------------

    def kill_daemon(self):
        """SIGKILL ticketd (a crash: no cleanup, leases left behind) and
        reap it; returns its exit code."""
        proc, self.daemon_proc = self.daemon_proc, None
        if proc is None:
            return None
        proc.send_signal(signal.SIGKILL)
        return proc.wait(10)

    def due_job_states(self):
        """{state: count} over the jobs, leaving out the pending ones
        scheduled for later (runAfter in the future: the SLA's warnings
        and breach checks, due hours after a ticket's triage)."""
        now = self.now_ms()
        states = {}
        for j in self.probe.jobs():
            if j["state"] == "pending" and (j["runAfter"] or 0) > now:
                continue
            states[j["state"]] = states.get(j["state"], 0) + 1
        return states

    def wait_jobs_settled(self, timeout=15):
        """Wait until no job is due (pending with runAfter now or past) or
        running; returns due_job_states(), as they are at the timeout if
        that comes first (check them).  Jobs scheduled for later are not
        waited for and not counted."""
        def settled():
            states = self.due_job_states()
            if states.get("pending", 0) or states.get("running", 0):
                return None
            return [states]             # truthy even when there are none
        found = poll(settled, timeout, 0.05)
        return found[0] if found else self.due_job_states()

    # --- socket.io --------------------------------------------------------

    def ws_url(self, path="/socket.io/?EIO=4&transport=websocket"):
        """The ws:// URL of the Socket.IO endpoint (or of path)."""
        return "ws://127.0.0.1:%d%s" % (self.port, path)

    def nginx_children(self):
        """Pids of the processes the nginx master runs now (its workers,
        including old ones still shutting down after a reload)."""
        master = self.nginx_proc.pid if self.nginx_proc else None
        pids = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path("/proc/%s/stat" % entry).read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may hold spaces
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == master:
                pids.add(int(entry))
        return pids

    def worker_of(self, client_sock):
        """Pid of the nginx worker holding the server end of this client's
        TCP connection (a socket connected to 127.0.0.1:self.port), found
        through /proc/net/tcp and the workers' fds; None if not found."""
        client_port = client_sock.getsockname()[1]
        inode = None
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                local, remote = parts[1], parts[2]
                if (int(local.rsplit(":", 1)[1], 16) == self.port
                        and int(remote.rsplit(":", 1)[1], 16) == client_port):
                    inode = parts[9]
                    break
        if inode is None or inode == "0":
            return None
        target = "socket:[%s]" % inode
        for pid in self.nginx_children():
            try:
                fds = os.listdir("/proc/%d/fd" % pid)
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == target:
                        return pid
                except OSError:
                    continue
        return None


def _start(workdir, env):
    st = Stack(workdir, env)
    try:
        st.start()
    except BaseException:
        problems = st.stop()
        if problems:
            print("\n".join(problems))
        raise
    return st


def _finish(st):
    problems = st.stop()
    problems += st.log_problems()
    assert not problems, (
        "stack teardown found problems:\n%s\n--- error.log tail ---\n%s" % (
            "\n".join(problems), tail(st.error_log())))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The default stack; its first signup (done here) is the admin."""
    st = _start(tmp_path_factory.mktemp("stack"), None)
    try:
        st.admin, st.admin_token = st.signup(username=unique_name("admin"))
        assert st.admin["role"] == "admin", st.admin
    except BaseException:
        st.stop()
        raise
    yield st
    _finish(st)


@pytest.fixture
def admin(stack):
    """(user, token) of the default stack's admin."""
    return stack.admin, stack.admin_token


@pytest.fixture
def make_stack(tmp_path_factory):
    """Start a stack with nginx-conf.sh env overrides; stopped after the
    test."""
    started = []

    def factory(**env):
        st = _start(tmp_path_factory.mktemp("stack"), env)
        started.append(st)
        return st

    yield factory
    failures = []
    for st in started:
        try:
            _finish(st)
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, "\n".join(failures)

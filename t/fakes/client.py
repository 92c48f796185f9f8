"""Start the fakes in t/fakes/fakes.py from tests and benchmarks (stdlib only).

    from client import GeminiFake          # sys.path += [REPO/"t"/"fakes"]

    with GeminiFake() as gemini:           # started on a free port
        conf["GEMINI_BASE_URL"] = gemini.url
        gemini.control("ratelimit", count=2)
        ...
        assert gemini.requests()[-1]["body"]["contents"]

Every fake runs as its own subprocess (`fakes.py <service> --port 0`); the
constructor waits for its `READY` line.  stop() always kills the process and
is also called by `with`, by garbage collection and at interpreter exit, so
a failing test never leaves a fake behind.
"""

import atexit
import email
import email.policy
import json
import os
import select
import subprocess
import sys
import time
import urllib.error
import urllib.request
import weakref

HERE = os.path.dirname(os.path.abspath(__file__))
FAKES = os.path.join(HERE, "fakes.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") \
    else sys.executable

_running = weakref.WeakSet()


@atexit.register
def _stop_all():
    for fake in list(_running):
        fake.stop()


class FakeError(RuntimeError):
    pass


class Fake:
    """Base: one fake process and its control API."""

    service = None
    default_key = None

    def __init__(self, key=None, args=(), host="127.0.0.1",
                 start_timeout=10.0, verbose=False):
        self.key = key or self.default_key
        self.host = host
        cmd = [PYTHON, FAKES, self.service, "--port", "0", "--host", host]
        if self.key is not None:
            cmd += ["--key", self.key]
        if verbose:
            cmd.append("--verbose")
        cmd += list(args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        _running.add(self)
        try:
            self.ports = self._wait_ready(start_timeout)
        except BaseException:
            self.stop()
            raise
        self.port = self.ports[0]
        self.control_url = "http://%s:%d" % (host, self.ports[-1])

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise FakeError("%s fake: no READY line within %.0f s"
                                % (self.service, timeout))
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 256)
                if not chunk:
                    raise FakeError("%s fake exited (rc=%s) before READY"
                                    % (self.service, self.proc.wait()))
                buf += chunk
        words = buf.split(b"\n")[0].decode().split()
        if not words or words[0] != "READY":
            raise FakeError("%s fake: bad first line %r" % (self.service, buf))
        return [int(w) for w in words[1:]]

    # -- lifecycle ---------------------------------------------------------

    def stop(self):
        """Kill the process (idempotent)."""
        proc = getattr(self, "proc", None)
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
        self.proc = None
        _running.discard(self)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __del__(self):
        try:
            self.stop()
        except Exception:
            pass

    # -- control API -------------------------------------------------------

    @property
    def url(self):
        """Base URL to configure in place of the real service's."""
        return "http://%s:%d" % (self.host, self.port)

    def _call(self, method, path, obj=None, timeout=10):
        data = None if obj is None else json.dumps(obj).encode()
        req = urllib.request.Request(
            self.control_url + path, data=data, method=method,
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise FakeError("%s %s -> %d %s" % (method, path, e.code,
                                                e.read().decode()))

    def control(self, mode="ok", **kw):
        """POST /__fake/mode: control("error", status=503, count=2),
        control(delay_ms=500), control("ok", answer={...})."""
        kw["mode"] = mode
        return self._call("POST", "/__fake/mode", kw)["mode"]

    def mode(self):
        return self._call("GET", "/__fake/mode")

    def requests(self, path=None):
        """Everything received, oldest first; `path` keeps those whose
        path (without the query) equals it."""
        got = self._call("GET", "/__fake/requests")
        if path is not None:
            got = [r for r in got if r.get("path", "").split("?")[0] == path]
        return got

    def wait_requests(self, n, timeout=10.0, path=None):
        """requests() once there are at least n of them (the daemon works
        asynchronously); FakeError after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.requests(path)
            if len(got) >= n:
                return got
            if time.monotonic() > deadline:
                raise FakeError("%s fake: %d request(s) after %.0f s, "
                                "wanted %d" % (self.service, len(got),
                                               timeout, n))
            time.sleep(0.05)

    def reset(self):
        """Forget requests, back to mode ok without delay, release stalls."""
        self._call("POST", "/__fake/reset", {})


class GeminiFake(Fake):
    """Stands for https://generativelanguage.googleapis.com."""

    service = "gemini"
    default_key = "test-gemini-key"

    def generate_url(self, model="gemini-2.0-flash"):
        return "%s/v1beta/models/%s:generateContent" % (self.url, model)


class OpenAIFake(Fake):
    """Stands for https://api.openai.com (`.url` + "/v1" is the API base)."""

    service = "openai"
    default_key = "test-openai-key"

    @property
    def api_base(self):
        return self.url + "/v1"


class SendGridFake(Fake):
    """Stands for https://api.sendgrid.com."""

    service = "sendgrid"
    default_key = "test-sendgrid-key"

    def mails(self):
        """Accepted mails: {message_id, from, to[], subject, content, body}."""
        return self._call("GET", "/__fake/mails")

    def wait_mails(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            got = self.mails()
            if len(got) >= n or time.monotonic() > deadline:
                if len(got) < n:
                    raise FakeError("sendgrid fake: %d mail(s) after %.0f s, "
                                    "wanted %d" % (len(got), timeout, n))
                return got
            time.sleep(0.05)


class SmtpFake(Fake):
    """An SMTP sink; `.url` is smtp://host:port, control on its own port."""

    service = "smtp"

    @property
    def url(self):
        return "smtp://%s:%d" % (self.host, self.port)

    def messages(self):
        """Delivered messages: {id, from, to[], data, helo, auth, params}."""
        return self.requests()

    def parsed(self):
        """messages() with data parsed into email.message.EmailMessage."""
        return [email.message_from_string(m["data"],
                                          policy=email.policy.default)
                for m in self.messages()]

    def wait_messages(self, n, timeout=10.0):
        return self.wait_requests(n, timeout)

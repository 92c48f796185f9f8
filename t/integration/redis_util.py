"""A real redis-server for the tests that need one, and a tiny RESP client
to look inside it (Debian's python3-redis is not a dependency)."""
import os
import shutil
import signal
import socket
import subprocess

import pytest

from conftest import free_port, poll

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """redis-server on a free port in a temp dir; restartable on the same
    port, keeping its dump (SHUTDOWN SAVE, then start again) or not."""

    def __init__(self, workdir, password=None):
        self.dir = str(workdir)
        self.port = free_port()
        self.password = password      # requirepass; command() sends AUTH
        self.proc = None
        self.start()

    @property
    def url(self):
        return "redis://%s127.0.0.1:%d" % (
            ":%s@" % self.password if self.password else "", self.port)

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir,
             "--dbfilename", "dump.rdb"]
            + (["--requirepass", self.password] if self.password else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert poll(self._up, 5), "redis-server did not start"

    def _up(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.2):
                return True
        except OSError:
            return False

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def shutdown_saving(self):
        """Stop the way a packaged Redis stops: its data saved to disk, so
        a restart comes back with every key it had."""
        self.command("SHUTDOWN", "SAVE", expect_close=True)
        self.proc.wait(10)

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def close(self):
        if self.proc.poll() is None:
            self.resume()
            self.kill()

    def command(self, *args, expect_close=False, db=0):
        with socket.create_connection(("127.0.0.1", self.port), 5) as s:
            f = s.makefile("rb")
            for first in ((("AUTH", self.password),) if self.password else ())\
                    + ((("SELECT", db),) if db else ()):
                s.sendall(encode(first))
                assert decode(f) == "OK"
            s.sendall(encode(args))
            try:
                return decode(f)
            except EOFError:
                if expect_close:
                    return None
                raise

    def values(self, pattern="*"):
        """{key: value} of every string key matching pattern."""
        return {k: self.command("GET", k)
                for k in self.command("KEYS", pattern)}


def encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def decode(f):
    line = f.readline()
    if not line:
        raise EOFError
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        try:
            return data.decode()
        except UnicodeDecodeError:
            return data
    if kind == b"*":
        return [decode(f) for _ in range(int(rest))]
    raise RuntimeError("bad RESP line %r" % line)


def require_redis():
    if not os.path.exists(REDIS):
        pytest.skip("redis-server is not installed (make deps installs it)")


@pytest.fixture
def redis_server(tmp_path):
    require_redis()
    server = RedisServer(tmp_path)
    yield server
    server.close()

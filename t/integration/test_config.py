"""Configuration checks: `nginx -t` accepts the rendered configuration and
rejects bad ticket_* values with a clear [emerg] message."""

import os
import re
import secrets
from pathlib import Path

import pytest

from conftest import (DEFAULT_PASSWORD, MODULE, REPO, nginx_test, poll,
                      render_conf, unique_name)


@pytest.fixture
def conf_dir(tmp_path):
    """A prefix with a secret and a rendered nginx.conf; returns a helper
    object with the paths and the conf text."""
    class C:
        pass
    c = C()
    c.prefix = tmp_path
    (tmp_path / "logs").mkdir()
    (tmp_path / "tmp").mkdir()
    c.secret = tmp_path / "jwt.secret"
    c.secret.write_text(secrets.token_hex(32) + "\n")
    c.store = tmp_path / "tickets.db"
    c.sock = tmp_path / "t.sock"
    c.conf = tmp_path / "nginx.conf"
    c.text = render_conf(tmp_path, 18099, c.store, c.secret, c.sock,
                         {"BCRYPT_COST": "4"})
    return c


def edit(text, pattern, replacement):
    new, n = re.subn(pattern, replacement, text)
    assert n >= 1, "pattern %r not in the rendered conf" % pattern
    return new


def test_rendered_conf_passes_nginx_t(conf_dir):
    conf_dir.conf.write_text(conf_dir.text)
    r = nginx_test(conf_dir.prefix, conf_dir.conf)
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr
    assert "[emerg]" not in r.stderr and "[alert]" not in r.stderr
    # -t never creates the store
    assert not conf_dir.store.exists()


BAD_CONFS = [
    # id, pattern, replacement, what the [emerg] line must say: a list of
    # requirements, each a tuple of acceptable alternatives
    ("bcrypt-cost-3", r"ticket_bcrypt_cost \d+;", "ticket_bcrypt_cost 3;",
     [("ticket_bcrypt_cost", "between 4 and 31")]),
    ("bcrypt-cost-32", r"ticket_bcrypt_cost \d+;", "ticket_bcrypt_cost 32;",
     [("ticket_bcrypt_cost", "between 4 and 31")]),
    ("bcrypt-cost-word", r"ticket_bcrypt_cost \d+;",
     "ticket_bcrypt_cost ten;", [("ticket_bcrypt_cost", '"ten"')]),
    ("max-comments-0", r"ticket_bcrypt_cost \d+;",
     "ticket_bcrypt_cost 10; ticket_max_comments 0;",
     [("ticket_max_comments",), ("between 1 and 100000",)]),
    ("store-mongodb-bad-uri", r"ticket_store [^;]+;",
     "ticket_store mongodb://x:notaport/db;",
     [("MongoDB",)]),
    ("store-unknown-scheme", r"ticket_store [^;]+;", "ticket_store foo:bar;",
     [("ticket_store",), ("foo:bar",)]),
    ("store-empty-sqlite", r"ticket_store [^;]+;", "ticket_store sqlite:;",
     [("ticket_store", "sqlite:")]),
    ("lockout-failures-0", r"ticket_login_lockout [^;]+;",
     "ticket_login_lockout failures=0 window=15m lock=15m;",
     [("ticket_login_lockout",), ("failures",)]),
    ("lockout-unknown-param", r"ticket_login_lockout [^;]+;",
     "ticket_login_lockout tries=5;", [("ticket_login_lockout",)]),
    ("limit-zone-window-0", r"window=15m", "window=0",
     [("window",)]),
    ("limit-zone-limit-0", r"limit=\d+ ", "limit=0 ",
     [("limit",)]),
    ("limit-unknown-zone", r"ticket_limit api;", "ticket_limit nosuchzone;",
     [("nosuchzone",)]),
    ("thread-pool-undeclared", r"ticket_thread_pool ticket;",
     "ticket_thread_pool nosuch;", [('"nosuch"',)]),
    ("cors-not-an-origin", r"ticket_cors_origins [^;]+;",
     "ticket_cors_origins notanorigin;", [("notanorigin",)]),
    ("redis-not-a-url", r"ticket_redis [^;]+;",
     "ticket_redis localhost:6379;", [("ticket_redis", "redis://")]),
    ("redis-bad-port", r"ticket_redis [^;]+;",
     "ticket_redis redis://cache:99999;", [("ticket_redis", "port")]),
    ("redis-bad-db", r"ticket_redis [^;]+;",
     "ticket_redis redis://cache/99;", [("ticket_redis", "database")]),
    ("cors-origin-with-path", r"ticket_cors_origins [^;]+;",
     "ticket_cors_origins https://app.example/path;",
     [("ticket_cors_origins", "https://app.example/path")]),
]


def test_nginx_t_accepts_a_mongodb_store(conf_dir):
    """A mongodb:// URI is checked, not connected to, at -t."""
    conf_dir.conf.write_text(edit(
        conf_dir.text, r"ticket_store [^;]+;",
        "ticket_store mongodb://127.0.0.1:1/tickets"
        "?serverSelectionTimeoutMS=300;"))
    r = nginx_test(conf_dir.prefix, conf_dir.conf)
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr


@pytest.mark.parametrize("pattern,replacement,requirements",
                         [c[1:] for c in BAD_CONFS],
                         ids=[c[0] for c in BAD_CONFS])
def test_nginx_t_rejects_bad_value_with_clear_message(
        conf_dir, pattern, replacement, requirements):
    conf_dir.conf.write_text(edit(conf_dir.text, pattern, replacement))
    r = nginx_test(conf_dir.prefix, conf_dir.conf)
    assert r.returncode != 0, r.stderr
    assert "test failed" in r.stderr, r.stderr
    emerg = [l for l in r.stderr.splitlines() if "[emerg]" in l]
    assert emerg, r.stderr
    for alternatives in requirements:
        assert any(word in l for l in emerg for word in alternatives), (
            alternatives, r.stderr)
    # the message points at the file and line
    assert any(re.search(r"nginx\.conf:\d+", l) for l in emerg), r.stderr


@pytest.mark.parametrize("secret", [b"x" * 31, b"y" * 31 + b"\n", b""],
                         ids=["31-bytes", "31-bytes-and-newline", "empty"])
def test_nginx_t_rejects_short_jwt_secret(conf_dir, secret):
    conf_dir.secret.write_bytes(secret)
    conf_dir.conf.write_text(conf_dir.text)
    r = nginx_test(conf_dir.prefix, conf_dir.conf)
    assert r.returncode != 0, r.stderr
    emerg = [l for l in r.stderr.splitlines() if "[emerg]" in l]
    assert emerg, r.stderr
    assert any(str(conf_dir.secret) in l and "32" in l for l in emerg), \
        r.stderr


def test_nginx_t_accepts_secret_of_exactly_32_bytes(conf_dir):
    conf_dir.secret.write_bytes(b"s" * 32 + b"\n")
    conf_dir.conf.write_text(conf_dir.text)
    r = nginx_test(conf_dir.prefix, conf_dir.conf)
    assert r.returncode == 0, r.stderr


def test_nginx_t_accepts_a_redis_url_without_reaching_redis(conf_dir):
    pw = conf_dir.secret.parent / "redis.pw"
    pw.write_text("pw\n")
    conf_dir.conf.write_text(edit(
        conf_dir.text, r"ticket_redis [^;]+;",
        "ticket_redis redis://cache.invalid:6380/3; "
        "ticket_redis_password_file %s;" % pw))
    r = nginx_test(conf_dir.prefix, conf_dir.conf)
    assert r.returncode == 0, r.stderr


def test_nginx_t_rejects_a_redis_password_outside_a_file(conf_dir):
    """Secrets only through *_file directives: a password in the URL, or
    a password file that is empty or several lines, is refused."""
    conf_dir.conf.write_text(edit(conf_dir.text, r"ticket_redis [^;]+;",
                                  "ticket_redis redis://:pw@cache.invalid;"))
    r = nginx_test(conf_dir.prefix, conf_dir.conf)
    assert r.returncode != 0
    assert "ticket_redis_password_file" in r.stderr, r.stderr
    assert ":pw@" not in r.stderr.replace(str(conf_dir.conf), "")

    pw = conf_dir.secret.parent / "redis.pw"
    for bad in ("", "\n", "one\ntwo\n"):
        pw.write_text(bad)
        conf_dir.conf.write_text(edit(
            conf_dir.text, r"ticket_redis [^;]+;",
            "ticket_redis redis://cache.invalid; "
            "ticket_redis_password_file %s;" % pw))
        r = nginx_test(conf_dir.prefix, conf_dir.conf)
        assert r.returncode != 0, (bad, r.stderr)
        assert str(pw) in r.stderr, r.stderr


def test_nginx_t_rejects_missing_secret_file(conf_dir):
    os.unlink(conf_dir.secret)
    conf_dir.conf.write_text(conf_dir.text)
    r = nginx_test(conf_dir.prefix, conf_dir.conf)
    assert r.returncode != 0
    assert any(str(conf_dir.secret) in l for l in r.stderr.splitlines()
               if "[emerg]" in l), r.stderr


def test_nginx_t_rejects_api_without_store(conf_dir):
    conf_dir.conf.write_text(edit(conf_dir.text, r"\n\s*ticket_store [^;]+;",
                                  "\n"))
    r = nginx_test(conf_dir.prefix, conf_dir.conf)
    assert r.returncode != 0
    assert any("ticket_store" in l for l in r.stderr.splitlines()
               if "[emerg]" in l), r.stderr


# --- conf.d/ticket.conf ---------------------------------------------------

SNIPPET = REPO / "conf.d" / "ticket.conf"
# absolute paths a sysadmin snippet may point at
ABS_PATH = re.compile(r"(?<![\w.])/(?:var|etc|run|srv|opt|tmp|home|usr/local)"
                      r"(?:/[^\s;'\"]*)?")


def wrap_snippet(text, prefix):
    """Make conf.d/ticket.conf testable: its absolute paths moved under
    prefix (a 64-byte secret written where it wants the JWT secret), main
    context lines (load_module, thread_pool) lifted out of http {}."""
    mapping = {}

    def relocate(m):
        path = m.group(0)
        if path not in mapping:
            mapping[path] = str(prefix / "fs" / path.lstrip("/"))
        return mapping[path]

    main_lines, http_lines = [], []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("load_module"):
            continue                     # ours is loaded below
        line = ABS_PATH.sub(relocate, line)
        if stripped.startswith(("thread_pool", "worker_processes", "pid ",
                                "user ", "error_log", "include modules")):
            # main-context directives in the snippet
            if stripped.startswith(("thread_pool",)):
                main_lines.append(line)
            continue
        http_lines.append(line)

    for original, new in mapping.items():
        p = Path(new)
        if re.search(r"(jwt|secret)", original, re.I):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(secrets.token_hex(32) + "\n")
        elif re.search(r"\.(db|sock|log|pid)$", original):
            p.parent.mkdir(parents=True, exist_ok=True)
        else:
            p.mkdir(parents=True, exist_ok=True)

    # every pool the snippet names (in its directives or in its comments
    # showing the main-context lines) is declared in the main context
    pools = set(re.findall(r"^\s*#?\s*thread_pool\s+(\w+)", text, re.M))
    pools |= set(re.findall(r"^\s*ticket_\w*thread_pool\s+(\w+)\s*;",
                            text, re.M))
    declared = set(re.findall(r"^\s*thread_pool\s+(\w+)",
                              "\n".join(main_lines), re.M))
    main_lines += ["thread_pool %s threads=2;" % p
                   for p in sorted(pools - declared)]
    user_line = "user root;" if os.getuid() == 0 else ""
    return "\n".join([
        "load_module %s;" % MODULE,
        user_line,
        "pid %s/nginx.pid;" % prefix,
        "error_log %s/logs/error.log info;" % prefix,
        *main_lines,
        "events { worker_connections 64; }",
        "http {",
        "    client_body_temp_path %s/tmp/body;" % prefix,
        "    proxy_temp_path %s/tmp/proxy;" % prefix,
        "    fastcgi_temp_path %s/tmp/fastcgi;" % prefix,
        "    uwsgi_temp_path %s/tmp/uwsgi;" % prefix,
        "    scgi_temp_path %s/tmp/scgi;" % prefix,
        "    access_log %s/logs/access.log;" % prefix,
        *http_lines,
        "}",
        "",
    ]), mapping


def test_conf_d_ticket_conf_passes_nginx_t(tmp_path):
    if not SNIPPET.exists():
        print("conf.d/ticket.conf does not exist yet; nothing to check")
        pytest.skip("conf.d/ticket.conf does not exist yet")
    (tmp_path / "logs").mkdir()
    (tmp_path / "tmp").mkdir()
    text, mapping = wrap_snippet(SNIPPET.read_text(), tmp_path)
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    r = nginx_test(tmp_path, conf)
    assert r.returncode == 0, "nginx -t failed on conf.d/ticket.conf " \
        "(paths moved: %s)\n%s\n--- wrapped conf ---\n%s" % (
            mapping, r.stderr, text)


# --- $ticket_user_id / $ticket_user_role, phase by phase -------------------

# a rewrite-phase reader of the variables (what map, if, limit_req_zone
# keys and auth_request see): the token's claims only
WHOAMI = ('        location = /__whoami { default_type text/plain; '
          'return 200 "$ticket_user_id $ticket_user_role"; }')


def access_line(st, marker):
    """The access-log line (log_format ticket: "user=... role=...") of the
    request whose URI holds marker."""
    found = poll(lambda: [l for l in st.access_log().splitlines()
                          if marker in l], 5)
    assert found and len(found) == 1, (marker, st.access_log()[-2000:])
    return found[0]


def test_log_variables_show_the_session_the_store_confirmed(make_stack):
    st = make_stack(EXTRA_SERVER=WHOAMI)
    admin, admin_token = st.signup()
    user, token = st.signup()
    auth = {"Authorization": "Bearer %s" % token}

    # a valid session: the user, with the store's current role
    r = st.post("/api/auth/update-user", token=admin_token,
                json={"email": user["email"], "role": "moderator"})
    assert r.status_code == 200, r.text
    marker = unique_name("live")
    assert st.get("/api/tickets?%s" % marker, token=token).status_code == 200
    assert "user=%s role=moderator " % user["_id"] in access_line(st, marker)

    # login: the user it authenticated (no bearer token needed)
    marker = unique_name("login")
    r = st.post("/api/auth/login?%s" % marker,
                json={"identifier": user["username"],
                      "password": DEFAULT_PASSWORD})
    assert r.status_code == 200, r.text
    assert "user=%s role=moderator " % user["_id"] in access_line(st, marker)

    # a revoked token: the API refuses it, the log shows nobody
    assert st.post("/api/auth/logout", token=token).status_code == 200
    marker = unique_name("revoked")
    r = st.get("/api/tickets?%s" % marker, token=token)
    assert r.status_code == 401, r.text
    assert "user=- role=- " in access_line(st, marker)

    # ... while a phase before the store check has only the token's
    # signed claims: user and the role it was issued with
    r = st.get("/__whoami", headers=auth)
    assert r.text == "%s user" % user["_id"], r.text


def test_log_variables_are_empty_for_a_deleted_user(make_stack):
    st = make_stack()
    st.signup()                                     # the admin
    user, token = st.signup()
    assert st.probe.delete("users", user["_id"]) == 1
    marker = unique_name("gone")
    r = st.get("/api/tickets?%s" % marker, token=token)
    assert r.status_code == 401, r.text
    assert "user=- role=- " in access_line(st, marker)

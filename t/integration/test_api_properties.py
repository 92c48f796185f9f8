"""Property-based tests of the whole REST API (Hypothesis).

Every route of shared/api/ts_api.c's table, called as every kind of caller
(anonymous, user, moderator, admin, a revoked token, an expired one, the
token of a user who does not exist, malformed tokens), with generated
input: Unicode text from every plane (combining marks, RTL, zero-width,
NUL and lone surrogates as JSON escapes and as raw bytes), lengths at and
around each documented limit counted in code points, wrong JSON types,
deep nesting, huge numbers, duplicate keys, bad ids, bad query strings,
bad or oversized bodies and wrong content types.  Three properties:

  (a) never a 5xx, and every answer is JSON; a 4xx is {error, message}
      with the same text twice;
  (b) a refused request (4xx) changes nothing in the store: a snapshot of
      every table (or collection) before and after is the same;
  (c) an accepted request round-trips: what was sent comes back
      byte-identical from the matching GET, after the documented trim of
      ASCII whitespace (and the documented lower-casing of skills and
      e-mail addresses).  Where an oracle of the rules is simple, the
      test also asserts which inputs are accepted at all.

The stack is conftest's module-scoped `stack`: ticketd runs without the job
runner (--jobs 0), so nothing changes the store behind a request's back.

Run length: HYPOTHESIS_PROFILE=ci (the default, inside `make test`: about
a minute per backend) or fuzz (`make fuzz-api`: FUZZ_API_EXAMPLES examples
per test, default 3000).  The example database lives in build/hypothesis.
"""

import http.client
import json
import os
import secrets
import socket
import time
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.database import DirectoryBasedExampleDatabase

import openapi_check
from conftest import BACKEND, JSON_CT, unique_name

REPO = Path(__file__).resolve().parents[2]

# --- run length ------------------------------------------------------------

# Hypothesis' files (its Unicode tables, the examples it found) go to
# build/, never into the source tree
set_hypothesis_home_dir(str(REPO / "build" / "hypothesis"))
_DB = DirectoryBasedExampleDatabase(str(REPO / "build" / "hypothesis" /
                                        "examples"))
_COMMON = dict(deadline=None, database=_DB, derandomize=False,
               suppress_health_check=[HealthCheck.too_slow,
                                      HealthCheck.data_too_large,
                                      HealthCheck.filter_too_much],
               print_blob=True)
settings.register_profile("ci", **_COMMON)
settings.register_profile(
    "fuzz", **dict(_COMMON, max_examples=int(os.environ.get(
        "FUZZ_API_EXAMPLES", "3000"))))
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")


def budget(n):
    """Settings for a test with n examples under the ci profile (the fuzz
    profile's count otherwise)."""
    parent = settings.get_profile(PROFILE)
    if PROFILE == "ci":
        # a store snapshot costs ~10 ms on SQLite, ~70 ms through CongoDB
        if BACKEND == "mongodb":
            n = max(10, n * 2 // 5)
        return settings(parent, max_examples=n)
    return settings(parent)


# --- raw HTTP ----------------------------------------------------------------

class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "Reply(%d, %r)" % (self.status, self.body[:300])


def send(stack, method, target, headers=(), body=None, chunked=False):
    """One request, bytes as given (method, target, header values, body,
    maybe chunked), on a connection of its own; returns a Reply."""
    s = socket.create_connection(("127.0.0.1", stack.port), timeout=30)
    try:
        head = [b"%s %s HTTP/1.1" % (method, target), b"Host: 127.0.0.1",
                b"Connection: close"]
        head += [k + b": " + v for k, v in headers]
        if body is not None and chunked:
            head.append(b"Transfer-Encoding: chunked")
            body = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7000]),
                                                body[i:i + 7000])
                            for i in range(0, len(body), 7000)) + b"0\r\n\r\n"
        elif body is not None:
            head.append(b"Content-Length: %d" % len(body))
        try:
            s.sendall(b"\r\n".join(head) + b"\r\n\r\n" + (body or b""))
        except OSError:
            pass            # nginx answered (413) before reading it all
        resp = http.client.HTTPResponse(s, method=method.decode())
        resp.begin()
        reply = Reply(resp.status, resp.headers, resp.read())
        # the answer must be one the OpenAPI document describes
        openapi_check.check(method, target, reply.status, reply.body,
                            reply.headers.get("Content-Type"), reply.headers)
        return reply
    finally:
        s.close()


def auth_header(token):
    if token is None:
        return []
    if isinstance(token, str):
        token = token.encode("utf-8", "surrogatepass")
    if token.startswith(b"RAW:"):
        return [(b"Authorization", token[4:])]
    return [(b"Authorization", b"Bearer " + token)]


def call(stack, method, path, token=None, body=None, ctype=b"application/json",
         raw_body=None):
    """A JSON request: body (a Python value) as compact JSON, or raw_body
    bytes as they are."""
    headers = auth_header(token)
    data = raw_body
    if body is not None:
        data = json.dumps(body).encode()
    if data is not None and ctype is not None:
        headers.append((b"Content-Type", ctype))
    if isinstance(path, str):
        path = encode_target(path)
    return send(stack, method.encode(), path, headers, data)


def check_answer(r):
    """Property (a)."""
    assert r.status < 500, r
    if r.status in (204, 304):
        assert r.body == b"", r
        return None
    assert r.headers.get("Content-Type") == JSON_CT, (r, r.headers)
    body = r.json()
    if 400 <= r.status < 500:
        assert isinstance(body, dict), r
        assert isinstance(body.get("error"), str) and body["error"], r
        assert body.get("message") == body["error"], r
    return body


# --- store snapshots ---------------------------------------------------------

def snapshot(stack, skip=()):
    """Every record of every table (collection), as canonical text; those
    named in skip left out."""
    return stack.probe.snapshot(skip)


def assert_same(before, after, r):
    for t in before:
        if before[t] != after[t]:
            gone = set(before[t]) - set(after[t])
            new = set(after[t]) - set(before[t])
            raise AssertionError("refused request %r changed table %s:\n"
                                 "  before: %s\n  after: %s" % (
                                     r, t, sorted(gone)[:3], sorted(new)[:3]))


def refused_changes_nothing(stack, do, skip=()):
    """Run do() -> Reply; check (a), and (b) when it is a 4xx.  Returns
    (reply, parsed body)."""
    before = snapshot(stack, skip)
    r = do()
    body = check_answer(r)
    if 400 <= r.status < 500:
        assert_same(before, snapshot(stack, skip), r)
    return r, body


# --- the world: callers and objects --------------------------------------------

def oid():
    return secrets.token_hex(12)


class World:
    pass


@pytest.fixture(scope="module")
def world(stack):
    w = World()
    w.stack = stack
    now = int(time.time())
    w.admin, w.admin_token = stack.admin, stack.admin_token
    w.user, w.user_token = stack.signup(username=unique_name("pu"))
    w.mod, w.mod_token = stack.make_user("moderator", skills=["linux"],
                                         prefix="pm")
    w.applicant, w.applicant_token = stack.signup(username=unique_name("pa"))
    revoked, w.revoked_token = stack.signup(username=unique_name("pr"))
    r = call(stack, "POST", "/api/auth/logout", w.revoked_token)
    assert r.status == 200, r
    # victims of update-user in the generic test (never the callers above)
    w.victims = [stack.signup(username=unique_name("pv"))[0]
                 for _ in range(2)]

    # a ticket of the user, assigned to the moderator, conversation open
    t = stack.create_ticket(w.user_token, title="Printer on fire",
                            description="Smoke everywhere.")
    w.ticket = t["_id"]
    stack.probe.assign(w.ticket, w.mod["_id"])
    r = call(stack, "POST", "/api/tickets/%s/comments" % w.ticket,
             w.mod_token, {"text": "On my way."})
    assert r.status == 200, r
    # a pending moderator request, and a dead job
    r = call(stack, "POST", "/api/mod-requests", w.applicant_token,
             {"skills": "networking, linux"})
    assert r.status == 201, r
    w.modreq = r.json()["request"]["_id"]
    job = stack.probe.jobs(kind="triage", containing=w.ticket)[0]["_id"]
    assert stack.probe.set_fields("jobs", job, state="dead") == 1
    w.job = job

    claims = dict(_id=w.user["_id"], role="user", iat=now, exp=now + 3600)
    w.tokens = {
        "anonymous": None,
        "user": w.user_token,
        "moderator": w.mod_token,
        "admin": w.admin_token,
        "revoked": w.revoked_token,
        "expired": stack.make_token(dict(claims, iat=now - 7200,
                                         exp=now - 3600)),
        "unknown user": stack.make_token(dict(claims, _id=oid(),
                                              role="admin")),
    }
    w.malformed = [
        "", "x", "a.b.c", "Bearer", "..", "\u00e9\u00e9.\u00e9.\u00e9",
        "RAW:Basic dXNlcjpwYXNz", "RAW:Bearer", "RAW:bearer  ",
        "RAW:" + "x" * 5000,
        stack.make_token(claims, alg="none"),
        stack.make_token(claims, key=b"not the secret"),
        stack.make_token(claims, alg="HS512"),
        stack.make_token(dict(claims, _id="not-an-id")),
        stack.make_token(dict(claims, _id=12345)),
        # (index 15: the explicit example of the bad-token test)
        stack.make_token(dict(claims, _id=w.user["_id"].upper())),
        stack.make_token(dict(claims, exp="tomorrow")),
        stack.make_token({k: v for k, v in claims.items() if k != "exp"}),
        stack.make_token(claims)[:-3],
        stack.make_token(claims) + "x",
        stack.make_token(claims).replace(".", ".\u0660", 1),
    ]
    return w


def fresh_token(w, role):
    """A token of that role that nobody else uses (logout revokes the token
    it is sent with, so the shared ones are never sent to it)."""
    if role in ("user", "moderator", "admin"):
        who = {"user": w.user, "moderator": w.mod, "admin": w.admin}[role]
        now = int(time.time())
        return w.stack.make_token({"_id": who["_id"], "role": role,
                                   "iat": now, "exp": now + 3600,
                                   "jti": secrets.token_hex(12)})
    return w.tokens[role]


# --- strategies ------------------------------------------------------------------

# the characters that matter, on top of Hypothesis' own choice
SPECIAL = ["\u0301", "\u202e", "\u202d", "\u200f", "\u200b", "\u200d",
           "\ufeff", "\u2028", "\u00a0", "\u3000", "\U0001f600",
           "\U0001f1eb\U0001f1f7", "\U00010000", "\U0010ffff", "\uffff",
           "\U000e0001", "\x00", "\ud800", "\udfff", "\x7f", "\x1b",
           "\u0416", "\u4e2d", "\u05d0", "\u0661", "\u0130", "\u00df",
           "\u017f", "\u212a", " ", "\t", "\n", "\r", "\x0b", "\x0c",
           "%", "_", "\\", "\"", "'", "*", ".", "(", "[", "{", "$", "^",
           "?", "+", "|", "/", "&", "=", "#", ","]

# one character of each UTF-8 length, and a combining mark
WIDTHS = ["a", "\u00e9", "\u0416", "\u4e2d", "\U0001f600", "\u0301",
          "\U0010fffd"]
ASCII_WS = " \t\n\r\x0b\x0c"


def any_text(max_size=40, surrogates=True):
    """Text from every plane; with surrogates, lone ones too (sent as
    \\udXXX escapes or as raw CESU bytes)."""
    chars = st.characters(blacklist_categories=() if surrogates else ("Cs",))
    special = st.sampled_from([c for c in SPECIAL if surrogates
                               or not "\ud800" <= c <= "\udfff"])
    return st.one_of(
        st.text(chars, max_size=max_size),
        st.lists(special, max_size=max_size).map("".join),
        st.lists(st.one_of(chars, special),
                 max_size=max_size).map("".join))


def clean_text(max_size=40):
    """Text the API may accept: no surrogates (NUL still possible)."""
    return any_text(max_size, surrogates=False)


def at_limit(limits, clean=True):
    """Text whose length in code points is at or next to one of limits,
    made of one character of some UTF-8 width, maybe padded with ASCII
    whitespace and with a random tail."""
    return st.builds(
        lambda n, ch, pad, tail: (pad + ch * n + tail + pad),
        st.sampled_from([n + d for n in limits for d in (-1, 0, 1)
                         if n + d >= 0]),
        st.sampled_from(WIDTHS),
        st.sampled_from(["", " ", "\n\t", "\x0b\x0c\r"]),
        st.sampled_from(["", "!", "\u00a0", "\U0001f600"]))


def text_field(limits, max_size=40):
    return st.one_of(clean_text(max_size), at_limit(limits))


# JSON values of every type, including awkward numbers
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(2 ** 63 - 2, 2 ** 66),
    st.floats(allow_nan=False, allow_infinity=False), any_text(20))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(any_text(8), inner, max_size=4)),
    max_leaves=10)

# raw bodies that are not a plain JSON object
WEIRD_BODIES = [
    b"", b" ", b"null", b"[]", b"\"x\"", b"42", b"{", b"}", b"{}}",
    b"{\"a\":1,\"a\":2}", b"{\"title\":\"x\",\"title\":\"y\"}",
    b"{\"text\":1e400}", b"{\"text\":18446744073709551616}",
    b"{\"limit\":-0}", b"{\"status\":NaN}", b"{\"status\":Infinity}",
    b"[" * 10000 + b"]" * 10000, b"{\"a\":" * 10000 + b"1" + b"}" * 10000,
    b"{\"text\":\"\\ud800\"}", b"{\"text\":\"\\udfff\\ud800\"}",
    b"{\"text\":\"\\u0000\"}", b"{\"text\":\"a\\u0000b\"}",
    b"{\"text\":\"\xed\xa0\x80\"}", b"{\"text\":\"\xc0\xaf\"}",
    b"{\"text\":\"\xff\xfe\"}", b"{\"text\":\"\xf4\x90\x80\x80\"}",
    b"\xef\xbb\xbf{\"text\":\"bom\"}", b"{\"text\":\"x\"}\x00",
    b"{\"text\":\"x\"} trailing", b"{'text':'single'}",
    b"text=form&status=online", b"\x00\x01\x02",
    b"{\"skills\":" + b"\"s\"," * 0 + b"[" + b",".join([b"\"s\""] * 5000)
    + b"]}",
]

FIELDS = ["title", "description", "text", "status", "action", "skills",
          "username", "email", "password", "identifier", "role", "page",
          "limit"]


@st.composite
def bodies(draw, fields):
    """A body for a route whose fields are `fields`: mostly an object with
    those (and other) keys and values of any type; sometimes raw bytes."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.sampled_from(WEIRD_BODIES))
    if kind == 1:
        return draw(st.binary(max_size=64))
    if kind == 2:
        # past the 100 KB limit (and just under it)
        n = draw(st.sampled_from([100 * 1024 - 20, 100 * 1024 + 1,
                                  300 * 1024, 1536 * 1024]))
        return b"{\"text\":\"" + b"x" * n + b"\"}"
    keys = st.sampled_from(fields + FIELDS) if fields else \
        st.sampled_from(FIELDS)
    obj = draw(st.dictionaries(st.one_of(keys, any_text(6)),
                               st.one_of(json_values, text_field(
                                   [3, 8, 32, 50, 128, 200]),
                                   st.sampled_from(["online", "dnd",
                                                    "Completed", "accept",
                                                    "reject", "moderator",
                                                    "To-Do"])),
                               max_size=5))
    ascii_only = draw(st.booleans())
    text = json.dumps(obj, ensure_ascii=ascii_only)
    return text.encode("utf-8", "surrogatepass")


ROUTES = [
    # method, path pattern, needs a body, the fields it reads
    ("POST", "/api/auth/signup", ["username", "email", "password", "skills"]),
    ("POST", "/api/auth/login", ["identifier", "email", "password"]),
    ("POST", "/api/auth/logout", []),
    ("PATCH", "/api/auth/status", ["status"]),
    ("GET", "/api/auth/users", []),
    ("GET", "/api/users", []),
    ("POST", "/api/auth/update-user", ["email", "role", "skills"]),
    ("GET", "/api/health", []),
    ("POST", "/api/auth/password", ["currentPassword", "newPassword"]),
    ("POST", "/api/auth/password-reset", ["email"]),
    ("POST", "/api/auth/password-reset/confirm", ["token", "password"]),
    ("POST", "/api/tickets", ["title", "description"]),
    ("GET", "/api/tickets", []),
    ("GET", "/api/tickets/{ticket}", []),
    ("PATCH", "/api/tickets/{ticket}/status", ["status"]),
    ("POST", "/api/tickets/{ticket}/comments", ["text"]),
    ("GET", "/api/tickets/{ticket}/comments", []),
    ("PATCH", "/api/tickets/{ticket}/assignee", ["assignedTo"]),
    ("POST", "/api/mod-requests", ["skills"]),
    ("GET", "/api/mod-requests/me", []),
    ("GET", "/api/mod-requests", []),
    ("POST", "/api/mod-requests/{modreq}/decide", ["action"]),
    ("PATCH", "/api/mod-requests/{modreq}", ["action"]),
    ("GET", "/api/analytics", []),
    ("GET", "/api/jobs", []),
    ("POST", "/api/jobs/{job}/retry", []),
]

# (not %00: nginx itself refuses it in a path, with its own HTML page)
BAD_IDS = ["0", "x" * 24, "0" * 23, "0" * 25, "0" * 24, "f" * 24,
           "F" * 24, "\u0660" * 24, "\uff10" * 24, "%30" * 24, "%01",
           "%2e%2e", "..", "%ff" * 24, "%c0%af", "a%2fb", "x" * 200,
           "%e2%80%ae" + "0" * 21, "0x" + "0" * 22, "-1", " " * 24]

QUERY_KEYS = ["page", "limit", "status", "priority", "search", "state",
              "pa%67e", "page[]", "", "search%00"]
QUERY_VALUES = ["1", "0", "-1", "2", "100", "101", "500", "501",
                "1000000000", "1000000001", "00000000001", "0000000001",
                "9999999999", "99999999999", "18446744073709551617",
                "1e3", "0x10", " 1", "1 ", "+1", "%31", "\u0661",
                "To-Do", "To%2DDo", "In+Progress", "In%20Progress",
                "Completed", "completed", "Low", "High", "low", "dead",
                "pending", "%", "%2", "%zz", "%00", "%ff", "%c3", "%c3%a9",
                "%ed%a0%80", "%f0%9f%98%80", "x" * 201, "%41" * 201,
                "\u00e9" * 200, "\u00e9" * 201, "_", "%25", "%5c", ".*",
                "(", "[", "a&b", "=", "=="]


@st.composite
def query_strings(draw):
    parts = draw(st.lists(st.tuples(
        st.sampled_from(QUERY_KEYS),
        st.one_of(st.sampled_from(QUERY_VALUES), any_text(12),
                  st.binary(max_size=8)),
        st.booleans()), max_size=4))
    out = []
    for k, v, raw in parts:
        if isinstance(v, bytes):
            v = urllib.parse.quote_from_bytes(v)
        elif not raw:
            v = urllib.parse.quote(v.encode("utf-8", "surrogatepass"),
                                   safe="%+=&")
        out.append("%s=%s" % (k, v))
    return "&".join(out)


def encode_target(path):
    """The request target as bytes: non-ASCII sent raw (nginx takes it),
    what nginx's request line cannot hold percent-encoded."""
    b = path.encode("utf-8", "surrogatepass")
    return b"".join(bytes([c]) if 0x21 <= c <= 0x7e or c >= 0x80
                    else b"%%%02X" % c for c in b)


ROLES = ["anonymous", "user", "moderator", "admin", "revoked", "expired",
         "unknown user", "malformed"]
CTYPES = [b"application/json", b"application/json; charset=utf-8",
          b"text/plain", b"application/x-www-form-urlencoded",
          b"multipart/form-data; boundary=x", b"application/json; charset=latin1",
          b"", None, b"\xff\xfe"]


# --- (a) and (b) over every route ------------------------------------------------

@st.composite
def requests_(draw):
    method, pattern, fields = draw(st.sampled_from(ROUTES))
    if draw(st.integers(0, 9)) == 0:
        method = draw(st.sampled_from(["GET", "POST", "PATCH", "PUT",
                                       "DELETE", "OPTIONS"]))
    ids = {}
    for name in ("ticket", "modreq", "job"):
        ids[name] = draw(st.one_of(st.just(None), st.sampled_from(BAD_IDS)))
    path = pattern
    query = ""
    if pattern in ("/api/tickets", "/api/jobs") or draw(st.integers(0, 5)) \
            == 0:
        query = draw(query_strings())
    role = draw(st.sampled_from(ROLES))
    malformed = draw(st.integers(0, 100))
    body = draw(bodies(fields)) if method != "GET" or \
        draw(st.integers(0, 5)) == 0 else None
    ctype = draw(st.sampled_from(CTYPES))
    slash = draw(st.sampled_from(["", "", "", "/", "//"]))
    chunked = draw(st.integers(0, 3)) == 0
    return dict(method=method, pattern=path, ids=ids, query=query,
                role=role, malformed=malformed, body=body, ctype=ctype,
                slash=slash, chunked=chunked)


def run_request(w, req):
    path = req["pattern"]
    for name, real in (("ticket", w.ticket), ("modreq", w.modreq),
                       ("job", w.job)):
        path = path.replace("{%s}" % name, req["ids"][name] or real)
    path += req["slash"]
    target = encode_target(path)
    if req["query"]:
        target += b"?" + encode_target(req["query"])
    role = req["role"]
    if role == "malformed":
        token = w.malformed[req["malformed"] % len(w.malformed)]
    elif req["pattern"] == "/api/auth/logout":
        token = fresh_token(w, role)
    else:
        token = w.tokens[role]
    headers = auth_header(token)
    if req["ctype"] is not None and req["body"] is not None:
        headers.append((b"Content-Type", req["ctype"]))
    note("request: %s %r %r body=%r" % (req["method"], target, headers,
                                        (req["body"] or b"")[:200]))
    return send(w.stack, req["method"].encode(), target, headers,
                req["body"], req.get("chunked", False))


def skip_for(req):
    """Tables a refused request may still touch: a failed login, and a
    wrong current password, count towards the account's lockout."""
    return ("login_attempts",) if req["pattern"] in (
        "/api/auth/login", "/api/auth/password") else ()


@budget(600)
@given(req=requests_())
@example(req=dict(method="POST", pattern="/api/tickets/{ticket}/comments",
                  ids=dict(ticket=None, modreq=None, job=None), query="",
                  role="admin", malformed=0, ctype=b"application/json",
                  slash="", body=json.dumps({"text": "\u0416" * 201})
                  .encode()))
@example(req=dict(method="POST", pattern="/api/tickets", query="",
                  ids=dict(ticket=None, modreq=None, job=None),
                  role="user", malformed=0, ctype=b"application/json",
                  slash="", body=b"[" * 10000 + b"]" * 10000))
def test_any_request_gets_json_and_a_refusal_changes_nothing(world, req):
    refused_changes_nothing(world.stack, lambda: run_request(world, req),
                            skip_for(req))


@budget(60)
@given(route=st.sampled_from([r for r in ROUTES
                              if r[1] not in ("/api/auth/signup",
                                              "/api/auth/login",
                                              "/api/auth/password-reset",
                                              "/api/auth/password-reset/"
                                              "confirm",
                                              "/api/health")]),
       which=st.integers(0, 1000),
       token=st.one_of(any_text(60), st.binary(max_size=60)))
@example(route=ROUTES[3], which=15, token="")    # "_id" in upper case
def test_a_bad_token_is_401_on_every_route_and_changes_nothing(
        world, route, which, token):
    """Malformed, revoked, expired and unknown-user tokens: 401 "Invalid
    token" (or "No token found" when there is no token at all), wherever
    they are sent, before anything else is looked at."""
    method, pattern, fields = route
    path = pattern.format(ticket=world.ticket, modreq=world.modreq,
                          job=world.job)
    bad = (world.malformed + [world.tokens["revoked"],
                              world.tokens["expired"],
                              world.tokens["unknown user"]])
    if which % 4 == 0:
        # arbitrary text or bytes (printable ones: a header cannot hold
        # control characters)
        if isinstance(token, str):
            token = token.encode("utf-8", "surrogatepass")
        token = bytes(c for c in token if c >= 0x21 and c != 0x7f)
        if not token or token.startswith(b"RAW:"):
            token = b"x"
        tok = token
    else:
        tok = bad[which % len(bad)]
    r, body = refused_changes_nothing(
        world.stack,
        lambda: call(world.stack, method, path, tok,
                     {"status": "online", "text": "hi", "title": "t",
                      "description": "d", "skills": "a", "action": "reject",
                      "email": world.victims[0]["email"]}))
    assert r.status == 401, r
    assert body["error"] in ("Invalid token",
                             "Access Denied. No token found."), body


def test_an_id_in_upper_case_names_nothing(world):
    """Ids are lower-case hex, as both backends store them.  Found by the
    properties on MongoDB, where the driver read an upper-case id (and a
    token's upper-case "_id") as the same ObjectId: SQLite said 404."""
    st_ = world.stack
    assert world.ticket.upper() != world.ticket
    for method, path, body in [
            ("GET", "/api/tickets/%s" % world.ticket.upper(), None),
            ("GET", "/api/tickets/%s/comments" % world.ticket.upper(), None),
            ("PATCH", "/api/tickets/%s/status" % world.ticket.upper(),
             {"status": "Completed"}),
            ("POST", "/api/tickets/%s/comments" % world.ticket.upper(),
             {"text": "hello"}),
            ("POST", "/api/mod-requests/%s/decide" % world.modreq.upper(),
             {"action": "reject"}),
            ("POST", "/api/jobs/%s/retry" % world.job.upper(), None)]:
        r, body = refused_changes_nothing(
            st_, lambda: call(st_, method, path, world.admin_token, body))
        assert r.status == 404, (method, path, r)


# --- (c) round trips, with an oracle of the rules ----------------------------------

def fits_jansson(v):
    """jansson parses it: every integer within int64."""
    if isinstance(v, bool) or v is None:
        return True
    if isinstance(v, str):
        try:
            v.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            return False        # a lone surrogate
        return "\x00" not in v
    if isinstance(v, int):
        return -2 ** 63 <= v < 2 ** 63
    if isinstance(v, list):
        return all(fits_jansson(x) for x in v)
    if isinstance(v, dict):
        return all(fits_jansson(k) and fits_jansson(x)
                   for k, x in v.items())
    return True


def trim(s):
    return s.strip(ASCII_WS)


def sendable(s):
    """Text that survives JSON: no lone surrogates, no NUL."""
    return "\x00" not in s and not any(0xd800 <= ord(c) <= 0xdfff for c in s)


MAX_BODY = 100 * 1024


def expect(ok, raw, good):
    """The status a body should get: 413 past the limit, else good or 400."""
    return 413 if len(raw) > MAX_BODY else good if ok else 400


def length_ok(s, lo, hi, do_trim=True):
    if not sendable(s):
        return False
    if do_trim:
        s = trim(s)
    return lo <= len(s) <= hi


@budget(80)
@given(title=text_field([200]), description=text_field([10000], 60),
       ascii_only=st.booleans(), data=st.data())
@example(title=" \U0001f600" * 1, description="\u0416" * 10000,
         ascii_only=False, data=None)
@example(title="\u0301" * 200, description="x\x00y", ascii_only=True,
         data=None)
def test_ticket_create_round_trips_title_and_description(
        world, title, description, ascii_only, data):
    st_ = world.stack
    ok = length_ok(title, 1, 200) and length_ok(description, 1, 10000)
    raw = json.dumps({"title": title, "description": description},
                     ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    r, body = refused_changes_nothing(
        st_, lambda: call(st_, "POST", "/api/tickets", world.user_token,
                          raw_body=raw))
    assert r.status == expect(ok, raw, 201), (ok, r)
    if r.status != 201:
        return
    t = body["ticket"]
    assert t["title"] == trim(title) and \
        t["description"] == trim(description), t
    got = call(st_, "GET", "/api/tickets/%s" % t["_id"], world.user_token)
    assert got.status == 200, got
    g = got.json()["ticket"]
    assert g["title"].encode() == trim(title).encode()
    assert g["description"].encode() == trim(description).encode()

    # a literal piece of the title finds the ticket in the list
    if data is not None:
        tt = trim(title)
        i = data.draw(st.integers(0, len(tt) - 1))
        j = data.draw(st.integers(i + 1, len(tt)))
        piece = tt[i:j]
        if not trim(piece) == piece or "\x00" in piece:
            return
        q = urllib.parse.quote(piece.encode(), safe="")
        lst = call(st_, "GET", "/api/tickets?limit=100&search=%s" % q,
                   world.user_token)
        assert lst.status == 200, lst
        ids = [x["_id"] for x in lst.json()["tickets"]]
        assert t["_id"] in ids, (piece, lst.json()["pagination"])


@budget(60)
@given(text=text_field([5000], 60), ascii_only=st.booleans())
@example(text="\u0416" * 201, ascii_only=False)
@example(text="\U0001f600" * 5000, ascii_only=False)
@example(text="\u4e2d" * 199 + "\U0001f600\u0301", ascii_only=True)
def test_comment_round_trips_text(world, text, ascii_only):
    st_ = world.stack
    path = "/api/tickets/%s/comments" % world.ticket
    ok = length_ok(text, 1, 5000)
    raw = json.dumps({"text": text}, ensure_ascii=ascii_only).encode(
        "utf-8", "surrogatepass")
    # the creator replies: the notification job goes to the moderator
    r, body = refused_changes_nothing(
        st_, lambda: call(st_, "POST", path, world.user_token, raw_body=raw))
    assert r.status == expect(ok, raw, 200), (ok, r)
    if r.status != 200:
        return
    assert body["comments"][-1]["text"] == trim(text)
    got = call(st_, "GET", path, world.user_token)
    assert got.status == 200, got
    last = got.json()["comments"][-1]
    assert last["text"].encode() == trim(text).encode()
    assert last["author"]["_id"] == world.user["_id"]


def simple_lower(c):
    """Unicode's simple lower-case mapping of one character (one character
    for one, as towlower gives it): Python's str.lower() is the full
    mapping, which differs only where it yields more than one character --
    U+0130 alone among the unconditional ones."""
    low = c.lower()
    if len(low) == 1:
        return low
    return "i" if c == "\u0130" else c


def skills_oracle(v):
    """The documented normalisation of a skills value: the list, or None
    when it is invalid."""
    if isinstance(v, str):
        items = v.split(",")
    elif isinstance(v, list):
        if len(v) > 200 or not all(isinstance(x, str) for x in v):
            return None
        items = v
    else:
        return None
    out = []
    for s in items:
        s = trim(s)
        if not s:
            continue
        if not sendable(s) or len(s) > 50:
            return None
        low = "".join(simple_lower(c) for c in s)
        if low in out:
            continue
        if len(out) >= 50:
            return None
        out.append(low)
    return out


skills_values = st.one_of(
    st.lists(text_field([50], 12), max_size=6),
    st.lists(st.sampled_from(["Linux", "linux", " LINUX ", "C", "c#",
                              "\u00c9cole", "\u00e9cole", "", " ", "Go",
                              "x" * 50, "x" * 51, "\u0416" * 50]),
             max_size=60),
    text_field([50], 40).map(lambda s: s + ", " + s.upper()),
    st.sampled_from([",,,", "a,b,,c", "a" * 51, "A,a", None, 1, [1],
                     {"a": 1}, True]))


@budget(40)
@given(skills=skills_values, ascii_only=st.booleans())
def test_mod_request_round_trips_skills(world, skills, ascii_only):
    st_ = world.stack
    _, token = st_.signup(username=unique_name("pq"))
    expected = skills_oracle(skills)
    ok = bool(expected)
    raw = json.dumps({"skills": skills}, ensure_ascii=ascii_only).encode(
        "utf-8", "surrogatepass")
    r, body = refused_changes_nothing(
        st_, lambda: call(st_, "POST", "/api/mod-requests", token,
                          raw_body=raw))
    assert r.status == expect(ok, raw, 201), (expected, r)
    if not ok:
        return
    assert body["request"]["skills"] == expected
    me = call(st_, "GET", "/api/mod-requests/me", token)
    assert me.status == 200, me
    assert me.json()["request"]["skills"] == expected


USERNAME_CHARS = st.sampled_from(list("aZ09_.-") + ["\u0661", "\u00e9",
                                                    " ", "@", "\u0130",
                                                    "\U0001f600", "\x00"])


@budget(40)
@given(username=st.one_of(st.text(USERNAME_CHARS, min_size=1, max_size=34),
                          at_limit([3, 32])),
       local=st.one_of(st.text(USERNAME_CHARS, min_size=1, max_size=8),
                       st.just("Jo.Doe")),
       password=text_field([8, 128]),
       skills=skills_values)
@example(username="abc", local="Jo.Doe", password="\U0001f600" * 128,
         skills=[])
# CI found it: a username of one space plus the suffix is trimmed, then valid
@example(username=" ", local="Jo.Doe", password="\u0301" * 8, skills=[])
def test_signup_round_trips_username_email_and_skills(world, username, local,
                                                      password, skills):
    st_ = world.stack
    tag = secrets.token_hex(3)
    # unique whatever Hypothesis draws again: a suffix inside the limits
    username = username + tag if 0 < len(username) <= 26 else username
    email = "%s.%s@Example.COM" % (local, tag)
    # the username is trimmed like every text field, then checked
    uname = trim(username)
    u_ok = (3 <= len(uname) <= 32
            and all(c.isascii() and (c.isalnum() or c in "_.-")
                    for c in uname))
    e_ok = (sendable(email) and len(trim(email)) <= 254
            and all(0x20 < ord(c) < 0x7f and c not in "()<>,;:\\\"[]"
                    for c in trim(email))
            and len(trim(email).split("@")[0]) <= 64
            and ".." not in trim(email).split("@")[1])
    expected_skills = skills_oracle(skills) if skills is not None else []
    ok = (u_ok and e_ok and length_ok(password, 8, 128, do_trim=False)
          and expected_skills is not None)
    body = {"username": username, "email": email, "password": password,
            "role": "admin"}
    if skills is not None:
        body["skills"] = skills
    raw = json.dumps(body).encode()
    r, out = refused_changes_nothing(
        st_, lambda: call(st_, "POST", "/api/auth/signup", raw_body=raw))
    assert r.status == (200 if ok else 400), (u_ok, e_ok, r)
    if not ok:
        return
    u = out["user"]
    assert (u["username"], u["email"], u["skills"], u["role"]) == \
        (uname, trim(email).lower(), expected_skills, "user"), u
    users = call(st_, "GET", "/api/users", world.admin_token).json()
    mine = [x for x in users if x["_id"] == u["_id"]]
    assert len(mine) == 1 and "password" not in mine[0]
    assert (mine[0]["username"], mine[0]["email"], mine[0]["skills"]) == \
        (uname, trim(email).lower(), expected_skills)
    # and the password logs in, byte for byte
    r = call(st_, "POST", "/api/auth/login",
             body={"identifier": uname.upper(), "password": password})
    assert r.status == 200, r


@budget(40)
@given(role=st.one_of(st.sampled_from(["user", "moderator", "admin",
                                       " moderator ", "Admin", "root",
                                       "", "admin\x00"]), any_text(10),
                      json_values),
       skills=st.one_of(st.none(), skills_values), victim=st.integers(0, 1))
# skills are lower-cased beyond ASCII (the model once folded ASCII only)
@example(role="user", skills="\u00c0, \u00c0", victim=0)
@example(role="moderator", skills=["\u0130stanbul", "\u00c9cole"], victim=1)
def test_update_user_round_trips_role_and_skills(world, role, skills, victim):
    st_ = world.stack
    who = world.victims[victim]
    body = {"email": who["email"].upper()}
    if role is not None:
        body["role"] = role
    if skills is not None:
        body["skills"] = skills
    role_ok = role is None or (isinstance(role, str) and sendable(role)
                               and trim(role) in ("user", "moderator",
                                                  "admin"))
    expected_skills = skills_oracle(skills) if skills is not None else None
    ok = role_ok and (skills is None or expected_skills is not None)
    before = [x for x in call(st_, "GET", "/api/users",
                              world.admin_token).json()
              if x["_id"] == who["_id"]][0]
    r, _ = refused_changes_nothing(
        st_, lambda: call(st_, "POST", "/api/auth/update-user",
                          world.admin_token, body))
    assert r.status == (200 if ok else 400), (role_ok, expected_skills, r)
    if not ok:
        return
    after = [x for x in call(st_, "GET", "/api/users",
                             world.admin_token).json()
             if x["_id"] == who["_id"]][0]
    assert after["role"] == (trim(role) if role is not None
                             else before["role"])
    assert after["skills"] == (expected_skills if skills is not None
                               else before["skills"])


def pct_decode(v):
    """ts_query_get's decoding: '+' is a space, %XX a byte; None when
    malformed or holding NUL."""
    out = bytearray()
    i = 0
    while i < len(v):
        c = v[i]
        if c == "+":
            out += b" "
        elif c == "%":
            h = v[i + 1:i + 3]
            if len(h) < 2 or any(x not in "0123456789abcdefABCDEF"
                                 for x in h):
                return None
            out.append(int(h, 16))
            i += 2
        else:
            out += c.encode("utf-8", "surrogatepass")
        i += 1
    return None if 0 in out else bytes(out)


@st.composite
def list_queries(draw):
    """A query of GET /api/tickets, and what the API should make of it:
    (query text, {name: decoded bytes} of the first of each, ok)."""
    names = ["page", "limit", "status", "priority", "search"]
    parts = draw(st.lists(st.tuples(
        st.sampled_from(names),
        st.one_of(st.sampled_from(QUERY_VALUES), st.integers(-2, 10 ** 11)
                  .map(str), any_text(8, surrogates=False)
                  .map(lambda s: urllib.parse.quote(s.encode(), safe=""))),
    ), max_size=4))
    return "&".join("%s=%s" % kv for kv in parts), parts


def list_oracle(parts):
    seen = {}
    for k, v in parts:
        seen.setdefault(k, v)
    vals = {}
    for k, v in seen.items():
        d = pct_decode(v)
        if d is None:
            return None
        vals[k] = d

    def intval(b, lo, hi):
        if not b or len(b) > 10 or not b.isdigit() or not b.isascii():
            return None
        n = int(b)
        return n if lo <= n <= hi else None
    page = intval(vals["page"], 1, 10 ** 9) if "page" in vals else 1
    limit = intval(vals["limit"], 1, 100) if "limit" in vals else 10
    if page is None or limit is None:
        return None
    if "status" in vals and vals["status"] not in (b"To-Do", b"In Progress",
                                                   b"Completed"):
        return None
    if "priority" in vals and vals["priority"] not in (b"Low", b"Medium",
                                                       b"High"):
        return None
    if "search" in vals:
        try:
            s = vals["search"].decode("utf-8")
        except UnicodeDecodeError:
            return None
        if len(s) > 200 or len(vals["search"]) > 1023:
            return None
    return page, limit


@budget(60)
@given(q=list_queries(), role=st.sampled_from(["user", "moderator",
                                                "admin"]))
@example(q=("search=%ed%a0%80", [("search", "%ed%a0%80")]), role="admin")
@example(q=("page=99999999999", [("page", "99999999999")]), role="user")
def test_ticket_list_query_is_checked_and_echoed(world, q, role):
    text, parts = q
    r = call(world.stack, "GET", "/api/tickets?" + text, world.tokens[role])
    body = check_answer(r)
    expected = list_oracle(parts)
    assert r.status == (200 if expected else 400), (expected, r)
    if expected:
        page, limit = expected
        p = body["pagination"]
        assert (p["page"], p["limit"]) == (page, limit), p
        assert len(body["tickets"]) <= limit


@budget(30)
@given(status=st.one_of(st.sampled_from(["To-Do", "In Progress",
                                         "Completed", " Completed\n",
                                         "completed", "In  Progress",
                                         "Done"]), any_text(12),
                        json_values),
       who=st.sampled_from(["admin", "moderator", "user"]))
def test_ticket_status_round_trips(world, status, who):
    st_ = world.stack
    path = "/api/tickets/%s/status" % world.ticket
    valid = isinstance(status, str) and sendable(status) and \
        trim(status) in ("To-Do", "In Progress", "Completed")
    r, body = refused_changes_nothing(
        st_, lambda: call(st_, "PATCH", path, world.tokens[who],
                          {"status": status}))
    if who == "user":
        assert r.status == (403 if fits_jansson(status) else 400), r
        return
    assert r.status == (200 if valid else 400), r
    if valid:
        got = call(st_, "GET", "/api/tickets/%s" % world.ticket,
                   world.tokens[who]).json()["ticket"]
        assert got["status"] == trim(status)


@budget(30)
@given(status=st.one_of(st.sampled_from(["online", "offline", "dnd",
                                         " dnd ", "DND", "away"]),
                        any_text(12), json_values))
def test_presence_round_trips(world, status):
    st_ = world.stack
    valid = isinstance(status, str) and sendable(status) and \
        trim(status) in ("online", "offline", "dnd")
    _, token = world.victims[0], fresh_token(world, "moderator")
    r, body = refused_changes_nothing(
        st_, lambda: call(st_, "PATCH", "/api/auth/status", token,
                          {"status": status}))
    assert r.status == (200 if valid else 400), r
    if valid:
        assert body["status"] == trim(status)
        users = call(st_, "GET", "/api/users", world.admin_token).json()
        assert [x["status"] for x in users
                if x["_id"] == world.mod["_id"]] == [trim(status)]


def jobs_oracle(parts):
    """What GET /api/jobs makes of its query: (state or None, limit), or
    None for a 400."""
    seen = {}
    for k, v in parts:
        seen.setdefault(k, v)
    vals = {}
    for k, v in seen.items():
        d = pct_decode(v)
        if d is None:
            return None
        vals[k] = d
    state = vals.get("state", b"") or None
    if state is not None and state not in (b"pending", b"running", b"done",
                                           b"dead"):
        return None
    limit = 100
    if "limit" in vals:
        b = vals["limit"]
        if not b or len(b) > 10 or not b.isdigit() or not b.isascii() \
                or not 1 <= int(b) <= 500:
            return None
        limit = int(b)
    return state, limit


@budget(40)
@given(parts=st.lists(st.tuples(
    st.sampled_from(["state", "limit"]),
    st.one_of(st.sampled_from(QUERY_VALUES), st.integers(-2, 600).map(str),
              st.sampled_from(["pending", "dead", "done", "running", "Dead",
                               "%2B5", "+5", "%205", "5%20", "0x1f", "5e1",
                               "%09%0a7", "-0", "0500"]))), max_size=3))
@example(parts=[("limit", "%2B5")])
@example(parts=[("limit", "+5")])
@example(parts=[("state", " 1")])       # a blank in the request line
def test_job_list_query_is_checked_like_the_ticket_list(world, parts):
    """The same strict integers as GET /api/tickets: digits only (no sign,
    no blanks, no '+' that decodes to a blank)."""
    text = "&".join("%s=%s" % kv for kv in parts)
    r = call(world.stack, "GET", "/api/jobs?" + text, world.admin_token)
    body = check_answer(r)
    expected = jobs_oracle(parts)
    assert r.status == (200 if expected else 400), (expected, r)
    if expected:
        state, limit = expected
        assert len(body["jobs"]) <= limit
        assert all(state is None or j["state"] == state.decode()
                   for j in body["jobs"]), body


@budget(25)
@given(action=st.one_of(st.sampled_from(["accept", "reject", " accept\t",
                                         "Accept", "ACCEPT", "approve", "",
                                         "accept\x00"]), any_text(10),
                        json_values),
       alias=st.booleans(),
       skills=st.sampled_from(["Linux, networking", "\u00c9cole,c#",
                               "go"]))
def test_mod_request_decision_round_trips(world, action, alias, skills):
    st_ = world.stack
    applicant, token = st_.signup(username=unique_name("pd"),
                                  skills=["Linux"])
    r = call(st_, "POST", "/api/mod-requests", token, {"skills": skills})
    assert r.status == 201, r
    req_id = r.json()["request"]["_id"]
    valid = isinstance(action, str) and sendable(action) and \
        trim(action) in ("accept", "reject")
    method, path = (("PATCH", "/api/mod-requests/%s" % req_id) if alias
                    else ("POST", "/api/mod-requests/%s/decide" % req_id))
    r, body = refused_changes_nothing(
        st_, lambda: call(st_, method, path, world.admin_token,
                          {"action": action}))
    assert r.status == (200 if valid else 400), r
    if not valid:
        return
    accept = trim(action) == "accept"
    assert body["request"]["status"] == ("accepted" if accept
                                         else "rejected")
    me = call(st_, "GET", "/api/mod-requests/me", token).json()
    assert me["request"]["status"] == body["request"]["status"]
    users = call(st_, "GET", "/api/users", world.admin_token).json()
    u = [x for x in users if x["_id"] == applicant["_id"]][0]
    if accept:
        merged = ["linux"] + [s for s in skills_oracle(skills)
                              if s != "linux"]
        assert (u["role"], u["skills"]) == ("moderator", merged), u
    else:
        assert (u["role"], u["skills"]) == ("user", ["linux"]), u
    # a second decision is refused and changes nothing
    r, _ = refused_changes_nothing(
        st_, lambda: call(st_, method, path, world.admin_token,
                          {"action": "accept"}))
    assert r.status == 400, r

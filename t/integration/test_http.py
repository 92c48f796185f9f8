"""HTTP surface of the module: routing, error bodies, body size limits,
rate limiting, CORS and the $ticket_* variables."""

import json
import re
import socket
import time

import pytest

from conftest import (BACKEND, DEFAULT_PASSWORD, JSON_CT, assert_error, exchange, poll,
                      unique_name)

ORIGIN = "https://app.example"


# --- routing --------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/nope", "/api/auth", "/api/auth/nope",
                                  "/api/", "/api/health/extra",
                                  "/api/users/123/x"])
def test_unknown_api_route_is_404_json(stack, path):
    assert_error(stack.get(path), 404, "Route not found")


@pytest.mark.parametrize("method,path,allowed", [
    ("DELETE", "/api/auth/login", "POST"),
    ("GET", "/api/auth/signup", "POST"),
    ("PUT", "/api/auth/status", "PATCH"),
    ("POST", "/api/health", "GET"),
    ("DELETE", "/api/users", "GET"),
])
def test_wrong_method_is_405_with_allow(stack, method, path, allowed):
    r = stack.request(method, path, json={})
    assert_error(r, 405)
    allow = [m.strip() for m in r.headers["Allow"].split(",")]
    assert allowed in allow, r.headers["Allow"]


def test_error_bodies_are_json_with_same_error_and_message(stack):
    for r in (stack.get("/api/nope"),
              stack.post("/api/auth/login", json={}),
              stack.get("/api/users")):
        body = assert_error(r, r.status_code)
        assert set(body) == {"error", "message"}, body


def test_health_answers_without_auth(stack):
    r = stack.get("/api/health")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == JSON_CT
    body = r.json()
    assert body["status"] == "ok"
    assert body["store"] == "ok"
    assert body["backend"] == BACKEND
    assert body["daemon"] in ("connected", "disconnected")
    assert body["redis"] == "disabled"


def test_trailing_slash_is_the_same_route(stack):
    r = stack.get("/api/health/")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok"
    _, token = stack.signup()
    r = stack.patch("/api/auth/status/", token=token,
                    json={"status": "dnd"})
    assert r.status_code == 200, r.text


def test_query_string_does_not_change_the_route(stack):
    r = stack.get("/api/health?x=1&y=%2F")
    assert r.status_code == 200, r.text


def test_head_health_is_200_without_body(stack):
    r = stack.request("HEAD", "/api/health")
    assert r.status_code == 200
    assert r.content == b""
    # a raw check: nothing follows the header block
    with socket.create_connection(("127.0.0.1", stack.port), 5) as s:
        s.sendall(b"HEAD /api/health HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert rest == b"", rest


def test_non_api_location_is_untouched(stack):
    r = stack.get("/")
    assert r.status_code == 200
    assert "RateLimit-Limit" not in r.headers
    assert "/api/health" in r.text


# --- body size ------------------------------------------------------------

def test_body_over_100kb_is_413_json(stack):
    before = stack.probe.count("users")
    name = unique_name()
    body = json.dumps({"username": name, "email": "%s@example.com" % name,
                       "password": DEFAULT_PASSWORD,
                       "pad": "x" * (200 * 1024)})
    r = stack.post("/api/auth/signup", data=body,
                   headers={"Content-Type": "application/json"})
    assert_error(r, 413, "Request body too large")
    assert stack.probe.count("users") == before


def test_body_over_client_max_body_size_is_413_json_too(stack):
    # 2 MB is past nginx's own client_max_body_size (1m): nginx refuses it
    # before the module runs, and the error_page keeps the answer JSON
    before = stack.probe.count("users")
    r = stack.post("/api/auth/signup", data=b"x" * (2 * 1024 * 1024),
                   headers={"Content-Type": "application/json"})
    assert_error(r, 413, "Request body too large")
    assert stack.probe.count("users") == before


def raw_request(port, data):
    """Send data as it is; the status line and the body of the answer."""
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(data)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], head, body


@pytest.mark.parametrize("request_bytes", [
    b"GET /api/tickets/%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /api/../../etc/passwd HTTP/1.1\r\nHost: x\r\n"
    b"Connection: close\r\n\r\n",
    b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000
    + b"\r\nConnection: close\r\n\r\n",
    b"BREW\x01 /api/health HTTP/1.1\r\nHost: x\r\n\r\n",
], ids=["escaped-nul", "above-root", "header-too-large", "bad-method"])
def test_requests_nginx_refuses_itself_answer_json(stack, request_bytes):
    """What nginx refuses before any location runs (a NUL escaped in the
    path, a path above the root, headers past the buffers, a malformed
    request line) still answers a JSON error, through the server's
    error_page, never nginx's HTML page."""
    status, head, body = raw_request(stack.port, request_bytes)
    assert status.startswith(b"HTTP/1.1 400"), (status, body[:200])
    assert b"application/json" in head, head
    assert json.loads(body) == {"error": "Bad request",
                                "message": "Bad request"}


def test_chunked_body_over_100kb_is_413_json(stack):
    before = stack.probe.count("users")

    def chunks():
        yield b'{"pad":"'
        for _ in range(150):
            yield b"x" * 1024
        yield b'"}'

    r = stack.post("/api/auth/signup", data=chunks(),
                   headers={"Content-Type": "application/json"})
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert_error(r, 413, "Request body too large")
    assert stack.probe.count("users") == before


def test_chunked_small_body_is_parsed(stack):
    name = unique_name()
    raw = json.dumps({"username": name, "email": "%s@example.com" % name,
                      "password": DEFAULT_PASSWORD}).encode()

    def chunks():
        for i in range(0, len(raw), 7):
            yield raw[i:i + 7]

    r = stack.post("/api/auth/signup", data=chunks(),
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["username"] == name


def test_body_of_90kb_is_accepted(stack):
    name = unique_name()
    body = json.dumps({"username": name, "email": "%s@example.com" % name,
                       "password": DEFAULT_PASSWORD,
                       "ignored": "y" * (90 * 1024)})
    r = stack.post("/api/auth/signup", data=body,
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text[:300]
    assert r.json()["user"]["username"] == name


# --- rate limit -----------------------------------------------------------

RATE_HEADERS = ("RateLimit-Policy", "RateLimit-Limit", "RateLimit-Remaining",
                "RateLimit-Reset")


def test_every_api_response_has_rate_limit_headers(stack):
    _, token = stack.signup()
    responses = [
        stack.get("/api/health"),
        stack.get("/api/nope"),
        stack.request("DELETE", "/api/auth/login"),
        stack.get("/api/users"),
        stack.get("/api/users", token=token),
        stack.post("/api/auth/login", json={"identifier": "x"}),
        stack.post("/api/auth/login", data=b"{bad"),
    ]
    for r in responses:
        for h in RATE_HEADERS:
            assert h in r.headers, (r.status_code, r.url, dict(r.headers))
        assert re.fullmatch(r"100000;w=900", r.headers["RateLimit-Policy"]), \
            r.headers["RateLimit-Policy"]
        assert r.headers["RateLimit-Limit"] == "100000"
        assert 0 <= int(r.headers["RateLimit-Remaining"]) < 100000
        assert 0 <= int(r.headers["RateLimit-Reset"]) <= 900


def assert_too_many(status, headers, body):
    assert status == 429, (status, body)
    assert headers.get("Content-Type") == JSON_CT
    data = json.loads(body)
    assert data["error"] == "Too many requests, please try again later."
    assert data["message"] == data["error"]
    retry = int(headers["Retry-After"])
    assert 0 < retry <= 900
    assert headers["RateLimit-Remaining"] == "0"


def test_rate_limit_counts_across_workers_and_survives_reload(make_stack):
    st = make_stack(RATE_LIMIT="5", CORS_ORIGINS=ORIGIN)
    # a client address of its own, untouched by the harness's health checks
    client = "127.0.0.3"
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    for _ in range(3):      # preflights are free
        status, headers, _ = st.request_from(client, "OPTIONS",
                                             "/api/auth/login", preflight)
        assert status == 204

    # one keep-alive connection to each worker; the requests alternate
    conns = st.per_worker(source_ip=client)
    try:
        a, b = conns.values()
        order = [a, b, a, b, a]
        for conn, expected_remaining in zip(order, (4, 3, 2, 1, 0)):
            status, headers, body = exchange(conn, "GET", "/api/health")
            assert status == 200, body
            assert headers["RateLimit-Policy"] == "5;w=900"
            assert headers["RateLimit-Limit"] == "5"
            assert headers["RateLimit-Remaining"] == str(expected_remaining)
            assert 0 < int(headers["RateLimit-Reset"]) <= 900
        for conn in (b, a):
            assert_too_many(*exchange(conn, "GET", "/api/health"))
    finally:
        for conn in conns.values():
            conn.close()

    # a new connection, any route, any method
    status, headers, body = st.request_from(client, "GET", "/api/health")
    assert_too_many(status, headers, body)
    status, headers, body = st.request_from(
        client, "POST", "/api/auth/login",
        {"Content-Type": "application/json"}, b'{"identifier":"a"}')
    assert_too_many(status, headers, body)

    # another client has its own budget
    status, headers, _ = st.request_from("127.0.0.4", "GET", "/api/health")
    assert status == 200
    assert headers["RateLimit-Remaining"] == "4"

    st.reload()
    for pid, response in st.each_worker("GET", "/api/health",
                                        source_ip=client).items():
        assert_too_many(*response)


def test_rate_limit_window_resets(make_stack):
    st = make_stack(RATE_LIMIT="2", RATE_WINDOW="2s")
    client = "127.0.0.5"
    for _ in range(2):
        assert st.request_from(client, "GET", "/api/health")[0] == 200
    status, headers, body = st.request_from(client, "GET", "/api/health")
    assert status == 429
    assert 0 < int(headers["Retry-After"]) <= 2

    def allowed():
        return st.request_from(client, "GET", "/api/health")[0] == 200

    time.sleep(1.5)
    assert poll(allowed, 3, 0.25)


# --- CORS -----------------------------------------------------------------

def header_list(value):
    return [v.strip().lower() for v in (value or "").split(",")]


def test_cors_preflight_from_allowed_origin(make_stack):
    st = make_stack(CORS_ORIGINS=ORIGIN)
    r = st.request("OPTIONS", "/api/auth/login", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert r.status_code == 204, r.text
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "post" in header_list(r.headers["Access-Control-Allow-Methods"])
    allow_headers = header_list(r.headers["Access-Control-Allow-Headers"])
    assert "authorization" in allow_headers
    assert "content-type" in allow_headers
    assert r.content == b""

    # a normal request from that origin carries the header too
    r = st.get("/api/health", headers={"Origin": ORIGIN})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    # so does an error reply
    r = st.post("/api/auth/login", headers={"Origin": ORIGIN},
                json={"identifier": "nobody", "password": "x"})
    assert r.status_code == 401
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_cors_preflight_from_other_origin_is_403_json(make_stack):
    st = make_stack(CORS_ORIGINS=ORIGIN)
    for origin in ("https://evil.example", "http://app.example",
                   "https://app.example.evil.com", "null"):
        r = st.request("OPTIONS", "/api/auth/login", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"})
        assert_error(r, 403)
        assert r.headers.get("Access-Control-Allow-Origin") != origin
        r = st.get("/api/health", headers={"Origin": origin})
        assert r.headers.get("Access-Control-Allow-Origin") not in (
            origin, "*")


def test_cors_off_sends_no_allow_origin(stack):
    r = stack.get("/api/health", headers={"Origin": ORIGIN})
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers
    r = stack.request("OPTIONS", "/api/auth/login", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert r.status_code < 500
    assert "Access-Control-Allow-Origin" not in r.headers


# --- variables ------------------------------------------------------------

def test_access_log_has_ticket_user_id_and_role(stack, admin):
    user, token = stack.signup()
    marker = unique_name("mark")
    r = stack.patch("/api/auth/status?%s" % marker, token=token,
                    json={"status": "online"})
    assert r.status_code == 200, r.text
    admin_user, admin_token = admin
    r = stack.get("/api/users?%s" % marker, token=admin_token)
    assert r.status_code == 200

    def lines():
        found = [l for l in stack.access_log().splitlines() if marker in l]
        return found if len(found) == 2 else None

    found = poll(lines, 5)
    assert found, stack.access_log()[-2000:]
    assert "user=%s role=user " % user["_id"] in found[0], found[0]
    assert "user=%s role=admin " % admin_user["_id"] in found[1], found[1]


def test_access_log_has_no_user_for_anonymous_requests(stack):
    marker = unique_name("anon")
    stack.get("/api/health?%s" % marker)
    line = poll(lambda: [l for l in stack.access_log().splitlines()
                         if marker in l], 5)
    assert line, stack.access_log()[-2000:]
    assert "user=- role=- " in line[0], line[0]

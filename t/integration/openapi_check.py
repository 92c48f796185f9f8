"""Every REST answer the integration suite receives is checked against the
OpenAPI document (shared/api/openapi.json), so the document cannot drift
from the server.

check(method, target, status, body, content_type) finds the operation of
(method, path) by the document's path templates and fails (an
OpenAPIMismatch, an AssertionError) when the status is not one the
operation documents, a header the response marks required is missing, or
the body does not match that status' schema -- the message names the
operation, the status and the JSON pointer of the failing part.  What is not the REST API (outside /api/: Socket.IO, the web
UI, /metrics, the test's own locations) is not checked.

Answers no operation owns are held to the document's generic responses:
an unknown path under /api/ is 404 RouteNotFound, a known path with a
method it does not list is 405 MethodNotAllowed; either may also be 413
or 429, which nginx or the rate limiter answer before routing, and an
OPTIONS a CORS preflight's 204 Preflight or 403 PreflightRefused.  The
request nginx refuses itself before routing (a malformed request line)
is 400 {"error": "Bad request"} anywhere.
"""

import json
import posixpath
import re
from pathlib import Path
from urllib.parse import unquote_to_bytes

import jsonschema
from jsonschema import Draft202012Validator, RefResolver

DOC_PATH = Path(__file__).resolve().parents[2] / "shared" / "api" / \
    "openapi.json"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch",
           "trace")
# the router takes a path parameter of 1 to 63 bytes (ts_match_t's
# 64-byte buffers, shared/api/ts_api.h); a longer one routes nowhere: 404
PARAM = "[^/]{1,63}"
# answers a request may get before any route is chosen
PRE_ROUTE = {"413": "TooLarge", "429": "TooManyRequests"}


class OpenAPIMismatch(AssertionError):
    pass


def load(path=DOC_PATH):
    with open(path, "rb") as f:
        return json.load(f)


class Checker:
    def __init__(self, doc):
        self.doc = doc
        self.resolver = RefResolver.from_schema(doc)
        self.routes = []
        for template, item in doc["paths"].items():
            pattern = "/".join(
                PARAM if re.fullmatch(r"\{[^}]+\}", seg) else re.escape(seg)
                for seg in template.split("/"))
            # literal paths before templated ones (/api/mod-requests/me)
            self.routes.append((template.count("{"), template,
                                re.compile(pattern), item))
        self.routes.sort(key=lambda r: r[0])

    # --- finding the operation -------------------------------------------

    @staticmethod
    def path_of(target):
        """The path nginx routes for a request target: query cut, escapes
        decoded, slashes merged, dot segments resolved; the router ignores
        a trailing slash.  One character per byte (latin-1), so lengths
        are the router's."""
        if isinstance(target, str):
            target = target.encode("utf-8", "surrogateescape")
        # bytes stay bytes until the escapes are decoded
        path = target.split(b"?", 1)[0].split(b"#", 1)[0]
        if b"://" in path:              # an absolute-form target
            path = b"/" + path.split(b"://", 1)[1].partition(b"/")[2]
        path = unquote_to_bytes(path).decode("latin-1")
        path = re.sub("/+", "/", path)
        if "/." in path:
            path = posixpath.normpath(path)
        while len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        return path

    def operation(self, method, path):
        """(template, operation or None, path item or None)."""
        method = method.lower()
        items = [(t, item) for _, t, rx, item in self.routes
                 if rx.fullmatch(path)]
        for t, item in items:
            op = item.get(method) or (item.get("get") if method == "head"
                                      else None)
            if op is not None:
                return t, op, item
        return (items[0][0], None, items[0][1]) if items else (None, None,
                                                               None)

    def resolve(self, obj):
        while isinstance(obj, dict) and "$ref" in obj:
            _, obj = self.resolver.resolve(obj["$ref"])
        return obj

    # --- checking an answer ----------------------------------------------

    def check(self, method, target, status, body, content_type=None,
              headers=None):
        if isinstance(method, bytes):
            method = method.decode()
        method = method.upper()
        path = self.path_of(target)
        if not path.startswith("/api/"):
            return None                 # not the REST API
        status = str(status)
        where = "%s %s" % (method, path)

        if status == "400" and self._nginx_bad_request(body):
            return None

        template, op, item = self.operation(method, path)
        if op is None:
            generic = dict(PRE_ROUTE)
            if method == "OPTIONS":
                # a CORS preflight is answered before routing
                generic.update({"204": "Preflight",
                                "403": "PreflightRefused"})
            if template is None:
                generic["404"] = "RouteNotFound"
            else:
                generic["405"] = "MethodNotAllowed"
            if status not in generic:
                raise OpenAPIMismatch(
                    "%s: %s; the answer %s is not documented (expected %s)"
                    % (where, "no path of the document matches" if template
                       is None else "%s has no %s operation" % (template,
                                                                method),
                       status, "/".join(sorted(generic))))
            name = "generic response %s" % generic[status]
            response = self.doc["components"]["responses"][generic[status]]
        else:
            name = "operation %s (%s %s)" % (op.get("operationId"), method,
                                             template)
            responses = op["responses"]
            key = status if status in responses else (
                status[0] + "XX" if status[0] + "XX" in responses
                else "default" if "default" in responses else None)
            if key is None:
                raise OpenAPIMismatch(
                    "%s, %s: status %s is not documented (documented: %s); "
                    "body: %.300r" % (name, where, status,
                                      ", ".join(sorted(responses)), body))
            response = responses[key]
        response = self.resolve(response)
        if headers is not None:
            self._check_headers(name, where, status, response, headers)
        return self._check_body(name, where, method, status, response, body,
                                content_type)

    @staticmethod
    def _nginx_bad_request(body):
        try:
            return json.loads(body) == {"error": "Bad request",
                                        "message": "Bad request"}
        except (ValueError, TypeError):
            return False

    def _check_headers(self, name, where, status, response, headers):
        """The headers the response marks required are there; an integer
        one holds an integer."""
        for key, spec in response.get("headers", {}).items():
            spec = self.resolve(spec)
            if not spec.get("required"):
                continue
            value = headers.get(key)
            if value is None:
                raise OpenAPIMismatch("%s, %s: status %s: header %s is "
                                      "documented as required, missing"
                                      % (name, where, status, key))
            if spec.get("schema", {}).get("type") == "integer" and \
                    not value.strip().isdigit():
                raise OpenAPIMismatch("%s, %s: status %s: header %s: %r is "
                                      "not an integer" % (name, where,
                                                          status, key, value))

    def _check_body(self, name, where, method, status, response, body,
                    content_type):
        content = response.get("content")
        if method == "HEAD" or not content:
            if method != "HEAD" and body:
                raise OpenAPIMismatch(
                    "%s, %s: status %s documents no body, got %.300r"
                    % (name, where, status, body))
            return None
        media = content.get("application/json")
        if media is None:
            return None
        if content_type is not None and \
                not content_type.startswith("application/json"):
            raise OpenAPIMismatch("%s, %s: status %s: Content-Type %r, "
                                  "documented application/json"
                                  % (name, where, status, content_type))
        try:
            value = json.loads(body)
        except (ValueError, TypeError) as e:
            raise OpenAPIMismatch("%s, %s: status %s: the body is not JSON "
                                  "(%s): %.300r" % (name, where, status, e,
                                                    body))
        schema = media.get("schema", {})
        validator = Draft202012Validator(schema, resolver=self.resolver)
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is not None:
            pointer = "".join("/" + str(p).replace("~", "~0").replace(
                "/", "~1") for p in error.absolute_path) or "/"
            raise OpenAPIMismatch(
                "%s, %s: status %s: the body at %s does not match the "
                "document: %s (schema: %s)\nbody: %.600s"
                % (name, where, status, pointer, error.message,
                   "/".join(str(p) for p in error.absolute_schema_path),
                   json.dumps(value)))
        return value


_checker = None


def checker():
    global _checker
    if _checker is None:
        _checker = Checker(load())
    return _checker


def check(method, target, status, body, content_type=None, headers=None):
    """Check one answer; raises OpenAPIMismatch (an AssertionError).
    headers: a mapping with case-insensitive get(), or None to skip them."""
    return checker().check(method, target, status, body, content_type,
                           headers)


def check_response(r):
    """Check a requests.Response (its request's method and URL); returns
    it."""
    check(r.request.method, r.request.path_url, r.status_code, r.content,
          r.headers.get("Content-Type"), r.headers)
    return r

#!/usr/bin/python3
"""Local fakes of the third-party services ticketd talks to.

One program, one service per process:

    fakes.py gemini   --port N [--key K]   Gemini generateContent (v1beta)
    fakes.py openai   --port N [--key K]   OpenAI-compatible chat completions
    fakes.py sendgrid --port N [--key K]   SendGrid v3 mail/send
    fakes.py smtp     --port N [--control-port M]   ESMTP sink

`--port 0` picks a free port.  Once listening the program prints exactly one
line to stdout, flushed: `READY <port>` (smtp: `READY <smtp_port>
<control_port>`), and nothing else ever.  Access logs go to stderr only with
`--verbose`.

Every fake speaks its service's real wire format (bodies, status codes,
error JSON shapes, headers) and can be told to misbehave through a control
API under /__fake/ (on the control port for smtp); see README.md.  The AI
fakes answer depending on the input: the triage they return is computed
from the ticket text found in the prompt (triage()).

Standard library only: this runs under /usr/bin/python3 with no packages.
"""

import argparse
import base64
import binascii
import html
import json
import re
import secrets
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

STALL_SECONDS = 300             # "never answer": longer than any client timeout
MAX_BODY = 32 * 1024 * 1024     # request bodies larger than this get 413
HUGE_BYTES = 2 * 1024 * 1024    # size of the padding in "huge" answers
SMTP_MAX_LINE = 64 * 1024
SMTP_MAX_DATA = 10 * 1024 * 1024

AI_MODES = ("ok", "error", "ratelimit", "stall", "garbage", "fenced", "prose",
            "missing_keys", "wrong_types", "huge", "blocked", "empty")
MAIL_MODES = ("ok", "error", "ratelimit", "stall", "garbage")
SMTP_MODES = ("ok", "error", "reject", "stall")

GARBAGE = (b'upstream said: <html><body><h1>502 Bad Gateway</h1></body></html>'
           b' {"candidates": [ {"content": ')

JSON_CT = "application/json; charset=UTF-8"


# --------------------------------------------------------------------------
# Shared state: the failure mode and everything received.  One lock guards
# both; handlers never hold it while sleeping or doing I/O.
# --------------------------------------------------------------------------

class State:
    """Mode override (with an optional count), delay, and the request log.

    The override {mode, status, count, answer, text} applies to the next
    `count` service requests (all of them when count is None) and then
    reverts to plain "ok".  delay_ms is separate and stays until the next
    POST /__fake/mode or reset.  reset() also releases every stalled request
    (their connections are closed without an answer).
    """

    def __init__(self, modes):
        self.modes = modes
        self.lock = threading.Lock()
        self.records = []
        self.mails = []
        self.override = {"mode": "ok"}
        self.delay_ms = 0
        self.stall_release = threading.Event()

    def set_mode(self, spec):
        """Validate and install a /__fake/mode body; return an error or None."""
        if not isinstance(spec, dict):
            return "body must be a JSON object"
        allowed = {"mode", "status", "delay_ms", "count", "answer", "text"}
        unknown = sorted(set(spec) - allowed)
        if unknown:
            return "unknown field(s): %s" % ", ".join(unknown)
        mode = spec.get("mode", "ok")
        if mode not in self.modes:
            return "mode must be one of %s" % "|".join(self.modes)
        status = spec.get("status")
        if status is not None and (not _is_int(status)
                                   or not 100 <= status <= 599):
            return "status must be an integer 100..599"
        delay = spec.get("delay_ms", 0)
        if not _is_int(delay) or not 0 <= delay <= 600000:
            return "delay_ms must be an integer 0..600000"
        count = spec.get("count")
        if count is not None and (not _is_int(count) or count < 1):
            return "count must be an integer >= 1"
        if "answer" in spec and not isinstance(spec["answer"], dict):
            return "answer must be a JSON object"
        if "text" in spec and not isinstance(spec["text"], str):
            return "text must be a string"
        override = {"mode": mode, "status": status, "count": count}
        for k in ("answer", "text"):
            if k in spec:
                override[k] = spec[k]
        with self.lock:
            self.override = override
            self.delay_ms = delay
        return None

    def take(self):
        """The override for one service request, and the delay to apply."""
        with self.lock:
            cur = dict(self.override)
            n = self.override.get("count")
            if n is not None:
                if n <= 1:
                    self.override = {"mode": "ok"}
                else:
                    self.override["count"] = n - 1
            return cur, self.delay_ms

    def describe(self):
        with self.lock:
            d = dict(self.override)
            d["delay_ms"] = self.delay_ms
            return d

    def record(self, entry):
        with self.lock:
            self.records.append(entry)

    def add_mail(self, mail):
        with self.lock:
            self.mails.append(mail)

    def snapshot(self, what="records"):
        with self.lock:
            return json.dumps(getattr(self, what)).encode()

    def reset(self):
        with self.lock:
            self.records = []
            self.mails = []
            self.override = {"mode": "ok"}
            self.delay_ms = 0
            release, self.stall_release = (self.stall_release,
                                           threading.Event())
        release.set()

    def stall(self):
        """Block like a server that never answers (until reset())."""
        self.stall_release.wait(STALL_SECONDS)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


# --------------------------------------------------------------------------
# Triage: the input-dependent answer of the AI fakes (pure, no I/O).
# --------------------------------------------------------------------------

# ticketd's prompt: rules, then the ticket between lines "<ticket>" and
# "</ticket>" as <title>/<description> blocks with &, <, > escaped, then a
# reminder.  The rules name keywords and example skills, so only the block
# may be searched.
_TICKET_BLOCK = re.compile(r"^<ticket>[ \t]*\r?\n(.*?)^</ticket>[ \t]*\r?$",
                           re.M | re.S)
_TICKET_TAG = re.compile(r"</?(?:title|description)>")

# Otherwise a line that starts the ticket inside a longer prompt; everything
# before it (instructions, examples such as ["React", "MongoDB"]) is ignored.
_TICKET_START = re.compile(
    r"^[ \t]*(?:[-*][ \t]*)?(?:ticket(?:[ \t]+(?:information|info|text))?"
    r"|title|subject)[ \t]*:", re.I | re.M)
_LABEL = re.compile(
    r"^\s*(?:[-*]\s*)?(?:ticket(?:\s+(?:information|info|text))?|title"
    r"|subject|description)\s*:\s*", re.I)

_HIGH = re.compile(r"\b(outages?|down|crash\w*|payments?|urgent\w*|security)\b",
                   re.I)
_LOW = re.compile(r"\b(typos?|questions?|features?)\b", re.I)

# (skill as returned, pattern matched as a whole word, case-insensitive)
SKILLS = (
    ("react", r"react(?:\.?js)?"),
    ("css", r"css3?"),
    ("frontend", r"front-?end"),
    ("node.js", r"node(?:\.?js)?"),
    ("api", r"apis?"),
    ("mongodb", r"mongo(?:db)?"),
    ("sql", r"sql|mysql|postgres(?:ql)?|sqlite"),
    ("docker", r"docker"),
    ("nginx", r"nginx"),
    ("devops", r"devops"),
    ("billing", r"billing|invoices?"),
    ("payments", r"payments?"),
    ("stripe", r"stripe"),
    ("email", r"e-?mails?"),
    ("auth", r"auth|oauth|authentication|login|log-?in|sign-?in|passwords?"),
    ("security", r"security"),
    ("mobile", r"mobile|ios|android"),
)
_SKILL_RES = tuple((name, re.compile(r"(?<![\w.])(?:%s)(?![\w])" % pat, re.I))
                   for name, pat in SKILLS)


_TICKET_END = re.compile(r"^[ \t]*-{3,}[ \t]*$", re.M)


def ticket_text(prompt):
    """The part of the prompt that is the ticket: the <ticket> block
    (tags removed, entities decoded); else from the first ticket line
    (Ticket:/Ticket information:/Title:/Subject:, optionally after "- ") up
    to a following "---" line; else the whole prompt."""
    m = _TICKET_BLOCK.search(prompt)
    if m:
        return html.unescape(_TICKET_TAG.sub("", m.group(1)))
    m = _TICKET_START.search(prompt)
    if not m:
        return prompt
    end = _TICKET_END.search(prompt, m.end())
    return prompt[m.start():end.start() if end else len(prompt)]


def triage(prompt):
    """{summary, priority, helpfulNotes, relatedSkills} for a prompt."""
    text = ticket_text(prompt)
    summary = ""
    for line in text.splitlines():
        line = _LABEL.sub("", line).strip()
        if line:
            summary = line[:120]
            break
    high, low = _HIGH.search(text), _LOW.search(text)
    if high:
        priority, why = "High", 'the ticket mentions "%s"' % high.group(1)
    elif low:
        priority, why = "Low", 'the ticket mentions "%s"' % low.group(1)
    else:
        priority, why = "Medium", "no urgency keywords found"
    skills = [name for name, rx in _SKILL_RES if rx.search(text)]
    notes = "\n".join((
        "- Priority %s: %s." % (priority, why),
        "- Skills: %s." % (", ".join(skills) if skills
                           else "none matched; route to a general moderator"),
        "- Reproduce the issue from the description, then check recent "
        "deploys and the logs around the reported time.",
    ))
    return {"summary": summary or "No summary", "priority": priority,
            "helpfulNotes": notes, "relatedSkills": skills}


def answer_text(ov, prompt):
    """The model's text for "ok" and the content modes (not blocked/empty):
    the override text, else the override answer or triage(prompt), shaped
    by the mode."""
    if "text" in ov:
        return ov["text"]
    obj = dict(ov["answer"]) if "answer" in ov else triage(prompt)
    mode = ov["mode"]
    if mode == "fenced":
        return "```json\n" + json.dumps(obj, indent=2) + "\n```"
    if mode == "prose":
        return "Sure! Here is the triage:\n" + json.dumps(obj) + "\nHope it helps"
    if mode == "missing_keys":
        obj.pop("priority", None)
    elif mode == "wrong_types":
        obj["summary"] = {"text": obj.get("summary")}
        obj["relatedSkills"] = "42"
    elif mode == "huge":
        line = "- This note is padding to make the answer huge.\n"
        obj["helpfulNotes"] = line * (HUGE_BYTES // len(line) + 1)
    return json.dumps(obj)


def _tokens(s):
    return max(1, len(s) // 4)


# --------------------------------------------------------------------------
# HTTP plumbing shared by the three HTTP fakes and the smtp control port.
# --------------------------------------------------------------------------

class Reply(Exception):
    """Raised by a service to answer immediately (auth, routing, 400s)."""

    def __init__(self, status, obj=None, headers=()):
        super().__init__(status)
        self.status, self.obj, self.headers = status, obj, headers


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return      # clients that time out and hang up are expected
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake"
    sys_version = ""

    def log_message(self, fmt, *args):
        if self.server.verbose:
            super().log_message(fmt, *args)

    def do_GET(self):
        try:
            self.dispatch()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(8)
                if len(out) > MAX_BODY:
                    raise ValueError("body too large")
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n) if n else b""

    def send(self, status, body=b"", ctype=JSON_CT, headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        if ctype and (body or status != 202):
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def dispatch(self):
        url = urlsplit(self.path)
        try:
            raw = self.read_body()
        except ValueError:
            self.close_connection = True
            self.send(413, {"error": "request body too large or malformed"})
            return
        if url.path.startswith("/__fake/"):
            self.control(url.path, raw)
        elif self.server.service is None:
            self.send(404, {"error": "control port: only /__fake/ here"})
        else:
            self.server.service.handle(self, url, raw)

    def control(self, path, raw):
        st = self.server.state
        if path == "/__fake/mode" and self.command == "POST":
            try:
                spec = json.loads(raw or b"{}")
            except ValueError:
                spec = None
            err = st.set_mode(spec)
            if err:
                self.send(400, {"error": err})
            else:
                self.send(200, {"ok": True, "mode": st.describe()})
        elif path == "/__fake/mode" and self.command == "GET":
            self.send(200, st.describe())
        elif path == "/__fake/requests" and self.command == "GET":
            self.send(200, st.snapshot("records"))
        elif path == "/__fake/mails" and self.command == "GET":
            self.send(200, st.snapshot("mails"))
        elif path == "/__fake/reset" and self.command == "POST":
            st.reset()
            self.send(200, {"ok": True})
        else:
            self.send(404, {"error": "unknown control endpoint %s %s"
                            % (self.command, path)})


def _decode_body(raw):
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


class Request:
    """What answer() needs of one service request."""

    def __init__(self, headers, endpoint, path, query, raw, ov):
        self.headers, self.endpoint, self.path = headers, endpoint, path
        self.query, self.raw, self.ov = query, raw, ov


class HTTPService:
    """One fake service: routing, auth, then the mode, then the answer.

    Subclasses implement route() (an endpoint name, or raise Reply for
    404), auth() (raise Reply for 401/403), error_body(), and answer() for
    mode "ok" and the content modes.  Only endpoints listed in `moded` take
    the failure mode.  Requests rejected by route() or auth() are recorded
    with mode null and do not consume a `count`.
    """

    def __init__(self, state, key):
        self.state, self.key = state, key

    def handle(self, h, url, raw):
        query = parse_qs(url.query)
        entry = {"method": h.command, "path": h.path,
                 "headers": {k.lower(): v for k, v in h.headers.items()},
                 "body": _decode_body(raw), "time": time.time(), "mode": None}
        try:
            endpoint = self.route(h.command, url.path)
            self.auth(h.headers, query)
        except Reply as r:
            self.state.record(entry)
            delay = self.state.describe()["delay_ms"]
            if delay:
                time.sleep(delay / 1000.0)
            return self._reply(h, r)
        if endpoint in self.moded:
            ov, delay = self.state.take()
        else:
            ov, delay = {"mode": "ok"}, self.state.describe()["delay_ms"]
        entry["mode"] = ov["mode"]
        self.state.record(entry)
        if delay:
            time.sleep(delay / 1000.0)
        mode = ov["mode"]
        if mode == "stall":
            self.state.stall()
            h.close_connection = True
            return
        if mode == "error":
            status = ov.get("status") or 500
            return self._reply(h, Reply(status, self.error_body(status)))
        if mode == "ratelimit":
            return self._reply(h, Reply(429, self.error_body(429),
                                        self.ratelimit_headers()))
        if mode == "garbage":
            return h.send(200, GARBAGE)
        req = Request(h.headers, endpoint, url.path, query, raw, ov)
        try:
            self._reply(h, self.answer(req))
        except Reply as r:
            self._reply(h, r)

    def _reply(self, h, r):
        h.send(r.status, b"" if r.obj is None else r.obj,
               headers=r.headers)

    def ratelimit_headers(self):
        return (("Retry-After", "1"),)

    def parse_json(self, raw):
        try:
            body = json.loads(raw)
        except ValueError:
            raise Reply(400, self.error_body(400, self.bad_json_message))
        if not isinstance(body, dict):
            raise Reply(400, self.error_body(400, self.bad_json_message))
        return body


# --------------------------------------------------------------------------
# Gemini: POST /v1beta/models/{model}:generateContent
# --------------------------------------------------------------------------

_GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED",
                  403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                  409: "ABORTED", 429: "RESOURCE_EXHAUSTED",
                  499: "CANCELLED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED",
                  503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
_GOOGLE_MESSAGE = {
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in "
         "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}
_GEMINI_PATH = re.compile(r"^/(v1beta|v1)/models/([^/:]+):generateContent$")


class Gemini(HTTPService):
    moded = ("generate",)
    bad_json_message = "Invalid JSON payload received. Unexpected token."

    def error_body(self, status, message=None):
        return {"error": {
            "code": status,
            "message": message or _GOOGLE_MESSAGE.get(
                status, "The service returned HTTP %d." % status),
            "status": _GOOGLE_STATUS.get(
                status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"),
        }}

    def route(self, method, path):
        m = _GEMINI_PATH.match(path)
        if not m:
            raise Reply(404, self.error_body(
                404, "Method not found: %s %s" % (method, path)))
        if method != "POST":
            raise Reply(405, self.error_body(
                405, "Method %s not allowed on %s" % (method, path)))
        if not re.match(r"^[A-Za-z0-9._-]+$", m.group(2)):
            raise Reply(404, self.error_body(
                404, "models/%s is not found for API version %s, or is not "
                "supported for generateContent." % (m.group(2), m.group(1))))
        return "generate"

    def auth(self, headers, query):
        key = headers.get("x-goog-api-key") or (query.get("key") or [None])[0]
        if not key:
            raise Reply(403, self.error_body(
                403, "Method doesn't allow unregistered callers (callers "
                "without established identity). Please use API Key or other "
                "form of API consumer identity to call this API."))
        if key != self.key:
            raise Reply(403, self.error_body(
                403, "API key not valid. Please pass a valid API key."))

    def answer(self, req):
        ov = req.ov
        model = _GEMINI_PATH.match(req.path).group(2)
        body = self.parse_json(req.raw)
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise Reply(400, self.error_body(
                400, "* GenerateContentRequest.contents: contents is not "
                "specified\n"))
        texts = []
        for i, c in enumerate(contents):
            parts = c.get("parts") if isinstance(c, dict) else None
            if not isinstance(parts, list) or not parts:
                raise Reply(400, self.error_body(
                    400, "* GenerateContentRequest.contents[%d].parts: "
                    "contents.parts must not be empty.\n" % i))
            if c.get("role", "user") == "user":
                texts += [p["text"] for p in parts
                          if isinstance(p, dict)
                          and isinstance(p.get("text"), str)]
        prompt = "\n".join(texts)
        usage = {"promptTokenCount": _tokens(prompt)}
        out = {}
        mode = ov["mode"]
        if mode == "blocked":
            out["promptFeedback"] = {"blockReason": "SAFETY", "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                 "probability": "HIGH"}]}
            usage["totalTokenCount"] = usage["promptTokenCount"]
        elif mode == "empty":
            out["candidates"] = []
            usage["totalTokenCount"] = usage["promptTokenCount"]
        else:
            text = answer_text(ov, prompt)
            out["candidates"] = [{
                "content": {"parts": [{"text": text}], "role": "model"},
                "finishReason": "STOP", "index": 0}]
            usage["candidatesTokenCount"] = _tokens(text)
            usage["totalTokenCount"] = (usage["promptTokenCount"]
                                        + usage["candidatesTokenCount"])
        out["usageMetadata"] = usage
        out["modelVersion"] = model
        out["responseId"] = secrets.token_urlsafe(16)
        return Reply(200, out)


# --------------------------------------------------------------------------
# OpenAI-compatible: POST /v1/chat/completions, GET /v1/models
# --------------------------------------------------------------------------

class OpenAI(HTTPService):
    moded = ("chat",)      # GET /v1/models always answers (after delay_ms)
    bad_json_message = ("We could not parse the JSON body of your request. "
                        "(HINT: This likely means you aren't using your HTTP "
                        "library correctly. The OpenAI API expects a JSON "
                        "payload, but what was sent was not valid JSON.)")

    def __init__(self, state, key, model):
        super().__init__(state, key)
        self.model = model

    def error_body(self, status, message=None, param=None, code=None):
        if status == 429:
            return {"error": {
                "message": message or "Rate limit reached for requests",
                "type": "requests", "param": None,
                "code": "rate_limit_exceeded"}}
        if status >= 500:
            return {"error": {
                "message": message or "The server had an error while "
                "processing your request. Sorry about that!",
                "type": "server_error", "param": None, "code": None}}
        return {"error": {"message": message or "HTTP %d" % status,
                          "type": "invalid_request_error",
                          "param": param, "code": code}}

    def route(self, method, path):
        if path in ("/v1/chat/completions", "/chat/completions") \
                and method == "POST":
            return "chat"
        if path in ("/v1/models", "/models") and method == "GET":
            return "models"
        raise Reply(404, self.error_body(
            404, "Invalid URL (%s %s)" % (method, path)))

    def auth(self, headers, query):
        got = headers.get("Authorization", "")
        if got != "Bearer " + self.key:
            raise Reply(401, {"error": {
                "message": "Incorrect API key provided",
                "type": "invalid_request_error", "param": None,
                "code": "invalid_api_key"}})

    def answer(self, req):
        ov = req.ov
        if req.endpoint == "models":
            return Reply(200, {"object": "list", "data": [{
                "id": self.model, "object": "model", "created": 1721172741,
                "owned_by": "system"}]})
        body = self.parse_json(req.raw)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise Reply(400, self.error_body(
                400, "you must provide a model parameter"))
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise Reply(400, self.error_body(
                400, "Missing required parameter: 'messages'.",
                "messages", "missing_required_parameter"))
        temp = body.get("temperature")
        if temp is not None and (isinstance(temp, bool)
                                 or not isinstance(temp, (int, float))
                                 or not 0 <= temp <= 2):
            raise Reply(400, self.error_body(
                400, "Invalid 'temperature': must be a number between 0 "
                "and 2.", "temperature", "invalid_value"))
        every, user = [], []
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in (
                    "system", "developer", "user", "assistant", "tool"):
                raise Reply(400, self.error_body(
                    400, "Invalid value for 'messages[%d].role'." % i,
                    "messages[%d].role" % i, "invalid_value"))
            c = m.get("content")
            if isinstance(c, list):
                c = "\n".join(p.get("text", "") for p in c
                              if isinstance(p, dict))
            c = c if isinstance(c, str) else ""
            every.append(c)
            if m["role"] == "user":
                user.append(c)
        rf = body.get("response_format")
        if isinstance(rf, dict) and rf.get("type") == "json_object" \
                and "json" not in "\n".join(every).lower():
            raise Reply(400, self.error_body(
                400, "'messages' must contain the word 'json' in some form, "
                "to use 'response_format' of type 'json_object'.",
                "messages", None))
        prompt = "\n".join(user or every)
        mode = ov["mode"]
        choices, completion = [], 0
        if mode == "blocked":
            choices = [{"index": 0, "message": {
                "role": "assistant", "content": None,
                "refusal": "I'm sorry, but I can't assist with that request."},
                "logprobs": None, "finish_reason": "stop"}]
        elif mode != "empty":
            text = answer_text(ov, prompt)
            completion = _tokens(text)
            choices = [{"index": 0, "message": {
                "role": "assistant", "content": text, "refusal": None},
                "logprobs": None, "finish_reason": "stop"}]
        p = _tokens("\n".join(every))
        return Reply(200, {
            "id": "chatcmpl-" + secrets.token_hex(12),
            "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": choices,
            "usage": {"prompt_tokens": p, "completion_tokens": completion,
                      "total_tokens": p + completion},
            "system_fingerprint": "fp_fake"})


# --------------------------------------------------------------------------
# SendGrid v3: POST /v3/mail/send
# --------------------------------------------------------------------------

_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\".]+(?:\.[^@\s<>\".]+)+$")


class SendGrid(HTTPService):
    moded = ("send",)
    bad_json_message = "Bad Request"

    def error_body(self, status, message=None, field=None):
        default = {401: "The provided authorization grant is invalid, "
                        "expired, or revoked",
                   404: "Not Found", 413: "Payload Too Large",
                   429: "too many requests"}
        return {"errors": [{
            "message": message or default.get(
                status, "Internal Server Error" if status >= 500
                else "Bad Request"),
            "field": field, "help": None}]}

    def ratelimit_headers(self):
        return (("Retry-After", "1"), ("X-RateLimit-Limit", "600"),
                ("X-RateLimit-Remaining", "0"),
                ("X-RateLimit-Reset", str(int(time.time()) + 1)))

    def route(self, method, path):
        if path == "/v3/mail/send" and method == "POST":
            return "send"
        raise Reply(404, self.error_body(404))

    def auth(self, headers, query):
        if headers.get("Authorization", "") != "Bearer " + self.key:
            raise Reply(401, self.error_body(401))

    def answer(self, req):
        # Real SendGrid checks the media type before the body.
        ct = req.headers.get("Content-Type", "")
        if ct.split(";")[0].strip().lower() != "application/json":
            raise Reply(400, self.error_body(
                400, "Content-Type should be application/json."))
        body = self.parse_json(req.raw)
        errs = validate_mail(body)
        if errs:
            raise Reply(400, {"errors": [
                {"message": m, "field": f, "help": None} for f, m in errs]})
        msg_id = secrets.token_urlsafe(16)[:22]
        to = [r["email"] for p in body["personalizations"]
              for k in ("to", "cc", "bcc") for r in p.get(k) or ()]
        subject = body.get("subject") or body["personalizations"][0].get(
            "subject")
        self.state.add_mail({"message_id": msg_id,
                             "from": body["from"]["email"], "to": to,
                             "subject": subject,
                             "content": body.get("content"),
                             "body": body, "time": time.time()})
        return Reply(202, None, (("X-Message-Id", msg_id),))


def validate_mail(body):
    """SendGrid's validation of a mail/send body: [(field, message)]."""
    errs = []
    pers = body.get("personalizations")
    has_template = isinstance(body.get("template_id"), str) \
        and body["template_id"]
    if not isinstance(pers, list) or not pers:
        errs.append(("personalizations", "The personalizations field is "
                     "required and must have at least one personalization."))
        pers = []
    for i, p in enumerate(pers):
        if not isinstance(p, dict):
            errs.append(("personalizations.%d" % i,
                         "The personalization must be an object."))
            continue
        to = p.get("to")
        if not isinstance(to, list) or not to:
            errs.append(("personalizations.%d.to" % i, "The to array is "
                         "required for all personalization objects, and "
                         "must have at least one email object with a valid "
                         "email address."))
        seen = set()
        for kind in ("to", "cc", "bcc"):
            lst = p.get(kind)
            if lst is None or (kind == "to" and not isinstance(lst, list)):
                continue
            if not isinstance(lst, list):
                errs.append(("personalizations.%d.%s" % (i, kind),
                             "The %s field must be an array." % kind))
                continue
            for j, r in enumerate(lst):
                email = r.get("email") if isinstance(r, dict) else None
                if not isinstance(email, str) or not _EMAIL.match(email):
                    errs.append(("personalizations.%d.%s.%d.email"
                                 % (i, kind, j),
                                 "Does not contain a valid address."))
                elif email.lower() in seen:
                    errs.append(("personalizations.%d" % i, "Each email "
                                 "address in the personalization block "
                                 "should be unique between to, cc, and bcc. "
                                 "We found the first duplicate instance of "
                                 "[%s] in the personalizations.%d.%s field."
                                 % (email, i, kind)))
                else:
                    seen.add(email.lower())
    frm = body.get("from")
    if not isinstance(frm, dict) or "email" not in frm:
        errs.append(("from", "The from object must be provided for every "
                     "email send. It is an object that requires the email "
                     "parameter, but may also contain a name parameter."))
    elif not isinstance(frm["email"], str) or not _EMAIL.match(frm["email"]):
        errs.append(("from.email",
                     "The from email does not contain a valid address."))
    rt = body.get("reply_to")
    if rt is not None and (not isinstance(rt, dict)
                           or not isinstance(rt.get("email"), str)
                           or not _EMAIL.match(rt["email"])):
        errs.append(("reply_to.email",
                     "The reply_to email does not contain a valid address."))
    subj = body.get("subject")
    if not (isinstance(subj, str) and subj) and not has_template and not (
            pers and all(isinstance(p, dict) and isinstance(
                p.get("subject"), str) and p["subject"] for p in pers)):
        errs.append(("subject", "The subject is required. You can get around "
                     "this requirement if you use a template with a subject "
                     "defined or if every personalization has a subject "
                     "defined."))
    content = body.get("content")
    if content is None and has_template:
        return errs
    if not isinstance(content, list) or not content:
        errs.append(("content", "Unless a valid template_id is provided, the "
                     "content parameter is required. There must be at least "
                     "one defined content block. We typically suggest both "
                     "text/plain and text/html blocks are included, but only "
                     "one block is required."))
        return errs
    types = []
    for k, c in enumerate(content):
        c = c if isinstance(c, dict) else {}
        t = c.get("type")
        if not isinstance(t, str) or not t or any(x in t for x in ";\r\n"):
            errs.append(("content.%d.type" % k, "The content type cannot "
                         "contain ';', or CRLF characters, and must be at "
                         "least 1 character."))
        if not isinstance(c.get("value"), str) or not c["value"]:
            errs.append(("content.%d.value" % k, "The content value must be "
                         "a string at least one character in length."))
        types.append(t)
    if "text/plain" in types and types[0] != "text/plain":
        errs.append(("content.0.type", "If present, text/plain content must "
                     "be first, followed by text/html, followed by any other "
                     "content."))
    return errs


# --------------------------------------------------------------------------
# SMTP sink
# --------------------------------------------------------------------------

class SMTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class SMTPHandler(socketserver.StreamRequestHandler):
    """One ESMTP session, a small state machine (RFC 5321 subset).

    A "request" for the mode is one mail transaction: the mode is taken at
    MAIL FROM.  stall: MAIL FROM is never answered.  error/reject: every
    RCPT TO in that transaction gets 451/550 (or `status`).  delay_ms is
    applied before the answer to the end of DATA.
    """

    timeout = STALL_SECONDS

    def reply(self, *lines):
        out = []
        for i, line in enumerate(lines):
            sep = " " if i == len(lines) - 1 else "-"
            out.append(line[:3] + sep + line[4:] + "\r\n")
        self.wfile.write("".join(out).encode())

    def readline(self):
        line = self.rfile.readline(SMTP_MAX_LINE + 2)
        if not line:
            raise ConnectionResetError("client hung up")
        return line.decode("utf-8", "replace").rstrip("\r\n")

    def handle(self):
        st = self.server.state
        self.helo = None
        self.auth_user = None
        self.reset_tx()
        self.reply("220 fake-smtp ESMTP ready")
        while True:
            try:
                line = self.readline()
            except (ConnectionError, TimeoutError):
                return
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            fn = getattr(self, "cmd_" + verb, None) if verb.isalpha() else None
            if fn is None:
                self.reply("500 5.5.2 Error: command not recognized")
            elif fn(arg.strip(), st) is False:
                return

    def reset_tx(self):
        self.mail_from, self.mail_params, self.rcpts = None, "", []
        self.mode, self.delay = {"mode": "ok"}, 0

    def refusal(self, lines):
        """The strict server's 554 for a message the RFCs forbid, or None:
        a line over 998 characters (RFC 5322 2.1.1), 8-bit bytes when MAIL
        FROM declared neither BODY=8BITMIME (RFC 6152) nor SMTPUTF8 (RFC
        6531) -- raw UTF-8 in a Subject, or an 8bit body, sent plainly."""
        params = self.mail_params.upper().split()
        eight_ok = "BODY=8BITMIME" in params or "SMTPUTF8" in params
        for line in lines:
            if len(line.rstrip(b"\r\n")) > 998:
                return ("554 5.6.0 Error: message has a line over 998 "
                        "characters")
            if not eight_ok and any(b > 0x7f for b in line):
                return ("554 5.6.1 Error: 8-bit data without BODY=8BITMIME "
                        "or SMTPUTF8")
        return None

    def cmd_EHLO(self, arg, st):
        if not arg:
            return self.reply("501 5.5.4 Syntax: EHLO hostname")
        self.helo = arg
        self.reset_tx()
        self.reply("250 fake-smtp Hello %s" % arg, "250 SIZE %d" % SMTP_MAX_DATA,
                   "250 8BITMIME", "250 AUTH PLAIN LOGIN", "250 HELP")

    def cmd_HELO(self, arg, st):
        if not arg:
            return self.reply("501 5.5.4 Syntax: HELO hostname")
        self.helo = arg
        self.reset_tx()
        self.reply("250 fake-smtp")

    def cmd_STARTTLS(self, arg, st):
        self.reply("502 5.5.1 Error: command not implemented")

    def cmd_NOOP(self, arg, st):
        self.reply("250 2.0.0 Ok")

    def cmd_RSET(self, arg, st):
        self.reset_tx()
        self.reply("250 2.0.0 Ok")

    def cmd_VRFY(self, arg, st):
        self.reply("252 2.0.0 Cannot VRFY user, but will accept message")

    def cmd_HELP(self, arg, st):
        self.reply("214 2.0.0 Commands: EHLO HELO AUTH MAIL RCPT DATA RSET "
                   "NOOP VRFY HELP QUIT")

    def cmd_AUTH(self, arg, st):
        if self.auth_user is not None:
            return self.reply("503 5.5.1 Error: already authenticated")
        mech, _, initial = arg.partition(" ")
        mech = mech.upper()
        try:
            if mech == "PLAIN":
                if not initial:
                    self.reply("334 ")
                    initial = self.readline()
                if initial == "*":
                    return self.reply("501 5.7.0 Authentication cancelled")
                fields = base64.b64decode(initial, validate=True).split(b"\0")
                if len(fields) != 3:
                    return self.reply("501 5.5.2 Malformed PLAIN response")
                user = fields[1].decode("utf-8", "replace")
            elif mech == "LOGIN":
                if not initial:
                    self.reply("334 VXNlcm5hbWU6")
                    initial = self.readline()
                if initial == "*":
                    return self.reply("501 5.7.0 Authentication cancelled")
                user = base64.b64decode(initial, validate=True).decode(
                    "utf-8", "replace")
                self.reply("334 UGFzc3dvcmQ6")
                if self.readline() == "*":
                    return self.reply("501 5.7.0 Authentication cancelled")
            else:
                return self.reply("504 5.5.4 Unrecognized authentication type")
        except (binascii.Error, ValueError):
            return self.reply("501 5.5.2 Cannot decode response")
        self.auth_user = user
        self.reply("235 2.7.0 Authentication successful")

    def cmd_MAIL(self, arg, st):
        if self.helo is None:
            return self.reply("503 5.5.1 Error: send HELO/EHLO first")
        if self.mail_from is not None:
            return self.reply("503 5.5.1 Error: nested MAIL command")
        m = re.match(r"^FROM:\s*<([^>]*)>\s*(.*)$", arg, re.I)
        if not m:
            return self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
        self.mode, self.delay = st.take()
        if self.mode["mode"] == "stall":
            st.stall()
            return False                        # then hang up
        self.mail_from, self.mail_params = m.group(1), m.group(2)
        self.reply("250 2.1.0 Ok")

    def cmd_RCPT(self, arg, st):
        if self.mail_from is None:
            return self.reply("503 5.5.1 Error: need MAIL command")
        m = re.match(r"^TO:\s*<([^>]+)>", arg, re.I)
        if not m:
            return self.reply("501 5.5.4 Syntax: RCPT TO:<address>")
        mode, status = self.mode["mode"], self.mode.get("status")
        if mode == "error":
            return self.reply("%d 4.3.0 <%s>: Temporary failure, try again "
                              "later" % (status or 451, m.group(1)))
        if mode == "reject":
            return self.reply("%d 5.1.1 <%s>: Recipient address rejected: "
                              "User unknown" % (status or 550, m.group(1)))
        self.rcpts.append(m.group(1))
        self.reply("250 2.1.5 Ok")

    def cmd_DATA(self, arg, st):
        if self.mail_from is None:
            return self.reply("503 5.5.1 Error: need MAIL command")
        if not self.rcpts:
            return self.reply("554 5.5.1 Error: no valid recipients")
        self.reply("354 End data with <CR><LF>.<CR><LF>")
        data, size = [], 0
        while True:
            line = self.rfile.readline(SMTP_MAX_LINE + 2)
            if not line:
                return False
            if line in (b".\r\n", b".\n"):
                break
            if line.startswith(b"."):
                line = line[1:]                 # dot-unstuffing
            size += len(line)
            if size <= SMTP_MAX_DATA:
                data.append(line)
        if self.delay:
            time.sleep(self.delay / 1000.0)
        if size > SMTP_MAX_DATA:
            self.reset_tx()
            return self.reply("552 5.3.4 Error: message file too big")
        refusal = self.refusal(data)
        if refusal:
            self.reset_tx()
            return self.reply(refusal)
        qid = secrets.token_hex(5).upper()
        st.record({"id": qid, "from": self.mail_from, "to": self.rcpts,
                   "data": b"".join(data).decode("utf-8", "replace"),
                   "helo": self.helo, "auth": self.auth_user,
                   "params": self.mail_params, "time": time.time()})
        self.reset_tx()
        self.reply("250 2.0.0 Ok: queued as %s" % qid)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def _ready(*ports):
    sys.stdout.write("READY %s\n" % " ".join(str(p) for p in ports))
    sys.stdout.flush()


def _http_server(host, port, state, service, verbose):
    srv = Server((host, port), Handler)
    srv.state, srv.service, srv.verbose = state, service, verbose
    return srv


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("service", choices=("gemini", "openai", "sendgrid", "smtp"))
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--key", help="expected API key (gemini: "
                    "test-gemini-key, openai: test-openai-key, sendgrid: "
                    "test-sendgrid-key)")
    ap.add_argument("--model", default="gpt-4o-mini",
                    help="openai: the model GET /v1/models lists")
    ap.add_argument("--control-port", type=int, default=0,
                    help="smtp: port of the HTTP control API")
    ap.add_argument("--verbose", action="store_true",
                    help="access log on stderr")
    args = ap.parse_args(argv)

    if args.service == "smtp":
        state = State(SMTP_MODES)
        smtp = SMTPServer((args.host, args.port), SMTPHandler)
        smtp.state = state
        ctl = _http_server(args.host, args.control_port, state, None,
                           args.verbose)
        threading.Thread(target=ctl.serve_forever, daemon=True).start()
        _ready(smtp.server_address[1], ctl.server_address[1])
        smtp.serve_forever()
        return 0

    if args.service == "gemini":
        state = State(AI_MODES)
        svc = Gemini(state, args.key or "test-gemini-key")
    elif args.service == "openai":
        state = State(AI_MODES)
        svc = OpenAI(state, args.key or "test-openai-key", args.model)
    else:
        state = State(MAIL_MODES)
        svc = SendGrid(state, args.key or "test-sendgrid-key")
    srv = _http_server(args.host, args.port, state, svc, args.verbose)
    _ready(srv.server_address[1])
    srv.serve_forever()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)

"""The integration harness's MongoDB side (see conftest.py).

Backend switch: TEST_STORE=mongodb runs the suite against a MongoDB-wire
server -- the one in TEST_MONGODB_URI (a real mongod) or, without it, a
CongoDB process started once per pytest session (t/mongo/congo.js, the CI
peer: no mongod exists in Debian).  Each Stack gets a database of its own.

Tests look into the store through Stack.sql()/sql_write() with small SQL
statements written for the SQLite schema.  MongoStore runs the same
statements against the MongoDB documents: SELECT/UPDATE/DELETE on one table
with simple WHERE conditions (col = ?, col = 'lit', IS [NOT] NULL, LIKE,
instr(col, ?) > 0, <, >, IN) and count(*)/GROUP BY, evaluated in Python
over rows converted to the SQLite shapes (ids as hex, times as ms, arrays
and objects as JSON text), which is plenty for test-sized stores.  A
statement it cannot translate skips the test, with the statement as reason.
"""

import atexit
import calendar
import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

try:
    import pymongo
    from bson import ObjectId
except ImportError:            # only needed for TEST_STORE=mongodb
    pymongo = None
    ObjectId = None

REPO = Path(__file__).resolve().parents[2]
MONGO_URI = os.environ.get("TEST_MONGODB_URI", "")
BACKEND = ("mongodb" if MONGO_URI or os.environ.get("TEST_STORE") == "mongodb"
           else "sqlite")
# CongoDB is the peer when no real server is given
IS_CONGO = BACKEND == "mongodb" and not MONGO_URI

SQLITE_ONLY = "SQLite-only: the test reads or writes the SQLite file itself"
CONGO_NO_UNIQUE = ("needs unique indexes, which CongoDB does not enforce "
                   "(runs against a real mongod: TEST_MONGODB_URI)")
CONGO_NO_TXN = ("needs multi-document transactions or change streams, which "
                "CongoDB lacks (runs against a real mongod: TEST_MONGODB_URI)")

TABLES = {"users": "users", "tickets": "tickets",
          "moderatorrequests": "moderatorrequests", "jobs": "jobs",
          "comments": "comments", "revoked_tokens": "revokedtokens",
          "login_attempts": "loginattempts"}
ID_FIELDS = {"_id", "createdBy", "assignedTo", "applicant", "reviewedBy",
             "author", "ticket"}
TIME_FIELDS = {"createdAt", "updatedAt", "lastSeen", "completedAt",
               "rejectedAt", "lastAssignedAt", "runAfter", "leaseUntil",
               "deadline", "windowStart", "lockedUntil", "expiresAt"}
JSON_FIELDS = {"skills", "relatedSkills", "triage", "assignment", "payload"}
BOOL_FIELDS = {"statsCounted", "triageFallback"}


# the SQLite columns a row always has (null when the document lacks them)
COLUMNS = {
    "users": ["_id", "username", "email", "password", "role", "skills",
              "status", "lastSeen", "createdAt", "updatedAt",
              "totalTicketsResolved", "averageResolutionTimeHours",
              "lastAssignedAt", "presenceChoice"],
    "tickets": ["_id", "title", "description", "status", "priority",
                "summary", "helpfulNotes", "relatedSkills", "createdBy",
                "assignedTo", "deadline", "assignment", "triage",
                "completedAt", "statsCounted", "createdAt", "updatedAt",
                "triageProvider", "triageFallback"],
    "moderatorrequests": ["_id", "applicant", "username", "email", "skills",
                          "status", "reviewedBy", "createdAt", "updatedAt",
                          "rejectedAt"],
    "jobs": ["_id", "kind", "payload", "state", "attempts", "maxAttempts",
             "runAfter", "leaseUntil", "lastError", "dedupeKey", "createdAt",
             "updatedAt"],
    "comments": ["_id", "ticket", "author", "text", "role", "createdAt"],
}



def decode_ticket_row(row):
    """A tickets row (SQLite's, or its translation here) with its JSON
    columns decoded."""
    row = dict(row)
    for col in ("relatedSkills", "triage", "assignment"):
        if isinstance(row.get(col), str):
            row[col] = json.loads(row[col])
    return row

class Unsupported(Exception):
    pass


# --- the CongoDB server of this session ------------------------------------

_congo = {"proc": None, "uri": None}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_congo():
    proc = _congo["proc"]
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_uri():
    """mongodb://host:port of the server under test (CongoDB is started on
    first use and stopped when pytest exits)."""
    if MONGO_URI:
        return MONGO_URI
    if _congo["uri"]:
        return _congo["uri"]
    if pymongo is None:
        raise RuntimeError("TEST_STORE=mongodb needs python3-pymongo "
                           "(scripts/deps.sh installs it)")
    mongo_dir = REPO / "t" / "mongo"
    if not (mongo_dir / "smartmongo").exists() \
            or not (mongo_dir / "node_modules").exists():
        subprocess.run([str(mongo_dir / "setup.sh")], check=True, timeout=600)
    node = shutil.which("node") or "/usr/bin/node"
    port = _free_port()
    log = open(os.environ.get("CONGO_LOG", "/tmp/congodb-%d.log" % port), "ab")
    proc = subprocess.Popen([node, str(mongo_dir / "congo.js"), str(port)],
                            stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    _congo["proc"] = proc
    atexit.register(_stop_congo)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("CongoDB exited with %s at start (log: %s)"
                               % (proc.returncode, log.name))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.05)
    else:
        raise RuntimeError("CongoDB did not listen on %d in 20 s" % port)
    _congo["uri"] = "mongodb://127.0.0.1:%d" % port
    return _congo["uri"]


def database_uri(base, dbname):
    """base (mongodb://hosts[/db][?opts]) pointed at database dbname."""
    rest, _, opts = base.partition("?")
    scheme, _, hosts = rest.partition("://")
    hosts = hosts.split("/", 1)[0]
    return "%s://%s/%s%s" % (scheme, hosts, dbname, "?" + opts if opts else "")


# --- conversions -------------------------------------------------------------

def _ms(dt):
    return calendar.timegm(dt.utctimetuple()) * 1000 + dt.microsecond // 1000


def _to_sql_value(key, v):
    if ObjectId is not None and isinstance(v, ObjectId):
        return str(v)
    if isinstance(v, datetime.datetime):
        return _ms(v)
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (list, dict)):
        return json.dumps(_plain(v), separators=(",", ":"))
    return v


def _plain(v):
    if ObjectId is not None and isinstance(v, ObjectId):
        return str(v)
    if isinstance(v, datetime.datetime):
        return _ms(v)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _to_mongo_value(key, v):
    if v is None:
        return None
    if key in ID_FIELDS and isinstance(v, str) and re.fullmatch(
            r"[0-9a-fA-F]{24}", v):
        return ObjectId(v)
    if key in TIME_FIELDS and isinstance(v, (int, float)):
        return datetime.datetime.utcfromtimestamp(v / 1000.0)
    if key in JSON_FIELDS and isinstance(v, str):
        return json.loads(v)
    if key in BOOL_FIELDS:
        return bool(v)
    return v


class Row:
    """Like sqlite3.Row: by index, by name, iterates values, dict(row)."""

    def __init__(self, cols, values):
        self._cols, self._values = list(cols), list(values)

    def keys(self):
        return list(self._cols)

    def __getitem__(self, k):
        if isinstance(k, (int, slice)):
            return self._values[k]
        return self._values[self._cols.index(k)]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __repr__(self):
        return "Row(%r)" % dict(zip(self._cols, self._values))


# --- the statement translator ----------------------------------------------

_COND_RE = [
    (re.compile(r"^(\w+)\s*(=|!=|<>|<=|>=|<|>)\s*\?$"), "op_arg"),
    (re.compile(r"^(\w+)\s*(=|!=|<>|<=|>=|<|>)\s*'([^']*)'$"), "op_lit"),
    (re.compile(r"^(\w+)\s*(=|!=|<>|<=|>=|<|>)\s*(-?\d+)$"), "op_num"),
    (re.compile(r"^(\w+)\s+is\s+null$", re.I), "null"),
    (re.compile(r"^(\w+)\s+is\s+not\s+null$", re.I), "notnull"),
    (re.compile(r"^(\w+)\s+like\s+\?$", re.I), "like"),
    (re.compile(r"^instr\((\w+),\s*\?\)\s*>\s*0$", re.I), "instr"),
    (re.compile(r"^(\w+)\s+in\s*\(([^)]*)\)$", re.I), "in"),
    (re.compile(r"^1$"), "true"),
]


def _compare(a, op, b):
    if op == "=":
        return a == b
    if op in ("!=", "<>"):
        return a != b
    if a is None or b is None:
        return False
    return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]


def _parse_conds(text, args):
    """[(predicate(row), ...)] from "a = ? AND b = 'x' ..."; consumes args."""
    preds = []
    if not text:
        return preds
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.I):
        part = part.strip()
        while part.startswith("(") and part.endswith(")"):
            part = part[1:-1].strip()
        for rx, kind in _COND_RE:
            m = rx.match(part)
            if not m:
                continue
            if kind == "op_arg":
                col, op, val = m.group(1), m.group(2), args.pop(0)
            elif kind == "op_lit":
                col, op, val = m.group(1), m.group(2), m.group(3)
            elif kind == "op_num":
                col, op, val = m.group(1), m.group(2), int(m.group(3))
            if kind in ("op_arg", "op_lit", "op_num"):
                preds.append(lambda r, c=col, o=op, v=val:
                             _compare(r.get(c), o, v))
            elif kind == "null":
                preds.append(lambda r, c=m.group(1): r.get(c) is None)
            elif kind == "notnull":
                preds.append(lambda r, c=m.group(1): r.get(c) is not None)
            elif kind == "like":
                pat = args.pop(0)
                rx2 = re.compile("^" + ".*".join(
                    re.escape(p).replace("_", ".") for p in pat.split("%"))
                    + "$", re.S | re.I)
                preds.append(lambda r, c=m.group(1), x=rx2:
                             r.get(c) is not None and bool(x.match(
                                 str(r.get(c)))))
            elif kind == "instr":
                needle = args.pop(0)
                preds.append(lambda r, c=m.group(1), n=needle:
                             r.get(c) is not None and n in str(r.get(c)))
            elif kind == "in":
                items = []
                for it in m.group(2).split(","):
                    it = it.strip()
                    if it == "?":
                        items.append(args.pop(0))
                    elif it.startswith("'"):
                        items.append(it.strip("'"))
                    else:
                        items.append(int(it))
                preds.append(lambda r, c=m.group(1), s=items: r.get(c) in s)
            elif kind == "true":
                pass
            break
        else:
            raise Unsupported(part)
    return preds


class MongoStore:
    """One Stack's database, seen through SQLite-shaped statements."""

    def __init__(self, uri):
        self.uri = uri
        self.client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000,
                                          tz_aware=False)
        self.db = self.client.get_default_database()

    def close(self):
        self.client.close()

    # rows in the SQLite shapes
    def rows(self, table):
        coll = TABLES.get(table)
        if coll is None:
            raise Unsupported("table %s" % table)
        if coll == "comments":
            out = []
            for t in self.db.tickets.find({}, {"comments": 1}):
                for c in t.get("comments") or []:
                    row = {k: None for k in COLUMNS["comments"]}
                    row.update((k, _to_sql_value(k, v)) for k, v in c.items())
                    row["ticket"] = str(t["_id"])
                    out.append(row)
            return out
        out = []
        for d in self.db[coll].find({}):
            row = {c: None for c in COLUMNS.get(table, ())}
            row.update((k, _to_sql_value(k, v)) for k, v in d.items())
            if table == "tickets":
                row["statsCounted"] = row["statsCounted"] or 0
                row["triageFallback"] = row["triageFallback"] or 0
            out.append(row)
        return out

    def insert(self, q, args):
        m = re.match(r"^insert\s+into\s+(\w+)\s*\(([^)]*)\)\s*values\s*"
                     r"\((.*)\)$", q, re.I)
        if not m or m.group(1) not in TABLES or m.group(1) == "comments":
            raise Unsupported(q)
        cols = [c.strip() for c in m.group(2).split(",")]
        vals = []
        for v in re.findall(r"\?|'[^']*'|-?\d+|null", m.group(3), re.I):
            if v == "?":
                vals.append(args.pop(0))
            elif v.startswith("'"):
                vals.append(v[1:-1])
            elif v.lower() == "null":
                vals.append(None)
            else:
                vals.append(int(v))
        if len(vals) != len(cols):
            raise Unsupported(q)
        doc = {c: _to_mongo_value(c, v) for c, v in zip(cols, vals)}
        self.db[TABLES[m.group(1)]].insert_one(doc)
        return []

    def sql(self, query, args=()):
        q = " ".join(query.split())
        args = list(args)
        if q.lower().startswith("insert"):
            return self.insert(q, args)
        m = re.match(r"^select\s+(.+?)\s+from\s+(\w+)(?:\s+(\w+))?"
                     r"(?:\s+where\s+(.+?))?(?:\s+group\s+by\s+(\w+))?"
                     r"(?:\s+order\s+by\s+(.+?))?(?:\s+limit\s+(\d+))?$",
                     q, re.I)
        if not m or (m.group(3) and m.group(3).lower() in ("join", "left")):
            raise Unsupported(query)
        cols_text, table, where = m.group(1), m.group(2), m.group(4)
        group, order = m.group(5), m.group(6)
        preds = _parse_conds(where, args)
        rows = [r for r in self.rows(table) if all(p(r) for p in preds)]
        if order:
            for term in reversed(order.split(",")):
                parts = term.split()
                desc = len(parts) > 1 and parts[1].lower() == "desc"
                rows.sort(key=lambda r, c=parts[0]: (r.get(c) is None,
                                                     r.get(c) or 0),
                          reverse=desc)
        cols = [c.strip() for c in cols_text.split(",")]
        if group:
            counts = {}
            for r in rows:
                counts[r.get(group)] = counts.get(r.get(group), 0) + 1
            return [Row(cols, [k if c == group else n for c in cols])
                    for k, n in counts.items()]
        if cols == ["count(*)"]:
            return [Row(cols, [len(rows)])]
        if m.group(7):
            rows = rows[:int(m.group(7))]
        if cols == ["*"]:
            return [Row(list(r.keys()), list(r.values())) for r in rows]
        for c in cols:
            if not re.fullmatch(r"\w+", c):
                raise Unsupported(query)
        return [Row(cols, [r.get(c) for c in cols]) for r in rows]

    def sql_write(self, query, args=()):
        q = " ".join(query.split())
        args = list(args)
        m = re.match(r"^update\s+(\w+)\s+set\s+(.+?)(?:\s+where\s+(.+))?$",
                     q, re.I)
        if m:
            table, sets_text, where = m.groups()
            if table not in TABLES or table == "comments":
                raise Unsupported(query)
            sets = []
            for part in sets_text.split(","):
                part = part.strip()
                a = re.match(r"^(\w+)\s*=\s*\?$", part)
                b = re.match(r"^(\w+)\s*=\s*'([^']*)'$", part)
                c = re.match(r"^(\w+)\s*=\s*(\w+)\s*([-+])\s*\?$", part)
                n = re.match(r"^(\w+)\s*=\s*(null|-?\d+)$", part, re.I)
                if a:
                    val = args.pop(0)
                    sets.append((a.group(1), lambda r, v=val: v))
                elif b:
                    sets.append((b.group(1), lambda r, v=b.group(2): v))
                elif c:
                    val = args.pop(0)
                    sign = 1 if c.group(3) == "+" else -1
                    sets.append((c.group(1), lambda r, src=c.group(2), v=val,
                                 s=sign: (r.get(src) or 0) + s * v))
                elif n:
                    v = None if n.group(2).lower() == "null" else int(
                        n.group(2))
                    sets.append((n.group(1), lambda r, x=v: x))
                else:
                    raise Unsupported(query)
            preds = _parse_conds(where, args)
            coll = self.db[TABLES[table]]
            changed = 0
            for r in self.rows(table):
                if not all(p(r) for p in preds):
                    continue
                upd = {k: _to_mongo_value(k, f(r)) for k, f in sets}
                coll.update_one({"_id": ObjectId(r["_id"])}, {"$set": upd})
                changed += 1
            return changed
        m = re.match(r"^delete\s+from\s+(\w+)(?:\s+where\s+(.+))?$", q, re.I)
        if m:
            table, where = m.groups()
            if table not in TABLES or table == "comments":
                raise Unsupported(query)
            preds = _parse_conds(where, args)
            coll = self.db[TABLES[table]]
            changed = 0
            for r in self.rows(table):
                if all(p(r) for p in preds):
                    coll.delete_one({"_id": ObjectId(r["_id"])})
                    changed += 1
            return changed
        raise Unsupported(query)

    # --- the Stack helpers' MongoDB versions --------------------------------

    def jobs(self, kind=None, containing=None):
        rows = []
        for r in sorted(self.rows("jobs"),
                        key=lambda r: (r.get("createdAt") or 0, r["_id"])):
            if kind is not None and r.get("kind") != kind:
                continue
            if containing is not None and containing not in (
                    r.get("payload") or ""):
                continue
            r = dict(r)
            r["payload"] = json.loads(r["payload"]) if r.get("payload") \
                else None
            rows.append(r)
        return rows

    def ticket_row(self, ticket_id):
        rows = [r for r in self.rows("tickets") if r["_id"] == ticket_id]
        return decode_ticket_row(rows[0]) if rows else None

    def job_states(self):
        out = {}
        for d in self.db.jobs.find({}, {"state": 1}):
            out[d.get("state")] = out.get(d.get("state"), 0) + 1
        return out

    def user_count(self):
        return self.db.users.count_documents({})

    def assign(self, ticket_id, user_id):
        r = self.db.tickets.update_one({"_id": ObjectId(ticket_id)},
                                       {"$set": {"assignedTo":
                                                 ObjectId(user_id)}})
        return r.matched_count


def skip_unsupported(e):
    pytest.skip("%s: no MongoDB translation of %s" % (SQLITE_ONLY, e))

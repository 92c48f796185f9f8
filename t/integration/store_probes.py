"""The integration harness's view into the store (see conftest.py).

Backend switch: TEST_STORE=mongodb runs the suite against a MongoDB-wire
server -- the one in TEST_MONGODB_URI (a real mongod) or, without it, a
CongoDB process started once per pytest session (t/mongo/congo.js, the CI
peer: no mongod exists in Debian).  Each Stack gets a database of its own.

Probes.  Tests look into the store, and set up situations in it, only
through the named probes of a Probe (stack.probe), each written for both
backends: SqliteProbe (sqlite3 on the store file) and MongoProbe (pymongo
on the stack's database).  Reads:

  user(id), ticket(id), modreq(id), job(id)   one record, or None
  users/tickets/modreqs(**equals)             the records whose fields
                                              equal those values
  comments(ticket_id)                         a ticket's comments
  count(collection, **equals)                 how many records match
  jobs(kind=, containing=), job_states()      the job queue
  snapshot(skip=())                           every record of every table
                                              or collection, as text
  history(ticket_id)                          a ticket's history entries
                                              in write order: {action,
                                              actor, from, to, staffOnly,
                                              explanation, at}
  canned(**equals)                            canned responses
  add_history(ticket_id, action, ...)         an entry as another
                                              feature's write adds it
  reset_token(user_id)                        the user's password reset
                                              {tokenHash, expiresAt}, or
                                              None; session_epoch(user_id)

Writes (situations the API cannot make, or not quickly):

  set_fields(collection, id, **fields)  e.g. backdate createdAt
  assign(ticket_id, user_id)            the runner's assignment, by hand
  delete(collection, id)                a record gone behind the API's back
  expire_reset(user_id)                 the user's reset token expired
  insert(collection, **fields)          e.g. a user the original app wrote

A record is a dict with the field names the store documents (README
"Store": camelCase, the original app's): ids as 24 hex digits, times as
integer milliseconds, arrays and objects decoded (skills a list, payload
a dict), flags as bools; a field a MongoDB document lacks reads as None.
Collections are named as in MongoDB and the SQLite schema: users,
tickets, comments, moderatorrequests, jobs.  Records come in (createdAt,
_id) order.  A probe for a situation only one backend can make skips the
test on the other, with the reason printed (break_revocations()).
"""

import atexit
import calendar
import collections
import datetime
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
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

COLLECTIONS = ("users", "tickets", "comments", "moderatorrequests", "jobs")
# MongoDB spells these two SQLite tables without the underscore
MONGO_NAMES = {"revoked_tokens": "revokedtokens",
               "login_attempts": "loginattempts"}
ID_FIELDS = {"_id", "createdBy", "assignedTo", "applicant", "reviewedBy",
             "author", "ticket"}
TIME_FIELDS = {"createdAt", "updatedAt", "lastSeen", "completedAt",
               "rejectedAt", "lastAssignedAt", "runAfter", "leaseUntil",
               "deadline", "windowStart", "lockedUntil", "expiresAt", "at",
               "firstResponseDue", "firstResponseWarn", "resolutionWarn",
               "firstResponseAt", "slaBreachedAt"}
JSON_FIELDS = {"skills", "relatedSkills", "triage", "assignment", "payload"}
BOOL_FIELDS = {"statsCounted", "triageFallback", "internal"}


def skip_printed(what, reason):
    """Skip with the reason printed on both streams, so that it shows in
    make test's output even without -rs."""
    print("SKIP %s: %s" % (what, reason), file=sys.stderr)
    print("SKIP %s: %s" % (what, reason))
    pytest.skip(reason)


class Record(dict):
    """One store record; a field it lacks reads as None (a MongoDB
    document leaves out what SQLite stores as NULL)."""

    def __missing__(self, key):
        return None


def _check_name(name):
    if not re.fullmatch(r"[A-Za-z_]\w*", name):
        raise ValueError("not a field or collection name: %r" % name)
    return name


def _order(records):
    return sorted(records, key=lambda r: (r["createdAt"] is None,
                                          r["createdAt"] or 0, r["_id"]))


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


def open_probe(store):
    """The probe for a stack's store: a MongoDB URI or an SQLite file."""
    if str(store).startswith("mongodb"):
        return MongoProbe(str(store))
    return SqliteProbe(store)


# --- the probes, backend-independent ----------------------------------------

class Probe:
    """The named probes; a backend supplies find, set_fields, delete,
    insert, jobs, snapshot and close."""

    def _one(self, collection, record_id):
        found = self.find(collection, _id=record_id)
        return found[0] if found else None

    def user(self, user_id):
        return self._one("users", user_id)

    def ticket(self, ticket_id):
        return self._one("tickets", ticket_id)

    def modreq(self, request_id):
        return self._one("moderatorrequests", request_id)

    def job(self, job_id):
        return self._one("jobs", job_id)

    def users(self, **equals):
        return self.find("users", **equals)

    def tickets(self, **equals):
        return self.find("tickets", **equals)

    def modreqs(self, **equals):
        return self.find("moderatorrequests", **equals)

    def comments(self, ticket_id):
        return self.find("comments", ticket=ticket_id)

    def count(self, collection, **equals):
        return len(self.find(collection, **equals))

    def canned(self, **equals):
        return self.find("cannedresponses", **equals)

    def job_states(self):
        """{state: count} over every job in the store."""
        return dict(collections.Counter(j["state"]
                                        for j in self.find("jobs")))

    def assign(self, ticket_id, user_id):
        """Assign a ticket in the store (the job runner's work, by hand)."""
        assert self.set_fields("tickets", ticket_id,
                               assignedTo=user_id) == 1, ticket_id

    def reset_token(self, user_id):
        """{tokenHash, expiresAt} of the user's outstanding password
        reset, or None."""
        raise NotImplementedError

    def expire_reset(self, user_id):
        """Move the user's reset token's expiry one second into the past."""
        raise NotImplementedError

    def session_epoch(self, user_id):
        """The user's session epoch (0 when never changed)."""
        return self.user(user_id)["sessionEpoch"] or 0

    def break_revocations(self):
        """Make the revoked-token check fail (a store error)."""
        raise NotImplementedError

    def repair_revocations(self):
        raise NotImplementedError


def canonical(records):
    """Records as a sorted list of JSON texts (for comparing snapshots)."""
    return sorted(json.dumps(r, sort_keys=True, default=repr)
                  for r in records)


# --- SQLite ------------------------------------------------------------------

def _sqlite_value(v):
    if isinstance(v, (list, dict)):
        return json.dumps(v, separators=(",", ":"))
    if isinstance(v, bool):
        return int(v)
    return v


def _from_sqlite(row):
    r = Record(dict(row))
    for k in JSON_FIELDS & set(r):
        if isinstance(r[k], str):
            r[k] = json.loads(r[k])
    for k in BOOL_FIELDS & set(r):
        if r[k] is not None:
            r[k] = bool(r[k])
    return r


class SqliteProbe(Probe):
    """The probes on the SQLite file (one short connection per call: the
    store is written by nginx's workers and ticketd meanwhile)."""

    def __init__(self, path):
        self.target = str(path)

    def close(self):
        pass

    def _run(self, query, args=()):
        """(rows, rowcount) of one statement, committed."""
        db = sqlite3.connect(self.target, timeout=10)
        try:
            db.row_factory = sqlite3.Row
            cur = db.execute(query, [_sqlite_value(a) for a in args])
            rows = cur.fetchall()
            db.commit()
            return rows, cur.rowcount
        finally:
            db.close()

    def find(self, collection, **equals):
        # IS: null-safe, so field=None finds the records without it
        where = "".join(" AND %s IS ?" % _check_name(k) for k in equals)
        rows, _ = self._run("SELECT * FROM %s WHERE 1%s"
                            " ORDER BY createdAt, _id"
                            % (_check_name(collection), where),
                            list(equals.values()))
        return [_from_sqlite(r) for r in rows]

    def history(self, ticket_id):
        rows, _ = self._run("SELECT * FROM history WHERE ticket = ?"
                            " ORDER BY seq", (ticket_id,))
        out = []
        for r in rows:
            r = dict(r)
            out.append(Record(
                action=r["action"], actor=r["actor"], at=r["at"],
                staffOnly=bool(r["staffOnly"]),
                explanation=(json.loads(r["explanation"])
                             if r["explanation"] else None),
                **{"from": json.loads(r["fromValue"]),
                   "to": json.loads(r["toValue"])}))
        return out

    def add_history(self, ticket_id, action, actor=None, staffOnly=False,
                    explanation=None, at=None, **values):
        """A history entry as another feature's write would add it."""
        import secrets
        self._run("INSERT INTO history (_id, ticket, at, actor, action,"
                  " fromValue, toValue, explanation, staffOnly)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  (secrets.token_hex(12), ticket_id,
                   at or int(time.time() * 1000), actor, action,
                   json.dumps(values.get("from")), json.dumps(values.get("to")),
                   json.dumps(explanation) if explanation is not None
                   else None, int(staffOnly)))

    def jobs(self, kind=None, containing=None):
        """Jobs (payload decoded), of one kind and/or whose payload's text
        holds a string."""
        query, args = "SELECT * FROM jobs WHERE 1", []
        if kind is not None:
            query += " AND kind = ?"
            args.append(kind)
        if containing is not None:
            query += " AND instr(payload, ?) > 0"
            args.append(containing)
        rows, _ = self._run(query + " ORDER BY createdAt, _id", args)
        return [_from_sqlite(r) for r in rows]

    def set_fields(self, collection, record_id, **fields):
        """Set fields of one record; returns how many records changed."""
        sets = ", ".join("%s = ?" % _check_name(k) for k in fields)
        _, n = self._run("UPDATE %s SET %s WHERE _id = ?"
                         % (_check_name(collection), sets),
                         list(fields.values()) + [record_id])
        return n

    def delete(self, collection, record_id):
        _, n = self._run("DELETE FROM %s WHERE _id = ?"
                         % _check_name(collection), (record_id,))
        return n

    def insert(self, collection, **fields):
        self._run("INSERT INTO %s (%s) VALUES (%s)" % (
            _check_name(collection),
            ", ".join(_check_name(k) for k in fields),
            ", ".join("?" * len(fields))), list(fields.values()))

    def snapshot(self, skip=()):
        """{table: canonical rows} over every table but those in skip."""
        tables, _ = self._run("SELECT name FROM sqlite_master WHERE type ="
                              " 'table' AND name NOT LIKE 'sqlite_%'")
        out = {}
        for (t,) in tables:
            if t not in skip:
                rows, _ = self._run("SELECT * FROM %s" % _check_name(t))
                out[t] = canonical(dict(r) for r in rows)
        return out

    def reset_token(self, user_id):
        u = self.user(user_id)
        if u is None or u["resetTokenHash"] is None:
            return None
        return {"tokenHash": u["resetTokenHash"],
                "expiresAt": u["resetExpiresAt"]}

    def expire_reset(self, user_id):
        _, n = self._run("UPDATE users SET resetExpiresAt ="
                         " CAST(strftime('%s', 'now') AS INTEGER) * 1000"
                         " - 1000 WHERE _id = ?", (user_id,))
        assert n == 1, user_id

    def break_revocations(self):
        self._run("ALTER TABLE revoked_tokens RENAME TO revoked_gone")

    def repair_revocations(self):
        self._run("ALTER TABLE revoked_gone RENAME TO revoked_tokens")


# --- MongoDB -----------------------------------------------------------------

def _ms(dt):
    return calendar.timegm(dt.utctimetuple()) * 1000 + dt.microsecond // 1000


def _plain(v):
    """A BSON value in the record shapes (ids hex, times ms)."""
    if ObjectId is not None and isinstance(v, ObjectId):
        return str(v)
    if isinstance(v, datetime.datetime):
        return _ms(v)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _to_mongo(key, v):
    """A record value as the documents hold it."""
    if v is None:
        return None
    if key in ID_FIELDS and isinstance(v, str) and re.fullmatch(
            r"[0-9a-fA-F]{24}", v):
        return ObjectId(v)
    if key in TIME_FIELDS and isinstance(v, (int, float)):
        return datetime.datetime.fromtimestamp(
            v / 1000.0, datetime.timezone.utc).replace(tzinfo=None)
    if key in BOOL_FIELDS:
        return bool(v)
    return v


def _oid(record_id):
    """record_id as an ObjectId, or None when it cannot be one (then no
    document has it)."""
    if isinstance(record_id, str) and re.fullmatch(r"[0-9a-fA-F]{24}",
                                                   record_id):
        return ObjectId(record_id)
    return None


class MongoProbe(Probe):
    """The probes on one stack's MongoDB database.  Tickets embed their
    comments; a comment record gets its ticket's id as "ticket", like the
    SQLite column."""

    def __init__(self, uri):
        self.target = uri
        self.client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000,
                                          tz_aware=False)
        # the raw database, for the tests of MongoDB-only behaviour
        self.db = self.client.get_default_database()

    def close(self):
        self.client.close()

    def _docs(self, collection, record_id=None):
        query = {}
        if record_id is not None:
            query = {"_id": _oid(record_id)}
            if query["_id"] is None:
                return []
        return [Record(_plain(d)) for d in
                self.db[_check_name(collection)].find(query)]

    def find(self, collection, **equals):
        if collection == "comments":
            records = []
            for t in self._docs("tickets", equals.get("ticket")):
                for c in t["comments"] or []:
                    records.append(Record(c, ticket=t["_id"]))
        else:
            records = self._docs(collection, equals.get("_id"))
        return _order(r for r in records
                      if all(r[k] == v for k, v in equals.items()))

    def jobs(self, kind=None, containing=None):
        """Jobs, of one kind and/or whose payload's JSON text holds a
        string."""
        return [j for j in self.find("jobs") if
                (kind is None or j["kind"] == kind) and
                (containing is None or containing in json.dumps(
                    j["payload"], separators=(",", ":"),
                    ensure_ascii=False))]

    def add_history(self, ticket_id, action, actor=None, staffOnly=False,
                    explanation=None, at=None, **values):
        doc = {"_id": ObjectId(), "ticket": _oid(ticket_id),
               "at": _to_mongo("at", at or int(time.time() * 1000)),
               "actor": _oid(actor) if actor else None, "action": action,
               "from": values.get("from"), "to": values.get("to"),
               "staffOnly": bool(staffOnly)}
        if explanation is not None:
            doc["explanation"] = explanation
        self.db["tickethistory"].insert_one(doc)

    def history(self, ticket_id):
        """Entries delivered to "tickethistory" and any still in the
        ticket's outbox (a crashed writer's)."""
        oid = _oid(ticket_id)
        docs = list(self.db["tickethistory"].find({"ticket": oid}))
        t = self.db["tickets"].find_one({"_id": oid}) or {}
        seen = {d["_id"] for d in docs}
        docs += [d for d in t.get("pendingHistory") or []
                 if d["_id"] not in seen]
        docs.sort(key=lambda d: (d["at"], d["_id"]))
        return [Record(action=d["action"], actor=_plain(d.get("actor")),
                       at=_plain(d["at"]), staffOnly=bool(d["staffOnly"]),
                       explanation=_plain(d.get("explanation")),
                       **{"from": _plain(d.get("from")),
                          "to": _plain(d.get("to"))})
                for d in docs]

    def _collection(self, collection):
        if collection == "comments":
            raise ValueError("comments live inside their ticket on MongoDB:"
                             " no probe writes them")
        return self.db[_check_name(collection)]

    def set_fields(self, collection, record_id, **fields):
        r = self._collection(collection).update_one(
            {"_id": _oid(record_id)},
            {"$set": {k: _to_mongo(k, v) for k, v in fields.items()}})
        return r.matched_count

    def delete(self, collection, record_id):
        return self._collection(collection).delete_one(
            {"_id": _oid(record_id)}).deleted_count

    def insert(self, collection, **fields):
        self._collection(collection).insert_one(
            {k: _to_mongo(k, v) for k, v in fields.items()})

    def snapshot(self, skip=()):
        """{collection: canonical documents} over every collection but
        those in skip (comments are part of their tickets)."""
        skip = {MONGO_NAMES.get(s, s) for s in skip}
        return {c: canonical(_plain(d) for d in self.db[c].find({}))
                for c in self.db.list_collection_names()
                if c not in skip and not c.startswith("system.")}

    def reset_token(self, user_id):
        u = self.user(user_id)
        return (u["passwordReset"] or None) if u is not None else None

    def expire_reset(self, user_id):
        past = datetime.datetime.utcnow() - datetime.timedelta(seconds=1)
        r = self.db.users.update_one({"_id": _oid(user_id)},
                                     {"$set": {"passwordReset.expiresAt":
                                               past}})
        assert r.matched_count == 1, user_id

    def break_revocations(self):
        skip_printed("break_revocations",
                     "SQLite-only: a store error is made by renaming the "
                     "revoked_tokens table; on MongoDB a missing collection "
                     "reads as empty, not as an error")

    repair_revocations = break_revocations

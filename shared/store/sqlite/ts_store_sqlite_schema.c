/*
 * ts_store_sqlite_schema: the SQLite backend's schema and its migrations.
 *
 * Schema: tables and columns carry the original MongoDB field names, times
 * are INTEGER milliseconds, arrays are JSON text.  Migrations are numbered
 * by position in ts_sqlite_migrations[]; PRAGMA user_version records how
 * many ran.  Never edit a shipped migration: append a new one.
 */

#include <stdio.h>
#include <sqlite3.h>

#include "ts_store_sqlite.h"

static const char *ts_sqlite_migrations[] = {
    /* 1: the initial schema */
    "CREATE TABLE users ("
    "  _id TEXT PRIMARY KEY,"
    "  username TEXT NOT NULL,"
    "  email TEXT NOT NULL,"
    "  password TEXT NOT NULL,"
    "  role TEXT NOT NULL DEFAULT 'user'"
    "    CHECK (role IN ('user','moderator','admin')),"
    "  skills TEXT NOT NULL DEFAULT '[]',"
    "  status TEXT NOT NULL DEFAULT 'offline'"
    "    CHECK (status IN ('online','offline','dnd')),"
    "  lastSeen INTEGER,"
    "  createdAt INTEGER NOT NULL,"
    "  updatedAt INTEGER NOT NULL,"
    "  totalTicketsResolved INTEGER NOT NULL DEFAULT 0,"
    "  averageResolutionTimeHours REAL NOT NULL DEFAULT 24,"
    "  lastAssignedAt INTEGER);"
    "CREATE UNIQUE INDEX users_email ON users(email COLLATE NOCASE);"
    "CREATE UNIQUE INDEX users_username ON users(username COLLATE NOCASE);"
    "CREATE INDEX users_role ON users(role, lastAssignedAt);"

    "CREATE TABLE tickets ("
    "  _id TEXT PRIMARY KEY,"
    "  title TEXT NOT NULL,"
    "  description TEXT NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'To-Do'"
    "    CHECK (status IN ('To-Do','In Progress','Completed')),"
    "  priority TEXT CHECK (priority IN ('Low','Medium','High')),"
    "  summary TEXT,"
    "  helpfulNotes TEXT,"
    "  relatedSkills TEXT NOT NULL DEFAULT '[]',"
    "  createdBy TEXT NOT NULL REFERENCES users(_id),"
    "  assignedTo TEXT REFERENCES users(_id),"
    "  deadline INTEGER,"
    "  assignment TEXT,"
    "  triage TEXT,"
    "  completedAt INTEGER,"
    "  statsCounted INTEGER NOT NULL DEFAULT 0,"
    "  createdAt INTEGER NOT NULL,"
    "  updatedAt INTEGER NOT NULL);"
    "CREATE INDEX tickets_updated ON tickets(updatedAt DESC, _id);"
    "CREATE INDEX tickets_created_by ON tickets(createdBy, updatedAt DESC);"
    "CREATE INDEX tickets_assigned ON tickets(assignedTo, updatedAt DESC);"
    "CREATE INDEX tickets_assigned_status ON tickets(assignedTo, status);"
    "CREATE INDEX tickets_status ON tickets(status, updatedAt DESC);"
    "CREATE INDEX tickets_priority ON tickets(priority, updatedAt DESC);"

    "CREATE TABLE comments ("
    "  _id TEXT PRIMARY KEY,"
    "  ticket TEXT NOT NULL REFERENCES tickets(_id) ON DELETE CASCADE,"
    "  author TEXT NOT NULL REFERENCES users(_id),"
    "  text TEXT NOT NULL,"
    "  role TEXT NOT NULL,"
    "  createdAt INTEGER NOT NULL);"
    "CREATE INDEX comments_ticket ON comments(ticket, createdAt);"

    "CREATE TABLE moderatorrequests ("
    "  _id TEXT PRIMARY KEY,"
    "  applicant TEXT NOT NULL REFERENCES users(_id),"
    "  username TEXT NOT NULL,"
    "  email TEXT NOT NULL,"
    "  skills TEXT NOT NULL DEFAULT '[]',"
    "  status TEXT NOT NULL DEFAULT 'pending'"
    "    CHECK (status IN ('pending','accepted','rejected')),"
    "  reviewedBy TEXT REFERENCES users(_id),"
    "  createdAt INTEGER NOT NULL,"
    "  updatedAt INTEGER NOT NULL,"
    "  rejectedAt INTEGER);"
    "CREATE UNIQUE INDEX modreq_one_pending ON moderatorrequests(applicant)"
    "  WHERE status = 'pending';"
    "CREATE INDEX modreq_status ON moderatorrequests(status, createdAt DESC);"
    "CREATE INDEX modreq_applicant"
    "  ON moderatorrequests(applicant, createdAt DESC);"

    "CREATE TABLE jobs ("
    "  _id TEXT PRIMARY KEY,"
    "  kind TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'pending'"
    "    CHECK (state IN ('pending','running','done','dead')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  maxAttempts INTEGER NOT NULL DEFAULT 5,"
    "  runAfter INTEGER NOT NULL,"
    "  leaseUntil INTEGER,"
    "  lastError TEXT,"
    "  dedupeKey TEXT,"
    "  createdAt INTEGER NOT NULL,"
    "  updatedAt INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX jobs_dedupe ON jobs(dedupeKey)"
    "  WHERE dedupeKey IS NOT NULL;"
    "CREATE INDEX jobs_due ON jobs(state, runAfter);"

    "CREATE TABLE revoked_tokens ("
    "  sig TEXT PRIMARY KEY,"
    "  expiresAt INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX revoked_tokens_exp ON revoked_tokens(expiresAt);"

    "CREATE TABLE login_attempts ("
    "  identifier TEXT PRIMARY KEY,"
    "  failures INTEGER NOT NULL,"
    "  windowStart INTEGER NOT NULL,"
    "  lockedUntil INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;",

    /*
     * 2: O(1) totals for lists and analytics.  ticket_counts holds one row
     * per key -- 'all', 's:<status>', 'p:<priority>', 'sp:<status>|<prio>',
     * 'tp:<triage provider>', 'tf' (fallbacks) -- kept by triggers, so
     * every writer (module, daemon, a bulk import) keeps them right.
     */
    "CREATE TABLE ticket_counts ("
    "  key TEXT PRIMARY KEY,"
    "  n INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "ALTER TABLE tickets ADD COLUMN triageProvider TEXT;"
    "ALTER TABLE tickets ADD COLUMN triageFallback INTEGER NOT NULL"
    "  DEFAULT 0;"
    "CREATE INDEX tickets_created ON tickets(createdAt);"
    "CREATE INDEX tickets_completed ON tickets(completedAt)"
    "  WHERE completedAt IS NOT NULL;"
    "CREATE INDEX comments_author ON comments(author);"

    "CREATE TRIGGER tickets_counts_insert AFTER INSERT ON tickets BEGIN"
    "  INSERT OR IGNORE INTO ticket_counts (key) VALUES ('all'),"
    "    ('s:' || NEW.status), ('p:' || coalesce(NEW.priority, '')),"
    "    ('sp:' || NEW.status || '|' || coalesce(NEW.priority, ''));"
    "  UPDATE ticket_counts SET n = n + 1 WHERE key IN ('all',"
    "    's:' || NEW.status, 'p:' || coalesce(NEW.priority, ''),"
    "    'sp:' || NEW.status || '|' || coalesce(NEW.priority, ''));"
    "  INSERT OR IGNORE INTO ticket_counts (key)"
    "    SELECT 'tp:' || NEW.triageProvider"
    "    WHERE NEW.triageProvider IS NOT NULL;"
    "  UPDATE ticket_counts SET n = n + 1"
    "    WHERE key = 'tp:' || NEW.triageProvider;"
    "END;"

    "CREATE TRIGGER tickets_counts_delete AFTER DELETE ON tickets BEGIN"
    "  UPDATE ticket_counts SET n = n - 1 WHERE key IN ('all',"
    "    's:' || OLD.status, 'p:' || coalesce(OLD.priority, ''),"
    "    'sp:' || OLD.status || '|' || coalesce(OLD.priority, ''),"
    "    'tp:' || OLD.triageProvider);"
    "  UPDATE ticket_counts SET n = n - 1"
    "    WHERE key = 'tf' AND OLD.triageFallback;"
    "END;"

    "CREATE TRIGGER tickets_counts_update"
    "  AFTER UPDATE OF status, priority ON tickets"
    "  WHEN OLD.status IS NOT NEW.status"
    "    OR OLD.priority IS NOT NEW.priority BEGIN"
    "  UPDATE ticket_counts SET n = n - 1 WHERE key IN ("
    "    's:' || OLD.status, 'p:' || coalesce(OLD.priority, ''),"
    "    'sp:' || OLD.status || '|' || coalesce(OLD.priority, ''));"
    "  INSERT OR IGNORE INTO ticket_counts (key) VALUES"
    "    ('s:' || NEW.status), ('p:' || coalesce(NEW.priority, '')),"
    "    ('sp:' || NEW.status || '|' || coalesce(NEW.priority, ''));"
    "  UPDATE ticket_counts SET n = n + 1 WHERE key IN ("
    "    's:' || NEW.status, 'p:' || coalesce(NEW.priority, ''),"
    "    'sp:' || NEW.status || '|' || coalesce(NEW.priority, ''));"
    "END;"

    "CREATE TRIGGER tickets_counts_triage"
    "  AFTER UPDATE OF triageProvider, triageFallback ON tickets"
    "  WHEN OLD.triageProvider IS NOT NEW.triageProvider"
    "    OR OLD.triageFallback IS NOT NEW.triageFallback BEGIN"
    "  UPDATE ticket_counts SET n = n - 1"
    "    WHERE key = 'tp:' || OLD.triageProvider;"
    "  UPDATE ticket_counts SET n = n - 1 WHERE key = 'tf' AND OLD.triageFallback;"
    "  INSERT OR IGNORE INTO ticket_counts (key)"
    "    SELECT 'tp:' || NEW.triageProvider"
    "    WHERE NEW.triageProvider IS NOT NULL"
    "    UNION ALL SELECT 'tf' WHERE NEW.triageFallback;"
    "  UPDATE ticket_counts SET n = n + 1"
    "    WHERE key = 'tp:' || NEW.triageProvider;"
    "  UPDATE ticket_counts SET n = n + 1 WHERE key = 'tf' AND NEW.triageFallback;"
    "END;"

    /* tickets written before this migration */
    "INSERT INTO ticket_counts (key, n)"
    "  SELECT 'all', count(*) FROM tickets"
    "  UNION ALL SELECT 's:' || status, count(*) FROM tickets GROUP BY status"
    "  UNION ALL SELECT 'p:' || coalesce(priority, ''), count(*) FROM tickets"
    "    GROUP BY priority"
    "  UNION ALL SELECT 'sp:' || status || '|' || coalesce(priority, ''),"
    "    count(*) FROM tickets GROUP BY status, priority;",

    /*
     * 3: list indexes end in (updatedAt DESC, _id), the full sort key of
     * every list, so a page is read off the index with no sort step.
     */
    "DROP INDEX tickets_created_by;"
    "DROP INDEX tickets_assigned;"
    "DROP INDEX tickets_status;"
    "DROP INDEX tickets_priority;"
    "CREATE INDEX tickets_created_by"
    "  ON tickets(createdBy, updatedAt DESC, _id);"
    "CREATE INDEX tickets_assigned"
    "  ON tickets(assignedTo, updatedAt DESC, _id);"
    "CREATE INDEX tickets_status ON tickets(status, updatedAt DESC, _id);"
    "CREATE INDEX tickets_priority ON tickets(priority, updatedAt DESC, _id);",

    /* 4: per-creator totals ('u:<user id>'), so a user's own list is
     * counted in O(1) like the admin's */
    "CREATE TRIGGER tickets_counts_creator_insert AFTER INSERT ON tickets"
    "  BEGIN"
    "  INSERT OR IGNORE INTO ticket_counts (key) VALUES ('u:' || NEW.createdBy);"
    "  UPDATE ticket_counts SET n = n + 1 WHERE key = 'u:' || NEW.createdBy;"
    "END;"
    "CREATE TRIGGER tickets_counts_creator_delete AFTER DELETE ON tickets"
    "  BEGIN"
    "  UPDATE ticket_counts SET n = n - 1 WHERE key = 'u:' || OLD.createdBy;"
    "END;"
    "CREATE TRIGGER tickets_counts_creator_update"
    "  AFTER UPDATE OF createdBy ON tickets"
    "  WHEN OLD.createdBy IS NOT NEW.createdBy BEGIN"
    "  UPDATE ticket_counts SET n = n - 1 WHERE key = 'u:' || OLD.createdBy;"
    "  INSERT OR IGNORE INTO ticket_counts (key) VALUES ('u:' || NEW.createdBy);"
    "  UPDATE ticket_counts SET n = n + 1 WHERE key = 'u:' || NEW.createdBy;"
    "END;"
    "INSERT INTO ticket_counts (key, n)"
    "  SELECT 'u:' || createdBy, count(*) FROM tickets GROUP BY createdBy;",

    /* 5: the job runner: expired leases and the admins' job lists */
    "CREATE INDEX jobs_lease ON jobs(state, leaseUntil);"
    "CREATE INDEX jobs_state_created ON jobs(state, createdAt DESC, _id);"
    "CREATE INDEX jobs_created ON jobs(createdAt DESC, _id);"
    "CREATE INDEX jobs_due_kind ON jobs(state, kind, runAfter);",

    /* 6: a presence the user chose (dnd, offline) outlives sockets */
    "ALTER TABLE users ADD COLUMN presenceChoice TEXT"
    "  CHECK (presenceChoice IN ('dnd', 'offline'));",

    /* 7: tickets' history (written in the changes' own transactions;
     * seq is the write order) and the staff's canned responses */
    "CREATE TABLE history ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  _id TEXT NOT NULL UNIQUE,"
    "  ticket TEXT NOT NULL REFERENCES tickets(_id) ON DELETE CASCADE,"
    "  at INTEGER NOT NULL,"
    "  actor TEXT,"
    "  action TEXT NOT NULL,"
    "  fromValue TEXT NOT NULL DEFAULT 'null',"
    "  toValue TEXT NOT NULL DEFAULT 'null',"
    "  explanation TEXT,"
    "  staffOnly INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX history_ticket ON history(ticket, seq);"
    "CREATE TABLE cannedresponses ("
    "  _id TEXT PRIMARY KEY,"
    "  title TEXT NOT NULL,"
    "  body TEXT NOT NULL,"
    "  owner TEXT NOT NULL,"
    "  createdAt INTEGER NOT NULL,"
    "  updatedAt INTEGER NOT NULL);"
    "CREATE INDEX cannedresponses_title"
    "  ON cannedresponses(title COLLATE NOCASE, _id);",

    /* 8: internal (staff-only) notes, and when staff first answered in
     * public (the first response the SLA measures) */
    "ALTER TABLE comments ADD COLUMN internal INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tickets ADD COLUMN firstResponseAt INTEGER;"
    "UPDATE tickets SET firstResponseAt = (SELECT min(k.createdAt)"
    "  FROM comments k WHERE k.ticket = tickets._id"
    "  AND k.author != tickets.createdBy);",

    /* 9: accounts -- the session epoch tokens carry ("sv"; a password
     * change or reset adds one) and the one outstanding reset token of a
     * user, as the SHA-256 hex of what was mailed */
    "ALTER TABLE users ADD COLUMN sessionEpoch INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE users ADD COLUMN resetTokenHash TEXT;"
    "ALTER TABLE users ADD COLUMN resetExpiresAt INTEGER;"
    "CREATE UNIQUE INDEX users_reset ON users(resetTokenHash)"
    "  WHERE resetTokenHash IS NOT NULL;",

    /* 10: who assigned a ticket by hand (NULL: the assignment job did, or
     * nobody); the job never replaces a hand assignment */
    "ALTER TABLE tickets ADD COLUMN assignedBy TEXT;",

    /*
     * 11: SLA (ts_sla.h).  deadline is the resolution date; the warning
     * dates are stored so lists filter "due soon" without the
     * configuration; firstResponseAt (migration 8) is the first response.
     * Partial indexes hold only tickets a filter can match.
     */
    "ALTER TABLE tickets ADD COLUMN firstResponseDue INTEGER;"
    "ALTER TABLE tickets ADD COLUMN firstResponseWarn INTEGER;"
    "ALTER TABLE tickets ADD COLUMN resolutionWarn INTEGER;"
    "ALTER TABLE tickets ADD COLUMN slaBreachedAt INTEGER;"
    "CREATE INDEX tickets_sla_response ON tickets(firstResponseDue)"
    "  WHERE firstResponseAt IS NULL AND firstResponseDue IS NOT NULL;"
    "CREATE INDEX tickets_sla_resolution ON tickets(deadline)"
    "  WHERE deadline IS NOT NULL AND status != 'Completed';"
    "CREATE INDEX tickets_sla_breached ON tickets(slaBreachedAt)"
    "  WHERE slaBreachedAt IS NOT NULL;"
    "CREATE INDEX tickets_sla_priority ON tickets(priority, completedAt)"
    "  WHERE deadline IS NOT NULL AND completedAt IS NOT NULL;"
};

#define TS_SQLITE_NMIGRATIONS \
    (int) (sizeof(ts_sqlite_migrations) / sizeof(ts_sqlite_migrations[0]))


ts_rc_e
ts_sqlite_migrate(ts_sqlite_t *q)
{
    sqlite3_stmt  *st;
    int            version, rc;
    char          *msg = NULL, pragma[64];

    /* BEGIN IMMEDIATE serialises concurrent openers (nginx threads, the
     * daemon): the second one sees the first one's user_version */
    if (sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL)
        != SQLITE_OK)
    {
        return ts_sqlite_fail(q, "begin migration");
    }
    if (sqlite3_prepare_v2(q->db, "PRAGMA user_version", -1, &st, NULL)
        != SQLITE_OK)
    {
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        return ts_sqlite_fail(q, "user_version");
    }
    version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);

    if (version < 0 || version > TS_SQLITE_NMIGRATIONS) {
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        return ts_store_fail(&q->base, "sqlite schema version %d is newer "
                             "than this build knows (%d)", version,
                             TS_SQLITE_NMIGRATIONS);
    }

    for (; version < TS_SQLITE_NMIGRATIONS; version++) {
        rc = sqlite3_exec(q->db, ts_sqlite_migrations[version], NULL, NULL,
                          &msg);
        if (rc != SQLITE_OK) {
            ts_store_fail(&q->base, "sqlite migration %d: %s", version + 1,
                          msg ? msg : "failed");
            sqlite3_free(msg);
            sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
            return TS_ERR;
        }
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d",
                 version + 1);
        if (sqlite3_exec(q->db, pragma, NULL, NULL, NULL) != SQLITE_OK) {
            sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
            return ts_sqlite_fail(q, "user_version");
        }
    }

    if (sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        return ts_sqlite_fail(q, "commit migration");
    }
    return TS_OK;
}

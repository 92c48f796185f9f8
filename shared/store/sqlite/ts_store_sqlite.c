/*
 * ts_store_sqlite: the embedded SQLite backend of ts_store.
 *
 * One handle is one connection, used by one thread at a time.  The file is
 * in WAL mode so readers never wait for the writer; writers wait up to the
 * busy timeout.  Multi-row writes run in BEGIN IMMEDIATE transactions, which
 * take the write lock up front so a check-then-insert (first user becomes
 * admin, unique email) cannot interleave with another connection's.
 *
 * The schema and its migrations are in ts_store_sqlite_schema.c; users,
 * tokens and login attempts in ts_store_sqlite_users.c.
 *
 * Prepared statements are cached per connection, indexed by ts_sql_e.
 * ts_sql_text[] below holds the text of every ts_sql_e statement, also
 * those of the users file, which reaches them through ts_sqlite_stmt().
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <sqlite3.h>
#include <time.h>

#include "ts_store_sqlite.h"
#include "ts_validate.h"

#define TS_SQLITE_BUSY_MS  5000

/*
 * Mode of a store file this code creates.  SQLite would create it 0644
 * (less the umask), readable by every local user; it gives the -wal and
 * -shm files the mode of the database file, so creating the file first
 * with this mode covers all three.  The module's workers and ticketd run
 * as one user (docker/entrypoint.sh), which owns the file.
 */
#define TS_SQLITE_FILE_MODE  0640

#define TS_USER_COLS \
    "_id, username, email, password, role, skills, status, lastSeen," \
    " createdAt, updatedAt, totalTicketsResolved," \
    " averageResolutionTimeHours, lastAssignedAt"

/* TS_USER_COLS, the presence choice and the session epoch, for reads */
#define TS_USER_READ_COLS  TS_USER_COLS ", presenceChoice, sessionEpoch"


static const char *ts_sql_text[TS_SQL_COUNT] = {
    [TS_SQL_BEGIN] = "BEGIN IMMEDIATE",
    [TS_SQL_BEGIN_READ] = "BEGIN DEFERRED",
    [TS_SQL_COMMIT] = "COMMIT",
    [TS_SQL_ROLLBACK] = "ROLLBACK",
    [TS_SQL_PING] = "SELECT 1",
    [TS_SQL_USER_ANY] = "SELECT EXISTS (SELECT 1 FROM users)",
    [TS_SQL_USER_EMAIL_TAKEN] =
        "SELECT EXISTS (SELECT 1 FROM users WHERE email = ?1 COLLATE NOCASE)",
    [TS_SQL_USER_INSERT] =
        "INSERT INTO users (" TS_USER_COLS ")"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [TS_SQL_USER_BY_ID] = "SELECT " TS_USER_READ_COLS
        " FROM users WHERE _id = ?1",
    [TS_SQL_USER_BY_EMAIL] = "SELECT " TS_USER_READ_COLS " FROM users"
        " WHERE email = ?1 COLLATE NOCASE",
    [TS_SQL_USER_BY_USERNAME] = "SELECT " TS_USER_READ_COLS " FROM users"
        " WHERE username = ?1 COLLATE NOCASE",
    [TS_SQL_USER_LIST] = "SELECT " TS_USER_READ_COLS " FROM users"
        " ORDER BY createdAt, _id",
    [TS_SQL_USER_COUNT_ROLE] = "SELECT count(*) FROM users WHERE role = ?1",
    [TS_SQL_USER_SET_STATUS] =
        "UPDATE users SET status = ?2, lastSeen = ?3, updatedAt = ?4,"
        " presenceChoice = CASE WHEN ?5 THEN (CASE WHEN ?2 = 'online'"
        " THEN NULL ELSE ?2 END) ELSE presenceChoice END WHERE _id = ?1",
    [TS_SQL_USER_UPDATE_ROLE] =
        "UPDATE users SET role = ?2, updatedAt = ?3 WHERE _id = ?1",
    [TS_SQL_USER_UPDATE_ROLE_SKILLS] =
        "UPDATE users SET role = ?2, updatedAt = ?3, skills = ?4"
        " WHERE _id = ?1",
    /* ?3 now; ?4 the hash that must still be stored, ?5 the reset token
     * that must still be held and unexpired (NULL: no condition) */
    [TS_SQL_USER_SET_PASSWORD] =
        "UPDATE users SET password = ?2, sessionEpoch = sessionEpoch + 1,"
        " resetTokenHash = NULL, resetExpiresAt = NULL, updatedAt = ?3"
        " WHERE _id = ?1 AND (?4 IS NULL OR password = ?4)"
        " AND (?5 IS NULL OR (resetTokenHash = ?5 AND resetExpiresAt > ?3))"
        " RETURNING sessionEpoch",
    [TS_SQL_USER_RESET_ISSUE] =
        "UPDATE users SET resetTokenHash = ?2, resetExpiresAt = ?3"
        " WHERE _id = ?1",
    [TS_SQL_USER_BY_RESET] = "SELECT " TS_USER_READ_COLS " FROM users"
        " WHERE resetTokenHash = ?1 AND resetExpiresAt > ?2",
    [TS_SQL_TOKEN_REVOKE] =
        "INSERT INTO revoked_tokens (sig, expiresAt) VALUES (?1, ?2)"
        " ON CONFLICT (sig) DO NOTHING",
    [TS_SQL_TOKEN_REVOKED] = "SELECT 1 FROM revoked_tokens WHERE sig = ?1",
    [TS_SQL_LOGIN_GET] = "SELECT failures, windowStart, lockedUntil"
        " FROM login_attempts WHERE identifier = ?1",
    /* ?2 now, ?3 window, ?4 max failures, ?5 lock.  A window that is over
     * restarts at 1.  The WHERE makes a locked key a no-op: no row comes
     * back, nothing is counted.  One statement under the write lock: the
     * check and the count cannot interleave with another connection's. */
    [TS_SQL_LOGIN_ATTEMPT] =
        "INSERT INTO login_attempts (identifier, failures, windowStart,"
        " lockedUntil) VALUES (?1, 1, ?2, CASE WHEN ?4 <= 1 THEN ?2 + ?5"
        " ELSE 0 END) ON CONFLICT (identifier) DO UPDATE SET"
        " failures = CASE WHEN windowStart <= ?2 - ?3 THEN 1"
        "   ELSE failures + 1 END,"
        " lockedUntil = CASE WHEN (CASE WHEN windowStart <= ?2 - ?3 THEN 1"
        "   ELSE failures + 1 END) >= ?4 THEN ?2 + ?5 ELSE lockedUntil END,"
        " windowStart = CASE WHEN windowStart <= ?2 - ?3 THEN ?2"
        "   ELSE windowStart END"
        " WHERE lockedUntil <= ?2"
        " RETURNING failures, windowStart, lockedUntil",
    [TS_SQL_LOGIN_CLEAR] = "DELETE FROM login_attempts WHERE identifier = ?1",
    [TS_SQL_JOB_INSERT] =
        "INSERT INTO jobs (_id, kind, payload, state, attempts, maxAttempts,"
        " runAfter, dedupeKey, createdAt, updatedAt)"
        " VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?5, ?6, ?7, ?7)"
        " ON CONFLICT DO NOTHING",
    [TS_SQL_JOB_COUNTS] =
        "SELECT kind, state, count(*) FROM jobs GROUP BY kind, state",
    [TS_SQL_PURGE_TOKENS] = "DELETE FROM revoked_tokens WHERE expiresAt < ?1",
    [TS_SQL_PURGE_LOGINS] =
        "DELETE FROM login_attempts WHERE lockedUntil < ?1"
        " AND windowStart < ?2",
};


static const ts_store_ops_t  ts_sqlite_ops;


ts_rc_e
ts_sqlite_fail(ts_sqlite_t *q, const char *what)
{
    return ts_store_fail(&q->base, "sqlite %s: %s", what,
                         sqlite3_errmsg(q->db));
}


sqlite3_stmt *
ts_sqlite_cached(ts_sqlite_t *q, sqlite3_stmt **slot, const char *sql)
{
    sqlite3_stmt  *st = *slot;

    if (st == NULL) {
        if (sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                               &st, NULL)
            != SQLITE_OK)
        {
            ts_sqlite_fail(q, "prepare");
            return NULL;
        }
        *slot = st;
        return st;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}


/* The cached statement of this file's table, ready to bind. */
sqlite3_stmt *
ts_sqlite_stmt(ts_sqlite_t *q, ts_sql_e which)
{
    return ts_sqlite_cached(q, &q->stmt[which], ts_sql_text[which]);
}


/* Run a statement with no result rows to completion. */
ts_rc_e
ts_sqlite_done(ts_sqlite_t *q, sqlite3_stmt *st)
{
    int  rc = sqlite3_step(st);

    sqlite3_reset(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
        return TS_OK;
    }
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        ts_store_fail(&q->base, "sqlite constraint: %s",
                      sqlite3_errmsg(q->db));
        return TS_CONFLICT;
    }
    return ts_sqlite_fail(q, "step");
}


static ts_rc_e
ts_sqlite_exec(ts_sqlite_t *q, ts_sql_e which)
{
    sqlite3_stmt  *st = ts_sqlite_stmt(q, which);

    return st ? ts_sqlite_done(q, st) : TS_ERR;
}


void
ts_sqlite_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s) {
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(st, i);
    }
}


void
ts_sqlite_bind_time(sqlite3_stmt *st, int i, int64_t ms)
{
    if (ms > 0) {
        sqlite3_bind_int64(st, i, ms);
    } else {
        sqlite3_bind_null(st, i);
    }
}


/* Bind a JSON value as compact text; returns 0 or -1. */
int
ts_sqlite_bind_json(sqlite3_stmt *st, int i, json_t *v)
{
    char  *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY
                               | JSON_REAL_PRECISION(12));

    if (s == NULL) {
        return -1;
    }
    sqlite3_bind_text(st, i, s, -1, free);
    return 0;
}


char *
ts_sqlite_col_strdup(sqlite3_stmt *st, int i)
{
    const unsigned char  *t = sqlite3_column_text(st, i);

    return t ? strdup((const char *) t) : NULL;
}


json_t *
ts_sqlite_col_json_text(sqlite3_stmt *st, int i)
{
    const unsigned char  *t = sqlite3_column_text(st, i);

    return t ? json_string((const char *) t) : json_null();
}


json_t *
ts_sqlite_col_json_time(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL
           ? json_null() : ts_iso_json(sqlite3_column_int64(st, i));
}


json_t *
ts_sqlite_col_json_array(sqlite3_stmt *st, int i)
{
    const char  *t = (const char *) sqlite3_column_text(st, i);
    json_t      *v = t ? json_loads(t, 0, NULL) : NULL;

    if (!json_is_array(v)) {
        json_decref(v);
        v = json_array();
    }
    return v;
}


/*
 * Waiting for another connection's write lock.  SQLite's own handler
 * sleeps 1, 2, 5 ... 100 ms between tries, which gives writers under load
 * a long tail; write transactions here last well under a millisecond, so
 * retry every 250 us, up to TS_SQLITE_BUSY_MS in all.
 */
static int
ts_sqlite_busy(void *arg, int count)
{
    struct timespec  ts = { 0, 250 * 1000 };

    if ((int64_t) count * 250 >= (int64_t) TS_SQLITE_BUSY_MS * 1000) {
        return 0;
    }
    nanosleep(&ts, NULL);
    return 1;
}


/* ts_fold(text): Unicode lower-case, for case-insensitive search. */
static void
ts_sqlite_fold(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const char  *t = (const char *) sqlite3_value_text(argv[0]);
    size_t       n;
    char        *f;

    if (t == NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    f = ts_utf8_fold(t, (size_t) sqlite3_value_bytes(argv[0]), &n);
    if (f == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_text(ctx, f, (int) n, free);
}


/*
 * Create the database file with TS_SQLITE_FILE_MODE unless it exists (an
 * existing file keeps the mode its owner gave it).  O_EXCL: of several
 * openers racing (nginx threads, ticketd), one creates, the others find
 * it.  SQLite's special names (":memory:", "file:" URIs) are left to it.
 */
static int
ts_sqlite_create_file(const char *path, char *err, size_t errlen)
{
    int  fd;

    if (path[0] == '\0' || strcmp(path, ":memory:") == 0
        || strncmp(path, "file:", 5) == 0)
    {
        return 0;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
              TS_SQLITE_FILE_MODE);
    if (fd < 0) {
        if (errno == EEXIST) {
            return 0;
        }
        snprintf(err, errlen, "cannot create SQLite file \"%s\": %s", path,
                 strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}


ts_store_t *
ts_store_sqlite_open(const char *path, char *err, size_t errlen)
{
    ts_sqlite_t  *q;
    int           rc;

    q = calloc(1, sizeof(*q));
    if (q == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    q->base.ops = &ts_sqlite_ops;

    if (ts_sqlite_create_file(path, err, errlen) != 0) {
        free(q);
        return NULL;
    }

    rc = sqlite3_open_v2(path, &q->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                         | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open SQLite file \"%s\": %s", path,
                 q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
        sqlite3_close(q->db);
        free(q);
        return NULL;
    }

    sqlite3_busy_handler(q->db, ts_sqlite_busy, NULL);
    sqlite3_create_function_v2(q->db, "ts_fold", 1,
                               SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                               ts_sqlite_fold, NULL, NULL, NULL);
    sqlite3_extended_result_codes(q->db, 1);

    if (sqlite3_exec(q->db, "PRAGMA journal_mode = WAL;"
                     "PRAGMA synchronous = NORMAL;"
                     "PRAGMA foreign_keys = ON;", NULL, NULL, NULL)
        != SQLITE_OK
        || ts_sqlite_migrate(q) != TS_OK)
    {
        snprintf(err, errlen, "SQLite file \"%s\": %s", path,
                 q->base.errmsg[0] ? q->base.errmsg : sqlite3_errmsg(q->db));
        sqlite3_close(q->db);
        free(q);
        return NULL;
    }
    return &q->base;
}


static void
ts_sqlite_close(ts_store_t *s)
{
    ts_sqlite_t  *q = (ts_sqlite_t *) s;

    for (int i = 0; i < TS_SQL_COUNT; i++) {
        sqlite3_finalize(q->stmt[i]);
    }
    for (int i = 0; i < TS_SQLITE_MORE_STMTS; i++) {
        sqlite3_finalize(q->more[i]);
    }
    sqlite3_close(q->db);
    free(q);
}


/*
 * A read snapshot: BEGIN DEFERRED takes its WAL read lock at the first
 * query and keeps it until COMMIT, so the queries of one request share
 * one set of fcntl() locks (they dominated the list route's profile).
 */
static void
ts_sqlite_read_begin(ts_store_t *s)
{
    ts_sqlite_t  *q = (ts_sqlite_t *) s;

    if (sqlite3_get_autocommit(q->db)) {
        (void) ts_sqlite_exec(q, TS_SQL_BEGIN_READ);
    }
}


static void
ts_sqlite_read_end(ts_store_t *s)
{
    ts_sqlite_t  *q = (ts_sqlite_t *) s;

    if (!sqlite3_get_autocommit(q->db)) {
        (void) ts_sqlite_exec(q, TS_SQL_COMMIT);
    }
}


static void
ts_sqlite_read_renew(ts_store_t *s)
{
    ts_sqlite_t  *q = (ts_sqlite_t *) s;

    if (!sqlite3_get_autocommit(q->db)) {
        (void) ts_sqlite_exec(q, TS_SQL_COMMIT);
        (void) ts_sqlite_exec(q, TS_SQL_BEGIN_READ);
    }
}


static ts_rc_e
ts_sqlite_ping(ts_store_t *s)
{
    return ts_sqlite_exec((ts_sqlite_t *) s, TS_SQL_PING);
}


/* Run a single-value SELECT; *out gets column 0 as an integer. */
ts_rc_e
ts_sqlite_scalar(ts_sqlite_t *q, sqlite3_stmt *st, int64_t *out)
{
    int  rc = sqlite3_step(st);

    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return TS_OK;
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) {
        return TS_NOT_FOUND;
    }
    return ts_sqlite_fail(q, "step");
}


/*
 * Writers of one process take turns on a mutex before BEGIN IMMEDIATE:
 * threads of the same process then hand the write lock over at once
 * instead of polling SQLite's busy handler; only writers in other
 * processes (the other nginx workers, ticketd) still wait through it.
 */
static pthread_mutex_t  ts_sqlite_writer = PTHREAD_MUTEX_INITIALIZER;


static void
ts_sqlite_write_done(ts_sqlite_t *q)
{
    if (q->writing) {
        q->writing = 0;
        pthread_mutex_unlock(&ts_sqlite_writer);
    }
}


ts_rc_e
ts_sqlite_rollback(ts_sqlite_t *q, ts_rc_e rc)
{
    ts_sqlite_exec(q, TS_SQL_ROLLBACK);
    ts_sqlite_write_done(q);
    return rc;
}


ts_rc_e
ts_sqlite_begin(ts_sqlite_t *q)
{
    pthread_mutex_lock(&ts_sqlite_writer);
    q->writing = 1;
    if (ts_sqlite_exec(q, TS_SQL_BEGIN) != TS_OK) {
        ts_sqlite_write_done(q);
        return TS_ERR;
    }
    return TS_OK;
}


ts_rc_e
ts_sqlite_commit(ts_sqlite_t *q)
{
    if (ts_sqlite_exec(q, TS_SQL_COMMIT) != TS_OK) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    ts_sqlite_write_done(q);
    return TS_OK;
}


ts_rc_e
ts_sqlite_insert_job(ts_sqlite_t *q, const ts_job_new_t *job, ts_oid_t id,
    int64_t now)
{
    sqlite3_stmt  *st = ts_sqlite_stmt(q, TS_SQL_JOB_INSERT);

    if (st == NULL) {
        return TS_ERR;
    }
    ts_oid_new(id);
    sqlite3_bind_text(st, 1, id, TS_OID_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, job->kind, -1, SQLITE_TRANSIENT);
    if (ts_sqlite_bind_json(st, 3, job->payload) != 0) {
        return ts_store_fail(&q->base, "job payload is not serialisable");
    }
    sqlite3_bind_int(st, 4, job->max_attempts > 0 ? job->max_attempts : 5);
    sqlite3_bind_int64(st, 5, job->run_after > 0 ? job->run_after : now);
    ts_sqlite_bind_text(st, 6, job->dedupe_key);
    sqlite3_bind_int64(st, 7, now);
    return ts_sqlite_done(q, st);
}


ts_rc_e
ts_sqlite_rows(ts_sqlite_t *q, sqlite3_stmt *st, ts_sqlite_row_pt row,
    json_t **out, const char *what)
{
    json_t  *arr, *v;
    int      rc;

    if (st == NULL) {
        return TS_ERR;
    }
    arr = json_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        v = row(st);
        if (v != NULL) {
            json_array_append_new(arr, v);
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE || arr == NULL) {
        json_decref(arr);
        return ts_sqlite_fail(q, what);
    }
    *out = arr;
    return TS_OK;
}


/* Finish an UPDATE of one row by id: TS_NOT_FOUND when nothing matched. */
ts_rc_e
ts_sqlite_update_one(ts_sqlite_t *q, sqlite3_stmt *st)
{
    ts_rc_e  rc = ts_sqlite_done(q, st);

    if (rc == TS_OK && sqlite3_changes(q->db) == 0) {
        return TS_NOT_FOUND;
    }
    return rc;
}


static ts_rc_e
ts_sqlite_job_insert(ts_store_t *s, const ts_job_new_t *job, ts_oid_t out_id)
{
    ts_oid_t  id;
    ts_rc_e   rc;

    rc = ts_sqlite_insert_job((ts_sqlite_t *) s, job, id, ts_now_ms());
    if (rc == TS_OK && out_id) {
        memcpy(out_id, id, sizeof(ts_oid_t));
    }
    return rc;
}


static ts_rc_e
ts_sqlite_job_counts(ts_store_t *s, ts_job_counts_t *out)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_sqlite_stmt(q, TS_SQL_JOB_COUNTS);
    int            rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL) {
        return TS_ERR;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ts_job_counts_add(out, (const char *) sqlite3_column_text(st, 0),
                          (const char *) sqlite3_column_text(st, 1),
                          sqlite3_column_int64(st, 2));
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? TS_OK : ts_sqlite_fail(q, "step");
}


static const ts_store_ops_t  ts_sqlite_ops = {
    .name = "sqlite",
    .close = ts_sqlite_close,
    .ping = ts_sqlite_ping,
    .read_begin = ts_sqlite_read_begin,
    .read_end = ts_sqlite_read_end,
    .read_renew = ts_sqlite_read_renew,
    .user_signup = ts_sqlite_user_signup,
    .user_by_id = ts_sqlite_user_by_id,
    .user_by_email = ts_sqlite_user_by_email,
    .user_by_username = ts_sqlite_user_by_username,
    .user_list = ts_sqlite_user_list,
    .user_count_role = ts_sqlite_user_count_role,
    .user_set_status = ts_sqlite_user_set_status,
    .user_update = ts_sqlite_user_update,
    .user_set_password = ts_sqlite_user_set_password,
    .user_reset_issue = ts_sqlite_user_reset_issue,
    .user_by_reset = ts_sqlite_user_by_reset,
    .token_revoke = ts_sqlite_token_revoke,
    .token_revoked = ts_sqlite_token_revoked,
    .login_get = ts_sqlite_login_get,
    .login_attempt = ts_sqlite_login_attempt,
    .login_clear = ts_sqlite_login_clear,
    .job_insert = ts_sqlite_job_insert,
    .job_counts = ts_sqlite_job_counts,
    .purge_expired = ts_sqlite_purge_expired,
    .ticket_create = ts_sqlite_ticket_create,
    .ticket_get = ts_sqlite_ticket_get,
    .ticket_list = ts_sqlite_ticket_list,
    .ticket_set_status = ts_sqlite_ticket_set_status,
    .ticket_history = ts_sqlite_ticket_history,
    .canned_create = ts_sqlite_canned_create,
    .canned_list = ts_sqlite_canned_list,
    .canned_get = ts_sqlite_canned_get,
    .canned_update = ts_sqlite_canned_update,
    .canned_delete = ts_sqlite_canned_delete,
    .comment_add = ts_sqlite_comment_add,
    .comment_list = ts_sqlite_comment_list,
    .user_list_role = ts_sqlite_user_list_role,
    .modreq_create = ts_sqlite_modreq_create,
    .modreq_get = ts_sqlite_modreq_get,
    .modreq_latest = ts_sqlite_modreq_latest,
    .modreq_last_rejection = ts_sqlite_modreq_last_rejection,
    .modreq_pending = ts_sqlite_modreq_pending,
    .modreq_decide = ts_sqlite_modreq_decide,
    .analytics = ts_sqlite_analytics,
    .job_claim = ts_sqlite_job_claim,
    .job_done = ts_sqlite_job_done,
    .jobs_done = ts_sqlite_jobs_done,
    .job_extend = ts_sqlite_job_extend,
    .job_fail = ts_sqlite_job_fail,
    .job_list = ts_sqlite_job_list,
    .job_retry = ts_sqlite_job_retry,
    .job_purge = ts_sqlite_job_purge,
    .ticket_text = ts_sqlite_ticket_text,
    .ticket_set_triage = ts_sqlite_ticket_set_triage,
    .ticket_set_priority = ts_sqlite_ticket_set_priority,
    .ticket_sla_breach = ts_sqlite_ticket_sla_breach,
    .ticket_assign = ts_sqlite_ticket_assign,
    .ticket_stats = ts_sqlite_ticket_stats,
    .ticket_set_assignee = ts_sqlite_ticket_set_assignee,
    .user_handback = ts_sqlite_user_handback,
    .absent_assignees = ts_sqlite_absent_assignees,
};

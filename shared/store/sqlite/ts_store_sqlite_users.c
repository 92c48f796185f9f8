/*
 * ts_store_sqlite_users: users, revoked tokens and login attempts on
 * SQLite, and the purge of expired tokens and attempts.
 *
 * Their statements are ts_sql_e slots: the text is in ts_store_sqlite.c's
 * ts_sql_text[], reached through ts_sqlite_stmt().  The first user to
 * sign up becomes admin: the check and the insert share one BEGIN
 * IMMEDIATE transaction.
 */

#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "ts_store_sqlite.h"
#include "ts_validate.h"


/* Read a row of TS_USER_COLS. */
static int
ts_sqlite_row_user(sqlite3_stmt *st, ts_user_t *u)
{
    const char  *id = (const char *) sqlite3_column_text(st, 0);
    const char  *role = (const char *) sqlite3_column_text(st, 4);
    const char  *status = (const char *) sqlite3_column_text(st, 6);

    memset(u, 0, sizeof(*u));
    if (id == NULL || strlen(id) != TS_OID_LEN) {
        return -1;
    }
    memcpy(u->id, id, TS_OID_LEN + 1);
    u->username = ts_sqlite_col_strdup(st, 1);
    u->email = ts_sqlite_col_strdup(st, 2);
    u->password = ts_sqlite_col_strdup(st, 3);
    if (role == NULL || ts_role_parse(role, &u->role) != 0) {
        u->role = TS_ROLE_USER;
    }
    u->skills = ts_sqlite_col_json_array(st, 5);
    if (status == NULL || ts_presence_parse(status, &u->status) != 0) {
        u->status = TS_PRESENCE_OFFLINE;
    }
    u->last_seen = sqlite3_column_int64(st, 7);
    u->created_at = sqlite3_column_int64(st, 8);
    u->updated_at = sqlite3_column_int64(st, 9);
    u->total_resolved = sqlite3_column_int64(st, 10);
    u->avg_resolution_hours = sqlite3_column_double(st, 11);
    u->last_assigned_at = sqlite3_column_int64(st, 12);
    u->status_chosen = sqlite3_column_count(st) > 13
                       && sqlite3_column_type(st, 13) != SQLITE_NULL;
    u->session_epoch = sqlite3_column_count(st) > 14
                       ? sqlite3_column_int64(st, 14) : 0;

    if (u->username == NULL || u->email == NULL || u->password == NULL
        || u->skills == NULL)
    {
        ts_user_clear(u);
        return -1;
    }
    return 0;
}


ts_rc_e
ts_sqlite_user_signup(ts_store_t *s, ts_user_t *u, const ts_job_new_t *job,
    const char **which)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;
    int64_t        any, taken, now;
    ts_oid_t       job_id;
    ts_rc_e        rc;

    if (ts_sqlite_begin(q) != TS_OK) {
        return TS_ERR;
    }

    /* inside the write transaction: nobody else can insert meanwhile */
    st = ts_sqlite_stmt(q, TS_SQL_USER_ANY);
    if (st == NULL || ts_sqlite_scalar(q, st, &any) != TS_OK) {
        return ts_sqlite_rollback(q, TS_ERR);
    }

    now = u->created_at > 0 ? u->created_at : ts_now_ms();
    ts_oid_new(u->id);
    u->role = any ? TS_ROLE_USER : TS_ROLE_ADMIN;
    u->created_at = u->updated_at = now;
    if (u->avg_resolution_hours <= 0) {
        u->avg_resolution_hours = 24;
    }

    st = ts_sqlite_stmt(q, TS_SQL_USER_INSERT);
    if (st == NULL) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 1, u->id, TS_OID_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, u->username, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, u->email, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, u->password, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, ts_role_name(u->role), -1, SQLITE_STATIC);
    if (ts_sqlite_bind_json(st, 6, u->skills ? u->skills : json_array())
        != 0)
    {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 7, ts_presence_name(u->status), -1, SQLITE_STATIC);
    ts_sqlite_bind_time(st, 8, u->last_seen);
    sqlite3_bind_int64(st, 9, now);
    sqlite3_bind_int64(st, 10, now);
    sqlite3_bind_int64(st, 11, u->total_resolved);
    sqlite3_bind_double(st, 12, u->avg_resolution_hours);
    ts_sqlite_bind_time(st, 13, u->last_assigned_at);

    rc = ts_sqlite_done(q, st);
    if (rc == TS_CONFLICT) {
        st = ts_sqlite_stmt(q, TS_SQL_USER_EMAIL_TAKEN);
        taken = 1;
        if (st) {
            sqlite3_bind_text(st, 1, u->email, -1, SQLITE_TRANSIENT);
            ts_sqlite_scalar(q, st, &taken);
        }
        *which = taken ? "email" : "username";
        return ts_sqlite_rollback(q, TS_CONFLICT);
    }
    if (rc != TS_OK) {
        return ts_sqlite_rollback(q, rc);
    }

    if (job && ts_sqlite_insert_job(q, job, job_id, now) != TS_OK) {
        return ts_sqlite_rollback(q, TS_ERR);
    }

    return ts_sqlite_commit(q);
}


static ts_rc_e
ts_sqlite_user_by(ts_sqlite_t *q, ts_sql_e which, const char *key,
    ts_user_t *out)
{
    sqlite3_stmt  *st = ts_sqlite_stmt(q, which);
    int            rc;

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        rc = ts_sqlite_row_user(st, out);
        sqlite3_reset(st);
        return rc == 0 ? TS_OK
                       : ts_store_fail(&q->base, "sqlite: malformed user row");
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? TS_NOT_FOUND : ts_sqlite_fail(q, "step");
}


ts_rc_e
ts_sqlite_user_by_id(ts_store_t *s, const char *id, ts_user_t *out)
{
    return ts_sqlite_user_by((ts_sqlite_t *) s, TS_SQL_USER_BY_ID, id, out);
}


ts_rc_e
ts_sqlite_user_by_email(ts_store_t *s, const char *email, ts_user_t *out)
{
    return ts_sqlite_user_by((ts_sqlite_t *) s, TS_SQL_USER_BY_EMAIL, email,
                             out);
}


ts_rc_e
ts_sqlite_user_by_username(ts_store_t *s, const char *name, ts_user_t *out)
{
    return ts_sqlite_user_by((ts_sqlite_t *) s, TS_SQL_USER_BY_USERNAME, name,
                             out);
}


/* A user row as its public JSON (no password). */
static json_t *
ts_sqlite_row_user_json(sqlite3_stmt *st)
{
    ts_user_t   u;
    json_t     *v;

    if (ts_sqlite_row_user(st, &u) != 0) {
        return NULL;
    }
    v = ts_user_json(&u);
    ts_user_clear(&u);
    return v;
}


ts_rc_e
ts_sqlite_user_list(ts_store_t *s, json_t **out)
{
    ts_sqlite_t  *q = (ts_sqlite_t *) s;

    return ts_sqlite_rows(q, ts_sqlite_stmt(q, TS_SQL_USER_LIST),
                          ts_sqlite_row_user_json, out, "users");
}


ts_rc_e
ts_sqlite_user_count_role(ts_store_t *s, ts_role_e role, int64_t *count)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_sqlite_stmt(q, TS_SQL_USER_COUNT_ROLE);

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, ts_role_name(role), -1, SQLITE_STATIC);
    return ts_sqlite_scalar(q, st, count);
}


ts_rc_e
ts_sqlite_user_set_status(ts_store_t *s, const char *id, ts_presence_e status,
    int64_t last_seen, int chosen)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_sqlite_stmt(q, TS_SQL_USER_SET_STATUS);

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, ts_presence_name(status), -1, SQLITE_STATIC);
    ts_sqlite_bind_time(st, 3, last_seen);
    sqlite3_bind_int64(st, 4, ts_now_ms());
    sqlite3_bind_int(st, 5, chosen ? 1 : 0);
    return ts_sqlite_update_one(q, st);
}


ts_rc_e
ts_sqlite_user_update(ts_store_t *s, const char *id, ts_role_e role,
    json_t *skills)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;

    st = ts_sqlite_stmt(q, skills ? TS_SQL_USER_UPDATE_ROLE_SKILLS
                                  : TS_SQL_USER_UPDATE_ROLE);
    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, ts_role_name(role), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, ts_now_ms());
    if (skills && ts_sqlite_bind_json(st, 4, skills) != 0) {
        return ts_store_fail(s, "skills are not serialisable");
    }
    return ts_sqlite_update_one(q, st);
}


/* --- passwords and reset tokens ------------------------------------------ */

ts_rc_e
ts_sqlite_user_set_password(ts_store_t *s, const char *id,
    const char *old_hash, const char *reset_hash, const char *new_hash,
    int64_t now, const ts_job_new_t *job, int64_t *epoch)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;
    ts_oid_t       job_id;
    int64_t        e;
    ts_rc_e        rc;

    if (ts_sqlite_begin(q) != TS_OK) {
        return TS_ERR;
    }
    /* one conditional UPDATE: the conditions and the write cannot be
     * separated by another writer */
    st = ts_sqlite_stmt(q, TS_SQL_USER_SET_PASSWORD);
    if (st == NULL) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, new_hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, now);
    ts_sqlite_bind_text(st, 4, old_hash);
    ts_sqlite_bind_text(st, 5, reset_hash);
    rc = ts_sqlite_scalar(q, st, &e);
    if (rc != TS_OK) {
        return ts_sqlite_rollback(q, rc);
    }
    if (job && ts_sqlite_insert_job(q, job, job_id, now) != TS_OK) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    rc = ts_sqlite_commit(q);
    if (rc == TS_OK && epoch) {
        *epoch = e;
    }
    return rc;
}


ts_rc_e
ts_sqlite_user_reset_issue(ts_store_t *s, const char *id,
    const char *token_hash, int64_t expires_at, int64_t now,
    const ts_job_new_t *job)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;
    ts_oid_t       job_id;
    ts_rc_e        rc;

    if (ts_sqlite_begin(q) != TS_OK) {
        return TS_ERR;
    }
    st = ts_sqlite_stmt(q, TS_SQL_USER_RESET_ISSUE);
    if (st == NULL) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, token_hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, expires_at);
    rc = ts_sqlite_update_one(q, st);
    if (rc != TS_OK) {
        return ts_sqlite_rollback(q, rc);
    }
    if (job && ts_sqlite_insert_job(q, job, job_id, now) != TS_OK) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    return ts_sqlite_commit(q);
}


ts_rc_e
ts_sqlite_user_by_reset(ts_store_t *s, const char *token_hash, int64_t now,
    ts_user_t *out)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_sqlite_stmt(q, TS_SQL_USER_BY_RESET);
    int            rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, token_hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        rc = ts_sqlite_row_user(st, out);
        sqlite3_reset(st);
        return rc == 0 ? TS_OK
                       : ts_store_fail(s, "sqlite: malformed user row");
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? TS_NOT_FOUND : ts_sqlite_fail(q, "step");
}


ts_rc_e
ts_sqlite_token_revoke(ts_store_t *s, const char *sig, int64_t exp)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_sqlite_stmt(q, TS_SQL_TOKEN_REVOKE);

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, sig, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, exp);
    return ts_sqlite_done(q, st);
}


ts_rc_e
ts_sqlite_token_revoked(ts_store_t *s, const char *sig)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_sqlite_stmt(q, TS_SQL_TOKEN_REVOKED);
    int64_t        one;

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, sig, -1, SQLITE_TRANSIENT);
    return ts_sqlite_scalar(q, st, &one);
}


ts_rc_e
ts_sqlite_login_get(ts_store_t *s, const char *ident, ts_login_attempts_t *out)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_sqlite_stmt(q, TS_SQL_LOGIN_GET);
    int            rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, ident, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->failures = sqlite3_column_int(st, 0);
        out->window_start = sqlite3_column_int64(st, 1);
        out->locked_until = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) {
        return TS_OK;
    }
    return rc == SQLITE_DONE ? TS_NOT_FOUND : ts_sqlite_fail(q, "step");
}


ts_rc_e
ts_sqlite_login_attempt(ts_store_t *s, const char *ident, int64_t now_ms,
    int64_t window_ms, int max_failures, int64_t lock_ms,
    ts_login_attempts_t *out, int *allowed)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_sqlite_stmt(q, TS_SQL_LOGIN_ATTEMPT);
    int            rc;

    memset(out, 0, sizeof(*out));
    *allowed = 0;
    if (st == NULL) {
        return TS_ERR;
    }
    /* the SET expressions all read the old row, hence the repetition */
    sqlite3_bind_text(st, 1, ident, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_int64(st, 3, window_ms);
    sqlite3_bind_int(st, 4, max_failures);
    sqlite3_bind_int64(st, 5, lock_ms);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->failures = sqlite3_column_int(st, 0);
        out->window_start = sqlite3_column_int64(st, 1);
        out->locked_until = sqlite3_column_int64(st, 2);
        *allowed = 1;
        rc = sqlite3_step(st);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        *allowed = 0;
        return ts_sqlite_fail(q, "login attempts");
    }
    if (*allowed) {
        return TS_OK;
    }
    /* refused: the lock, for Retry-After (read after the statement, so it
     * may have lifted meanwhile; the caller copes) */
    rc = ts_sqlite_login_get(s, ident, out);
    return rc == TS_ERR ? TS_ERR : TS_OK;
}


ts_rc_e
ts_sqlite_login_clear(ts_store_t *s, const char *ident)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_sqlite_stmt(q, TS_SQL_LOGIN_CLEAR);

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, ident, -1, SQLITE_TRANSIENT);
    return ts_sqlite_done(q, st);
}


ts_rc_e
ts_sqlite_purge_expired(ts_store_t *s, int64_t now_ms, int64_t *removed)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;
    int64_t        n = 0;

    st = ts_sqlite_stmt(q, TS_SQL_PURGE_TOKENS);
    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_int64(st, 1, now_ms);
    if (ts_sqlite_done(q, st) != TS_OK) {
        return TS_ERR;
    }
    n += sqlite3_changes(q->db);

    /* attempts older than a day and not locked carry no information */
    st = ts_sqlite_stmt(q, TS_SQL_PURGE_LOGINS);
    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, now_ms - 24 * 3600 * 1000LL);
    if (ts_sqlite_done(q, st) != TS_OK) {
        return TS_ERR;
    }
    n += sqlite3_changes(q->db);

    if (removed) {
        *removed = n;
    }
    return TS_OK;
}

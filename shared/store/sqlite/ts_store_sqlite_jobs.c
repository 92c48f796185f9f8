/*
 * ts_store_sqlite_jobs: the job runner's side of the SQLite store --
 * claiming with leases, finishing, failing, the admins' job list -- and
 * the writes background work makes on tickets: triage results, atomic
 * assignment, moderator stats.
 *
 * Leases: a claim sets leaseUntil and bumps attempts; attempts doubles as
 * the fencing token, so a runner whose lease expired (and whose job was
 * re-claimed by another) cannot finish or fail the newer attempt.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_store_sqlite.h"

/* Statement slots in q->more[], after the tickets file's. */
typedef enum {
    TS_J_CLAIM = TS_SQLITE_TICKET_STMTS,
    TS_J_DONE,
    TS_J_FAIL,
    TS_J_LIST_STATE,
    TS_J_LIST_ALL,
    TS_J_RETRY,
    TS_J_EXISTS,
    TS_J_TICKET_TEXT,
    TS_J_SET_TRIAGE,
    TS_J_TICKET_EXISTS,
    TS_J_ASSIGN_READ,
    TS_J_CANDIDATES,
    TS_J_ASSIGN,
    TS_J_EXPLAIN,
    TS_J_STAMP,
    TS_J_STATS_FLAG,
    TS_J_STATS_USER,
    TS_J_EXTEND,
    TS_J_PURGE,
    TS_J_END
} ts_jsql_e;

_Static_assert(TS_J_END <= TS_SQLITE_MORE_STMTS,
               "job statements overflow their q->more[] range");

#define TS_JOB_COLS \
    "_id, kind, payload, state, attempts, maxAttempts, runAfter," \
    " leaseUntil, lastError, createdAt, updatedAt"

static const char *ts_jsql_text[TS_J_END - TS_J_CLAIM] = {
    /* ?4 = 1: triage jobs only; 0: every other kind (two index ranges
     * around 'triage' on jobs_due_kind) */
    [TS_J_CLAIM - TS_J_CLAIM] =
        "UPDATE jobs SET state = 'running', attempts = attempts + 1,"
        " leaseUntil = ?2, updatedAt = ?1 WHERE _id IN ("
        "  SELECT _id FROM ("
        "   SELECT _id, runAfter FROM jobs WHERE state = 'pending'"
        "    AND (CASE WHEN ?4 THEN kind = 'triage'"
        "         ELSE (kind < 'triage' OR kind > 'triage') END)"
        "    AND runAfter <= ?1"
        "   UNION ALL SELECT _id, runAfter FROM jobs"
        "    WHERE state = 'running' AND leaseUntil < ?1"
        "    AND (kind = 'triage') = (?4 <> 0))"
        "  ORDER BY runAfter LIMIT ?3)"
        " RETURNING _id, kind, payload, attempts, maxAttempts",
    [TS_J_DONE - TS_J_CLAIM] =
        "UPDATE jobs SET state = 'done', leaseUntil = NULL,"
        " updatedAt = ?3 WHERE _id = ?1 AND state = 'running'"
        " AND attempts = ?2",
    [TS_J_FAIL - TS_J_CLAIM] =
        "UPDATE jobs SET state = CASE WHEN ?4 THEN 'dead' ELSE 'pending' END,"
        " runAfter = ?5, leaseUntil = NULL, lastError = ?3, updatedAt = ?6"
        " WHERE _id = ?1 AND state = 'running' AND attempts = ?2",
    [TS_J_LIST_STATE - TS_J_CLAIM] =
        "SELECT " TS_JOB_COLS " FROM jobs WHERE state = ?1"
        " ORDER BY createdAt DESC, _id DESC LIMIT ?2",
    [TS_J_LIST_ALL - TS_J_CLAIM] =
        "SELECT " TS_JOB_COLS " FROM jobs"
        " ORDER BY createdAt DESC, _id DESC LIMIT ?2",
    [TS_J_RETRY - TS_J_CLAIM] =
        "UPDATE jobs SET state = 'pending', attempts = 0, runAfter = ?2,"
        " leaseUntil = NULL, updatedAt = ?2"
        " WHERE _id = ?1 AND state = 'dead'",
    [TS_J_EXISTS - TS_J_CLAIM] = "SELECT 1 FROM jobs WHERE _id = ?1",
    [TS_J_TICKET_TEXT - TS_J_CLAIM] =
        "SELECT title, description, triage IS NOT NULL, createdAt"
        " FROM tickets WHERE _id = ?1",
    [TS_J_SET_TRIAGE - TS_J_CLAIM] =
        "UPDATE tickets SET summary = ?2, priority = ?3, helpfulNotes = ?4,"
        " relatedSkills = ?5, triage = ?6, triageProvider = ?7,"
        " triageFallback = ?8, updatedAt = ?9,"
        " firstResponseDue = ?10, firstResponseWarn = ?11,"
        " deadline = ?12, resolutionWarn = ?13"
        " WHERE _id = ?1 AND triage IS NULL",
    [TS_J_TICKET_EXISTS - TS_J_CLAIM] = "SELECT 1 FROM tickets WHERE _id = ?1",
    [TS_J_ASSIGN_READ - TS_J_CLAIM] =
        "SELECT assignedTo, title, relatedSkills, status, priority"
        " FROM tickets WHERE _id = ?1",
    [TS_J_CANDIDATES - TS_J_CLAIM] =
        "SELECT u._id, u.username, u.email, u.skills, u.status,"
        " u.totalTicketsResolved, u.averageResolutionTimeHours,"
        " coalesce(u.lastAssignedAt, 0),"
        " (SELECT count(*) FROM tickets t WHERE t.assignedTo = u._id"
        "  AND t.status IN ('To-Do', 'In Progress'))"
        " FROM users u WHERE u.role IN ('moderator', 'admin')"
        " ORDER BY u.createdAt, u._id",
    [TS_J_ASSIGN - TS_J_CLAIM] =
        "UPDATE tickets SET assignedTo = ?2, assignment = ?3,"
        " status = CASE WHEN status = 'To-Do' THEN 'In Progress'"
        " ELSE status END, updatedAt = ?4"
        " WHERE _id = ?1 AND assignedTo IS NULL RETURNING status",
    [TS_J_EXPLAIN - TS_J_CLAIM] =
        "UPDATE tickets SET assignment = ?2 WHERE _id = ?1",
    /* strictly increasing even within one millisecond, so a burst of
     * assignments rotates through tied moderators (least recently
     * assigned first) instead of falling through to the id order */
    [TS_J_STAMP - TS_J_CLAIM] =
        "UPDATE users SET lastAssignedAt = max(?2, 1 + coalesce("
        " (SELECT max(lastAssignedAt) FROM users), 0)) WHERE _id = ?1",
    [TS_J_STATS_FLAG - TS_J_CLAIM] =
        "UPDATE tickets SET statsCounted = 1"
        " WHERE _id = ?1 AND statsCounted = 0",
    /* updatedAt >= createdAt, so the createdAt bound is implied; it puts
     * each half on a range of jobs_state_created instead of a scan of
     * every done job.  ?1 or ?2 = 0 selects nothing of that state. */
    [TS_J_PURGE - TS_J_CLAIM] =
        "DELETE FROM jobs WHERE _id IN ("
        "  SELECT _id FROM jobs WHERE state = 'done' AND createdAt < ?1"
        "   AND updatedAt < ?1"
        "  UNION ALL SELECT _id FROM jobs WHERE state = 'dead'"
        "   AND createdAt < ?2 AND updatedAt < ?2"
        "  LIMIT ?3)",
    [TS_J_EXTEND - TS_J_CLAIM] =
        "UPDATE jobs SET leaseUntil = ?3 WHERE _id = ?1 AND state = 'running'"
        " AND attempts = ?2",
    [TS_J_STATS_USER - TS_J_CLAIM] =
        "UPDATE users SET averageResolutionTimeHours ="
        " (averageResolutionTimeHours * totalTicketsResolved + ?2)"
        " / (totalTicketsResolved + 1),"
        " totalTicketsResolved = totalTicketsResolved + 1 WHERE _id = ?1",
};


static sqlite3_stmt *
ts_jstmt(ts_sqlite_t *q, ts_jsql_e which)
{
    return ts_sqlite_cached(q, &q->more[which],
                            ts_jsql_text[which - TS_J_CLAIM]);
}


/* One claim pass (triage or not) appending to out[*n .. max). */
static ts_rc_e
ts_claim_pass(ts_sqlite_t *q, int64_t now, int64_t lease_ms, int triage,
    int limit, ts_job_t *out, size_t *n)
{
    sqlite3_stmt  *st = ts_jstmt(q, TS_J_CLAIM);
    const char    *id, *kind, *payload;
    ts_job_t      *j;
    int            rc, got = 0;

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, now + lease_ms);
    sqlite3_bind_int(st, 3, limit);
    sqlite3_bind_int(st, 4, triage);

    while ((rc = sqlite3_step(st)) == SQLITE_ROW && got < limit) {
        id = (const char *) sqlite3_column_text(st, 0);
        kind = (const char *) sqlite3_column_text(st, 1);
        payload = (const char *) sqlite3_column_text(st, 2);
        if (id == NULL || strlen(id) != TS_OID_LEN) {
            continue;
        }
        j = &out[(*n)++];
        got++;
        memcpy(j->id, id, TS_OID_LEN + 1);
        snprintf(j->kind, sizeof(j->kind), "%s", kind ? kind : "");
        j->payload = payload ? json_loads(payload, 0, NULL) : NULL;
        if (j->payload == NULL) {
            j->payload = json_object();
        }
        j->attempts = sqlite3_column_int(st, 3);
        j->max_attempts = sqlite3_column_int(st, 4);
    }
    sqlite3_reset(st);
    return (rc == SQLITE_DONE || rc == SQLITE_ROW) ? TS_OK
                                                   : ts_sqlite_fail(q, "claim");
}


ts_rc_e
ts_sqlite_job_claim(ts_store_t *s, int64_t now, int64_t lease_ms, int max,
    int max_triage, ts_job_t **jobs, size_t *n)
{
    ts_sqlite_t  *q = (ts_sqlite_t *) s;
    ts_job_t     *out;
    ts_rc_e       rc;

    out = calloc(max > 0 ? (size_t) max : 1, sizeof(ts_job_t));
    if (out == NULL) {
        return ts_store_fail(s, "out of memory");
    }
    if (ts_sqlite_begin(q) != TS_OK) {
        free(out);
        return TS_ERR;
    }
    rc = ts_claim_pass(q, now, lease_ms, 0, max, out, n);
    if (rc == TS_OK && (int) *n < max && max_triage > 0) {
        rc = ts_claim_pass(q, now, lease_ms, 1,
                           max - (int) *n < max_triage ? max - (int) *n
                                                       : max_triage,
                           out, n);
    }
    if (rc != TS_OK) {
        ts_jobs_free(out, *n);
        *n = 0;
        return ts_sqlite_rollback(q, rc);
    }
    if (ts_sqlite_commit(q) != TS_OK) {
        ts_jobs_free(out, *n);
        *n = 0;
        return TS_ERR;
    }
    *jobs = out;
    return TS_OK;
}


ts_rc_e
ts_sqlite_job_extend(ts_store_t *s, const ts_job_t *jobs, size_t n,
    int64_t lease_until)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;
    ts_rc_e        rc = TS_OK;

    if (ts_sqlite_begin(q) != TS_OK) {
        return TS_ERR;
    }
    for (size_t i = 0; i < n && rc != TS_ERR; i++) {
        st = ts_jstmt(q, TS_J_EXTEND);
        if (st == NULL) {
            rc = TS_ERR;
            break;
        }
        sqlite3_bind_text(st, 1, jobs[i].id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 2, jobs[i].attempts);
        sqlite3_bind_int64(st, 3, lease_until);
        rc = ts_sqlite_done(q, st);
    }
    if (rc != TS_OK) {
        return ts_sqlite_rollback(q, rc);
    }
    return ts_sqlite_commit(q);
}


ts_rc_e
ts_sqlite_job_done(ts_store_t *s, const char *id, int attempts, int64_t now)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_jstmt(q, TS_J_DONE);

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, attempts);
    sqlite3_bind_int64(st, 3, now);
    return ts_sqlite_update_one(q, st);
}


/* One write transaction for a runner's batch of finished jobs. */
ts_rc_e
ts_sqlite_jobs_done(ts_store_t *s, const ts_job_t *jobs, size_t n,
    int64_t now, ts_rc_e *rcs)
{
    ts_sqlite_t  *q = (ts_sqlite_t *) s;

    if (ts_sqlite_begin(q) != TS_OK) {
        return TS_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        rcs[i] = ts_sqlite_job_done(s, jobs[i].id, jobs[i].attempts, now);
        if (rcs[i] == TS_ERR) {
            return ts_sqlite_rollback(q, TS_ERR);
        }
    }
    return ts_sqlite_commit(q);
}


ts_rc_e
ts_sqlite_job_fail(ts_store_t *s, const char *id, int attempts,
    const char *error, int dead, int64_t run_after, int64_t now)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_jstmt(q, TS_J_FAIL);

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, attempts);
    ts_sqlite_bind_text(st, 3, error);
    sqlite3_bind_int(st, 4, dead ? 1 : 0);
    sqlite3_bind_int64(st, 5, run_after);
    sqlite3_bind_int64(st, 6, now);
    return ts_sqlite_update_one(q, st);
}


static json_t *
ts_row_job(sqlite3_stmt *st)
{
    const char  *payload = (const char *) sqlite3_column_text(st, 2);
    json_t      *p = payload ? json_loads(payload, 0, NULL) : NULL;

    return json_pack("{s:o, s:o, s:o, s:o, s:i, s:i, s:o, s:o, s:o, s:o,"
                     " s:o}",
                     "_id", ts_sqlite_col_json_text(st, 0),
                     "kind", ts_sqlite_col_json_text(st, 1),
                     "payload", p ? p : json_null(),
                     "state", ts_sqlite_col_json_text(st, 3),
                     "attempts", sqlite3_column_int(st, 4),
                     "maxAttempts", sqlite3_column_int(st, 5),
                     "runAfter", ts_sqlite_col_json_time(st, 6),
                     "leaseUntil", ts_sqlite_col_json_time(st, 7),
                     "lastError", ts_sqlite_col_json_text(st, 8),
                     "createdAt", ts_sqlite_col_json_time(st, 9),
                     "updatedAt", ts_sqlite_col_json_time(st, 10));
}


ts_rc_e
ts_sqlite_job_list(ts_store_t *s, const char *state, int64_t limit,
    json_t **out)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_jstmt(q, state ? TS_J_LIST_STATE : TS_J_LIST_ALL);

    if (st != NULL) {
        if (state) {
            sqlite3_bind_text(st, 1, state, -1, SQLITE_TRANSIENT);
        }
        sqlite3_bind_int64(st, 2, limit);
    }
    return ts_sqlite_rows(q, st, ts_row_job, out, "jobs");
}


ts_rc_e
ts_sqlite_job_retry(ts_store_t *s, const char *id, int64_t now)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_jstmt(q, TS_J_RETRY);
    int64_t        one;
    ts_rc_e        rc;

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now);
    rc = ts_sqlite_update_one(q, st);
    if (rc != TS_NOT_FOUND) {
        return rc;
    }
    st = ts_jstmt(q, TS_J_EXISTS);
    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    rc = ts_sqlite_scalar(q, st, &one);
    return rc == TS_OK ? TS_CONFLICT : rc;
}


ts_rc_e
ts_sqlite_job_purge(ts_store_t *s, int64_t done_before, int64_t dead_before,
    int limit, int64_t *removed)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_jstmt(q, TS_J_PURGE);

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_int64(st, 1, done_before);
    sqlite3_bind_int64(st, 2, dead_before);
    sqlite3_bind_int(st, 3, limit);
    if (ts_sqlite_done(q, st) != TS_OK) {
        return TS_ERR;
    }
    *removed = sqlite3_changes(q->db);
    return TS_OK;
}


ts_rc_e
ts_sqlite_ticket_text(ts_store_t *s, const char *id, char **title,
    char **description, int *triaged, int64_t *created_at)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_jstmt(q, TS_J_TICKET_TEXT);
    int            rc;

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *title = ts_sqlite_col_strdup(st, 0);
        *description = ts_sqlite_col_strdup(st, 1);
        *triaged = sqlite3_column_int(st, 2);
        *created_at = sqlite3_column_int64(st, 3);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) {
        if (*title == NULL || *description == NULL) {
            free(*title);
            free(*description);
            return ts_store_fail(s, "out of memory");
        }
        return TS_OK;
    }
    return rc == SQLITE_DONE ? TS_NOT_FOUND : ts_sqlite_fail(q, "ticket");
}


/* After an UPDATE ... WHERE <guard> matched nothing: no such ticket, or
 * the guard held it back. */
static ts_rc_e
ts_ticket_missing_or(ts_sqlite_t *q, const char *id, ts_rc_e guarded)
{
    sqlite3_stmt  *st = ts_jstmt(q, TS_J_TICKET_EXISTS);
    int64_t        one;
    ts_rc_e        rc;

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    rc = ts_sqlite_scalar(q, st, &one);
    return rc == TS_OK ? guarded : rc;
}


ts_rc_e
ts_sqlite_ticket_set_triage(ts_store_t *s, const char *id, json_t *triage,
    json_t *meta, const char *provider, int fallback,
    const ts_sla_due_t *due, int64_t now, const ts_job_new_t *jobs,
    size_t njobs)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;
    json_t        *old_prio = NULL, *old_skills = NULL;
    ts_oid_t       job_id;
    ts_rc_e        rc;
    size_t         i;

    if (ts_sqlite_begin(q) != TS_OK) {
        return TS_ERR;
    }
    /* the values before, for the history (under the write lock) */
    st = ts_jstmt(q, TS_J_ASSIGN_READ);
    if (st == NULL) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) {
        old_skills = ts_sqlite_col_json_array(st, 2);
        old_prio = ts_sqlite_col_json_text(st, 4);
    }
    sqlite3_reset(st);
    st = ts_jstmt(q, TS_J_SET_TRIAGE);
    if (st == NULL) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    ts_sqlite_bind_text(st, 2, json_string_value(json_object_get(triage,
                                                                 "summary")));
    ts_sqlite_bind_text(st, 3, json_string_value(json_object_get(triage,
                                                                 "priority")));
    ts_sqlite_bind_text(st, 4, json_string_value(json_object_get(triage,
                                                            "helpfulNotes")));
    if (ts_sqlite_bind_json(st, 5, json_object_get(triage, "relatedSkills")
                                   ? json_object_get(triage, "relatedSkills")
                                   : json_array()) != 0
        || ts_sqlite_bind_json(st, 6, meta) != 0)
    {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 7, provider, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 8, fallback ? 1 : 0);
    sqlite3_bind_int64(st, 9, now);
    if (due->resolution_due != 0) {         /* else the dates stay NULL */
        sqlite3_bind_int64(st, 10, due->response_due);
        sqlite3_bind_int64(st, 11, due->response_warn);
        sqlite3_bind_int64(st, 12, due->resolution_due);
        sqlite3_bind_int64(st, 13, due->resolution_warn);
    }
    rc = ts_sqlite_update_one(q, st);
    if (rc == TS_NOT_FOUND) {
        rc = ts_ticket_missing_or(q, id, TS_CONFLICT);
    }
    if (rc == TS_OK) {
        ts_hist_t  h[2];
        size_t     nh = ts_triage_history(h, old_prio, old_skills, triage);

        rc = ts_sqlite_history_add(q, id, h, nh, now);
        ts_hist_release(h, nh);
    }
    json_decref(old_prio);
    json_decref(old_skills);
    for (i = 0; rc == TS_OK && i < njobs; i++) {
        rc = ts_sqlite_insert_job(q, &jobs[i], job_id, now);
    }
    if (rc != TS_OK) {
        return ts_sqlite_rollback(q, rc);
    }
    return ts_sqlite_commit(q);
}


/* Read the candidates (moderators and admins) into arrays the caller
 * frees: cands[i] borrows from rows[i] (one JSON object per candidate). */
static ts_rc_e
ts_candidates(ts_sqlite_t *q, json_t *exclude, json_t **rows_out,
    ts_candidate_t **out, size_t *n)
{
    sqlite3_stmt    *st = ts_jstmt(q, TS_J_CANDIDATES);
    json_t          *rows, *r;
    ts_candidate_t  *c;
    const char      *status;
    size_t           i;
    int              rc;

    if (st == NULL) {
        return TS_ERR;
    }
    rows = json_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        r = json_pack("{s:o, s:o, s:o, s:o, s:o, s:I, s:f, s:I, s:I}",
                      "_id", ts_sqlite_col_json_text(st, 0),
                      "username", ts_sqlite_col_json_text(st, 1),
                      "email", ts_sqlite_col_json_text(st, 2),
                      "skills", ts_sqlite_col_json_array(st, 3),
                      "status", ts_sqlite_col_json_text(st, 4),
                      "resolved", (json_int_t) sqlite3_column_int64(st, 5),
                      "avg", sqlite3_column_double(st, 6),
                      "last", (json_int_t) sqlite3_column_int64(st, 7),
                      "active", (json_int_t) sqlite3_column_int64(st, 8));
        if (r && ts_assign_excluded(exclude,
                                    json_string_value(json_object_get(r,
                                                                "_id"))))
        {
            json_decref(r);     /* handed the ticket back */
        } else if (r) {
            json_array_append_new(rows, r);
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(rows);
        return ts_sqlite_fail(q, "candidates");
    }

    c = calloc(json_array_size(rows) + 1, sizeof(ts_candidate_t));
    if (c == NULL) {
        json_decref(rows);
        return ts_store_fail(&q->base, "out of memory");
    }
    json_array_foreach(rows, i, r) {
        c[i].id = json_string_value(json_object_get(r, "_id"));
        c[i].username = json_string_value(json_object_get(r, "username"));
        c[i].skills = json_object_get(r, "skills");
        c[i].active = json_integer_value(json_object_get(r, "active"));
        c[i].total_resolved = json_integer_value(json_object_get(r,
                                                                 "resolved"));
        c[i].avg_resolution_hours = json_real_value(json_object_get(r,
                                                                    "avg"));
        c[i].last_assigned_at = json_integer_value(json_object_get(r,
                                                                   "last"));
        status = json_string_value(json_object_get(r, "status"));
        if (status == NULL || ts_presence_parse(status, &c[i].status) != 0) {
            c[i].status = TS_PRESENCE_OFFLINE;
        }
    }
    *rows_out = rows;
    *out = c;
    *n = json_array_size(rows);
    return TS_OK;
}


ts_rc_e
ts_sqlite_ticket_assign(ts_store_t *s, const char *id, json_t *exclude,
    const ts_assign_cfg_t *cfg, ts_assigned_job_fn assigned_job, int64_t now,
    json_t **result)
{
    ts_sqlite_t     *q = (ts_sqlite_t *) s;
    sqlite3_stmt    *st;
    json_t          *rows = NULL, *skills = NULL, *explain = NULL;
    json_t          *who = NULL;
    ts_candidate_t  *cands = NULL;
    ts_job_new_t     job;
    ts_oid_t         job_id;
    char            *title = NULL, *status = NULL, *old_status = NULL;
    size_t           n = 0;
    int              pick, step;
    ts_rc_e          rc;

    memset(&job, 0, sizeof(job));
    if (ts_sqlite_begin(q) != TS_OK) {
        return TS_ERR;
    }

    /* everything below runs under the write lock: no other assignment
     * can read the same load and pick the same moderator meanwhile */
    st = ts_jstmt(q, TS_J_ASSIGN_READ);
    if (st == NULL) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        sqlite3_reset(st);
        return ts_sqlite_rollback(q, step == SQLITE_DONE
                                     ? TS_NOT_FOUND
                                     : ts_sqlite_fail(q, "assign"));
    }
    if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
        sqlite3_reset(st);
        return ts_sqlite_rollback(q, TS_CONFLICT);
    }
    title = ts_sqlite_col_strdup(st, 1);
    skills = ts_sqlite_col_json_array(st, 2);
    old_status = ts_sqlite_col_strdup(st, 3);
    sqlite3_reset(st);

    rc = ts_candidates(q, exclude, &rows, &cands, &n);
    if (rc != TS_OK) {
        goto fail;
    }
    pick = ts_assign_choose(cfg, skills, cands, n, &explain);
    if (explain == NULL) {
        rc = ts_store_fail(s, "out of memory");
        goto fail;
    }
    if (exclude != NULL) {
        json_object_set(explain, "excluded", exclude);
    }

    if (pick < 0) {
        /* nobody to assign to: keep the explanation, leave it To-Do */
        st = ts_jstmt(q, TS_J_EXPLAIN);
        if (st == NULL) {
            rc = TS_ERR;
            goto fail;
        }
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        if (ts_sqlite_bind_json(st, 2, explain) != 0) {
            rc = TS_ERR;
            goto fail;
        }
        rc = ts_sqlite_done(q, st);
        who = json_null();
        status = strdup("To-Do");
        if (rc == TS_OK) {
            /* nobody fit: staff see why in the history */
            ts_hist_t h = { TS_HIST_ASSIGNEE, NULL, NULL, NULL, explain, 1 };
            rc = ts_sqlite_history_add(q, id, &h, 1, now);
        }
    } else {
        st = ts_jstmt(q, TS_J_ASSIGN);
        if (st == NULL) {
            rc = TS_ERR;
            goto fail;
        }
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, cands[pick].id, -1, SQLITE_TRANSIENT);
        if (ts_sqlite_bind_json(st, 3, explain) != 0) {
            rc = TS_ERR;
            goto fail;
        }
        sqlite3_bind_int64(st, 4, now);
        step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            status = ts_sqlite_col_strdup(st, 0);
            step = sqlite3_step(st);
        }
        sqlite3_reset(st);
        rc = step == SQLITE_DONE ? TS_OK : ts_sqlite_fail(q, "assign");
        if (rc == TS_OK) {
            st = ts_jstmt(q, TS_J_STAMP);
            rc = TS_ERR;
            if (st != NULL) {
                sqlite3_bind_text(st, 1, cands[pick].id, -1,
                                  SQLITE_TRANSIENT);
                sqlite3_bind_int64(st, 2, now);
                rc = ts_sqlite_done(q, st);
            }
        }
        if (rc == TS_OK) {
            json_t *row = json_array_get(rows, pick);

            assigned_job(&job, json_object_get(row, "email"),
                         json_object_get(row, "username"), id, title);
            rc = ts_sqlite_insert_job(q, &job, job_id, now);
        }
        if (rc == TS_OK) {
            ts_hist_t  h[2];
            json_t    *to = json_pack("{s:s, s:s}", "_id", cands[pick].id,
                                      "username", cands[pick].username);
            size_t     nh = ts_assign_history(h, to, explain, old_status,
                                              status);

            rc = to ? ts_sqlite_history_add(q, id, h, nh, now) : TS_ERR;
            ts_hist_release(h, nh);
            json_decref(to);
        }
        who = json_pack("{s:s, s:O, s:s, s:O}", "_id", cands[pick].id,
                        "email", json_object_get(json_array_get(rows, pick),
                                                 "email"),
                        "username", cands[pick].username,
                        "status", json_object_get(json_array_get(rows, pick),
                                                  "status"));
    }
    if (rc != TS_OK) {
        json_decref(who);
        goto fail;
    }

    *result = json_pack("{s:s, s:o, s:s, s:O}", "ticketId", id,
                        "assignedTo", who, "status",
                        status ? status : "In Progress",
                        "assignment", explain);
    rc = ts_sqlite_commit(q);
    goto done;

fail:
    rc = ts_sqlite_rollback(q, rc == TS_OK ? TS_ERR : rc);

done:
    json_decref(job.payload);
    json_decref(explain);
    json_decref(skills);
    json_decref(rows);
    free(cands);
    free(title);
    free(status);
    free(old_status);
    return rc;
}


ts_rc_e
ts_sqlite_ticket_stats(ts_store_t *s, const char *id, const char *moderator_id,
    double hours, int *counted)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;
    ts_rc_e        rc;

    if (ts_sqlite_begin(q) != TS_OK) {
        return TS_ERR;
    }
    st = ts_jstmt(q, TS_J_STATS_FLAG);
    if (st == NULL) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    rc = ts_sqlite_update_one(q, st);
    if (rc == TS_NOT_FOUND) {
        /* counted before (or the ticket is gone): nothing to do */
        rc = ts_sqlite_rollback(q, TS_OK);
        return rc;
    }
    if (rc == TS_OK) {
        st = ts_jstmt(q, TS_J_STATS_USER);
        rc = TS_ERR;
        if (st != NULL) {
            sqlite3_bind_text(st, 1, moderator_id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_double(st, 2, hours > 0 ? hours : 0);
            rc = ts_sqlite_update_one(q, st);
        }
    }
    if (rc != TS_OK) {
        return ts_sqlite_rollback(q, rc);
    }
    *counted = 1;
    return ts_sqlite_commit(q);
}

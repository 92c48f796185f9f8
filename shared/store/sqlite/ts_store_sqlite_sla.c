/*
 * ts_store_sqlite_sla: the SLA's writes and figures on SQLite (ts_sla.h):
 * a priority change moving the dates, a breach marked once, the first
 * response recorded inside a comment's transaction, and "% within SLA"
 * for analytics.  The dates themselves are set with the triage result
 * (ts_store_sqlite_jobs.c) and read with every ticket row
 * (ts_store_sqlite_tickets.c).
 *
 * These statements run seldom (once per priority change, breach or
 * analytics request, at most once per ticket for the first response), so
 * they are prepared per call and take no slot of q->more[].
 */

#include <stdio.h>
#include <string.h>

#include "ts_store_sqlite.h"

/* Prepare sql, or NULL (recorded). */
static sqlite3_stmt *
ts_sla_prepare(ts_sqlite_t *q, const char *sql)
{
    sqlite3_stmt  *st = NULL;

    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
        ts_sqlite_fail(q, "prepare sla");
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}


/* Step an UPDATE to its end and finalize it: TS_OK with *changed rows. */
static ts_rc_e
ts_sla_update(ts_sqlite_t *q, sqlite3_stmt *st, int *changed)
{
    int  rc = sqlite3_step(st);

    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        return ts_sqlite_fail(q, "sla update");
    }
    *changed = sqlite3_changes(q->db);
    return TS_OK;
}


ts_rc_e
ts_sqlite_ticket_set_priority(ts_store_t *s, const char *id,
    const char *priority, const ts_sla_due_t *due, int64_t now,
    const ts_job_new_t *jobs, size_t njobs)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;
    ts_rc_e        rc;
    int            changed = 0;

    if (ts_sqlite_begin(q) != TS_OK) {
        return TS_ERR;
    }
    /* history: priority change (in this transaction) */
    st = ts_sla_prepare(q,
        "UPDATE tickets SET priority = ?2, updatedAt = ?3,"
        " firstResponseDue = ?4, firstResponseWarn = ?5,"
        " deadline = ?6, resolutionWarn = ?7 WHERE _id = ?1");
    if (st == NULL) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, priority, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, due->response_due);
    sqlite3_bind_int64(st, 5, due->response_warn);
    sqlite3_bind_int64(st, 6, due->resolution_due);
    sqlite3_bind_int64(st, 7, due->resolution_warn);
    rc = ts_sla_update(q, st, &changed);
    if (rc == TS_OK && changed == 0) {
        rc = TS_NOT_FOUND;
    }
    return ts_finish(q, rc, jobs, njobs, now);
}


ts_rc_e
ts_sqlite_ticket_sla_breach(ts_store_t *s, const char *id,
    const char *target, int64_t due, int64_t now)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;
    ts_rc_e        rc;
    int            changed = 0;

    /* one conditional write: the target still due at that date, unmet,
     * and no breach marked */
    /* history: SLA breached (target, due) */
    st = ts_sla_prepare(q, strcmp(target, "response") == 0
        ? "UPDATE tickets SET slaBreachedAt = ?2, updatedAt = ?3"
          " WHERE _id = ?1 AND slaBreachedAt IS NULL"
          " AND firstResponseDue = ?2 AND firstResponseAt IS NULL"
          " AND status != 'Completed'"
        : "UPDATE tickets SET slaBreachedAt = ?2, updatedAt = ?3"
          " WHERE _id = ?1 AND slaBreachedAt IS NULL"
          " AND deadline = ?2 AND status != 'Completed'");
    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, due);
    sqlite3_bind_int64(st, 3, now);
    rc = ts_sla_update(q, st, &changed);
    return rc == TS_OK && changed == 0 ? TS_CONFLICT : rc;
}


ts_rc_e
ts_sqlite_first_response(ts_sqlite_t *q, const char *ticket_id,
    const char *author, const char *role, int64_t now)
{
    sqlite3_stmt  *st;
    int            changed;

    if (strcmp(role, "moderator") != 0 && strcmp(role, "admin") != 0) {
        return TS_OK;
    }
    /* history: first response (SLA) */
    st = ts_sla_prepare(q,
        "UPDATE tickets SET firstResponseAt = ?2,"
        " slaBreachedAt = CASE WHEN slaBreachedAt IS NULL"
        "  AND firstResponseDue < ?2 THEN firstResponseDue"
        "  ELSE slaBreachedAt END"
        " WHERE _id = ?1 AND firstResponseAt IS NULL AND createdBy != ?3");
    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, ticket_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_text(st, 3, author, -1, SQLITE_TRANSIENT);
    return ts_sla_update(q, st, &changed);
}


ts_rc_e
ts_sqlite_sla_analytics(ts_sqlite_t *q, json_t **out)
{
    static const char  *names[] = { "Low", "Medium", "High" };
    sqlite3_stmt       *st;
    json_t             *by = json_object();
    int64_t             n[3] = { 0, 0, 0 }, b[3] = { 0, 0, 0 };
    int                 rc, i;
    const char         *p;

    st = ts_sla_prepare(q,
        "SELECT priority, count(*), count(slaBreachedAt) FROM tickets"
        " WHERE deadline IS NOT NULL AND completedAt IS NOT NULL"
        " GROUP BY priority");
    if (st == NULL || by == NULL) {
        json_decref(by);
        return TS_ERR;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        p = (const char *) sqlite3_column_text(st, 0);
        i = ts_sla_priority(p);
        if (i >= 0) {
            n[i] = sqlite3_column_int64(st, 1);
            b[i] = sqlite3_column_int64(st, 2);
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(by);
        return ts_sqlite_fail(q, "sla analytics");
    }
    for (i = 0; i < 3; i++) {
        json_object_set_new(by, names[i], ts_sla_figures(n[i], b[i]));
    }
    *out = by;
    return TS_OK;
}

/*
 * ts_store_sqlite_sla: the SLA's writes and figures on SQLite (ts_sla.h):
 * a priority change moving the dates, a breach marked once (by the job,
 * a late first response or a late completion, each inside its write's
 * transaction with its "sla" history entry), and "% within SLA"
 * for analytics.  The dates themselves are set with the triage result
 * (ts_store_sqlite_jobs.c) and read with every ticket row
 * (ts_store_sqlite_tickets.c).
 *
 * These statements run seldom (once per priority change, breach or
 * analytics request, at most once per ticket for a late answer), so
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


/* The history entry of a breach marked in this transaction: "sla", by
 * ticketd, staff only, to {"breached": target} (ts_store.h). */
static ts_rc_e
ts_sla_history(ts_sqlite_t *q, const char *id, const char *target,
    int64_t now)
{
    json_t   *to = json_pack("{s:s}", "breached", target);
    ts_hist_t h = { TS_HIST_SLA, NULL, NULL, to, NULL, 1 };
    ts_rc_e   rc;

    if (to == NULL) {
        return ts_store_fail(&q->base, "history: out of memory");
    }
    rc = ts_sqlite_history_add(q, id, &h, 1, now);
    json_decref(to);
    return rc;
}


/* One conditional mark (sql binds ?1 id, ?2 now) and, when it took, its
 * history entry for target. */
static ts_rc_e
ts_sla_mark(ts_sqlite_t *q, const char *id, const char *sql,
    const char *target, int64_t now, int *changed)
{
    sqlite3_stmt  *st = ts_sla_prepare(q, sql);
    ts_rc_e        rc;

    *changed = 0;
    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now);
    rc = ts_sla_update(q, st, changed);
    if (rc == TS_OK && *changed) {
        rc = ts_sla_history(q, id, target, now);
    }
    return rc;
}


ts_rc_e
ts_sqlite_ticket_set_priority(ts_store_t *s, const char *id,
    const char *priority, const char *actor, const ts_sla_due_t *due,
    int64_t now, const ts_job_new_t *jobs, size_t njobs)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;
    json_t        *from = NULL, *to;
    ts_rc_e        rc;
    int            changed = 0;

    if (ts_sqlite_begin(q) != TS_OK) {
        return TS_ERR;
    }
    /* the priority before, read under the write lock */
    st = ts_sla_prepare(q, "SELECT priority FROM tickets WHERE _id = ?1");
    if (st == NULL) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW
        && sqlite3_column_type(st, 0) == SQLITE_TEXT
        && sqlite3_column_bytes(st, 0) > 0)
    {
        from = json_string((const char *) sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);

    st = ts_sla_prepare(q,
        "UPDATE tickets SET priority = ?2, updatedAt = ?3,"
        " firstResponseDue = ?4, firstResponseWarn = ?5,"
        " deadline = ?6, resolutionWarn = ?7 WHERE _id = ?1");
    if (st == NULL) {
        json_decref(from);
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
    to = json_string(priority);
    if (rc == TS_OK && !json_equal(from, to)) {
        ts_hist_t  h = { TS_HIST_PRIORITY, actor, from, to, NULL, 0 };

        rc = ts_sqlite_history_add(q, id, &h, 1, now);
    }
    json_decref(from);
    json_decref(to);
    return ts_finish(q, rc, jobs, njobs, now);
}


ts_rc_e
ts_sqlite_ticket_sla_breach(ts_store_t *s, const char *id,
    const char *target, int64_t due, int64_t now)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;
    ts_rc_e        rc;
    int            changed = 0, response = strcmp(target, "response") == 0;

    if (ts_sqlite_begin(q) != TS_OK) {
        return TS_ERR;
    }
    /* one conditional write: the target still due at that date, unmet,
     * and no breach marked; its history entry in the same transaction */
    st = ts_sla_prepare(q, response
        ? "UPDATE tickets SET slaBreachedAt = ?2, updatedAt = ?3"
          " WHERE _id = ?1 AND slaBreachedAt IS NULL"
          " AND firstResponseDue = ?2 AND firstResponseAt IS NULL"
          " AND status != 'Completed'"
        : "UPDATE tickets SET slaBreachedAt = ?2, updatedAt = ?3"
          " WHERE _id = ?1 AND slaBreachedAt IS NULL"
          " AND deadline = ?2 AND status != 'Completed'");
    if (st == NULL) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, due);
    sqlite3_bind_int64(st, 3, now);
    rc = ts_sla_update(q, st, &changed);
    if (rc == TS_OK && changed == 0) {
        rc = TS_CONFLICT;
    }
    if (rc == TS_OK) {
        rc = ts_sla_history(q, id, response ? "firstResponse" : "resolution",
                            now);
    }
    return ts_finish(q, rc, NULL, 0, now);
}


ts_rc_e
ts_sqlite_sla_answered(ts_sqlite_t *q, const char *ticket_id, int64_t now)
{
    int  changed;

    /* the first response stamped at now by this transaction, late */
    return ts_sla_mark(q, ticket_id,
        "UPDATE tickets SET slaBreachedAt = firstResponseDue"
        " WHERE _id = ?1 AND slaBreachedAt IS NULL AND firstResponseAt = ?2"
        " AND firstResponseDue < ?2",
        "firstResponse", now, &changed);
}


ts_rc_e
ts_sqlite_sla_completed(ts_sqlite_t *q, const char *id, int64_t now)
{
    ts_rc_e  rc;
    int      changed;

    /* the first response's date first, as the job would have */
    rc = ts_sla_mark(q, id,
        "UPDATE tickets SET slaBreachedAt = firstResponseDue"
        " WHERE _id = ?1 AND slaBreachedAt IS NULL"
        " AND firstResponseAt IS NULL AND firstResponseDue < ?2",
        "firstResponse", now, &changed);
    if (rc == TS_OK && !changed) {
        rc = ts_sla_mark(q, id,
            "UPDATE tickets SET slaBreachedAt = deadline"
            " WHERE _id = ?1 AND slaBreachedAt IS NULL AND deadline < ?2",
            "resolution", now, &changed);
    }
    return rc;
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

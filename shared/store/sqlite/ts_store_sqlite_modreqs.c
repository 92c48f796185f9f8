/*
 * ts_store_sqlite_modreqs: moderator requests on SQLite -- submission,
 * lookups, the pending list and the decision, which promotes an accepted
 * applicant in the same BEGIN IMMEDIATE transaction.  One pending request
 * per applicant: the partial unique index modreq_one_pending.
 */

#include <stdlib.h>
#include <string.h>

#include "ts_store_sqlite.h"
#include "ts_validate.h"

/* Statement slots in q->more[], from TS_SQLITE_MODREQ_FIRST. */
typedef enum {
    TS_T_MR_INSERT = TS_SQLITE_MODREQ_FIRST,
    TS_T_MR_GET,
    TS_T_MR_LATEST,
    TS_T_MR_LAST_REJ,
    TS_T_MR_PENDING,
    TS_T_MR_DECIDE,
    TS_T_MR_EXISTS,
    TS_T_USER_SKILLS,
    TS_T_USER_PROMOTE,
    TS_M_END
} ts_msql_e;

_Static_assert(TS_M_END <= TS_SQLITE_ANALYTICS_FIRST,
               "request statements overflow their q->more[] range");

#define TS_MR_COLS \
    "m._id, m.applicant, m.username, m.email, m.skills, m.status," \
    " m.reviewedBy, m.createdAt, m.updatedAt, m.rejectedAt"

static const char *ts_msql_text[TS_M_END - TS_T_MR_INSERT] = {
    [TS_T_MR_INSERT - TS_T_MR_INSERT] =
        "INSERT INTO moderatorrequests (_id, applicant, username, email,"
        " skills, status, createdAt, updatedAt)"
        " VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6)",
    [TS_T_MR_GET - TS_T_MR_INSERT] =
        "SELECT " TS_MR_COLS " FROM moderatorrequests m WHERE m._id = ?1",
    [TS_T_MR_LATEST - TS_T_MR_INSERT] =
        "SELECT " TS_MR_COLS " FROM moderatorrequests m"
        " WHERE m.applicant = ?1 ORDER BY m.createdAt DESC, m._id DESC"
        " LIMIT 1",
    [TS_T_MR_LAST_REJ - TS_T_MR_INSERT] =
        "SELECT max(rejectedAt) FROM moderatorrequests"
        " WHERE applicant = ?1 AND status = 'rejected'",
    [TS_T_MR_PENDING - TS_T_MR_INSERT] =
        "SELECT " TS_MR_COLS ", u._id, u.email, u.username, u.status"
        " FROM moderatorrequests m JOIN users u ON u._id = m.applicant"
        " WHERE m.status = 'pending' ORDER BY m.createdAt DESC, m._id DESC",
    [TS_T_MR_DECIDE - TS_T_MR_INSERT] =
        "UPDATE moderatorrequests SET status = ?2, reviewedBy = ?3,"
        " updatedAt = ?4, rejectedAt = CASE WHEN ?2 = 'rejected' THEN ?4"
        " ELSE NULL END WHERE _id = ?1 AND status = 'pending'",
    [TS_T_MR_EXISTS - TS_T_MR_INSERT] =
        "SELECT applicant FROM moderatorrequests WHERE _id = ?1",
    [TS_T_USER_SKILLS - TS_T_MR_INSERT] =
        "SELECT skills, role FROM users WHERE _id = ?1",
    [TS_T_USER_PROMOTE - TS_T_MR_INSERT] =
        "UPDATE users SET role = CASE WHEN role = 'user' THEN 'moderator'"
        " ELSE role END, skills = ?2, updatedAt = ?3 WHERE _id = ?1",
};


static sqlite3_stmt *
ts_mstmt(ts_sqlite_t *q, ts_msql_e which)
{
    return ts_sqlite_cached(q, &q->more[which],
                            ts_msql_text[which - TS_T_MR_INSERT]);
}


static json_t *
ts_row_modreq(sqlite3_stmt *st)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                     "_id", ts_sqlite_col_json_text(st, 0),
                     "applicant", ts_sqlite_col_json_text(st, 1),
                     "username", ts_sqlite_col_json_text(st, 2),
                     "email", ts_sqlite_col_json_text(st, 3),
                     "skills", ts_sqlite_col_json_array(st, 4),
                     "status", ts_sqlite_col_json_text(st, 5),
                     "reviewedBy", ts_sqlite_col_json_text(st, 6),
                     "createdAt", ts_sqlite_col_json_time(st, 7),
                     "updatedAt", ts_sqlite_col_json_time(st, 8),
                     "rejectedAt", ts_sqlite_col_json_time(st, 9));
}


ts_rc_e
ts_sqlite_modreq_create(ts_store_t *s, const char *id, const char *applicant,
    const char *username, const char *email, json_t *skills, int64_t now,
    const ts_job_new_t *jobs, size_t njobs)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;

    if (ts_sqlite_begin(q) != TS_OK) {
        return TS_ERR;
    }
    st = ts_mstmt(q, TS_T_MR_INSERT);
    if (st == NULL) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, applicant, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, username, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, email, -1, SQLITE_TRANSIENT);
    if (ts_sqlite_bind_json(st, 5, skills) != 0) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_int64(st, 6, now);
    /* the partial unique index admits one pending request per applicant */
    return ts_finish(q, ts_sqlite_done(q, st), jobs, njobs, now);
}


static ts_rc_e
ts_modreq_one(ts_sqlite_t *q, ts_msql_e which, const char *key, json_t **doc)
{
    sqlite3_stmt  *st = ts_mstmt(q, which);
    int            rc;

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *doc = ts_row_modreq(st);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) {
        return *doc ? TS_OK : ts_store_fail(&q->base, "out of memory");
    }
    return rc == SQLITE_DONE ? TS_NOT_FOUND : ts_sqlite_fail(q, "request");
}


ts_rc_e
ts_sqlite_modreq_get(ts_store_t *s, const char *id, json_t **doc)
{
    return ts_modreq_one((ts_sqlite_t *) s, TS_T_MR_GET, id, doc);
}


ts_rc_e
ts_sqlite_modreq_latest(ts_store_t *s, const char *applicant, json_t **doc)
{
    return ts_modreq_one((ts_sqlite_t *) s, TS_T_MR_LATEST, applicant, doc);
}


ts_rc_e
ts_sqlite_modreq_last_rejection(ts_store_t *s, const char *applicant,
    int64_t *rejected_at)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_mstmt(q, TS_T_MR_LAST_REJ);
    int            rc;

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, applicant, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    *rejected_at = 0;
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *rejected_at = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) {
        return ts_sqlite_fail(q, "last rejection");
    }
    return *rejected_at ? TS_OK : TS_NOT_FOUND;
}


/* A pending-list row: the request with its applicant populated. */
static json_t *
ts_row_modreq_populated(sqlite3_stmt *st)
{
    json_t  *r = ts_row_modreq(st);

    if (r) {
        json_object_set_new(r, "applicant", ts_col_person(st, 10));
    }
    return r;
}


ts_rc_e
ts_sqlite_modreq_pending(ts_store_t *s, json_t **out)
{
    ts_sqlite_t  *q = (ts_sqlite_t *) s;

    return ts_sqlite_rows(q, ts_mstmt(q, TS_T_MR_PENDING),
                          ts_row_modreq_populated, out, "pending requests");
}


/* Make the applicant a moderator with the request's skills merged in. */
static ts_rc_e
ts_promote(ts_sqlite_t *q, const char *request_id, int64_t now)
{
    sqlite3_stmt  *st;
    json_t        *req = NULL, *have = NULL, *merged;
    char          *applicant;
    ts_rc_e        rc;

    rc = ts_modreq_one(q, TS_T_MR_GET, request_id, &req);
    if (rc != TS_OK) {
        return rc;
    }
    applicant = strdup(json_string_value(json_object_get(req, "applicant")));

    st = ts_mstmt(q, TS_T_USER_SKILLS);
    if (st == NULL || applicant == NULL) {
        rc = TS_ERR;
        goto done;
    }
    sqlite3_bind_text(st, 1, applicant, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) {
        have = ts_sqlite_col_json_array(st, 0);
    }
    sqlite3_reset(st);
    if (have == NULL) {
        rc = TS_NOT_FOUND;         /* the applicant's account is gone */
        goto done;
    }

    merged = ts_skills_merge(have, json_object_get(req, "skills"));
    st = ts_mstmt(q, TS_T_USER_PROMOTE);
    if (st == NULL || merged == NULL) {
        json_decref(merged);
        rc = TS_ERR;
        goto done;
    }
    sqlite3_bind_text(st, 1, applicant, -1, SQLITE_TRANSIENT);
    rc = ts_sqlite_bind_json(st, 2, merged) == 0 ? TS_OK : TS_ERR;
    json_decref(merged);
    if (rc == TS_OK) {
        sqlite3_bind_int64(st, 3, now);
        rc = ts_sqlite_update_one(q, st);
    }

done:
    free(applicant);
    json_decref(have);
    json_decref(req);
    return rc;
}


ts_rc_e
ts_sqlite_modreq_decide(ts_store_t *s, const char *id, int accept,
    const char *reviewer, int64_t now, const ts_job_new_t *jobs, size_t njobs)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;
    ts_rc_e        rc;

    if (ts_sqlite_begin(q) != TS_OK) {
        return TS_ERR;
    }
    st = ts_mstmt(q, TS_T_MR_DECIDE);
    if (st == NULL) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, accept ? "accepted" : "rejected", -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 3, reviewer, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, now);
    rc = ts_sqlite_update_one(q, st);

    if (rc == TS_NOT_FOUND) {
        /* no pending row: processed already, or no such request */
        st = ts_mstmt(q, TS_T_MR_EXISTS);
        if (st == NULL) {
            return ts_sqlite_rollback(q, TS_ERR);
        }
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(st) == SQLITE_ROW ? TS_CONFLICT : TS_NOT_FOUND;
        sqlite3_reset(st);
        return ts_sqlite_rollback(q, rc);
    }
    if (rc == TS_OK && accept) {
        rc = ts_promote(q, id, now);
    }
    return ts_finish(q, rc, jobs, njobs, now);
}

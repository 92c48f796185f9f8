/*
 * ts_store_sqlite_assignee: assignment by hand, hand-back, demotion and
 * the absent staff on SQLite (issue 15 item 1).
 *
 * The manual marker: tickets.assignedBy holds who assigned a ticket by
 * hand.  The invariant kept here: assignedBy is NULL whenever assignedTo
 * is NULL (a hand-back clears both), so the assignment job's
 * compare-and-set on "assignedTo IS NULL" (ts_store_sqlite_jobs.c) never
 * replaces a hand assignment.
 *
 * Each change writes its history rows (ts_sqlite_history_add) in its own
 * transaction: "assignee" from -> to by who made it, and "status" when a
 * hand-back moves In Progress to To-Do.
 *
 * These writes are rare (an admin's click, a demotion, the absence sweep),
 * so their statements are prepared per call rather than cached.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_store_sqlite.h"

#define TS_SQL_SET_ASSIGNEE \
    "UPDATE tickets SET assignedTo = ?2, assignedBy = ?3, assignment = ?4," \
    " updatedAt = ?5 WHERE _id = ?1 AND coalesce(assignedTo, '') = ?6"

#define TS_SQL_HAND_BACK \
    "UPDATE tickets SET assignedTo = NULL, assignedBy = NULL," \
    " assignment = NULL, status = CASE WHEN status = 'In Progress'" \
    " THEN 'To-Do' ELSE status END, updatedAt = ?2" \
    " WHERE _id = ?1 AND coalesce(assignedTo, '') = ?3 RETURNING status"

#define TS_SQL_STATUS_OF \
    "SELECT status FROM tickets WHERE _id = ?1"

#define TS_SQL_PERSON \
    "SELECT username FROM users WHERE _id = ?1"

#define TS_SQL_OPEN_OF \
    "SELECT _id FROM tickets WHERE assignedTo = ?1" \
    " AND status IN ('To-Do', ?2)"

#define TS_SQL_DEMOTE \
    "UPDATE users SET role = 'user', skills = coalesce(?2, skills)," \
    " updatedAt = ?3 WHERE _id = ?1"

#define TS_SQL_ABSENT \
    "SELECT u._id FROM users u WHERE u.role IN ('moderator', 'admin')" \
    " AND u.status IN ('dnd', 'offline')" \
    " AND coalesce(u.lastSeen, u.createdAt) < ?1" \
    " AND EXISTS (SELECT 1 FROM tickets t WHERE t.assignedTo = u._id" \
    "  AND t.status = 'To-Do') ORDER BY u._id"


static sqlite3_stmt *
ts_prepare(ts_sqlite_t *q, const char *sql)
{
    sqlite3_stmt  *st = NULL;

    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
        ts_sqlite_fail(q, "prepare");
        return NULL;
    }
    return st;
}


/* The first column of a row, as a JSON string. */
static json_t *
ts_col0(sqlite3_stmt *st)
{
    return ts_sqlite_col_json_text(st, 0);
}


/* {_id, username} of a user for the history (username null when the
 * user is gone), or NULL after an error. */
static json_t *
ts_person(ts_sqlite_t *q, const char *id)
{
    sqlite3_stmt  *st = ts_prepare(q, TS_SQL_PERSON);
    json_t        *name = NULL;
    int            step;

    if (st == NULL) {
        return NULL;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        name = ts_sqlite_col_json_text(st, 0);
    }
    sqlite3_finalize(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        ts_sqlite_fail(q, "history person");
        return NULL;
    }
    return json_pack("{s:s, s:o}", "_id", id, "username",
                     name ? name : json_null());
}


/* The status of ticket id into status (16 bytes; "" when none). */
static ts_rc_e
ts_status_of(ts_sqlite_t *q, const char *id, char *status)
{
    sqlite3_stmt  *st = ts_prepare(q, TS_SQL_STATUS_OF);
    int            step;

    status[0] = '\0';
    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL) {
        snprintf(status, 16, "%s",
                 (const char *) sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return step == SQLITE_ROW || step == SQLITE_DONE
           ? TS_OK : ts_sqlite_fail(q, "status");
}


/* Hand one ticket back from `from` (person: {_id, username}) inside the
 * caller's transaction, with its history by actor (why: the explanation,
 * may be NULL); the status after it into status (16 bytes).
 * TS_NOT_FOUND: it no longer points at from. */
static ts_rc_e
ts_hand_back(ts_sqlite_t *q, const char *id, const char *from,
    json_t *person, const char *actor, json_t *why, int64_t now,
    char *status)
{
    sqlite3_stmt  *st;
    ts_hist_t      h[2];
    size_t         nh;
    char           was[16];
    ts_rc_e        rc;
    int            step;

    if (ts_status_of(q, id, was) != TS_OK) {
        return TS_ERR;
    }
    st = ts_prepare(q, TS_SQL_HAND_BACK);
    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_text(st, 3, from, -1, SQLITE_TRANSIENT);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        snprintf(status, 16, "%s",
                 (const char *) sqlite3_column_text(st, 0));
        step = sqlite3_step(st);
        rc = step == SQLITE_DONE ? TS_OK : ts_sqlite_fail(q, "hand back");
    } else {
        rc = step == SQLITE_DONE ? TS_NOT_FOUND
                                 : ts_sqlite_fail(q, "hand back");
    }
    sqlite3_finalize(st);
    if (rc == TS_OK) {
        nh = ts_handback_history(h, actor, person, why, was, status);
        rc = ts_sqlite_history_add(q, id, h, nh, now);
        ts_hist_release(h, nh);
    }
    return rc;
}


ts_rc_e
ts_sqlite_ticket_set_assignee(ts_store_t *s, const char *id,
    const char *from, const char *to, const char *by, json_t *assignment,
    int64_t now, const ts_job_new_t *jobs, size_t njobs)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st, *ex;
    json_t        *was = NULL, *now_to = NULL;
    ts_oid_t       job_id;
    char           status[16];
    ts_rc_e        rc;
    size_t         i;
    int64_t        one;

    if (ts_sqlite_begin(q) != TS_OK) {
        return TS_ERR;
    }
    /* the people the history names, read under the write lock */
    if (from[0] != '\0' && (was = ts_person(q, from)) == NULL) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    if (to != NULL && (now_to = ts_person(q, to)) == NULL) {
        json_decref(was);
        return ts_sqlite_rollback(q, TS_ERR);
    }
    if (to == NULL) {
        /* history: handed back by `by` (assignee from -> null) */
        rc = ts_hand_back(q, id, from, was, by, NULL, now, status);
    } else {
        st = ts_prepare(q, TS_SQL_SET_ASSIGNEE);
        rc = TS_ERR;
        if (st != NULL) {
            sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 2, to, -1, SQLITE_TRANSIENT);
            ts_sqlite_bind_text(st, 3, by);
            if (ts_sqlite_bind_json(st, 4, assignment ? assignment
                                                      : json_null()) == 0)
            {
                sqlite3_bind_int64(st, 5, now);
                sqlite3_bind_text(st, 6, from, -1, SQLITE_TRANSIENT);
                rc = ts_sqlite_update_one(q, st);
            }
            sqlite3_finalize(st);
        }
        if (rc == TS_OK) {
            /* history: assigned by hand by `by` (from -> to) */
            ts_hist_t h = { TS_HIST_ASSIGNEE, by, was, now_to, assignment,
                            0 };
            rc = ts_sqlite_history_add(q, id, &h, 1, now);
        }
    }
    json_decref(was);
    json_decref(now_to);
    if (rc == TS_NOT_FOUND) {
        /* no such ticket, or another change won the compare-and-set */
        ex = ts_prepare(q, "SELECT 1 FROM tickets WHERE _id = ?1");
        if (ex == NULL) {
            rc = TS_ERR;
        } else {
            sqlite3_bind_text(ex, 1, id, -1, SQLITE_TRANSIENT);
            rc = ts_sqlite_scalar(q, ex, &one);
            rc = rc == TS_OK ? TS_CONFLICT : rc;
            sqlite3_finalize(ex);
        }
    }
    for (i = 0; rc == TS_OK && i < njobs; i++) {
        rc = ts_sqlite_insert_job(q, &jobs[i], job_id, now);
    }
    if (rc != TS_OK) {
        return ts_sqlite_rollback(q, rc);
    }
    return ts_sqlite_commit(q);
}


ts_rc_e
ts_sqlite_user_handback(ts_store_t *s, const char *user_id, int demote,
    json_t *skills, int todo_only, const char *actor, json_t *why,
    ts_handback_job_fn job_fn, int64_t now, json_t **handed)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;
    json_t        *ids = NULL, *out, *v, *person = NULL;
    ts_job_new_t   job;
    ts_oid_t       job_id;
    char           key[TS_JOB_KEY_LEN], status[16];
    const char    *tid;
    size_t         i;
    ts_rc_e        rc;

    if (ts_sqlite_begin(q) != TS_OK) {
        return TS_ERR;
    }
    rc = TS_OK;
    if (demote) {
        /* the role is not a ticket's history; each ticket's entry below
         * names who demoted them */
        st = ts_prepare(q, TS_SQL_DEMOTE);
        rc = TS_ERR;
        if (st != NULL) {
            sqlite3_bind_text(st, 1, user_id, -1, SQLITE_TRANSIENT);
            if (skills == NULL || ts_sqlite_bind_json(st, 2, skills) == 0) {
                sqlite3_bind_int64(st, 3, now);
                rc = ts_sqlite_update_one(q, st);
            }
            sqlite3_finalize(st);
        }
    }
    if (rc == TS_OK) {
        st = ts_prepare(q, TS_SQL_OPEN_OF);
        rc = TS_ERR;
        if (st != NULL) {
            sqlite3_bind_text(st, 1, user_id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 2, todo_only ? "To-Do" : "In Progress", -1,
                              SQLITE_STATIC);
            rc = ts_sqlite_rows(q, st, ts_col0, &ids,
                                "open tickets");
            sqlite3_finalize(st);
        }
    }
    if (rc == TS_OK && json_array_size(ids) > 0
        && (person = ts_person(q, user_id)) == NULL)
    {
        rc = TS_ERR;
    }
    out = json_array();
    json_array_foreach(ids, i, v) {
        if (rc != TS_OK) {
            break;
        }
        tid = json_string_value(v);
        /* history: handed back by actor (assignee user -> null) */
        rc = ts_hand_back(q, tid, user_id, person, actor, why, now, status);
        if (rc != TS_OK) {
            break;
        }
        if (strcmp(status, "Completed") != 0) {
            if (job_fn(&job, key, tid, user_id, now) != 0) {
                json_decref(job.payload);
                rc = ts_store_fail(s, "out of memory");
                break;
            }
            rc = ts_sqlite_insert_job(q, &job, job_id, now);
            json_decref(job.payload);
        }
        json_array_append_new(out, json_pack("{s:s, s:s}", "ticketId", tid,
                                             "status", status));
    }
    json_decref(ids);
    json_decref(person);
    if (rc != TS_OK) {
        json_decref(out);
        return ts_sqlite_rollback(q, rc);
    }
    rc = ts_sqlite_commit(q);
    if (rc != TS_OK) {
        json_decref(out);
        return rc;
    }
    *handed = out;
    return TS_OK;
}


ts_rc_e
ts_sqlite_absent_assignees(ts_store_t *s, int64_t before, json_t **users)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_prepare(q, TS_SQL_ABSENT);
    ts_rc_e        rc;

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_int64(st, 1, before);
    rc = ts_sqlite_rows(q, st, ts_col0, users, "absent");
    sqlite3_finalize(st);
    return rc;
}

/*
 * ts_store_sqlite_history: tickets' history and the staff's canned
 * responses on SQLite.
 *
 * History rows are written by ts_sqlite_history_add() inside the write
 * transaction of the change they record (ticket create, status, triage,
 * assignment: ts_store_sqlite_tickets.c and ts_store_sqlite_jobs.c), so a
 * rolled-back change leaves no row and a committed one always has its
 * row.  seq (AUTOINCREMENT) is the commit order, which is the order the
 * history is read in; at is the change's own time.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_store_sqlite.h"

/* Statement slots in q->more[], after the jobs file's. */
typedef enum {
    TS_H_INSERT = TS_SQLITE_HISTORY_FIRST,
    TS_H_LIST,
    TS_C_INSERT,
    TS_C_LIST,
    TS_C_GET,
    TS_C_UPDATE,
    TS_C_DELETE,
    TS_H_END
} ts_hsql_e;

_Static_assert(TS_H_END <= TS_SQLITE_MORE_STMTS,
               "history statements overflow their q->more[] range");

#define TS_CANNED_COLS \
    "k._id, k.title, k.body, k.createdAt, k.updatedAt, k.owner, u.username"

static const char *ts_hsql_text[TS_H_END - TS_H_INSERT] = {
    [TS_H_INSERT - TS_H_INSERT] =
        "INSERT INTO history (_id, ticket, at, actor, action, fromValue,"
        " toValue, explanation, staffOnly)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [TS_H_LIST - TS_H_INSERT] =
        "SELECT h._id, h.at, h.actor, u.username, h.action, h.fromValue,"
        " h.toValue, h.explanation, h.staffOnly"
        " FROM history h LEFT JOIN users u ON u._id = h.actor"
        " WHERE h.ticket = ?1 ORDER BY h.seq",
    [TS_C_INSERT - TS_H_INSERT] =
        "INSERT INTO cannedresponses (_id, title, body, owner, createdAt,"
        " updatedAt) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    [TS_C_LIST - TS_H_INSERT] =
        "SELECT " TS_CANNED_COLS " FROM cannedresponses k"
        " LEFT JOIN users u ON u._id = k.owner"
        " ORDER BY k.title COLLATE NOCASE, k._id",
    [TS_C_GET - TS_H_INSERT] =
        "SELECT " TS_CANNED_COLS " FROM cannedresponses k"
        " LEFT JOIN users u ON u._id = k.owner WHERE k._id = ?1",
    [TS_C_UPDATE - TS_H_INSERT] =
        "UPDATE cannedresponses SET title = coalesce(?2, title),"
        " body = coalesce(?3, body), updatedAt = ?4 WHERE _id = ?1",
    [TS_C_DELETE - TS_H_INSERT] =
        "DELETE FROM cannedresponses WHERE _id = ?1",
};


static sqlite3_stmt *
ts_hstmt(ts_sqlite_t *q, ts_hsql_e which)
{
    return ts_sqlite_cached(q, &q->more[which],
                            ts_hsql_text[which - TS_H_INSERT]);
}


/* A JSON value as text into parameter i; NULL binds "null". */
static int
ts_bind_value(sqlite3_stmt *st, int i, json_t *v)
{
    if (v == NULL) {
        sqlite3_bind_text(st, i, "null", -1, SQLITE_STATIC);
        return 0;
    }
    return ts_sqlite_bind_json(st, i, v);
}


ts_rc_e
ts_sqlite_history_add(ts_sqlite_t *q, const char *ticket_id,
    const ts_hist_t *h, size_t n, int64_t now)
{
    sqlite3_stmt  *st;
    ts_oid_t       id;
    ts_rc_e        rc;
    size_t         i;

    for (i = 0; i < n; i++) {
        st = ts_hstmt(q, TS_H_INSERT);
        if (st == NULL) {
            return TS_ERR;
        }
        ts_oid_new(id);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, ticket_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, now);
        ts_sqlite_bind_text(st, 4, h[i].actor);
        sqlite3_bind_text(st, 5, h[i].action, -1, SQLITE_TRANSIENT);
        if (ts_bind_value(st, 6, h[i].from) != 0
            || ts_bind_value(st, 7, h[i].to) != 0
            || (h[i].explanation
                && ts_sqlite_bind_json(st, 8, h[i].explanation) != 0))
        {
            sqlite3_reset(st);
            return ts_store_fail(&q->base, "history: out of memory");
        }
        sqlite3_bind_int(st, 9, h[i].staff_only ? 1 : 0);
        rc = ts_sqlite_done(q, st);
        if (rc != TS_OK) {
            return rc == TS_CONFLICT ? TS_ERR : rc;
        }
    }
    return TS_OK;
}


/* A JSON column we wrote, or null. */
static json_t *
ts_col_value(sqlite3_stmt *st, int i)
{
    const char  *t = (const char *) sqlite3_column_text(st, i);
    json_t      *v = t ? json_loads(t, JSON_DECODE_ANY, NULL) : NULL;

    return v ? v : json_null();
}


static json_t *
ts_row_history(sqlite3_stmt *st)
{
    json_t  *e, *actor = json_null();

    if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
        actor = json_pack("{s:o, s:o}",
                          "_id", ts_sqlite_col_json_text(st, 2),
                          "username", ts_sqlite_col_json_text(st, 3));
    }
    e = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:b}",
                  "_id", ts_sqlite_col_json_text(st, 0),
                  "at", ts_sqlite_col_json_time(st, 1),
                  "actor", actor,
                  "action", ts_sqlite_col_json_text(st, 4),
                  "from", ts_col_value(st, 5),
                  "to", ts_col_value(st, 6),
                  "staffOnly", sqlite3_column_int(st, 8) != 0);
    if (e && sqlite3_column_type(st, 7) != SQLITE_NULL) {
        json_object_set_new(e, "explanation", ts_col_value(st, 7));
    }
    return e;
}


ts_rc_e
ts_sqlite_ticket_history(ts_store_t *s, const char *id, json_t **history)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_hstmt(q, TS_H_LIST);

    if (st != NULL) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    }
    return ts_sqlite_rows(q, st, ts_row_history, history, "history");
}


/* --- canned responses ------------------------------------------------------ */

static json_t *
ts_row_canned(sqlite3_stmt *st)
{
    return json_pack("{s:o, s:o, s:o, s:{s:o, s:o}, s:o, s:o}",
                     "_id", ts_sqlite_col_json_text(st, 0),
                     "title", ts_sqlite_col_json_text(st, 1),
                     "body", ts_sqlite_col_json_text(st, 2),
                     "owner", "_id", ts_sqlite_col_json_text(st, 5),
                     "username", ts_sqlite_col_json_text(st, 6),
                     "createdAt", ts_sqlite_col_json_time(st, 3),
                     "updatedAt", ts_sqlite_col_json_time(st, 4));
}


ts_rc_e
ts_sqlite_canned_create(ts_store_t *s, const char *id, const char *owner,
    const char *title, const char *body, int64_t now)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_hstmt(q, TS_C_INSERT);

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, title, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, body, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, owner, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, now);
    return ts_sqlite_done(q, st);
}


ts_rc_e
ts_sqlite_canned_list(ts_store_t *s, json_t **out)
{
    ts_sqlite_t  *q = (ts_sqlite_t *) s;

    return ts_sqlite_rows(q, ts_hstmt(q, TS_C_LIST), ts_row_canned, out,
                          "canned responses");
}


ts_rc_e
ts_sqlite_canned_get(ts_store_t *s, const char *id, json_t **doc,
    ts_oid_t owner)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_hstmt(q, TS_C_GET);
    const char    *o;
    int            step;

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        sqlite3_reset(st);
        return step == SQLITE_DONE ? TS_NOT_FOUND
                                   : ts_sqlite_fail(q, "canned response");
    }
    if (owner) {
        o = (const char *) sqlite3_column_text(st, 5);
        snprintf(owner, sizeof(ts_oid_t), "%s", o ? o : "");
    }
    if (doc) {
        *doc = ts_row_canned(st);
    }
    sqlite3_reset(st);
    return doc == NULL || *doc ? TS_OK : ts_store_fail(s, "out of memory");
}


ts_rc_e
ts_sqlite_canned_update(ts_store_t *s, const char *id, const char *title,
    const char *body, int64_t now)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_hstmt(q, TS_C_UPDATE);

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    ts_sqlite_bind_text(st, 2, title);
    ts_sqlite_bind_text(st, 3, body);
    sqlite3_bind_int64(st, 4, now);
    return ts_sqlite_update_one(q, st);
}


ts_rc_e
ts_sqlite_canned_delete(ts_store_t *s, const char *id)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_hstmt(q, TS_C_DELETE);

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    return ts_sqlite_update_one(q, st);
}

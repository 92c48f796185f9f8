/*
 * ts_store_sqlite_tickets: tickets, comments and the users-by-role list
 * on SQLite.  Moderator requests are in ts_store_sqlite_modreqs.c,
 * analytics in ts_store_sqlite_analytics.c.
 *
 * Lists are served from indexes in updatedAt order; their totals come from
 * the trigger-kept ticket_counts table when a counter exists for the query
 * (admin with or without status/priority; a user's own list), and from the
 * narrow createdBy/assignedTo index ranges otherwise, so no list ever
 * counts the whole table.  Every write that a job depends on stores the job in the
 * same BEGIN IMMEDIATE transaction.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_store_sqlite.h"
#include "ts_validate.h"

/* Statement slots in q->more[], from 0 (see ts_store_sqlite.h). */
typedef enum {
    TS_T_INSERT = 0,
    TS_T_GET,
    TS_T_SET_STATUS,
    TS_T_TOUCH,
    TS_T_COMMENT_INSERT,
    TS_T_COMMENT_LIST,
    TS_T_USERS_ROLE,
    TS_T_COUNT_KEY,
    TS_T_STATUS,
    TS_T_LIST_BASE,              /* list variants, then count variants */
    TS_T_LIST_SHAPES = 24,       /* per kind: see ts_list_stmt */
    TS_T_END = TS_T_LIST_BASE + 2 * TS_T_LIST_SHAPES
} ts_tsql_e;

_Static_assert(TS_T_END <= TS_SQLITE_MODREQ_FIRST,
               "ticket statements overflow their q->more[] range");
_Static_assert(TS_SCOPE_MODERATOR * 8 + 7 < TS_T_LIST_SHAPES,
               "a list shape past its range");

#define TS_PEOPLE_COLS \
    " c._id, c.email, c.username, c.status," \
    " a._id, a.email, a.username, a.status"

#define TS_TICKET_COLS \
    "t._id, t.title, t.description, t.status, t.priority, t.summary," \
    " t.helpfulNotes, t.relatedSkills, t.deadline, t.createdAt," \
    " t.updatedAt, t.triage," TS_PEOPLE_COLS

#define TS_TICKET_FROM \
    " FROM tickets t JOIN users c ON c._id = t.createdBy" \
    " LEFT JOIN users a ON a._id = t.assignedTo"

static const char *ts_tsql_text[TS_T_LIST_BASE] = {
    [TS_T_INSERT] =
        "INSERT INTO tickets (_id, title, description, status, relatedSkills,"
        " createdBy, createdAt, updatedAt)"
        " VALUES (?1, ?2, ?3, 'To-Do', '[]', ?4, ?5, ?5)",
    [TS_T_GET] =
        "SELECT " TS_TICKET_COLS ", t.assignment, t.createdBy,"
        " t.assignedTo, (SELECT count(*) FROM comments k"
        " WHERE k.ticket = t._id)" TS_TICKET_FROM " WHERE t._id = ?1",
    [TS_T_SET_STATUS] =
        "UPDATE tickets SET status = ?2, updatedAt = ?3,"
        " completedAt = CASE WHEN ?2 = 'Completed' THEN ?3 ELSE NULL END"
        " WHERE _id = ?1",
    [TS_T_TOUCH] = "UPDATE tickets SET updatedAt = ?2 WHERE _id = ?1",
    /* nothing inserted once the ticket holds ?7 comments: the count is
     * read inside the write transaction, so no racing writer passes it */
    [TS_T_COMMENT_INSERT] =
        "INSERT INTO comments (_id, ticket, author, text, role, createdAt)"
        " SELECT ?1, ?2, ?3, ?4, ?5, ?6"
        " WHERE (SELECT count(*) FROM comments WHERE ticket = ?2) < ?7",
    [TS_T_COMMENT_LIST] =
        "SELECT k._id, k.text, k.role, k.createdAt,"
        " u._id, u.email, u.username, u.status"
        " FROM comments k JOIN users u ON u._id = k.author"
        " WHERE k.ticket = ?1 ORDER BY k.createdAt, k._id",
    [TS_T_USERS_ROLE] =
        "SELECT _id, email, username, status FROM users WHERE role = ?1"
        " ORDER BY createdAt, _id",
    [TS_T_COUNT_KEY] = "SELECT n FROM ticket_counts WHERE key = ?1",
    [TS_T_STATUS] = "SELECT status FROM tickets WHERE _id = ?1",
};


static sqlite3_stmt *
ts_tstmt(ts_sqlite_t *q, ts_tsql_e which)
{
    return ts_sqlite_cached(q, &q->more[which], ts_tsql_text[which]);
}


/* A JSON document stored as text, or null. */
static json_t *
ts_col_doc_json(sqlite3_stmt *st, int i)
{
    const char  *t = (const char *) sqlite3_column_text(st, i);
    json_t      *v = t ? json_loads(t, JSON_DECODE_ANY, NULL) : NULL;

    return v ? v : json_null();
}


/* {_id, email, username, status} from four columns, or null. */
json_t *
ts_col_person(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        return json_null();
    }
    return json_pack("{s:o, s:o, s:o, s:o}",
                     "_id", ts_sqlite_col_json_text(st, i),
                     "email", ts_sqlite_col_json_text(st, i + 1),
                     "username", ts_sqlite_col_json_text(st, i + 2),
                     "status", ts_sqlite_col_json_text(st, i + 3));
}


static void
ts_jw_col_text(ts_jw_t *w, sqlite3_stmt *st, int i)
{
    ts_jw_str(w, (const char *) sqlite3_column_text(st, i),
              (size_t) sqlite3_column_bytes(st, i));
}


static void
ts_jw_col_time(ts_jw_t *w, sqlite3_stmt *st, int i)
{
    ts_jw_time(w, sqlite3_column_type(st, i) == SQLITE_NULL
                  ? 0 : sqlite3_column_int64(st, i));
}


/* A column holding JSON we wrote (an array or object), or the fallback. */
static void
ts_jw_col_doc(ts_jw_t *w, sqlite3_stmt *st, int i, const char *fallback)
{
    const char  *t = (const char *) sqlite3_column_text(st, i);
    size_t       n = (size_t) sqlite3_column_bytes(st, i);

    if (t && n >= 2 && (t[0] == '[' || t[0] == '{')) {
        ts_jw_raw(w, t, n);
    } else {
        ts_jw_lit(w, fallback);
    }
}


static void
ts_jw_col_person(ts_jw_t *w, sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        ts_jw_raw(w, "null", 4);
        return;
    }
    TS_JW_LIT(w, "{\"_id\":");
    ts_jw_col_text(w, st, i);
    TS_JW_LIT(w, ",\"email\":");
    ts_jw_col_text(w, st, i + 1);
    TS_JW_LIT(w, ",\"username\":");
    ts_jw_col_text(w, st, i + 2);
    TS_JW_LIT(w, ",\"status\":");
    ts_jw_col_text(w, st, i + 3);
    ts_jw_raw(w, "}", 1);
}


/*
 * The public JSON of a ticket row selected with TS_TICKET_COLS, written as
 * text: the list is the hottest route, and building a jansson tree per row
 * only to print it cost more than the query.  Without staff, the triage
 * provenance (provider, model, the provider's error) is left out.
 */
static void
ts_jw_ticket(ts_jw_t *w, sqlite3_stmt *st, int staff)
{
    TS_JW_LIT(w, "{\"_id\":");
    ts_jw_col_text(w, st, 0);
    TS_JW_LIT(w, ",\"title\":");
    ts_jw_col_text(w, st, 1);
    TS_JW_LIT(w, ",\"description\":");
    ts_jw_col_text(w, st, 2);
    TS_JW_LIT(w, ",\"status\":");
    ts_jw_col_text(w, st, 3);
    TS_JW_LIT(w, ",\"priority\":");
    ts_jw_col_text(w, st, 4);
    TS_JW_LIT(w, ",\"summary\":");
    ts_jw_col_text(w, st, 5);
    TS_JW_LIT(w, ",\"helpfulNotes\":");
    ts_jw_col_text(w, st, 6);
    TS_JW_LIT(w, ",\"relatedSkills\":");
    ts_jw_col_doc(w, st, 7, "[]");
    TS_JW_LIT(w, ",\"deadline\":");
    ts_jw_col_time(w, st, 8);
    TS_JW_LIT(w, ",\"createdAt\":");
    ts_jw_col_time(w, st, 9);
    TS_JW_LIT(w, ",\"updatedAt\":");
    ts_jw_col_time(w, st, 10);
    if (staff) {
        TS_JW_LIT(w, ",\"triage\":");
        ts_jw_col_doc(w, st, 11, "null");
    }
    TS_JW_LIT(w, ",\"createdBy\":");
    ts_jw_col_person(w, st, 12);
    TS_JW_LIT(w, ",\"assignedTo\":");
    ts_jw_col_person(w, st, 16);
    ts_jw_raw(w, "}", 1);
}


/* The same document as a jansson value, for the routes that edit it. */
static json_t *
ts_row_ticket(sqlite3_stmt *st)
{
    ts_jw_t   w;
    char     *text;
    size_t    len;
    json_t   *t;

    ts_jw_init(&w, 1024);
    ts_jw_ticket(&w, st, 1);
    text = ts_jw_finish(&w, &len);
    if (text == NULL) {
        return NULL;
    }
    t = json_loadb(text, len, 0, NULL);
    free(text);
    return t;
}


/* Store each job of a transaction; TS_OK or the first failure. */
static ts_rc_e
ts_insert_jobs(ts_sqlite_t *q, const ts_job_new_t *jobs, size_t njobs,
    int64_t now)
{
    ts_oid_t  id;
    ts_rc_e   rc;

    for (size_t i = 0; i < njobs; i++) {
        rc = ts_sqlite_insert_job(q, &jobs[i], id, now);
        if (rc != TS_OK) {
            return rc;
        }
    }
    return TS_OK;
}


/* Commit a transaction whose last write returned rc (rolled back if not
 * TS_OK), then its jobs. */
ts_rc_e
ts_finish(ts_sqlite_t *q, ts_rc_e rc, const ts_job_new_t *jobs, size_t njobs,
    int64_t now)
{
    if (rc == TS_OK) {
        rc = ts_insert_jobs(q, jobs, njobs, now);
    }
    if (rc != TS_OK) {
        return ts_sqlite_rollback(q, rc);
    }
    return ts_sqlite_commit(q);
}


ts_rc_e
ts_sqlite_ticket_create(ts_store_t *s, const char *id, const char *title,
    const char *description, const char *created_by, int64_t now,
    const ts_job_new_t *jobs, size_t njobs)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;
    ts_rc_e        rc;

    if (ts_sqlite_begin(q) != TS_OK) {
        return TS_ERR;
    }
    st = ts_tstmt(q, TS_T_INSERT);
    if (st == NULL) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, title, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, description, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, created_by, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, now);
    rc = ts_sqlite_done(q, st);
    if (rc == TS_OK) {
        json_t     *to = json_string("To-Do");
        ts_hist_t   h = { TS_HIST_CREATED, created_by, NULL, to, NULL, 0 };

        rc = ts_sqlite_history_add(q, id, &h, 1, now);
        json_decref(to);
    }
    return ts_finish(q, rc, jobs, njobs, now);
}


static json_t *
ts_row_comment(sqlite3_stmt *st)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o}",
                     "_id", ts_sqlite_col_json_text(st, 0),
                     "author", ts_col_person(st, 4),
                     "text", ts_sqlite_col_json_text(st, 1),
                     "role", ts_sqlite_col_json_text(st, 2),
                     "createdAt", ts_sqlite_col_json_time(st, 3));
}


/* A ticket's comments as jansson values (with the ticket document). */
static ts_rc_e
ts_comments_json(ts_sqlite_t *q, const char *ticket_id, json_t **out)
{
    sqlite3_stmt  *st = ts_tstmt(q, TS_T_COMMENT_LIST);

    if (st != NULL) {
        sqlite3_bind_text(st, 1, ticket_id, -1, SQLITE_TRANSIENT);
    }
    return ts_sqlite_rows(q, st, ts_row_comment, out, "comments");
}


/* The same, written as text (the shape of ts_row_comment). */
ts_rc_e
ts_sqlite_comment_list(ts_store_t *s, const char *ticket_id, ts_jw_t *w)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_tstmt(q, TS_T_COMMENT_LIST);
    int            rc, n = 0;

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, ticket_id, -1, SQLITE_TRANSIENT);
    ts_jw_raw(w, "[", 1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++) {
            ts_jw_raw(w, ",", 1);
        }
        TS_JW_LIT(w, "{\"_id\":");
        ts_jw_col_text(w, st, 0);
        TS_JW_LIT(w, ",\"author\":");
        ts_jw_col_person(w, st, 4);
        TS_JW_LIT(w, ",\"text\":");
        ts_jw_col_text(w, st, 1);
        TS_JW_LIT(w, ",\"role\":");
        ts_jw_col_text(w, st, 2);
        TS_JW_LIT(w, ",\"createdAt\":");
        ts_jw_col_time(w, st, 3);
        ts_jw_raw(w, "}", 1);
    }
    sqlite3_reset(st);
    ts_jw_raw(w, "]", 1);
    return rc == SQLITE_DONE ? TS_OK : ts_sqlite_fail(q, "comments");
}


ts_rc_e
ts_sqlite_ticket_get(ts_store_t *s, const char *id, int with_comments,
    json_t **doc, ts_ticket_keys_t *keys)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_tstmt(q, TS_T_GET);
    const char    *v;
    json_t        *t = NULL, *comments;
    int            rc;

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? TS_NOT_FOUND : ts_sqlite_fail(q, "get");
    }

    if (keys) {
        memset(keys, 0, sizeof(*keys));
        v = (const char *) sqlite3_column_text(st, 21);
        snprintf(keys->created_by, sizeof(keys->created_by), "%s",
                 v ? v : "");
        v = (const char *) sqlite3_column_text(st, 22);
        snprintf(keys->assigned_to, sizeof(keys->assigned_to), "%s",
                 v ? v : "");
        v = (const char *) sqlite3_column_text(st, 3);
        snprintf(keys->status, sizeof(keys->status), "%s", v ? v : "");
        keys->comments = sqlite3_column_int64(st, 23);
        keys->created_at = sqlite3_column_int64(st, 9);
    }
    if (doc) {
        t = ts_row_ticket(st);
        if (t) {
            json_object_set_new(t, "assignment", ts_col_doc_json(st, 20));
        }
    }
    sqlite3_reset(st);

    if (doc == NULL) {
        return TS_OK;
    }
    if (t == NULL) {
        return ts_store_fail(s, "out of memory");
    }
    if (with_comments) {
        if (ts_comments_json(q, id, &comments) != TS_OK) {
            json_decref(t);
            return TS_ERR;
        }
        json_object_set_new(t, "comments", comments);
    }
    *doc = t;
    return TS_OK;
}


/*
 * The list and count statements for a query's shape: scope (3) x status x
 * priority x search = 24 variants each, built once per connection.
 * Bindings: ?1 user, ?2 status, ?3 priority, ?4 pattern, ?5 limit,
 * ?6 offset.
 */
static sqlite3_stmt *
ts_list_stmt(ts_sqlite_t *q, const ts_ticket_query_t *tq, int count)
{
    char           sql[2048], where[512];
    const char    *from, *plus;
    sqlite3_stmt **slot;
    int            shape, n = 0;
    int    has_status = tq->status != NULL;
    int    has_prio = tq->priority != NULL;
    int    has_search = tq->search != NULL;

    shape = (int) tq->scope * 8 + has_status * 4 + has_prio * 2 + has_search;
    slot = &q->more[TS_T_LIST_BASE + count * TS_T_LIST_SHAPES + shape];
    if (*slot != NULL) {
        return ts_sqlite_cached(q, slot, NULL);
    }

    /*
     * Which index leads: a narrow scope's own (createdBy, or the union of
     * createdBy and assignedTo ranges joined first with CROSS JOIN, which
     * SQLite never reorders); "+col" keeps the planner from preferring the
     * status/priority indexes, which span every user's tickets.
     */
    from = TS_TICKET_FROM;
    where[0] = '\0';
    if (tq->scope == TS_SCOPE_CREATOR) {
        n += snprintf(where + n, sizeof(where) - n, " AND t.createdBy = ?1");
    } else if (tq->scope == TS_SCOPE_MODERATOR) {
        from = " FROM (SELECT rowid AS rid FROM tickets WHERE createdBy = ?1"
               " UNION SELECT rowid FROM tickets WHERE assignedTo = ?1) m"
               " CROSS JOIN tickets t ON t.rowid = m.rid"
               " JOIN users c ON c._id = t.createdBy"
               " LEFT JOIN users a ON a._id = t.assignedTo";
    }
    plus = tq->scope == TS_SCOPE_ALL ? "" : "+";
    if (has_status) {
        n += snprintf(where + n, sizeof(where) - n, " AND %st.status = ?2",
                      plus);
    }
    if (has_prio) {
        n += snprintf(where + n, sizeof(where) - n, " AND %st.priority = ?3",
                      plus);
    }
    if (has_search) {
        /* a literal substring: instr() has no wildcards to escape */
        n += snprintf(where + n, sizeof(where) - n,
                      " AND (instr(ts_fold(t.title), ?4) > 0"
                      " OR instr(ts_fold(t.description), ?4) > 0)");
    }

    if (count) {
        snprintf(sql, sizeof(sql), "SELECT count(*)%s WHERE 1%s", from,
                 where);
    } else {
        snprintf(sql, sizeof(sql), "SELECT " TS_TICKET_COLS "%s"
                 " WHERE 1%s ORDER BY t.updatedAt DESC, t._id"
                 " LIMIT ?5 OFFSET ?6", from, where);
    }
    return ts_sqlite_cached(q, slot, sql);
}


static void
ts_list_bind(sqlite3_stmt *st, const ts_ticket_query_t *tq, const char *pat)
{
    if (tq->scope != TS_SCOPE_ALL) {
        sqlite3_bind_text(st, 1, tq->user_id, -1, SQLITE_TRANSIENT);
    }
    if (tq->status) {
        sqlite3_bind_text(st, 2, tq->status, -1, SQLITE_TRANSIENT);
    }
    if (tq->priority) {
        sqlite3_bind_text(st, 3, tq->priority, -1, SQLITE_TRANSIENT);
    }
    if (pat) {
        sqlite3_bind_text(st, 4, pat, -1, SQLITE_TRANSIENT);
    }
}


/* The total from ticket_counts for a query without search whose scope
 * and filters have a counter: admin with status and/or priority, or a
 * creator's own list without filters; 0 when there is no counter. */
static int
ts_counter_key(const ts_ticket_query_t *tq, char *key, size_t len)
{
    if (tq->search) {
        return 0;
    }
    if (tq->scope == TS_SCOPE_CREATOR && !tq->status && !tq->priority) {
        snprintf(key, len, "u:%s", tq->user_id);
    } else if (tq->scope != TS_SCOPE_ALL) {
        return 0;
    } else if (tq->status && tq->priority) {
        snprintf(key, len, "sp:%s|%s", tq->status, tq->priority);
    } else if (tq->status) {
        snprintf(key, len, "s:%s", tq->status);
    } else if (tq->priority) {
        snprintf(key, len, "p:%s", tq->priority);
    } else {
        snprintf(key, len, "all");
    }
    return 1;
}


static ts_rc_e
ts_counted_total(ts_sqlite_t *q, const char *key, int64_t *total)
{
    sqlite3_stmt  *st = ts_tstmt(q, TS_T_COUNT_KEY);
    ts_rc_e        rc;

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    rc = ts_sqlite_scalar(q, st, total);
    if (rc == TS_NOT_FOUND) {
        *total = 0;
        return TS_OK;
    }
    return rc;
}


ts_rc_e
ts_sqlite_ticket_list(ts_store_t *s, const ts_ticket_query_t *tq,
    ts_jw_t *out, int64_t *total)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;
    char          *pat = NULL, key[128];
    ts_rc_e        rc = TS_ERR;
    int            src, rows = 0;

    if (tq->search) {
        pat = ts_utf8_fold(tq->search, strlen(tq->search), NULL);
        if (pat == NULL) {
            return ts_store_fail(s, "out of memory");
        }
    }

    if (ts_counter_key(tq, key, sizeof(key))) {
        rc = ts_counted_total(q, key, total);
    } else {
        st = ts_list_stmt(q, tq, 1);
        if (st != NULL) {
            ts_list_bind(st, tq, pat);
            rc = ts_sqlite_scalar(q, st, total);
        }
    }
    if (rc != TS_OK) {
        goto done;
    }

    rc = TS_ERR;
    st = ts_list_stmt(q, tq, 0);
    if (st == NULL) {
        goto done;
    }
    ts_list_bind(st, tq, pat);
    sqlite3_bind_int64(st, 5, tq->limit);
    sqlite3_bind_int64(st, 6, tq->offset);

    ts_jw_raw(out, "[", 1);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (rows++) {
            ts_jw_raw(out, ",", 1);
        }
        ts_jw_ticket(out, st, tq->scope != TS_SCOPE_CREATOR);
    }
    ts_jw_raw(out, "]", 1);
    sqlite3_reset(st);
    if (src != SQLITE_DONE) {
        rc = ts_sqlite_fail(q, "list");
        goto done;
    }
    rc = TS_OK;

done:
    free(pat);
    return rc;
}


ts_rc_e
ts_sqlite_ticket_set_status(ts_store_t *s, const char *id, const char *status,
    const char *actor, int64_t now, const ts_job_new_t *jobs, size_t njobs)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;
    json_t        *from = NULL, *to;
    ts_rc_e        rc;

    if (ts_sqlite_begin(q) != TS_OK) {
        return TS_ERR;
    }
    /* the status before, read under the write lock */
    st = ts_tstmt(q, TS_T_STATUS);
    if (st == NULL) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) {
        from = ts_sqlite_col_json_text(st, 0);
    }
    sqlite3_reset(st);

    st = ts_tstmt(q, TS_T_SET_STATUS);
    if (st == NULL) {
        json_decref(from);
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, status, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, now);
    rc = ts_sqlite_update_one(q, st);
    to = json_string(status);
    if (rc == TS_OK && !json_equal(from, to)) {
        ts_hist_t  h = { TS_HIST_STATUS, actor, from, to, NULL, 0 };

        rc = ts_sqlite_history_add(q, id, &h, 1, now);
    }
    json_decref(from);
    json_decref(to);
    return ts_finish(q, rc, jobs, njobs, now);
}


ts_rc_e
ts_sqlite_comment_add(ts_store_t *s, const char *ticket_id,
    const char *comment_id, const char *author, const char *text,
    const char *role, int64_t now, int64_t max_comments,
    const ts_job_new_t *jobs, size_t njobs)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;
    ts_rc_e        rc;

    if (ts_sqlite_begin(q) != TS_OK) {
        return TS_ERR;
    }
    st = ts_tstmt(q, TS_T_TOUCH);
    if (st == NULL) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 1, ticket_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now);
    rc = ts_sqlite_update_one(q, st);
    if (rc != TS_OK) {
        return ts_sqlite_rollback(q, rc);
    }

    st = ts_tstmt(q, TS_T_COMMENT_INSERT);
    if (st == NULL) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 1, comment_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, ticket_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, author, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, role, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_int64(st, 7, max_comments);
    rc = ts_sqlite_update_one(q, st);
    return ts_finish(q, rc == TS_NOT_FOUND ? TS_CONFLICT : rc, jobs, njobs,
                     now);
}


static json_t *
ts_row_person(sqlite3_stmt *st)
{
    return ts_col_person(st, 0);
}


ts_rc_e
ts_sqlite_user_list_role(ts_store_t *s, ts_role_e role, json_t **out)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_tstmt(q, TS_T_USERS_ROLE);

    if (st != NULL) {
        sqlite3_bind_text(st, 1, ts_role_name(role), -1, SQLITE_STATIC);
    }
    return ts_sqlite_rows(q, st, ts_row_person, out, "users by role");
}

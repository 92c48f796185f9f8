/*
 * ts_store_sqlite_tickets: tickets, comments, moderator requests and
 * analytics on SQLite.
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

#define TS_DAY_MS  (24 * 3600 * 1000LL)

/* Statement slots in q->more[]. */
typedef enum {
    TS_T_INSERT = 0,
    TS_T_GET,
    TS_T_SET_STATUS,
    TS_T_TOUCH,
    TS_T_COMMENT_INSERT,
    TS_T_COMMENT_LIST,
    TS_T_USERS_ROLE,
    TS_T_COUNT_KEY,
    TS_T_MR_INSERT,
    TS_T_MR_GET,
    TS_T_MR_LATEST,
    TS_T_MR_LAST_REJ,
    TS_T_MR_PENDING,
    TS_T_MR_DECIDE,
    TS_T_MR_EXISTS,
    TS_T_USER_SKILLS,
    TS_T_USER_PROMOTE,
    TS_T_A_COUNTS,
    TS_T_A_CREATED,
    TS_T_A_RESOLVED,
    TS_T_A_BACKLOG,
    TS_T_A_RESOLUTION,
    TS_T_A_FIRST_RESPONSE,
    TS_T_A_MODERATORS,
    TS_T_LIST_BASE,              /* list variants, then count variants */
    TS_T_LIST_SHAPES = 24,       /* per kind: see ts_list_stmt */
    TS_T_END = TS_T_LIST_BASE + 2 * TS_T_LIST_SHAPES
} ts_tsql_e;

_Static_assert(TS_T_END <= TS_SQLITE_TICKET_STMTS,
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

#define TS_MR_COLS \
    "m._id, m.applicant, m.username, m.email, m.skills, m.status," \
    " m.reviewedBy, m.createdAt, m.updatedAt, m.rejectedAt"

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
    [TS_T_MR_INSERT] =
        "INSERT INTO moderatorrequests (_id, applicant, username, email,"
        " skills, status, createdAt, updatedAt)"
        " VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6)",
    [TS_T_MR_GET] =
        "SELECT " TS_MR_COLS " FROM moderatorrequests m WHERE m._id = ?1",
    [TS_T_MR_LATEST] =
        "SELECT " TS_MR_COLS " FROM moderatorrequests m"
        " WHERE m.applicant = ?1 ORDER BY m.createdAt DESC, m._id DESC"
        " LIMIT 1",
    [TS_T_MR_LAST_REJ] =
        "SELECT max(rejectedAt) FROM moderatorrequests"
        " WHERE applicant = ?1 AND status = 'rejected'",
    [TS_T_MR_PENDING] =
        "SELECT " TS_MR_COLS ", u._id, u.email, u.username, u.status"
        " FROM moderatorrequests m JOIN users u ON u._id = m.applicant"
        " WHERE m.status = 'pending' ORDER BY m.createdAt DESC, m._id DESC",
    [TS_T_MR_DECIDE] =
        "UPDATE moderatorrequests SET status = ?2, reviewedBy = ?3,"
        " updatedAt = ?4, rejectedAt = CASE WHEN ?2 = 'rejected' THEN ?4"
        " ELSE NULL END WHERE _id = ?1 AND status = 'pending'",
    [TS_T_MR_EXISTS] =
        "SELECT applicant FROM moderatorrequests WHERE _id = ?1",
    [TS_T_USER_SKILLS] = "SELECT skills, role FROM users WHERE _id = ?1",
    [TS_T_USER_PROMOTE] =
        "UPDATE users SET role = CASE WHEN role = 'user' THEN 'moderator'"
        " ELSE role END, skills = ?2, updatedAt = ?3 WHERE _id = ?1",
    [TS_T_A_COUNTS] = "SELECT key, n FROM ticket_counts",
    [TS_T_A_CREATED] =
        "SELECT createdAt / 86400000, count(*) FROM tickets"
        " WHERE createdAt >= ?1 GROUP BY 1",
    [TS_T_A_RESOLVED] =
        "SELECT completedAt / 86400000, count(*) FROM tickets"
        " WHERE completedAt >= ?1 GROUP BY 1",
    [TS_T_A_BACKLOG] =
        "SELECT createdAt FROM tickets INDEXED BY tickets_status"
        " WHERE status IN ('To-Do', 'In Progress')",
    [TS_T_A_RESOLUTION] =
        "SELECT completedAt - createdAt FROM tickets"
        " WHERE completedAt >= ?1 LIMIT 200000",
    [TS_T_A_FIRST_RESPONSE] =
        "SELECT min(k.createdAt) - t.createdAt FROM tickets t"
        " JOIN comments k ON k.ticket = t._id AND k.author != t.createdBy"
        " WHERE t.createdAt >= ?1 GROUP BY t._id LIMIT 200000",
    [TS_T_A_MODERATORS] =
        "SELECT u._id, u.email, u.username, u.status,"
        " u.totalTicketsResolved, u.averageResolutionTimeHours,"
        " (SELECT count(*) FROM tickets t WHERE t.assignedTo = u._id"
        "  AND t.status IN ('To-Do', 'In Progress')), u.role"
        " FROM users u WHERE u.role IN ('moderator', 'admin')"
        " ORDER BY u.createdAt, u._id",
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
static json_t *
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
static ts_rc_e
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
    return ts_finish(q, ts_sqlite_done(q, st), jobs, njobs, now);
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
    int64_t now, const ts_job_new_t *jobs, size_t njobs)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st;

    if (ts_sqlite_begin(q) != TS_OK) {
        return TS_ERR;
    }
    st = ts_tstmt(q, TS_T_SET_STATUS);
    if (st == NULL) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, status, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, now);
    return ts_finish(q, ts_sqlite_update_one(q, st), jobs, njobs, now);
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


/* --- moderator requests --------------------------------------------------- */

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
    st = ts_tstmt(q, TS_T_MR_INSERT);
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
ts_modreq_one(ts_sqlite_t *q, ts_tsql_e which, const char *key, json_t **doc)
{
    sqlite3_stmt  *st = ts_tstmt(q, which);
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
    sqlite3_stmt  *st = ts_tstmt(q, TS_T_MR_LAST_REJ);
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

    return ts_sqlite_rows(q, ts_tstmt(q, TS_T_MR_PENDING),
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

    st = ts_tstmt(q, TS_T_USER_SKILLS);
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
    st = ts_tstmt(q, TS_T_USER_PROMOTE);
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
    st = ts_tstmt(q, TS_T_MR_DECIDE);
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
        st = ts_tstmt(q, TS_T_MR_EXISTS);
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


/* --- analytics ------------------------------------------------------------ */

static int
ts_cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


/* {medianHours, p90Hours, samples} of durations (ms) a statement yields. */
static ts_rc_e
ts_durations(ts_sqlite_t *q, ts_tsql_e which, int64_t since, json_t **out)
{
    sqlite3_stmt  *st = ts_tstmt(q, which);
    double        *v = NULL, *nv;
    size_t         n = 0, cap = 0;
    int            rc;

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_int64(st, 1, since);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            nv = realloc(v, cap * sizeof(double));
            if (nv == NULL) {
                break;
            }
            v = nv;
        }
        v[n++] = (double) sqlite3_column_int64(st, 0) / 3600000.0;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        free(v);
        return ts_sqlite_fail(q, "durations");
    }

    qsort(v, n, sizeof(double), ts_cmp_double);
    *out = json_pack("{s:o, s:o, s:I}",
                     "medianHours", n ? json_real(ts_percentile(v, n, 0.5))
                                      : json_null(),
                     "p90Hours", n ? json_real(ts_percentile(v, n, 0.9))
                                   : json_null(),
                     "samples", (json_int_t) n);
    free(v);
    return *out ? TS_OK : TS_ERR;
}


/* [{date, created, resolved}] for the 30 days ending today (UTC). */
static ts_rc_e
ts_daily(ts_sqlite_t *q, int64_t now, json_t **out)
{
    int64_t        today = now / TS_DAY_MS, first = today - 29;
    int64_t        created[30] = { 0 }, resolved[30] = { 0 }, d;
    sqlite3_stmt  *st;
    json_t        *arr;
    char           date[32];
    int            rc, pass;

    for (pass = 0; pass < 2; pass++) {
        st = ts_tstmt(q, pass ? TS_T_A_RESOLVED : TS_T_A_CREATED);
        if (st == NULL) {
            return TS_ERR;
        }
        sqlite3_bind_int64(st, 1, first * TS_DAY_MS);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            d = sqlite3_column_int64(st, 0) - first;
            if (d >= 0 && d < 30) {
                (pass ? resolved : created)[d] = sqlite3_column_int64(st, 1);
            }
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            return ts_sqlite_fail(q, "daily");
        }
    }

    arr = json_array();
    for (d = 0; d < 30; d++) {
        ts_iso_time((first + d) * TS_DAY_MS, date);
        date[10] = '\0';
        json_array_append_new(arr, json_pack("{s:s, s:I, s:I}",
                                             "date", date,
                                             "created", (json_int_t) created[d],
                                             "resolved",
                                             (json_int_t) resolved[d]));
    }
    *out = arr;
    return TS_OK;
}


static ts_rc_e
ts_backlog(ts_sqlite_t *q, int64_t now, json_t **out)
{
    sqlite3_stmt  *st = ts_tstmt(q, TS_T_A_BACKLOG);
    json_int_t     b[4] = { 0 };
    int64_t        age;
    int            rc;

    if (st == NULL) {
        return TS_ERR;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        age = now - sqlite3_column_int64(st, 0);
        b[age < TS_DAY_MS ? 0 : age < 3 * TS_DAY_MS ? 1
          : age < 7 * TS_DAY_MS ? 2 : 3]++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        return ts_sqlite_fail(q, "backlog");
    }
    *out = json_pack("{s:I, s:I, s:I, s:I}", "under1d", b[0], "d1to3", b[1],
                     "d3to7", b[2], "over7d", b[3]);
    return TS_OK;
}


static json_t *
ts_row_moderator(sqlite3_stmt *st)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:f}",
                     "_id", ts_sqlite_col_json_text(st, 0),
                     "email", ts_sqlite_col_json_text(st, 1),
                     "username", ts_sqlite_col_json_text(st, 2),
                     "status", ts_sqlite_col_json_text(st, 3),
                     "role", ts_sqlite_col_json_text(st, 7),
                     "active", (json_int_t) sqlite3_column_int64(st, 6),
                     "resolved", (json_int_t) sqlite3_column_int64(st, 4),
                     "averageResolutionTimeHours",
                     sqlite3_column_double(st, 5));
}


ts_rc_e
ts_sqlite_analytics(ts_store_t *s, int64_t now, json_t **out)
{
    static const char  *statuses[] = { "To-Do", "In Progress", "Completed" };
    static const char  *prios[] = { "Low", "Medium", "High" };

    ts_sqlite_t           *q = (ts_sqlite_t *) s;
    sqlite3_stmt          *st;
    json_t                *counts, *by_status, *by_prio, *providers, *r;
    const char            *key;
    json_int_t             all, tf, triaged = 0, n;
    ts_analytics_parts_t   p = { 0 };
    int64_t                since = now - 90 * TS_DAY_MS;
    int                    rc, ok;
    size_t                 i;

    st = ts_tstmt(q, TS_T_A_COUNTS);
    if (st == NULL) {
        return TS_ERR;
    }
    counts = json_object();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_object_set_new(counts, (const char *) sqlite3_column_text(st, 0),
                            json_integer(sqlite3_column_int64(st, 1)));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(counts);
        return ts_sqlite_fail(q, "counts");
    }

    by_status = json_object();
    for (i = 0; i < 3; i++) {
        char k[32];
        snprintf(k, sizeof(k), "s:%s", statuses[i]);
        json_object_set_new(by_status, statuses[i], json_integer(
            json_integer_value(json_object_get(counts, k))));
    }
    by_prio = json_object();
    for (i = 0; i < 3; i++) {
        char k[32];
        snprintf(k, sizeof(k), "p:%s", prios[i]);
        json_object_set_new(by_prio, prios[i], json_integer(
            json_integer_value(json_object_get(counts, k))));
    }
    json_object_set_new(by_prio, "unset", json_integer(
        json_integer_value(json_object_get(counts, "p:"))));

    providers = json_object();
    json_object_foreach(counts, key, r) {
        if (strncmp(key, "tp:", 3) == 0 && json_integer_value(r) > 0) {
            n = json_integer_value(r);
            json_object_set_new(providers, key + 3, json_integer(n));
            triaged += n;
        }
    }
    all = json_integer_value(json_object_get(counts, "all"));
    tf = json_integer_value(json_object_get(counts, "tf"));
    json_decref(counts);

    p.tickets = all;
    p.triaged = triaged;
    p.fallbacks = tf;
    p.by_status = by_status;
    p.by_priority = by_prio;
    p.providers = providers;
    ok = ts_daily(q, now, &p.daily) == TS_OK
         && ts_backlog(q, now, &p.backlog) == TS_OK
         && ts_durations(q, TS_T_A_FIRST_RESPONSE, since,
                         &p.first_response) == TS_OK
         && ts_durations(q, TS_T_A_RESOLUTION, since, &p.resolution) == TS_OK
         && ts_sqlite_rows(q, ts_tstmt(q, TS_T_A_MODERATORS),
                           ts_row_moderator, &p.moderators, "moderators")
            == TS_OK
         && s->ops->job_counts(s, &p.jobs) == TS_OK;
    return ts_store_analytics_doc(s, &p, ok, out);
}

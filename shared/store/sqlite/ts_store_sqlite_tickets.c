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
    TS_T_UPDATED,
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
    " t.updatedAt, t.triage," TS_PEOPLE_COLS "," TS_SLA_COLS

/* from column TS_SLA_COL on (ts_col_sla) */
#define TS_SLA_COLS \
    " t.firstResponseDue, t.firstResponseWarn, t.resolutionWarn," \
    " t.firstResponseAt, t.slaBreachedAt"
#define TS_SLA_COL    20
#define TS_GET_COL    25        /* TS_T_GET's own columns from here */

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
        " WHERE k.ticket = t._id AND k.internal = 0)" TS_TICKET_FROM
        " WHERE t._id = ?1",
    /* ?4: the caller's unmodified-since (0: none), compared in the write;
     * a missed SLA date is marked after it (ts_sqlite_sla_completed) */
    [TS_T_SET_STATUS] =
        "UPDATE tickets SET status = ?2, updatedAt = ?3,"
        " completedAt = CASE WHEN ?2 = 'Completed' THEN ?3 ELSE NULL END"
        " WHERE _id = ?1 AND (?4 = 0 OR updatedAt <= ?4)",
    /* ?3 internal: updatedAt stays (nothing the requester sees moves);
     * ?4 first response: stamped once; ?5 as ?4 above */
    [TS_T_TOUCH] =
        "UPDATE tickets SET updatedAt = CASE WHEN ?3 THEN updatedAt"
        " ELSE ?2 END, firstResponseAt = CASE WHEN ?4 AND firstResponseAt"
        " IS NULL THEN ?2 ELSE firstResponseAt END"
        " WHERE _id = ?1 AND (?5 = 0 OR updatedAt <= ?5)",
    /* nothing inserted once the ticket holds ?7 comments: the count is
     * read inside the write transaction, so no racing writer passes it */
    [TS_T_COMMENT_INSERT] =
        "INSERT INTO comments (_id, ticket, author, text, role, createdAt,"
        " internal)"
        " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?8"
        " WHERE (SELECT count(*) FROM comments WHERE ticket = ?2) < ?7",
    /* ?2: with internal notes */
    [TS_T_COMMENT_LIST] =
        "SELECT k._id, k.text, k.role, k.createdAt,"
        " u._id, u.email, u.username, u.status, k.internal"
        " FROM comments k JOIN users u ON u._id = k.author"
        " WHERE k.ticket = ?1 AND (?2 OR k.internal = 0)"
        " ORDER BY k.createdAt, k._id",
    [TS_T_USERS_ROLE] =
        "SELECT _id, email, username, status FROM users WHERE role = ?1"
        " ORDER BY createdAt, _id",
    [TS_T_COUNT_KEY] = "SELECT n FROM ticket_counts WHERE key = ?1",
    [TS_T_STATUS] = "SELECT status FROM tickets WHERE _id = ?1",
    [TS_T_UPDATED] = "SELECT updatedAt FROM tickets WHERE _id = ?1",
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


static int64_t
ts_col_ms(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL
           ? 0 : sqlite3_column_int64(st, i);
}


/* The SLA state of a row selected with TS_TICKET_COLS. */
static void
ts_col_sla(sqlite3_stmt *st, ts_sla_state_t *sla)
{
    const char  *status = (const char *) sqlite3_column_text(st, 3);

    memset(sla, 0, sizeof(*sla));
    sla->due.resolution_due = ts_col_ms(st, 8);
    sla->due.response_due = ts_col_ms(st, TS_SLA_COL);
    sla->due.response_warn = ts_col_ms(st, TS_SLA_COL + 1);
    sla->due.resolution_warn = ts_col_ms(st, TS_SLA_COL + 2);
    sla->responded_at = ts_col_ms(st, TS_SLA_COL + 3);
    sla->breached_at = ts_col_ms(st, TS_SLA_COL + 4);
    sla->completed = status != NULL && strcmp(status, "Completed") == 0;
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
 * only to print it cost more than the query.  Without staff, the triage's
 * notes for staff (helpfulNotes) and provenance (provider, model, the
 * provider's error) and the SLA (judged at now) are left out.
 */
static void
ts_jw_ticket(ts_jw_t *w, sqlite3_stmt *st, int staff, int64_t now)
{
    ts_sla_state_t  sla;

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
    if (staff) {
        TS_JW_LIT(w, ",\"helpfulNotes\":");
        ts_jw_col_text(w, st, 6);
    }
    TS_JW_LIT(w, ",\"relatedSkills\":");
    ts_jw_col_doc(w, st, 7, "[]");
    TS_JW_LIT(w, ",\"deadline\":");
    ts_jw_col_time(w, st, 8);
    TS_JW_LIT(w, ",\"createdAt\":");
    ts_jw_col_time(w, st, 9);
    TS_JW_LIT(w, ",\"updatedAt\":");
    ts_jw_col_time(w, st, 10);
    TS_JW_LIT(w, ",\"firstResponseAt\":");
    ts_jw_col_time(w, st, TS_SLA_COL + 3);
    if (staff) {
        TS_JW_LIT(w, ",\"triage\":");
        ts_jw_col_doc(w, st, 11, "null");
        ts_col_sla(st, &sla);
        TS_JW_LIT(w, ",\"sla\":");
        ts_sla_write(w, &sla, now);
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
    ts_jw_ticket(&w, st, 1, ts_now_ms());
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


/* A comment; an internal note carries "internal": true (a public one
 * has the keys it always had). */
static json_t *
ts_row_comment(sqlite3_stmt *st)
{
    json_t  *c;

    c = json_pack("{s:o, s:o, s:o, s:o, s:o}",
                  "_id", ts_sqlite_col_json_text(st, 0),
                  "author", ts_col_person(st, 4),
                  "text", ts_sqlite_col_json_text(st, 1),
                  "role", ts_sqlite_col_json_text(st, 2),
                  "createdAt", ts_sqlite_col_json_time(st, 3));
    if (c != NULL && sqlite3_column_int(st, 8)) {
        json_object_set_new(c, "internal", json_true());
    }
    return c;
}


/* A ticket's comments as jansson values (with the ticket document),
 * internal notes included. */
static ts_rc_e
ts_comments_json(ts_sqlite_t *q, const char *ticket_id, json_t **out)
{
    sqlite3_stmt  *st = ts_tstmt(q, TS_T_COMMENT_LIST);

    if (st != NULL) {
        sqlite3_bind_text(st, 1, ticket_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 2, 1);
    }
    return ts_sqlite_rows(q, st, ts_row_comment, out, "comments");
}


/* The same, written as text (the shape of ts_row_comment). */
ts_rc_e
ts_sqlite_comment_list(ts_store_t *s, const char *ticket_id,
    int with_internal, ts_jw_t *w)
{
    ts_sqlite_t   *q = (ts_sqlite_t *) s;
    sqlite3_stmt  *st = ts_tstmt(q, TS_T_COMMENT_LIST);
    int            rc, n = 0;

    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, ticket_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, with_internal != 0);
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
        if (sqlite3_column_int(st, 8)) {
            TS_JW_LIT(w, ",\"internal\":true");
        }
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
        v = (const char *) sqlite3_column_text(st, TS_GET_COL + 1);
        snprintf(keys->created_by, sizeof(keys->created_by), "%s",
                 v ? v : "");
        v = (const char *) sqlite3_column_text(st, TS_GET_COL + 2);
        snprintf(keys->assigned_to, sizeof(keys->assigned_to), "%s",
                 v ? v : "");
        v = (const char *) sqlite3_column_text(st, 3);
        snprintf(keys->status, sizeof(keys->status), "%s", v ? v : "");
        v = (const char *) sqlite3_column_text(st, 4);
        snprintf(keys->priority, sizeof(keys->priority), "%s", v ? v : "");
        keys->comments = sqlite3_column_int64(st, TS_GET_COL + 3);
        keys->created_at = sqlite3_column_int64(st, 9);
        keys->updated_at = sqlite3_column_int64(st, 10);
        ts_col_sla(st, &keys->sla);
    }
    if (doc) {
        t = ts_row_ticket(st);
        if (t) {
            json_object_set_new(t, "assignment",
                                ts_col_doc_json(st, TS_GET_COL));
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
    char           sql[3072], where[1536];
    const char    *from, *plus;
    sqlite3_stmt **slot;
    int            shape, n = 0;
    int    has_status = tq->status != NULL;
    int    has_prio = tq->priority != NULL;
    int    has_search = tq->search != NULL;

    shape = (int) tq->scope * 8 + has_status * 4 + has_prio * 2 + has_search;
    slot = &q->more[TS_T_LIST_BASE + count * TS_T_LIST_SHAPES + shape];
    if (*slot != NULL && tq->sla == NULL) {
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

    if (tq->sla != NULL) {
        /* ts_sla_breached() and ts_sla_due_soon() at ?7, as SQL */
        n += snprintf(where + n, sizeof(where) - n, " AND (%s)",
            strcmp(tq->sla, "breached") == 0
            ? "t.slaBreachedAt IS NOT NULL"
              " OR (t.status != 'Completed' AND ((t.firstResponseAt IS NULL"
              "  AND t.firstResponseDue < ?7) OR t.deadline < ?7))"
            : "t.slaBreachedAt IS NULL AND t.status != 'Completed'"
              " AND (t.firstResponseAt IS NOT NULL"
              "  OR t.firstResponseDue IS NULL OR t.firstResponseDue >= ?7)"
              " AND (t.deadline IS NULL OR t.deadline >= ?7)"
              " AND ((t.firstResponseAt IS NULL"
              "   AND t.firstResponseWarn <= ?7)"
              "  OR t.resolutionWarn <= ?7)");
    }

    if (count) {
        snprintf(sql, sizeof(sql), "SELECT count(*)%s WHERE 1%s", from,
                 where);
    } else {
        snprintf(sql, sizeof(sql), "SELECT " TS_TICKET_COLS "%s"
                 " WHERE 1%s ORDER BY t.updatedAt DESC, t._id"
                 " LIMIT ?5 OFFSET ?6", from, where);
    }
    if (tq->sla != NULL) {
        /* a filter about now, rare: prepared for this call, finalized by
         * ts_list_done() */
        sqlite3_stmt  *st = NULL;

        if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
            ts_sqlite_fail(q, "prepare sla list");
            return NULL;
        }
        return st;
    }
    return ts_sqlite_cached(q, slot, sql);
}


/* Done with a statement of ts_list_stmt(). */
static void
ts_list_done(const ts_ticket_query_t *tq, sqlite3_stmt *st)
{
    if (tq->sla != NULL) {
        sqlite3_finalize(st);
    } else {
        sqlite3_reset(st);
    }
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
    if (tq->sla) {
        sqlite3_bind_int64(st, 7, tq->now);
    }
}


/* The total from ticket_counts for a query without search whose scope
 * and filters have a counter: admin with status and/or priority, or a
 * creator's own list without filters; 0 when there is no counter. */
static int
ts_counter_key(const ts_ticket_query_t *tq, char *key, size_t len)
{
    if (tq->search || tq->sla) {
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
            ts_list_done(tq, st);
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
        ts_jw_ticket(out, st, tq->scope != TS_SCOPE_CREATOR, tq->now);
    }
    ts_jw_raw(out, "]", 1);
    ts_list_done(tq, st);
    if (src != SQLITE_DONE) {
        rc = ts_sqlite_fail(q, "list");
        goto done;
    }
    rc = TS_OK;

done:
    free(pat);
    return rc;
}


/* A conditional update of ticket id matched nothing (TS_NOT_FOUND): with
 * a precondition, tell a ticket that changed (TS_STALE) from a missing
 * one, inside the same transaction. */
static ts_rc_e
ts_missed(ts_sqlite_t *q, const char *id, int64_t unmodified_since,
    ts_rc_e rc)
{
    sqlite3_stmt  *st;
    int64_t        updated;

    if (rc != TS_NOT_FOUND || unmodified_since == 0) {
        return rc;
    }
    st = ts_tstmt(q, TS_T_UPDATED);
    if (st == NULL) {
        return TS_ERR;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    rc = ts_sqlite_scalar(q, st, &updated);
    return rc == TS_OK ? TS_STALE : rc;
}


ts_rc_e
ts_sqlite_ticket_set_status(ts_store_t *s, const char *id, const char *status,
    const char *actor, int64_t now, int64_t unmodified_since,
    const ts_job_new_t *jobs, size_t njobs)
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
    sqlite3_bind_int64(st, 4, unmodified_since);
    rc = ts_missed(q, id, unmodified_since, ts_sqlite_update_one(q, st));
    to = json_string(status);
    if (rc == TS_OK && !json_equal(from, to)) {
        ts_hist_t  h = { TS_HIST_STATUS, actor, from, to, NULL, 0 };

        rc = ts_sqlite_history_add(q, id, &h, 1, now);
    }
    if (rc == TS_OK && strcmp(status, "Completed") == 0) {
        /* SLA: completed past a date it missed marks the breach */
        rc = ts_sqlite_sla_completed(q, id, now);
    }
    json_decref(from);
    json_decref(to);
    return ts_finish(q, rc, jobs, njobs, now);
}


ts_rc_e
ts_sqlite_comment_add(ts_store_t *s, const char *ticket_id,
    const ts_comment_new_t *c, int64_t now, int64_t max_comments,
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
    sqlite3_bind_int(st, 3, c->internal != 0);
    sqlite3_bind_int(st, 4, c->first_response != 0);
    sqlite3_bind_int64(st, 5, c->unmodified_since);
    rc = ts_missed(q, ticket_id, c->unmodified_since,
                   ts_sqlite_update_one(q, st));
    if (rc != TS_OK) {
        return ts_sqlite_rollback(q, rc);
    }

    st = ts_tstmt(q, TS_T_COMMENT_INSERT);
    if (st == NULL) {
        return ts_sqlite_rollback(q, TS_ERR);
    }
    sqlite3_bind_text(st, 1, c->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, ticket_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, c->author, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, c->text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, c->role, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_int64(st, 7, max_comments);
    sqlite3_bind_int(st, 8, c->internal != 0);
    rc = ts_sqlite_update_one(q, st);
    if (rc == TS_OK && c->internal) {
        json_t     *to = ts_hist_note(c->text);
        ts_hist_t   h = { TS_HIST_NOTE, c->author, NULL, to, NULL, 1 };

        rc = ts_sqlite_history_add(q, ticket_id, &h, 1, now);
        json_decref(to);
    }
    if (rc == TS_OK && c->first_response) {
        /* SLA: answering late marks the breach (ts_store.h) */
        rc = ts_sqlite_sla_answered(q, ticket_id, now);
    }
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

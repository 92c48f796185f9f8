/*
 * ts_store_sqlite_analytics: the numbers of GET /api/analytics on SQLite:
 * totals from the trigger-kept ticket_counts, daily series, durations,
 * the open backlog's ages and the moderators' loads, assembled by
 * ts_store_analytics_doc.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_store_sqlite.h"
#include "ts_validate.h"

#define TS_DAY_MS  (24 * 3600 * 1000LL)

/* Statement slots in q->more[], from TS_SQLITE_ANALYTICS_FIRST. */
typedef enum {
    TS_T_A_COUNTS = TS_SQLITE_ANALYTICS_FIRST,
    TS_T_A_CREATED,
    TS_T_A_RESOLVED,
    TS_T_A_BACKLOG,
    TS_T_A_RESOLUTION,
    TS_T_A_FIRST_RESPONSE,
    TS_T_A_MODERATORS,
    TS_A_END
} ts_asql_e;

_Static_assert(TS_A_END <= TS_SQLITE_TICKET_STMTS,
               "analytics statements overflow their q->more[] range");

static const char *ts_asql_text[TS_A_END - TS_T_A_COUNTS] = {
    [TS_T_A_COUNTS - TS_T_A_COUNTS] = "SELECT key, n FROM ticket_counts",
    [TS_T_A_CREATED - TS_T_A_COUNTS] =
        "SELECT createdAt / 86400000, count(*) FROM tickets"
        " WHERE createdAt >= ?1 GROUP BY 1",
    [TS_T_A_RESOLVED - TS_T_A_COUNTS] =
        "SELECT completedAt / 86400000, count(*) FROM tickets"
        " WHERE completedAt >= ?1 GROUP BY 1",
    [TS_T_A_BACKLOG - TS_T_A_COUNTS] =
        "SELECT createdAt FROM tickets INDEXED BY tickets_status"
        " WHERE status IN ('To-Do', 'In Progress')",
    [TS_T_A_RESOLUTION - TS_T_A_COUNTS] =
        "SELECT completedAt - createdAt FROM tickets"
        " WHERE completedAt >= ?1 LIMIT 200000",
    [TS_T_A_FIRST_RESPONSE - TS_T_A_COUNTS] =
        "SELECT min(k.createdAt) - t.createdAt FROM tickets t"
        " JOIN comments k ON k.ticket = t._id AND k.author != t.createdBy"
        " AND k.internal = 0"
        " WHERE t.createdAt >= ?1 GROUP BY t._id LIMIT 200000",
    [TS_T_A_MODERATORS - TS_T_A_COUNTS] =
        "SELECT u._id, u.email, u.username, u.status,"
        " u.totalTicketsResolved, u.averageResolutionTimeHours,"
        " (SELECT count(*) FROM tickets t WHERE t.assignedTo = u._id"
        "  AND t.status IN ('To-Do', 'In Progress')), u.role"
        " FROM users u WHERE u.role IN ('moderator', 'admin')"
        " ORDER BY u.createdAt, u._id",
};


static sqlite3_stmt *
ts_astmt(ts_sqlite_t *q, ts_asql_e which)
{
    return ts_sqlite_cached(q, &q->more[which],
                            ts_asql_text[which - TS_T_A_COUNTS]);
}


static int
ts_cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


/* {medianHours, p90Hours, samples} of durations (ms) a statement yields. */
static ts_rc_e
ts_durations(ts_sqlite_t *q, ts_asql_e which, int64_t since, json_t **out)
{
    sqlite3_stmt  *st = ts_astmt(q, which);
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
        st = ts_astmt(q, pass ? TS_T_A_RESOLVED : TS_T_A_CREATED);
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
    sqlite3_stmt  *st = ts_astmt(q, TS_T_A_BACKLOG);
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

    st = ts_astmt(q, TS_T_A_COUNTS);
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
         && ts_sqlite_rows(q, ts_astmt(q, TS_T_A_MODERATORS),
                           ts_row_moderator, &p.moderators, "moderators")
            == TS_OK
         && ts_sqlite_sla_analytics(q, &p.sla) == TS_OK
         && s->ops->job_counts(s, &p.jobs) == TS_OK;
    return ts_store_analytics_doc(s, &p, ok, out);
}

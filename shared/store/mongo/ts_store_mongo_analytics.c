/*
 * ts_store_mongo_analytics: the numbers of GET /api/analytics on MongoDB
 * (counts, daily series, durations, backlog ages, moderators' loads),
 * assembled by ts_store_analytics_doc.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_store_mongo.h"
#include "ts_validate.h"

#define TS_DAY_MS  (24 * 3600 * 1000LL)


/* --- analytics ------------------------------------------------------------ */

static int
ts_cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


static json_t *
ts_durations_json(double *v, size_t n)
{
    qsort(v, n, sizeof(double), ts_cmp_double);
    return json_pack("{s:o, s:o, s:I}",
                     "medianHours", n ? json_real(ts_percentile(v, n, 0.5))
                                      : json_null(),
                     "p90Hours", n ? json_real(ts_percentile(v, n, 0.9))
                                   : json_null(),
                     "samples", (json_int_t) n);
}


static int
ts_push_double(double **v, size_t *n, size_t *cap, double x)
{
    double  *nv;

    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        nv = realloc(*v, *cap * sizeof(double));
        if (nv == NULL) {
            return -1;
        }
        *v = nv;
    }
    (*v)[(*n)++] = x;
    return 0;
}


static int64_t
ts_count(ts_mongo_t *m, mongoc_collection_t *c, bson_t *f, ts_rc_e *rc)
{
    bson_error_t  e;
    int64_t       n;

    n = mongoc_collection_count_documents(c, f, NULL, NULL, NULL, &e);
    bson_destroy(f);
    if (n < 0) {
        *rc = ts_mg_fail(m, "count", &e);
        return 0;
    }
    return n;
}


/*
 * The numbers of GET /api/analytics from a handful of indexed queries:
 * counts per status/priority/provider, the tickets of the last 30 (daily)
 * and 90 (durations) days with only the time fields projected, the open
 * backlog's creation times, and the candidates' loads in one $group.
 */
ts_rc_e
ts_mg_analytics(ts_store_t *s, int64_t now, json_t **out)
{
    static const char  *statuses[] = { "To-Do", "In Progress", "Completed" };
    static const char  *prios[] = { "Low", "Medium", "High" };

    ts_mongo_t            *m = TS_MG(s);
    mongoc_cursor_t       *cur;
    const bson_t          *d;
    bson_t                *f, *opts, *pipe;
    bson_iter_t            it, child, sub;
    bson_error_t           e;
    json_t                *by_status, *by_prio, *providers, *daily, *backlog;
    json_t                *first, *resolution, *mods, *ids, *loads;
    json_int_t             all, tf, triaged = 0, b[4] = { 0 };
    ts_analytics_parts_t   parts = { 0 };
    int64_t                today = now / TS_DAY_MS, dfirst = today - 29;
    int64_t                dd, t0;
    int64_t                created[30] = { 0 }, resolved[30] = { 0 }, ca, cc;
    int64_t                since = now - 90 * TS_DAY_MS, age, fr;
    double                *rv = NULL, *fv = NULL;
    size_t                 rn = 0, rcap = 0, fn = 0, fcap = 0, i;
    ts_oid_t               creator, author, hex;
    char                   date[32];
    ts_rc_e                rc = TS_OK;

    all = ts_count(m, m->tickets, bson_new(), &rc);
    by_status = json_object();
    for (i = 0; i < 3; i++) {
        json_object_set_new(by_status, statuses[i], json_integer(
            ts_count(m, m->tickets, BCON_NEW("status",
                                             BCON_UTF8(statuses[i])), &rc)));
    }
    by_prio = json_object();
    for (i = 0; i < 3; i++) {
        json_object_set_new(by_prio, prios[i], json_integer(
            ts_count(m, m->tickets, BCON_NEW("priority",
                                             BCON_UTF8(prios[i])), &rc)));
    }
    json_object_set_new(by_prio, "unset", json_integer(
        ts_count(m, m->tickets, BCON_NEW("priority", "{", "$nin", "[",
                                         BCON_UTF8("Low"),
                                         BCON_UTF8("Medium"),
                                         BCON_UTF8("High"), "]", "}"), &rc)));
    tf = ts_count(m, m->tickets, BCON_NEW("triageFallback", BCON_BOOL(true)),
                  &rc);

    providers = json_object();
    pipe = BCON_NEW("pipeline", "[",
                    "{", "$match", "{", "triageProvider", "{", "$type",
                    BCON_UTF8("string"), "}", "}", "}",
                    "{", "$group", "{", "_id", BCON_UTF8("$triageProvider"),
                    "n", "{", "$sum", BCON_INT32(1), "}", "}", "}", "]");
    cur = mongoc_collection_aggregate(m->tickets, MONGOC_QUERY_NONE, pipe,
                                      NULL, NULL);
    while (mongoc_cursor_next(cur, &d)) {
        const char *p = ts_mg_get_str(d, "_id");
        int64_t     n = ts_mg_get_int(d, "n", 0);
        if (p && n > 0) {
            json_object_set_new(providers, p, json_integer(n));
            triaged += n;
        }
    }
    if (mongoc_cursor_error(cur, &e)) {
        rc = ts_mg_fail(m, "providers", &e);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(pipe);

    /* created per day, first responses (90 days) */
    t0 = dfirst * TS_DAY_MS < since ? dfirst * TS_DAY_MS : since;
    f = BCON_NEW("createdAt", "{", "$gte", BCON_DATE_TIME(t0), "}");
    /* whole comments: servers differ on projecting into arrays */
    opts = BCON_NEW("projection", "{", "createdAt", BCON_INT32(1),
                    "createdBy", BCON_INT32(1), "comments", BCON_INT32(1),
                    "}");
    cur = mongoc_collection_find_with_opts(m->tickets, f, opts, NULL);
    while (mongoc_cursor_next(cur, &d)) {
        ca = ts_mg_get_time(d, "createdAt");
        dd = ca / TS_DAY_MS - dfirst;
        if (dd >= 0 && dd < 30) {
            created[dd]++;
        }
        if (ca < since) {
            continue;
        }
        ts_mg_get_oid_hex(d, "createdBy", creator);
        fr = -1;
        if (bson_iter_init_find(&it, d, "comments")
            && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &child))
        {
            while (bson_iter_next(&child)) {
                bson_t          c;
                bson_iter_t     ci;
                const uint8_t  *data;
                uint32_t        len;

                if (!BSON_ITER_HOLDS_DOCUMENT(&child)) {
                    continue;
                }
                bson_iter_document(&child, &len, &data);
                if (!bson_init_static(&c, data, len)
                    || ts_mg_get_oid_hex(&c, "author", author) != 0
                    || strcmp(author, creator) == 0
                    || (bson_iter_init_find(&ci, &c, "internal")
                        && BSON_ITER_HOLDS_BOOL(&ci) && bson_iter_bool(&ci)))
                {
                    continue;
                }
                cc = ts_mg_get_time(&c, "createdAt");
                if (fr < 0 || cc < fr) {
                    fr = cc;
                }
            }
        }
        if (fr >= 0) {
            ts_push_double(&fv, &fn, &fcap, (double) (fr - ca) / 3600000.0);
        }
    }
    (void) sub;
    if (mongoc_cursor_error(cur, &e)) {
        rc = ts_mg_fail(m, "daily", &e);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(f);
    bson_destroy(opts);

    /* resolved per day, resolution times (90 days) */
    f = BCON_NEW("completedAt", "{", "$gte", BCON_DATE_TIME(t0), "}");
    opts = BCON_NEW("projection", "{", "createdAt", BCON_INT32(1),
                    "completedAt", BCON_INT32(1), "}");
    cur = mongoc_collection_find_with_opts(m->tickets, f, opts, NULL);
    while (mongoc_cursor_next(cur, &d)) {
        cc = ts_mg_get_time(d, "completedAt");
        if (cc == 0) {
            continue;
        }
        dd = cc / TS_DAY_MS - dfirst;
        if (dd >= 0 && dd < 30) {
            resolved[dd]++;
        }
        if (cc >= since) {
            ts_push_double(&rv, &rn, &rcap,
                           (double) (cc - ts_mg_get_time(d, "createdAt"))
                           / 3600000.0);
        }
    }
    if (mongoc_cursor_error(cur, &e)) {
        rc = ts_mg_fail(m, "resolved", &e);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(f);
    bson_destroy(opts);

    daily = json_array();
    for (dd = 0; dd < 30; dd++) {
        ts_iso_time((dfirst + dd) * TS_DAY_MS, date);
        date[10] = '\0';
        json_array_append_new(daily, json_pack("{s:s, s:I, s:I}",
            "date", date, "created", (json_int_t) created[dd],
            "resolved", (json_int_t) resolved[dd]));
    }
    first = ts_durations_json(fv, fn);
    resolution = ts_durations_json(rv, rn);
    free(fv);
    free(rv);

    /* backlog by age */
    f = BCON_NEW("status", "{", "$in", "[", BCON_UTF8("To-Do"),
                 BCON_UTF8("In Progress"), "]", "}");
    opts = BCON_NEW("projection", "{", "createdAt", BCON_INT32(1),
                    "assignedTo", BCON_INT32(1), "}");
    loads = json_object();
    cur = mongoc_collection_find_with_opts(m->tickets, f, opts, NULL);
    while (mongoc_cursor_next(cur, &d)) {
        age = now - ts_mg_get_time(d, "createdAt");
        b[age < TS_DAY_MS ? 0 : age < 3 * TS_DAY_MS ? 1
          : age < 7 * TS_DAY_MS ? 2 : 3]++;
        if (ts_mg_get_oid_hex(d, "assignedTo", hex) == 0) {
            json_object_set_new(loads, hex, json_integer(
                json_integer_value(json_object_get(loads, hex)) + 1));
        }
    }
    if (mongoc_cursor_error(cur, &e)) {
        rc = ts_mg_fail(m, "backlog", &e);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(f);
    bson_destroy(opts);
    backlog = json_pack("{s:I, s:I, s:I, s:I}", "under1d", b[0],
                        "d1to3", b[1], "d3to7", b[2], "over7d", b[3]);

    /* moderators */
    mods = json_array();
    ids = NULL;
    f = BCON_NEW("role", "{", "$in", "[", BCON_UTF8("moderator"),
                 BCON_UTF8("admin"), "]", "}");
    opts = BCON_NEW("sort", "{", "createdAt", BCON_INT32(1), "_id",
                    BCON_INT32(1), "}");
    cur = mongoc_collection_find_with_opts(m->users, f, opts, NULL);
    while (mongoc_cursor_next(cur, &d)) {
        const char *st = ts_mg_get_str(d, "status");
        if (ts_mg_get_oid_hex(d, "_id", hex) != 0) {
            continue;
        }
        json_array_append_new(mods, json_pack(
            "{s:s, s:o, s:o, s:s, s:o, s:I, s:I, s:f}",
            "_id", hex, "email", ts_mg_get_json(d, "email"),
            "username", ts_mg_get_json(d, "username"),
            "status", st ? st : "offline",
            "role", ts_mg_get_json(d, "role"),
            "active", json_integer_value(json_object_get(loads, hex)),
            "resolved", (json_int_t) ts_mg_get_int(d, "totalTicketsResolved",
                                                   0),
            "averageResolutionTimeHours",
            ts_mg_get_double(d, "averageResolutionTimeHours", 24)));
    }
    if (mongoc_cursor_error(cur, &e)) {
        rc = ts_mg_fail(m, "moderators", &e);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(f);
    bson_destroy(opts);
    json_decref(loads);
    json_decref(ids);

    if (rc == TS_OK) {
        rc = ts_mg_job_counts(s, &parts.jobs);
    }
    if (rc == TS_OK) {
        rc = ts_mg_sla_analytics(m, &parts.sla);
    }
    parts.tickets = all;
    parts.triaged = triaged;
    parts.fallbacks = tf;
    parts.by_status = by_status;
    parts.by_priority = by_prio;
    parts.providers = providers;
    parts.daily = daily;
    parts.backlog = backlog;
    parts.first_response = first;
    parts.resolution = resolution;
    parts.moderators = mods;
    return ts_store_analytics_doc(s, &parts, rc == TS_OK, out);
}

/*
 * ts_store_mongo_jobs: the job runner's side of the MongoDB store and the
 * writes background work makes on tickets (the assignment is in
 * ts_store_mongo_assign.c).
 *
 * Claims: findAndModify, one job per call (atomic per document), sorted
 * by runAfter; first every kind but triage, then at most max_triage
 * triage jobs.  attempts, incremented by the claim, is the fencing token:
 * done/fail/extend match {_id, state: running, attempts}, so a runner
 * whose lease expired cannot touch the newer attempt.
 *
 * Stats once per ticket: the ticket's flag flips statsCounted false ->
 * true together with statsPending {moderator, hours} (one update); the
 * moderator's running average is then updated with a compare-and-set on
 * totalTicketsResolved that also requires the ticket to be absent from
 * the moderator's recentStats (the last 200 tickets counted, pushed in
 * the same update); finally statsPending is removed.  A crash in between
 * leaves statsPending, which the next stats call for the ticket or the
 * sweep completes -- exactly once thanks to recentStats.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_store_mongo.h"


/* One claim: the due job matching kind_filter, or none (*got = 0). */
static ts_rc_e
ts_claim_one(ts_mongo_t *m, int64_t now, int64_t lease_ms, int triage,
    ts_job_t *j, int *got)
{
    mongoc_find_and_modify_opts_t  *o = mongoc_find_and_modify_opts_new();
    bson_t                         *f, *u, *sort, reply, val;
    bson_iter_t                     it;
    bson_error_t                    e;
    const uint8_t                  *data;
    uint32_t                        len;
    const char                     *kind;
    bool                            ok;

    *got = 0;
    if (triage) {
        f = BCON_NEW("kind", BCON_UTF8("triage"),
                     "$or", "[",
                     "{", "state", BCON_UTF8("pending"), "runAfter", "{",
                     "$lte", BCON_DATE_TIME(now), "}", "}",
                     "{", "state", BCON_UTF8("running"), "leaseUntil", "{",
                     "$lt", BCON_DATE_TIME(now), "}", "}", "]");
    } else {
        f = BCON_NEW("kind", "{", "$ne", BCON_UTF8("triage"), "}",
                     "$or", "[",
                     "{", "state", BCON_UTF8("pending"), "runAfter", "{",
                     "$lte", BCON_DATE_TIME(now), "}", "}",
                     "{", "state", BCON_UTF8("running"), "leaseUntil", "{",
                     "$lt", BCON_DATE_TIME(now), "}", "}", "]");
    }
    u = BCON_NEW("$set", "{", "state", BCON_UTF8("running"),
                 "leaseUntil", BCON_DATE_TIME(now + lease_ms),
                 "updatedAt", BCON_DATE_TIME(now), "}",
                 "$inc", "{", "attempts", BCON_INT32(1), "}");
    sort = BCON_NEW("runAfter", BCON_INT32(1));
    mongoc_find_and_modify_opts_set_update(o, u);
    mongoc_find_and_modify_opts_set_sort(o, sort);
    mongoc_find_and_modify_opts_set_flags(o,
                                          MONGOC_FIND_AND_MODIFY_RETURN_NEW);
    ok = mongoc_collection_find_and_modify_with_opts(m->jobs, f, o, &reply,
                                                     &e);
    mongoc_find_and_modify_opts_destroy(o);
    bson_destroy(f);
    bson_destroy(u);
    bson_destroy(sort);
    if (!ok) {
        bson_destroy(&reply);
        return ts_mg_fail(m, "claim", &e);
    }
    if (bson_iter_init_find(&it, &reply, "value")
        && BSON_ITER_HOLDS_DOCUMENT(&it))
    {
        bson_iter_document(&it, &len, &data);
        if (bson_init_static(&val, data, len)
            && ts_mg_get_oid_hex(&val, "_id", j->id) == 0)
        {
            kind = ts_mg_get_str(&val, "kind");
            snprintf(j->kind, sizeof(j->kind), "%s", kind ? kind : "");
            j->payload = ts_mg_get_json(&val, "payload");
            if (!json_is_object(j->payload)) {
                json_decref(j->payload);
                j->payload = json_object();
            }
            j->attempts = (int) ts_mg_get_int(&val, "attempts", 1);
            j->max_attempts = (int) ts_mg_get_int(&val, "maxAttempts", 5);
            *got = 1;
        }
    }
    bson_destroy(&reply);
    return TS_OK;
}


ts_rc_e
ts_mg_job_claim(ts_store_t *s, int64_t now, int64_t lease_ms, int max,
    int max_triage, ts_job_t **jobs, size_t *n)
{
    ts_mongo_t  *m = TS_MG(s);
    ts_job_t    *out;
    int          got, triage = 0;
    ts_rc_e      rc = TS_OK;

    ts_mg_sweep(m, 0);
    out = calloc(max > 0 ? (size_t) max : 1, sizeof(ts_job_t));
    if (out == NULL) {
        return ts_store_fail(s, "out of memory");
    }
    while ((int) *n < max) {
        rc = ts_claim_one(m, now, lease_ms, 0, &out[*n], &got);
        if (rc != TS_OK || !got) {
            break;
        }
        (*n)++;
    }
    while (rc == TS_OK && (int) *n < max && triage < max_triage) {
        rc = ts_claim_one(m, now, lease_ms, 1, &out[*n], &got);
        if (rc != TS_OK || !got) {
            break;
        }
        (*n)++;
        triage++;
    }
    if (rc != TS_OK && *n == 0) {
        free(out);
        return rc;
    }
    /* jobs claimed before an error are handed out: their leases hold */
    *jobs = out;
    return TS_OK;
}


/* Update the job {_id, state: running, attempts}; TS_NOT_FOUND when the
 * lease was lost. */
static ts_rc_e
ts_job_fenced(ts_mongo_t *m, const char *id, int attempts, bson_t *upd)
{
    bson_t   f = BSON_INITIALIZER;
    int64_t  matched = 0;
    ts_rc_e  rc;

    ts_mg_append_oid_hex(&f, "_id", id);
    BSON_APPEND_UTF8(&f, "state", "running");
    BSON_APPEND_INT32(&f, "attempts", attempts);
    rc = ts_mg_update(m, m->jobs, &f, upd, 0, &matched);
    bson_destroy(&f);
    return rc == TS_OK && matched == 0 ? TS_NOT_FOUND : rc;
}


ts_rc_e
ts_mg_job_done(ts_store_t *s, const char *id, int attempts, int64_t now)
{
    bson_t   *u;
    ts_rc_e   rc;

    u = BCON_NEW("$set", "{", "state", BCON_UTF8("done"),
                 "leaseUntil", BCON_NULL, "updatedAt", BCON_DATE_TIME(now),
                 "}");
    rc = ts_job_fenced(TS_MG(s), id, attempts, u);
    bson_destroy(u);
    return rc;
}


ts_rc_e
ts_mg_job_extend(ts_store_t *s, const ts_job_t *jobs, size_t n,
    int64_t lease_until)
{
    bson_t   *u;
    ts_rc_e   rc = TS_OK, r;
    size_t    i;

    u = BCON_NEW("$set", "{", "leaseUntil", BCON_DATE_TIME(lease_until),
                 "}");
    for (i = 0; i < n; i++) {
        r = ts_job_fenced(TS_MG(s), jobs[i].id, jobs[i].attempts, u);
        if (r == TS_ERR) {
            rc = TS_ERR;
            break;
        }
    }
    bson_destroy(u);
    return rc;
}


ts_rc_e
ts_mg_job_fail(ts_store_t *s, const char *id, int attempts,
    const char *error, int dead, int64_t run_after, int64_t now)
{
    bson_t   u = BSON_INITIALIZER, set;
    ts_rc_e  rc;

    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
    BSON_APPEND_UTF8(&set, "state", dead ? "dead" : "pending");
    BSON_APPEND_DATE_TIME(&set, "runAfter", run_after);
    BSON_APPEND_NULL(&set, "leaseUntil");
    if (error) {
        BSON_APPEND_UTF8(&set, "lastError", error);
    } else {
        BSON_APPEND_NULL(&set, "lastError");
    }
    BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
    bson_append_document_end(&u, &set);
    rc = ts_job_fenced(TS_MG(s), id, attempts, &u);
    bson_destroy(&u);
    return rc;
}


ts_rc_e
ts_mg_job_list(ts_store_t *s, const char *state, int64_t limit, json_t **out)
{
    ts_mongo_t       *m = TS_MG(s);
    mongoc_cursor_t  *cur;
    const bson_t     *d;
    bson_t           *f, *opts;
    bson_error_t      e;
    json_t           *arr = json_array(), *p;
    ts_oid_t          hex;

    f = state ? BCON_NEW("state", BCON_UTF8(state)) : bson_new();
    opts = BCON_NEW("sort", "{", "createdAt", BCON_INT32(-1), "_id",
                    BCON_INT32(-1), "}", "limit", BCON_INT64(limit));
    cur = mongoc_collection_find_with_opts(m->jobs, f, opts, NULL);
    while (mongoc_cursor_next(cur, &d)) {
        if (ts_mg_get_oid_hex(d, "_id", hex) != 0) {
            continue;
        }
        p = ts_mg_get_json(d, "payload");
        json_array_append_new(arr, json_pack(
            "{s:s, s:o, s:o, s:o, s:i, s:i, s:o, s:o, s:o, s:o, s:o}",
            "_id", hex, "kind", ts_mg_get_json(d, "kind"),
            "payload", p,
            "state", ts_mg_get_json(d, "state"),
            "attempts", (int) ts_mg_get_int(d, "attempts", 0),
            "maxAttempts", (int) ts_mg_get_int(d, "maxAttempts", 5),
            "runAfter", ts_mg_get_time_json(d, "runAfter"),
            "leaseUntil", ts_mg_get_time_json(d, "leaseUntil"),
            "lastError", ts_mg_get_json(d, "lastError"),
            "createdAt", ts_mg_get_time_json(d, "createdAt"),
            "updatedAt", ts_mg_get_time_json(d, "updatedAt")));
    }
    bson_destroy(f);
    bson_destroy(opts);
    if (mongoc_cursor_error(cur, &e)) {
        mongoc_cursor_destroy(cur);
        json_decref(arr);
        return ts_mg_fail(m, "jobs", &e);
    }
    mongoc_cursor_destroy(cur);
    *out = arr;
    return TS_OK;
}


ts_rc_e
ts_mg_job_retry(ts_store_t *s, const char *id, int64_t now)
{
    ts_mongo_t    *m = TS_MG(s);
    bson_t         f = BSON_INITIALIZER, *u;
    bson_error_t   e;
    int64_t        matched = 0, n;
    ts_rc_e        rc;

    ts_mg_append_oid_hex(&f, "_id", id);
    BSON_APPEND_UTF8(&f, "state", "dead");
    u = BCON_NEW("$set", "{", "state", BCON_UTF8("pending"),
                 "attempts", BCON_INT32(0), "runAfter", BCON_DATE_TIME(now),
                 "leaseUntil", BCON_NULL, "updatedAt", BCON_DATE_TIME(now),
                 "}");
    rc = ts_mg_update(m, m->jobs, &f, u, 0, &matched);
    bson_destroy(u);
    bson_destroy(&f);
    if (rc != TS_OK || matched) {
        return rc;
    }
    bson_init(&f);
    ts_mg_append_oid_hex(&f, "_id", id);
    n = mongoc_collection_count_documents(m->jobs, &f, NULL, NULL, NULL, &e);
    bson_destroy(&f);
    if (n < 0) {
        return ts_mg_fail(m, "retry", &e);
    }
    return n ? TS_CONFLICT : TS_NOT_FOUND;
}


/*
 * Up to limit jobs of one state finished before `before`: their ids are
 * read (on the state_created index: updatedAt >= createdAt, so the
 * createdAt bound is implied) and deleted with the state and time checked
 * again, so a dead job an admin retried meanwhile stays.
 */
static ts_rc_e
ts_mg_job_purge_state(ts_mongo_t *m, const char *state, int64_t before,
    int limit, int64_t *removed)
{
    mongoc_cursor_t  *cur;
    const bson_t     *d;
    bson_t           *f, *opts, del, in, ids;
    bson_iter_t       it;
    bson_error_t      e;
    bson_t            reply;
    char              key[16];
    uint32_t          n = 0;
    ts_rc_e           rc = TS_OK;
    bool              ok;

    f = BCON_NEW("state", BCON_UTF8(state),
                 "createdAt", "{", "$lt", BCON_DATE_TIME(before), "}",
                 "updatedAt", "{", "$lt", BCON_DATE_TIME(before), "}");
    opts = BCON_NEW("limit", BCON_INT64(limit),
                    "projection", "{", "_id", BCON_INT32(1), "}");
    bson_init(&del);
    BSON_APPEND_DOCUMENT_BEGIN(&del, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &ids);
    cur = mongoc_collection_find_with_opts(m->jobs, f, opts, NULL);
    while (mongoc_cursor_next(cur, &d)) {
        if (bson_iter_init_find(&it, d, "_id")) {
            snprintf(key, sizeof(key), "%u", n++);
            bson_append_iter(&ids, key, -1, &it);
        }
    }
    if (mongoc_cursor_error(cur, &e)) {
        rc = ts_mg_fail(m, "job purge", &e);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_append_array_end(&in, &ids);
    bson_append_document_end(&del, &in);

    if (rc == TS_OK && n > 0) {
        BSON_APPEND_UTF8(&del, "state", state);
        bson_iter_init_find(&it, f, "updatedAt");
        bson_append_iter(&del, "updatedAt", -1, &it);
        ok = mongoc_collection_delete_many(m->jobs, &del, NULL, &reply, &e);
        if (ok) {
            *removed += ts_mg_get_int(&reply, "deletedCount", 0);
        } else {
            rc = ts_mg_fail(m, "job purge", &e);
        }
        bson_destroy(&reply);
    }
    bson_destroy(&del);
    bson_destroy(f);
    return rc;
}


ts_rc_e
ts_mg_job_purge(ts_store_t *s, int64_t done_before, int64_t dead_before,
    int limit, int64_t *removed)
{
    ts_mongo_t  *m = TS_MG(s);
    ts_rc_e      rc = TS_OK;

    *removed = 0;
    if (done_before > 0) {
        rc = ts_mg_job_purge_state(m, "done", done_before, limit, removed);
    }
    if (rc == TS_OK && dead_before > 0 && *removed < limit) {
        rc = ts_mg_job_purge_state(m, "dead", dead_before,
                                   limit - (int) *removed, removed);
    }
    return rc;
}


ts_rc_e
ts_mg_job_counts(ts_store_t *s, ts_job_counts_t *out)
{
    ts_mongo_t       *m = TS_MG(s);
    mongoc_cursor_t  *cur;
    const bson_t     *d;
    bson_t           *pipe;
    bson_error_t      e;
    bson_iter_t       it, kind, state;
    ts_rc_e           rc = TS_OK;

    memset(out, 0, sizeof(*out));
    pipe = BCON_NEW("pipeline", "[", "{", "$group", "{", "_id", "{",
                    "kind", BCON_UTF8("$kind"), "state", BCON_UTF8("$state"),
                    "}", "n", "{", "$sum", BCON_INT32(1), "}", "}", "}", "]");
    cur = mongoc_collection_aggregate(m->jobs, MONGOC_QUERY_NONE, pipe, NULL,
                                      NULL);
    while (mongoc_cursor_next(cur, &d)) {
        if (bson_iter_init(&it, d)
            && bson_iter_find_descendant(&it, "_id.state", &state)
            && BSON_ITER_HOLDS_UTF8(&state))
        {
            bson_iter_init(&it, d);
            ts_job_counts_add(out,
                              bson_iter_find_descendant(&it, "_id.kind", &kind)
                              && BSON_ITER_HOLDS_UTF8(&kind)
                              ? bson_iter_utf8(&kind, NULL) : NULL,
                              bson_iter_utf8(&state, NULL),
                              ts_mg_get_int(d, "n", 0));
        }
    }
    if (mongoc_cursor_error(cur, &e)) {
        rc = ts_mg_fail(m, "job counts", &e);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(pipe);
    return rc;
}


/* --- background work on tickets ------------------------------------------ */

ts_rc_e
ts_mg_ticket_text(ts_store_t *s, const char *id, char **title,
    char **description, int *triaged, int64_t *created_at)
{
    bson_t       *d = NULL;
    bson_iter_t   it;
    const char   *t, *x;
    ts_rc_e       rc;

    rc = ts_mg_ticket_doc(TS_MG(s), id, NULL, &d);
    if (rc != TS_OK) {
        return rc;
    }
    t = ts_mg_get_str(d, "title");
    x = ts_mg_get_str(d, "description");
    *title = strdup(t ? t : "");
    *description = strdup(x ? x : "");
    *triaged = bson_iter_init_find(&it, d, "triage")
               && !BSON_ITER_HOLDS_NULL(&it);
    *created_at = ts_mg_get_time(d, "createdAt");
    bson_destroy(d);
    if (*title == NULL || *description == NULL) {
        free(*title);
        free(*description);
        return ts_store_fail(s, "out of memory");
    }
    return TS_OK;
}


ts_rc_e
ts_mg_ticket_set_triage(ts_store_t *s, const char *id, json_t *triage,
    json_t *meta, const char *provider, int fallback,
    const ts_sla_due_t *due, int64_t now, const ts_job_new_t *jobs,
    size_t njobs)
{
    ts_mongo_t  *m = TS_MG(s);
    bson_t       f = BSON_INITIALIZER, upd = BSON_INITIALIZER, set;
    bson_t       arr = BSON_INITIALIZER, *d = NULL;
    bson_t       hist = BSON_INITIALIZER, *proj;
    json_t      *skills = json_object_get(triage, "relatedSkills");
    json_t      *old_prio = NULL, *old_skills = NULL;
    ts_hist_t    h[2];
    size_t       nh;
    int64_t      matched = 0;
    ts_rc_e      rc;

    /* the values before, for the history: triage writes once (triage:
     * null in the filter), so they are what the ticket held until now */
    proj = BCON_NEW("priority", BCON_INT32(1), "relatedSkills",
                    BCON_INT32(1));
    if (ts_mg_ticket_doc(m, id, proj, &d) == TS_OK) {
        old_prio = ts_mg_get_json(d, "priority");
        old_skills = ts_mg_get_str_array(d, "relatedSkills");
        bson_destroy(d);
        d = NULL;
    }
    bson_destroy(proj);
    nh = ts_triage_history(h, old_prio, old_skills, triage);
    ts_mg_history_array(&hist, id, h, nh, now);
    ts_hist_release(h, nh);
    json_decref(old_prio);
    json_decref(old_skills);

    ts_mg_jobs_array(&arr, jobs, njobs, now);
    ts_mg_append_oid_hex(&f, "_id", id);
    BSON_APPEND_NULL(&f, "triage");              /* null or missing */
    BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
    ts_mg_append_json(&set, "summary", json_object_get(triage, "summary"));
    ts_mg_append_json(&set, "priority", json_object_get(triage, "priority"));
    ts_mg_append_json(&set, "helpfulNotes",
                      json_object_get(triage, "helpfulNotes"));
    if (json_is_array(skills)) {
        ts_mg_append_json(&set, "relatedSkills", skills);
    } else {
        bson_t a;
        BSON_APPEND_ARRAY_BEGIN(&set, "relatedSkills", &a);
        bson_append_array_end(&set, &a);
    }
    ts_mg_append_json(&set, "triage", meta);
    BSON_APPEND_UTF8(&set, "triageProvider", provider);
    BSON_APPEND_BOOL(&set, "triageFallback", fallback != 0);
    BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
    if (due->resolution_due != 0) {
        ts_mg_sla_append_dates(&set, due);
    }
    bson_append_document_end(&upd, &set);
    ts_mg_push_outboxes(&upd, &arr, &hist);
    rc = ts_mg_update(m, m->tickets, &f, &upd, 0, &matched);
    bson_destroy(&f);
    bson_destroy(&upd);
    if (rc == TS_OK && matched == 0) {
        /* triaged already, or no such ticket */
        rc = ts_mg_ticket_doc(m, id, NULL, &d);
        if (rc == TS_OK) {
            bson_destroy(d);
            rc = TS_CONFLICT;
        }
    } else if (rc == TS_OK) {
        bson_oid_t oid;
        if (njobs && ts_mg_oid(id, &oid) == 0) {
            ts_mg_outbox_flush(m, m->tickets, &oid, &arr);
        }
        ts_mg_history_flush(m, id, &hist);
    }
    bson_destroy(&arr);
    bson_destroy(&hist);
    return rc;
}


/* --- moderator stats ------------------------------------------------------ */

ts_rc_e
ts_mg_stats_apply(ts_mongo_t *m, const bson_oid_t *ticket,
    const bson_t *pending)
{
    mongoc_cursor_t  *cur;
    const bson_t     *ud;
    bson_t            f, *u, *opts;
    bson_iter_t       it;
    bson_oid_t        mod;
    bson_error_t      e;
    double            hours, avg;
    int64_t           n, matched;
    int               tries, has_n;
    ts_rc_e           rc = TS_OK;

    if (!bson_iter_init_find(&it, pending, "moderator")
        || !BSON_ITER_HOLDS_OID(&it))
    {
        goto clear;
    }
    bson_oid_copy(bson_iter_oid(&it), &mod);
    hours = ts_mg_get_double(pending, "hours", 0);

    for (tries = 0; tries < 16; tries++) {
        bson_init(&f);
        BSON_APPEND_OID(&f, "_id", &mod);
        opts = BCON_NEW("projection", "{", "totalTicketsResolved",
                        BCON_INT32(1), "averageResolutionTimeHours",
                        BCON_INT32(1), "}");
        cur = mongoc_collection_find_with_opts(m->users, &f, opts, NULL);
        bson_destroy(opts);
        bson_destroy(&f);
        if (!mongoc_cursor_next(cur, &ud)) {
            rc = mongoc_cursor_error(cur, &e) ? ts_mg_fail(m, "stats", &e)
                                              : TS_OK;   /* user gone */
            mongoc_cursor_destroy(cur);
            if (rc != TS_OK) {
                return rc;
            }
            goto clear;
        }
        has_n = bson_has_field(ud, "totalTicketsResolved");
        n = ts_mg_get_int(ud, "totalTicketsResolved", 0);
        avg = ts_mg_get_double(ud, "averageResolutionTimeHours", 24);
        mongoc_cursor_destroy(cur);

        bson_init(&f);
        BSON_APPEND_OID(&f, "_id", &mod);
        if (has_n) {
            BSON_APPEND_INT64(&f, "totalTicketsResolved", n);
        } else {
            bson_t ex;
            BSON_APPEND_DOCUMENT_BEGIN(&f, "totalTicketsResolved", &ex);
            BSON_APPEND_BOOL(&ex, "$exists", false);
            bson_append_document_end(&f, &ex);
        }
        {
            bson_t ne;
            BSON_APPEND_DOCUMENT_BEGIN(&f, "recentStats", &ne);
            BSON_APPEND_OID(&ne, "$ne", ticket);
            bson_append_document_end(&f, &ne);
        }
        u = BCON_NEW("$set", "{", "totalTicketsResolved", BCON_INT64(n + 1),
                     "averageResolutionTimeHours",
                     BCON_DOUBLE((avg * (double) n + (hours > 0 ? hours : 0))
                                 / (double) (n + 1)), "}",
                     "$push", "{", "recentStats", "{", "$each", "[",
                     BCON_OID(ticket), "]", "$slice", BCON_INT32(-200), "}",
                     "}");
        matched = 0;
        rc = ts_mg_update(m, m->users, &f, u, 0, &matched);
        bson_destroy(u);
        bson_destroy(&f);
        if (rc != TS_OK) {
            return rc;
        }
        if (matched) {
            break;
        }
        /* counted already (recentStats holds it), or a concurrent count */
        bson_init(&f);
        BSON_APPEND_OID(&f, "_id", &mod);
        BSON_APPEND_OID(&f, "recentStats", ticket);
        n = mongoc_collection_count_documents(m->users, &f, NULL, NULL, NULL,
                                              &e);
        bson_destroy(&f);
        if (n < 0) {
            return ts_mg_fail(m, "stats", &e);
        }
        if (n > 0) {
            break;
        }
    }

clear:
    bson_init(&f);
    BSON_APPEND_OID(&f, "_id", ticket);
    u = BCON_NEW("$unset", "{", "statsPending", BCON_UTF8(""), "}");
    rc = ts_mg_update(m, m->tickets, &f, u, 0, NULL);
    bson_destroy(u);
    bson_destroy(&f);
    return rc;
}


ts_rc_e
ts_mg_ticket_stats(ts_store_t *s, const char *id, const char *moderator_id,
    double hours, int *counted)
{
    ts_mongo_t   *m = TS_MG(s);
    bson_t        f = BSON_INITIALIZER, upd = BSON_INITIALIZER, set, ne;
    bson_t        pending = BSON_INITIALIZER, *d = NULL, cur_pending;
    bson_oid_t    tid;
    bson_iter_t   it;
    const uint8_t *data;
    uint32_t      len;
    int64_t       matched = 0;
    ts_rc_e       rc;

    if (ts_mg_oid(id, &tid) != 0) {
        return TS_NOT_FOUND;
    }
    ts_mg_append_oid_hex(&pending, "moderator", moderator_id);
    BSON_APPEND_DOUBLE(&pending, "hours", hours > 0 ? hours : 0);

    BSON_APPEND_OID(&f, "_id", &tid);
    BSON_APPEND_DOCUMENT_BEGIN(&f, "statsCounted", &ne);
    BSON_APPEND_BOOL(&ne, "$ne", true);
    bson_append_document_end(&f, &ne);
    BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
    BSON_APPEND_BOOL(&set, "statsCounted", true);
    BSON_APPEND_DOCUMENT(&set, "statsPending", &pending);
    bson_append_document_end(&upd, &set);
    rc = ts_mg_update(m, m->tickets, &f, &upd, 0, &matched);
    bson_destroy(&f);
    bson_destroy(&upd);
    if (rc != TS_OK) {
        bson_destroy(&pending);
        return rc;
    }
    if (matched) {
        *counted = 1;
        rc = ts_mg_stats_apply(m, &tid, &pending);
        bson_destroy(&pending);
        return rc;
    }
    bson_destroy(&pending);

    /* counted before (or the ticket is gone); finish a half-done count */
    rc = ts_mg_ticket_doc(m, id, NULL, &d);
    if (rc == TS_NOT_FOUND) {
        return TS_OK;
    }
    if (rc != TS_OK) {
        return rc;
    }
    if (bson_iter_init_find(&it, d, "statsPending")
        && BSON_ITER_HOLDS_DOCUMENT(&it))
    {
        bson_iter_document(&it, &len, &data);
        if (bson_init_static(&cur_pending, data, len)) {
            rc = ts_mg_stats_apply(m, &tid, &cur_pending);
        }
    }
    bson_destroy(d);
    return rc;
}

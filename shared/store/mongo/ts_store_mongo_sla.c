/*
 * ts_store_mongo_sla: the SLA on MongoDB (ts_sla.h): its dates read from
 * a ticket document, the list filters, a priority change moving the
 * dates, a breach marked once (with its "sla" history entry through the
 * ticket's outbox), "% within SLA".
 *
 * Fields on the ticket: firstResponseDue, firstResponseWarn, deadline
 * (the resolution date, the original schema's field), resolutionWarn,
 * firstResponseAt, slaBreachedAt -- dates, or null/missing.  Each write
 * is one single-document update, conditional where it must happen once
 * (no transactions: a standalone mongod has none).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_store_mongo.h"


void
ts_mg_sla_state(const bson_t *doc, ts_sla_state_t *st)
{
    const char  *status = ts_mg_get_str(doc, "status");

    memset(st, 0, sizeof(*st));
    st->due.response_due = ts_mg_get_time(doc, "firstResponseDue");
    st->due.response_warn = ts_mg_get_time(doc, "firstResponseWarn");
    st->due.resolution_due = ts_mg_get_time(doc, "deadline");
    st->due.resolution_warn = ts_mg_get_time(doc, "resolutionWarn");
    st->responded_at = ts_mg_get_time(doc, "firstResponseAt");
    st->breached_at = ts_mg_get_time(doc, "slaBreachedAt");
    st->completed = status != NULL && strcmp(status, "Completed") == 0;
}


json_t *
ts_mg_sla_json(const bson_t *doc, int64_t now)
{
    ts_sla_state_t  st;
    ts_jw_t         w;
    char           *text;
    size_t          len;
    json_t         *v;

    ts_mg_sla_state(doc, &st);
    ts_jw_init(&w, 256);
    ts_sla_write(&w, &st, now);
    text = ts_jw_finish(&w, &len);
    v = text ? json_loadb(text, len, JSON_DECODE_ANY, NULL) : NULL;
    free(text);
    return v ? v : json_null();
}


bson_t *
ts_mg_sla_filter(const char *which, int64_t now)
{
    if (strcmp(which, "breached") == 0) {
        /* ts_sla_breached() at now */
        return BCON_NEW("$or", "[",
            "{", "slaBreachedAt", "{", "$ne", BCON_NULL, "}", "}",
            "{", "status", "{", "$ne", BCON_UTF8("Completed"), "}",
                 "firstResponseAt", BCON_NULL,
                 "firstResponseDue", "{", "$lt", BCON_DATE_TIME(now), "}",
            "}",
            "{", "status", "{", "$ne", BCON_UTF8("Completed"), "}",
                 "deadline", "{", "$lt", BCON_DATE_TIME(now), "}", "}",
            "]");
    }
    /* ts_sla_due_soon(): open, not breached, a target unmet past its
     * warning */
    return BCON_NEW("slaBreachedAt", BCON_NULL,
        "status", "{", "$ne", BCON_UTF8("Completed"), "}",
        "$and", "[",
          "{", "$or", "[",
            "{", "firstResponseAt", "{", "$ne", BCON_NULL, "}", "}",
            "{", "firstResponseDue", BCON_NULL, "}",
            "{", "firstResponseDue", "{", "$gte", BCON_DATE_TIME(now), "}",
            "}", "]", "}",
          "{", "$or", "[",
            "{", "deadline", BCON_NULL, "}",
            "{", "deadline", "{", "$gte", BCON_DATE_TIME(now), "}", "}",
            "]", "}",
          "{", "$or", "[",
            "{", "firstResponseAt", BCON_NULL,
                 "firstResponseWarn", "{", "$lte", BCON_DATE_TIME(now), "}",
            "}",
            "{", "resolutionWarn", "{", "$lte", BCON_DATE_TIME(now), "}",
            "}", "]", "}",
        "]");
}


void
ts_mg_sla_append_dates(bson_t *set, const ts_sla_due_t *due)
{
    ts_mg_append_time(set, "firstResponseDue", due->response_due);
    ts_mg_append_time(set, "firstResponseWarn", due->response_warn);
    ts_mg_append_time(set, "deadline", due->resolution_due);
    ts_mg_append_time(set, "resolutionWarn", due->resolution_warn);
}


/* The history entry of a breach of target into hist: "sla", by ticketd,
 * staff only, to {"breached": target} (ts_store.h). */
static void
ts_sla_history(bson_t *hist, const char *id, const char *target,
    int64_t now)
{
    json_t     *to = json_pack("{s:s}", "breached", target);
    ts_hist_t   h = { TS_HIST_SLA, NULL, NULL, to, NULL, 1 };

    ts_mg_history_array(hist, id, &h, 1, now);
    json_decref(to);
}


/* The priority is compared and set (the history's "from" is the priority
 * the update replaced): a racing change makes it read again. */
ts_rc_e
ts_mg_ticket_set_priority(ts_store_t *s, const char *id,
    const char *priority, const char *actor, const ts_sla_due_t *due,
    int64_t now, const ts_job_new_t *jobs, size_t njobs)
{
    ts_mongo_t  *m = TS_MG(s);
    bson_t       f, upd, set, arr, hist, *d = NULL, *proj;
    json_t      *from, *to = json_string(priority);
    int64_t      matched;
    int          tries;
    ts_rc_e      rc = TS_ERR;

    for (tries = 0; tries < 8; tries++) {
        proj = BCON_NEW("priority", BCON_INT32(1));
        rc = ts_mg_ticket_doc(m, id, proj, &d);
        bson_destroy(proj);
        if (rc != TS_OK) {
            break;
        }
        from = ts_mg_get_json(d, "priority");
        bson_destroy(d);
        if (json_is_string(from) && json_string_length(from) == 0) {
            json_decref(from);
            from = NULL;
        }
        bson_init(&hist);
        if (!json_equal(from, to)) {
            ts_hist_t h = { TS_HIST_PRIORITY, actor, from, to, NULL, 0 };
            ts_mg_history_array(&hist, id, &h, 1, now);
        }
        bson_init(&arr);
        ts_mg_jobs_array(&arr, jobs, njobs, now);
        bson_init(&upd);
        BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
        BSON_APPEND_UTF8(&set, "priority", priority);
        BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
        ts_mg_sla_append_dates(&set, due);
        bson_append_document_end(&upd, &set);
        ts_mg_push_outboxes(&upd, &arr, &hist);
        bson_init(&f);
        ts_mg_append_oid_hex(&f, "_id", id);
        ts_mg_append_json(&f, "priority", from ? from : json_null());
        matched = 0;
        rc = ts_mg_update(m, m->tickets, &f, &upd, 0, &matched);
        if (rc == TS_OK && matched > 0) {
            ts_flush(m, m->tickets, id, &arr);
            ts_mg_history_flush(m, id, &hist);
        }
        bson_destroy(&f);
        bson_destroy(&upd);
        bson_destroy(&arr);
        bson_destroy(&hist);
        json_decref(from);
        if (rc != TS_OK || matched > 0) {
            break;
        }
        rc = ts_store_fail(s, "priority kept changing");
    }
    json_decref(to);
    return rc;
}


ts_rc_e
ts_mg_ticket_sla_breach(ts_store_t *s, const char *id, const char *target,
    int64_t due, int64_t now)
{
    ts_mongo_t  *m = TS_MG(s);
    bson_t       f = BSON_INITIALIZER, hist = BSON_INITIALIZER, *upd;
    int64_t      matched = 0;
    int          response = strcmp(target, "response") == 0;
    ts_rc_e      rc;

    /* one conditional update, its history entry in the ticket's outbox */
    ts_mg_append_oid_hex(&f, "_id", id);
    BSON_APPEND_NULL(&f, "slaBreachedAt");
    if (response) {
        BSON_APPEND_DATE_TIME(&f, "firstResponseDue", due);
        BSON_APPEND_NULL(&f, "firstResponseAt");
    } else {
        BSON_APPEND_DATE_TIME(&f, "deadline", due);
    }
    {
        bson_t ne;
        BSON_APPEND_DOCUMENT_BEGIN(&f, "status", &ne);
        BSON_APPEND_UTF8(&ne, "$ne", "Completed");
        bson_append_document_end(&f, &ne);
    }
    ts_sla_history(&hist, id, response ? "firstResponse" : "resolution", now);
    upd = BCON_NEW("$set", "{", "slaBreachedAt", BCON_DATE_TIME(due),
                   "updatedAt", BCON_DATE_TIME(now), "}");
    ts_mg_push_outboxes(upd, NULL, &hist);
    rc = ts_mg_update(m, m->tickets, &f, upd, 0, &matched);
    if (rc == TS_OK && matched > 0) {
        ts_mg_history_flush(m, id, &hist);
    }
    bson_destroy(&f);
    bson_destroy(upd);
    bson_destroy(&hist);
    return rc == TS_OK && matched == 0 ? TS_CONFLICT : rc;
}


ts_rc_e
ts_mg_sla_settle(ts_mongo_t *m, const char *id, int64_t now)
{
    bson_t          *d = NULL, f = BSON_INITIALIZER, hist = BSON_INITIALIZER;
    bson_t          *upd;
    ts_sla_state_t   st;
    int64_t          completed_at, mark = 0, matched = 0;
    const char      *target = "firstResponse";
    ts_rc_e          rc;

    rc = ts_mg_ticket_doc(m, id, NULL, &d);
    if (rc != TS_OK) {
        return rc == TS_NOT_FOUND ? TS_OK : rc;
    }
    ts_mg_sla_state(d, &st);
    completed_at = ts_mg_get_time(d, "completedAt");
    bson_destroy(d);
    if (st.breached_at != 0 || st.due.resolution_due == 0) {
        return TS_OK;
    }
    /* a target met late, or a ticket completed without a response past
     * its response date: the same dates the SQLite backend marks */
    if (st.responded_at != 0 && st.due.response_due != 0
        && st.responded_at > st.due.response_due)
    {
        mark = st.due.response_due;
    } else if (st.completed && st.responded_at == 0
               && st.due.response_due != 0
               && completed_at > st.due.response_due)
    {
        mark = st.due.response_due;
    } else if (st.completed && completed_at > st.due.resolution_due) {
        mark = st.due.resolution_due;
        target = "resolution";
    }
    if (mark == 0) {
        return TS_OK;
    }
    ts_mg_append_oid_hex(&f, "_id", id);
    BSON_APPEND_NULL(&f, "slaBreachedAt");
    ts_sla_history(&hist, id, target, now);
    upd = BCON_NEW("$set", "{", "slaBreachedAt", BCON_DATE_TIME(mark), "}");
    ts_mg_push_outboxes(upd, NULL, &hist);
    rc = ts_mg_update(m, m->tickets, &f, upd, 0, &matched);
    if (rc == TS_OK && matched > 0) {
        ts_mg_history_flush(m, id, &hist);
    }
    bson_destroy(&f);
    bson_destroy(upd);
    bson_destroy(&hist);
    return rc;
}


ts_rc_e
ts_mg_sla_analytics(ts_mongo_t *m, json_t **out)
{
    static const char  *names[] = { "Low", "Medium", "High" };
    mongoc_cursor_t    *cur;
    const bson_t       *d;
    bson_t             *f, *opts;
    bson_error_t        e;
    int64_t             n[3] = { 0, 0, 0 }, b[3] = { 0, 0, 0 };
    int                 i;
    json_t             *by;

    f = BCON_NEW("deadline", "{", "$ne", BCON_NULL, "}",
                 "completedAt", "{", "$ne", BCON_NULL, "}");
    opts = BCON_NEW("projection", "{", "priority", BCON_INT32(1),
                    "slaBreachedAt", BCON_INT32(1), "}");
    cur = mongoc_collection_find_with_opts(m->tickets, f, opts, NULL);
    while (mongoc_cursor_next(cur, &d)) {
        i = ts_sla_priority(ts_mg_get_str(d, "priority"));
        if (i >= 0) {
            n[i]++;
            b[i] += ts_mg_get_time(d, "slaBreachedAt") != 0;
        }
    }
    bson_destroy(f);
    bson_destroy(opts);
    if (mongoc_cursor_error(cur, &e)) {
        mongoc_cursor_destroy(cur);
        return ts_mg_fail(m, "sla analytics", &e);
    }
    mongoc_cursor_destroy(cur);
    by = json_object();
    for (i = 0; by != NULL && i < 3; i++) {
        json_object_set_new(by, names[i], ts_sla_figures(n[i], b[i]));
    }
    *out = by;
    return by ? TS_OK : TS_ERR;
}

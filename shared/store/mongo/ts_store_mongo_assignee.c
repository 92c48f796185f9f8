/*
 * ts_store_mongo_assignee: assignment by hand, hand-back, demotion and
 * the absent staff on MongoDB (issue 15 item 1).
 *
 * Each ticket change is one single-document compare-and-set on its
 * assignedTo, with its job in the ticket's outbox (see ts_store_mongo.c),
 * so it is atomic with its job without a transaction.  The manual marker
 * is the field assignedBy (who assigned by hand); a hand-back clears it
 * with assignedTo, and the assignment job's claim filters on
 * {assignedTo: null} and, when it re-points its own claim, on
 * {assignedBy: null} (ts_store_mongo_assign.c), so it never replaces a
 * hand assignment.
 *
 * A demotion is two kinds of writes: the role first (from then on no
 * assignment picks the user), then each open ticket.  A crash between
 * them leaves tickets assigned to a plain user; the service repeats the
 * hand-back on every update to role "user", so a retried request finishes
 * it.
 *
 * History: each ticket write pushes its entries ("assignee" from -> to by
 * who made it; "status" when a hand-back moves In Progress to To-Do) into
 * the ticket's pendingHistory in the same update (ts_store_mongo_history.c),
 * then flushes them into "tickethistory".
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_store_mongo.h"


/* Append {assignedTo: from} to a filter ("" or NULL: unassigned). */
static void
ts_append_from(bson_t *f, const char *from)
{
    if (from != NULL && from[0] != '\0') {
        ts_mg_append_oid_hex(f, "assignedTo", from);
    } else {
        BSON_APPEND_NULL(f, "assignedTo");
    }
}


/* {_id, username} of a user for the history (username null when the
 * user is gone), or NULL after an error. */
static json_t *
ts_person(ts_mongo_t *m, const char *id)
{
    json_t  *ids = json_pack("[s]", id), *people = NULL, *name;
    json_t  *out = NULL;

    if (ids != NULL && ts_mg_people(m, ids, &people) == TS_OK) {
        name = json_object_get(json_object_get(people, id), "username");
        out = json_pack("{s:s, s:O}", "_id", id,
                        "username", name ? name : json_null());
    }
    json_decref(ids);
    json_decref(people);
    return out;
}


/*
 * Hand ticket id back from `from` (person: {_id, username}) with the jobs
 * in arr and its history by actor (why: the explanation, may be NULL) in
 * its outboxes: In Progress goes back to To-Do (first pass), any other
 * status stays (second pass).  *status gets the status after it, *matched
 * whether the compare-and-set won.
 */
static ts_rc_e
ts_hand_back(ts_mongo_t *m, const char *id, const char *from,
    json_t *person, const char *actor, json_t *why, const bson_t *arr,
    int64_t now, char *status, int *matched)
{
    bson_t     f, upd, set, ne, hist;
    ts_hist_t  h[2];
    size_t     nh;
    int64_t    n = 0;
    ts_rc_e    rc;
    int        pass;

    *matched = 0;
    bson_init(&hist);
    for (pass = 0; pass < 2; pass++) {
        bson_init(&f);
        bson_init(&upd);
        bson_reinit(&hist);
        nh = ts_handback_history(h, actor, person, why,
                                 pass == 0 ? "In Progress" : NULL,
                                 pass == 0 ? "To-Do" : NULL);
        ts_mg_history_array(&hist, id, h, nh, now);
        ts_hist_release(h, nh);
        ts_mg_append_oid_hex(&f, "_id", id);
        ts_append_from(&f, from);
        if (pass == 0) {
            BSON_APPEND_UTF8(&f, "status", "In Progress");
        } else {
            BSON_APPEND_DOCUMENT_BEGIN(&f, "status", &ne);
            BSON_APPEND_UTF8(&ne, "$ne", "In Progress");
            bson_append_document_end(&f, &ne);
        }
        BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
        BSON_APPEND_NULL(&set, "assignedTo");
        BSON_APPEND_NULL(&set, "assignedBy");
        BSON_APPEND_NULL(&set, "assignment");
        BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
        if (pass == 0) {
            BSON_APPEND_UTF8(&set, "status", "To-Do");
        }
        bson_append_document_end(&upd, &set);
        /* history: handed back by actor (assignee from -> null) */
        ts_mg_push_outboxes(&upd, arr, &hist);
        rc = ts_mg_update(m, m->tickets, &f, &upd, 0, &n);
        bson_destroy(&f);
        bson_destroy(&upd);
        if (rc != TS_OK) {
            bson_destroy(&hist);
            return rc;
        }
        if (n > 0) {
            *matched = 1;
            if (pass == 0) {
                snprintf(status, 16, "To-Do");
            }
            break;
        }
    }
    if (*matched) {
        ts_flush(m, m->tickets, id, (bson_t *) arr);
        ts_mg_history_flush(m, id, &hist);
    }
    bson_destroy(&hist);
    return TS_OK;
}


/* What a failed compare-and-set means: TS_CONFLICT when the ticket is
 * there (someone changed its assignee first), else TS_NOT_FOUND. */
static ts_rc_e
ts_lost(ts_mongo_t *m, const char *id)
{
    bson_t   *proj, *d = NULL;
    ts_rc_e   rc;

    proj = BCON_NEW("_id", BCON_INT32(1));
    rc = ts_mg_ticket_doc(m, id, proj, &d);
    bson_destroy(proj);
    if (d) {
        bson_destroy(d);
    }
    return rc == TS_OK ? TS_CONFLICT : rc;
}


ts_rc_e
ts_mg_ticket_set_assignee(ts_store_t *s, const char *id, const char *from,
    const char *to, const char *by, json_t *assignment, int64_t now,
    const ts_job_new_t *jobs, size_t njobs)
{
    ts_mongo_t  *m = TS_MG(s);
    bson_t       arr = BSON_INITIALIZER, f = BSON_INITIALIZER;
    bson_t       upd = BSON_INITIALIZER, set, hist = BSON_INITIALIZER;
    json_t      *was = NULL, *now_to = NULL;
    char         status[16] = "";
    int64_t      n = 0;
    int          matched = 0;
    ts_rc_e      rc;

    /* the people the history names */
    if ((from[0] != '\0' && (was = ts_person(m, from)) == NULL)
        || (to != NULL && (now_to = ts_person(m, to)) == NULL))
    {
        json_decref(was);
        return TS_ERR;
    }
    ts_mg_jobs_array(&arr, jobs, njobs, now);
    if (to == NULL) {
        /* history: handed back by `by` */
        rc = ts_hand_back(m, id, from, was, by, NULL, &arr, now, status,
                          &matched);
    } else {
        ts_mg_append_oid_hex(&f, "_id", id);
        ts_append_from(&f, from);
        BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
        ts_mg_append_oid_hex(&set, "assignedTo", to);
        if (by != NULL) {
            ts_mg_append_oid_hex(&set, "assignedBy", by);
        } else {
            BSON_APPEND_NULL(&set, "assignedBy");
        }
        ts_mg_append_json(&set, "assignment",
                          assignment ? assignment : json_null());
        BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
        bson_append_document_end(&upd, &set);
        {
            /* history: assigned by hand by `by` (from -> to) */
            ts_hist_t h = { TS_HIST_ASSIGNEE, by, was, now_to, assignment,
                            0 };
            ts_mg_history_array(&hist, id, &h, 1, now);
        }
        ts_mg_push_outboxes(&upd, &arr, &hist);
        rc = ts_mg_update(m, m->tickets, &f, &upd, 0, &n);
        matched = n > 0;
        if (rc == TS_OK && matched) {
            ts_flush(m, m->tickets, id, &arr);
            ts_mg_history_flush(m, id, &hist);
        }
    }
    json_decref(was);
    json_decref(now_to);
    bson_destroy(&hist);
    if (rc == TS_OK && !matched) {
        rc = ts_lost(m, id);
    }
    bson_destroy(&f);
    bson_destroy(&upd);
    bson_destroy(&arr);
    return rc;
}


ts_rc_e
ts_mg_user_handback(ts_store_t *s, const char *user_id, int demote,
    json_t *skills, int todo_only, const char *actor, json_t *why,
    ts_handback_job_fn job_fn, int64_t now, json_t **handed)
{
    ts_mongo_t       *m = TS_MG(s);
    mongoc_cursor_t  *cur;
    const bson_t     *d;
    bson_t           *f, *opts, upd = BSON_INITIALIZER, set, uf;
    bson_t            arr;
    bson_error_t      e;
    ts_job_new_t      job;
    json_t           *found = json_array(), *out, *v, *person = NULL;
    char              key[TS_JOB_KEY_LEN], status[16];
    const char       *tid, *st;
    ts_oid_t          hex;
    int64_t           n = 0;
    int               matched;
    size_t            i;
    ts_rc_e           rc = TS_OK;

    if (demote) {
        /* the role is not a ticket's history; each ticket's entry below
         * names who demoted them */
        bson_init(&uf);
        ts_mg_append_oid_hex(&uf, "_id", user_id);
        BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
        BSON_APPEND_UTF8(&set, "role", "user");
        BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
        if (skills) {
            ts_mg_append_json(&set, "skills", skills);
        }
        bson_append_document_end(&upd, &set);
        rc = ts_mg_update(m, m->users, &uf, &upd, 0, &n);
        bson_destroy(&uf);
        if (rc == TS_OK && n == 0) {
            rc = TS_NOT_FOUND;
        }
    }
    bson_destroy(&upd);
    if (rc != TS_OK) {
        json_decref(found);
        return rc;
    }

    f = BCON_NEW("status", "{", "$in", "[", BCON_UTF8("To-Do"),
                 BCON_UTF8(todo_only ? "To-Do" : "In Progress"), "]", "}");
    ts_mg_append_oid_hex(f, "assignedTo", user_id);
    opts = BCON_NEW("projection", "{", "status", BCON_INT32(1), "}");
    cur = mongoc_collection_find_with_opts(m->tickets, f, opts, NULL);
    while (mongoc_cursor_next(cur, &d)) {
        if (ts_mg_get_oid_hex(d, "_id", hex) == 0) {
            st = ts_mg_get_str(d, "status");
            json_array_append_new(found, json_pack("{s:s, s:s}",
                                  "ticketId", hex, "status",
                                  st ? st : "To-Do"));
        }
    }
    bson_destroy(f);
    bson_destroy(opts);
    if (mongoc_cursor_error(cur, &e)) {
        mongoc_cursor_destroy(cur);
        json_decref(found);
        return ts_mg_fail(m, "open tickets", &e);
    }
    mongoc_cursor_destroy(cur);
    if (json_array_size(found) > 0
        && (person = ts_person(m, user_id)) == NULL)
    {
        json_decref(found);
        return TS_ERR;
    }

    out = json_array();
    json_array_foreach(found, i, v) {
        tid = json_string_value(json_object_get(v, "ticketId"));
        snprintf(status, sizeof(status), "%s",
                 json_string_value(json_object_get(v, "status")));
        /* open tickets only (found above), so each gets its job */
        if (job_fn(&job, key, tid, user_id, now) != 0) {
            json_decref(job.payload);
            rc = ts_store_fail(s, "out of memory");
            break;
        }
        bson_init(&arr);
        ts_mg_jobs_array(&arr, &job, 1, now);
        json_decref(job.payload);
        /* history: handed back by actor (assignee user -> null) */
        rc = ts_hand_back(m, tid, user_id, person, actor, why, &arr, now,
                          status, &matched);
        bson_destroy(&arr);
        if (rc != TS_OK) {
            break;
        }
        if (matched) {
            json_array_append_new(out, json_pack("{s:s, s:s}", "ticketId",
                                                 tid, "status", status));
        }
    }
    json_decref(found);
    json_decref(person);
    if (rc != TS_OK) {
        json_decref(out);
        return rc;
    }
    *handed = out;
    return TS_OK;
}


ts_rc_e
ts_mg_absent_assignees(ts_store_t *s, int64_t before, json_t **users)
{
    ts_mongo_t       *m = TS_MG(s);
    mongoc_cursor_t  *cur;
    const bson_t     *d;
    bson_t           *f, *opts, tf;
    bson_error_t      e;
    json_t           *cands = json_array(), *out, *v;
    ts_oid_t          hex;
    int64_t           since, n;
    size_t            i;

    f = BCON_NEW("role", "{", "$in", "[", BCON_UTF8("moderator"),
                 BCON_UTF8("admin"), "]", "}",
                 "status", "{", "$in", "[", BCON_UTF8("dnd"),
                 BCON_UTF8("offline"), "]", "}");
    opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}",
                    "projection", "{", "lastSeen", BCON_INT32(1),
                    "createdAt", BCON_INT32(1), "}");
    cur = mongoc_collection_find_with_opts(m->users, f, opts, NULL);
    while (mongoc_cursor_next(cur, &d)) {
        since = ts_mg_get_time(d, "lastSeen");
        if (since == 0) {
            since = ts_mg_get_time(d, "createdAt");
        }
        if (since < before && ts_mg_get_oid_hex(d, "_id", hex) == 0) {
            json_array_append_new(cands, json_string(hex));
        }
    }
    bson_destroy(f);
    bson_destroy(opts);
    if (mongoc_cursor_error(cur, &e)) {
        mongoc_cursor_destroy(cur);
        json_decref(cands);
        return ts_mg_fail(m, "absent staff", &e);
    }
    mongoc_cursor_destroy(cur);

    /* only those holding a To-Do ticket */
    out = json_array();
    json_array_foreach(cands, i, v) {
        bson_init(&tf);
        ts_mg_append_oid_hex(&tf, "assignedTo", json_string_value(v));
        BSON_APPEND_UTF8(&tf, "status", "To-Do");
        opts = BCON_NEW("limit", BCON_INT64(1));
        n = mongoc_collection_count_documents(m->tickets, &tf, opts, NULL,
                                              NULL, &e);
        bson_destroy(opts);
        bson_destroy(&tf);
        if (n < 0) {
            json_decref(cands);
            json_decref(out);
            return ts_mg_fail(m, "absent staff tickets", &e);
        }
        if (n > 0) {
            json_array_append(out, v);
        }
    }
    json_decref(cands);
    *users = out;
    return TS_OK;
}

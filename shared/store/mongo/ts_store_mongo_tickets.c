/*
 * ts_store_mongo_tickets: tickets (comments embedded, as the original
 * app's model), comments and the users-by-role list on MongoDB.
 * Moderator requests are in ts_store_mongo_modreqs.c, analytics in
 * ts_store_mongo_analytics.c.
 *
 * Every write that stores jobs carries them in the document's outbox
 * (pendingJobs, see ts_store_mongo.c) within the same single-document
 * update, then flushes them into "jobs".
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_store_mongo.h"
#include "ts_validate.h"


/* Flush the outbox a write just filled (arr: its job documents). */
void
ts_flush(ts_mongo_t *m, mongoc_collection_t *c, const char *owner_hex,
    bson_t *arr)
{
    bson_oid_t  oid;

    if (!bson_empty(arr) && ts_mg_oid(owner_hex, &oid) == 0) {
        ts_mg_outbox_flush(m, c, &oid, arr);
    }
}


/* Append {$push: {pendingJobs: {$each: arr}}} to an update. */
void
ts_push_jobs(bson_t *upd, const bson_t *arr)
{
    bson_t  push, each;

    BSON_APPEND_DOCUMENT_BEGIN(upd, "$push", &push);
    BSON_APPEND_DOCUMENT_BEGIN(&push, "pendingJobs", &each);
    BSON_APPEND_ARRAY(&each, "$each", arr);
    bson_append_document_end(&push, &each);
    bson_append_document_end(upd, &push);
}


ts_rc_e
ts_mg_ticket_create(ts_store_t *s, const char *id, const char *title,
    const char *description, const char *created_by, int64_t now,
    const ts_job_new_t *jobs, size_t njobs)
{
    ts_mongo_t    *m = TS_MG(s);
    bson_t         doc = BSON_INITIALIZER, arr = BSON_INITIALIZER, a;
    bson_t         hist = BSON_INITIALIZER;
    bson_error_t   e;
    ts_rc_e        rc = TS_OK;

    ts_mg_jobs_array(&arr, jobs, njobs, now);
    ts_mg_append_oid_hex(&doc, "_id", id);
    BSON_APPEND_UTF8(&doc, "title", title);
    BSON_APPEND_UTF8(&doc, "description", description);
    BSON_APPEND_UTF8(&doc, "status", "To-Do");
    BSON_APPEND_NULL(&doc, "priority");
    BSON_APPEND_ARRAY_BEGIN(&doc, "relatedSkills", &a);
    bson_append_array_end(&doc, &a);
    ts_mg_append_oid_hex(&doc, "createdBy", created_by);
    BSON_APPEND_NULL(&doc, "assignedTo");
    BSON_APPEND_ARRAY_BEGIN(&doc, "comments", &a);
    bson_append_array_end(&doc, &a);
    BSON_APPEND_BOOL(&doc, "statsCounted", false);
    BSON_APPEND_DATE_TIME(&doc, "createdAt", now);
    BSON_APPEND_DATE_TIME(&doc, "updatedAt", now);
    BSON_APPEND_INT32(&doc, "__v", 0);
    BSON_APPEND_ARRAY(&doc, "pendingJobs", &arr);
    {
        json_t     *to = json_string("To-Do");
        ts_hist_t   h = { TS_HIST_CREATED, created_by, NULL, to, NULL, 0 };

        ts_mg_history_array(&hist, id, &h, 1, now);
        json_decref(to);
    }
    BSON_APPEND_ARRAY(&doc, "pendingHistory", &hist);
    if (!mongoc_collection_insert_one(m->tickets, &doc, NULL, NULL, &e)) {
        rc = ts_mg_fail(m, "ticket insert", &e);
    } else {
        ts_flush(m, m->tickets, id, &arr);
        ts_mg_history_flush(m, id, &hist);
    }
    bson_destroy(&hist);
    bson_destroy(&doc);
    bson_destroy(&arr);
    return rc;
}


/* 1 when doc's key holds true (an internal note's flag). */
static int
ts_mg_true(const bson_t *doc, const char *key)
{
    bson_iter_t  it;

    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_BOOL(&it)
           && bson_iter_bool(&it);
}


/* A ticket document as its public JSON; people from the map (hex ->
 * person), null when missing; "sla" judged at now (staff-only: the
 * callers drop it with "triage" for requesters). */
static json_t *
ts_ticket_json(const bson_t *doc, json_t *people, int64_t now)
{
    ts_oid_t   hex, c, a;
    json_t    *t, *p;

    if (ts_mg_get_oid_hex(doc, "_id", hex) != 0) {
        return NULL;
    }
    ts_mg_get_oid_hex(doc, "createdBy", c);
    ts_mg_get_oid_hex(doc, "assignedTo", a);
    t = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o,"
                  " s:o}",
                  "_id", hex,
                  "title", ts_mg_get_json(doc, "title"),
                  "description", ts_mg_get_json(doc, "description"),
                  "status", ts_mg_get_json(doc, "status"),
                  "priority", ts_mg_get_json(doc, "priority"),
                  "summary", ts_mg_get_json(doc, "summary"),
                  "helpfulNotes", ts_mg_get_json(doc, "helpfulNotes"),
                  "relatedSkills", ts_mg_get_str_array(doc, "relatedSkills"),
                  "deadline", ts_mg_get_time_json(doc, "deadline"),
                  "createdAt", ts_mg_get_time_json(doc, "createdAt"),
                  "updatedAt", ts_mg_get_time_json(doc, "updatedAt"),
                  "triage", ts_mg_get_json(doc, "triage"));
    if (t == NULL) {
        return NULL;
    }
    json_object_set_new(t, "firstResponseAt",
                        ts_mg_get_time_json(doc, "firstResponseAt"));
    p = c[0] ? json_object_get(people, c) : NULL;
    json_object_set(t, "createdBy", p ? p : json_null());
    p = a[0] ? json_object_get(people, a) : NULL;
    json_object_set(t, "assignedTo", p ? p : json_null());
    json_object_set_new(t, "sla", ts_mg_sla_json(doc, now));
    return t;
}


/* Add the hex ids of a document's people fields to ids. */
void
ts_collect(json_t *ids, const bson_t *doc, const char *key)
{
    ts_oid_t  hex;

    if (ts_mg_get_oid_hex(doc, key, hex) == 0) {
        json_array_append_new(ids, json_string(hex));
    }
}


/* Comments of a ticket document, sorted, authors populated; internal
 * notes only with with_internal. */
static ts_rc_e
ts_comments_json(ts_mongo_t *m, const bson_t *doc, int with_internal,
    json_t **out)
{
    bson_iter_t     it, child;
    bson_t          c;
    const uint8_t  *data;
    uint32_t        len;
    json_t         *arr = json_array(), *ids = json_array(), *people, *p;
    json_t         *cj;
    ts_oid_t        hex, author;
    size_t          i;

    if (bson_iter_init_find(&it, doc, "comments") && BSON_ITER_HOLDS_ARRAY(&it)
        && bson_iter_recurse(&it, &child))
    {
        while (bson_iter_next(&child)) {
            if (BSON_ITER_HOLDS_DOCUMENT(&child)) {
                bson_iter_document(&child, &len, &data);
                if (bson_init_static(&c, data, len)) {
                    ts_collect(ids, &c, "author");
                }
            }
        }
    }
    if (ts_mg_people(m, ids, &people) != TS_OK) {
        json_decref(ids);
        json_decref(arr);
        return TS_ERR;
    }
    json_decref(ids);

    if (bson_iter_init_find(&it, doc, "comments") && BSON_ITER_HOLDS_ARRAY(&it)
        && bson_iter_recurse(&it, &child))
    {
        while (bson_iter_next(&child)) {
            if (!BSON_ITER_HOLDS_DOCUMENT(&child)) {
                continue;
            }
            bson_iter_document(&child, &len, &data);
            if (!bson_init_static(&c, data, len)
                || ts_mg_get_oid_hex(&c, "_id", hex) != 0
                || (!with_internal && ts_mg_true(&c, "internal")))
            {
                continue;
            }
            ts_mg_get_oid_hex(&c, "author", author);
            p = author[0] ? json_object_get(people, author) : NULL;
            cj = json_pack("{s:s, s:O, s:o, s:o, s:o, s:I}",
                           "_id", hex, "author", p ? p : json_null(),
                           "text", ts_mg_get_json(&c, "text"),
                           "role", ts_mg_get_json(&c, "role"),
                           "createdAt", ts_mg_get_time_json(&c, "createdAt"),
                           "_t", (json_int_t) ts_mg_get_time(&c,
                                                             "createdAt"));
            if (cj && ts_mg_true(&c, "internal")) {
                /* a public one has the keys it always had */
                json_object_set_new(cj, "internal", json_true());
            }
            if (cj) {
                json_array_append_new(arr, cj);
            }
        }
    }
    json_decref(people);

    /* oldest first, then by id (the array is in insertion order already
     * for our writes; an imported one may not be) */
    for (i = 1; i < json_array_size(arr); i++) {
        size_t j = i;
        while (j > 0) {
            json_t *x = json_array_get(arr, j - 1), *y = json_array_get(arr, j);
            json_int_t tx = json_integer_value(json_object_get(x, "_t"));
            json_int_t ty = json_integer_value(json_object_get(y, "_t"));
            if (tx < ty || (tx == ty
                && strcmp(json_string_value(json_object_get(x, "_id")),
                          json_string_value(json_object_get(y, "_id"))) <= 0))
            {
                break;
            }
            json_incref(x);
            json_array_set(arr, j - 1, y);
            json_array_set_new(arr, j, x);
            j--;
        }
    }
    for (i = 0; i < json_array_size(arr); i++) {
        json_object_del(json_array_get(arr, i), "_t");
    }
    *out = arr;
    return TS_OK;
}


ts_rc_e
ts_mg_ticket_doc(ts_mongo_t *m, const char *id, const bson_t *projection,
    bson_t **doc)
{
    mongoc_cursor_t  *cur;
    const bson_t     *d;
    bson_t            f = BSON_INITIALIZER, opts = BSON_INITIALIZER;
    bson_error_t      e;
    ts_rc_e           rc = TS_NOT_FOUND;

    ts_mg_append_oid_hex(&f, "_id", id);
    BSON_APPEND_INT64(&opts, "limit", 1);
    if (projection) {
        BSON_APPEND_DOCUMENT(&opts, "projection", projection);
    }
    cur = mongoc_collection_find_with_opts(m->tickets, &f, &opts, NULL);
    if (mongoc_cursor_next(cur, &d)) {
        *doc = bson_copy(d);
        rc = TS_OK;
    } else if (mongoc_cursor_error(cur, &e)) {
        rc = ts_mg_fail(m, "ticket", &e);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&f);
    bson_destroy(&opts);
    return rc;
}


ts_rc_e
ts_mg_ticket_get(ts_store_t *s, const char *id, int with_comments,
    json_t **doc, ts_ticket_keys_t *keys)
{
    ts_mongo_t   *m = TS_MG(s);
    bson_t       *d = NULL;
    bson_iter_t   it, child;
    json_t       *ids, *people = NULL, *t, *comments;
    const char   *st;
    ts_rc_e       rc;

    rc = ts_mg_ticket_doc(m, id, NULL, &d);
    if (rc != TS_OK) {
        return rc;
    }
    if (keys) {
        memset(keys, 0, sizeof(*keys));
        ts_mg_get_oid_hex(d, "createdBy", keys->created_by);
        ts_mg_get_oid_hex(d, "assignedTo", keys->assigned_to);
        st = ts_mg_get_str(d, "status");
        snprintf(keys->status, sizeof(keys->status), "%s", st ? st : "");
        keys->created_at = ts_mg_get_time(d, "createdAt");
        keys->updated_at = ts_mg_get_time(d, "updatedAt");
        st = ts_mg_get_str(d, "priority");
        snprintf(keys->priority, sizeof(keys->priority), "%s", st ? st : "");
        ts_mg_sla_state(d, &keys->sla);
        if (bson_iter_init_find(&it, d, "comments")
            && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &child))
        {
            while (bson_iter_next(&child)) {
                bson_t          c;
                const uint8_t  *data;
                uint32_t        len;

                /* public ones: an internal note opens no conversation */
                if (BSON_ITER_HOLDS_DOCUMENT(&child)) {
                    bson_iter_document(&child, &len, &data);
                    if (bson_init_static(&c, data, len)
                        && !ts_mg_true(&c, "internal"))
                    {
                        keys->comments++;
                    }
                }
            }
        }
    }
    if (doc == NULL) {
        bson_destroy(d);
        return TS_OK;
    }

    ids = json_array();
    ts_collect(ids, d, "createdBy");
    ts_collect(ids, d, "assignedTo");
    rc = ts_mg_people(m, ids, &people);
    json_decref(ids);
    if (rc != TS_OK) {
        bson_destroy(d);
        return rc;
    }
    t = ts_ticket_json(d, people, ts_now_ms());
    json_decref(people);
    if (t == NULL) {
        bson_destroy(d);
        return ts_store_fail(s, "mongodb: malformed ticket");
    }
    json_object_set_new(t, "assignment", ts_mg_get_json(d, "assignment"));
    if (with_comments) {
        if (ts_comments_json(m, d, 1, &comments) != TS_OK) {
            json_decref(t);
            bson_destroy(d);
            return TS_ERR;
        }
        json_object_set_new(t, "comments", comments);
    }
    bson_destroy(d);
    *doc = t;
    return TS_OK;
}


ts_rc_e
ts_mg_comment_list(ts_store_t *s, const char *ticket_id, int with_internal,
    ts_jw_t *out)
{
    ts_mongo_t  *m = TS_MG(s);
    bson_t      *d = NULL, *proj = BCON_NEW("comments", BCON_INT32(1));
    json_t      *comments = NULL;
    char        *text;
    ts_rc_e      rc;

    rc = ts_mg_ticket_doc(m, ticket_id, proj, &d);
    bson_destroy(proj);
    if (rc == TS_OK) {
        rc = ts_comments_json(m, d, with_internal, &comments);
        bson_destroy(d);
    }
    if (rc == TS_OK) {
        text = json_dumps(comments, JSON_COMPACT);
        if (text == NULL) {
            rc = ts_store_fail(s, "out of memory");
        } else {
            ts_jw_lit(out, text);
            free(text);
        }
    }
    json_decref(comments);
    return rc;
}


/* A literal substring as a regular expression: every metacharacter
 * escaped, so a search is never a pattern. */
static char *
ts_regex_literal(const char *s)
{
    size_t  n = strlen(s), i, j = 0;
    char   *r = malloc(n * 2 + 1);

    if (r == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        if (strchr("\\^$.|?*+()[]{}", s[i]) != NULL) {
            r[j++] = '\\';
        }
        r[j++] = s[i];
    }
    r[j] = '\0';
    return r;
}


/* The filter of a list query into f. */
static int
ts_list_filter(const ts_ticket_query_t *q, bson_t *f)
{
    bson_t   or, one, rx;
    char    *pat = NULL;

    if (q->scope == TS_SCOPE_CREATOR) {
        ts_mg_append_oid_hex(f, "createdBy", q->user_id);
    }
    if (q->status) {
        BSON_APPEND_UTF8(f, "status", q->status);
    }
    if (q->priority) {
        BSON_APPEND_UTF8(f, "priority", q->priority);
    }
    if (q->scope == TS_SCOPE_MODERATOR || q->search) {
        /* $and of up to two $or lists */
        bson_t and, part;
        int    k = 0;
        char   key[4];

        BSON_APPEND_ARRAY_BEGIN(f, "$and", &and);
        if (q->scope == TS_SCOPE_MODERATOR) {
            snprintf(key, sizeof(key), "%d", k++);
            BSON_APPEND_DOCUMENT_BEGIN(&and, key, &part);
            BSON_APPEND_ARRAY_BEGIN(&part, "$or", &or);
            BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &one);
            ts_mg_append_oid_hex(&one, "createdBy", q->user_id);
            bson_append_document_end(&or, &one);
            BSON_APPEND_DOCUMENT_BEGIN(&or, "1", &one);
            ts_mg_append_oid_hex(&one, "assignedTo", q->user_id);
            bson_append_document_end(&or, &one);
            bson_append_array_end(&part, &or);
            bson_append_document_end(&and, &part);
        }
        if (q->search) {
            pat = ts_regex_literal(q->search);
            if (pat == NULL) {
                return -1;
            }
            snprintf(key, sizeof(key), "%d", k++);
            BSON_APPEND_DOCUMENT_BEGIN(&and, key, &part);
            BSON_APPEND_ARRAY_BEGIN(&part, "$or", &or);
            BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &one);
            BSON_APPEND_DOCUMENT_BEGIN(&one, "title", &rx);
            BSON_APPEND_UTF8(&rx, "$regex", pat);
            BSON_APPEND_UTF8(&rx, "$options", "i");
            bson_append_document_end(&one, &rx);
            bson_append_document_end(&or, &one);
            BSON_APPEND_DOCUMENT_BEGIN(&or, "1", &one);
            BSON_APPEND_DOCUMENT_BEGIN(&one, "description", &rx);
            BSON_APPEND_UTF8(&rx, "$regex", pat);
            BSON_APPEND_UTF8(&rx, "$options", "i");
            bson_append_document_end(&one, &rx);
            bson_append_document_end(&or, &one);
            bson_append_array_end(&part, &or);
            bson_append_document_end(&and, &part);
            free(pat);
        }
        bson_append_array_end(f, &and);
    }
    return 0;
}


ts_rc_e
ts_mg_ticket_list(ts_store_t *s, const ts_ticket_query_t *q, ts_jw_t *out,
    int64_t *total)
{
    ts_mongo_t       *m = TS_MG(s);
    mongoc_cursor_t  *cur;
    const bson_t     *d;
    bson_t            f = BSON_INITIALIZER, *opts;
    bson_error_t      e;
    json_t           *docs, *ids, *people = NULL, *t;
    char             *text;
    size_t            i;
    ts_rc_e           rc;

    if (ts_list_filter(q, &f) != 0) {
        bson_destroy(&f);
        return ts_store_fail(s, "out of memory");
    }
    if (q->sla != NULL) {
        /* {$and: [the filter, the SLA's]} */
        bson_t  *sla = ts_mg_sla_filter(q->sla, q->now), and, all;

        bson_init(&all);
        BSON_APPEND_ARRAY_BEGIN(&all, "$and", &and);
        BSON_APPEND_DOCUMENT(&and, "0", &f);
        BSON_APPEND_DOCUMENT(&and, "1", sla);
        bson_append_array_end(&all, &and);
        bson_destroy(sla);
        bson_destroy(&f);
        bson_copy_to(&all, &f);
        bson_destroy(&all);
    }
    if (q->scope == TS_SCOPE_ALL && !q->status && !q->priority
        && !q->search && !q->sla)
    {
        /* every ticket: the collection's count from its metadata, O(1)
         * where countDocuments would read the whole index */
        *total = mongoc_collection_estimated_document_count(m->tickets, NULL,
                                                            NULL, NULL, &e);
    } else {
        *total = mongoc_collection_count_documents(m->tickets, &f, NULL,
                                                   NULL, NULL, &e);
    }
    if (*total < 0) {
        bson_destroy(&f);
        return ts_mg_fail(m, "count", &e);
    }

    opts = BCON_NEW("sort", "{", "updatedAt", BCON_INT32(-1),
                    "_id", BCON_INT32(1), "}",
                    "skip", BCON_INT64(q->offset),
                    "limit", BCON_INT64(q->limit),
                    "projection", "{", "comments", BCON_INT32(0),
                    "assignment", BCON_INT32(0), "pendingJobs",
                    BCON_INT32(0), "}");
    docs = json_array();
    ids = json_array();
    cur = mongoc_collection_find_with_opts(m->tickets, &f, opts, NULL);
    /* documents are kept as BSON until the people are known */
    {
        bson_t  **kept = NULL;
        size_t    n = 0, cap = 0;

        while (mongoc_cursor_next(cur, &d)) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                bson_t **nk = realloc(kept, cap * sizeof(*kept));
                if (nk == NULL) {
                    break;
                }
                kept = nk;
            }
            kept[n++] = bson_copy(d);
            ts_collect(ids, d, "createdBy");
            ts_collect(ids, d, "assignedTo");
        }
        rc = TS_OK;
        if (mongoc_cursor_error(cur, &e)) {
            rc = ts_mg_fail(m, "list", &e);
        } else {
            rc = ts_mg_people(m, ids, &people);
        }
        for (i = 0; i < n; i++) {
            if (rc == TS_OK) {
                t = ts_ticket_json(kept[i], people, q->now);
                if (t && q->scope == TS_SCOPE_CREATOR) {
                    /* notes, provenance and the SLA are for staff */
                    json_object_del(t, "triage");
                    json_object_del(t, "helpfulNotes");
                    json_object_del(t, "sla");
                }
                if (t) {
                    json_array_append_new(docs, t);
                }
            }
            bson_destroy(kept[i]);
        }
        free(kept);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&f);
    json_decref(ids);
    json_decref(people);
    if (rc != TS_OK) {
        json_decref(docs);
        return rc;
    }
    text = json_dumps(docs, JSON_COMPACT | JSON_PRESERVE_ORDER
                            | JSON_REAL_PRECISION(12));
    json_decref(docs);
    if (text == NULL) {
        return ts_store_fail(s, "out of memory");
    }
    ts_jw_raw(out, text, strlen(text));
    free(text);
    return TS_OK;
}


/* Append the precondition updatedAt <= unmodified_since (0: none) to a
 * filter. */
static void
ts_unmodified(bson_t *f, int64_t unmodified_since)
{
    bson_t  le;

    if (unmodified_since != 0) {
        BSON_APPEND_DOCUMENT_BEGIN(f, "updatedAt", &le);
        BSON_APPEND_DATE_TIME(&le, "$lte", unmodified_since);
        bson_append_document_end(f, &le);
    }
}


/* A conditional update of ticket id matched nothing: TS_NOT_FOUND when
 * there is no such ticket, TS_STALE when it changed after
 * unmodified_since, else otherwise (a full one, for comments). */
static ts_rc_e
ts_why_missed(ts_mongo_t *m, const char *id, int64_t unmodified_since,
    ts_rc_e otherwise)
{
    bson_t   *d = NULL, *proj = BCON_NEW("updatedAt", BCON_INT32(1));
    ts_rc_e   rc;

    rc = ts_mg_ticket_doc(m, id, proj, &d);
    bson_destroy(proj);
    if (rc == TS_OK) {
        rc = unmodified_since != 0
             && ts_mg_get_time(d, "updatedAt") > unmodified_since
             ? TS_STALE : otherwise;
        bson_destroy(d);
    }
    return rc;
}


/*
 * Update the ticket with jobs and history entries (hist, may be NULL)
 * into its outboxes, in the one update; flush on success.  status_was
 * (may be NULL): the update matches only while the status is still that
 * (*raced set when the ticket exists, is not stale, but moved on);
 * unmodified_since (0: none): only while updatedAt is not later
 * (TS_STALE otherwise).
 */
static ts_rc_e
ts_ticket_write(ts_mongo_t *m, const char *id, const char *status_was,
    bson_t *upd, int64_t unmodified_since, const ts_job_new_t *jobs,
    size_t njobs, const bson_t *hist, int64_t now, int *raced)
{
    bson_t   f = BSON_INITIALIZER, arr = BSON_INITIALIZER;
    int64_t  matched = 0;
    ts_rc_e  rc;

    *raced = 0;
    ts_mg_jobs_array(&arr, jobs, njobs, now);
    ts_mg_push_outboxes(upd, &arr, hist);
    ts_mg_append_oid_hex(&f, "_id", id);
    if (status_was) {
        BSON_APPEND_UTF8(&f, "status", status_was);
    }
    ts_unmodified(&f, unmodified_since);
    rc = ts_mg_update(m, m->tickets, &f, upd, 0, &matched);
    if (rc == TS_OK && matched == 0) {
        /* gone, stale, or (status_was) its status moved on: read again */
        rc = ts_why_missed(m, id, unmodified_since, TS_OK);
        if (rc == TS_OK) {
            rc = TS_NOT_FOUND;
            *raced = status_was != NULL;
        }
    }
    if (rc == TS_OK) {
        ts_flush(m, m->tickets, id, &arr);
        if (hist) {
            ts_mg_history_flush(m, id, hist);
        }
    }
    bson_destroy(&f);
    bson_destroy(&arr);
    return rc;
}


/* The status is compared and set (the history's "from" is the status the
 * update replaced): a racing change makes it read again. */
ts_rc_e
ts_mg_ticket_set_status(ts_store_t *s, const char *id, const char *status,
    const char *actor, int64_t now, int64_t unmodified_since,
    const ts_job_new_t *jobs, size_t njobs)
{
    ts_mongo_t  *m = TS_MG(s);
    bson_t       upd, set, hist, *d = NULL, *proj;
    json_t      *from, *to = json_string(status);
    int          tries, raced = 0;
    ts_rc_e      rc = TS_ERR;

    for (tries = 0; tries < 8; tries++) {
        proj = BCON_NEW("status", BCON_INT32(1));
        rc = ts_mg_ticket_doc(m, id, proj, &d);
        bson_destroy(proj);
        if (rc != TS_OK) {
            break;
        }
        from = ts_mg_get_json(d, "status");
        bson_init(&hist);
        if (!json_equal(from, to)) {
            ts_hist_t h = { TS_HIST_STATUS, actor, from, to, NULL, 0 };
            ts_mg_history_array(&hist, id, &h, 1, now);
        }
        bson_init(&upd);
        BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
        BSON_APPEND_UTF8(&set, "status", status);
        BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
        ts_mg_append_time(&set, "completedAt",
                          strcmp(status, "Completed") == 0 ? now : 0);
        bson_append_document_end(&upd, &set);
        rc = ts_ticket_write(m, id, json_string_value(from), &upd,
                             unmodified_since, jobs, njobs, &hist, now,
                             &raced);
        bson_destroy(&upd);
        bson_destroy(&hist);
        bson_destroy(d);
        json_decref(from);
        if (!raced) {
            break;
        }
        rc = ts_store_fail(s, "status kept changing");
    }
    json_decref(to);
    if (rc == TS_OK && strcmp(status, "Completed") == 0) {
        /* completed past a date it missed: mark the breach (a second
         * write; should it fail, the breach job still marks a resolution
         * missed before completion) */
        (void) ts_mg_sla_settle(m, id, now);
    }
    return rc;
}


ts_rc_e
ts_mg_comment_add(ts_store_t *s, const char *ticket_id,
    const ts_comment_new_t *cm, int64_t now, int64_t max_comments,
    const ts_job_new_t *jobs, size_t njobs)
{
    ts_mongo_t    *m = TS_MG(s);
    bson_t         upd = BSON_INITIALIZER, set, push, c, f = BSON_INITIALIZER;
    bson_t         arr = BSON_INITIALIZER, each, full, min;
    bson_t         hist = BSON_INITIALIZER;
    char           slot[48];
    int64_t        matched = 0;
    ts_rc_e        rc;

    ts_mg_jobs_array(&arr, jobs, njobs, now);
    if (!cm->internal) {
        /* an internal note moves nothing the requester sees */
        BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
        BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
        bson_append_document_end(&upd, &set);
    }
    if (cm->first_response) {
        /* set when absent, and the earliest stays: times only grow */
        BSON_APPEND_DOCUMENT_BEGIN(&upd, "$min", &min);
        BSON_APPEND_DATE_TIME(&min, "firstResponseAt", now);
        bson_append_document_end(&upd, &min);
    }
    BSON_APPEND_DOCUMENT_BEGIN(&upd, "$push", &push);
    BSON_APPEND_DOCUMENT_BEGIN(&push, "comments", &c);
    ts_mg_append_oid_hex(&c, "_id", cm->id);
    ts_mg_append_oid_hex(&c, "author", cm->author);
    BSON_APPEND_UTF8(&c, "text", cm->text);
    BSON_APPEND_UTF8(&c, "role", cm->role);
    BSON_APPEND_DATE_TIME(&c, "createdAt", now);
    BSON_APPEND_BOOL(&c, "internal", cm->internal != 0);
    bson_append_document_end(&push, &c);
    if (njobs) {
        BSON_APPEND_DOCUMENT_BEGIN(&push, "pendingJobs", &each);
        BSON_APPEND_ARRAY(&each, "$each", &arr);
        bson_append_document_end(&push, &each);
    }
    if (cm->internal) {
        /* the note's history entry rides the same update (its outbox) */
        json_t     *to = ts_hist_note(cm->text);
        ts_hist_t   h = { TS_HIST_NOTE, cm->author, NULL, to, NULL, 1 };

        ts_mg_history_array(&hist, ticket_id, &h, 1, now);
        json_decref(to);
        BSON_APPEND_DOCUMENT_BEGIN(&push, "pendingHistory", &each);
        BSON_APPEND_ARRAY(&each, "$each", &hist);
        bson_append_document_end(&push, &each);
    }
    bson_append_document_end(&upd, &push);

    /* a conditional update: it matches only while the ticket has no
     * comment at index max - 1, i.e. fewer than max (one document, so
     * atomic without a transaction) */
    ts_mg_append_oid_hex(&f, "_id", ticket_id);
    snprintf(slot, sizeof(slot), "comments.%lld",
             (long long) (max_comments > 0 ? max_comments - 1 : 0));
    BSON_APPEND_DOCUMENT_BEGIN(&f, slot, &full);
    BSON_APPEND_BOOL(&full, "$exists", false);
    bson_append_document_end(&f, &full);
    ts_unmodified(&f, cm->unmodified_since);
    rc = ts_mg_update(m, m->tickets, &f, &upd, 0, &matched);
    if (rc == TS_OK && matched == 0) {
        /* no such ticket, a changed one, or a full one */
        rc = ts_why_missed(m, ticket_id, cm->unmodified_since, TS_CONFLICT);
    }
    if (rc == TS_OK) {
        ts_flush(m, m->tickets, ticket_id, &arr);
        ts_mg_history_flush(m, ticket_id, &hist);
        if (cm->first_response) {
            /* SLA: answering late marks the breach (ts_store.h); a second
             * write (no transactions): the comment is stored whatever it
             * says, so it does not fail the comment */
            (void) ts_mg_sla_settle(m, ticket_id, now);
        }
    }
    bson_destroy(&f);
    bson_destroy(&upd);
    bson_destroy(&arr);
    bson_destroy(&hist);
    return rc;
}


ts_rc_e
ts_mg_user_list_role(ts_store_t *s, ts_role_e role, json_t **out)
{
    ts_mongo_t       *m = TS_MG(s);
    mongoc_cursor_t  *cur;
    const bson_t     *d;
    bson_t           *f = BCON_NEW("role", BCON_UTF8(ts_role_name(role)));
    bson_t           *opts = BCON_NEW("sort", "{", "createdAt", BCON_INT32(1),
                                      "_id", BCON_INT32(1), "}",
                                      "projection", "{", "email",
                                      BCON_INT32(1), "username", BCON_INT32(1),
                                      "status", BCON_INT32(1), "}");
    bson_error_t      e;
    json_t           *arr = json_array();
    ts_oid_t          hex;

    cur = mongoc_collection_find_with_opts(m->users, f, opts, NULL);
    while (mongoc_cursor_next(cur, &d)) {
        if (ts_mg_get_oid_hex(d, "_id", hex) == 0) {
            json_array_append_new(arr, json_pack("{s:s, s:o, s:o, s:o}",
                "_id", hex, "email", ts_mg_get_json(d, "email"),
                "username", ts_mg_get_json(d, "username"),
                "status", ts_mg_get_json(d, "status")));
        }
    }
    bson_destroy(f);
    bson_destroy(opts);
    if (mongoc_cursor_error(cur, &e)) {
        mongoc_cursor_destroy(cur);
        json_decref(arr);
        return ts_mg_fail(m, "users by role", &e);
    }
    mongoc_cursor_destroy(cur);
    *out = arr;
    return TS_OK;
}

/*
 * ts_store_mongo_tickets: tickets (comments embedded, as the original
 * app's model), moderator requests and analytics on MongoDB.
 *
 * Every write that stores jobs carries them in the document's outbox
 * (pendingJobs, see ts_store_mongo.c) within the same single-document
 * update, then flushes them into "jobs".
 *
 * One pending moderator request per user, without transactions and on
 * servers that do not enforce unique indexes: the request is inserted
 * first, then the applicant's user document is claimed with a
 * conditional update (pendingModRequest: null -> this request).  Of two
 * concurrent submissions only one claim matches; the loser deletes its
 * own request (its outbox goes with it, unflushed) and answers
 * TS_CONFLICT.  A claim naming a request that is no longer pending (a
 * decision whose clean-up a crash interrupted) is taken over.  mongod's
 * partial unique index on {applicant} where status is pending backs this
 * up.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_store_mongo.h"
#include "ts_validate.h"

#define TS_DAY_MS  (24 * 3600 * 1000LL)


/* Flush the outbox a write just filled (arr: its job documents). */
static void
ts_flush(ts_mongo_t *m, mongoc_collection_t *c, const char *owner_hex,
    bson_t *arr)
{
    bson_oid_t  oid;

    if (!bson_empty(arr) && ts_mg_oid(owner_hex, &oid) == 0) {
        ts_mg_outbox_flush(m, c, &oid, arr);
    }
}


/* Append {$push: {pendingJobs: {$each: arr}}} to an update. */
static void
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
    if (!mongoc_collection_insert_one(m->tickets, &doc, NULL, NULL, &e)) {
        rc = ts_mg_fail(m, "ticket insert", &e);
    } else {
        ts_flush(m, m->tickets, id, &arr);
    }
    bson_destroy(&doc);
    bson_destroy(&arr);
    return rc;
}


/* A ticket document as its public JSON; people from the map (hex ->
 * person), null when missing. */
static json_t *
ts_ticket_json(const bson_t *doc, json_t *people)
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
    p = c[0] ? json_object_get(people, c) : NULL;
    json_object_set(t, "createdBy", p ? p : json_null());
    p = a[0] ? json_object_get(people, a) : NULL;
    json_object_set(t, "assignedTo", p ? p : json_null());
    return t;
}


/* Add the hex ids of a document's people fields to ids. */
static void
ts_collect(json_t *ids, const bson_t *doc, const char *key)
{
    ts_oid_t  hex;

    if (ts_mg_get_oid_hex(doc, key, hex) == 0) {
        json_array_append_new(ids, json_string(hex));
    }
}


/* Comments of a ticket document, sorted, authors populated. */
static ts_rc_e
ts_comments_json(ts_mongo_t *m, const bson_t *doc, json_t **out)
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
                || ts_mg_get_oid_hex(&c, "_id", hex) != 0)
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
        if (bson_iter_init_find(&it, d, "comments")
            && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &child))
        {
            while (bson_iter_next(&child)) {
                keys->comments++;
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
    t = ts_ticket_json(d, people);
    json_decref(people);
    if (t == NULL) {
        bson_destroy(d);
        return ts_store_fail(s, "mongodb: malformed ticket");
    }
    json_object_set_new(t, "assignment", ts_mg_get_json(d, "assignment"));
    if (with_comments) {
        if (ts_comments_json(m, d, &comments) != TS_OK) {
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
ts_mg_comment_list(ts_store_t *s, const char *ticket_id, ts_jw_t *out)
{
    ts_mongo_t  *m = TS_MG(s);
    bson_t      *d = NULL, *proj = BCON_NEW("comments", BCON_INT32(1));
    json_t      *comments = NULL;
    char        *text;
    ts_rc_e      rc;

    rc = ts_mg_ticket_doc(m, ticket_id, proj, &d);
    bson_destroy(proj);
    if (rc == TS_OK) {
        rc = ts_comments_json(m, d, &comments);
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
    if (q->scope == TS_SCOPE_ALL && !q->status && !q->priority
        && !q->search)
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
                t = ts_ticket_json(kept[i], people);
                if (t && q->scope == TS_SCOPE_CREATOR) {
                    json_object_del(t, "triage");   /* staff-only */
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


/* Update the ticket with jobs into its outbox; flush on success. */
static ts_rc_e
ts_ticket_write(ts_mongo_t *m, const char *id, bson_t *upd,
    const ts_job_new_t *jobs, size_t njobs, int64_t now)
{
    bson_t   f = BSON_INITIALIZER, arr = BSON_INITIALIZER;
    int64_t  matched = 0;
    ts_rc_e  rc;

    ts_mg_jobs_array(&arr, jobs, njobs, now);
    if (njobs) {
        ts_push_jobs(upd, &arr);
    }
    ts_mg_append_oid_hex(&f, "_id", id);
    rc = ts_mg_update(m, m->tickets, &f, upd, 0, &matched);
    if (rc == TS_OK && matched == 0) {
        rc = TS_NOT_FOUND;
    }
    if (rc == TS_OK) {
        ts_flush(m, m->tickets, id, &arr);
    }
    bson_destroy(&f);
    bson_destroy(&arr);
    return rc;
}


ts_rc_e
ts_mg_ticket_set_status(ts_store_t *s, const char *id, const char *status,
    int64_t now, const ts_job_new_t *jobs, size_t njobs)
{
    bson_t   upd = BSON_INITIALIZER, set;
    ts_rc_e  rc;

    BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
    BSON_APPEND_UTF8(&set, "status", status);
    BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
    ts_mg_append_time(&set, "completedAt",
                      strcmp(status, "Completed") == 0 ? now : 0);
    bson_append_document_end(&upd, &set);
    rc = ts_ticket_write(TS_MG(s), id, &upd, jobs, njobs, now);
    bson_destroy(&upd);
    return rc;
}


ts_rc_e
ts_mg_comment_add(ts_store_t *s, const char *ticket_id,
    const char *comment_id, const char *author, const char *text,
    const char *role, int64_t now, int64_t max_comments,
    const ts_job_new_t *jobs, size_t njobs)
{
    ts_mongo_t    *m = TS_MG(s);
    bson_t         upd = BSON_INITIALIZER, set, push, c, f = BSON_INITIALIZER;
    bson_t         arr = BSON_INITIALIZER, each, full, *idf;
    bson_error_t   e;
    char           slot[48];
    int64_t        matched = 0, n;
    ts_rc_e        rc;

    ts_mg_jobs_array(&arr, jobs, njobs, now);
    BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
    BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
    bson_append_document_end(&upd, &set);
    BSON_APPEND_DOCUMENT_BEGIN(&upd, "$push", &push);
    BSON_APPEND_DOCUMENT_BEGIN(&push, "comments", &c);
    ts_mg_append_oid_hex(&c, "_id", comment_id);
    ts_mg_append_oid_hex(&c, "author", author);
    BSON_APPEND_UTF8(&c, "text", text);
    BSON_APPEND_UTF8(&c, "role", role);
    BSON_APPEND_DATE_TIME(&c, "createdAt", now);
    bson_append_document_end(&push, &c);
    if (njobs) {
        BSON_APPEND_DOCUMENT_BEGIN(&push, "pendingJobs", &each);
        BSON_APPEND_ARRAY(&each, "$each", &arr);
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
    rc = ts_mg_update(m, m->tickets, &f, &upd, 0, &matched);
    if (rc == TS_OK && matched == 0) {
        /* no such ticket, or a full one */
        idf = bson_new();
        ts_mg_append_oid_hex(idf, "_id", ticket_id);
        n = mongoc_collection_count_documents(m->tickets, idf, NULL, NULL,
                                              NULL, &e);
        bson_destroy(idf);
        rc = n < 0 ? ts_mg_fail(m, "count", &e)
             : n > 0 ? TS_CONFLICT : TS_NOT_FOUND;
    }
    if (rc == TS_OK) {
        ts_flush(m, m->tickets, ticket_id, &arr);
    }
    bson_destroy(&f);
    bson_destroy(&upd);
    bson_destroy(&arr);
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


/* --- moderator requests --------------------------------------------------- */

static json_t *
ts_modreq_json(const bson_t *d)
{
    ts_oid_t  hex, applicant, reviewer;

    if (ts_mg_get_oid_hex(d, "_id", hex) != 0) {
        return NULL;
    }
    ts_mg_get_oid_hex(d, "applicant", applicant);
    ts_mg_get_oid_hex(d, "reviewedBy", reviewer);
    return json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                     "_id", hex,
                     "applicant", applicant[0] ? json_string(applicant)
                                               : json_null(),
                     "username", ts_mg_get_json(d, "username"),
                     "email", ts_mg_get_json(d, "email"),
                     "skills", ts_mg_get_str_array(d, "skills"),
                     "status", ts_mg_get_json(d, "status"),
                     "reviewedBy", reviewer[0] ? json_string(reviewer)
                                               : json_null(),
                     "createdAt", ts_mg_get_time_json(d, "createdAt"),
                     "updatedAt", ts_mg_get_time_json(d, "updatedAt"),
                     "rejectedAt", ts_mg_get_time_json(d, "rejectedAt"));
}


/* The first request matching filter (in sort order) as a BSON copy. */
static ts_rc_e
ts_modreq_find(ts_mongo_t *m, const bson_t *filter, bson_t **out)
{
    mongoc_cursor_t  *cur;
    const bson_t     *d;
    bson_t           *opts = BCON_NEW("sort", "{", "createdAt", BCON_INT32(-1),
                                      "_id", BCON_INT32(-1), "}",
                                      "limit", BCON_INT64(1));
    bson_error_t      e;
    ts_rc_e           rc = TS_NOT_FOUND;

    cur = mongoc_collection_find_with_opts(m->modreqs, filter, opts, NULL);
    if (mongoc_cursor_next(cur, &d)) {
        *out = bson_copy(d);
        rc = TS_OK;
    } else if (mongoc_cursor_error(cur, &e)) {
        rc = ts_mg_fail(m, "request", &e);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    return rc;
}


static ts_rc_e
ts_modreq_one(ts_mongo_t *m, const char *key, const char *hex, json_t **doc)
{
    bson_t   f = BSON_INITIALIZER, *d = NULL;
    ts_rc_e  rc;

    ts_mg_append_oid_hex(&f, key, hex);
    rc = ts_modreq_find(m, &f, &d);
    bson_destroy(&f);
    if (rc == TS_OK) {
        *doc = ts_modreq_json(d);
        bson_destroy(d);
        if (*doc == NULL) {
            rc = ts_store_fail(&m->base, "mongodb: malformed request");
        }
    }
    return rc;
}


/* Claim the applicant's one-pending slot for request rid; TS_CONFLICT when
 * another pending request holds it. */
static ts_rc_e
ts_modreq_claim(ts_mongo_t *m, const char *applicant, const char *rid)
{
    bson_t      f, *u, *probe, *d = NULL;
    bson_oid_t  mine, held;
    bson_iter_t it;
    int64_t     matched;
    ts_rc_e     rc;
    int         tries;

    if (ts_mg_oid(rid, &mine) != 0) {
        return TS_ERR;
    }
    for (tries = 0; tries < 4; tries++) {
        bson_init(&f);
        ts_mg_append_oid_hex(&f, "_id", applicant);
        BSON_APPEND_NULL(&f, "pendingModRequest");
        u = BCON_NEW("$set", "{", "pendingModRequest", BCON_OID(&mine), "}");
        matched = 0;
        rc = ts_mg_update(m, m->users, &f, u, 0, &matched);
        bson_destroy(&f);
        if (rc != TS_OK || matched) {
            bson_destroy(u);
            return rc;
        }

        /* held: by a pending request (conflict) or a stale one (take) */
        bson_init(&f);
        ts_mg_append_oid_hex(&f, "_id", applicant);
        probe = BCON_NEW("limit", BCON_INT64(1));
        {
            mongoc_cursor_t *cur = mongoc_collection_find_with_opts(
                m->users, &f, probe, NULL);
            const bson_t    *ud;

            rc = TS_NOT_FOUND;
            if (mongoc_cursor_next(cur, &ud)
                && bson_iter_init_find(&it, ud, "pendingModRequest")
                && BSON_ITER_HOLDS_OID(&it))
            {
                bson_oid_copy(bson_iter_oid(&it), &held);
                rc = TS_OK;
            }
            mongoc_cursor_destroy(cur);
        }
        bson_destroy(probe);
        bson_destroy(&f);
        if (rc != TS_OK) {
            bson_destroy(u);
            if (rc == TS_NOT_FOUND) {
                continue;         /* cleared meanwhile, or no such user */
            }
            return rc;
        }
        probe = BCON_NEW("_id", BCON_OID(&held),
                         "status", BCON_UTF8("pending"));
        rc = ts_modreq_find(m, probe, &d);
        bson_destroy(probe);
        if (rc == TS_OK) {
            bson_destroy(d);
            bson_destroy(u);
            return TS_CONFLICT;
        }
        if (rc != TS_NOT_FOUND) {
            bson_destroy(u);
            return rc;
        }
        bson_init(&f);
        ts_mg_append_oid_hex(&f, "_id", applicant);
        BSON_APPEND_OID(&f, "pendingModRequest", &held);
        matched = 0;
        rc = ts_mg_update(m, m->users, &f, u, 0, &matched);
        bson_destroy(&f);
        bson_destroy(u);
        if (rc != TS_OK || matched) {
            return rc;
        }
    }
    return TS_CONFLICT;
}


ts_rc_e
ts_mg_modreq_create(ts_store_t *s, const char *id, const char *applicant,
    const char *username, const char *email, json_t *skills, int64_t now,
    const ts_job_new_t *jobs, size_t njobs)
{
    ts_mongo_t    *m = TS_MG(s);
    bson_t         doc = BSON_INITIALIZER, arr = BSON_INITIALIZER, *f;
    bson_error_t   e;
    ts_rc_e        rc;

    ts_mg_jobs_array(&arr, jobs, njobs, now);
    ts_mg_append_oid_hex(&doc, "_id", id);
    ts_mg_append_oid_hex(&doc, "applicant", applicant);
    BSON_APPEND_UTF8(&doc, "username", username);
    BSON_APPEND_UTF8(&doc, "email", email);
    ts_mg_append_json(&doc, "skills", skills ? skills : json_array());
    BSON_APPEND_UTF8(&doc, "status", "pending");
    BSON_APPEND_NULL(&doc, "reviewedBy");
    BSON_APPEND_DATE_TIME(&doc, "createdAt", now);
    BSON_APPEND_DATE_TIME(&doc, "updatedAt", now);
    BSON_APPEND_NULL(&doc, "rejectedAt");
    BSON_APPEND_INT32(&doc, "__v", 0);
    BSON_APPEND_ARRAY(&doc, "pendingJobs", &arr);

    if (!mongoc_collection_insert_one(m->modreqs, &doc, NULL, NULL, &e)) {
        rc = ts_mg_fail(m, "request insert", &e);
    } else {
        rc = ts_modreq_claim(m, applicant, id);
        if (rc == TS_OK) {
            ts_flush(m, m->modreqs, id, &arr);
        } else {
            /* withdrawn: its jobs were never delivered */
            f = bson_new();
            ts_mg_append_oid_hex(f, "_id", id);
            (void) mongoc_collection_delete_one(m->modreqs, f, NULL, NULL,
                                                NULL);
            bson_destroy(f);
        }
    }
    bson_destroy(&doc);
    bson_destroy(&arr);
    return rc;
}


ts_rc_e
ts_mg_modreq_get(ts_store_t *s, const char *id, json_t **doc)
{
    return ts_modreq_one(TS_MG(s), "_id", id, doc);
}


ts_rc_e
ts_mg_modreq_latest(ts_store_t *s, const char *applicant, json_t **doc)
{
    if (!ts_oid_valid(applicant)) {
        return TS_NOT_FOUND;
    }
    return ts_modreq_one(TS_MG(s), "applicant", applicant, doc);
}


ts_rc_e
ts_mg_modreq_last_rejection(ts_store_t *s, const char *applicant,
    int64_t *rejected_at)
{
    ts_mongo_t       *m = TS_MG(s);
    mongoc_cursor_t  *cur;
    const bson_t     *d;
    bson_t            f = BSON_INITIALIZER;
    bson_t           *opts = BCON_NEW("sort", "{", "rejectedAt",
                                      BCON_INT32(-1), "}",
                                      "limit", BCON_INT64(1));
    bson_error_t      e;
    ts_rc_e           rc = TS_OK;

    *rejected_at = 0;
    ts_mg_append_oid_hex(&f, "applicant", applicant);
    BSON_APPEND_UTF8(&f, "status", "rejected");
    cur = mongoc_collection_find_with_opts(m->modreqs, &f, opts, NULL);
    if (mongoc_cursor_next(cur, &d)) {
        *rejected_at = ts_mg_get_time(d, "rejectedAt");
    } else if (mongoc_cursor_error(cur, &e)) {
        rc = ts_mg_fail(m, "last rejection", &e);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&f);
    bson_destroy(opts);
    if (rc != TS_OK) {
        return rc;
    }
    return *rejected_at ? TS_OK : TS_NOT_FOUND;
}


ts_rc_e
ts_mg_modreq_pending(ts_store_t *s, json_t **out)
{
    ts_mongo_t       *m = TS_MG(s);
    mongoc_cursor_t  *cur;
    const bson_t     *d;
    bson_t           *f = BCON_NEW("status", BCON_UTF8("pending"));
    bson_t           *opts = BCON_NEW("sort", "{", "createdAt", BCON_INT32(-1),
                                      "_id", BCON_INT32(-1), "}");
    bson_error_t      e;
    json_t           *arr = json_array(), *ids = json_array(), *people = NULL;
    json_t           *r, *p;
    size_t            i;
    ts_rc_e           rc = TS_OK;

    cur = mongoc_collection_find_with_opts(m->modreqs, f, opts, NULL);
    while (mongoc_cursor_next(cur, &d)) {
        r = ts_modreq_json(d);
        if (r) {
            json_array_append_new(arr, r);
            ts_collect(ids, d, "applicant");
        }
    }
    if (mongoc_cursor_error(cur, &e)) {
        rc = ts_mg_fail(m, "pending requests", &e);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(f);
    bson_destroy(opts);
    if (rc == TS_OK) {
        rc = ts_mg_people(m, ids, &people);
    }
    json_decref(ids);
    if (rc != TS_OK) {
        json_decref(arr);
        return rc;
    }
    /* like the SQL join: a request whose applicant is gone is not listed */
    for (i = 0; i < json_array_size(arr); ) {
        r = json_array_get(arr, i);
        p = json_object_get(people, json_string_value(json_object_get(r,
                                                              "applicant")));
        if (p == NULL) {
            json_array_remove(arr, i);
            continue;
        }
        json_object_set(r, "applicant", p);
        i++;
    }
    json_decref(people);
    *out = arr;
    return TS_OK;
}


/*
 * Accepting a request: the decision (status accepted, promoted: false) is
 * one conditional update; the promotion (role, merged skills) a second,
 * then promoted: true.  A crash between them leaves promoted: false,
 * which the sweep finishes -- the merge is idempotent.
 */
ts_rc_e
ts_mg_modreq_promote(ts_mongo_t *m, const bson_t *req, int64_t now)
{
    mongoc_cursor_t  *cur;
    const bson_t     *ud;
    bson_t            f = BSON_INITIALIZER, *u, *opts;
    ts_oid_t          applicant, rid;
    json_t           *have = NULL, *want, *merged;
    bson_error_t      e;
    ts_rc_e           rc;

    if (ts_mg_get_oid_hex(req, "applicant", applicant) != 0
        || ts_mg_get_oid_hex(req, "_id", rid) != 0)
    {
        return TS_NOT_FOUND;
    }
    ts_mg_append_oid_hex(&f, "_id", applicant);
    opts = BCON_NEW("limit", BCON_INT64(1));
    cur = mongoc_collection_find_with_opts(m->users, &f, opts, NULL);
    if (mongoc_cursor_next(cur, &ud)) {
        have = ts_mg_get_str_array(ud, "skills");
    }
    rc = mongoc_cursor_error(cur, &e) ? ts_mg_fail(m, "promote", &e) : TS_OK;
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);

    if (rc == TS_OK && have != NULL) {
        want = ts_mg_get_str_array(req, "skills");
        merged = ts_skills_merge(have, want);
        json_decref(want);
        if (merged == NULL) {
            rc = ts_store_fail(&m->base, "out of memory");
        } else {
            bson_t upd = BSON_INITIALIZER, set;

            BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
            ts_mg_append_json(&set, "skills", merged);
            BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
            bson_append_document_end(&upd, &set);
            rc = ts_mg_update(m, m->users, &f, &upd, 0, NULL);
            bson_destroy(&upd);
            json_decref(merged);
            if (rc == TS_OK) {
                /* admins stay admins */
                bson_t rf = BSON_INITIALIZER;
                ts_mg_append_oid_hex(&rf, "_id", applicant);
                BSON_APPEND_UTF8(&rf, "role", "user");
                u = BCON_NEW("$set", "{", "role", BCON_UTF8("moderator"),
                             "}");
                rc = ts_mg_update(m, m->users, &rf, u, 0, NULL);
                bson_destroy(u);
                bson_destroy(&rf);
            }
        }
    }
    json_decref(have);
    bson_destroy(&f);
    if (rc == TS_OK) {
        bson_init(&f);
        ts_mg_append_oid_hex(&f, "_id", rid);
        u = BCON_NEW("$set", "{", "promoted", BCON_BOOL(true), "}");
        rc = ts_mg_update(m, m->modreqs, &f, u, 0, NULL);
        bson_destroy(u);
        bson_destroy(&f);
    }
    return rc;
}


ts_rc_e
ts_mg_modreq_decide(ts_store_t *s, const char *id, int accept,
    const char *reviewer, int64_t now, const ts_job_new_t *jobs, size_t njobs)
{
    ts_mongo_t  *m = TS_MG(s);
    bson_t       f = BSON_INITIALIZER, upd = BSON_INITIALIZER, set;
    bson_t       arr = BSON_INITIALIZER, *req = NULL, *u;
    ts_oid_t     applicant;
    ts_user_t    who;
    int64_t      matched = 0;
    ts_rc_e      rc;

    ts_mg_append_oid_hex(&f, "_id", id);
    rc = ts_modreq_find(m, &f, &req);
    if (rc != TS_OK) {
        bson_destroy(&f);
        return rc;
    }
    if (ts_mg_get_oid_hex(req, "applicant", applicant) != 0) {
        applicant[0] = '\0';
    }
    bson_destroy(req);
    req = NULL;
    if (accept) {
        /* as the SQL backend: no decision for an account that is gone */
        rc = s->ops->user_by_id(s, applicant, &who);
        if (rc == TS_OK) {
            ts_user_clear(&who);
        } else {
            bson_destroy(&f);
            return rc;
        }
    }

    ts_mg_jobs_array(&arr, jobs, njobs, now);
    BSON_APPEND_UTF8(&f, "status", "pending");
    BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
    BSON_APPEND_UTF8(&set, "status", accept ? "accepted" : "rejected");
    ts_mg_append_oid_hex(&set, "reviewedBy", reviewer);
    BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
    ts_mg_append_time(&set, "rejectedAt", accept ? 0 : now);
    if (accept) {
        BSON_APPEND_BOOL(&set, "promoted", false);
    }
    bson_append_document_end(&upd, &set);
    if (njobs) {
        ts_push_jobs(&upd, &arr);
    }
    rc = ts_mg_update(m, m->modreqs, &f, &upd, 0, &matched);
    bson_destroy(&upd);
    bson_destroy(&f);
    if (rc == TS_OK && matched == 0) {
        rc = TS_CONFLICT;              /* it exists: processed already */
    }
    if (rc == TS_OK && accept) {
        bson_init(&f);
        ts_mg_append_oid_hex(&f, "_id", id);
        rc = ts_modreq_find(m, &f, &req);
        bson_destroy(&f);
        if (rc == TS_OK) {
            rc = ts_mg_modreq_promote(m, req, now);
            bson_destroy(req);
        }
    }
    if (rc == TS_OK && applicant[0]) {
        /* free the applicant's pending slot */
        bson_init(&f);
        ts_mg_append_oid_hex(&f, "_id", applicant);
        ts_mg_append_oid_hex(&f, "pendingModRequest", id);
        u = BCON_NEW("$set", "{", "pendingModRequest", BCON_NULL, "}");
        (void) ts_mg_update(m, m->users, &f, u, 0, NULL);
        bson_destroy(u);
        bson_destroy(&f);
    }
    if (rc == TS_OK) {
        ts_flush(m, m->modreqs, id, &arr);
    }
    bson_destroy(&arr);
    return rc;
}


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
                const uint8_t  *data;
                uint32_t        len;

                if (!BSON_ITER_HOLDS_DOCUMENT(&child)) {
                    continue;
                }
                bson_iter_document(&child, &len, &data);
                if (!bson_init_static(&c, data, len)
                    || ts_mg_get_oid_hex(&c, "author", author) != 0
                    || strcmp(author, creator) == 0)
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

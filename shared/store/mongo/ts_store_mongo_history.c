/*
 * ts_store_mongo_history: tickets' history and the staff's canned
 * responses on MongoDB.
 *
 * History without a transaction (CongoDB's are no-ops, a standalone
 * mongod has none): the entries ride an outbox on the ticket, as jobs do
 * (ts_store_mongo.c).  The write that makes a change builds the entries
 * with their final _id (ts_mg_history_array) and pushes them into the
 * ticket's "pendingHistory" in the SAME single-document update as the
 * change -- atomic with it, so a failed or unmatched update leaves no
 * entry and a done one always carries its entry.  Then the entries are
 * inserted into "tickethistory" and pulled from the ticket
 * (ts_mg_history_flush); a writer that dies in between leaves them in the
 * ticket, where the sweep, and any reader of that ticket's history before
 * the sweep, delivers them (a duplicate _id is success: never doubled).
 *
 * Order: (at, _id); the entries of one write share at and take _ids in
 * the order they are listed (ts_mg_oid_new counts up within a process).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ts_store_mongo.h"


void
ts_mg_history_array(bson_t *arr, const char *ticket_id, const ts_hist_t *h,
    size_t n, int64_t now)
{
    bson_t      doc;
    bson_oid_t  oid;
    char        k[24];
    size_t      i, first = bson_count_keys(arr);

    for (i = 0; i < n; i++) {
        ts_mg_oid_new(&oid);
        snprintf(k, sizeof(k), "%zu", first + i);
        BSON_APPEND_DOCUMENT_BEGIN(arr, k, &doc);
        BSON_APPEND_OID(&doc, "_id", &oid);
        ts_mg_append_oid_hex(&doc, "ticket", ticket_id);
        BSON_APPEND_DATE_TIME(&doc, "at", now);
        ts_mg_append_oid_hex(&doc, "actor", h[i].actor);
        BSON_APPEND_UTF8(&doc, "action", h[i].action);
        if (h[i].from) {
            ts_mg_append_json(&doc, "from", h[i].from);
        } else {
            BSON_APPEND_NULL(&doc, "from");
        }
        if (h[i].to) {
            ts_mg_append_json(&doc, "to", h[i].to);
        } else {
            BSON_APPEND_NULL(&doc, "to");
        }
        if (h[i].explanation) {
            ts_mg_append_json(&doc, "explanation", h[i].explanation);
        }
        BSON_APPEND_BOOL(&doc, "staffOnly", h[i].staff_only != 0);
        bson_append_document_end(arr, &doc);
    }
}


void
ts_mg_push_outboxes(bson_t *upd, const bson_t *jobs, const bson_t *hist)
{
    bson_t  push, each;
    int     any_jobs = jobs && !bson_empty(jobs);
    int     any_hist = hist && !bson_empty(hist);

    if (!any_jobs && !any_hist) {
        return;
    }
    BSON_APPEND_DOCUMENT_BEGIN(upd, "$push", &push);
    if (any_jobs) {
        BSON_APPEND_DOCUMENT_BEGIN(&push, "pendingJobs", &each);
        BSON_APPEND_ARRAY(&each, "$each", jobs);
        bson_append_document_end(&push, &each);
    }
    if (any_hist) {
        BSON_APPEND_DOCUMENT_BEGIN(&push, "pendingHistory", &each);
        BSON_APPEND_ARRAY(&each, "$each", hist);
        bson_append_document_end(&push, &each);
    }
    bson_append_document_end(upd, &push);
}


void
ts_mg_history_flush(ts_mongo_t *m, const char *ticket_id, const bson_t *arr)
{
    bson_oid_t  oid;

    if (!bson_empty(arr) && ts_mg_oid(ticket_id, &oid) == 0) {
        ts_mg_outbox_flush_to(m, m->tickets, &oid, "pendingHistory",
                              m->history, arr);
    }
}


ts_rc_e
ts_mg_ticket_history(ts_store_t *s, const char *id, json_t **history)
{
    ts_mongo_t       *m = TS_MG(s);
    mongoc_cursor_t  *cur;
    const bson_t     *d;
    bson_t           *f, *opts;
    bson_oid_t        oid;
    bson_iter_t       it;
    bson_error_t      e;
    json_t           *arr = json_array(), *ids = json_array(), *people = NULL;
    json_t           *entry, *actor, *who;
    size_t            i;
    ts_rc_e           rc;

    if (ts_mg_oid(id, &oid) != 0) {
        json_decref(arr);
        json_decref(ids);
        return TS_NOT_FOUND;
    }
    /* entries a crashed writer left in the ticket are delivered first */
    ts_mg_sweep_outbox(m, m->tickets, "pendingHistory", m->history, &oid);

    f = BCON_NEW("ticket", BCON_OID(&oid));
    opts = BCON_NEW("sort", "{", "at", BCON_INT32(1), "_id", BCON_INT32(1),
                    "}");
    cur = mongoc_collection_find_with_opts(m->history, f, opts, NULL);
    while (mongoc_cursor_next(cur, &d)) {
        entry = json_object();
        if (!bson_iter_init(&it, d)) {
            json_decref(entry);
            continue;
        }
        while (bson_iter_next(&it)) {
            if (strcmp(bson_iter_key(&it), "ticket") != 0) {
                json_object_set_new(entry, bson_iter_key(&it),
                                    ts_mg_json(&it));
            }
        }
        actor = json_object_get(entry, "actor");
        if (json_is_string(actor)) {
            json_array_append(ids, actor);
        }
        json_object_set_new(entry, "staffOnly", json_boolean(json_is_true(
                            json_object_get(entry, "staffOnly"))));
        json_array_append_new(arr, entry);
    }
    bson_destroy(f);
    bson_destroy(opts);
    if (mongoc_cursor_error(cur, &e)) {
        mongoc_cursor_destroy(cur);
        json_decref(arr);
        json_decref(ids);
        return ts_mg_fail(m, "history", &e);
    }
    mongoc_cursor_destroy(cur);

    rc = ts_mg_people(m, ids, &people);
    json_decref(ids);
    if (rc != TS_OK) {
        json_decref(arr);
        return rc;
    }
    json_array_foreach(arr, i, entry) {
        actor = json_object_get(entry, "actor");
        if (!json_is_string(actor)) {
            json_object_set_new(entry, "actor", json_null());
            continue;
        }
        who = json_object_get(people, json_string_value(actor));
        json_object_set_new(entry, "actor", json_pack("{s:O, s:O}",
            "_id", actor,
            "username", who ? json_object_get(who, "username") : json_null()));
    }
    json_decref(people);
    *history = arr;
    return TS_OK;
}


/* --- canned responses ------------------------------------------------------ */

/* The public form of a canned document, owner populated from people. */
static json_t *
ts_canned_json(const bson_t *d, json_t *people)
{
    ts_oid_t   id, owner;
    json_t    *who;

    if (ts_mg_get_oid_hex(d, "_id", id) != 0) {
        return NULL;
    }
    if (ts_mg_get_oid_hex(d, "owner", owner) != 0) {
        owner[0] = '\0';
    }
    who = people ? json_object_get(people, owner) : NULL;
    return json_pack("{s:s, s:o, s:o, s:{s:s, s:O}, s:o, s:o}",
                     "_id", id,
                     "title", ts_mg_get_json(d, "title"),
                     "body", ts_mg_get_json(d, "body"),
                     "owner", "_id", owner,
                     "username", who ? json_object_get(who, "username")
                                     : json_null(),
                     "createdAt", ts_mg_get_time_json(d, "createdAt"),
                     "updatedAt", ts_mg_get_time_json(d, "updatedAt"));
}


/* Canned documents matching f, public form; owner_out (may be NULL) gets
 * the first one's owner. */
static ts_rc_e
ts_canned_find(ts_mongo_t *m, const bson_t *f, json_t **out,
    ts_oid_t owner_out)
{
    mongoc_cursor_t  *cur;
    const bson_t     *d;
    bson_t           *opts;
    bson_error_t      e;
    json_t           *ids = json_array(), *people = NULL, *arr;
    bson_t          **docs = NULL, **grown;
    size_t            n = 0, i;
    ts_oid_t          owner;
    ts_rc_e           rc = TS_OK;

    opts = BCON_NEW("sort", "{", "createdAt", BCON_INT32(1), "_id",
                    BCON_INT32(1), "}", "limit", BCON_INT64(1000));
    cur = mongoc_collection_find_with_opts(m->canned, f, opts, NULL);
    while (mongoc_cursor_next(cur, &d)) {
        grown = realloc(docs, (n + 1) * sizeof(*docs));
        if (grown == NULL) {
            rc = ts_store_fail(&m->base, "out of memory");
            break;
        }
        docs = grown;
        docs[n++] = bson_copy(d);
        if (ts_mg_get_oid_hex(d, "owner", owner) == 0) {
            json_array_append_new(ids, json_string(owner));
        }
    }
    bson_destroy(opts);
    if (rc == TS_OK && mongoc_cursor_error(cur, &e)) {
        rc = ts_mg_fail(m, "canned responses", &e);
    }
    mongoc_cursor_destroy(cur);
    if (rc == TS_OK) {
        rc = ts_mg_people(m, ids, &people);
    }
    arr = json_array();
    for (i = 0; i < n; i++) {
        if (rc == TS_OK) {
            json_array_append_new(arr, ts_canned_json(docs[i], people));
            if (i == 0 && owner_out
                && ts_mg_get_oid_hex(docs[i], "owner", owner_out) != 0)
            {
                owner_out[0] = '\0';
            }
        }
        bson_destroy(docs[i]);
    }
    free(docs);
    json_decref(ids);
    json_decref(people);
    if (rc != TS_OK) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return TS_OK;
}


/* "title", case-insensitively, then _id (as SQLite's NOCASE order). */
static int
ts_canned_cmp(const void *a, const void *b)
{
    json_t      *x = *(json_t *const *) a, *y = *(json_t *const *) b;
    int          c;

    c = strcasecmp(json_string_value(json_object_get(x, "title")),
                   json_string_value(json_object_get(y, "title")));
    return c ? c : strcmp(json_string_value(json_object_get(x, "_id")),
                          json_string_value(json_object_get(y, "_id")));
}


ts_rc_e
ts_mg_canned_create(ts_store_t *s, const char *id, const char *owner,
    const char *title, const char *body, int64_t now)
{
    ts_mongo_t    *m = TS_MG(s);
    bson_t         doc = BSON_INITIALIZER;
    bson_error_t   e;
    ts_rc_e        rc = TS_OK;

    ts_mg_append_oid_hex(&doc, "_id", id);
    BSON_APPEND_UTF8(&doc, "title", title);
    BSON_APPEND_UTF8(&doc, "body", body);
    ts_mg_append_oid_hex(&doc, "owner", owner);
    BSON_APPEND_DATE_TIME(&doc, "createdAt", now);
    BSON_APPEND_DATE_TIME(&doc, "updatedAt", now);
    if (!mongoc_collection_insert_one(m->canned, &doc, NULL, NULL, &e)) {
        rc = ts_mg_fail(m, "canned insert", &e);
    }
    bson_destroy(&doc);
    return rc;
}


ts_rc_e
ts_mg_canned_list(ts_store_t *s, json_t **out)
{
    bson_t    f = BSON_INITIALIZER;
    json_t   *arr = NULL, **items;
    size_t    n, i;
    ts_rc_e   rc;

    rc = ts_canned_find(TS_MG(s), &f, &arr, NULL);
    bson_destroy(&f);
    if (rc != TS_OK) {
        return rc;
    }
    /* by title case-insensitively: sorted here, so both servers agree */
    n = json_array_size(arr);
    items = n ? malloc(n * sizeof(*items)) : NULL;
    if (n && items == NULL) {
        json_decref(arr);
        return ts_store_fail(s, "out of memory");
    }
    for (i = 0; i < n; i++) {
        items[i] = json_incref(json_array_get(arr, i));
    }
    if (n) {
        qsort(items, n, sizeof(*items), ts_canned_cmp);
    }
    json_array_clear(arr);
    for (i = 0; i < n; i++) {
        json_array_append_new(arr, items[i]);
    }
    free(items);
    *out = arr;
    return TS_OK;
}


ts_rc_e
ts_mg_canned_get(ts_store_t *s, const char *id, json_t **doc,
    ts_oid_t owner)
{
    bson_t    f = BSON_INITIALIZER;
    json_t   *arr = NULL;
    ts_oid_t  o;
    ts_rc_e   rc;

    ts_mg_append_oid_hex(&f, "_id", id);
    rc = ts_canned_find(TS_MG(s), &f, &arr, o);
    bson_destroy(&f);
    if (rc != TS_OK) {
        return rc;
    }
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        return TS_NOT_FOUND;
    }
    if (owner) {
        memcpy(owner, o, sizeof(ts_oid_t));
    }
    if (doc) {
        *doc = json_incref(json_array_get(arr, 0));
    }
    json_decref(arr);
    return TS_OK;
}


ts_rc_e
ts_mg_canned_update(ts_store_t *s, const char *id, const char *title,
    const char *body, int64_t now)
{
    ts_mongo_t  *m = TS_MG(s);
    bson_t       f = BSON_INITIALIZER, upd = BSON_INITIALIZER, set;
    int64_t      matched = 0;
    ts_rc_e      rc;

    ts_mg_append_oid_hex(&f, "_id", id);
    BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
    if (title) {
        BSON_APPEND_UTF8(&set, "title", title);
    }
    if (body) {
        BSON_APPEND_UTF8(&set, "body", body);
    }
    BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
    bson_append_document_end(&upd, &set);
    rc = ts_mg_update(m, m->canned, &f, &upd, 0, &matched);
    bson_destroy(&f);
    bson_destroy(&upd);
    return rc == TS_OK && matched == 0 ? TS_NOT_FOUND : rc;
}


ts_rc_e
ts_mg_canned_delete(ts_store_t *s, const char *id)
{
    ts_mongo_t    *m = TS_MG(s);
    bson_t         f = BSON_INITIALIZER, reply;
    bson_error_t   e;
    bson_iter_t    it;
    int64_t        n = 0;
    ts_rc_e        rc = TS_OK;

    ts_mg_append_oid_hex(&f, "_id", id);
    if (!mongoc_collection_delete_one(m->canned, &f, NULL, &reply, &e)) {
        rc = ts_mg_fail(m, "canned delete", &e);
    } else if (bson_iter_init_find(&it, &reply, "deletedCount")) {
        n = bson_iter_as_int64(&it);
    }
    bson_destroy(&reply);
    bson_destroy(&f);
    return rc == TS_OK && n == 0 ? TS_NOT_FOUND : rc;
}

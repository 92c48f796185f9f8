/*
 * ts_store_mongo_modreqs: moderator requests on MongoDB -- submission,
 * lookups, the pending list and the decision (with the promotion of an
 * accepted applicant).
 *
 * Every write that stores jobs carries them in the document's outbox
 * (pendingJobs, see ts_store_mongo.c) within the same single-document
 * update, then flushes them into "jobs" (ts_flush, ts_push_jobs in
 * ts_store_mongo_tickets.c).
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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_store_mongo.h"
#include "ts_validate.h"


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

/*
 * ts_store_mongo_accounts: password changes and reset tokens on MongoDB
 * (see ts_store.h, "passwords and reset tokens").
 *
 * Everything lives on the user document -- sessionEpoch (an int, absent
 * = 0) and passwordReset {tokenHash, expiresAt} (one token per user: a
 * new one replaces the old) -- so every operation is one single-document
 * write whose filter holds its conditions: atomic without a transaction,
 * which a standalone mongod refuses.  Jobs ride in the same update
 * through the users' outbox (pendingJobs, see ts_store_mongo.c).
 */

#include <string.h>

#include "ts_store_mongo.h"


/* The job documents of job (NULL: none) into arr. */
static void
ts_mg_acct_jobs(bson_t *arr, const ts_job_new_t *job, int64_t now)
{
    if (job != NULL) {
        ts_mg_jobs_array(arr, job, 1, now);
    }
}


ts_rc_e
ts_mg_user_set_password(ts_store_t *s, const char *id, const char *old_hash,
    const char *reset_hash, const char *new_hash, int64_t now,
    const ts_job_new_t *job, int64_t *epoch)
{
    ts_mongo_t                     *m = TS_MG(s);
    mongoc_find_and_modify_opts_t  *o;
    bson_t                          f = BSON_INITIALIZER;
    bson_t                          upd = BSON_INITIALIZER;
    bson_t                          arr = BSON_INITIALIZER, set, inc, unset;
    bson_t                          gt, reply, val;
    bson_iter_t                     it;
    bson_error_t                    e;
    const uint8_t                  *data;
    uint32_t                        len;
    ts_rc_e                         rc = TS_NOT_FOUND;

    ts_mg_append_oid_hex(&f, "_id", id);
    if (old_hash != NULL) {
        BSON_APPEND_UTF8(&f, "password", old_hash);
    }
    if (reset_hash != NULL) {
        BSON_APPEND_UTF8(&f, "passwordReset.tokenHash", reset_hash);
        BSON_APPEND_DOCUMENT_BEGIN(&f, "passwordReset.expiresAt", &gt);
        BSON_APPEND_DATE_TIME(&gt, "$gt", now);
        bson_append_document_end(&f, &gt);
    }

    ts_mg_acct_jobs(&arr, job, now);
    BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
    BSON_APPEND_UTF8(&set, "password", new_hash);
    BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
    bson_append_document_end(&upd, &set);
    BSON_APPEND_DOCUMENT_BEGIN(&upd, "$inc", &inc);
    BSON_APPEND_INT64(&inc, "sessionEpoch", 1);
    bson_append_document_end(&upd, &inc);
    BSON_APPEND_DOCUMENT_BEGIN(&upd, "$unset", &unset);
    BSON_APPEND_UTF8(&unset, "passwordReset", "");
    bson_append_document_end(&upd, &unset);
    if (job != NULL) {
        ts_push_jobs(&upd, &arr);
    }

    o = mongoc_find_and_modify_opts_new();
    mongoc_find_and_modify_opts_set_update(o, &upd);
    mongoc_find_and_modify_opts_set_flags(o,
                                          MONGOC_FIND_AND_MODIFY_RETURN_NEW);
    if (!mongoc_collection_find_and_modify_with_opts(m->users, &f, o, &reply,
                                                     &e))
    {
        rc = ts_mg_fail(m, "set password", &e);
    } else if (bson_iter_init_find(&it, &reply, "value")
               && BSON_ITER_HOLDS_DOCUMENT(&it))
    {
        bson_iter_document(&it, &len, &data);
        if (bson_init_static(&val, data, len)) {
            if (epoch) {
                *epoch = ts_mg_get_int(&val, "sessionEpoch", 0);
            }
            rc = TS_OK;
        }
    }
    bson_destroy(&reply);
    mongoc_find_and_modify_opts_destroy(o);

    if (rc == TS_OK && job != NULL) {
        ts_flush(m, m->users, id, &arr);
    }
    bson_destroy(&f);
    bson_destroy(&upd);
    bson_destroy(&arr);
    return rc;
}


ts_rc_e
ts_mg_user_reset_issue(ts_store_t *s, const char *id, const char *token_hash,
    int64_t expires_at, int64_t now, const ts_job_new_t *job)
{
    ts_mongo_t  *m = TS_MG(s);
    bson_t       f = BSON_INITIALIZER, upd = BSON_INITIALIZER;
    bson_t       arr = BSON_INITIALIZER, set, pr;
    int64_t      matched = 0;
    ts_rc_e      rc;

    ts_mg_append_oid_hex(&f, "_id", id);
    ts_mg_acct_jobs(&arr, job, now);
    BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
    BSON_APPEND_DOCUMENT_BEGIN(&set, "passwordReset", &pr);
    BSON_APPEND_UTF8(&pr, "tokenHash", token_hash);
    BSON_APPEND_DATE_TIME(&pr, "expiresAt", expires_at);
    bson_append_document_end(&set, &pr);
    bson_append_document_end(&upd, &set);
    if (job != NULL) {
        ts_push_jobs(&upd, &arr);
    }

    rc = ts_mg_update(m, m->users, &f, &upd, 0, &matched);
    if (rc == TS_OK && matched == 0) {
        rc = TS_NOT_FOUND;
    }
    if (rc == TS_OK && job != NULL) {
        ts_flush(m, m->users, id, &arr);
    }
    bson_destroy(&f);
    bson_destroy(&upd);
    bson_destroy(&arr);
    return rc;
}


ts_rc_e
ts_mg_user_by_reset(ts_store_t *s, const char *token_hash, int64_t now,
    ts_user_t *out)
{
    bson_t   *f;
    ts_rc_e   rc;

    f = BCON_NEW("passwordReset.tokenHash", BCON_UTF8(token_hash),
                 "passwordReset.expiresAt", "{", "$gt", BCON_DATE_TIME(now),
                 "}");
    rc = ts_mg_user_find(TS_MG(s), f, out);
    bson_destroy(f);
    return rc;
}

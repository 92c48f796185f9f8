/*
 * ts_store_mongo_bson: the helpers the MongoDB backend's files share --
 * errors, ObjectIds, BSON built from and read into JSON and times, the
 * one-document update and the people lookup (ts_store_mongo.h has their
 * contracts).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_store_mongo.h"
#include "ts_validate.h"


/* --- helpers ------------------------------------------------------------ */

int
ts_mg_dup(const bson_error_t *e)
{
    return e->code == 11000 || e->code == 11001
           || strstr(e->message, "uplicate key") != NULL;
}


ts_rc_e
ts_mg_fail(ts_mongo_t *m, const char *what, const bson_error_t *e)
{
    ts_store_fail(&m->base, "mongodb %s: %s", what, e->message);
    return ts_mg_dup(e) ? TS_CONFLICT : TS_ERR;
}


int
ts_mg_oid(const char *hex, bson_oid_t *oid)
{
    if (hex == NULL || !ts_oid_valid(hex)) {
        return -1;
    }
    bson_oid_init_from_string(oid, hex);
    return 0;
}


void
ts_mg_oid_new(bson_oid_t *oid)
{
    ts_oid_t  hex;

    ts_oid_new(hex);
    bson_oid_init_from_string(oid, hex);
}


void
ts_mg_append_oid_hex(bson_t *b, const char *key, const char *hex)
{
    bson_oid_t  oid;

    if (ts_mg_oid(hex, &oid) == 0) {
        BSON_APPEND_OID(b, key, &oid);
    } else {
        BSON_APPEND_NULL(b, key);
    }
}


void
ts_mg_append_time(bson_t *b, const char *key, int64_t ms)
{
    if (ms > 0) {
        BSON_APPEND_DATE_TIME(b, key, ms);
    } else {
        BSON_APPEND_NULL(b, key);
    }
}


void
ts_mg_append_json(bson_t *b, const char *key, json_t *v)
{
    bson_t       child;
    const char  *k;
    json_t      *x;
    size_t       i;
    char         ik[24];

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        BSON_APPEND_DOCUMENT_BEGIN(b, key, &child);
        json_object_foreach(v, k, x) {
            ts_mg_append_json(&child, k, x);
        }
        bson_append_document_end(b, &child);
        break;
    case JSON_ARRAY:
        BSON_APPEND_ARRAY_BEGIN(b, key, &child);
        json_array_foreach(v, i, x) {
            snprintf(ik, sizeof(ik), "%zu", i);
            ts_mg_append_json(&child, ik, x);
        }
        bson_append_array_end(b, &child);
        break;
    case JSON_STRING:
        bson_append_utf8(b, key, -1, json_string_value(v),
                         (int) json_string_length(v));
        break;
    case JSON_INTEGER:
        if (json_integer_value(v) >= INT32_MIN
            && json_integer_value(v) <= INT32_MAX)
        {
            BSON_APPEND_INT32(b, key, (int32_t) json_integer_value(v));
        } else {
            BSON_APPEND_INT64(b, key, json_integer_value(v));
        }
        break;
    case JSON_REAL:
        BSON_APPEND_DOUBLE(b, key, json_real_value(v));
        break;
    case JSON_TRUE:
        BSON_APPEND_BOOL(b, key, true);
        break;
    case JSON_FALSE:
        BSON_APPEND_BOOL(b, key, false);
        break;
    default:
        BSON_APPEND_NULL(b, key);
        break;
    }
}


json_t *
ts_mg_json(const bson_iter_t *it)
{
    bson_iter_t   child;
    json_t       *v;
    char          hex[25], iso[32];
    uint32_t      len;
    const char   *s;

    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOCUMENT:
        v = json_object();
        if (bson_iter_recurse(it, &child)) {
            while (bson_iter_next(&child)) {
                json_object_set_new(v, bson_iter_key(&child),
                                    ts_mg_json(&child));
            }
        }
        return v;
    case BSON_TYPE_ARRAY:
        v = json_array();
        if (bson_iter_recurse(it, &child)) {
            while (bson_iter_next(&child)) {
                json_array_append_new(v, ts_mg_json(&child));
            }
        }
        return v;
    case BSON_TYPE_UTF8:
        s = bson_iter_utf8(it, &len);
        return json_stringn(s, len);
    case BSON_TYPE_INT32:
        return json_integer(bson_iter_int32(it));
    case BSON_TYPE_INT64:
        return json_integer(bson_iter_int64(it));
    case BSON_TYPE_DOUBLE:
        return json_real(bson_iter_double(it));
    case BSON_TYPE_BOOL:
        return json_boolean(bson_iter_bool(it));
    case BSON_TYPE_OID:
        bson_oid_to_string(bson_iter_oid(it), hex);
        return json_string(hex);
    case BSON_TYPE_DATE_TIME:
        ts_iso_time(bson_iter_date_time(it), iso);
        return json_string(iso);
    default:
        return json_null();
    }
}


json_t *
ts_mg_get_json(const bson_t *doc, const char *key)
{
    bson_iter_t  it;

    if (bson_iter_init_find(&it, doc, key)) {
        return ts_mg_json(&it);
    }
    return json_null();
}


int64_t
ts_mg_get_time(const bson_t *doc, const char *key)
{
    bson_iter_t  it;

    if (!bson_iter_init_find(&it, doc, key)) {
        return 0;
    }
    switch (bson_iter_type(&it)) {
    case BSON_TYPE_DATE_TIME:
        return bson_iter_date_time(&it);
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
        return bson_iter_as_int64(&it);
    default:
        return 0;
    }
}


json_t *
ts_mg_get_time_json(const bson_t *doc, const char *key)
{
    return ts_iso_json(ts_mg_get_time(doc, key));
}


const char *
ts_mg_get_str(const bson_t *doc, const char *key)
{
    bson_iter_t  it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)) {
        return bson_iter_utf8(&it, NULL);
    }
    return NULL;
}


int64_t
ts_mg_get_int(const bson_t *doc, const char *key, int64_t dflt)
{
    bson_iter_t  it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it)) {
        return bson_iter_as_int64(&it);
    }
    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_BOOL(&it)) {
        return bson_iter_bool(&it);
    }
    return dflt;
}


double
ts_mg_get_double(const bson_t *doc, const char *key, double dflt)
{
    bson_iter_t  it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it)) {
        return bson_iter_as_double(&it);
    }
    return dflt;
}


int
ts_mg_get_oid_hex(const bson_t *doc, const char *key, ts_oid_t out)
{
    bson_iter_t  it;

    out[0] = '\0';
    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_OID(&it)) {
        bson_oid_to_string(bson_iter_oid(&it), out);
        return 0;
    }
    /* a reference stored as a hex string by some other writer */
    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)
        && ts_oid_valid(bson_iter_utf8(&it, NULL)))
    {
        memcpy(out, bson_iter_utf8(&it, NULL), TS_OID_LEN + 1);
        return 0;
    }
    return -1;
}


json_t *
ts_mg_get_str_array(const bson_t *doc, const char *key)
{
    bson_iter_t  it, child;
    json_t      *arr = json_array();

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_ARRAY(&it)
        && bson_iter_recurse(&it, &child))
    {
        while (bson_iter_next(&child)) {
            if (BSON_ITER_HOLDS_UTF8(&child)) {
                json_array_append_new(arr,
                    json_string(bson_iter_utf8(&child, NULL)));
            }
        }
    }
    return arr;
}


ts_rc_e
ts_mg_update(ts_mongo_t *m, mongoc_collection_t *c, const bson_t *filter,
    const bson_t *update, int upsert, int64_t *matched)
{
    bson_t        reply, opts = BSON_INITIALIZER;
    bson_error_t  e;
    bool          ok;

    if (upsert) {
        BSON_APPEND_BOOL(&opts, "upsert", true);
    }
    ok = mongoc_collection_update_one(c, filter, update, &opts, &reply, &e);
    bson_destroy(&opts);
    if (ok && matched) {
        *matched = ts_mg_get_int(&reply, "matchedCount", 0)
                   + ts_mg_get_int(&reply, "upsertedCount", 0);
    }
    bson_destroy(&reply);
    if (!ok && (e.code == 17419 || e.code == 10334)) {
        /* the document would pass MongoDB's 16 MB: full, as a ticket at
         * its comment limit is (a conflict, not a store failure) */
        return TS_CONFLICT;
    }
    return ok ? TS_OK : ts_mg_fail(m, "update", &e);
}


ts_rc_e
ts_mg_people(ts_mongo_t *m, json_t *ids, json_t **out)
{
    mongoc_cursor_t  *cur;
    const bson_t     *doc;
    bson_t            filter = BSON_INITIALIZER, in, arr, opts, proj;
    bson_error_t      e;
    json_t           *map = json_object(), *x;
    ts_oid_t          hex;
    char              k[24];
    size_t            i, n = 0;

    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
    json_array_foreach(ids, i, x) {
        if (json_is_string(x) && ts_oid_valid(json_string_value(x))) {
            snprintf(k, sizeof(k), "%zu", n++);
            ts_mg_append_oid_hex(&arr, k, json_string_value(x));
        }
    }
    bson_append_array_end(&in, &arr);
    bson_append_document_end(&filter, &in);
    if (n == 0) {
        bson_destroy(&filter);
        *out = map;
        return TS_OK;
    }
    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "email", 1);
    BSON_APPEND_INT32(&proj, "username", 1);
    BSON_APPEND_INT32(&proj, "status", 1);
    bson_append_document_end(&opts, &proj);

    cur = mongoc_collection_find_with_opts(m->users, &filter, &opts, NULL);
    while (mongoc_cursor_next(cur, &doc)) {
        if (ts_mg_get_oid_hex(doc, "_id", hex) != 0) {
            continue;
        }
        const char *st = ts_mg_get_str(doc, "status");
        json_object_set_new(map, hex, json_pack("{s:s, s:o, s:o, s:s}",
            "_id", hex, "email", ts_mg_get_json(doc, "email"),
            "username", ts_mg_get_json(doc, "username"),
            "status", st ? st : "offline"));
    }
    bson_destroy(&filter);
    bson_destroy(&opts);
    if (mongoc_cursor_error(cur, &e)) {
        mongoc_cursor_destroy(cur);
        json_decref(map);
        return ts_mg_fail(m, "people", &e);
    }
    mongoc_cursor_destroy(cur);
    *out = map;
    return TS_OK;
}

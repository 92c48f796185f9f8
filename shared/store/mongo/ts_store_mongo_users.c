/*
 * ts_store_mongo_users: users, revoked tokens and login attempts on
 * MongoDB (see ts_store_mongo.h for the documents).
 *
 * Logins are case-insensitive: users carry usernameLower/emailLower,
 * unique-indexed (enforced by mongod), back-filled at start for documents
 * another writer added, and looked up among such documents by an anchored
 * case-insensitive match when the key finds nothing.  Token and attempt
 * documents get an _id derived from their key (SHA-1), so "insert if
 * absent" relies only on the _id index, which every server enforces.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/sha.h>

#include "ts_store_mongo.h"


/* --- users ------------------------------------------------------------- */

/* ASCII lower-case copy (emails are stored lower-case; usernames are
 * [A-Za-z0-9_.-]). */
static char *
ts_mg_lower(const char *s)
{
    char    *l = strdup(s ? s : "");
    size_t   i;

    for (i = 0; l && l[i]; i++) {
        if (l[i] >= 'A' && l[i] <= 'Z') {
            l[i] = (char) (l[i] - 'A' + 'a');
        }
    }
    return l;
}


/* Users written by another app (the original Node server) lack the
 * lookup keys: add them. */
ts_rc_e
ts_mg_backfill_keys(ts_mongo_t *m)
{
    mongoc_cursor_t  *cur;
    const bson_t     *doc;
    bson_t           *filter, *opts, *sel, *upd;
    bson_iter_t       it;
    bson_error_t      e;
    char             *ul, *el;

    filter = BCON_NEW("$or", "[",
                      "{", "usernameLower", "{", "$exists", BCON_BOOL(false),
                      "}", "}",
                      "{", "emailLower", "{", "$exists", BCON_BOOL(false),
                      "}", "}", "]");
    opts = BCON_NEW("projection", "{", "username", BCON_INT32(1),
                    "email", BCON_INT32(1), "}");
    cur = mongoc_collection_find_with_opts(m->users, filter, opts, NULL);
    while (mongoc_cursor_next(cur, &doc)) {
        if (!bson_iter_init_find(&it, doc, "_id")) {
            continue;
        }
        ul = ts_mg_lower(ts_mg_get_str(doc, "username"));
        el = ts_mg_lower(ts_mg_get_str(doc, "email"));
        if (ul && el) {
            sel = bson_new();
            bson_append_iter(sel, "_id", -1, &it);
            upd = BCON_NEW("$set", "{", "usernameLower", BCON_UTF8(ul),
                           "emailLower", BCON_UTF8(el), "}");
            (void) ts_mg_update(m, m->users, sel, upd, 0, NULL);
            bson_destroy(sel);
            bson_destroy(upd);
        }
        free(ul);
        free(el);
    }
    bson_destroy(filter);
    bson_destroy(opts);
    if (mongoc_cursor_error(cur, &e)) {
        mongoc_cursor_destroy(cur);
        return ts_mg_fail(m, "backfill", &e);
    }
    mongoc_cursor_destroy(cur);
    return TS_OK;
}


/* A user document as ts_user_t; -1 when it lacks an ObjectId _id. */
static int
ts_mg_row_user(const bson_t *doc, ts_user_t *u)
{
    const char  *role = ts_mg_get_str(doc, "role");
    const char  *status = ts_mg_get_str(doc, "status");
    const char  *s;

    memset(u, 0, sizeof(*u));
    if (ts_mg_get_oid_hex(doc, "_id", u->id) != 0) {
        return -1;
    }
    s = ts_mg_get_str(doc, "username");
    u->username = strdup(s ? s : "");
    s = ts_mg_get_str(doc, "email");
    u->email = strdup(s ? s : "");
    s = ts_mg_get_str(doc, "password");
    u->password = strdup(s ? s : "");
    if (role == NULL || ts_role_parse(role, &u->role) != 0) {
        u->role = TS_ROLE_USER;
    }
    u->skills = ts_mg_get_str_array(doc, "skills");
    if (status == NULL || ts_presence_parse(status, &u->status) != 0) {
        u->status = TS_PRESENCE_OFFLINE;
    }
    u->last_seen = ts_mg_get_time(doc, "lastSeen");
    u->created_at = ts_mg_get_time(doc, "createdAt");
    u->updated_at = ts_mg_get_time(doc, "updatedAt");
    u->total_resolved = ts_mg_get_int(doc, "totalTicketsResolved", 0);
    u->avg_resolution_hours = ts_mg_get_double(doc,
                                               "averageResolutionTimeHours",
                                               24);
    u->last_assigned_at = ts_mg_get_time(doc, "lastAssignedAt");
    u->status_chosen = ts_mg_get_str(doc, "presenceChoice") != NULL;
    u->session_epoch = ts_mg_get_int(doc, "sessionEpoch", 0);
    if (u->username == NULL || u->email == NULL || u->password == NULL
        || u->skills == NULL)
    {
        ts_user_clear(u);
        return -1;
    }
    return 0;
}


/* The one user matching filter. */
ts_rc_e
ts_mg_user_find(ts_mongo_t *m, const bson_t *filter, ts_user_t *out)
{
    mongoc_cursor_t  *cur;
    const bson_t     *doc;
    bson_t           *opts = BCON_NEW("limit", BCON_INT64(1),
                                      "projection", "{", "pendingJobs",
                                      BCON_INT32(0), "recentStats",
                                      BCON_INT32(0), "}");
    bson_error_t      e;
    ts_rc_e           rc = TS_NOT_FOUND;

    cur = mongoc_collection_find_with_opts(m->users, filter, opts, NULL);
    if (mongoc_cursor_next(cur, &doc)) {
        rc = ts_mg_row_user(doc, out) == 0
             ? TS_OK : ts_store_fail(&m->base, "mongodb: malformed user");
    } else if (mongoc_cursor_error(cur, &e)) {
        rc = ts_mg_fail(m, "user", &e);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    return rc;
}


/* A literal as an anchored, escaped regular expression. */
static char *
ts_mg_regex_exact(const char *s)
{
    size_t  n = strlen(s), i, j = 0;
    char   *r = malloc(n * 2 + 3);

    if (r == NULL) {
        return NULL;
    }
    r[j++] = '^';
    for (i = 0; i < n; i++) {
        if (strchr("\\^$.|?*+()[]{}", s[i]) != NULL) {
            r[j++] = '\\';
        }
        r[j++] = s[i];
    }
    r[j++] = '$';
    r[j] = '\0';
    return r;
}


/*
 * By emailLower/usernameLower.  A user document another writer (the
 * original app, an import) added since the last back-fill lacks those
 * keys: only among such documents, match the original field ignoring
 * case, and add the keys to the one found.
 */
static ts_rc_e
ts_mg_user_by_key(ts_mongo_t *m, const char *key, const char *value,
    ts_user_t *out)
{
    char         *l = ts_mg_lower(value), *rx;
    bson_t       *f, *u;
    const char   *field = strcmp(key, "emailLower") == 0 ? "email"
                                                          : "username";
    ts_rc_e       rc;

    if (l == NULL) {
        return ts_store_fail(&m->base, "out of memory");
    }
    f = BCON_NEW(key, BCON_UTF8(l));
    rc = ts_mg_user_find(m, f, out);
    bson_destroy(f);
    if (rc == TS_NOT_FOUND && (rx = ts_mg_regex_exact(value)) != NULL) {
        f = BCON_NEW(key, "{", "$exists", BCON_BOOL(false), "}",
                     field, "{", "$regex", BCON_UTF8(rx),
                     "$options", BCON_UTF8("i"), "}");
        rc = ts_mg_user_find(m, f, out);
        bson_destroy(f);
        free(rx);
        if (rc == TS_OK) {
            char *ul = ts_mg_lower(out->username), *el = ts_mg_lower(out->email);

            f = bson_new();
            ts_mg_append_oid_hex(f, "_id", out->id);
            u = BCON_NEW("$set", "{", "usernameLower", BCON_UTF8(ul ? ul : ""),
                         "emailLower", BCON_UTF8(el ? el : ""), "}");
            (void) ts_mg_update(m, m->users, f, u, 0, NULL);
            bson_destroy(f);
            bson_destroy(u);
            free(ul);
            free(el);
        }
    }
    free(l);
    return rc;
}


ts_rc_e
ts_mg_user_by_id(ts_store_t *s, const char *id, ts_user_t *out)
{
    bson_t   f = BSON_INITIALIZER;
    ts_rc_e  rc;

    ts_mg_append_oid_hex(&f, "_id", id);
    rc = ts_mg_user_find(TS_MG(s), &f, out);
    bson_destroy(&f);
    return rc;
}


ts_rc_e
ts_mg_user_by_email(ts_store_t *s, const char *email, ts_user_t *out)
{
    return ts_mg_user_by_key(TS_MG(s), "emailLower", email, out);
}


ts_rc_e
ts_mg_user_by_username(ts_store_t *s, const char *name, ts_user_t *out)
{
    return ts_mg_user_by_key(TS_MG(s), "usernameLower", name, out);
}


/* Fixed _id of the "an admin exists" marker (in loginattempts, whose
 * documents are otherwise keyed by identifier). */
static void
ts_mg_admin_marker(bson_oid_t *oid)
{
    bson_oid_init_from_string(oid, "000000000000000000000001");
}


ts_rc_e
ts_mg_user_signup(ts_store_t *s, ts_user_t *u, const ts_job_new_t *job,
    const char **which)
{
    ts_mongo_t    *m = TS_MG(s);
    bson_t         doc = BSON_INITIALIZER, arr, *f, marker = BSON_INITIALIZER;
    bson_oid_t     oid, moid;
    bson_error_t   e;
    ts_user_t      other;
    int64_t        now, count;
    char          *ul, *el;
    ts_rc_e        rc;

    /* mongod's unique indexes settle races; these reads give the same
     * answers on servers without them, and name the field taken */
    *which = "email";
    if ((rc = ts_mg_user_by_key(m, "emailLower", u->email, &other))
        != TS_NOT_FOUND)
    {
        if (rc == TS_OK) {
            ts_user_clear(&other);
            return TS_CONFLICT;
        }
        return rc;
    }
    *which = "username";
    if ((rc = ts_mg_user_by_key(m, "usernameLower", u->username, &other))
        != TS_NOT_FOUND)
    {
        if (rc == TS_OK) {
            ts_user_clear(&other);
            return TS_CONFLICT;
        }
        return rc;
    }

    now = u->created_at > 0 ? u->created_at : ts_now_ms();
    ts_mg_oid_new(&oid);
    bson_oid_to_string(&oid, u->id);
    u->created_at = u->updated_at = now;
    if (u->avg_resolution_hours <= 0) {
        u->avg_resolution_hours = 24;
    }

    /*
     * The first user ever becomes admin.  An empty users collection is
     * not proof (two signups can both see it), so a signup that sees it
     * also inserts the marker with a fixed _id: one insert wins.
     */
    u->role = TS_ROLE_USER;
    f = bson_new();
    count = mongoc_collection_count_documents(m->users, f, NULL, NULL, NULL,
                                              &e);
    bson_destroy(f);
    if (count < 0) {
        return ts_mg_fail(m, "count users", &e);
    }
    if (count == 0) {
        ts_mg_admin_marker(&moid);
        BSON_APPEND_OID(&marker, "_id", &moid);
        BSON_APPEND_UTF8(&marker, "identifier", "\001first-admin");
        BSON_APPEND_OID(&marker, "user", &oid);
        if (mongoc_collection_insert_one(m->logins, &marker, NULL, NULL, &e))
        {
            u->role = TS_ROLE_ADMIN;
        } else if (!ts_mg_dup(&e)) {
            bson_destroy(&marker);
            return ts_mg_fail(m, "admin marker", &e);
        } else {
            /* a marker from users since deleted: take it over (CAS) */
            mongoc_cursor_t  *cur;
            const bson_t     *md;
            bson_t           *mf = BCON_NEW("_id", BCON_OID(&moid));
            bson_oid_t        held;
            bson_iter_t       it;
            int               stale = 0;

            cur = mongoc_collection_find_with_opts(m->logins, mf, NULL, NULL);
            if (mongoc_cursor_next(cur, &md)
                && bson_iter_init_find(&it, md, "user")
                && BSON_ITER_HOLDS_OID(&it))
            {
                bson_oid_copy(bson_iter_oid(&it), &held);
                stale = 1;
            }
            mongoc_cursor_destroy(cur);
            bson_destroy(mf);
            if (stale) {
                bson_t  *uf = BCON_NEW("_id", BCON_OID(&held));
                int64_t  n = mongoc_collection_count_documents(
                                 m->users, uf, NULL, NULL, NULL, &e);
                bson_destroy(uf);
                if (n == 0) {
                    int64_t  matched = 0;
                    bson_t  *cf = BCON_NEW("_id", BCON_OID(&moid),
                                           "user", BCON_OID(&held));
                    bson_t  *cu = BCON_NEW("$set", "{", "user",
                                           BCON_OID(&oid), "}");
                    if (ts_mg_update(m, m->logins, cf, cu, 0, &matched)
                        == TS_OK && matched)
                    {
                        u->role = TS_ROLE_ADMIN;
                    }
                    bson_destroy(cf);
                    bson_destroy(cu);
                }
            }
        }
    }
    bson_destroy(&marker);

    ul = ts_mg_lower(u->username);
    el = ts_mg_lower(u->email);
    BSON_APPEND_OID(&doc, "_id", &oid);
    BSON_APPEND_UTF8(&doc, "username", u->username);
    BSON_APPEND_UTF8(&doc, "email", el ? el : u->email);
    BSON_APPEND_UTF8(&doc, "password", u->password);
    BSON_APPEND_UTF8(&doc, "role", ts_role_name(u->role));
    ts_mg_append_json(&doc, "skills", u->skills ? u->skills : json_array());
    BSON_APPEND_UTF8(&doc, "status", ts_presence_name(u->status));
    ts_mg_append_time(&doc, "lastSeen", u->last_seen);
    BSON_APPEND_INT64(&doc, "totalTicketsResolved", u->total_resolved);
    BSON_APPEND_DOUBLE(&doc, "averageResolutionTimeHours",
                       u->avg_resolution_hours);
    ts_mg_append_time(&doc, "lastAssignedAt", u->last_assigned_at);
    BSON_APPEND_DATE_TIME(&doc, "createdAt", now);
    BSON_APPEND_DATE_TIME(&doc, "updatedAt", now);
    BSON_APPEND_INT32(&doc, "__v", 0);
    BSON_APPEND_UTF8(&doc, "usernameLower", ul ? ul : "");
    BSON_APPEND_UTF8(&doc, "emailLower", el ? el : "");
    BSON_APPEND_ARRAY_BEGIN(&doc, "pendingJobs", &arr);
    if (job) {
        ts_mg_jobs_array(&arr, job, 1, now);
    }
    bson_append_array_end(&doc, &arr);
    free(ul);
    free(el);

    if (!mongoc_collection_insert_one(m->users, &doc, NULL, NULL, &e)) {
        rc = ts_mg_fail(m, "signup", &e);
        if (rc == TS_CONFLICT) {
            rc = ts_mg_user_by_key(m, "emailLower", u->email, &other);
            if (rc == TS_OK) {
                ts_user_clear(&other);
            }
            *which = rc == TS_OK ? "email" : "username";
            rc = TS_CONFLICT;
        }
        if (u->role == TS_ROLE_ADMIN) {
            /* give the admin slot back to the next signup */
            bson_t *mf = BCON_NEW("_id", BCON_OID(&moid),
                                  "user", BCON_OID(&oid));
            (void) mongoc_collection_delete_one(m->logins, mf, NULL, NULL,
                                                NULL);
            bson_destroy(mf);
        }
        bson_destroy(&doc);
        return rc;
    }
    if (job) {
        bson_iter_t  it;
        bson_t       jarr;
        const uint8_t *data;
        uint32_t     len;

        if (bson_iter_init_find(&it, &doc, "pendingJobs")) {
            bson_iter_array(&it, &len, &data);
            if (bson_init_static(&jarr, data, len)) {
                ts_mg_outbox_flush(m, m->users, &oid, &jarr);
            }
        }
    }
    bson_destroy(&doc);
    return TS_OK;
}


ts_rc_e
ts_mg_user_list(ts_store_t *s, json_t **out)
{
    ts_mongo_t       *m = TS_MG(s);
    mongoc_cursor_t  *cur;
    const bson_t     *doc;
    bson_t           *f = bson_new();
    bson_t           *opts = BCON_NEW("sort", "{", "createdAt", BCON_INT32(1),
                                      "_id", BCON_INT32(1), "}");
    bson_error_t      e;
    ts_user_t         u;
    json_t           *arr = json_array();

    cur = mongoc_collection_find_with_opts(m->users, f, opts, NULL);
    while (mongoc_cursor_next(cur, &doc)) {
        if (ts_mg_row_user(doc, &u) == 0) {
            json_array_append_new(arr, ts_user_json(&u));
            ts_user_clear(&u);
        }
    }
    bson_destroy(f);
    bson_destroy(opts);
    if (mongoc_cursor_error(cur, &e)) {
        mongoc_cursor_destroy(cur);
        json_decref(arr);
        return ts_mg_fail(m, "users", &e);
    }
    mongoc_cursor_destroy(cur);
    *out = arr;
    return TS_OK;
}


ts_rc_e
ts_mg_user_count_role(ts_store_t *s, ts_role_e role, int64_t *count)
{
    ts_mongo_t    *m = TS_MG(s);
    bson_t        *f = BCON_NEW("role", BCON_UTF8(ts_role_name(role)));
    bson_error_t   e;

    *count = mongoc_collection_count_documents(m->users, f, NULL, NULL, NULL,
                                               &e);
    bson_destroy(f);
    return *count < 0 ? ts_mg_fail(m, "count", &e) : TS_OK;
}


/* Update the user with _id id; TS_NOT_FOUND when there is none. */
static ts_rc_e
ts_mg_user_set(ts_mongo_t *m, const char *id, const bson_t *upd)
{
    bson_t   f = BSON_INITIALIZER;
    int64_t  matched = 0;
    ts_rc_e  rc;

    ts_mg_append_oid_hex(&f, "_id", id);
    rc = ts_mg_update(m, m->users, &f, upd, 0, &matched);
    bson_destroy(&f);
    return rc == TS_OK && matched == 0 ? TS_NOT_FOUND : rc;
}


ts_rc_e
ts_mg_user_set_status(ts_store_t *s, const char *id, ts_presence_e status,
    int64_t last_seen, int chosen)
{
    bson_t   upd = BSON_INITIALIZER, set, unset;
    ts_rc_e  rc;

    BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
    BSON_APPEND_UTF8(&set, "status", ts_presence_name(status));
    ts_mg_append_time(&set, "lastSeen", last_seen);
    BSON_APPEND_DATE_TIME(&set, "updatedAt", ts_now_ms());
    if (chosen && status != TS_PRESENCE_ONLINE) {
        BSON_APPEND_UTF8(&set, "presenceChoice", ts_presence_name(status));
    }
    bson_append_document_end(&upd, &set);
    if (chosen && status == TS_PRESENCE_ONLINE) {
        BSON_APPEND_DOCUMENT_BEGIN(&upd, "$unset", &unset);
        BSON_APPEND_UTF8(&unset, "presenceChoice", "");
        bson_append_document_end(&upd, &unset);
    }
    rc = ts_mg_user_set(TS_MG(s), id, &upd);
    bson_destroy(&upd);
    return rc;
}


ts_rc_e
ts_mg_user_update(ts_store_t *s, const char *id, ts_role_e role,
    json_t *skills)
{
    bson_t   upd = BSON_INITIALIZER, set;
    ts_rc_e  rc;

    BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
    BSON_APPEND_UTF8(&set, "role", ts_role_name(role));
    BSON_APPEND_DATE_TIME(&set, "updatedAt", ts_now_ms());
    if (skills) {
        ts_mg_append_json(&set, "skills", skills);
    }
    bson_append_document_end(&upd, &set);
    rc = ts_mg_user_set(TS_MG(s), id, &upd);
    bson_destroy(&upd);
    return rc;
}


/* --- tokens and login attempts ------------------------------------------ */

/* A document _id derived from a key (token signature, identifier), so a
 * second insert of the same key is refused by the _id index -- which every
 * server enforces. */
static void
ts_mg_key_oid(const char *ns, const char *key, bson_oid_t *oid)
{
    unsigned char  d[SHA_DIGEST_LENGTH];
    size_t         nl = strlen(ns), kl = strlen(key);
    char          *buf = malloc(nl + kl + 2);

    if (buf == NULL) {
        memset(d, 0xff, sizeof(d));
    } else {
        memcpy(buf, ns, nl);
        buf[nl] = ':';
        memcpy(buf + nl + 1, key, kl + 1);
        SHA1((const unsigned char *) buf, nl + kl + 1, d);
        free(buf);
    }
    bson_oid_init_from_data(oid, d);
}


ts_rc_e
ts_mg_token_revoke(ts_store_t *s, const char *sig, int64_t exp)
{
    ts_mongo_t    *m = TS_MG(s);
    bson_oid_t     oid;
    bson_t        *doc;
    bson_error_t   e;

    ts_mg_key_oid("token", sig, &oid);
    doc = BCON_NEW("_id", BCON_OID(&oid), "sig", BCON_UTF8(sig),
                   "expiresAt", BCON_DATE_TIME(exp));
    if (mongoc_collection_insert_one(m->tokens, doc, NULL, NULL, &e)
        || ts_mg_dup(&e))
    {
        bson_destroy(doc);
        return TS_OK;
    }
    bson_destroy(doc);
    return ts_mg_fail(m, "revoke", &e);
}


ts_rc_e
ts_mg_token_revoked(ts_store_t *s, const char *sig)
{
    ts_mongo_t    *m = TS_MG(s);
    bson_oid_t     oid;
    bson_t        *f, *opts;
    bson_error_t   e;
    int64_t        n;

    ts_mg_key_oid("token", sig, &oid);
    f = BCON_NEW("_id", BCON_OID(&oid));
    opts = BCON_NEW("limit", BCON_INT64(1));
    n = mongoc_collection_count_documents(m->tokens, f, opts, NULL, NULL,
                                          &e);
    bson_destroy(f);
    bson_destroy(opts);
    if (n < 0) {
        return ts_mg_fail(m, "revoked", &e);
    }
    return n > 0 ? TS_OK : TS_NOT_FOUND;
}


static void
ts_mg_row_login(const bson_t *doc, ts_login_attempts_t *out)
{
    out->failures = (int) ts_mg_get_int(doc, "failures", 0);
    out->window_start = ts_mg_get_time(doc, "windowStart");
    out->locked_until = ts_mg_get_time(doc, "lockedUntil");
}


ts_rc_e
ts_mg_login_get(ts_store_t *s, const char *ident, ts_login_attempts_t *out)
{
    ts_mongo_t       *m = TS_MG(s);
    mongoc_cursor_t  *cur;
    const bson_t     *doc;
    bson_oid_t        oid;
    bson_t           *f;
    bson_error_t      e;
    ts_rc_e           rc = TS_NOT_FOUND;

    memset(out, 0, sizeof(*out));
    ts_mg_key_oid("login", ident, &oid);
    f = BCON_NEW("_id", BCON_OID(&oid));
    cur = mongoc_collection_find_with_opts(m->logins, f, NULL, NULL);
    if (mongoc_cursor_next(cur, &doc)) {
        ts_mg_row_login(doc, out);
        rc = TS_OK;
    } else if (mongoc_cursor_error(cur, &e)) {
        rc = ts_mg_fail(m, "login attempts", &e);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(f);
    return rc;
}


/* findAndModify returning the new document into out; *found set. */
static ts_rc_e
ts_mg_fam_login(ts_mongo_t *m, const bson_t *filter, const bson_t *update,
    int upsert, ts_login_attempts_t *out, int *found)
{
    mongoc_find_and_modify_opts_t  *o = mongoc_find_and_modify_opts_new();
    bson_t                          reply, val;
    bson_iter_t                     it;
    bson_error_t                    e;
    const uint8_t                  *data;
    uint32_t                        len;
    bool                            ok;

    *found = 0;
    mongoc_find_and_modify_opts_set_update(o, update);
    mongoc_find_and_modify_opts_set_flags(o,
        MONGOC_FIND_AND_MODIFY_RETURN_NEW
        | (upsert ? MONGOC_FIND_AND_MODIFY_UPSERT : 0));
    ok = mongoc_collection_find_and_modify_with_opts(m->logins, filter, o,
                                                     &reply, &e);
    mongoc_find_and_modify_opts_destroy(o);
    if (!ok) {
        bson_destroy(&reply);
        return ts_mg_fail(m, "login attempts", &e);
    }
    if (bson_iter_init_find(&it, &reply, "value")
        && BSON_ITER_HOLDS_DOCUMENT(&it))
    {
        bson_iter_document(&it, &len, &data);
        if (bson_init_static(&val, data, len)) {
            ts_mg_row_login(&val, out);
            *found = 1;
        }
    }
    bson_destroy(&reply);
    return TS_OK;
}


/*
 * One attempt, checked and counted atomically without a transaction: each
 * step is a single-document findAndModify whose filter holds the whole
 * check ("not locked", the window, the count so far), so two attempts can
 * never both pass a check that only one of them may pass.
 *
 *   1. inside the window, not locked, below the last allowed failure:
 *      $inc;
 *   2. inside the window, not locked, at the last allowed failure: $inc
 *      and the lock in the same update (a lock set by a second write
 *      would let concurrent attempts through in between);
 *   3. no document, or its window over: restart at 1 with an upsert
 *      conditioned on that; when the document exists but does not match
 *      (locked, or a concurrent restart) the upsert is a duplicate _id;
 *   4. then read it: locked -> refused; otherwise go round again.
 */
ts_rc_e
ts_mg_login_attempt(ts_store_t *s, const char *key, int64_t now_ms,
    int64_t window_ms, int max_failures, int64_t lock_ms,
    ts_login_attempts_t *out, int *allowed)
{
    ts_mongo_t  *m = TS_MG(s);
    bson_oid_t   oid;
    bson_t      *f, *u;
    int          found, tries, step;
    ts_rc_e      rc;

    memset(out, 0, sizeof(*out));
    *allowed = 0;
    ts_mg_key_oid("login", key, &oid);
    for (tries = 0; tries < 5; tries++) {
        for (step = 1; step <= 2; step++) {
            f = BCON_NEW("_id", BCON_OID(&oid),
                         "windowStart", "{", "$gt",
                         BCON_DATE_TIME(now_ms - window_ms), "}",
                         "lockedUntil", "{", "$lte", BCON_DATE_TIME(now_ms),
                         "}",
                         "failures", "{", step == 1 ? "$lt" : "$gte",
                         BCON_INT32(max_failures - 1), "}");
            if (step == 1) {
                u = BCON_NEW("$inc", "{", "failures", BCON_INT32(1), "}");
            } else {
                u = BCON_NEW("$inc", "{", "failures", BCON_INT32(1), "}",
                             "$set", "{", "lockedUntil",
                             BCON_DATE_TIME(now_ms + lock_ms), "}");
            }
            rc = ts_mg_fam_login(m, f, u, 0, out, &found);
            bson_destroy(f);
            bson_destroy(u);
            if (rc != TS_OK) {
                return rc;
            }
            if (found) {
                *allowed = 1;
                return TS_OK;
            }
        }

        f = BCON_NEW("_id", BCON_OID(&oid),
                     "$or", "[",
                     "{", "windowStart", "{", "$lte",
                     BCON_DATE_TIME(now_ms - window_ms), "}", "}",
                     "{", "windowStart", "{", "$exists", BCON_BOOL(false),
                     "}", "}", "]",
                     "lockedUntil", "{", "$lte", BCON_DATE_TIME(now_ms),
                     "}");
        u = BCON_NEW("$set", "{", "failures", BCON_INT32(1),
                     "windowStart", BCON_DATE_TIME(now_ms),
                     "identifier", BCON_UTF8(key),
                     "lockedUntil",
                     BCON_DATE_TIME(max_failures <= 1 ? now_ms + lock_ms
                                                      : 0),
                     "}");
        rc = ts_mg_fam_login(m, f, u, 1, out, &found);
        bson_destroy(f);
        bson_destroy(u);
        if (rc == TS_OK && found) {
            *allowed = 1;
            return TS_OK;
        }
        if (rc != TS_CONFLICT && rc != TS_OK) {
            return rc;
        }

        rc = ts_mg_login_get(s, key, out);
        if (rc == TS_ERR) {
            return rc;
        }
        if (rc == TS_OK && out->locked_until > now_ms) {
            return TS_OK;
        }
        /* the document changed between the steps: go round again */
    }
    return ts_store_fail(s, "mongodb login attempts: too much contention");
}


ts_rc_e
ts_mg_login_clear(ts_store_t *s, const char *ident)
{
    ts_mongo_t    *m = TS_MG(s);
    bson_oid_t     oid;
    bson_t        *f;
    bson_error_t   e;
    bool           ok;

    ts_mg_key_oid("login", ident, &oid);
    f = BCON_NEW("_id", BCON_OID(&oid));
    ok = mongoc_collection_delete_one(m->logins, f, NULL, NULL, &e);
    bson_destroy(f);
    return ok ? TS_OK : ts_mg_fail(m, "login clear", &e);
}

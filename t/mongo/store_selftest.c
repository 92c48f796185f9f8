/*
 * store_selftest: the MongoDB backend driven directly through ts_store.h,
 * built with AddressSanitizer + UBSan (make mongo-selftest), against the
 * server in TEST_MONGODB_URI (t/mongo/with-server.sh starts CongoDB when
 * none is given).  Without a server it prints why and exits 0, so it can
 * run anywhere.  Uses a database of its own and drops it at the end.
 *
 * It checks what the HTTP suite cannot see from outside: return codes of
 * every op, fencing, dedupe keys, the outbox left empty, stats counted
 * once, one pending request per user.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <mongoc/mongoc.h>

#include "ts_jobs.h"
#include "ts_store.h"

static int  failures, checks;

#define CHECK(cond) do {                                                    \
    checks++;                                                               \
    if (!(cond)) {                                                          \
        failures++;                                                         \
        fprintf(stderr, "store_selftest.c:%d: FAILED: %s\n", __LINE__,     \
                #cond);                                                     \
    }                                                                       \
} while (0)


static ts_rc_e
signup(ts_store_t *s, const char *name, const char *email, ts_user_t *u,
    const char **which)
{
    ts_job_new_t  job;
    ts_rc_e       rc;

    memset(u, 0, sizeof(*u));
    memset(&job, 0, sizeof(job));
    u->username = strdup(name);
    u->email = strdup(email);
    u->password = strdup("$2b$04$abcdefghijklmnopqrstuu5S0gYB8Y4S8mM2Hn5N7lI5kF9q6o8mK");
    u->skills = json_pack("[s]", "Billing");
    job.kind = "email";
    job.max_attempts = 8;
    job.payload = json_pack("{s:s, s:s}", "template", "welcome", "to", email);
    rc = ts_store_user_signup(s, u, &job, which);
    json_decref(job.payload);
    return rc;
}


/* Documents with a non-empty outbox in a collection. */
static int64_t
outboxes(mongoc_client_t *c, const char *db, const char *coll)
{
    mongoc_collection_t  *col = mongoc_client_get_collection(c, db, coll);
    bson_t               *f = BCON_NEW("pendingJobs.0", "{", "$exists",
                                       BCON_BOOL(true), "}");
    int64_t               n;

    n = mongoc_collection_count_documents(col, f, NULL, NULL, NULL, NULL);
    bson_destroy(f);
    mongoc_collection_destroy(col);
    return n;
}


int
main(void)
{
    const char         *base = getenv("TEST_MONGODB_URI");
    char                uri[512], db[64], err[256];
    ts_store_t         *s;
    ts_user_t           a, b, c, x;
    const char         *which = NULL;
    ts_oid_t            tid, mr, cid, jid;
    ts_job_new_t        triage, dup;
    ts_job_t           *jobs = NULL;
    ts_job_counts_t     jc;
    ts_login_attempts_t la;
    ts_ticket_keys_t    keys;
    ts_ticket_query_t   q;
    ts_assign_cfg_t     cfg;
    ts_jw_t             w;
    json_t             *doc = NULL, *res = NULL, *an = NULL, *triage_res;
    json_t             *meta, *skills;
    size_t              n = 0, i;
    int64_t             total = 0;
    int                 counted = 0, triaged = 0, allowed = 0;
    char               *title = NULL, *desc = NULL, *list, *p;
    mongoc_uri_t       *mu;
    mongoc_client_t    *raw;
    mongoc_database_t  *d;
    const char         *rest;

    if (base == NULL || *base == '\0') {
        printf("store_selftest: skipped: no MongoDB server "
               "(set TEST_MONGODB_URI, or run make mongo-selftest)\n");
        return 0;
    }
    /* base with the database replaced by a fresh one */
    snprintf(db, sizeof(db), "selftest_%d_%ld", (int) getpid(),
             (long) (ts_now_ms() % 100000000));
    rest = strstr(base, "://");
    rest = rest ? rest + 3 : base;
    p = strpbrk(rest, "/?");
    {
        const char *opts = p ? strchr(p, '?') : NULL;
        int         hostlen = (int) (p ? p - base : (long) strlen(base));

        snprintf(uri, sizeof(uri), "%.*s/%s%s", hostlen, base, db,
                 opts ? opts : "");
    }

    s = ts_store_open(uri, err, sizeof(err));
    if (s == NULL) {
        printf("store_selftest: skipped: %s\n", err);
        return 0;
    }
    CHECK(strcmp(ts_store_backend(s), "mongodb") == 0);
    CHECK(ts_store_ping(s) == TS_OK);

    /* users: first is admin, uniqueness ignores case */
    CHECK(signup(s, "Alice", "alice@example.com", &a, &which) == TS_OK);
    CHECK(a.role == TS_ROLE_ADMIN);
    CHECK(signup(s, "bob", "bob@example.com", &b, &which) == TS_OK);
    CHECK(b.role == TS_ROLE_USER);
    CHECK(signup(s, "other", "ALICE@example.com", &x, &which) == TS_CONFLICT);
    CHECK(which && strcmp(which, "email") == 0);
    ts_user_clear(&x);
    CHECK(signup(s, "ALICE", "new@example.com", &x, &which) == TS_CONFLICT);
    CHECK(which && strcmp(which, "username") == 0);
    ts_user_clear(&x);
    CHECK(ts_store_user_by_login(s, "alice", &x) == TS_OK
          && strcmp(x.id, a.id) == 0);
    ts_user_clear(&x);
    CHECK(ts_store_user_by_login(s, "Bob@Example.COM", &x) == TS_OK
          && strcmp(x.id, b.id) == 0);
    CHECK(json_array_size(x.skills) == 1);
    ts_user_clear(&x);
    CHECK(ts_store_user_by_id(s, "0123456789abcdef01234567", &x)
          == TS_NOT_FOUND);
    CHECK(ts_store_user_set_status(s, b.id, TS_PRESENCE_DND, ts_now_ms(), 1)
          == TS_OK);
    CHECK(ts_store_user_by_id(s, b.id, &x) == TS_OK && x.status_chosen
          && x.status == TS_PRESENCE_DND);
    ts_user_clear(&x);

    /* tokens and lockout */
    CHECK(ts_store_token_revoked(s, "sig1") == TS_NOT_FOUND);
    CHECK(ts_store_token_revoke(s, "sig1", ts_now_ms() + 60000) == TS_OK);
    CHECK(ts_store_token_revoke(s, "sig1", ts_now_ms() + 60000) == TS_OK);
    CHECK(ts_store_token_revoked(s, "sig1") == TS_OK);
    for (i = 0; i < 3; i++) {
        CHECK(ts_store_login_attempt(s, "bob", ts_now_ms(), 60000, 3, 60000,
                                     &la, &allowed) == TS_OK && allowed);
    }
    CHECK(la.failures == 3 && la.locked_until > ts_now_ms());
    /* locked: refused and not counted */
    CHECK(ts_store_login_attempt(s, "bob", ts_now_ms(), 60000, 3, 60000,
                                 &la, &allowed) == TS_OK && !allowed);
    CHECK(la.failures == 3 && la.locked_until > ts_now_ms());
    CHECK(ts_store_login_get(s, "bob", &la) == TS_OK && la.failures == 3);
    CHECK(ts_store_login_clear(s, "bob") == TS_OK);
    CHECK(ts_store_login_get(s, "bob", &la) == TS_NOT_FOUND);

    /* a ticket with its triage job; the same dedupe key twice is one job */
    ts_oid_new(tid);
    memset(&triage, 0, sizeof(triage));
    triage.kind = "triage";
    triage.payload = json_pack("{s:s}", "ticketId", tid);
    {
        char key[64];
        snprintf(key, sizeof(key), "triage:%s", tid);
        triage.dedupe_key = strdup(key);
    }
    CHECK(ts_store_ticket_create(s, tid, "Card declined (a.b)",
                                 "Payment fails", b.id, ts_now_ms(),
                                 &triage, 1) == TS_OK);
    CHECK(ts_store_ticket_create(s, tid, "again", "again", b.id, ts_now_ms(),
                                 NULL, 0) == TS_CONFLICT);
    dup = triage;
    CHECK(ts_store_job_insert(s, &dup, jid) == TS_OK);
    CHECK(ts_store_job_counts(s, &jc) == TS_OK && jc.pending == 3);
    free((char *) triage.dedupe_key);
    json_decref(triage.payload);

    /* claims: later stages first, then triage; attempts fence */
    CHECK(ts_store_job_claim(s, ts_now_ms(), 30000, 10, 0, &jobs, &n)
          == TS_OK && n == 2);
    for (i = 0; i < n; i++) {
        CHECK(strcmp(jobs[i].kind, "email") == 0 && jobs[i].attempts == 1);
        CHECK(ts_store_job_done(s, jobs[i].id, 2, ts_now_ms())
              == TS_NOT_FOUND);
        CHECK(ts_store_job_done(s, jobs[i].id, 1, ts_now_ms()) == TS_OK);
    }
    ts_jobs_free(jobs, n);
    CHECK(ts_store_job_claim(s, ts_now_ms(), 30000, 10, 1, &jobs, &n)
          == TS_OK && n == 1);
    if (n == 1) {
        CHECK(strcmp(jobs[0].kind, "triage") == 0);
        CHECK(strcmp(json_string_value(json_object_get(jobs[0].payload,
                                                       "ticketId")), tid)
              == 0);
        CHECK(ts_store_job_extend(s, jobs, 1, ts_now_ms() + 60000) == TS_OK);
        CHECK(ts_store_job_fail(s, jobs[0].id, 1, "boom", 1, ts_now_ms(),
                                ts_now_ms()) == TS_OK);
        CHECK(ts_store_job_retry(s, jobs[0].id, ts_now_ms()) == TS_OK);
        CHECK(ts_store_job_retry(s, jobs[0].id, ts_now_ms()) == TS_CONFLICT);
    }
    ts_jobs_free(jobs, n);
    CHECK(ts_store_job_list(s, "done", 10, &res) == TS_OK
          && json_array_size(res) == 2);
    json_decref(res);

    /* finished jobs purged in batches; the pending triage job stays */
    CHECK(ts_store_job_purge(s, ts_now_ms() + 1000, 0, 1, &total) == TS_OK
          && total == 1);
    CHECK(ts_store_job_purge(s, ts_now_ms() + 1000, 0, 1, &total) == TS_OK
          && total == 1);
    CHECK(ts_store_job_purge(s, ts_now_ms() + 1000, ts_now_ms() + 1000, 1,
                             &total) == TS_OK && total == 0);
    CHECK(ts_store_job_counts(s, &jc) == TS_OK && jc.done == 0
          && jc.pending == 1);

    /* triage once, then assignment to the only moderator */
    CHECK(ts_store_ticket_text(s, tid, &title, &desc, &triaged) == TS_OK
          && !triaged && strcmp(desc, "Payment fails") == 0);
    free(title);
    free(desc);
    triage_res = json_pack("{s:s, s:s, s:s, s:[s]}", "summary", "sum",
                           "priority", "High", "helpfulNotes", "notes",
                           "relatedSkills", "billing");
    meta = json_pack("{s:s}", "provider", "offline");
    CHECK(ts_store_ticket_set_triage(s, tid, triage_res, meta, "offline", 0,
                                     ts_now_ms(), NULL, 0) == TS_OK);
    CHECK(ts_store_ticket_set_triage(s, tid, triage_res, meta, "offline", 0,
                                     ts_now_ms(), NULL, 0) == TS_CONFLICT);
    json_decref(triage_res);
    json_decref(meta);
    skills = json_pack("[s]", "Billing");
    CHECK(signup(s, "carol", "carol@example.com", &c, &which) == TS_OK);
    CHECK(ts_store_user_update(s, c.id, TS_ROLE_MODERATOR, skills) == TS_OK);
    json_decref(skills);
    ts_assign_cfg_default(&cfg);
    CHECK(ts_store_ticket_assign(s, tid, &cfg, ts_job_mail_assigned,
                                 ts_now_ms(), &res) == TS_OK);
    CHECK(res && json_is_object(json_object_get(res, "assignedTo")));
    CHECK(res && strcmp(json_string_value(json_object_get(res, "status")),
                        "In Progress") == 0);
    json_decref(res);
    res = NULL;
    CHECK(ts_store_ticket_assign(s, tid, &cfg, ts_job_mail_assigned,
                                 ts_now_ms(), &res)
          == TS_CONFLICT);

    /* comments, the document, stats once */
    ts_oid_new(cid);
    CHECK(ts_store_comment_add(s, tid, cid, c.id, "Looking", "moderator",
                               ts_now_ms(), 2, NULL, 0) == TS_OK);
    /* the limit: a second comment fits, a third is a conflict */
    ts_oid_new(cid);
    CHECK(ts_store_comment_add(s, tid, cid, c.id, "Second", "moderator",
                               ts_now_ms(), 2, NULL, 0) == TS_OK);
    ts_oid_new(cid);
    CHECK(ts_store_comment_add(s, tid, cid, c.id, "Third", "moderator",
                               ts_now_ms(), 2, NULL, 0) == TS_CONFLICT);
    CHECK(ts_store_ticket_get(s, tid, 1, &doc, &keys) == TS_OK);
    CHECK(keys.comments == 2 && strcmp(keys.created_by, b.id) == 0
          && keys.assigned_to[0] != '\0');
    CHECK(doc && json_array_size(json_object_get(doc, "comments")) == 2);
    CHECK(doc && strcmp(json_string_value(json_object_get(json_object_get(
              json_array_get(json_object_get(doc, "comments"), 0), "author"),
              "username")), "carol") == 0);
    CHECK(doc && strcmp(json_string_value(json_object_get(doc, "priority")),
                        "High") == 0);
    json_decref(doc);
    CHECK(ts_store_ticket_set_status(s, tid, "Completed", ts_now_ms(), NULL,
                                     0) == TS_OK);
    CHECK(ts_store_ticket_stats(s, tid, keys.assigned_to, 5.0, &counted)
          == TS_OK && counted == 1);
    CHECK(ts_store_ticket_stats(s, tid, keys.assigned_to, 5.0, &counted)
          == TS_OK && counted == 0);
    CHECK(ts_store_user_by_id(s, keys.assigned_to, &x) == TS_OK
          && x.total_resolved == 1);
    ts_user_clear(&x);

    /* lists: scope, literal search */
    memset(&q, 0, sizeof(q));
    q.limit = 10;
    ts_jw_init(&w, 256);
    CHECK(ts_store_ticket_list(s, &q, &w, &total) == TS_OK && total == 1);
    list = ts_jw_finish(&w, NULL);
    CHECK(list && strstr(list, tid) != NULL);
    free(list);
    q.search = "a.b";
    ts_jw_init(&w, 256);
    CHECK(ts_store_ticket_list(s, &q, &w, &total) == TS_OK && total == 1);
    free(ts_jw_finish(&w, NULL));
    q.search = "a+b";
    ts_jw_init(&w, 256);
    CHECK(ts_store_ticket_list(s, &q, &w, &total) == TS_OK && total == 0);
    free(ts_jw_finish(&w, NULL));
    q.search = NULL;
    q.scope = TS_SCOPE_CREATOR;
    q.user_id = a.id;
    ts_jw_init(&w, 256);
    CHECK(ts_store_ticket_list(s, &q, &w, &total) == TS_OK && total == 0);
    free(ts_jw_finish(&w, NULL));

    /* moderator requests: one pending per user */
    ts_oid_new(mr);
    skills = json_pack("[s]", "Refunds");
    CHECK(ts_store_modreq_create(s, mr, b.id, "bob", "bob@example.com",
                                 skills, ts_now_ms(), NULL, 0) == TS_OK);
    {
        ts_oid_t mr2;
        ts_oid_new(mr2);
        CHECK(ts_store_modreq_create(s, mr2, b.id, "bob", "bob@example.com",
                                     skills, ts_now_ms(), NULL, 0)
              == TS_CONFLICT);
        CHECK(ts_store_modreq_get(s, mr2, &doc) == TS_NOT_FOUND);
    }
    json_decref(skills);
    CHECK(ts_store_modreq_pending(s, &res) == TS_OK
          && json_array_size(res) == 1);
    json_decref(res);
    CHECK(ts_store_modreq_decide(s, mr, 1, a.id, ts_now_ms(), NULL, 0)
          == TS_OK);
    CHECK(ts_store_modreq_decide(s, mr, 0, a.id, ts_now_ms(), NULL, 0)
          == TS_CONFLICT);
    CHECK(ts_store_user_by_id(s, b.id, &x) == TS_OK
          && x.role == TS_ROLE_MODERATOR && json_array_size(x.skills) == 2);
    ts_user_clear(&x);
    CHECK(ts_store_modreq_latest(s, b.id, &doc) == TS_OK);
    json_decref(doc);

    /* analytics, housekeeping, the outboxes left empty */
    CHECK(ts_store_analytics(s, ts_now_ms(), &an) == TS_OK
          && json_integer_value(json_object_get(json_object_get(an, "totals"),
                                                "tickets")) == 1);
    json_decref(an);
    CHECK(ts_store_purge_expired(s, ts_now_ms() + 120000, &total) == TS_OK
          && total >= 1);

    mu = mongoc_uri_new(uri);
    raw = mongoc_client_new_from_uri(mu);
    CHECK(outboxes(raw, db, "users") == 0);
    CHECK(outboxes(raw, db, "tickets") == 0);
    CHECK(outboxes(raw, db, "moderatorrequests") == 0);
    d = mongoc_client_get_database(raw, db);
    (void) mongoc_database_drop(d, NULL);
    mongoc_database_destroy(d);
    mongoc_client_destroy(raw);
    mongoc_uri_destroy(mu);

    ts_user_clear(&a);
    ts_user_clear(&b);
    ts_user_clear(&c);
    ts_store_close(s);
    printf("store_selftest: %d checks, %d failed (%s)\n", checks, failures,
           base);
    return failures ? 1 : 0;
}

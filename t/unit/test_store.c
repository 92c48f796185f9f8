/*
 * test_store: the store contract (shared/store/ts_store.h), one suite for
 * both backends.  By default each test gets a new SQLite file; with
 * TEST_STORE_URI=mongodb://host:port each gets a new MongoDB database
 * there (make store-contract-mongo: a CongoDB, or TEST_MONGODB_URI).  A
 * test that needs what a server lacks (CongoDB enforces no unique index:
 * TEST_STORE_NO_UNIQUE=1) or that looks at SQLite's own files is skipped
 * with its reason printed.  Protects: migrations are idempotent, the
 * first user (only) becomes admin even under concurrent signups,
 * uniqueness is case-insensitive, a signup's job is stored with it, login
 * attempts are checked and counted atomically, revocations persist and
 * expire, finished jobs are purged after their retention and nothing else
 * is.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <mongoc/mongoc.h>

#include "ts_jobs.h"
#include "ts_store.h"

int test_store_run(void);

typedef struct {
    char         dir[64];
    char         uri[512];
    int          sqlite;
    ts_store_t  *s;
} fixture_t;


static int
setup(void **state)
{
    static unsigned  n;
    fixture_t       *f = calloc(1, sizeof(*f));
    const char      *base = getenv("TEST_STORE_URI");
    char             err[256];

    if (base != NULL && strncmp(base, "mongodb://", 10) == 0) {
        /* a database of its own per test, on the server given */
        snprintf(f->uri, sizeof(f->uri), "%s/ts_contract_%ld_%u", base,
                 (long) getpid(), n++);
    } else {
        f->sqlite = 1;
        strcpy(f->dir, "/tmp/ts-store-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->uri, sizeof(f->uri), "sqlite:%s/t.db", f->dir);
    }
    f->s = ts_store_open(f->uri, err, sizeof(err));
    if (f->s == NULL) {
        fprintf(stderr, "cannot open %s: %s\n", f->uri, err);
    }
    assert_non_null(f->s);
    *state = f;
    return 0;
}


static int
teardown(void **state)
{
    fixture_t  *f = *state;
    char        cmd[128];

    ts_store_close(f->s);
    if (f->sqlite) {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
        assert_int_equal(system(cmd), 0);
    }
    free(f);
    return 0;
}


/* Skip the current test, its reason printed. */
#define skip_because(why)                                                   \
    do {                                                                    \
        print_message("skipped: %s\n", (why));                              \
        skip();                                                             \
    } while (0)


static ts_rc_e
signup(ts_store_t *s, const char *name, const char *email, ts_role_e *role,
    ts_oid_t id)
{
    ts_user_t      u;
    ts_job_new_t   job = { .kind = "email" };
    const char    *which = NULL;
    ts_rc_e        rc;

    memset(&u, 0, sizeof(u));
    u.username = strdup(name);
    u.email = strdup(email);
    u.password = strdup("$2b$04$abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZ01234");
    u.skills = json_pack("[s]", "sql");
    job.payload = json_pack("{s:s, s:s}", "template", "welcome", "to", email);
    rc = ts_store_user_signup(s, &u, &job, &which);
    if (role) {
        *role = u.role;
    }
    if (id) {
        memcpy(id, u.id, sizeof(ts_oid_t));
    }
    json_decref(job.payload);
    ts_user_clear(&u);
    return rc;
}


static void
migrations_run_once_and_reopen_cleanly(void **state)
{
    fixture_t   *f = *state;
    char         err[256], path[128];
    ts_store_t  *again;
    sqlite3     *db;
    sqlite3_stmt *st;

    if (!f->sqlite) {
        skip_because("SQLite's own migrations and journal mode");
    }
    again = ts_store_open(f->uri, err, sizeof(err));
    assert_non_null(again);
    assert_int_equal(ts_store_ping(again), TS_OK);
    assert_string_equal(ts_store_backend(again), "sqlite");
    ts_store_close(again);

    snprintf(path, sizeof(path), "%s/t.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st,
                                        NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *) sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* nothing listens on port 1: a quick, clear refusal */
    assert_null(ts_store_open("mongodb://127.0.0.1:1/x"
                              "?serverSelectionTimeoutMS=300", err,
                              sizeof(err)));
    assert_non_null(strstr(err, "MongoDB"));
    assert_null(ts_store_open("redis://x", err, sizeof(err)));

    /* the syntax check opens nothing */
    assert_int_equal(ts_store_uri_check("mongodb://127.0.0.1:1/x", err,
                                        sizeof(err)), 0);
    assert_int_equal(ts_store_uri_check("mongodb://x:notaport/db", err,
                                        sizeof(err)), -1);
    assert_true(err[0] != '\0');
    assert_int_equal(ts_store_uri_check("sqlite:/tmp/x.db", err,
                                        sizeof(err)), 0);
    assert_int_equal(ts_store_uri_check("sqlite:", err, sizeof(err)), -1);
    assert_int_equal(ts_store_uri_check("redis://x", err, sizeof(err)), -1);
    assert_int_equal(ts_store_uri_check("", err, sizeof(err)), -1);
}


static void
first_user_is_admin_and_uniqueness_ignores_case(void **state)
{
    fixture_t        *f = *state;
    ts_role_e         role;
    ts_oid_t          id;
    ts_user_t         u;
    ts_job_counts_t   jc;

    assert_int_equal(signup(f->s, "alice", "alice@x.io", &role, id), TS_OK);
    assert_int_equal(role, TS_ROLE_ADMIN);
    assert_true(ts_oid_valid(id));
    assert_int_equal(signup(f->s, "bob", "bob@x.io", &role, NULL), TS_OK);
    assert_int_equal(role, TS_ROLE_USER);
    assert_int_equal(signup(f->s, "carol", "ALICE@x.io", NULL, NULL),
                     TS_CONFLICT);
    assert_int_equal(signup(f->s, "BOB", "bob2@x.io", NULL, NULL),
                     TS_CONFLICT);

    /* a failed signup stores no job: two signups, two jobs */
    assert_int_equal(ts_store_job_counts(f->s, &jc), TS_OK);
    assert_int_equal(jc.pending, 2);
    assert_int_equal(jc.by_kind[ts_job_kind_index("email")][0], 2);
    assert_int_equal(jc.by_kind[ts_job_kind_index("triage")][0], 0);

    assert_int_equal(ts_store_user_by_login(f->s, "Alice@X.io", &u), TS_OK);
    assert_string_equal(u.id, id);
    assert_string_equal(json_string_value(json_array_get(u.skills, 0)),
                        "sql");
    ts_user_clear(&u);
    assert_int_equal(ts_store_user_by_login(f->s, "ALICE", &u), TS_OK);
    ts_user_clear(&u);
    assert_int_equal(ts_store_user_by_login(f->s, "nobody", &u),
                     TS_NOT_FOUND);
    assert_int_equal(ts_store_user_by_id(f->s, "zz", &u), TS_NOT_FOUND);
}


typedef struct {
    const char  *uri;
    int          n;
    int          admins;
    int          ok;
} race_t;

static void *
race_signup(void *arg)
{
    race_t      *r = arg;
    char         err[256], name[32], email[64];
    ts_store_t  *s = ts_store_open(r->uri, err, sizeof(err));
    ts_role_e    role;

    if (s == NULL) {        /* no cmocka asserts off the main thread */
        return NULL;
    }
    snprintf(name, sizeof(name), "racer%d", r->n);
    snprintf(email, sizeof(email), "racer%d@x.io", r->n);
    if (signup(s, name, email, &role, NULL) == TS_OK) {
        r->ok = 1;
        r->admins = role == TS_ROLE_ADMIN;
    }
    ts_store_close(s);
    return NULL;
}


static void
concurrent_first_signups_make_exactly_one_admin(void **state)
{
    fixture_t  *f = *state;
    pthread_t   th[8];
    race_t      r[8];
    int         admins = 0, ok = 0;
    int64_t     n;

    if (getenv("TEST_STORE_NO_UNIQUE") != NULL) {
        skip_because("concurrent signups need unique indexes, which this "
                     "server does not enforce");
    }
    for (int i = 0; i < 8; i++) {
        r[i] = (race_t) { .uri = f->uri, .n = i };
        pthread_create(&th[i], NULL, race_signup, &r[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        admins += r[i].admins;
        ok += r[i].ok;
    }
    assert_int_equal(ok, 8);
    assert_int_equal(admins, 1);
    assert_int_equal(ts_store_user_count_role(f->s, TS_ROLE_ADMIN, &n),
                     TS_OK);
    assert_int_equal(n, 1);
}


static void
status_role_and_skills_updates_persist(void **state)
{
    fixture_t  *f = *state;
    ts_oid_t    id;
    ts_user_t   u;
    json_t     *skills = json_array(), *list;

    assert_int_equal(signup(f->s, "dan", "dan@x.io", NULL, id), TS_OK);
    assert_int_equal(ts_store_user_set_status(f->s, id, TS_PRESENCE_DND,
                                              1700000000000LL, 1), TS_OK);
    assert_int_equal(ts_store_user_update(f->s, id, TS_ROLE_MODERATOR,
                                          skills), TS_OK);
    assert_int_equal(ts_store_user_by_id(f->s, id, &u), TS_OK);
    assert_int_equal(u.status, TS_PRESENCE_DND);
    assert_true(u.status_chosen);
    assert_int_equal(u.last_seen, 1700000000000LL);
    assert_int_equal(u.role, TS_ROLE_MODERATOR);
    assert_int_equal(json_array_size(u.skills), 0);
    ts_user_clear(&u);

    assert_int_equal(ts_store_user_set_status(f->s, "aaaaaaaaaaaaaaaaaaaaaaaa",
                                              TS_PRESENCE_ONLINE, 1, 1),
                     TS_NOT_FOUND);

    assert_int_equal(ts_store_user_list(f->s, &list), TS_OK);
    assert_int_equal(json_array_size(list), 1);
    assert_null(json_object_get(json_array_get(list, 0), "password"));
    json_decref(list);
    json_decref(skills);
}


static void
login_failures_lock_after_max_and_window_restarts(void **state)
{
    fixture_t            *f = *state;
    ts_login_attempts_t   a;
    int64_t               t = 1000000;
    int                   allowed;

    for (int i = 1; i <= 2; i++) {
        assert_int_equal(ts_store_login_attempt(f->s, "eve", t + i, 60000, 3,
                                                30000, &a, &allowed), TS_OK);
        assert_true(allowed);
        assert_int_equal(a.failures, i);
        assert_int_equal(a.locked_until, 0);
    }
    /* the third attempt still reaches the password check, and locks */
    assert_int_equal(ts_store_login_attempt(f->s, "eve", t + 3, 60000, 3,
                                            30000, &a, &allowed), TS_OK);
    assert_true(allowed);
    assert_int_equal(a.failures, 3);
    assert_int_equal(a.locked_until, t + 3 + 30000);

    /* locked: refused, and not counted */
    assert_int_equal(ts_store_login_attempt(f->s, "eve", t + 4, 60000, 3,
                                            30000, &a, &allowed), TS_OK);
    assert_false(allowed);
    assert_int_equal(a.failures, 3);
    assert_int_equal(a.locked_until, t + 3 + 30000);

    assert_int_equal(ts_store_login_get(f->s, "eve", &a), TS_OK);
    assert_int_equal(a.failures, 3);
    assert_int_equal(a.locked_until, t + 3 + 30000);

    /* the lock over but the window not: one attempt, which locks again */
    assert_int_equal(ts_store_login_attempt(f->s, "eve", t + 30003, 60000, 3,
                                            30000, &a, &allowed), TS_OK);
    assert_true(allowed);
    assert_int_equal(a.failures, 4);
    assert_int_equal(a.locked_until, t + 30003 + 30000);

    /* an attempt after the window (and the lock) starts a new count */
    assert_int_equal(ts_store_login_attempt(f->s, "eve", t + 70000, 60000, 3,
                                            30000, &a, &allowed), TS_OK);
    assert_true(allowed);
    assert_int_equal(a.failures, 1);
    assert_int_equal(a.window_start, t + 70000);

    assert_int_equal(ts_store_login_clear(f->s, "eve"), TS_OK);
    assert_int_equal(ts_store_login_get(f->s, "eve", &a), TS_NOT_FOUND);
}


static void
revoked_tokens_persist_until_purged_after_exp(void **state)
{
    fixture_t  *f = *state;
    int64_t     removed;

    assert_int_equal(ts_store_token_revoked(f->s, "sig1"), TS_NOT_FOUND);
    assert_int_equal(ts_store_token_revoke(f->s, "sig1", 5000), TS_OK);
    assert_int_equal(ts_store_token_revoke(f->s, "sig1", 5000), TS_OK);
    assert_int_equal(ts_store_token_revoke(f->s, "sig2", 9000), TS_OK);
    assert_int_equal(ts_store_token_revoked(f->s, "sig1"), TS_OK);

    assert_int_equal(ts_store_purge_expired(f->s, 6000, &removed), TS_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(ts_store_token_revoked(f->s, "sig1"), TS_NOT_FOUND);
    assert_int_equal(ts_store_token_revoked(f->s, "sig2"), TS_OK);
}


static void
job_dedupe_key_makes_a_second_insert_a_no_op(void **state)
{
    fixture_t         *f = *state;
    ts_job_new_t       job = { .kind = "stats", .dedupe_key = "stats:1" };
    ts_job_counts_t    jc;
    ts_oid_t           id;

    job.payload = json_pack("{s:i}", "n", 1);
    assert_int_equal(ts_store_job_insert(f->s, &job, id), TS_OK);
    assert_true(ts_oid_valid(id));
    assert_int_equal(ts_store_job_insert(f->s, &job, NULL), TS_OK);
    assert_int_equal(ts_store_job_counts(f->s, &jc), TS_OK);
    assert_int_equal(jc.pending, 1);
    json_decref(job.payload);
}


static json_t *
list(ts_store_t *s, ts_scope_e scope, const char *uid, const char *status,
    const char *search, int64_t *total)
{
    ts_ticket_query_t  q = { .scope = scope, .user_id = uid,
                             .status = status, .search = search,
                             .limit = 100 };
    ts_jw_t            w;
    json_t            *out;
    char              *text;

    ts_jw_init(&w, 64);
    assert_int_equal(ts_store_ticket_list(s, &q, &w, total), TS_OK);
    text = ts_jw_finish(&w, NULL);
    out = json_loads(text, 0, NULL);
    free(text);
    assert_true(json_is_array(out));
    return out;
}


/* A public comment (internal 0) or an internal note, by author, at now;
 * a public one by staff (role not "user") is a first response. */
static ts_rc_e
comment(ts_store_t *s, const char *ticket, const char *id,
    const char *author, const char *text, const char *role, int internal,
    int64_t now, int64_t max)
{
    ts_comment_new_t  c;

    memset(&c, 0, sizeof(c));
    c.id = id;
    c.author = author;
    c.text = text;
    c.role = role;
    c.internal = internal;
    c.first_response = !internal && strcmp(role, "user") != 0;
    return ts_store_comment_add(s, ticket, &c, now, max, NULL, 0);
}


static void
ticket_lists_scope_filter_and_count_from_counters(void **state)
{
    fixture_t         *f = *state;
    ts_oid_t           u1, u2, t1, t2, t3;
    int64_t            total;
    json_t            *out;
    ts_job_new_t       job = { .kind = "triage" };
    ts_job_counts_t    jc;
    ts_ticket_keys_t   k;

    assert_int_equal(signup(f->s, "amy", "amy@x.io", NULL, u1), TS_OK);
    assert_int_equal(signup(f->s, "ben", "ben@x.io", NULL, u2), TS_OK);
    job.payload = json_pack("{s:s}", "ticketId", "x");
    ts_oid_new(t1);
    ts_oid_new(t2);
    ts_oid_new(t3);
    assert_int_equal(ts_store_ticket_create(f->s, t1, "50% off", "d", u1,
                                            1000, &job, 1), TS_OK);
    assert_int_equal(ts_store_ticket_create(f->s, t2, "plain", "under_score",
                                            u1, 2000, NULL, 0), TS_OK);
    assert_int_equal(ts_store_ticket_create(f->s, t3, "other", "d", u2, 3000,
                                            NULL, 0), TS_OK);
    json_decref(job.payload);

    out = list(f->s, TS_SCOPE_ALL, NULL, NULL, NULL, &total);
    assert_int_equal(total, 3);
    /* newest update first */
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(out, 0), "_id")), t3);
    json_decref(out);

    out = list(f->s, TS_SCOPE_CREATOR, u1, NULL, NULL, &total);
    assert_int_equal(total, 2);
    json_decref(out);

    /* LIKE wildcards are literal */
    out = list(f->s, TS_SCOPE_ALL, NULL, NULL, "%", &total);
    assert_int_equal(total, 1);
    json_decref(out);
    out = list(f->s, TS_SCOPE_ALL, NULL, NULL, "_", &total);
    assert_int_equal(total, 1);
    json_decref(out);
    out = list(f->s, TS_SCOPE_ALL, NULL, NULL, "PLAIN", &total);
    assert_int_equal(total, 1);
    json_decref(out);

    /* the counter follows status changes; the stats job dedupes */
    job.kind = "stats";
    job.dedupe_key = "stats:t1";
    job.payload = json_pack("{}");
    assert_int_equal(ts_store_ticket_set_status(f->s, t1, "Completed", u1,
                                                4000, 0, &job, 1), TS_OK);
    assert_int_equal(ts_store_ticket_set_status(f->s, t1, "To-Do", u1, 5000,
                                                0, NULL, 0), TS_OK);
    assert_int_equal(ts_store_ticket_set_status(f->s, t1, "Completed", u1,
                                                6000, 0, &job, 1), TS_OK);
    json_decref(job.payload);
    out = list(f->s, TS_SCOPE_ALL, NULL, "Completed", NULL, &total);
    assert_int_equal(total, 1);
    json_decref(out);
    out = list(f->s, TS_SCOPE_ALL, NULL, "To-Do", NULL, &total);
    assert_int_equal(total, 2);
    json_decref(out);
    assert_int_equal(ts_store_job_counts(f->s, &jc), TS_OK);
    assert_int_equal(jc.pending, 2 + 1 + 1);   /* 2 welcome, triage, stats */

    /* moderator scope: created by or assigned to */
    out = list(f->s, TS_SCOPE_MODERATOR, u2, NULL, NULL, &total);
    assert_int_equal(total, 1);
    json_decref(out);

    assert_int_equal(comment(f->s, t3, t1, u2, "hello", "user", 0, 7000, 2),
                     TS_OK);
    assert_int_equal(ts_store_ticket_get(f->s, t3, 1, &out, &k), TS_OK);
    assert_int_equal(k.comments, 1);
    assert_string_equal(k.created_by, u2);
    assert_string_equal(k.assigned_to, "");
    assert_int_equal(json_array_size(json_object_get(out, "comments")), 1);
    json_decref(out);
    assert_int_equal(ts_store_ticket_get(f->s, "bad", 0, NULL, NULL),
                     TS_NOT_FOUND);
}


static void
one_pending_request_and_decisions_are_final(void **state)
{
    fixture_t  *f = *state;
    ts_oid_t    u, r1, r2;
    json_t     *skills = json_pack("[s]", "go"), *doc;
    ts_user_t   user;
    int64_t     rej;

    assert_int_equal(signup(f->s, "cat", "cat@x.io", NULL, NULL), TS_OK);
    assert_int_equal(signup(f->s, "dog", "dog@x.io", NULL, u), TS_OK);
    ts_oid_new(r1);
    ts_oid_new(r2);
    assert_int_equal(ts_store_modreq_create(f->s, r1, u, "dog", "dog@x.io",
                                            skills, 1000, NULL, 0), TS_OK);
    assert_int_equal(ts_store_modreq_create(f->s, r2, u, "dog", "dog@x.io",
                                            skills, 2000, NULL, 0),
                     TS_CONFLICT);
    assert_int_equal(ts_store_modreq_decide(f->s, r1, 0, u, 3000, NULL, 0),
                     TS_OK);
    assert_int_equal(ts_store_modreq_decide(f->s, r1, 1, u, 3000, NULL, 0),
                     TS_CONFLICT);
    assert_int_equal(ts_store_modreq_decide(f->s, r2, 1, u, 3000, NULL, 0),
                     TS_NOT_FOUND);
    assert_int_equal(ts_store_modreq_last_rejection(f->s, u, &rej), TS_OK);
    assert_int_equal(rej, 3000);

    /* after a rejection a new request may be stored, and accepted */
    assert_int_equal(ts_store_modreq_create(f->s, r2, u, "dog", "dog@x.io",
                                            skills, 4000, NULL, 0), TS_OK);
    assert_int_equal(ts_store_modreq_latest(f->s, u, &doc), TS_OK);
    assert_string_equal(json_string_value(json_object_get(doc, "_id")), r2);
    json_decref(doc);
    assert_int_equal(ts_store_modreq_decide(f->s, r2, 1, u, 5000, NULL, 0),
                     TS_OK);
    assert_int_equal(ts_store_user_by_id(f->s, u, &user), TS_OK);
    assert_int_equal(user.role, TS_ROLE_MODERATOR);
    /* "sql" from signup, "go" from the request */
    assert_int_equal(json_array_size(user.skills), 2);
    ts_user_clear(&user);
    json_decref(skills);
}


static void
jobs_are_leased_fenced_retried_and_dead_after_the_last_attempt(void **state)
{
    fixture_t        *f = *state;
    ts_job_new_t      nj = { .kind = "email", .max_attempts = 2 };
    ts_job_t         *jobs;
    size_t            n;
    ts_oid_t          id;
    int64_t           t = 1000000;
    json_t           *list;

    nj.payload = json_pack("{s:s}", "to", "a@b.io");
    nj.run_after = t;
    assert_int_equal(ts_store_job_insert(f->s, &nj, id), TS_OK);
    json_decref(nj.payload);

    /* claimed once; a second claim inside the lease finds nothing */
    assert_int_equal(ts_store_job_claim(f->s, t, 5000, 10, 10, &jobs, &n), TS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(jobs[0].id, id);
    assert_int_equal(jobs[0].attempts, 1);
    assert_string_equal(json_string_value(json_object_get(jobs[0].payload,
                                                          "to")), "a@b.io");
    ts_jobs_free(jobs, n);
    assert_int_equal(ts_store_job_claim(f->s, t + 1000, 5000, 10, 10, &jobs, &n),
                     TS_OK);
    assert_int_equal(n, 0);
    free(jobs);

    /* the lease expires: claimed again, and the old attempt is fenced */
    assert_int_equal(ts_store_job_claim(f->s, t + 6000, 5000, 10, 10, &jobs,
                                         &n),
                     TS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(jobs[0].attempts, 2);
    ts_jobs_free(jobs, n);
    assert_int_equal(ts_store_job_done(f->s, id, 1, t + 6001), TS_NOT_FOUND);

    /* the last attempt fails: dead, listed, and retried by an admin */
    assert_int_equal(ts_store_job_fail(f->s, id, 2, "boom", 1, t + 9000,
                                       t + 6002), TS_OK);
    assert_int_equal(ts_store_job_list(f->s, "dead", 10, &list), TS_OK);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(list, 0), "lastError")), "boom");
    json_decref(list);
    assert_int_equal(ts_store_job_retry(f->s, id, t + 7000), TS_OK);
    assert_int_equal(ts_store_job_retry(f->s, id, t + 7000), TS_CONFLICT);
    assert_int_equal(ts_store_job_claim(f->s, t + 7000, 5000, 10, 10, &jobs,
                                         &n),
                     TS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(jobs[0].attempts, 1);
    ts_jobs_free(jobs, n);
    assert_int_equal(ts_store_job_done(f->s, id, 1, t + 7001), TS_OK);
}


static void
jobs_done_in_one_batch_keep_their_own_outcomes(void **state)
{
    fixture_t     *f = *state;
    ts_job_new_t   nj = { .kind = "email", .max_attempts = 3 };
    ts_job_t      *jobs, keys[3];
    ts_rc_e        rcs[3];
    ts_job_counts_t counts;
    size_t         n, i;
    int64_t        t = 2000000;

    nj.payload = json_pack("{s:s}", "to", "a@b.io");
    nj.run_after = t;
    for (i = 0; i < 3; i++) {
        assert_int_equal(ts_store_job_insert(f->s, &nj, NULL), TS_OK);
    }
    json_decref(nj.payload);
    assert_int_equal(ts_store_job_claim(f->s, t, 5000, 10, 10, &jobs, &n),
                     TS_OK);
    assert_int_equal(n, 3);
    memset(keys, 0, sizeof(keys));
    for (i = 0; i < 3; i++) {
        memcpy(keys[i].id, jobs[i].id, sizeof(keys[i].id));
        keys[i].attempts = jobs[i].attempts;
    }
    ts_jobs_free(jobs, n);
    keys[1].attempts = 7;               /* a lease lost meanwhile */
    assert_int_equal(ts_store_jobs_done(f->s, keys, 3, t + 10, rcs), TS_OK);
    assert_int_equal(rcs[0], TS_OK);
    assert_int_equal(rcs[1], TS_NOT_FOUND);
    assert_int_equal(rcs[2], TS_OK);
    assert_int_equal(ts_store_job_counts(f->s, &counts), TS_OK);
    assert_int_equal(counts.done, 2);
    assert_int_equal(counts.running, 1);
    assert_int_equal(counts.by_kind[ts_job_kind_index("email")][2], 2);
    assert_int_equal(counts.by_kind[ts_job_kind_index("email")][1], 1);
    /* nothing to record is no transaction at all */
    assert_int_equal(ts_store_jobs_done(f->s, keys, 0, t + 11, rcs), TS_OK);

    /* a kind this build does not know (a newer version's) counts as other */
    nj.kind = "archive";
    nj.payload = json_pack("{s:s}", "ticket", "x");
    assert_int_equal(ts_store_job_insert(f->s, &nj, NULL), TS_OK);
    json_decref(nj.payload);
    assert_int_equal(ts_store_job_counts(f->s, &counts), TS_OK);
    assert_int_equal(counts.pending, 1);
    assert_int_equal(counts.by_kind[TS_JOB_KINDS - 1][0], 1);
    assert_string_equal(ts_job_kind_name(TS_JOB_KINDS - 1), "other");
}


/* Finished jobs go after their retention, in batches; the rest stays. */
static void
finished_jobs_are_purged_after_their_retention_in_batches(void **state)
{
    fixture_t        *f = *state;
    ts_job_new_t      nj = { .kind = "email", .max_attempts = 1 };
    ts_job_counts_t   c;
    ts_job_t         *jobs;
    ts_oid_t          id[6];
    size_t            n, i;
    int64_t           t = ts_now_ms(), removed;

    /* createdAt is the real clock: every time below is after it */
    nj.payload = json_pack("{s:s}", "to", "a@b.io");
    for (i = 0; i < 6; i++) {
        nj.run_after = i == 5 ? t + 3600000 : 0;      /* 5: stays pending */
        assert_int_equal(ts_store_job_insert(f->s, &nj, id[i]), TS_OK);
    }
    json_decref(nj.payload);
    /* inserted at the real clock: claimed a while after it */
    assert_int_equal(ts_store_job_claim(f->s, t + 5000, 60000, 10, 10, &jobs,
                                        &n), TS_OK);
    assert_int_equal(n, 5);
    ts_jobs_free(jobs, n);

    /* 0, 1: done long ago; 2: done just now; 3: dead long ago;
     * 4: still running */
    assert_int_equal(ts_store_job_done(f->s, id[0], 1, t + 10), TS_OK);
    assert_int_equal(ts_store_job_done(f->s, id[1], 1, t + 20), TS_OK);
    assert_int_equal(ts_store_job_done(f->s, id[2], 1, t + 9000), TS_OK);
    assert_int_equal(ts_store_job_fail(f->s, id[3], 1, "boom", 1, 0, t + 30),
                     TS_OK);

    /* nothing asked, nothing done */
    assert_int_equal(ts_store_job_purge(f->s, 0, 0, 10, &removed), TS_OK);
    assert_int_equal(removed, 0);

    /* done before t + 5000, one per call: a full batch says "maybe more" */
    assert_int_equal(ts_store_job_purge(f->s, t + 5000, 0, 1, &removed),
                     TS_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(ts_store_job_purge(f->s, t + 5000, 0, 1, &removed),
                     TS_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(ts_store_job_purge(f->s, t + 5000, 0, 1, &removed),
                     TS_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(ts_store_job_counts(f->s, &c), TS_OK);
    assert_int_equal(c.done, 1);
    assert_int_equal(c.dead, 1);

    /* dead jobs only with their own cutoff */
    assert_int_equal(ts_store_job_purge(f->s, t + 5000, t + 5000, 10,
                                        &removed), TS_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(ts_store_job_retry(f->s, id[3], t + 40), TS_NOT_FOUND);

    /* a cutoff after everything: only finished jobs ever go */
    assert_int_equal(ts_store_job_purge(f->s, t + 3600000 * 2,
                                        t + 3600000 * 2, 10, &removed),
                     TS_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(ts_store_job_counts(f->s, &c), TS_OK);
    assert_int_equal(c.done, 0);
    assert_int_equal(c.dead, 0);
    assert_int_equal(c.running, 1);
    assert_int_equal(c.pending, 1);
}


/* The comments of a ticket as read by a reader with or without the
 * internal notes: how many, and the number of internal ones. */
static void
count_comments(ts_store_t *s, const char *ticket, int with_internal,
    size_t *n, size_t *internal)
{
    ts_jw_t   w;
    char     *text;
    json_t   *arr, *c;
    size_t    i;

    ts_jw_init(&w, 256);
    assert_int_equal(ts_store_comment_list(s, ticket, with_internal, &w),
                     TS_OK);
    text = ts_jw_finish(&w, NULL);
    arr = json_loads(text, 0, NULL);
    free(text);
    assert_true(json_is_array(arr));
    *n = json_array_size(arr);
    *internal = 0;
    json_array_foreach(arr, i, c) {
        /* a public comment has no "internal" key at all */
        assert_true(json_object_get(c, "internal") == NULL
                    || json_is_true(json_object_get(c, "internal")));
        *internal += json_is_true(json_object_get(c, "internal"));
    }
    json_decref(arr);
}


static void
internal_notes_first_response_and_unmodified_since(void **state)
{
    fixture_t         *f = *state;
    ts_oid_t           u, m, t1, c1, c2, c3, c4;
    ts_ticket_keys_t   k;
    ts_comment_new_t   cn;
    json_t            *doc;
    size_t             n, internal;

    assert_int_equal(signup(f->s, "root", "root@x.io", NULL, NULL), TS_OK);
    assert_int_equal(signup(f->s, "mia", "mia@x.io", NULL, m), TS_OK);
    assert_int_equal(signup(f->s, "uma", "uma@x.io", NULL, u), TS_OK);
    assert_int_equal(ts_store_user_update(f->s, m, TS_ROLE_MODERATOR, NULL),
                     TS_OK);
    ts_oid_new(t1);
    assert_int_equal(ts_store_ticket_create(f->s, t1, "Refund", "billing",
                                            u, 1000, NULL, 0), TS_OK);

    /* an internal note: kept, flagged, not counted as public, no first
     * response, updatedAt unmoved */
    ts_oid_new(c1);
    assert_int_equal(comment(f->s, t1, c1, m, "check the invoice",
                             "moderator", 1, 2000, 10), TS_OK);
    assert_int_equal(ts_store_ticket_get(f->s, t1, 1, &doc, &k), TS_OK);
    assert_int_equal(k.comments, 0);
    assert_int_equal(k.updated_at, 1000);
    assert_true(json_is_null(json_object_get(doc, "firstResponseAt")));
    assert_int_equal(json_array_size(json_object_get(doc, "comments")), 1);
    assert_true(json_is_true(json_object_get(json_array_get(
        json_object_get(doc, "comments"), 0), "internal")));
    json_decref(doc);
    count_comments(f->s, t1, 1, &n, &internal);
    assert_int_equal(n, 1);
    assert_int_equal(internal, 1);
    count_comments(f->s, t1, 0, &n, &internal);
    assert_int_equal(n, 0);

    /* the first public staff comment stamps firstResponseAt, once */
    ts_oid_new(c2);
    assert_int_equal(comment(f->s, t1, c2, m, "on it", "moderator", 0, 3000,
                             10), TS_OK);
    ts_oid_new(c3);
    assert_int_equal(comment(f->s, t1, c3, m, "still on it", "moderator", 0,
                             4000, 10), TS_OK);
    assert_int_equal(ts_store_ticket_get(f->s, t1, 0, &doc, &k), TS_OK);
    assert_int_equal(k.comments, 2);
    assert_int_equal(k.updated_at, 4000);
    assert_string_equal(json_string_value(json_object_get(doc,
                        "firstResponseAt")), "1970-01-01T00:00:03.000Z");
    json_decref(doc);
    count_comments(f->s, t1, 0, &n, &internal);
    assert_int_equal(n, 2);
    assert_int_equal(internal, 0);

    /* compare-and-set: a writer that loaded it before 4000 is refused and
     * nothing is written; one that saw 4000 passes */
    ts_oid_new(c4);
    memset(&cn, 0, sizeof(cn));
    cn.id = c4;
    cn.author = u;
    cn.text = "thanks";
    cn.role = "user";
    cn.unmodified_since = 3999;
    assert_int_equal(ts_store_comment_add(f->s, t1, &cn, 5000, 10, NULL, 0),
                     TS_STALE);
    assert_int_equal(ts_store_ticket_set_status(f->s, t1, "Completed", NULL,
                                                5000, 3999, NULL, 0), TS_STALE);
    assert_int_equal(ts_store_ticket_get(f->s, t1, 0, NULL, &k), TS_OK);
    assert_int_equal(k.comments, 2);
    assert_int_equal(k.updated_at, 4000);
    assert_string_equal(k.status, "To-Do");
    cn.unmodified_since = 4000;
    assert_int_equal(ts_store_comment_add(f->s, t1, &cn, 5000, 10, NULL, 0),
                     TS_OK);
    assert_int_equal(ts_store_ticket_set_status(f->s, t1, "Completed", NULL,
                                                6000, 5000, NULL, 0), TS_OK);
    /* a missing ticket is still not found, precondition or not */
    ts_oid_new(c4);
    assert_int_equal(ts_store_ticket_set_status(f->s, c4, "Completed", NULL,
                                                6000, 1, NULL, 0), TS_NOT_FOUND);
    cn.id = c1;
    assert_int_equal(ts_store_comment_add(f->s, c4, &cn, 6000, 10, NULL, 0),
                     TS_NOT_FOUND);
}


static void
triage_once_assign_once_stats_once(void **state)
{
    fixture_t        *f = *state;
    ts_oid_t          u, m1, m2, t1;
    ts_assign_cfg_t   cfg;
    json_t           *triage, *meta, *res = NULL;
    ts_user_t         mod;
    json_t           *skills;
    int               counted;

    assert_int_equal(signup(f->s, "root", "root@x.io", NULL, NULL), TS_OK);
    assert_int_equal(signup(f->s, "mia", "mia@x.io", NULL, m1), TS_OK);
    assert_int_equal(signup(f->s, "max", "max@x.io", NULL, m2), TS_OK);
    assert_int_equal(signup(f->s, "uma", "uma@x.io", NULL, u), TS_OK);
    skills = json_pack("[s]", "billing");
    assert_int_equal(ts_store_user_update(f->s, m1, TS_ROLE_MODERATOR,
                                          skills), TS_OK);
    json_decref(skills);
    skills = json_pack("[s]", "css");
    assert_int_equal(ts_store_user_update(f->s, m2, TS_ROLE_MODERATOR,
                                          skills), TS_OK);
    json_decref(skills);

    ts_oid_new(t1);
    assert_int_equal(ts_store_ticket_create(f->s, t1, "Refund", "billing",
                                            u, 1000, NULL, 0), TS_OK);
    triage = json_pack("{s:s, s:s, s:s, s:[s]}", "summary", "s",
                       "priority", "High", "helpfulNotes", "",
                       "relatedSkills", "billing");
    meta = json_pack("{s:s}", "provider", "offline");
    assert_int_equal(ts_store_ticket_set_triage(f->s, t1, triage, meta,
                                                "offline", 0, NULL, 2000,
                                                NULL, 0),
                     TS_OK);
    assert_int_equal(ts_store_ticket_set_triage(f->s, t1, triage, meta,
                                                "offline", 0, NULL, 2000,
                                                NULL, 0),
                     TS_CONFLICT);
    json_decref(triage);
    json_decref(meta);

    ts_assign_cfg_default(&cfg);
    assert_int_equal(ts_store_ticket_assign(f->s, t1, NULL, &cfg,
                                            ts_job_mail_assigned, 3000, &res),
                     TS_OK);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(res, "assignedTo"), "_id")), m1);
    assert_string_equal(json_string_value(json_object_get(res, "status")),
                        "In Progress");
    json_decref(res);
    res = NULL;
    assert_int_equal(ts_store_ticket_assign(f->s, t1, NULL, &cfg,
                                            ts_job_mail_assigned, 3000, &res),
                     TS_CONFLICT);

    assert_int_equal(ts_store_ticket_stats(f->s, t1, m1, 10.0, &counted),
                     TS_OK);
    assert_int_equal(counted, 1);
    assert_int_equal(ts_store_ticket_stats(f->s, t1, m1, 10.0, &counted),
                     TS_OK);
    assert_int_equal(counted, 0);
    assert_int_equal(ts_store_user_by_id(f->s, m1, &mod), TS_OK);
    assert_int_equal(mod.total_resolved, 1);
    assert_true(mod.avg_resolution_hours > 9.99
                && mod.avg_resolution_hours < 10.01);
    assert_true(mod.last_assigned_at == 3000);
    ts_user_clear(&mod);
}


/* Assignment by hand is a compare-and-set the assignment job respects; a
 * hand-back clears it and the next job leaves out who handed it back; a
 * demotion and the absence rule hand back open (To-Do) tickets. */
static void
hand_assignment_hand_back_demotion_and_absence(void **state)
{
    fixture_t        *f = *state;
    ts_oid_t          root, m1, m2, u, t1, nope;
    ts_assign_cfg_t   cfg;
    ts_ticket_keys_t  k;
    ts_job_new_t      job;
    ts_user_t         usr;
    json_t           *triage, *meta, *skills, *manual, *res = NULL;
    json_t           *exclude, *handed = NULL, *absent = NULL, *why;
    char              key[TS_JOB_KEY_LEN];

    assert_int_equal(signup(f->s, "root", "root@x.io", NULL, root), TS_OK);
    assert_int_equal(signup(f->s, "mia", "mia@x.io", NULL, m1), TS_OK);
    assert_int_equal(signup(f->s, "max", "max@x.io", NULL, m2), TS_OK);
    assert_int_equal(signup(f->s, "uma", "uma@x.io", NULL, u), TS_OK);
    skills = json_pack("[s]", "billing");
    assert_int_equal(ts_store_user_update(f->s, m1, TS_ROLE_MODERATOR,
                                          skills), TS_OK);
    json_decref(skills);
    assert_int_equal(ts_store_user_update(f->s, m2, TS_ROLE_MODERATOR, NULL),
                     TS_OK);
    /* the admin is away for good: only the moderators compete */
    assert_int_equal(ts_store_user_set_status(f->s, root,
                                              TS_PRESENCE_OFFLINE, 1, 1),
                     TS_OK);
    assert_int_equal(ts_store_user_set_status(f->s, m1, TS_PRESENCE_ONLINE,
                                              1000, 1), TS_OK);
    assert_int_equal(ts_store_user_set_status(f->s, m2, TS_PRESENCE_ONLINE,
                                              1000, 1), TS_OK);

    ts_oid_new(t1);
    assert_int_equal(ts_store_ticket_create(f->s, t1, "Refund", "billing",
                                            u, 1000, NULL, 0), TS_OK);
    triage = json_pack("{s:s, s:s, s:s, s:[s]}", "summary", "s",
                       "priority", "High", "helpfulNotes", "",
                       "relatedSkills", "billing");
    meta = json_pack("{s:s}", "provider", "offline");
    assert_int_equal(ts_store_ticket_set_triage(f->s, t1, triage, meta,
                                                "offline", 0, NULL, 2000, NULL,
                                                0),
                     TS_OK);
    json_decref(triage);
    json_decref(meta);

    /* by hand to the one without the skill; the job leaves it alone */
    manual = json_pack("{s:b}", "manual", 1);
    ts_oid_new(nope);
    assert_int_equal(ts_store_ticket_set_assignee(f->s, nope, "", m2, root,
                                                  manual, 3000, NULL, 0),
                     TS_NOT_FOUND);
    assert_int_equal(ts_store_ticket_set_assignee(f->s, t1, m1, m2, root,
                                                  manual, 3000, NULL, 0),
                     TS_CONFLICT);             /* it is not m1's */
    assert_int_equal(ts_store_ticket_set_assignee(f->s, t1, "", m2, root,
                                                  manual, 3000, NULL, 0),
                     TS_OK);
    json_decref(manual);
    ts_assign_cfg_default(&cfg);
    assert_int_equal(ts_store_ticket_assign(f->s, t1, NULL, &cfg,
                                            ts_job_mail_assigned, 3500, &res),
                     TS_CONFLICT);
    assert_int_equal(ts_store_ticket_get(f->s, t1, 0, NULL, &k), TS_OK);
    assert_string_equal(k.assigned_to, m2);
    assert_string_equal(k.status, "To-Do");    /* by hand: left as it was */

    /* m2 hands it back: In Progress returns to To-Do, the job again */
    assert_int_equal(ts_store_ticket_set_status(f->s, t1, "In Progress",
                                                m2, 3600, 0, NULL, 0), TS_OK);
    assert_int_equal(ts_job_reassign(&job, key, t1, m2, 4000), 0);
    assert_int_equal(ts_store_ticket_set_assignee(f->s, t1, m2, NULL, m2,
                                                  NULL, 4000, &job, 1),
                     TS_OK);
    json_decref(job.payload);
    assert_int_equal(ts_store_ticket_get(f->s, t1, 0, NULL, &k), TS_OK);
    assert_string_equal(k.assigned_to, "");
    assert_string_equal(k.status, "To-Do");
    /* m1 would win on skill; with m1 left out, m2 gets it */
    exclude = json_pack("[s]", m1);
    assert_int_equal(ts_store_ticket_assign(f->s, t1, exclude, &cfg,
                                            ts_job_mail_assigned, 4500, &res),
                     TS_OK);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(res, "assignedTo"), "_id")), m2);
    assert_true(json_equal(json_object_get(json_object_get(res,
                                                           "assignment"),
                                           "excluded"), exclude));
    json_decref(exclude);
    json_decref(res);

    /* demoting m2 hands it back in the same write */
    why = json_pack("{s:s}", "rule", "demotion");
    assert_int_equal(ts_store_user_handback(f->s, m2, 1, NULL, 0, root, why,
                                            ts_job_reassign, 5000, &handed),
                     TS_OK);
    json_decref(why);
    assert_int_equal(json_array_size(handed), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(handed, 0), "ticketId")), t1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(handed, 0), "status")), "To-Do");
    json_decref(handed);
    assert_int_equal(ts_store_user_by_id(f->s, m2, &usr), TS_OK);
    assert_int_equal(usr.role, TS_ROLE_USER);
    ts_user_clear(&usr);
    assert_int_equal(ts_store_ticket_get(f->s, t1, 0, NULL, &k), TS_OK);
    assert_string_equal(k.assigned_to, "");

    /* absence: m1, dnd since 6000, holds it To-Do */
    assert_int_equal(ts_store_ticket_set_assignee(f->s, t1, "", m1, root,
                                                  NULL, 5500, NULL, 0),
                     TS_OK);
    assert_int_equal(ts_store_user_set_status(f->s, m1, TS_PRESENCE_DND,
                                              6000, 1), TS_OK);
    assert_int_equal(ts_store_absent_assignees(f->s, 5999, &absent), TS_OK);
    assert_int_equal(json_array_size(absent), 0);
    json_decref(absent);
    assert_int_equal(ts_store_absent_assignees(f->s, 6001, &absent), TS_OK);
    assert_int_equal(json_array_size(absent), 1);
    assert_string_equal(json_string_value(json_array_get(absent, 0)), m1);
    json_decref(absent);
    why = json_pack("{s:s}", "rule", "absence");
    assert_int_equal(ts_store_user_handback(f->s, m1, 0, NULL, 1, NULL, why,
                                            ts_job_reassign, 7000, &handed),
                     TS_OK);
    json_decref(why);
    assert_int_equal(json_array_size(handed), 1);
    json_decref(handed);
    assert_int_equal(ts_store_user_by_id(f->s, m1, &usr), TS_OK);
    assert_int_equal(usr.role, TS_ROLE_MODERATOR);      /* not demoted */
    ts_user_clear(&usr);
    assert_int_equal(ts_store_absent_assignees(f->s, 6001, &absent), TS_OK);
    assert_int_equal(json_array_size(absent), 0);      /* nothing left */
    json_decref(absent);

    /* the history: each assignee change with its actor, from and to, and
     * the status each hand-back moved, in write order */
    {
        struct { const char *actor, *from, *to, *rule; } want[] = {
            { root, NULL, m2, NULL },          /* by hand */
            { m2, m2, NULL, NULL },            /* handed back */
            { NULL, NULL, m2, NULL },          /* the job, without m1 */
            { root, m2, NULL, "demotion" },
            { root, NULL, m1, NULL },          /* by hand */
            { NULL, m1, NULL, "absence" },
        };
        json_t       *h = NULL, *e, *v;
        const char   *act;
        size_t        i, n = 0, back = 0;

        assert_int_equal(ts_store_ticket_history(f->s, t1, &h), TS_OK);
        json_array_foreach(h, i, e) {
            act = json_string_value(json_object_get(e, "action"));
            v = json_object_get(e, "from");
            if (strcmp(act, "status") == 0 && json_is_string(v)
                && strcmp(json_string_value(v), "In Progress") == 0)
            {
                /* m2's hand-back and the demotion; not the absence
                 * rule's, which found it To-Do */
                v = json_object_get(json_object_get(e, "actor"), "_id");
                assert_string_equal(json_string_value(json_object_get(e,
                                                      "to")), "To-Do");
                assert_string_equal(json_string_value(v),
                                    back == 0 ? m2 : root);
                back++;
            }
            if (strcmp(act, "assignee") != 0
                || json_is_true(json_object_get(e, "staffOnly")))
            {
                continue;
            }
            assert_true(n < sizeof(want) / sizeof(want[0]));
            v = json_object_get(e, "actor");
            if (want[n].actor) {
                assert_string_equal(json_string_value(json_object_get(v,
                                                      "_id")), want[n].actor);
            } else {
                assert_true(json_is_null(v));
            }
            v = json_object_get(e, "from");
            if (want[n].from) {
                assert_string_equal(json_string_value(json_object_get(v,
                                                      "_id")), want[n].from);
                assert_non_null(json_string_value(json_object_get(v,
                                                  "username")));
            } else {
                assert_true(json_is_null(v));
            }
            v = json_object_get(e, "to");
            if (want[n].to) {
                assert_string_equal(json_string_value(json_object_get(v,
                                                      "_id")), want[n].to);
            } else {
                assert_true(json_is_null(v));
            }
            if (want[n].rule) {
                assert_string_equal(json_string_value(json_object_get(
                    json_object_get(e, "explanation"), "rule")),
                    want[n].rule);
            }
            n++;
        }
        assert_int_equal(n, sizeof(want) / sizeof(want[0]));
        assert_int_equal(back, 2);
        json_decref(h);
    }
}


static ts_rc_e
signup_user(ts_store_t *s, const char *name, const char *email, ts_user_t *u,
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
    bson_t               *f = BCON_NEW("$or", "[",
                                       "{", "pendingJobs.0", "{", "$exists",
                                       BCON_BOOL(true), "}", "}",
                                       "{", "pendingHistory.0", "{", "$exists",
                                       BCON_BOOL(true), "}", "}", "]");
    int64_t               n;

    n = mongoc_collection_count_documents(col, f, NULL, NULL, NULL, NULL);
    bson_destroy(f);
    mongoc_collection_destroy(col);
    return n;
}



/* The history verbs: each write records its change once, with from/to and
 * actor, in write order; a refused write records nothing.  Canned
 * responses: create, list by title, get with owner, partial update,
 * delete. */
static void
history_is_written_with_each_change_and_canned_crud(void **state)
{
    fixture_t   *f = *state;
    ts_oid_t     u1, t1, c1, c2, owner;
    json_t      *h = NULL, *e, *doc = NULL, *triage, *meta = json_object();
    const char  *actions[] = { "created", "status", "priority", "skills",
                               "status" };
    size_t       i;

    assert_int_equal(signup(f->s, "amy", "amy@x.io", NULL, u1), TS_OK);
    ts_oid_new(t1);
    assert_int_equal(ts_store_ticket_create(f->s, t1, "t", "d", u1, 1000,
                                            NULL, 0), TS_OK);
    assert_int_equal(ts_store_ticket_set_status(f->s, t1, "In Progress", u1,
                                                2000, 0, NULL, 0), TS_OK);
    /* the same status again is no change */
    assert_int_equal(ts_store_ticket_set_status(f->s, t1, "In Progress", u1,
                                                2500, 0, NULL, 0), TS_OK);
    triage = json_pack("{s:s, s:s, s:s, s:[s]}", "summary", "s",
                       "priority", "High", "helpfulNotes", "n",
                       "relatedSkills", "billing");
    assert_int_equal(ts_store_ticket_set_triage(f->s, t1, triage, meta,
                         "offline", 0, NULL, 3000, NULL, 0), TS_OK);
    /* triaged already: refused, nothing recorded */
    assert_int_equal(ts_store_ticket_set_triage(f->s, t1, triage, meta,
                         "offline", 0, NULL, 3500, NULL, 0), TS_CONFLICT);
    json_decref(triage);
    json_decref(meta);
    assert_int_equal(ts_store_ticket_set_status(f->s, t1, "Completed", NULL,
                                                4000, 0, NULL, 0), TS_OK);
    assert_int_equal(ts_store_ticket_set_status(f->s, "aaaaaaaaaaaaaaaaaaaaaaaa",
                                                "Completed", u1, 4000, 0, NULL,
                                                0), TS_NOT_FOUND);

    assert_int_equal(ts_store_ticket_history(f->s, t1, &h), TS_OK);
    assert_int_equal(json_array_size(h), 5);
    json_array_foreach(h, i, e) {
        assert_string_equal(json_string_value(json_object_get(e, "action")),
                            actions[i]);
        assert_true(json_is_false(json_object_get(e, "staffOnly")));
    }
    e = json_array_get(h, 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(
                            e, "actor"), "username")), "amy");
    assert_true(json_is_null(json_object_get(e, "from")));
    assert_string_equal(json_string_value(json_object_get(e, "to")), "To-Do");
    e = json_array_get(h, 1);
    assert_string_equal(json_string_value(json_object_get(e, "from")),
                        "To-Do");
    assert_string_equal(json_string_value(json_object_get(e, "to")),
                        "In Progress");
    e = json_array_get(h, 2);
    assert_true(json_is_null(json_object_get(e, "actor")));
    assert_true(json_is_null(json_object_get(e, "from")));
    assert_string_equal(json_string_value(json_object_get(e, "to")), "High");
    e = json_array_get(h, 3);
    assert_int_equal(json_array_size(json_object_get(e, "from")), 0);
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(e, "to"), 0)), "billing");
    e = json_array_get(h, 4);
    assert_true(json_is_null(json_object_get(e, "actor")));
    json_decref(h);
    assert_int_equal(ts_store_ticket_history(f->s, "bad", &h), TS_NOT_FOUND);

    /* canned responses */
    ts_oid_new(c1);
    ts_oid_new(c2);
    assert_int_equal(ts_store_canned_create(f->s, c1, u1, "zeta", "body z",
                                            1000), TS_OK);
    assert_int_equal(ts_store_canned_create(f->s, c2, u1, "Alpha", "body a",
                                            2000), TS_OK);
    assert_int_equal(ts_store_canned_list(f->s, &doc), TS_OK);
    assert_int_equal(json_array_size(doc), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(doc, 0), "title")), "Alpha");
    json_decref(doc);
    assert_int_equal(ts_store_canned_update(f->s, c1, NULL, "new body",
                                            3000), TS_OK);
    assert_int_equal(ts_store_canned_get(f->s, c1, &doc, owner), TS_OK);
    assert_string_equal(owner, u1);
    assert_string_equal(json_string_value(json_object_get(doc, "title")),
                        "zeta");
    assert_string_equal(json_string_value(json_object_get(doc, "body")),
                        "new body");
    assert_string_equal(json_string_value(json_object_get(json_object_get(
                            doc, "owner"), "username")), "amy");
    json_decref(doc);
    assert_int_equal(ts_store_canned_delete(f->s, c1), TS_OK);
    assert_int_equal(ts_store_canned_delete(f->s, c1), TS_NOT_FOUND);
    assert_int_equal(ts_store_canned_update(f->s, c1, "x", NULL, 4000),
                     TS_NOT_FOUND);
    assert_int_equal(ts_store_canned_get(f->s, c1, NULL, owner),
                     TS_NOT_FOUND);
    assert_int_equal(ts_store_canned_get(f->s, "nope", NULL, owner),
                     TS_NOT_FOUND);
}


/*
 * A ticket's whole life through the store, every operation's return code
 * on the way (from the MongoDB backend's former self-test, now run on
 * both backends): users and lockout, a ticket and its deduplicated triage
 * job, claims (later stages first) fenced by attempts, retry of a dead
 * job, purge, triage once, assignment once, comments up to the limit,
 * stats once, list scope and literal search, one pending moderator
 * request, analytics, housekeeping -- and, on MongoDB, no document left
 * with a job in its outbox (the write-then-flush without transactions).
 */
#define CHECK(cond)  assert_true(cond)

static void
a_ticket_s_life_through_every_operation(void **state)
{
    fixture_t          *f = *state;
    ts_store_t         *s = f->s;
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
    char               *title = NULL, *desc = NULL, *list;

    CHECK(ts_store_ping(s) == TS_OK);

    /* users: first is admin, uniqueness ignores case */
    CHECK(signup_user(s, "Alice", "alice@example.com", &a, &which) == TS_OK);
    CHECK(a.role == TS_ROLE_ADMIN);
    CHECK(signup_user(s, "bob", "bob@example.com", &b, &which) == TS_OK);
    CHECK(b.role == TS_ROLE_USER);
    CHECK(signup_user(s, "other", "ALICE@example.com", &x, &which) == TS_CONFLICT);
    CHECK(which && strcmp(which, "email") == 0);
    ts_user_clear(&x);
    CHECK(signup_user(s, "ALICE", "new@example.com", &x, &which) == TS_CONFLICT);
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
    CHECK(ts_store_ticket_text(s, tid, &title, &desc, &triaged, NULL)
          == TS_OK
          && !triaged && strcmp(desc, "Payment fails") == 0);
    free(title);
    free(desc);
    triage_res = json_pack("{s:s, s:s, s:s, s:[s]}", "summary", "sum",
                           "priority", "High", "helpfulNotes", "notes",
                           "relatedSkills", "billing");
    meta = json_pack("{s:s}", "provider", "offline");
    CHECK(ts_store_ticket_set_triage(s, tid, triage_res, meta, "offline", 0,
                                     NULL, ts_now_ms(), NULL, 0) == TS_OK);
    CHECK(ts_store_ticket_set_triage(s, tid, triage_res, meta, "offline", 0,
                                     NULL, ts_now_ms(), NULL, 0)
          == TS_CONFLICT);
    json_decref(triage_res);
    json_decref(meta);
    skills = json_pack("[s]", "Billing");
    CHECK(signup_user(s, "carol", "carol@example.com", &c, &which) == TS_OK);
    CHECK(ts_store_user_update(s, c.id, TS_ROLE_MODERATOR, skills) == TS_OK);
    json_decref(skills);
    ts_assign_cfg_default(&cfg);
    CHECK(ts_store_ticket_assign(s, tid, NULL, &cfg, ts_job_mail_assigned,
                                 ts_now_ms(), &res) == TS_OK);
    CHECK(res && json_is_object(json_object_get(res, "assignedTo")));
    CHECK(res && strcmp(json_string_value(json_object_get(res, "status")),
                        "In Progress") == 0);
    json_decref(res);
    res = NULL;
    CHECK(ts_store_ticket_assign(s, tid, NULL, &cfg, ts_job_mail_assigned,
                                 ts_now_ms(), &res)
          == TS_CONFLICT);

    /* comments, the document, stats once */
    ts_oid_new(cid);
    CHECK(comment(s, tid, cid, c.id, "Looking", "moderator", 0, ts_now_ms(),
                  2) == TS_OK);
    /* the limit: a second comment fits, a third is a conflict */
    ts_oid_new(cid);
    CHECK(comment(s, tid, cid, c.id, "Second", "moderator", 0, ts_now_ms(),
                  2) == TS_OK);
    ts_oid_new(cid);
    CHECK(comment(s, tid, cid, c.id, "Third", "moderator", 0, ts_now_ms(),
                  2) == TS_CONFLICT);
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
    CHECK(ts_store_ticket_set_status(s, tid, "Completed", NULL,
                                     ts_now_ms(), 0, NULL, 0) == TS_OK);
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

    if (!f->sqlite) {
        mongoc_uri_t     *mu = mongoc_uri_new(f->uri);
        mongoc_client_t  *raw = mongoc_client_new_from_uri(mu);
        const char       *db = mongoc_uri_get_database(mu);

        CHECK(outboxes(raw, db, "users") == 0);
        CHECK(outboxes(raw, db, "tickets") == 0);
        CHECK(outboxes(raw, db, "moderatorrequests") == 0);
        mongoc_client_destroy(raw);
        mongoc_uri_destroy(mu);
    }
    ts_user_clear(&a);
    ts_user_clear(&b);
    ts_user_clear(&c);
}

#undef CHECK

/* A job for the password operations: stored only with their write. */
static ts_job_new_t
mail_job(const char *tmpl)
{
    ts_job_new_t  job = { .kind = "email", .max_attempts = 8 };

    job.payload = json_pack("{s:s, s:s}", "template", tmpl,
                            "to", "pat@example.com");
    return job;
}


static int64_t
pending_jobs(ts_store_t *s)
{
    ts_job_counts_t  c;

    memset(&c, 0, sizeof(c));
    assert_int_equal(ts_store_job_counts(s, &c), TS_OK);
    return c.pending;
}


static void
passwords_change_conditionally_and_reset_tokens_are_single_use(void **state)
{
    fixture_t     *f = *state;
    /* h1 is signup()'s; h2, h3 differ from it in the first character */
    const char    *h1 = "$2b$04$abcdefghijklmnopqrstuv"
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
    const char    *h2 = "$2b$04$bbcdefghijklmnopqrstuv"
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
    const char    *h3 = "$2b$04$cbcdefghijklmnopqrstuv"
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
    char           tok[TS_RESET_TOKEN_LEN + 1], hash[TS_RESET_HASH_HEX + 1];
    char           tok2[TS_RESET_TOKEN_LEN + 1], hash2[TS_RESET_HASH_HEX + 1];
    ts_job_new_t   job;
    ts_oid_t       id;
    ts_user_t      u;
    int64_t        epoch = -1, jobs, now = ts_now_ms();

    assert_int_equal(signup(f->s, "pat", "pat@example.com", NULL, id),
                     TS_OK);
    assert_int_equal(ts_store_user_by_id(f->s, id, &u), TS_OK);
    assert_string_equal(u.password, h1);
    assert_int_equal(u.session_epoch, 0);
    ts_user_clear(&u);
    jobs = pending_jobs(f->s);

    /* a change conditioned on a hash no longer stored writes nothing */
    job = mail_job("password_changed");
    assert_int_equal(ts_store_user_set_password(f->s, id, h2, NULL, h3, now,
                                                &job, &epoch), TS_NOT_FOUND);
    assert_int_equal(pending_jobs(f->s), jobs);
    /* the right one: new hash, epoch + 1, its job with it */
    assert_int_equal(ts_store_user_set_password(f->s, id, h1, NULL, h2, now,
                                                &job, &epoch), TS_OK);
    json_decref(job.payload);
    assert_int_equal(epoch, 1);
    assert_int_equal(pending_jobs(f->s), jobs + 1);
    assert_int_equal(ts_store_user_by_id(f->s, id, &u), TS_OK);
    assert_string_equal(u.password, h2);
    assert_int_equal(u.session_epoch, 1);
    ts_user_clear(&u);
    /* the epoch is read by every lookup, not only by id */
    assert_int_equal(ts_store_user_by_email(f->s, "pat@example.com", &u),
                     TS_OK);
    assert_int_equal(u.session_epoch, 1);
    ts_user_clear(&u);

    /* reset tokens: the newest replaces the older one */
    assert_int_equal(ts_reset_token_new(tok, hash), 0);
    assert_int_equal(ts_reset_token_new(tok2, hash2), 0);
    assert_string_not_equal(hash, hash2);
    job = mail_job("password_reset");
    assert_int_equal(ts_store_user_reset_issue(f->s, id, hash, now + 3600000,
                                               now, &job), TS_OK);
    assert_int_equal(ts_store_user_by_reset(f->s, hash, now, &u), TS_OK);
    assert_string_equal(u.id, id);
    ts_user_clear(&u);
    assert_int_equal(ts_store_user_reset_issue(f->s, id, hash2, now + 3600000,
                                               now, &job), TS_OK);
    assert_int_equal(pending_jobs(f->s), jobs + 3);
    assert_int_equal(ts_store_user_by_reset(f->s, hash, now, &u),
                     TS_NOT_FOUND);
    assert_int_equal(ts_store_user_reset_issue(f->s, "0123456789abcdef01234567",
                                               hash, now + 3600000, now,
                                               &job), TS_NOT_FOUND);
    assert_int_equal(pending_jobs(f->s), jobs + 3);
    json_decref(job.payload);

    /* expired: not found, and a confirm conditioned on it writes nothing */
    assert_int_equal(ts_store_user_by_reset(f->s, hash2, now + 3600000, &u),
                     TS_NOT_FOUND);
    assert_int_equal(ts_store_user_set_password(f->s, id, NULL, hash2, h3,
                                                now + 3600000, NULL, NULL),
                     TS_NOT_FOUND);
    assert_int_equal(ts_store_user_set_password(f->s, id, NULL, hash, h3, now,
                                                NULL, NULL), TS_NOT_FOUND);
    /* valid: used once, gone after */
    assert_int_equal(ts_store_user_set_password(f->s, id, NULL, hash2, h3, now,
                                                NULL, &epoch), TS_OK);
    assert_int_equal(epoch, 2);
    assert_int_equal(ts_store_user_by_reset(f->s, hash2, now, &u),
                     TS_NOT_FOUND);
    assert_int_equal(ts_store_user_set_password(f->s, id, NULL, hash2, h1, now,
                                                NULL, NULL), TS_NOT_FOUND);
    assert_int_equal(ts_store_user_by_id(f->s, id, &u), TS_OK);
    assert_string_equal(u.password, h3);
    assert_int_equal(u.session_epoch, 2);
    ts_user_clear(&u);

    /* a change drops an outstanding reset token too */
    assert_int_equal(ts_store_user_reset_issue(f->s, id, hash, now + 3600000,
                                               now, NULL), TS_OK);
    assert_int_equal(ts_store_user_set_password(f->s, id, h3, NULL, h1, now,
                                                NULL, NULL), TS_OK);
    assert_int_equal(ts_store_user_by_reset(f->s, hash, now, &u),
                     TS_NOT_FOUND);
    /* malformed hashes are never looked up */
    assert_int_equal(ts_store_user_by_reset(f->s, "nothex", now, &u),
                     TS_NOT_FOUND);
}


/* The number of tickets a staff list with an SLA filter finds at now. */
static int64_t
sla_count(ts_store_t *s, const char *which, int64_t now)
{
    ts_ticket_query_t  q;
    ts_jw_t            w;
    int64_t            total = -1;

    memset(&q, 0, sizeof(q));
    q.scope = TS_SCOPE_ALL;
    q.sla = which;
    q.now = now;
    q.limit = 10;
    ts_jw_init(&w, 1024);
    if (ts_store_ticket_list(s, &q, &w, &total) != TS_OK) {
        total = -1;
    }
    ts_jw_free(&w);
    return total;
}


/*
 * SLA dates (issue 15 item 3): set with the triage result, read with the
 * ticket, moved by a priority change; the breach marked once and only
 * while the target is still due at the job's date and unmet; a staff
 * comment is the first response, the creator's is not; the list filters
 * agree with ts_sla_breached/ts_sla_due_soon; analytics counts completed
 * tickets within SLA per priority.
 */
static void
sla_dates_breach_once_first_response_and_filters(void **state)
{
    fixture_t         *f = *state;
    ts_store_t        *s = f->s;
    ts_oid_t           admin, user, t1, t2, cid;
    ts_role_e          role;
    ts_sla_cfg_t       cfg;
    ts_sla_due_t       due, due2;
    ts_ticket_keys_t   k;
    json_t            *triage, *meta, *an = NULL, *high, *hist, *e = NULL;
    int64_t            t0 = 1000000;
    size_t             i, n;

    assert_int_equal(signup(s, "ann", "ann@example.com", &role, admin),
                     TS_OK);
    assert_int_equal(signup(s, "bob", "bob@example.com", &role, user),
                     TS_OK);
    ts_oid_new(t1);
    ts_oid_new(t2);
    assert_int_equal(ts_store_ticket_create(s, t1, "a", "b", user, t0,
                                            NULL, 0), TS_OK);
    assert_int_equal(ts_store_ticket_create(s, t2, "c", "d", user, t0,
                                            NULL, 0), TS_OK);

    /* High: 1 h / 8 h by default; the dates come from createdAt */
    ts_sla_cfg_default(&cfg);
    ts_sla_dates(&cfg, ts_sla_priority("High"), t0, &due);
    assert_int_equal(due.response_due, t0 + 3600000);
    assert_int_equal(due.resolution_due, t0 + 8 * 3600000);
    triage = json_pack("{s:s, s:s, s:s, s:[]}", "summary", "s",
                       "priority", "High", "helpfulNotes", "",
                       "relatedSkills");
    meta = json_pack("{s:s}", "provider", "offline");
    assert_int_equal(ts_store_ticket_set_triage(s, t1, triage, meta,
                                                "offline", 0, &due, t0 + 1,
                                                NULL, 0), TS_OK);
    assert_int_equal(ts_store_ticket_set_triage(s, t2, triage, meta,
                                                "offline", 0, &due, t0 + 1,
                                                NULL, 0), TS_OK);
    json_decref(triage);
    json_decref(meta);
    assert_int_equal(ts_store_ticket_get(s, t1, 0, NULL, &k), TS_OK);
    assert_int_equal(k.sla.due.response_due, due.response_due);
    assert_int_equal(k.sla.due.resolution_due, due.resolution_due);
    assert_int_equal(k.sla.due.response_warn, due.response_warn);
    assert_int_equal(k.sla.responded_at, 0);
    assert_string_equal(k.priority, "High");

    /* before the warning: nothing; past the response warning: due soon;
     * past the response date: breached (both tickets) */
    assert_int_equal(sla_count(s, "due_soon", t0 + 10), 0);
    assert_int_equal(sla_count(s, "breached", t0 + 10), 0);
    assert_int_equal(sla_count(s, "due_soon", due.response_warn + 1), 2);
    assert_int_equal(sla_count(s, "breached", due.response_due + 1), 2);

    /* the creator's comment is no response; staff's is */
    ts_oid_new(cid);
    assert_int_equal(comment(s, t1, cid, user, "hi", "user", 0, t0 + 5, 100),
                     TS_OK);
    assert_int_equal(ts_store_ticket_get(s, t1, 0, NULL, &k), TS_OK);
    assert_int_equal(k.sla.responded_at, 0);
    ts_oid_new(cid);
    assert_int_equal(comment(s, t1, cid, admin, "on it", "admin", 0, t0 + 10,
                             100), TS_OK);
    assert_int_equal(ts_store_ticket_get(s, t1, 0, NULL, &k), TS_OK);
    assert_int_equal(k.sla.responded_at, t0 + 10);
    assert_int_equal(k.sla.breached_at, 0);
    assert_int_equal(sla_count(s, "breached", due.response_due + 1), 1);

    /* a response breach on t1 is nothing to mark (answered); on t2 it is
     * marked once, with the date */
    assert_int_equal(ts_store_ticket_sla_breach(s, t1, "response",
                                                due.response_due, t0),
                     TS_CONFLICT);
    assert_int_equal(ts_store_ticket_sla_breach(s, t2, "response",
                                                due.response_due, t0),
                     TS_OK);
    assert_int_equal(ts_store_ticket_sla_breach(s, t2, "response",
                                                due.response_due, t0),
                     TS_CONFLICT);
    assert_int_equal(ts_store_ticket_get(s, t2, 0, NULL, &k), TS_OK);
    assert_int_equal(k.sla.breached_at, due.response_due);
    /* its history: one staff-only "sla" entry by ticketd */
    assert_int_equal(ts_store_ticket_history(s, t2, &hist), TS_OK);
    for (i = 0, n = 0; i < json_array_size(hist); i++) {
        if (strcmp(json_string_value(json_object_get(json_array_get(hist, i),
                                                     "action")), "sla") == 0)
        {
            e = json_array_get(hist, i);
            n++;
        }
    }
    assert_int_equal(n, 1);
    assert_true(json_is_null(json_object_get(e, "actor")));
    assert_true(json_is_true(json_object_get(e, "staffOnly")));
    assert_string_equal(json_string_value(json_object_get(
        json_object_get(e, "to"), "breached")), "firstResponse");
    json_decref(hist);
    assert_int_equal(sla_count(s, "breached", t0 + 20), 1);

    /* Low moves t1's dates; the old date's breach finds nothing */
    ts_sla_dates(&cfg, ts_sla_priority("Low"), t0, &due2);
    assert_int_equal(ts_store_ticket_set_priority(s, t1, "Low", admin,
                                                  &due2, t0 + 30, NULL, 0),
                     TS_OK);
    /* by hand: a public "priority" entry by admin, from what triage set */
    assert_int_equal(ts_store_ticket_history(s, t1, &hist), TS_OK);
    e = json_array_get(hist, json_array_size(hist) - 1);
    assert_string_equal(json_string_value(json_object_get(e, "action")),
                        "priority");
    assert_string_equal(json_string_value(json_object_get(
        json_object_get(e, "actor"), "_id")), admin);
    assert_string_equal(json_string_value(json_object_get(e, "from")),
                        "High");
    assert_string_equal(json_string_value(json_object_get(e, "to")), "Low");
    assert_true(json_is_false(json_object_get(e, "staffOnly")));
    json_decref(hist);
    assert_int_equal(ts_store_ticket_get(s, t1, 0, NULL, &k), TS_OK);
    assert_string_equal(k.priority, "Low");
    assert_int_equal(k.sla.due.resolution_due, t0 + 72 * 3600000LL);
    assert_int_equal(ts_store_ticket_sla_breach(s, t1, "resolution",
                                                due.resolution_due, t0),
                     TS_CONFLICT);

    /* completed in time (t1, Low) and breached (t2, High): analytics */
    assert_int_equal(ts_store_ticket_set_status(s, t1, "Completed", admin,
                                                t0 + 40, 0, NULL, 0), TS_OK);
    assert_int_equal(ts_store_ticket_set_status(s, t2, "Completed", admin,
                                                t0 + 40, 0, NULL, 0), TS_OK);
    assert_int_equal(ts_store_analytics(s, t0 + 50, &an), TS_OK);
    high = json_object_get(json_object_get(an, "sla"), "High");
    assert_int_equal(json_integer_value(json_object_get(high, "completed")),
                     1);
    assert_int_equal(json_integer_value(json_object_get(high, "breached")),
                     1);
    assert_true(json_real_value(json_object_get(high, "withinSla")) == 0.0);
    assert_true(json_real_value(json_object_get(json_object_get(
        json_object_get(an, "sla"), "Low"), "withinSla")) == 100.0);
    assert_true(json_is_null(json_object_get(json_object_get(
        json_object_get(an, "sla"), "Medium"), "withinSla")));
    json_decref(an);
}


int
test_store_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            a_ticket_s_life_through_every_operation, setup, teardown),
        cmocka_unit_test_setup_teardown(
            sla_dates_breach_once_first_response_and_filters, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            migrations_run_once_and_reopen_cleanly, setup, teardown),
        cmocka_unit_test_setup_teardown(
            first_user_is_admin_and_uniqueness_ignores_case, setup, teardown),
        cmocka_unit_test_setup_teardown(
            concurrent_first_signups_make_exactly_one_admin, setup, teardown),
        cmocka_unit_test_setup_teardown(
            status_role_and_skills_updates_persist, setup, teardown),
        cmocka_unit_test_setup_teardown(
            login_failures_lock_after_max_and_window_restarts, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            revoked_tokens_persist_until_purged_after_exp, setup, teardown),
        cmocka_unit_test_setup_teardown(
            job_dedupe_key_makes_a_second_insert_a_no_op, setup, teardown),
        cmocka_unit_test_setup_teardown(
            ticket_lists_scope_filter_and_count_from_counters, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            history_is_written_with_each_change_and_canned_crud, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            one_pending_request_and_decisions_are_final, setup, teardown),
        cmocka_unit_test_setup_teardown(
            jobs_done_in_one_batch_keep_their_own_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(
            jobs_are_leased_fenced_retried_and_dead_after_the_last_attempt,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            triage_once_assign_once_stats_once, setup, teardown),
        cmocka_unit_test_setup_teardown(
            internal_notes_first_response_and_unmodified_since, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            finished_jobs_are_purged_after_their_retention_in_batches, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            passwords_change_conditionally_and_reset_tokens_are_single_use,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            hand_assignment_hand_back_demotion_and_absence, setup, teardown),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}

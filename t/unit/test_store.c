/*
 * test_store: the store contract on the SQLite backend (shared/ts_store.h).
 * Protects: migrations are idempotent, the first user (only) becomes
 * admin even under concurrent signups, uniqueness is case-insensitive, a
 * signup's job is stored with it, failed logins are counted atomically,
 * revocations persist and expire.
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

#include "ts_store.h"

int test_store_run(void);

typedef struct {
    char         dir[64];
    char         uri[128];
    ts_store_t  *s;
} fixture_t;


static int
setup(void **state)
{
    fixture_t  *f = calloc(1, sizeof(*f));
    char        err[256];

    strcpy(f->dir, "/tmp/ts-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->uri, sizeof(f->uri), "sqlite:%s/t.db", f->dir);
    f->s = ts_store_open(f->uri, err, sizeof(err));
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
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}


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

    assert_null(ts_store_open("mongodb://localhost/x", err, sizeof(err)));
    assert_non_null(strstr(err, "MongoDB"));
    assert_null(ts_store_open("redis://x", err, sizeof(err)));
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
                                              1700000000000LL), TS_OK);
    assert_int_equal(ts_store_user_update(f->s, id, TS_ROLE_MODERATOR,
                                          skills), TS_OK);
    assert_int_equal(ts_store_user_by_id(f->s, id, &u), TS_OK);
    assert_int_equal(u.status, TS_PRESENCE_DND);
    assert_int_equal(u.last_seen, 1700000000000LL);
    assert_int_equal(u.role, TS_ROLE_MODERATOR);
    assert_int_equal(json_array_size(u.skills), 0);
    ts_user_clear(&u);

    assert_int_equal(ts_store_user_set_status(f->s, "aaaaaaaaaaaaaaaaaaaaaaaa",
                                              TS_PRESENCE_ONLINE, 1),
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

    for (int i = 1; i <= 2; i++) {
        assert_int_equal(ts_store_login_fail(f->s, "eve", t + i, 60000, 3,
                                             30000, &a), TS_OK);
        assert_int_equal(a.failures, i);
        assert_int_equal(a.locked_until, 0);
    }
    assert_int_equal(ts_store_login_fail(f->s, "eve", t + 3, 60000, 3, 30000,
                                         &a), TS_OK);
    assert_int_equal(a.failures, 3);
    assert_int_equal(a.locked_until, t + 3 + 30000);

    assert_int_equal(ts_store_login_get(f->s, "eve", &a), TS_OK);
    assert_int_equal(a.locked_until, t + 3 + 30000);

    /* a failure after the window starts a new count */
    assert_int_equal(ts_store_login_fail(f->s, "eve", t + 70000, 60000, 3,
                                         30000, &a), TS_OK);
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


int
test_store_run(void)
{
    const struct CMUnitTest tests[] = {
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
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}

/*
 * test_cache: the Redis cache's parts that need no server
 * (shared/store/ts_cache.h, ts_store_set_cache).  Protects: redis:// URLs are
 * parsed strictly; with Redis unreachable every cache call returns at
 * once as a miss and the store answers as if there were no cache.  (The
 * cache against a real redis-server: t/integration/test_cache.py.)
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "ts_cache.h"
#include "ts_store.h"

int test_cache_run(void);

static const unsigned char  cache_key[TS_WIRE_KEY_LEN] = { 7 };


static void
url_parse_accepts_the_documented_forms(void **state)
{
    ts_redis_url_t  u;
    char            err[128];

    assert_int_equal(ts_redis_url_parse("redis://cache", &u, err,
                                        sizeof(err)), 0);
    assert_string_equal(u.host, "cache");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");

    assert_int_equal(ts_redis_url_parse("redis://:s3cr:et@10.0.0.7:6380/2",
                                        &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "10.0.0.7");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    assert_string_equal(u.password, "s3cr:et");
}


static void
url_parse_rejects_bad_urls_with_a_reason(void **state)
{
    static const char *bad[] = {
        "", "cache:6379", "http://cache", "redis://", "redis://:6379",
        "redis://cache:0", "redis://cache:65536", "redis://cache:63x",
        "redis://cache/16", "redis://cache/-1", "redis://cache/",
        "redis://cache/a",
        "redis://user@cache", "redis://:@cache",
    };
    ts_redis_url_t  u;
    char            err[128];
    size_t          i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (ts_redis_url_parse(bad[i], &u, err, sizeof(err)) != -1) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
        assert_true(err[0] != '\0');
    }
    assert_null(ts_cache_new("redis://cache:99999", cache_key));
}


static void
handshake_is_auth_then_select_as_needed(void **state)
{
    ts_redis_url_t  u;
    ts_redis_cmd_t  hs[TS_REDIS_HANDSHAKE_MAX];
    char            err[128];

    assert_int_equal(ts_redis_url_parse("redis://cache", &u, err,
                                        sizeof(err)), 0);
    assert_int_equal(ts_redis_handshake(&u, hs), 0);

    assert_int_equal(ts_redis_url_parse("redis://cache/12", &u, err,
                                        sizeof(err)), 0);
    assert_int_equal(ts_redis_handshake(&u, hs), 1);
    assert_string_equal(hs[0].name, "SELECT");
    assert_int_equal(hs[0].argc, 2);
    assert_memory_equal(hs[0].argv[1], "12", 2);
    assert_int_equal(hs[0].argvlen[1], 2);

    assert_int_equal(ts_redis_url_parse("redis://:p w@cache/3", &u, err,
                                        sizeof(err)), 0);
    assert_int_equal(ts_redis_handshake(&u, hs), 2);
    assert_string_equal(hs[0].name, "AUTH");
    assert_memory_equal(hs[0].argv[0], "AUTH", hs[0].argvlen[0]);
    assert_memory_equal(hs[0].argv[1], "p w", 3);
    assert_int_equal(hs[0].argvlen[1], 3);
    assert_string_equal(hs[1].name, "SELECT");
    assert_memory_equal(hs[1].argv[1], "3", 1);
    assert_int_equal(hs[1].argvlen[1], 1);
}


static int64_t
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
unreachable_redis_is_a_fast_miss(void **state)
{
    ts_cache_t  *c = ts_cache_new("redis://127.0.0.1:1", cache_key);  /* refused */
    char        *val = (char *) 1;
    size_t       len = 7;
    int64_t      version = 42, t0;
    int          i;

    assert_non_null(c);
    t0 = now_ms();
    for (i = 0; i < 1000; i++) {
        assert_int_equal(ts_cache_get(c, TS_CACHE_V_TICKETS, "k", 1,
                                      &version, &val, &len), -1);
        assert_null(val);
        assert_int_equal(len, 0);
        ts_cache_set(c, "k", 1, "v", 1, 10);
        ts_cache_bump(c, 3);
    }
    /* one refused connect, then a paused handle: no waiting per call */
    assert_true(now_ms() - t0 < 1000);
    assert_string_equal(ts_cache_ping(c), "unavailable");
    ts_cache_free(c);
}


static void
store_answers_the_same_with_redis_away(void **state)
{
    char                dir[] = "/tmp/ts-cache-XXXXXX", uri[64], err[256];
    char               *a, *b, cmd[64];
    ts_store_t         *s;
    ts_user_t           u;
    ts_ticket_query_t   q;
    ts_jw_t             w;
    int64_t             total = -1;
    size_t              alen, blen;
    json_t             *users = NULL;
    ts_job_new_t        job = { .kind = "email" };
    const char         *which = NULL;
    int                 pass;

    assert_non_null(mkdtemp(dir));
    snprintf(uri, sizeof(uri), "sqlite:%s/t.db", dir);
    s = ts_store_open(uri, err, sizeof(err));
    assert_non_null(s);
    assert_string_equal(ts_store_cache_state(s), "disabled");

    memset(&u, 0, sizeof(u));
    u.username = strdup("alice");
    u.email = strdup("alice@example.com");
    u.password = strdup("$2b$04$abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZ01234");
    u.skills = json_array();
    job.payload = json_pack("{s:s}", "template", "welcome");
    assert_int_equal(ts_store_user_signup(s, &u, &job, &which), TS_OK);
    json_decref(job.payload);
    assert_int_equal(ts_store_ticket_create(s, "aaaaaaaaaaaaaaaaaaaaaaaa", "t",
                                            "d", u.id, 1000, NULL, 0), TS_OK);

    memset(&q, 0, sizeof(q));
    q.scope = TS_SCOPE_ALL;
    q.limit = 10;
    for (pass = 0; pass < 2; pass++) {
        ts_jw_init(&w, 256);
        assert_int_equal(ts_store_ticket_list(s, &q, &w, &total), TS_OK);
        assert_int_equal(total, 1);
        if (pass == 0) {
            a = ts_jw_finish(&w, &alen);
            ts_store_set_cache(s, "redis://127.0.0.1:1", cache_key);
            assert_string_equal(ts_store_cache_state(s), "unavailable");
        } else {
            b = ts_jw_finish(&w, &blen);
        }
    }
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    assert_int_equal(ts_store_user_list(s, &users), TS_OK);
    assert_int_equal(json_array_size(users), 1);
    json_decref(users);

    free(a);
    free(b);
    ts_user_clear(&u);
    ts_store_set_cache(s, NULL, NULL);
    assert_string_equal(ts_store_cache_state(s), "disabled");
    ts_store_close(s);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}


int
test_cache_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(url_parse_accepts_the_documented_forms),
        cmocka_unit_test(url_parse_rejects_bad_urls_with_a_reason),
        cmocka_unit_test(handshake_is_auth_then_select_as_needed),
        cmocka_unit_test(unreachable_redis_is_a_fast_miss),
        cmocka_unit_test(store_answers_the_same_with_redis_away),
    };

    return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}

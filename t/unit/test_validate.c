/*
 * test_validate: request-body field rules (shared/core/ts_validate.h) -- the
 * type checks that turn an object-where-a-string-belongs into a 400, the
 * length bounds counted in characters, UTF-8 checks, skills normalisation.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ts_json_writer.h"
#include "ts_model.h"
#include "ts_validate.h"

int test_validate_run(void);


static json_t *
obj(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}


static void
string_field_rejects_wrong_types(void **state)
{
    const char  *s;
    size_t       len;
    ts_errmsg_t  err;
    json_t      *j = obj("{\"a\":{\"x\":1},\"b\":5,\"c\":[\"x\"],\"d\":true}");

    assert_int_equal(ts_get_string(j, "a", 1, 10, 0, &s, &len, err), -1);
    assert_string_equal(err, "a must be a string");
    assert_int_equal(ts_get_string(j, "b", 1, 10, 0, &s, &len, err), -1);
    assert_int_equal(ts_get_string(j, "c", 1, 10, 0, &s, &len, err), -1);
    assert_int_equal(ts_get_string(j, "d", 1, 10, 0, &s, &len, err), -1);
    assert_int_equal(ts_get_string(j, "missing", 1, 10, 0, &s, &len, err),
                     -1);
    assert_string_equal(err, "missing is required");
    assert_int_equal(ts_get_string_opt(j, "missing", 1, 10, 0, &s, &len,
                                       err), 1);
    assert_null(s);
    json_decref(j);
}


static void
string_field_trims_and_counts_characters(void **state)
{
    const char  *s;
    size_t       len;
    ts_errmsg_t  err;
    /* "héllo" is 5 characters but 6 bytes */
    json_t      *j = obj("{\"t\":\"  h\\u00e9llo \",\"e\":\"   \"}");

    assert_int_equal(ts_get_string(j, "t", 1, 5, 1, &s, &len, err), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(s, "h\xc3\xa9llo", 6);
    assert_int_equal(ts_get_string(j, "t", 1, 4, 1, &s, &len, err), -1);
    assert_string_equal(err, "t must be between 1 and 4 characters");
    assert_int_equal(ts_get_string(j, "e", 1, 10, 1, &s, &len, err), -1);
    assert_string_equal(err, "e is required");
    json_decref(j);
}


static void
utf8_validation_rejects_malformed_sequences(void **state)
{
    assert_true(ts_valid_utf8("plain", 5));
    assert_true(ts_valid_utf8("\xc3\xa9", 2));
    assert_true(ts_valid_utf8("\xf0\x9f\x98\x80", 4));
    assert_false(ts_valid_utf8("\xc3", 1));            /* truncated */
    assert_false(ts_valid_utf8("\xc0\xaf", 2));        /* overlong '/' */
    assert_false(ts_valid_utf8("\xed\xa0\x80", 3));    /* surrogate */
    assert_false(ts_valid_utf8("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(ts_valid_utf8("a\0b", 3));
    assert_false(ts_valid_utf8("\xff", 1));
}


static void
skills_are_normalised_from_array_or_comma_string(void **state)
{
    json_t       *out;
    ts_errmsg_t   err;
    json_t       *j = obj("{\"a\":[\" React \",\"react\",\"Node.js\",\"\"],"
                          "\"s\":\"SQL, go ,,sql\",\"bad\":[1],\"o\":{}}");

    assert_int_equal(ts_get_skills(j, "a", &out, err), 0);
    assert_int_equal(json_array_size(out), 2);
    assert_string_equal(json_string_value(json_array_get(out, 0)), "react");
    assert_string_equal(json_string_value(json_array_get(out, 1)),
                        "node.js");
    json_decref(out);

    assert_int_equal(ts_get_skills(j, "s", &out, err), 0);
    assert_int_equal(json_array_size(out), 2);
    assert_string_equal(json_string_value(json_array_get(out, 0)), "sql");
    assert_string_equal(json_string_value(json_array_get(out, 1)), "go");
    json_decref(out);

    assert_int_equal(ts_get_skills(j, "bad", &out, err), -1);
    assert_int_equal(ts_get_skills(j, "o", &out, err), -1);
    assert_int_equal(ts_get_skills(j, "none", &out, err), 1);
    assert_null(out);
    json_decref(j);
}


static void
email_and_username_rules(void **state)
{
    assert_true(ts_valid_email("a@b.co", 6));
    assert_true(ts_valid_email("first.last+tag@example.org", 26));
    assert_false(ts_valid_email("ab.co", 5));
    assert_false(ts_valid_email("a@b", 3));
    assert_false(ts_valid_email("a@@b.co", 7));
    assert_false(ts_valid_email("a b@c.co", 8));
    assert_false(ts_valid_email("a@b..co", 7));
    assert_false(ts_valid_email("a@.co", 5));
    assert_false(ts_valid_email("a@b.", 4));

    assert_true(ts_valid_username("bob", 3));
    assert_true(ts_valid_username("A.b-c_9", 7));
    assert_false(ts_valid_username("bo", 2));
    assert_false(ts_valid_username("bob smith", 9));
    assert_false(ts_valid_username("bob@x", 5));
    assert_false(ts_valid_username("b\xc3\xa9" "b", 4));
}


static void
query_parameters_are_decoded_and_bounded(void **state)
{
    const char  *q = "page=2&search=50%25+off%2Fnow&empty=&x%41=1&bad=%zz";
    char         v[16];

    assert_int_equal(ts_query_get(q, strlen(q), "page", v, sizeof(v)), 1);
    assert_string_equal(v, "2");
    assert_int_equal(ts_query_get(q, strlen(q), "search", v, sizeof(v)), 1);
    assert_string_equal(v, "50% off/now");
    assert_int_equal(ts_query_get(q, strlen(q), "empty", v, sizeof(v)), 1);
    assert_string_equal(v, "");
    assert_int_equal(ts_query_get(q, strlen(q), "xA", v, sizeof(v)), 1);
    assert_int_equal(ts_query_get(q, strlen(q), "bad", v, sizeof(v)), -1);
    assert_int_equal(ts_query_get(q, strlen(q), "limit", v, sizeof(v)), 0);
    assert_int_equal(ts_query_get(NULL, 0, "page", v, sizeof(v)), 0);
    /* a NUL byte and an over-long value are malformed, not truncated */
    assert_int_equal(ts_query_get("a=%00", 5, "a", v, sizeof(v)), -1);
    assert_int_equal(ts_query_get("a=%4", 4, "a", v, sizeof(v)), -1);
    assert_int_equal(ts_query_get("a=0123456789abcdefg", 19, "a", v,
                                  sizeof(v)), -1);
}


static void
skills_merge_keeps_order_and_ignores_case(void **state)
{
    json_t  *a = json_pack("[s, s]", "react", "sql");
    json_t  *b = json_pack("[s, s, i]", "SQL", "go", 5);
    json_t  *m = ts_skills_merge(a, b);

    assert_int_equal(json_array_size(m), 3);
    assert_string_equal(json_string_value(json_array_get(m, 2)), "go");
    json_decref(a);
    json_decref(b);
    json_decref(m);
}


static void
fold_lower_cases_beyond_ascii(void **state)
{
    size_t       n;
    const char  *in = "Caf\xc3\x89 \xc3\x89" "COLE \xce\xa3 ABC";
    char        *f = ts_utf8_fold(in, strlen(in), &n);

    /* "Café école σ abc" */
    assert_string_equal(f, "caf\xc3\xa9 \xc3\xa9" "cole \xcf\x83 abc");
    assert_int_equal(n, strlen(f));
    free(f);
    /* invalid bytes pass through */
    f = ts_utf8_fold("A\xff" "B", 3, NULL);
    assert_string_equal(f, "a\xff" "b");
    free(f);
}


static void
json_writer_escapes_and_never_emits_invalid_utf8(void **state)
{
    ts_jw_t   w;
    char     *out;
    size_t    len;
    json_t   *j;

    ts_jw_init(&w, 4);
    TS_JW_LIT(&w, "[");
    ts_jw_str(&w, "a\"b\\c\n\x01\xc3\xa9", 9);
    TS_JW_LIT(&w, ",");
    ts_jw_str(&w, "x\xff" "y\xc3", 4);
    TS_JW_LIT(&w, ",");
    ts_jw_str(&w, NULL, 0);
    TS_JW_LIT(&w, ",");
    ts_jw_int(&w, -1234567890123LL);
    TS_JW_LIT(&w, ",");
    ts_jw_time(&w, 1700000000123LL);
    TS_JW_LIT(&w, ",");
    ts_jw_time(&w, 0);
    TS_JW_LIT(&w, "]");
    out = ts_jw_finish(&w, &len);
    assert_non_null(out);
    assert_int_equal(len, strlen(out));

    /* what jansson reads back is what went in */
    j = json_loads(out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_array_get(j, 0)),
                        "a\"b\\c\n\x01\xc3\xa9");
    assert_string_equal(json_string_value(json_array_get(j, 1)),
                        "x\xef\xbf\xbd" "y\xef\xbf\xbd");
    assert_true(json_is_null(json_array_get(j, 2)));
    assert_int_equal(json_integer_value(json_array_get(j, 3)),
                     -1234567890123LL);
    assert_string_equal(json_string_value(json_array_get(j, 4)),
                        "2023-11-14T22:13:20.123Z");
    assert_true(json_is_null(json_array_get(j, 5)));
    json_decref(j);
    free(out);
}


static void
percentiles_interpolate(void **state)
{
    double  v[] = { 1, 2, 3, 4 };

    assert_true(ts_percentile(v, 4, 0.5) == 2.5);
    assert_true(ts_percentile(v, 4, 0.9) > 3.69 && ts_percentile(v, 4, 0.9)
                                                   < 3.71);
    assert_true(ts_percentile(v, 1, 0.9) == 1);
}


/*
 * ts_utf8_cut over every limit pair on text mixing 1- to 4-byte
 * characters: the prefix is valid UTF-8, within both limits, and the
 * longest such (one more character would break a limit).
 */
static void
utf8_cut_never_splits_a_character(void **state)
{
    static const char *texts[] = {
        "\xd0\x97\xd0\xb4\xd1\x80 a \xe4\xbd\xa0\xe5\xa5\xbd "
        "\xf0\x9f\x98\x80\xd8\xb9" "e\xcc\x81",
        "plain ascii",
        "",
    };
    size_t  t, len, mc, mb, n, next;

    for (t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
        const char *s = texts[t];

        len = strlen(s);
        for (mc = 0; mc <= len + 1; mc++) {
            for (mb = 0; mb <= len + 1; mb++) {
                n = ts_utf8_cut(s, len, mc, mb);
                assert_true(n <= len && n <= mb);
                assert_true(ts_valid_utf8(s, n));
                assert_true(ts_utf8_len(s, n) <= mc);
                if (n < len) {
                    /* the next character must not have fitted */
                    next = n + 1;
                    while (next < len && ((unsigned char) s[next] & 0xc0)
                                         == 0x80)
                    {
                        next++;
                    }
                    assert_true(next > mb || ts_utf8_len(s, next) > mc);
                }
            }
        }
    }
}


/*
 * Text already cut by bytes (snprintf into a fixed buffer) may end inside
 * a character: ts_utf8_cut and ts_utf8_trim_tail leave that part out, so
 * what reaches a log, a job error or JSON is valid UTF-8.
 */
static void
utf8_cut_drops_a_partial_last_character(void **state)
{
    /* "ab" then U+1F600 (4 bytes) cut after 1, 2 and 3 of its bytes */
    static const char  full[] = "ab\xf0\x9f\x98\x80";
    char               buf[16];
    size_t             k;

    for (k = 1; k <= 3; k++) {
        assert_int_equal(ts_utf8_cut(full, 2 + k, 100, 100), 2);
        memcpy(buf, full, 2 + k);
        buf[2 + k] = '\0';
        assert_false(ts_valid_utf8(buf, strlen(buf)));
        ts_utf8_trim_tail(buf);
        assert_string_equal(buf, "ab");
    }
    assert_int_equal(ts_utf8_cut(full, 6, 100, 100), 6);
    snprintf(buf, sizeof(buf), "%s", full);
    ts_utf8_trim_tail(buf);
    assert_string_equal(buf, full);

    /* U+0416 (2 bytes) x 3 into 6 bytes with snprintf: 2 of them */
    k = (size_t) *state + 6;            /* not a constant: no warning */
    snprintf(buf, k, "%s", "\xd0\x96\xd0\x96\xd0\x96");
    ts_utf8_trim_tail(buf);
    assert_string_equal(buf, "\xd0\x96\xd0\x96");
}


/* Skills are lower-cased beyond ASCII, so one skill in two cases is one
 * skill, and merging compares the same way; limits count code points. */
static void
skills_fold_case_beyond_ascii(void **state)
{
    ts_errmsg_t  err;
    json_t      *in, *out, *a, *b, *m;
    char         long_skill[4 * 51 + 1];
    size_t       i;

    in = json_pack("{s:s}", "skills", "\xd0\xa0\xd1\x83\xd1\x81\xd1\x81"
                   "\xd0\xba\xd0\xb8\xd0\xb9, \xd0\xa0\xd0\xa3\xd0\xa1"
                   "\xd0\xa1\xd0\x9a\xd0\x98\xd0\x99,Python");
    assert_int_equal(ts_get_skills(in, "skills", &out, err), 0);
    assert_int_equal(json_array_size(out), 2);
    assert_string_equal(json_string_value(json_array_get(out, 0)),
                        "\xd1\x80\xd1\x83\xd1\x81\xd1\x81\xd0\xba"
                        "\xd0\xb8\xd0\xb9");
    assert_string_equal(json_string_value(json_array_get(out, 1)), "python");
    json_decref(out);
    json_decref(in);

    /* 50 emoji is one skill of 50 characters; 51 is too long */
    for (i = 0; i < 51; i++) {
        memcpy(long_skill + 4 * i, "\xf0\x9f\x98\x80", 4);
    }
    long_skill[4 * 50] = '\0';
    in = json_pack("{s:[s]}", "skills", long_skill);
    assert_int_equal(ts_get_skills(in, "skills", &out, err), 0);
    json_decref(out);
    json_decref(in);
    long_skill[4 * 50] = '\xf0';
    long_skill[4 * 51] = '\0';
    in = json_pack("{s:[s]}", "skills", long_skill);
    assert_int_equal(ts_get_skills(in, "skills", &out, err), -1);
    json_decref(in);

    a = json_pack("[s]", "\xc3\xa9" "cole");
    b = json_pack("[s, s]", "\xc3\x89" "COLE", "go");
    m = ts_skills_merge(a, b);
    assert_int_equal(json_array_size(m), 2);
    json_decref(a);
    json_decref(b);
    json_decref(m);
}


/* Found by test_api_properties.py: on MongoDB an upper-case id (or a
 * token's "_id") named the same ObjectId, on SQLite nothing. */
static void
oid_is_24_lower_case_hex_digits(void **state)
{
    (void) state;
    assert_true(ts_oid_valid("0123456789abcdef01234567"));
    assert_false(ts_oid_valid("0123456789ABCDEF01234567"));
    assert_false(ts_oid_valid("0123456789abcdef0123456A"));
    assert_false(ts_oid_valid("0123456789abcdef0123456"));
    assert_false(ts_oid_valid("0123456789abcdef012345678"));
    assert_false(ts_oid_valid("0123456789abcdef0123456g"));
    assert_false(ts_oid_valid(""));
    assert_false(ts_oid_valid(NULL));
}


/* GET /api/jobs took "+5", " 5" and "5 " (strtol) where GET /api/tickets
 * refused them; both parse with ts_query_int now. */
static void
query_integers_are_plain_digits(void **state)
{
    int64_t  n = 0;

    (void) state;
    assert_int_equal(ts_query_int("5", 1, 500, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(ts_query_int("0500", 1, 500, &n), 0);
    assert_int_equal(n, 500);
    assert_int_equal(ts_query_int("1000000000", 1, 1000000000, &n), 0);
    assert_int_equal(ts_query_int("501", 1, 500, &n), -1);
    assert_int_equal(ts_query_int("0", 1, 500, &n), -1);
    assert_int_equal(ts_query_int("+5", 1, 500, &n), -1);
    assert_int_equal(ts_query_int(" 5", 1, 500, &n), -1);
    assert_int_equal(ts_query_int("5 ", 1, 500, &n), -1);
    assert_int_equal(ts_query_int("-0", 0, 500, &n), -1);
    assert_int_equal(ts_query_int("5e1", 1, 500, &n), -1);
    assert_int_equal(ts_query_int("", 1, 500, &n), -1);
    assert_int_equal(ts_query_int("00000000001", 1, 500, &n), -1);
}



/* expectedUpdatedAt: the API's own ISO dates (with or without ms) or
 * positive milliseconds; anything else is 400 (issue 15). */
static void
times_are_iso_utc_or_milliseconds(void **state)
{
    ts_errmsg_t  err;
    int64_t      ms;
    json_t      *o;
    size_t       i;
    static const char *const  bad[] = {
        "{\"t\":\"2024-01-02\"}", "{\"t\":\"2024-13-02T03:04:05Z\"}",
        "{\"t\":\"2024-01-02T03:04:05.678\"}", "{\"t\":\"yesterday\"}",
        "{\"t\":\"2024-01-02T03:04:05+01:00\"}", "{\"t\":\"\"}",
        "{\"t\":\"1969-12-31T23:59:59Z\"}", "{\"t\":0}", "{\"t\":-1}",
        "{\"t\":1.5}", "{\"t\":true}", "{\"t\":[]}", "{\"t\":{}}",
        "{\"t\":\"2024-01-02T03:04:05.6789Z\"}",
    };

    o = json_loads("{\"t\":\"2024-01-02T03:04:05.678Z\"}", 0, NULL);
    assert_int_equal(ts_get_time_opt(o, "t", &ms, err), 0);
    /* 2024-01-02 is day 19724 since 1970 */
    assert_int_equal(ms, ((19724LL * 24 + 3) * 60 + 4) * 60000 + 5678);
    json_decref(o);
    o = json_loads("{\"t\":\"2024-01-02T03:04:05Z\"}", 0, NULL);
    assert_int_equal(ts_get_time_opt(o, "t", &ms, err), 0);
    assert_int_equal(ms, ((19724LL * 24 + 3) * 60 + 4) * 60000 + 5000);
    json_decref(o);
    o = json_loads("{\"t\":1700000000123}", 0, NULL);
    assert_int_equal(ts_get_time_opt(o, "t", &ms, err), 0);
    assert_int_equal(ms, 1700000000123LL);
    json_decref(o);
    o = json_loads("{\"t\":null}", 0, NULL);
    assert_int_equal(ts_get_time_opt(o, "t", &ms, err), 1);
    assert_int_equal(ts_get_time_opt(o, "absent", &ms, err), 1);
    assert_int_equal(ms, 0);
    json_decref(o);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o = json_loads(bad[i], 0, NULL);
        assert_non_null(o);
        if (ts_get_time_opt(o, "t", &ms, err) != -1) {
            fail_msg("accepted %s", bad[i]);
        }
        assert_non_null(strstr(err, "t must be a date"));
        json_decref(o);
    }
}

int
test_validate_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(string_field_rejects_wrong_types),
        cmocka_unit_test(string_field_trims_and_counts_characters),
        cmocka_unit_test(utf8_validation_rejects_malformed_sequences),
        cmocka_unit_test(skills_are_normalised_from_array_or_comma_string),
        cmocka_unit_test(email_and_username_rules),
        cmocka_unit_test(query_parameters_are_decoded_and_bounded),
        cmocka_unit_test(skills_merge_keeps_order_and_ignores_case),
        cmocka_unit_test(percentiles_interpolate),
        cmocka_unit_test(fold_lower_cases_beyond_ascii),
        cmocka_unit_test(utf8_cut_never_splits_a_character),
        cmocka_unit_test(utf8_cut_drops_a_partial_last_character),
        cmocka_unit_test(skills_fold_case_beyond_ascii),
        cmocka_unit_test(json_writer_escapes_and_never_emits_invalid_utf8),
        cmocka_unit_test(oid_is_24_lower_case_hex_digits),
        cmocka_unit_test(query_integers_are_plain_digits),
        cmocka_unit_test(times_are_iso_utc_or_milliseconds),
    };
    return cmocka_run_group_tests_name("validate", tests, NULL, NULL);
}

/*
 * test_conf: ticketd reads nginx.conf as nginx does (daemon/conf.h).
 *
 * Protects: includes (a file, a sorted glob, a glob matching nothing) are
 * read in place, relative to the main file's folder, in the context of
 * the block they are in; quotes and escapes give the words nginx gives;
 * a ";" "{" "}" inside quotes is text; every syntax error names the file
 * and line where nginx would; an include loop ends; times read as
 * ngx_parse_time reads them; the config fingerprint of ts_wire differs by
 * part and by secret.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conf.h"
#include "ts_wire.h"

int test_conf_run(void);

#define FIXTURE  "t/fixtures/conf/"


/* The i-th directive named name (0 = the first), or NULL. */
static const conf_directive_t *
find(const conf_t *c, const char *name, int nth)
{
    size_t  i;

    for (i = 0; i < c->n; i++) {
        if (strcmp(c->d[i].name, name) == 0 && nth-- == 0) {
            return &c->d[i];
        }
    }
    return NULL;
}


static int
ends_with(const char *s, const char *tail)
{
    size_t  n = strlen(s), k = strlen(tail);

    return n >= k && strcmp(s + n - k, tail) == 0;
}


static void
includes_are_read_in_place_in_their_block(void **state)
{
    conf_t                   c;
    const conf_directive_t  *d;
    size_t                   i, from, pub, weights, daemon, store;
    char                     want[4096];

    assert_int_equal(conf_init(&c, NULL), 0);
    assert_int_equal(conf_load(&c, FIXTURE "nginx.conf"), 0);
    assert_true(ends_with(c.prefix, "/t/fixtures/conf/"));

    d = find(&c, "user", 0);
    assert_non_null(d);
    assert_string_equal(d->context, "");
    assert_int_equal(d->nargs, 1);
    assert_string_equal(d->args[0], "www-data");
    assert_int_equal(d->line, 2);

    d = find(&c, "worker_connections", 0);
    assert_string_equal(d->context, "events");

    /* the glob's files in sorted order, then the named file, then the
     * rest of the main file: positions in the flat list */
    for (i = 0, from = pub = weights = daemon = store = 0; i < c.n; i++) {
        if (strcmp(c.d[i].name, "ticket_mail_from") == 0) from = i;
        if (strcmp(c.d[i].name, "ticket_public_url") == 0) pub = i;
        if (strcmp(c.d[i].name, "ticket_assign_weights") == 0) weights = i;
        if (strcmp(c.d[i].name, "ticket_daemon") == 0) daemon = i;
        if (strcmp(c.d[i].name, "ticket_store") == 0) store = i;
    }
    assert_true(from < pub && pub < weights && weights < daemon
                && daemon < store);

    d = &c.d[from];
    assert_string_equal(d->context, "http");
    assert_true(ends_with(d->file, "/conf.d/a.conf"));
    assert_int_equal(d->line, 1);
    assert_string_equal(d->args[0], "Help \"Desk\" <help@example.org>");

    assert_string_equal(c.d[pub].args[0], "https://tickets.example.org");

    d = &c.d[weights];                  /* one directive over two lines */
    assert_int_equal(d->nargs, 3);
    assert_int_equal(d->line, 1);
    assert_string_equal(d->args[2], "performance=0.2");

    d = find(&c, "log_format", 0);      /* \t is a tab, ${...} one word */
    assert_int_equal(d->nargs, 2);
    assert_string_equal(d->args[1], "$remote_addr\t${request}");

    d = &c.d[daemon];
    assert_true(ends_with(d->file, "/sites/one"));
    assert_string_equal(d->context, "http");

    d = find(&c, "return", 0);          /* ; { } inside quotes are text */
    assert_string_equal(d->context, "http server location");
    assert_string_equal(d->args[1], "a;b{c}");

    d = &c.d[store];
    assert_string_equal(d->args[0], "sqlite:db/t.db");
    assert_true(ends_with(d->file, "/conf/nginx.conf"));
    assert_int_equal(d->line, 10);

    d = find(&c, "ticket_api", 0);
    assert_string_equal(d->context, "http server location");
    assert_int_equal(d->nargs, 0);

    snprintf(want, sizeof(want), "%sx/y", c.prefix);
    assert_string_equal(conf_full_name(&c, "x/y"), want);
    assert_string_equal(conf_full_name(&c, "/abs"), "/abs");
    conf_free(&c);
}


/* Load path; it must fail with a message ending in tail. */
static void
load_fails(const char *path, const char *has, const char *tail)
{
    conf_t  c;

    assert_int_equal(conf_init(&c, NULL), 0);
    assert_int_equal(conf_load(&c, path), -1);
    if (strstr(c.err, has) == NULL || !ends_with(c.err, tail)) {
        fail_msg("\"%s\": wanted \"%s\" ... \"%s\"", c.err, has, tail);
    }
    conf_free(&c);
}


static void
file_errors_name_the_file_and_line(void **state)
{
    load_fails(FIXTURE "bad/unclosed.conf",
               "unexpected end of file, expecting \"}\"", "unclosed.conf:3");
    load_fails(FIXTURE "bad/main.conf", "unexpected \"x\"", "inner.conf:3");
    load_fails(FIXTURE "bad/loop.conf", "include nested too deep",
               "loop.conf:1");
    load_fails(FIXTURE "bad/nonexistent.conf", "open() \"", "directory)");
}


/* Parse text alone (no include); it must fail with has ... tail. */
static void
text_fails(const char *text, const char *has, const char *tail)
{
    conf_t  c;

    assert_int_equal(conf_init(&c, "/p/"), 0);
    c.no_include = 1;
    assert_int_equal(conf_parse(&c, text, strlen(text), "t.conf"), -1);
    if (strstr(c.err, has) == NULL || !ends_with(c.err, tail)) {
        fail_msg("\"%s\": wanted \"%s\" ... \"%s\"", c.err, has, tail);
    }
    conf_free(&c);
}


static void
text_errors_are_nginx_s(void **state)
{
    conf_t       c;
    const char  *text;

    text_fails("a b", "expecting \";\" or \"}\"", "t.conf:1");
    text_fails("http {\n}\n}\n", "unexpected \"}\"", "t.conf:3");
    text_fails("\n\n;", "unexpected \";\"", "t.conf:3");
    text_fails("a {", "expecting \"}\"", "t.conf:1");
    text_fails("a \"b;\n", "expecting \"", "t.conf:2");
    text_fails("a 'b'c;", "unexpected \"c\"", "t.conf:1");
    text_fails("include x;", "\"include\" is not allowed", "t.conf:1");
    text_fails("a {}} ", "unexpected \"}\"", "t.conf:1");

    /* and what nginx accepts, these accept */
    assert_int_equal(conf_init(&c, NULL), 0);
    c.no_include = 1;
    text = "a;b{}c 'x' \"y\";# z\nd\\;e;";
    assert_int_equal(conf_parse(&c, text, strlen(text), "t.conf"), 0);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.d[2].args[1], "y");
    assert_string_equal(c.d[3].name, "d\\;e");       /* kept, as nginx */
    conf_free(&c);
}


static void
times_read_as_ngx_parse_time(void **state)
{
    assert_int_equal(conf_parse_time("30s", 0), 30000);
    assert_int_equal(conf_parse_time("1h30m", 0), 5400000);
    assert_int_equal(conf_parse_time("500ms", 0), 500);
    assert_int_equal(conf_parse_time("90", 0), 90000);  /* seconds */
    assert_int_equal(conf_parse_time("2d", 0), 2 * 86400000LL);
    assert_int_equal(conf_parse_time("1w", 1), 7 * 86400);
    assert_int_equal(conf_parse_time("1y", 1), 365 * 86400);
    assert_int_equal(conf_parse_time("1M", 1), 30 * 86400);
    assert_int_equal(conf_parse_time("500ms", 1), -1);  /* seconds only */
    assert_int_equal(conf_parse_time("1s1h", 0), -1);   /* order */
    assert_int_equal(conf_parse_time("1m1m", 0), -1);
    assert_int_equal(conf_parse_time("", 0), -1);
    assert_int_equal(conf_parse_time("s", 0), -1);
    assert_int_equal(conf_parse_time("5x", 0), -1);
    assert_int_equal(conf_parse_time("-5s", 0), -1);
}


static void
fingerprint_differs_by_part_value_and_secret(void **state)
{
    unsigned char  k1[TS_WIRE_KEY_LEN], k2[TS_WIRE_KEY_LEN];
    char           a[TS_WIRE_FP_HEX + 1], b[TS_WIRE_FP_HEX + 1];
    const char    *s1 = "0123456789abcdef0123456789abcdef";
    const char    *s2 = "0123456789abcdef0123456789abcdeF";

    ts_wire_derive(s1, strlen(s1), TS_WIRE_LABEL_CONFIG, k1);
    ts_wire_derive(s2, strlen(s2), TS_WIRE_LABEL_CONFIG, k2);

    ts_wire_fingerprint(k1, "store", "sqlite:/a.db", a);
    assert_int_equal(strlen(a), TS_WIRE_FP_HEX);
    assert_int_equal(strspn(a, "0123456789abcdef"), TS_WIRE_FP_HEX);
    ts_wire_fingerprint(k1, "store", "sqlite:/a.db", b);
    assert_string_equal(a, b);                       /* deterministic */
    ts_wire_fingerprint(k1, "store", "sqlite:/b.db", b);
    assert_string_not_equal(a, b);                   /* the value */
    ts_wire_fingerprint(k1, "socket", "sqlite:/a.db", b);
    assert_string_not_equal(a, b);                   /* the part */
    ts_wire_fingerprint(k2, "store", "sqlite:/a.db", b);
    assert_string_not_equal(a, b);                   /* the secret */
    /* "store\0x" + "" is not "store" + "\0x": the part ends at its NUL */
    ts_wire_fingerprint(k1, "secret", "", a);
    ts_wire_fingerprint(k2, "secret", "", b);
    assert_string_not_equal(a, b);
    assert_null(strstr(a, "30313233"));              /* not the secret */
}


int
test_conf_run(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(includes_are_read_in_place_in_their_block),
        cmocka_unit_test(file_errors_name_the_file_and_line),
        cmocka_unit_test(text_errors_are_nginx_s),
        cmocka_unit_test(times_read_as_ngx_parse_time),
        cmocka_unit_test(fingerprint_differs_by_part_value_and_secret),
    };

    return cmocka_run_group_tests_name("conf", tests, NULL, NULL);
}

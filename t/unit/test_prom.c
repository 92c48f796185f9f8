/*
 * test_prom: the Prometheus text writer (shared/core/ts_prom.h).
 *
 * Protects what a scraper relies on: HELP and TYPE lines before the
 * samples, label values escaped (backslash, quote, newline) and HELP text
 * escaped (backslash, newline), histograms written cumulative through
 * le="+Inf" with _count equal to it, and the route names the module's
 * request counter uses.
 *
 * Linked into the single unit-test binary: no main() here; the runner
 * calls test_prom_run().
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ts_api.h"
#include "ts_prom.h"

int test_prom_run(void);


static void
family_lines_come_first_and_help_is_escaped(void **state)
{
    ts_prom_t    p;
    const char  *text;
    size_t       len;

    ts_prom_init(&p);
    ts_prom_family(&p, "ticket_x_total", "counter", "a \\ b\nc");
    ts_prom_u64(&p, "ticket_x_total", NULL, 42);
    text = ts_prom_text(&p, &len);
    assert_non_null(text);
    assert_string_equal(text,
                        "# HELP ticket_x_total a \\\\ b\\nc\n"
                        "# TYPE ticket_x_total counter\n"
                        "ticket_x_total 42\n");
    assert_int_equal(len, strlen(text));
    ts_prom_free(&p);
}


static void
label_values_are_escaped(void **state)
{
    ts_prom_t    p;
    const char  *labels[] = { "zone", "a\"b\\c\nd", "code", "200", NULL };
    size_t       len;

    ts_prom_init(&p);
    ts_prom_u64(&p, "ticket_y_total", labels, 7);
    assert_string_equal(ts_prom_text(&p, &len),
                        "ticket_y_total{zone=\"a\\\"b\\\\c\\nd\","
                        "code=\"200\"} 7\n");
    ts_prom_free(&p);
}


static void
histogram_is_cumulative_and_ends_at_inf(void **state)
{
    ts_prom_t       p;
    const char     *labels[] = { "kind", "email", NULL };
    const double    bounds[] = { 0.1, 1 };
    const uint64_t  counts[] = { 2, 3, 1 };   /* <=0.1, <=1, above */
    size_t          len;

    ts_prom_init(&p);
    ts_prom_histogram(&p, "ticket_h_seconds", labels, bounds, 2, counts,
                      4.5);
    assert_string_equal(ts_prom_text(&p, &len),
        "ticket_h_seconds_bucket{kind=\"email\",le=\"0.1\"} 2\n"
        "ticket_h_seconds_bucket{kind=\"email\",le=\"1\"} 5\n"
        "ticket_h_seconds_bucket{kind=\"email\",le=\"+Inf\"} 6\n"
        "ticket_h_seconds_sum{kind=\"email\"} 4.5\n"
        "ticket_h_seconds_count{kind=\"email\"} 6\n");
    ts_prom_free(&p);
}


static void
an_empty_text_is_an_empty_string(void **state)
{
    ts_prom_t    p;
    const char  *text;
    size_t       len = 99;

    ts_prom_init(&p);
    text = ts_prom_text(&p, &len);
    assert_non_null(text);
    assert_int_equal(len, 0);
    assert_string_equal(text, "");
    ts_prom_free(&p);
}


static void
route_ids_name_the_route_templates(void **state)
{
    ts_match_t  m;
    int         id, n = ts_api_routes();

    assert_int_equal(ts_api_match(TS_GET, "/api/tickets/abc", 16, &m, NULL,
                                  0), 200);
    id = ts_api_route_id(&m);
    assert_true(id >= 0 && id < n);
    assert_string_equal(ts_api_route_name(id), "GET /api/tickets/:id");

    /* another id, the same template */
    assert_int_equal(ts_api_match(TS_HEAD, "/api/tickets/xyz/", 17, &m,
                                  NULL, 0), 200);
    assert_int_equal(ts_api_route_id(&m), id);

    assert_null(ts_api_route_name(-1));
    assert_null(ts_api_route_name(n));
    memset(&m, 0, sizeof(m));
    assert_int_equal(ts_api_route_id(&m), -1);
}


int
test_prom_run(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(family_lines_come_first_and_help_is_escaped),
        cmocka_unit_test(label_values_are_escaped),
        cmocka_unit_test(histogram_is_cumulative_and_ends_at_inf),
        cmocka_unit_test(an_empty_text_is_an_empty_string),
        cmocka_unit_test(route_ids_name_the_route_templates),
    };

    return cmocka_run_group_tests_name("prom", tests, NULL, NULL);
}

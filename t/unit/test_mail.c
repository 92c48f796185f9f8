/*
 * test_mail: email templates and wire forms (shared/ts_mail.h).
 * Protects: every template of DESIGN 5.4 renders; a ticket title cannot
 * inject headers; the RFC 5322 form has CRLF line ends; the SendGrid body
 * has the v3 shape; unknown templates and bad addresses are refused.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ts_mail.h"

int test_mail_run(void);


static void
every_template_renders(void **state)
{
    static const char  *tmpl[] = { "welcome", "assigned", "comment",
                                   "modreq_submitted", "modreq_new",
                                   "modreq_accepted", "modreq_rejected" };
    ts_mail_t           m;
    char                err[128];
    json_t             *p;

    for (size_t i = 0; i < sizeof(tmpl) / sizeof(tmpl[0]); i++) {
        p = json_pack("{s:s, s:s, s:s, s:s, s:[s]}", "template", tmpl[i],
                      "to", "a@b.io", "username", "ann",
                      "ticketTitle", "Broken login", "skills", "go");
        assert_int_equal(ts_mail_render(p, &m, err, sizeof(err)), 0);
        assert_string_equal(m.to, "a@b.io");
        assert_true(strlen(m.subject) > 0);
        assert_true(strlen(m.text) > 0);
        ts_mail_clear(&m);
        json_decref(p);
    }

    p = json_pack("{s:s, s:s}", "template", "nope", "to", "a@b.io");
    assert_int_equal(ts_mail_render(p, &m, err, sizeof(err)), -1);
    json_decref(p);
    p = json_pack("{s:s, s:s}", "template", "welcome", "to", "not-an-address");
    assert_int_equal(ts_mail_render(p, &m, err, sizeof(err)), -1);
    json_decref(p);
}


static void
titles_cannot_inject_headers(void **state)
{
    ts_mail_t   m;
    char        err[128], *msg, *hdr_end;
    size_t      len;
    json_t     *p = json_pack("{s:s, s:s, s:s}", "template", "assigned",
                              "to", "mod@x.io", "ticketTitle",
                              "hi\r\nBcc: victim@evil.io\r\n\r\nbody");

    assert_int_equal(ts_mail_render(p, &m, err, sizeof(err)), 0);
    assert_null(strchr(m.subject, '\n'));
    assert_null(strchr(m.subject, '\r'));
    msg = ts_mail_rfc5322(&m, "Desk <desk@x.io>", "abc", 1700000000, &len);
    assert_non_null(msg);
    assert_int_equal(len, strlen(msg));
    hdr_end = strstr(msg, "\r\n\r\n");
    assert_non_null(hdr_end);
    /* no Bcc header among the headers */
    *hdr_end = '\0';
    assert_null(strstr(msg, "\r\nBcc:"));
    assert_non_null(strstr(msg, "Subject: Ticket Assigned: hi  Bcc:"));
    free(msg);
    ts_mail_clear(&m);
    json_decref(p);
}


static void
sendgrid_body_has_the_v3_shape(void **state)
{
    ts_mail_t   m;
    char        err[128];
    json_t     *p = json_pack("{s:s, s:s}", "template", "welcome", "to",
                              "new@x.io");
    json_t     *b;

    assert_int_equal(ts_mail_render(p, &m, err, sizeof(err)), 0);
    b = ts_mail_sendgrid(&m, "Ticket Desk <desk@x.io>");
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(json_array_get(
        json_object_get(json_array_get(json_object_get(b,
            "personalizations"), 0), "to"), 0), "email")), "new@x.io");
    assert_string_equal(json_string_value(json_object_get(
        json_object_get(b, "from"), "email")), "desk@x.io");
    assert_string_equal(json_string_value(json_object_get(
        json_object_get(b, "from"), "name")), "Ticket Desk");
    assert_string_equal(json_string_value(json_object_get(json_array_get(
        json_object_get(b, "content"), 0), "type")), "text/plain");
    json_decref(b);
    ts_mail_clear(&m);
    json_decref(p);
}


int
test_mail_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_template_renders),
        cmocka_unit_test(titles_cannot_inject_headers),
        cmocka_unit_test(sendgrid_body_has_the_v3_shape),
    };
    return cmocka_run_group_tests_name("mail", tests, NULL, NULL);
}

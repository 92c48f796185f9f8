/*
 * test_mail: email templates and wire forms (shared/domain/ts_mail.h).
 * Protects: every template of DESIGN 5.4 renders; a ticket title cannot
 * inject headers; the RFC 5322 form has CRLF line ends; the SendGrid body
 * has the v3 shape; unknown templates and bad addresses are refused.
 * Text is Unicode: non-ASCII subjects and names are RFC 2047
 * encoded-words (<= 75 characters, lines <= 76, split only between
 * characters) and bodies quoted-printable; both decode (with the small
 * decoders below) to exactly the text given, and the message is 7-bit.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "ts_mail.h"
#include "ts_validate.h"

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
        assert_int_equal(ts_mail_render(p, NULL, &m, err, sizeof(err)), 0);
        assert_string_equal(m.to, "a@b.io");
        assert_true(strlen(m.subject) > 0);
        assert_true(strlen(m.text) > 0);
        ts_mail_clear(&m);
        json_decref(p);
    }

    p = json_pack("{s:s, s:s}", "template", "nope", "to", "a@b.io");
    assert_int_equal(ts_mail_render(p, NULL, &m, err, sizeof(err)), -1);
    json_decref(p);
    p = json_pack("{s:s, s:s}", "template", "welcome", "to", "not-an-address");
    assert_int_equal(ts_mail_render(p, NULL, &m, err, sizeof(err)), -1);
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

    assert_int_equal(ts_mail_render(p, NULL, &m, err, sizeof(err)), 0);
    assert_null(strchr(m.subject, '\n'));
    assert_null(strchr(m.subject, '\r'));
    msg = ts_mail_rfc5322(&m, "Desk <desk@x.io>", NULL, "abc", 1700000000,
                          &len);
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
public_url_links_the_ticket_and_reply_to_reaches_both_forms(void **state)
{
    ts_mail_t    m;
    char         err[128], *msg, *hdr_end;
    size_t       len;
    json_t      *b, *p;
    const char  *id = "65a1b2c3d4e5f60718293a4b";

    p = json_pack("{s:s, s:s, s:s, s:s}", "template", "assigned", "to",
                  "mod@x.io", "ticketTitle", "Printer", "ticketId", id);
    /* the trailing slash of the setting does not double */
    assert_int_equal(ts_mail_render(p, "https://t.example.org/", &m, err,
                                    sizeof(err)), 0);
    assert_non_null(strstr(m.text, "Open it: https://t.example.org/tickets/"
                                   "65a1b2c3d4e5f60718293a4b\n"));
    msg = ts_mail_rfc5322(&m, "Desk <desk@x.io>", "Help <help@x.io>", "abc",
                          1700000000, &len);
    assert_non_null(msg);
    hdr_end = strstr(msg, "\r\n\r\n");
    assert_non_null(hdr_end);
    *hdr_end = '\0';
    assert_non_null(strstr(msg, "\r\nReply-To: Help <help@x.io>\r\n"));
    free(msg);
    b = ts_mail_sendgrid(&m, "Desk <desk@x.io>", "help@x.io");
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(
        json_object_get(b, "reply_to"), "email")), "help@x.io");
    json_decref(b);
    b = ts_mail_sendgrid(&m, "Desk <desk@x.io>", NULL);
    assert_null(json_object_get(b, "reply_to"));
    json_decref(b);
    ts_mail_clear(&m);
    json_decref(p);

    /* every mail about a ticket links it: the comment notice too */
    p = json_pack("{s:s, s:s, s:s, s:s, s:s}", "template", "comment", "to",
                  "u@x.io", "ticketTitle", "Printer", "ticketId", id,
                  "excerpt", "hello");
    assert_int_equal(ts_mail_render(p, "https://t.example.org", &m, err,
                                    sizeof(err)), 0);
    assert_non_null(strstr(m.text, "Open it: https://t.example.org/tickets/"
                                   "65a1b2c3d4e5f60718293a4b\n"));
    ts_mail_clear(&m);
    json_decref(p);

    /* a mail about no ticket links the site; no setting, no link */
    p = json_pack("{s:s, s:s}", "template", "welcome", "to", "n@x.io");
    assert_int_equal(ts_mail_render(p, "http://127.0.0.1:8080", &m, err,
                                    sizeof(err)), 0);
    assert_non_null(strstr(m.text, "\nhttp://127.0.0.1:8080/\n"));
    ts_mail_clear(&m);
    assert_int_equal(ts_mail_render(p, NULL, &m, err, sizeof(err)), 0);
    assert_null(strstr(m.text, "http"));
    ts_mail_clear(&m);
    json_decref(p);

    assert_int_equal(ts_mail_address_check("Desk <desk@x.io>"), 0);
    assert_int_equal(ts_mail_address_check("desk@x.io"), 0);
    assert_int_equal(ts_mail_address_check("desk"), -1);
    assert_int_equal(ts_mail_address_check("Desk <desk@x.io"), -1);
    assert_int_equal(ts_mail_address_check("D <a@x.io> <b@x.io>"), -1);
    assert_int_equal(ts_mail_address_check("D\r\nBcc: <a@x.io>"), -1);
}


static void
sendgrid_body_has_the_v3_shape(void **state)
{
    ts_mail_t   m;
    char        err[128];
    json_t     *p = json_pack("{s:s, s:s}", "template", "welcome", "to",
                              "new@x.io");
    json_t     *b;

    assert_int_equal(ts_mail_render(p, NULL, &m, err, sizeof(err)), 0);
    b = ts_mail_sendgrid(&m, "Ticket Desk <desk@x.io>", NULL);
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


/* Texts around the world: Cyrillic, CJK, Arabic (RTL), 4-byte emoji,
 * combining marks, zero-width characters, long ASCII with "=?". */
static const char  *world[] = {
    "\xd0\x97\xd0\xb4\xd1\x80\xd0\xb0\xd0\xb2\xd1\x81\xd1\x82\xd0\xb2\xd1\x83"
    "\xd0\xb9\xd1\x82\xd0\xb5! \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"
    " \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd0\x9f\xd1\x80\xd0\xb8"
    "\xd0\xb2\xd0\xb5\xd1\x82",
    "\xe7\x99\xbb\xe5\xbd\x95\xe5\xa4\xb1\xe8\xb4\xa5\xef\xbc\x9a\xe6\x97\xa0"
    "\xe6\xb3\x95\xe8\xae\xbf\xe9\x97\xae\xe6\x88\x91\xe7\x9a\x84\xe8\xb4\xa6"
    "\xe6\x88\xb7\xe7\x99\xbb\xe5\xbd\x95\xe5\xa4\xb1\xe8\xb4\xa5",
    "\xd9\x84\xd8\xa7 \xd9\x8a\xd9\x85\xd9\x83\xd9\x86\xd9\x86\xd9\x8a \xd8\xaa"
    "\xd8\xb3\xd8\xac\xd9\x8a\xd9\x84 \xd8\xa7\xd9\x84\xd8\xaf\xd8\xae\xd9\x88"
    "\xd9\x84 (login) \xd9\x85\xd9\x86\xd8\xb0 \xd8\xa7\xd9\x84\xd8\xa3\xd9\x85"
    "\xd8\xb3",
    "\xf0\x9f\x98\x80\xf0\x9f\x94\xa5\xf0\x9f\x9a\x80\xf0\x9f\x98\x80\xf0\x9f"
    "\x94\xa5\xf0\x9f\x9a\x80\xf0\x9f\x98\x80\xf0\x9f\x94\xa5\xf0\x9f\x9a\x80"
    "\xf0\x9f\x98\x80\xf0\x9f\x94\xa5\xf0\x9f\x9a\x80\xf0\x9f\x98\x80\xf0\x9f"
    "\x94\xa5\xf0\x9f\x9a\x80",
    "Cafe\xcc\x81 re\xcc\x81sume\xcc\x81 n\xcc\x83 a\xcc\x8a\xcc\x81 Zalgo "
    "Z\xcd\x91\xcd\x97\xcc\xb6" "a\xcd\x8c\xcd\x97l\xcd\x8c\xcd\x81g\xcc\x92o",
    "zero\xe2\x80\x8bwidth\xe2\x80\x8c join\xe2\x80\x8d\xef\xbb\xbf"
    "\xe2\x80\x8f rtl mark",
    "A plain subject that is far too long for one header line =?UTF-8?Q?x?= "
    "and goes on and on past seventy-six columns",
    "short",
};


/* Decode the base64 in s[0..n) into out; its length. */
static size_t
b64_decode(const char *s, size_t n, unsigned char *out)
{
    int     k = EVP_DecodeBlock(out, (const unsigned char *) s, (int) n);
    size_t  pad = 0;

    assert_true(k >= 0);
    while (n > 0 && s[n - 1] == '=') {
        pad++;
        n--;
    }
    return (size_t) k - pad;
}


/*
 * Unfold and decode the value of header field hdr ("Field: ...\r\n...")
 * into out, checking the wire rules on the way: ASCII only, lines of at
 * most 76 characters, encoded-words of at most 75, each holding whole
 * characters.  Plain text between words is copied; folding between two
 * encoded-words is dropped (RFC 2047 6.2).
 */
static void
decode_header(const char *hdr, char *out, size_t outlen)
{
    const char     *p, *line, *q, *end;
    unsigned char   bytes[128];
    size_t          o = 0, n, plain;
    int             after_word = 0;

    for (p = hdr; *p; p++) {
        assert_true((unsigned char) *p < 0x80);
    }
    /* every line within 76 characters, CRLF ends, continuation with SP */
    for (line = hdr; *line; line = end + 2) {
        end = strstr(line, "\r\n");
        assert_non_null(end);
        assert_true(end - line <= 76);
        if (line != hdr) {
            assert_int_equal(line[0], ' ');
        }
    }
    p = strchr(hdr, ':');
    assert_non_null(p);
    p += 2;
    while (*p) {
        if (strncmp(p, "=?UTF-8?B?", 10) == 0) {
            q = strstr(p + 10, "?=");
            assert_non_null(q);
            assert_true(q + 2 - p <= 75);
            n = b64_decode(p + 10, (size_t) (q - p - 10), bytes);
            /* split only between characters: each word is valid alone */
            assert_true(ts_valid_utf8((char *) bytes, n));
            assert_true(o + n < outlen);
            memcpy(out + o, bytes, n);
            o += n;
            p = q + 2;
            after_word = 1;
            continue;
        }
        if (strncmp(p, "\r\n", 2) == 0) {
            p += 2;
            if (*p == ' ' && after_word && strncmp(p + 1, "=?", 2) == 0) {
                p++;            /* folding between two words */
                continue;
            }
            continue;           /* unfold: CRLF goes, the SP stays */
        }
        plain = strcspn(p, "\r");
        if (after_word && strncmp(p, " <", 2) == 0) {
            /* the address after a display name */
        }
        assert_true(o + plain < outlen);
        memcpy(out + o, p, plain);
        o += plain;
        p += plain;
        after_word = 0;
    }
    out[o] = '\0';
}


static void
subjects_in_any_script_are_encoded_words_that_decode_back(void **state)
{
    char    *h, dec[4096];
    size_t   i;

    for (i = 0; i < sizeof(world) / sizeof(world[0]); i++) {
        h = ts_mail_header("Subject", world[i], NULL);
        assert_non_null(h);
        decode_header(h, dec, sizeof(dec));
        assert_string_equal(dec, world[i]);
        if (strlen(world[i]) < 40 && strchr(world[i], 0x80) == NULL
            && ts_utf8_len(world[i], strlen(world[i])) == strlen(world[i]))
        {
            /* short plain ASCII stays readable */
            assert_int_equal(strncmp(h, "Subject: short\r\n", 16), 0);
        }
        free(h);
    }
}


/* Every cut of a mixed text (1- to 4-byte characters) encodes and
 * decodes back: the word boundaries fall anywhere in the text. */
static void
encoded_words_split_only_between_characters(void **state)
{
    char    text[1024], *h, dec[4096];
    size_t  n, len;

    snprintf(text, sizeof(text), "%s%s%s%s", world[0], world[3], world[1],
             world[4]);
    len = strlen(text);
    for (n = 1; n <= len; n++) {
        if (ts_utf8_cut(text, len, (size_t) -1, n) != n) {
            continue;           /* not a character boundary */
        }
        text[n] = '\0';
        h = ts_mail_header("Subject", text, NULL);
        assert_non_null(h);
        decode_header(h, dec, sizeof(dec));
        assert_string_equal(dec, text);
        free(h);
        snprintf(text, sizeof(text), "%s%s%s%s", world[0], world[3],
                 world[1], world[4]);
    }
}


static void
display_names_are_encoded_or_quoted(void **state)
{
    char  *h, dec[512];

    h = ts_mail_header("From", world[0], "desk@x.io");
    assert_non_null(h);
    decode_header(h, dec, sizeof(dec));
    /* the decoded value is the name, then the address */
    assert_int_equal(strncmp(dec, world[0], strlen(world[0])), 0);
    assert_string_equal(dec + strlen(world[0]), " <desk@x.io>");
    free(h);

    h = ts_mail_header("To", "Ticket Desk", "desk@x.io");
    assert_string_equal(h, "To: Ticket Desk <desk@x.io>\r\n");
    free(h);
    h = ts_mail_header("To", "ann.lee \"A\"", "a@x.io");
    assert_string_equal(h, "To: \"ann.lee \\\"A\\\"\" <a@x.io>\r\n");
    free(h);
    h = ts_mail_header("To", NULL, "a@x.io");
    assert_string_equal(h, "To: a@x.io\r\n");
    free(h);
}


/* Decode a quoted-printable body (checking lines <= 76, ASCII only). */
static size_t
qp_decode(const char *s, char *out)
{
    const char  *line = s, *end;
    size_t       o = 0;
    unsigned     v;

    while (*line) {
        end = strstr(line, "\r\n");
        if (end == NULL) {
            end = line + strlen(line);
        }
        assert_true(end - line <= 76);
        /* no whitespace left at the end of an encoded line */
        assert_true(end == line || (end[-1] != ' ' && end[-1] != '\t'));
        for (const char *p = line; p < end; p++) {
            assert_true((unsigned char) *p < 0x80);
            if (*p == '=' && p + 1 == end) {
                break;          /* soft line break */
            }
            if (*p == '=') {
                assert_int_equal(sscanf(p + 1, "%2X", &v), 1);
                out[o++] = (char) v;
                p += 2;
            } else {
                out[o++] = *p;
            }
        }
        if (*end == '\0') {
            break;
        }
        if (end == line || end[-1] != '=') {
            out[o++] = '\n';    /* a hard line break */
        }
        line = end + 2;
    }
    out[o] = '\0';
    return o;
}


static void
bodies_are_quoted_printable_that_decodes_back(void **state)
{
    char    text[8192], *qp, dec[8192];
    size_t  i, n, o = 0;

    for (i = 0; i < sizeof(world) / sizeof(world[0]); i++) {
        n = strlen(world[i]);
        memcpy(text + o, world[i], n);
        o += n;
        memcpy(text + o, i % 2 ? " \n" : "\n\n", 2);
        o += 2;
    }
    /* a long line of '=' and a line ending in a tab */
    memset(text + o, '=', 200);
    o += 200;
    memcpy(text + o, "\ttab\t\n", 6);
    o += 6;
    text[o] = '\0';

    qp = ts_mail_qp(text, o, &n);
    assert_non_null(qp);
    assert_int_equal(n, strlen(qp));
    assert_int_equal(qp_decode(qp, dec), o);
    assert_string_equal(dec, text);
    free(qp);
}


static void
message_is_7bit_utf8_mime(void **state)
{
    ts_mail_t   m;
    char        err[128], *msg, *hdr_end, *p, dec[1024];
    size_t      len;
    json_t     *pl = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}",
                               "template", "comment", "to", "ann@x.io",
                               "toName", world[2], "ticketTitle", world[1],
                               "author", "mod.1", "excerpt", world[3]);

    assert_int_equal(ts_mail_render(pl, NULL, &m, err, sizeof(err)), 0);
    assert_string_equal(m.to_name, world[2]);
    msg = ts_mail_rfc5322(&m, "\xd0\xa1\xd0\xbb\xd1\x83\xd0\xb6\xd0\xb1\xd0\xb0"
                          " <desk@x.io>", NULL, "abc", 1700000000, &len);
    assert_non_null(msg);
    for (p = msg; *p; p++) {
        assert_true((unsigned char) *p < 0x80);
    }
    hdr_end = strstr(msg, "\r\n\r\n");
    assert_non_null(hdr_end);
    assert_non_null(strstr(msg, "Content-Type: text/plain; charset=UTF-8\r\n"));
    assert_non_null(strstr(msg, "Content-Transfer-Encoding: "
                                "quoted-printable\r\n"));
    qp_decode(hdr_end + 4, dec);
    assert_string_equal(dec, m.text);
    assert_non_null(strstr(dec, world[3]));
    free(msg);

    /* SendGrid: the same text as JSON strings, names included */
    {
        json_t  *b = ts_mail_sendgrid(&m, "Desk <desk@x.io>", NULL);
        json_t  *to = json_array_get(json_object_get(json_array_get(
                          json_object_get(b, "personalizations"), 0), "to"),
                          0);
        char    *dump = json_dumps(b, JSON_COMPACT);

        assert_string_equal(json_string_value(json_object_get(to, "name")),
                            world[2]);
        assert_string_equal(json_string_value(json_object_get(b, "subject")),
                            m.subject);
        assert_true(ts_valid_utf8(dump, strlen(dump)));
        free(dump);
        json_decref(b);
    }
    ts_mail_clear(&m);
    json_decref(pl);
}


/* A subject keeps 200 characters of a long title, not 200 bytes. */
static void
subjects_are_cut_by_characters(void **state)
{
    ts_mail_t   m;
    char        err[128], title[1024];
    size_t      i;
    json_t     *pl;

    for (i = 0; i < 250; i++) {
        memcpy(title + 4 * i, "\xf0\x9f\x98\x80", 4);
    }
    title[1000] = '\0';
    pl = json_pack("{s:s, s:s, s:s}", "template", "assigned", "to",
                   "mod@x.io", "ticketTitle", title);
    assert_int_equal(ts_mail_render(pl, NULL, &m, err, sizeof(err)), 0);
    assert_true(ts_valid_utf8(m.subject, strlen(m.subject)));
    assert_int_equal(ts_utf8_len(m.subject, strlen(m.subject)),
                     TS_MAIL_SUBJECT_MAX);
    ts_mail_clear(&m);
    json_decref(pl);
}


static void
reset_mail_links_the_reset_page_and_carries_only_a_valid_token(void **state)
{
    const char  *tok = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234";
    ts_mail_t    m;
    char         err[128];
    json_t      *p;

    p = json_pack("{s:s, s:s, s:s, s:s}", "template", "password_reset",
                  "to", "a@b.io", "username", "ann", "resetToken", tok);
    assert_int_equal(ts_mail_render(p, "https://help.example/", &m, err,
                                    sizeof(err)), 0);
    assert_string_equal(m.subject, "Reset your password");
    assert_non_null(strstr(m.text, "https://help.example/reset?token="
                                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234"
                                   "\n"));
    /* one link: not the generic one to the site as well */
    assert_null(strstr(m.text, "https://help.example/\n"));
    ts_mail_clear(&m);
    /* without a public URL the path is still there */
    assert_int_equal(ts_mail_render(p, NULL, &m, err, sizeof(err)), 0);
    assert_non_null(strstr(m.text, "\n/reset?token=abcdefghij"));
    ts_mail_clear(&m);
    json_decref(p);

    /* a token that could carry anything else is refused */
    p = json_pack("{s:s, s:s, s:s}", "template", "password_reset",
                  "to", "a@b.io", "resetToken",
                  "abcdefghijklmnop\nBcc: x@y.z");
    assert_int_equal(ts_mail_render(p, NULL, &m, err, sizeof(err)), -1);
    json_decref(p);
    p = json_pack("{s:s, s:s}", "template", "password_reset", "to", "a@b.io");
    assert_int_equal(ts_mail_render(p, NULL, &m, err, sizeof(err)), -1);
    json_decref(p);

    /* the notice says how, and carries no link to act on */
    p = json_pack("{s:s, s:s, s:s, s:s}", "template", "password_changed",
                  "to", "a@b.io", "username", "ann", "how", "reset");
    assert_int_equal(ts_mail_render(p, NULL, &m, err, sizeof(err)), 0);
    assert_string_equal(m.subject, "Your password was changed");
    assert_non_null(strstr(m.text, "reset through an emailed link"));
    assert_null(strstr(m.text, "token"));
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
        cmocka_unit_test(
            subjects_in_any_script_are_encoded_words_that_decode_back),
        cmocka_unit_test(encoded_words_split_only_between_characters),
        cmocka_unit_test(display_names_are_encoded_or_quoted),
        cmocka_unit_test(bodies_are_quoted_printable_that_decodes_back),
        cmocka_unit_test(message_is_7bit_utf8_mime),
        cmocka_unit_test(subjects_are_cut_by_characters),
        cmocka_unit_test(
            public_url_links_the_ticket_and_reply_to_reaches_both_forms),
        cmocka_unit_test(
            reset_mail_links_the_reset_page_and_carries_only_a_valid_token),
    };
    return cmocka_run_group_tests_name("mail", tests, NULL, NULL);
}

/*
 * test_sio: the Engine.IO v4 / Socket.IO v5 codec (shared/proto/ts_sio.h).
 *
 * Protects what socket.io-client 4.x (transports: ['websocket'],
 * auth: {token}) sends and expects: the open packet, CONNECT with auth and
 * its reply, CONNECT_ERROR, events with and without ack ids, acks,
 * namespaces, disconnect; encoders escape JSON and round-trip through the
 * parser; every malformed or oversized input is refused with a reason and
 * leaves nothing allocated.
 *
 * Linked into the single unit-test binary: no main() here; the runner
 * calls test_sio_run().
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ts_sio.h"

int test_sio_run(void);

#define MAXLEN  65536

/* Parse NUL-terminated s, asserting success. */
static void
parse_ok(const char *s, ts_sio_packet_t *p)
{
    char  err[64];
    int   rc = ts_sio_parse(s, strlen(s), MAXLEN, p, err, sizeof(err));

    if (rc != 0) {
        fail_msg("parse of '%s' failed: %s", s, err);
    }
}

/* Parse s[0..n), asserting it is refused with a non-empty reason. */
static void
parse_bad_n(const char *s, size_t n, size_t max_len)
{
    ts_sio_packet_t  p;
    char             err[64];

    memset(&p, 0xa5, sizeof(p));
    if (ts_sio_parse(s, n, max_len, &p, err, sizeof(err)) != -1) {
        fail_msg("'%.*s' was accepted", (int) n, s);
    }
    assert_true(err[0] != '\0');
    /* after a failure the packet owns nothing and reads as empty */
    assert_null(p.data);
    assert_null(p.args);
    assert_null(p.event);
    assert_int_equal(p.has_sio, 0);
    assert_string_equal(p.nsp, "/");
    assert_int_equal(p.ack_id, -1);
    ts_sio_packet_clear(&p);
}

static void
parse_bad(const char *s)
{
    parse_bad_n(s, strlen(s), MAXLEN);
}

/* The reason given for refusing s contains want. */
static void
assert_reason(const char *s, const char *want)
{
    ts_sio_packet_t  p;
    char             err[64];

    assert_int_equal(ts_sio_parse(s, strlen(s), MAXLEN, &p, err,
                                  sizeof(err)), -1);
    if (strstr(err, want) == NULL) {
        fail_msg("'%s': reason '%s' lacks '%s'", s, err, want);
    }
}

static json_t *
json_of(const char *s)
{
    json_t  *j = json_loads(s, JSON_DECODE_ANY, NULL);

    assert_non_null(j);
    return j;
}

/* Value j equals the JSON text want. */
static void
assert_json(const json_t *j, const char *want)
{
    json_t  *w = json_of(want);

    if (!json_equal(j, w)) {
        char *got = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        fail_msg("got %s, want %s", got ? got : "(null)", want);
    }
    json_decref(w);
}

/*
 * Encoder result s is exactly want and *len its length; frees s.  len is a
 * pointer so that it is read after the encoder call that fills it.
 */
static void
assert_encoded(char *s, const size_t *len, const char *want)
{
    assert_non_null(s);
    assert_string_equal(s, want);
    assert_int_equal(*len, strlen(want));
    free(s);
}


/* ---- Engine.IO ---- */

static void
test_eio_control_packets_are_one_digit(void **state)
{
    static const struct { const char *s; ts_eio_type_e t; } cases[] = {
        { "1", TS_EIO_CLOSE }, { "2", TS_EIO_PING }, { "3", TS_EIO_PONG },
        { "5", TS_EIO_UPGRADE }, { "6", TS_EIO_NOOP },
    };
    ts_sio_packet_t  p;
    size_t           i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse_ok(cases[i].s, &p);
        assert_int_equal(p.eio, cases[i].t);
        assert_int_equal(p.has_sio, 0);
        assert_null(p.data);
        ts_sio_packet_clear(&p);
    }
    parse_bad("2x");
    parse_bad("3probe");
    parse_bad("1 ");
}

static void
test_eio_open_packet_has_handshake_fields_in_order(void **state)
{
    ts_sio_packet_t  p;
    size_t           len = 0;
    char            *s;

    s = ts_eio_open("AbC-_1234567890abcde", 25000, 20000, 1000000, &len);
    assert_non_null(s);
    assert_string_equal(s, "0{\"sid\":\"AbC-_1234567890abcde\","
                        "\"upgrades\":[],\"pingInterval\":25000,"
                        "\"pingTimeout\":20000,\"maxPayload\":1000000}");
    assert_int_equal(len, strlen(s));

    parse_ok(s, &p);
    assert_int_equal(p.eio, TS_EIO_OPEN);
    assert_int_equal(p.has_sio, 0);
    assert_json(p.data, "{\"sid\":\"AbC-_1234567890abcde\",\"upgrades\":[],"
                "\"pingInterval\":25000,\"pingTimeout\":20000,"
                "\"maxPayload\":1000000}");
    ts_sio_packet_clear(&p);
    free(s);

    assert_null(ts_eio_open(NULL, 1, 1, 1, NULL));
    assert_null(ts_eio_open("x", -1, 1, 1, NULL));
    assert_null(ts_eio_open("x", 1, -1, 1, NULL));
    assert_null(ts_eio_open("x", 1, 1, -1, NULL));
    parse_bad("0[1]");
    parse_bad("0{");
}


/* ---- CONNECT ---- */

static void
test_client_connect_with_auth_token(void **state)
{
    ts_sio_packet_t  p;

    parse_ok("40{\"token\":\"abc\"}", &p);
    assert_int_equal(p.eio, TS_EIO_MESSAGE);
    assert_int_equal(p.has_sio, 1);
    assert_int_equal(p.sio, TS_SIO_CONNECT);
    assert_string_equal(p.nsp, "/");
    assert_int_equal(p.ack_id, -1);
    assert_string_equal(json_string_value(json_object_get(p.data, "token")),
                        "abc");
    assert_null(p.event);
    assert_null(p.args);
    ts_sio_packet_clear(&p);
}

static void
test_client_connect_without_auth_has_no_data(void **state)
{
    ts_sio_packet_t  p;

    parse_ok("40", &p);
    assert_int_equal(p.sio, TS_SIO_CONNECT);
    assert_null(p.data);
    ts_sio_packet_clear(&p);
}

static void
test_connect_to_namespace(void **state)
{
    ts_sio_packet_t  p;

    parse_ok("40/admin,{\"token\":\"x\"}", &p);
    assert_int_equal(p.sio, TS_SIO_CONNECT);
    assert_string_equal(p.nsp, "/admin");
    assert_json(p.data, "{\"token\":\"x\"}");
    ts_sio_packet_clear(&p);

    parse_ok("40/admin,", &p);
    assert_string_equal(p.nsp, "/admin");
    assert_null(p.data);
    ts_sio_packet_clear(&p);

    /* the default namespace spelt out is still "/" */
    parse_ok("40/,{}", &p);
    assert_string_equal(p.nsp, "/");
    ts_sio_packet_clear(&p);
}

static void
test_server_connect_reply(void **state)
{
    ts_sio_packet_t  p;
    size_t           len;
    char            *s;

    assert_encoded(ts_sio_connect_ok(NULL, "sid1", &len), &len,
                   "40{\"sid\":\"sid1\"}");
    assert_encoded(ts_sio_connect_ok("/", "sid1", &len), &len,
                   "40{\"sid\":\"sid1\"}");
    assert_encoded(ts_sio_connect_ok("/admin", "sid1", &len), &len,
                   "40/admin,{\"sid\":\"sid1\"}");

    s = ts_sio_connect_ok("/admin", "s2", NULL);
    parse_ok(s, &p);
    assert_int_equal(p.sio, TS_SIO_CONNECT);
    assert_string_equal(p.nsp, "/admin");
    assert_json(p.data, "{\"sid\":\"s2\"}");
    ts_sio_packet_clear(&p);
    free(s);

    assert_null(ts_sio_connect_ok(NULL, NULL, NULL));
    assert_null(ts_sio_connect_ok("admin", "s", NULL));
    assert_null(ts_sio_connect_ok("/a,b", "s", NULL));
    assert_null(ts_sio_connect_ok("/a b", "s", NULL));
}

static void
test_connect_error_reply(void **state)
{
    ts_sio_packet_t  p;
    size_t           len;
    char            *s;

    assert_encoded(ts_sio_connect_error(NULL, "Invalid token", &len), &len,
                   "44{\"message\":\"Invalid token\"}");
    assert_encoded(ts_sio_connect_error("/admin", "no", &len), &len,
                   "44/admin,{\"message\":\"no\"}");

    s = ts_sio_connect_error(NULL, "Invalid token", NULL);
    parse_ok(s, &p);
    assert_int_equal(p.sio, TS_SIO_CONNECT_ERROR);
    assert_json(p.data, "{\"message\":\"Invalid token\"}");
    ts_sio_packet_clear(&p);
    free(s);

    /* socket.io-parser also allows a bare string */
    parse_ok("44\"nope\"", &p);
    assert_string_equal(json_string_value(p.data), "nope");
    ts_sio_packet_clear(&p);
    parse_bad("44");
    parse_bad("44[1]");
}


/* ---- EVENT / ACK ---- */

static void
test_event_join_ticket(void **state)
{
    ts_sio_packet_t  p;

    parse_ok("42[\"join_ticket\",\"64b7f0c2a1\"]", &p);
    assert_int_equal(p.sio, TS_SIO_EVENT);
    assert_string_equal(p.nsp, "/");
    assert_int_equal(p.ack_id, -1);
    assert_string_equal(p.event, "join_ticket");
    assert_json(p.args, "[\"64b7f0c2a1\"]");
    assert_json(p.data, "[\"join_ticket\",\"64b7f0c2a1\"]");
    ts_sio_packet_clear(&p);
}

static void
test_event_without_arguments_has_empty_args(void **state)
{
    ts_sio_packet_t  p;

    parse_ok("42[\"ping_me\"]", &p);
    assert_string_equal(p.event, "ping_me");
    assert_true(json_is_array(p.args));
    assert_int_equal(json_array_size(p.args), 0);
    ts_sio_packet_clear(&p);
}

static void
test_event_with_ack_id(void **state)
{
    ts_sio_packet_t  p;

    parse_ok("421[\"join_ticket\",\"abc\"]", &p);
    assert_int_equal(p.sio, TS_SIO_EVENT);
    assert_int_equal(p.ack_id, 1);
    assert_string_equal(p.event, "join_ticket");
    assert_json(p.args, "[\"abc\"]");
    ts_sio_packet_clear(&p);

    parse_ok("42/admin,17[\"x\",1,{\"a\":null}]", &p);
    assert_string_equal(p.nsp, "/admin");
    assert_int_equal(p.ack_id, 17);
    assert_string_equal(p.event, "x");
    assert_json(p.args, "[1,{\"a\":null}]");
    ts_sio_packet_clear(&p);

    /* 15 digits is the limit, exact in int64 and a JavaScript number */
    parse_ok("42999999999999999[\"x\"]", &p);
    assert_int_equal(p.ack_id, TS_SIO_ACK_MAX);
    ts_sio_packet_clear(&p);

    parse_ok("420[\"x\"]", &p);
    assert_int_equal(p.ack_id, 0);
    ts_sio_packet_clear(&p);
}

static void
test_ack_reply(void **state)
{
    ts_sio_packet_t  p;
    json_t          *args = json_of("[{\"ok\":true}]");
    size_t           len;
    char            *s;

    assert_encoded(ts_sio_ack(NULL, 1, args, &len), &len,
                   "431[{\"ok\":true}]");
    assert_encoded(ts_sio_ack("/admin", 7, args, &len), &len,
                   "43/admin,7[{\"ok\":true}]");
    assert_encoded(ts_sio_ack(NULL, 0, NULL, &len), &len, "430[]");
    assert_encoded(ts_sio_ack(NULL, TS_SIO_ACK_MAX, NULL, &len), &len,
                   "43999999999999999[]");
    /* the borrowed args are untouched */
    assert_int_equal(args->refcount, 1);

    s = ts_sio_ack("/admin", 7, args, NULL);
    parse_ok(s, &p);
    assert_int_equal(p.sio, TS_SIO_ACK);
    assert_string_equal(p.nsp, "/admin");
    assert_int_equal(p.ack_id, 7);
    assert_json(p.data, "[{\"ok\":true}]");
    assert_json(p.args, "[{\"ok\":true}]");
    assert_null(p.event);
    ts_sio_packet_clear(&p);
    free(s);

    parse_ok("431[{\"ok\":true}]", &p);
    assert_int_equal(p.ack_id, 1);
    ts_sio_packet_clear(&p);

    assert_null(ts_sio_ack(NULL, -1, args, NULL));
    assert_null(ts_sio_ack(NULL, TS_SIO_ACK_MAX + 1, args, NULL));
    json_decref(args);
    args = json_of("{}");
    assert_null(ts_sio_ack(NULL, 1, args, NULL));
    json_decref(args);
}

static void
test_event_encoder_and_round_trip(void **state)
{
    ts_sio_packet_t  p;
    json_t          *args = json_of("[\"abc\",{\"n\":1.5,\"l\":[true,null]},"
                                    "-9223372036854775808]");
    size_t           len;
    char            *s;

    assert_encoded(ts_sio_event(NULL, "comment_added", args, &len), &len,
                   "42[\"comment_added\",\"abc\",{\"n\":1.5,\"l\":[true,null]},"
                   "-9223372036854775808]");
    assert_encoded(ts_sio_event(NULL, "hello", NULL, &len), &len,
                   "42[\"hello\"]");
    assert_int_equal(args->refcount, 1);

    s = ts_sio_event("/admin", "status_updated", args, &len);
    assert_non_null(s);
    assert_true(strncmp(s, "42/admin,[", 10) == 0);
    parse_ok(s, &p);
    assert_string_equal(p.nsp, "/admin");
    assert_string_equal(p.event, "status_updated");
    assert_true(json_equal(p.args, args));
    ts_sio_packet_clear(&p);
    free(s);

    json_decref(args);
    args = json_of("{}");
    assert_null(ts_sio_event(NULL, "x", args, NULL));
    json_decref(args);
    assert_null(ts_sio_event(NULL, NULL, NULL, NULL));
    assert_null(ts_sio_event(NULL, "disconnect", NULL, NULL));
    assert_null(ts_sio_event(NULL, "bad\xff", NULL, NULL));
    assert_null(ts_sio_event("nsp", "x", NULL, NULL));
}

static void
test_encoders_escape_json(void **state)
{
    ts_sio_packet_t  p;
    json_t          *args = json_pack("[s]", "line1\nline2\t\"q\"\\ \x01");
    size_t           len;
    char            *s;

    s = ts_sio_event(NULL, "say \"hi\"", args, &len);
    assert_encoded(strdup(s), &len,
                   "42[\"say \\\"hi\\\"\",\"line1\\nline2\\t\\\"q\\\"\\\\ "
                   "\\u0001\"]");
    parse_ok(s, &p);
    assert_string_equal(p.event, "say \"hi\"");
    assert_string_equal(json_string_value(json_array_get(p.args, 0)),
                        "line1\nline2\t\"q\"\\ \x01");
    ts_sio_packet_clear(&p);
    free(s);
    json_decref(args);

    assert_encoded(ts_sio_connect_error(NULL, "bad \"token\"", &len), &len,
                   "44{\"message\":\"bad \\\"token\\\"\"}");
    assert_encoded(ts_sio_connect_ok(NULL, "a\"b", &len), &len,
                   "40{\"sid\":\"a\\\"b\"}");
    /* the handshake never carries unescaped input either */
    s = ts_eio_open("q\"", 1, 2, 3, &len);
    assert_non_null(s);
    assert_non_null(strstr(s, "\"sid\":\"q\\\"\""));
    free(s);
}

static void
test_event_names_with_unicode(void **state)
{
    ts_sio_packet_t  p;
    json_t          *args = json_array();
    size_t           len;
    char            *s;

    /* raw UTF-8 */
    parse_ok("42[\"h\xc3\xa9llo \xe2\x9c\x93\",\"\xe6\x97\xa5\"]", &p);
    assert_string_equal(p.event, "h\xc3\xa9llo \xe2\x9c\x93");
    assert_string_equal(json_string_value(json_array_get(p.args, 0)),
                        "\xe6\x97\xa5");
    ts_sio_packet_clear(&p);

    /* \u escapes, including a surrogate pair, decode to UTF-8 */
    parse_ok("42[\"\\u00e9v\\ud83d\\ude00\"]", &p);
    assert_string_equal(p.event, "\xc3\xa9v\xf0\x9f\x98\x80");
    ts_sio_packet_clear(&p);

    /* encoded as UTF-8, not escaped, and read back the same */
    s = ts_sio_event(NULL, "\xc3\xa9v\xf0\x9f\x98\x80", args, &len);
    assert_string_equal(s, "42[\"\xc3\xa9v\xf0\x9f\x98\x80\"]");
    parse_ok(s, &p);
    assert_string_equal(p.event, "\xc3\xa9v\xf0\x9f\x98\x80");
    ts_sio_packet_clear(&p);
    free(s);
    json_decref(args);
}

static void
test_strings_with_escapes(void **state)
{
    ts_sio_packet_t  p;

    parse_ok("42[\"ev\",\"a\\\"b\\\\c\\n\\t\\/d\\u0041\"]", &p);
    assert_string_equal(p.event, "ev");
    assert_string_equal(json_string_value(json_array_get(p.args, 0)),
                        "a\"b\\c\n\t/dA");
    ts_sio_packet_clear(&p);

    /* brackets inside strings do not count as nesting */
    parse_ok("42[\"[[[[{{{{\",\"\\\"]]]\"]", &p);
    assert_string_equal(p.event, "[[[[{{{{");
    ts_sio_packet_clear(&p);
}

static void
test_disconnect(void **state)
{
    ts_sio_packet_t  p;

    parse_ok("41", &p);
    assert_int_equal(p.sio, TS_SIO_DISCONNECT);
    assert_string_equal(p.nsp, "/");
    assert_null(p.data);
    ts_sio_packet_clear(&p);

    parse_ok("41/admin,", &p);
    assert_int_equal(p.sio, TS_SIO_DISCONNECT);
    assert_string_equal(p.nsp, "/admin");
    ts_sio_packet_clear(&p);

    parse_bad("41{}");
    parse_bad("411");
}


/* ---- malformed input ---- */

static void
test_malformed_packets_are_refused(void **state)
{
    static const char *const bad[] = {
        "9", "x", "7", "4", "47", "48[\"a\"]",
        "42{\"not\":\"array\"}", "42[]", "42[1]", "42[null]", "42\"a\"",
        "42", "40[1]", "40\"tok\"", "42[\"a\"]x", "42[\"a\"] ]", "42[\"a\"",
        "42 ", "43[1]", "43", "431", "431{}", "401{}", "441{}",
        "42[\"connect\"]", "42[\"disconnect\",1]", "42[\"newListener\"]",
        "42[\"a\",\"\\u0000\"]", "42[\"\\ud800\"]", "42[\"\xff\"]",
        "42[\"a\",1e999]", "42[\"a\",99999999999999999999]",
        "42/admin[\"a\"]", "42/admin", "40/", "40/a b,{}", "40/\x01,{}",
    };
    size_t  i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        parse_bad(bad[i]);
    }
}

static void
test_empty_packet_is_refused(void **state)
{
    parse_bad_n("", 0, MAXLEN);
    parse_bad_n(NULL, 0, MAXLEN);
    assert_reason("", "empty");
}

static void
test_binary_packets_are_refused(void **state)
{
    parse_bad("451-[\"x\",{\"_placeholder\":true,\"num\":0}]");
    parse_bad("461-0[{\"_placeholder\":true,\"num\":0}]");
    assert_reason("451-[\"x\",{\"_placeholder\":true,\"num\":0}]",
                  "binary not supported");
    assert_reason("46", "binary not supported");
}

static void
test_length_limit(void **state)
{
    const char  *s = "42[\"join_ticket\",\"abc\"]";
    size_t       n = strlen(s);
    ts_sio_packet_t  p;

    assert_int_equal(ts_sio_parse(s, n, n, &p, NULL, 0), 0);
    ts_sio_packet_clear(&p);
    parse_bad_n(s, n, n - 1);
    assert_int_equal(ts_sio_parse(s, n, n - 1, &p, NULL, 0), -1);
}

/* Text of n nested arrays around a 1, as an EVENT argument. */
static char *
nested_event(int n)
{
    char  *s = malloc((size_t) n * 2 + 16);
    int    i, o = 7;

    if (s == NULL) {
        fail_msg("out of memory");
        return NULL;
    }
    memcpy(s, "42[\"e\",", 7);
    for (i = 1; i < n; i++) {
        s[o++] = '[';
    }
    s[o++] = '1';
    for (i = 0; i < n; i++) {
        s[o++] = ']';
    }
    s[o] = '\0';
    return s;
}

static void
test_json_depth_limit(void **state)
{
    ts_sio_packet_t  p;
    char            *s;

    s = nested_event(TS_SIO_MAX_DEPTH);
    parse_ok(s, &p);
    ts_sio_packet_clear(&p);
    free(s);

    s = nested_event(TS_SIO_MAX_DEPTH + 1);
    parse_bad(s);
    assert_reason(s, "deep");
    free(s);

    s = nested_event(100000);
    parse_bad_n(s, strlen(s), SIZE_MAX);
    free(s);
}

static void
test_ack_id_limit(void **state)
{
    parse_bad("429999999999999999[\"x\"]");             /* 16 digits */
    parse_bad("4299999999999999999999999999999[\"x\"]");
    assert_reason("431234567890123456[]", "ack id");
}

static void
test_namespace_limits(void **state)
{
    ts_sio_packet_t  p;
    char             s[128], nsp[80];

    memset(nsp, 'n', sizeof(nsp));
    nsp[0] = '/';

    /* 63 bytes fit */
    snprintf(s, sizeof(s), "40%.63s,{}", nsp);
    parse_ok(s, &p);
    assert_int_equal(strlen(p.nsp), 63);
    ts_sio_packet_clear(&p);

    /* 64 do not, with or without the comma */
    snprintf(s, sizeof(s), "40%.64s,{}", nsp);
    parse_bad(s);
    assert_reason(s, "namespace too long");
    snprintf(s, sizeof(s), "40%.70s", nsp);
    parse_bad(s);

    assert_reason("42/admin[\"a\"]", "namespace without comma");

    nsp[64] = '\0';
    assert_null(ts_sio_event(nsp, "x", NULL, NULL));
    nsp[63] = '\0';
    {
        char *e = ts_sio_event(nsp, "x", NULL, NULL);
        assert_non_null(e);
        free(e);
    }
}

static void
test_unterminated_buffer_is_read_by_length(void **state)
{
    ts_sio_packet_t  p;
    const char      *buf = "42[\"a\",1]GARBAGE";

    assert_int_equal(ts_sio_parse(buf, 9, MAXLEN, &p, NULL, 0), 0);
    assert_string_equal(p.event, "a");
    assert_json(p.args, "[1]");
    ts_sio_packet_clear(&p);

    /* a NUL inside the text is garbage, not an end */
    parse_bad_n("42[\"a\"]\0", 8, MAXLEN);
    parse_bad_n("2\0", 2, MAXLEN);
}

static void
test_error_buffer_is_truncated_safely(void **state)
{
    ts_sio_packet_t  p;
    char             err[5];

    memset(err, 'x', sizeof(err));
    assert_int_equal(ts_sio_parse("9", 1, MAXLEN, &p, err, sizeof(err)), -1);
    assert_int_equal(strlen(err), 4);
    assert_int_equal(ts_sio_parse("9", 1, MAXLEN, &p, err, 0), -1);
    assert_int_equal(ts_sio_parse("2", 1, MAXLEN, &p, err, sizeof(err)), 0);
    assert_string_equal(err, "");
}

static void
test_clear_is_idempotent(void **state)
{
    ts_sio_packet_t  p;

    parse_ok("42[\"a\",[1,2]]", &p);
    ts_sio_packet_clear(&p);
    ts_sio_packet_clear(&p);
    assert_null(p.data);
    assert_null(p.args);
    assert_null(p.event);
    assert_int_equal(p.ack_id, -1);
    assert_string_equal(p.nsp, "/");
}

static void
test_args_outlive_clear_when_referenced(void **state)
{
    ts_sio_packet_t  p;
    json_t          *kept;

    parse_ok("42[\"a\",{\"k\":\"v\"}]", &p);
    kept = json_incref(json_array_get(p.args, 0));
    ts_sio_packet_clear(&p);
    assert_string_equal(json_string_value(json_object_get(kept, "k")), "v");
    json_decref(kept);
}


/* ---- session ids ---- */

static void
test_sid_is_20_url_safe_chars_and_unique(void **state)
{
    char    a[21], b[21];
    size_t  i;

    ts_sio_sid(a);
    ts_sio_sid(b);
    assert_int_equal(strlen(a), TS_SIO_SID_LEN);
    assert_int_equal(strlen(b), TS_SIO_SID_LEN);
    assert_string_not_equal(a, b);
    for (i = 0; i < TS_SIO_SID_LEN; i++) {
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                               "qrstuvwxyz0123456789-_", a[i]));
        assert_true(a[i] != '\0');
    }
}


int
test_sio_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eio_control_packets_are_one_digit),
        cmocka_unit_test(test_eio_open_packet_has_handshake_fields_in_order),
        cmocka_unit_test(test_client_connect_with_auth_token),
        cmocka_unit_test(test_client_connect_without_auth_has_no_data),
        cmocka_unit_test(test_connect_to_namespace),
        cmocka_unit_test(test_server_connect_reply),
        cmocka_unit_test(test_connect_error_reply),
        cmocka_unit_test(test_event_join_ticket),
        cmocka_unit_test(test_event_without_arguments_has_empty_args),
        cmocka_unit_test(test_event_with_ack_id),
        cmocka_unit_test(test_ack_reply),
        cmocka_unit_test(test_event_encoder_and_round_trip),
        cmocka_unit_test(test_encoders_escape_json),
        cmocka_unit_test(test_event_names_with_unicode),
        cmocka_unit_test(test_strings_with_escapes),
        cmocka_unit_test(test_disconnect),
        cmocka_unit_test(test_malformed_packets_are_refused),
        cmocka_unit_test(test_empty_packet_is_refused),
        cmocka_unit_test(test_binary_packets_are_refused),
        cmocka_unit_test(test_length_limit),
        cmocka_unit_test(test_json_depth_limit),
        cmocka_unit_test(test_ack_id_limit),
        cmocka_unit_test(test_namespace_limits),
        cmocka_unit_test(test_unterminated_buffer_is_read_by_length),
        cmocka_unit_test(test_error_buffer_is_truncated_safely),
        cmocka_unit_test(test_clear_is_idempotent),
        cmocka_unit_test(test_args_outlive_clear_when_referenced),
        cmocka_unit_test(test_sid_is_20_url_safe_chars_and_unique),
    };

    return cmocka_run_group_tests_name("sio", tests, NULL, NULL);
}

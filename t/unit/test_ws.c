/*
 * test_ws: the RFC 6455 codec (shared/proto/ts_ws.h) -- the handshake answer
 * and its refusals, frames parsed whole and byte by byte, fragmentation
 * with control frames in between, every protocol error mapped to the
 * close code the peer must get, UTF-8 checked across fragments, close
 * payloads, the encoders, and memory that stays bounded over many
 * messages.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ts_ws.h"

int test_ws_run(void);

/* The masking key of the RFC 6455 5.7 examples. */
static const unsigned char  mask_key[4] = { 0x37, 0xfa, 0x21, 0x3d };

#define FIN  0x80


/*
 * A client frame: first byte b0 (FIN | RSV | opcode) as given, minimal
 * length encoding, masked with mask_key when masked.  Returns its length.
 */
static size_t
client_frame(unsigned char *out, unsigned b0, const void *payload,
    size_t len, int masked)
{
    const unsigned char  *pl = payload;
    size_t                h = 0, i;
    unsigned char         m = masked ? 0x80 : 0;

    out[h++] = (unsigned char) b0;
    if (len <= 125) {
        out[h++] = (unsigned char) (m | len);
    } else if (len <= 0xffff) {
        out[h++] = m | 126;
        out[h++] = (unsigned char) (len >> 8);
        out[h++] = (unsigned char) len;
    } else {
        out[h++] = m | 127;
        for (i = 0; i < 8; i++) {
            out[h++] = (unsigned char) ((uint64_t) len >> (56 - 8 * i));
        }
    }
    if (masked) {
        memcpy(out + h, mask_key, 4);
        h += 4;
    }
    for (i = 0; i < len; i++) {
        out[h + i] = masked ? pl[i] ^ mask_key[i & 3] : pl[i];
    }
    return h + len;
}


static size_t
masked(unsigned char *out, unsigned b0, const char *text)
{
    return client_frame(out, b0, text, strlen(text), 1);
}


/* What a run of the parser produced: messages (copied) and the last rc. */
typedef struct {
    int             op;
    unsigned char  *data;
    size_t          len;
    unsigned        code;
} got_t;

typedef struct {
    got_t   m[16];
    int     n;
    int     rc;             /* 0, or the error that ended the run */
    size_t  used;           /* input bytes consumed in all */
} run_t;


static void
run_free(run_t *r)
{
    int  i;

    for (i = 0; i < r->n; i++) {
        free(r->m[i].data);
    }
    memset(r, 0, sizeof(*r));
}


/* Feed in[0..n) in chunks of chunk bytes (0: all at once) until an error. */
static void
feed(ts_ws_parser_t *p, const unsigned char *in, size_t n, size_t chunk,
    run_t *r)
{
    size_t       off = 0, c, used;
    ts_ws_msg_t  msg;
    int          rc;

    memset(r, 0, sizeof(*r));
    while (off < n) {
        c = (chunk == 0 || chunk > n - off) ? n - off : chunk;
        for ( ;; ) {
            rc = ts_ws_parse(p, in + off, c, &used, &msg);
            assert_true(used <= c);
            off += used;
            c -= used;
            r->used += used;
            if (rc < 0) {
                r->rc = rc;
                return;
            }
            if (rc == 0) {
                assert_int_equal(c, 0);
                break;
            }
            assert_int_equal(rc, 1);
            assert_true(r->n < 16);
            assert_non_null(msg.data);
            r->m[r->n].op = msg.opcode;
            r->m[r->n].len = msg.len;
            r->m[r->n].code = msg.close_code;
            r->m[r->n].data = malloc(msg.len + 1);
            assert_non_null(r->m[r->n].data);
            memcpy(r->m[r->n].data, msg.data, msg.len);
            r->m[r->n].data[msg.len] = '\0';
            r->n++;
        }
    }
}


/* The close code a stream ends in when fed whole to a fresh parser. */
static int
error_of(const unsigned char *in, size_t n, size_t max)
{
    ts_ws_parser_t  *p = ts_ws_parser_new(max);
    run_t            r;
    int              rc;

    assert_non_null(p);
    feed(p, in, n, 0, &r);
    rc = r.rc;
    run_free(&r);
    ts_ws_parser_free(p);
    return rc;
}


static void
assert_msg(const got_t *g, int op, const char *text)
{
    assert_int_equal(g->op, op);
    assert_int_equal(g->len, strlen(text));
    assert_memory_equal(g->data, text, g->len);
}


/* ---- handshake -------------------------------------------------------- */

#define KEY  "dGhlIHNhbXBsZSBub25jZQ=="

static void
handshake_answers_the_rfc_example_key(void **state)
{
    char         accept[29];
    const char  *why = "unset";

    assert_int_equal(ts_ws_handshake("GET", "HTTP/1.1", "websocket",
                                      "Upgrade", "13", KEY, accept, &why),
                     0);
    assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_null(why);
}


static int
hs(const char *m, const char *v, const char *up, const char *conn,
    const char *ver, const char *key)
{
    char         accept[29];
    const char  *why = NULL;
    int          rc;

    rc = ts_ws_handshake(m, v, up, conn, ver, key, accept, &why);
    if (rc == 0) {
        assert_int_equal(strlen(accept), 28);
        assert_null(why);
    } else {
        assert_non_null(why);
        assert_string_equal(accept, "");
    }
    return rc;
}


static void
handshake_refuses_what_is_not_a_websocket_upgrade(void **state)
{
    assert_int_equal(hs("POST", "HTTP/1.1", "websocket", "Upgrade", "13",
                        KEY), 400);
    assert_int_equal(hs("get", "HTTP/1.1", "websocket", "Upgrade", "13",
                        KEY), 400);
    assert_int_equal(hs(NULL, "HTTP/1.1", "websocket", "Upgrade", "13",
                        KEY), 400);
    assert_int_equal(hs("GET", "HTTP/1.0", "websocket", "Upgrade", "13",
                        KEY), 400);
    assert_int_equal(hs("GET", "HTTP/1.1", NULL, "Upgrade", "13", KEY),
                     400);
    assert_int_equal(hs("GET", "HTTP/1.1", "h2c", "Upgrade", "13", KEY),
                     400);
    assert_int_equal(hs("GET", "HTTP/1.1", "websockets", "Upgrade", "13",
                        KEY), 400);
    assert_int_equal(hs("GET", "HTTP/1.1", "websocket", NULL, "13", KEY),
                     400);
    assert_int_equal(hs("GET", "HTTP/1.1", "websocket", "keep-alive", "13",
                        KEY), 400);
    assert_int_equal(hs("GET", "HTTP/1.1", "websocket", "upgrades", "13",
                        KEY), 400);
}


static void
handshake_token_lists_are_case_insensitive(void **state)
{
    assert_int_equal(hs("GET", "HTTP/1.1", "WebSocket", "keep-alive, Upgrade",
                        "13", KEY), 0);
    assert_int_equal(hs("GET", "HTTP/1.1", "h2c , websocket", "UPGRADE",
                        "13", KEY), 0);
    assert_int_equal(hs("GET", "HTTP/1.1", "websocket",
                        ",keep-alive,\tupgrade ,", " 13 ", " " KEY "\t"),
                     0);
}


static void
handshake_version_other_than_13_is_426(void **state)
{
    const char  *why = NULL;
    char         accept[29];

    assert_int_equal(ts_ws_handshake("GET", "HTTP/1.1", "websocket",
                                      "Upgrade", "8", KEY, accept, &why),
                     426);
    assert_non_null(why);
    assert_int_equal(hs("GET", "HTTP/1.1", "websocket", "Upgrade", "14",
                        KEY), 426);
    assert_int_equal(hs("GET", "HTTP/1.1", "websocket", "Upgrade", "13, 8",
                        KEY), 426);
    /* absent is a malformed request, not a version we do not speak */
    assert_int_equal(hs("GET", "HTTP/1.1", "websocket", "Upgrade", NULL,
                        KEY), 400);
    /* why may be NULL */
    assert_int_equal(ts_ws_handshake("GET", "HTTP/1.1", "websocket",
                                      "Upgrade", "7", KEY, accept, NULL),
                     426);
}


static void
handshake_key_must_be_base64_of_16_bytes(void **state)
{
    /* 15 bytes, 17 bytes, 16 bytes without padding, bad characters */
    assert_int_equal(hs("GET", "HTTP/1.1", "websocket", "Upgrade", "13",
                        "AAAAAAAAAAAAAAAAAAAA"), 400);
    assert_int_equal(hs("GET", "HTTP/1.1", "websocket", "Upgrade", "13",
                        "AAAAAAAAAAAAAAAAAAAAAAA="), 400);
    assert_int_equal(hs("GET", "HTTP/1.1", "websocket", "Upgrade", "13",
                        "AAAAAAAAAAAAAAAAAAAAAA"), 400);
    assert_int_equal(hs("GET", "HTTP/1.1", "websocket", "Upgrade", "13",
                        "AAAAAAAAAAAAAAAAAAAAA*=="), 400);
    assert_int_equal(hs("GET", "HTTP/1.1", "websocket", "Upgrade", "13",
                        "AAAAAAAAAAAAAAAAAAAA A=="), 400);
    assert_int_equal(hs("GET", "HTTP/1.1", "websocket", "Upgrade", "13",
                        ""), 400);
    assert_int_equal(hs("GET", "HTTP/1.1", "websocket", "Upgrade", "13",
                        NULL), 400);
    assert_int_equal(hs("GET", "HTTP/1.1", "websocket", "Upgrade", "13",
                        "AAAAAAAAAAAAAAAAAAAAAA=="), 0);
    assert_int_equal(hs("GET", "HTTP/1.1", "websocket", "Upgrade", "13",
                        "+/+/+/+/+/+/+/+/+/+/+w=="), 0);
}


/* ---- frames ----------------------------------------------------------- */

static void
masked_hello_from_rfc_example_parses(void **state)
{
    static const unsigned char  hello[] = {
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
    };
    ts_ws_parser_t  *p = ts_ws_parser_new(1024);
    ts_ws_msg_t      msg;
    size_t           used;

    assert_non_null(p);
    assert_int_equal(ts_ws_parse(p, hello, sizeof(hello), &used, &msg), 1);
    assert_int_equal(used, sizeof(hello));
    assert_int_equal(msg.opcode, TS_WS_TEXT);
    assert_int_equal(msg.len, 5);
    assert_memory_equal(msg.data, "Hello", 5);
    assert_int_equal(ts_ws_parse(p, NULL, 0, &used, &msg), 0);
    assert_int_equal(used, 0);
    ts_ws_parser_free(p);
}


/* Text, binary, ping, pong, empty text, close: same result in any chunks. */
static void
several_frames_parse_alike_whole_and_byte_by_byte(void **state)
{
    static const size_t  chunks[] = { 0, 1, 2, 3, 7, 13 };
    unsigned char        in[512];
    size_t               n = 0, c;
    run_t                r;
    ts_ws_parser_t      *p;
    unsigned char        bin[] = { 0, 1, 2, 0xff, 0xfe };

    n += masked(in + n, FIN | TS_WS_TEXT, "first message");
    n += client_frame(in + n, FIN | TS_WS_BINARY, bin, sizeof(bin), 1);
    n += masked(in + n, FIN | TS_WS_PING, "are you there");
    n += masked(in + n, FIN | TS_WS_PONG, "");
    n += masked(in + n, FIN | TS_WS_TEXT, "");
    n += masked(in + n, FIN | TS_WS_TEXT, "h\xc3\xa9 \xe2\x82\xac");
    n += masked(in + n, FIN | TS_WS_CLOSE, "\x03\xe8" "done");

    for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        p = ts_ws_parser_new(1024);
        assert_non_null(p);
        feed(p, in, n, chunks[c], &r);
        assert_int_equal(r.rc, 0);
        assert_int_equal(r.used, n);
        assert_int_equal(r.n, 7);
        assert_msg(&r.m[0], TS_WS_TEXT, "first message");
        assert_int_equal(r.m[1].op, TS_WS_BINARY);
        assert_int_equal(r.m[1].len, sizeof(bin));
        assert_memory_equal(r.m[1].data, bin, sizeof(bin));
        assert_msg(&r.m[2], TS_WS_PING, "are you there");
        assert_msg(&r.m[3], TS_WS_PONG, "");
        assert_msg(&r.m[4], TS_WS_TEXT, "");
        assert_msg(&r.m[5], TS_WS_TEXT, "h\xc3\xa9 \xe2\x82\xac");
        assert_msg(&r.m[6], TS_WS_CLOSE, "done");
        assert_int_equal(r.m[6].code, 1000);
        run_free(&r);
        ts_ws_parser_free(p);
    }
}


/* One call returns one message: *used stops right after its last byte. */
static void
used_counts_the_bytes_of_one_message(void **state)
{
    unsigned char    in[64];
    size_t           a, n, used;
    ts_ws_msg_t      msg;
    ts_ws_parser_t  *p = ts_ws_parser_new(64);

    assert_non_null(p);
    a = masked(in, FIN | TS_WS_TEXT, "one");
    n = a + masked(in + a, FIN | TS_WS_TEXT, "two");
    assert_int_equal(ts_ws_parse(p, in, n, &used, &msg), 1);
    assert_int_equal(used, a);
    assert_memory_equal(msg.data, "one", 3);
    assert_int_equal(ts_ws_parse(p, in + a, n - a, &used, &msg), 1);
    assert_int_equal(used, n - a);
    assert_memory_equal(msg.data, "two", 3);
    ts_ws_parser_free(p);
}


static void
fragmented_text_with_ping_between_is_reassembled(void **state)
{
    unsigned char    in[128];
    size_t           n = 0, c;
    run_t            r;
    ts_ws_parser_t  *p;

    n += masked(in + n, TS_WS_TEXT, "Hel");
    n += masked(in + n, FIN | TS_WS_PING, "ping!");
    n += masked(in + n, 0, "");
    n += masked(in + n, FIN | 0, "lo");

    for (c = 0; c <= 3; c++) {
        p = ts_ws_parser_new(16);
        assert_non_null(p);
        feed(p, in, n, c, &r);
        assert_int_equal(r.rc, 0);
        assert_int_equal(r.n, 2);
        assert_msg(&r.m[0], TS_WS_PING, "ping!");
        assert_msg(&r.m[1], TS_WS_TEXT, "Hello");
        run_free(&r);
        ts_ws_parser_free(p);
    }
}


static void
lengths_126_and_127_encodings_parse(void **state)
{
    static const size_t  sizes[] = { 125, 126, 200, 65535, 65536, 70000 };
    unsigned char       *pl, *in;
    size_t               i, s, n;
    run_t                r;
    ts_ws_parser_t      *p = ts_ws_parser_new(70000);

    assert_non_null(p);
    pl = malloc(70000);
    in = malloc(70000 + 14);
    assert_non_null(pl);
    assert_non_null(in);
    for (i = 0; i < 70000; i++) {
        pl[i] = (unsigned char) (i * 7);
    }

    for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        n = client_frame(in, FIN | TS_WS_BINARY, pl, sizes[s], 1);
        assert_int_equal(n - sizes[s],
                         sizes[s] <= 125 ? 6 : sizes[s] <= 0xffff ? 8 : 14);
        feed(p, in, n, 0, &r);
        assert_int_equal(r.rc, 0);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.m[0].len, sizes[s]);
        assert_memory_equal(r.m[0].data, pl, sizes[s]);
        run_free(&r);
    }

    /* a non-minimal encoding is tolerated: 126 carrying 5 */
    memcpy(in, "\x82\xfe\x00\x05\x00\x00\x00\x00" "abcde", 13);
    feed(p, in, 13, 1, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n, 1);
    assert_msg(&r.m[0], TS_WS_BINARY, "abcde");
    run_free(&r);

    free(pl);
    free(in);
    ts_ws_parser_free(p);
}


static void
unmasked_client_frame_is_protocol_error_and_stays(void **state)
{
    static const unsigned char  hello[] = {
        0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f
    };
    unsigned char    ok[32];
    size_t           used, n;
    ts_ws_msg_t      msg;
    ts_ws_parser_t  *p = ts_ws_parser_new(1024);

    assert_non_null(p);
    assert_int_equal(ts_ws_parse(p, hello, sizeof(hello), &used, &msg),
                     -1002);
    assert_int_equal(used, 2);              /* failed on the second byte */

    /* sticky: even valid bytes now get the same answer */
    n = masked(ok, FIN | TS_WS_TEXT, "fine");
    assert_int_equal(ts_ws_parse(p, ok, n, &used, &msg), -1002);
    assert_int_equal(used, 0);
    assert_int_equal(ts_ws_parse(p, NULL, 0, &used, &msg), -1002);
    ts_ws_parser_free(p);
}


static void
oversized_message_is_1009_before_its_payload(void **state)
{
    unsigned char    in[512], pl[300];
    size_t           n, used, idle;
    ts_ws_msg_t      msg;
    ts_ws_parser_t  *p;

    memset(pl, 'x', sizeof(pl));

    /* one frame of max + 1: refused on its header, nothing buffered */
    p = ts_ws_parser_new(100);
    assert_non_null(p);
    idle = ts_ws_parser_memory(p);
    n = client_frame(in, FIN | TS_WS_BINARY, pl, 101, 1);
    assert_int_equal(ts_ws_parse(p, in, n, &used, &msg), -1009);
    assert_int_equal(used, 6);
    assert_int_equal(ts_ws_parser_memory(p), idle);
    ts_ws_parser_free(p);

    /* exactly max is fine */
    n = client_frame(in, FIN | TS_WS_TEXT, pl, 100, 1);
    assert_int_equal(error_of(in, n, 100), 0);

    /* fragments that add up to more than max */
    n = client_frame(in, TS_WS_TEXT, pl, 60, 1);
    n += client_frame(in + n, FIN, pl, 41, 1);
    assert_int_equal(error_of(in, n, 100), -1009);

    /* 64-bit length far beyond max */
    memcpy(in, "\x82\xff\x00\x00\x00\x01\x00\x00\x00\x00" "\1\2\3\4", 14);
    assert_int_equal(error_of(in, 14, 1 << 20), -1009);
}


static void
continuation_without_start_is_protocol_error(void **state)
{
    unsigned char  in[64];
    size_t         n;

    n = masked(in, FIN | 0, "orphan");
    assert_int_equal(error_of(in, n, 1024), -1002);
    n = masked(in, 0, "orphan");
    assert_int_equal(error_of(in, n, 1024), -1002);

    /* after a message is complete, a continuation is an orphan again */
    n = masked(in, FIN | TS_WS_TEXT, "done");
    n += masked(in + n, FIN | 0, "more");
    assert_int_equal(error_of(in, n, 1024), -1002);
}


static void
new_data_frame_inside_fragmented_message_is_protocol_error(void **state)
{
    unsigned char  in[64];
    size_t         n;

    n = masked(in, TS_WS_TEXT, "Hel");
    n += masked(in + n, FIN | TS_WS_TEXT, "lo");
    assert_int_equal(error_of(in, n, 1024), -1002);

    n = masked(in, TS_WS_BINARY, "Hel");
    n += masked(in + n, TS_WS_BINARY, "lo");
    assert_int_equal(error_of(in, n, 1024), -1002);
}


static void
control_frames_over_125_or_fragmented_are_protocol_errors(void **state)
{
    unsigned char  in[300], pl[126];
    size_t         n;

    memset(pl, 'p', sizeof(pl));
    n = client_frame(in, FIN | TS_WS_PING, pl, 125, 1);
    assert_int_equal(error_of(in, n, 1024), 0);
    n = client_frame(in, FIN | TS_WS_PING, pl, 126, 1);
    assert_int_equal(error_of(in, n, 1024), -1002);
    n = client_frame(in, FIN | TS_WS_CLOSE, pl, 126, 1);
    assert_int_equal(error_of(in, n, 1024), -1002);
    n = client_frame(in, TS_WS_PING, pl, 4, 1);
    assert_int_equal(error_of(in, n, 1024), -1002);
    n = client_frame(in, TS_WS_PONG, pl, 0, 1);
    assert_int_equal(error_of(in, n, 1024), -1002);
    n = client_frame(in, TS_WS_CLOSE, "\x03\xe8", 2, 1);
    assert_int_equal(error_of(in, n, 1024), -1002);
}


static void
rsv_bits_without_extension_are_protocol_errors(void **state)
{
    unsigned char  in[64];
    size_t         n;
    unsigned       rsv;

    for (rsv = 0x10; rsv <= 0x70; rsv += 0x10) {
        n = masked(in, FIN | rsv | TS_WS_TEXT, "x");
        assert_int_equal(error_of(in, n, 1024), -1002);
        n = masked(in, FIN | rsv | TS_WS_PING, "x");
        assert_int_equal(error_of(in, n, 1024), -1002);
        /* found on the first byte, before anything else arrives */
        assert_int_equal(error_of(in, 1, 1024), -1002);
    }
}


static void
reserved_opcodes_are_protocol_errors(void **state)
{
    static const unsigned  ops[] = { 3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf };
    unsigned char          in[64];
    size_t                 i, n;

    for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        n = masked(in, FIN | ops[i], "x");
        assert_int_equal(error_of(in, n, 1024), -1002);
        n = masked(in, ops[i], "");
        assert_int_equal(error_of(in, n, 1024), -1002);
    }
}


static void
length_with_most_significant_bit_is_protocol_error(void **state)
{
    unsigned char  in[14];

    memcpy(in, "\x82\xff\x80\x00\x00\x00\x00\x00\x00\x05" "\1\2\3\4", 14);
    assert_int_equal(error_of(in, 14, 1024), -1002);
    memcpy(in, "\x82\xff\xff\xff\xff\xff\xff\xff\xff\xff" "\1\2\3\4", 14);
    assert_int_equal(error_of(in, 14, 1024), -1002);
}


/* ---- UTF-8 ------------------------------------------------------------ */

static int
text_error(const char *s, size_t len)
{
    unsigned char  in[64];
    size_t         n;

    n = client_frame(in, FIN | TS_WS_TEXT, s, len, 1);
    return error_of(in, n, 1024);
}


static void
invalid_utf8_text_is_1007(void **state)
{
    assert_int_equal(text_error("\xc0\xaf", 2), -1007);         /* overlong */
    assert_int_equal(text_error("\xe0\x80\xaf", 3), -1007);     /* overlong */
    assert_int_equal(text_error("\xf0\x80\x80\xaf", 4), -1007); /* overlong */
    assert_int_equal(text_error("\xed\xa0\x80", 3), -1007);     /* surrogate */
    assert_int_equal(text_error("\xed\xbf\xbf", 3), -1007);     /* surrogate */
    assert_int_equal(text_error("\xf4\x90\x80\x80", 4), -1007); /* >10FFFF */
    assert_int_equal(text_error("\xf5\x80\x80\x80", 4), -1007);
    assert_int_equal(text_error("\xff", 1), -1007);
    assert_int_equal(text_error("a\x80z", 3), -1007);           /* stray */
    assert_int_equal(text_error("\xc3(", 2), -1007);
    assert_int_equal(text_error("ok \xe2\x82", 5), -1007);      /* truncated */
    assert_int_equal(text_error("\xf0\x9f\x98", 3), -1007);     /* truncated */

    /* the edges that are valid */
    assert_int_equal(text_error("\xc2\x80", 2), 0);
    assert_int_equal(text_error("\xed\x9f\xbf", 3), 0);         /* U+D7FF */
    assert_int_equal(text_error("\xee\x80\x80", 3), 0);         /* U+E000 */
    assert_int_equal(text_error("\xef\xbf\xbf", 3), 0);         /* U+FFFF */
    assert_int_equal(text_error("\xf4\x8f\xbf\xbf", 4), 0);     /* 10FFFF */
    assert_int_equal(text_error("a\0b", 3), 0);                 /* NUL is */

    /* binary messages are not text */
    {
        unsigned char  in[16];
        size_t         n = client_frame(in, FIN | TS_WS_BINARY, "\xc0\xaf",
                                        2, 1);
        assert_int_equal(error_of(in, n, 1024), 0);
    }
}


static void
invalid_utf8_fails_fast_before_the_message_ends(void **state)
{
    unsigned char    in[64];
    size_t           n, used;
    ts_ws_msg_t      msg;
    ts_ws_parser_t  *p = ts_ws_parser_new(1024);

    assert_non_null(p);
    /* first fragment carries the bad byte; FIN never comes */
    n = client_frame(in, TS_WS_TEXT, "ab\xff", 3, 1);
    assert_int_equal(ts_ws_parse(p, in, n, &used, &msg), -1007);
    ts_ws_parser_free(p);
}


static void
code_point_split_across_fragments_is_valid(void **state)
{
    static const char  emoji[] = "\xf0\x9f\x98\x80";    /* U+1F600 */
    unsigned char      in[64];
    size_t             n, cut, chunk;
    run_t              r;
    ts_ws_parser_t    *p;

    for (cut = 0; cut <= 4; cut++) {
        n = client_frame(in, TS_WS_TEXT, emoji, cut, 1);
        n += masked(in + n, FIN | TS_WS_PING, "");
        n += client_frame(in + n, FIN | 0, emoji + cut, 4 - cut, 1);
        for (chunk = 0; chunk <= 1; chunk++) {
            p = ts_ws_parser_new(16);
            assert_non_null(p);
            feed(p, in, n, chunk, &r);
            assert_int_equal(r.rc, 0);
            assert_int_equal(r.n, 2);
            assert_msg(&r.m[1], TS_WS_TEXT, emoji);
            run_free(&r);
            ts_ws_parser_free(p);
        }
    }

    /* but a message that ends inside the split character is not */
    n = client_frame(in, TS_WS_TEXT, emoji, 2, 1);
    n += client_frame(in + n, FIN | 0, emoji + 2, 1, 1);
    assert_int_equal(error_of(in, n, 16), -1007);
}


/* ---- close ------------------------------------------------------------ */

static void
close_code_and_reason_are_parsed(void **state)
{
    unsigned char    in[64];
    size_t           n, used;
    ts_ws_msg_t      msg;
    ts_ws_parser_t  *p = ts_ws_parser_new(1024);

    assert_non_null(p);
    n = masked(in, FIN | TS_WS_CLOSE, "\x0f\xa0going away \xe2\x82\xac");
    n += masked(in + n, FIN | TS_WS_TEXT, "after close");
    assert_int_equal(ts_ws_parse(p, in, n, &used, &msg), 1);
    assert_int_equal(msg.opcode, TS_WS_CLOSE);
    assert_int_equal(msg.close_code, 4000);
    assert_int_equal(msg.len, 14);
    assert_memory_equal(msg.data, "going away \xe2\x82\xac", 14);

    /* nothing may follow a close: later bytes are swallowed */
    assert_int_equal(ts_ws_parse(p, in + used, n - used, &used, &msg), 0);
    ts_ws_parser_free(p);

    /* an empty close: 1005, no reason */
    p = ts_ws_parser_new(1024);
    assert_non_null(p);
    n = masked(in, FIN | TS_WS_CLOSE, "");
    assert_int_equal(ts_ws_parse(p, in, n, &used, &msg), 1);
    assert_int_equal(msg.close_code, 1005);
    assert_int_equal(msg.len, 0);
    assert_non_null(msg.data);
    ts_ws_parser_free(p);
}


static int
close_error(unsigned code, const char *reason, size_t rlen)
{
    unsigned char  pl[128], in[160];
    size_t         n;

    pl[0] = (unsigned char) (code >> 8);
    pl[1] = (unsigned char) code;
    memcpy(pl + 2, reason, rlen);
    n = client_frame(in, FIN | TS_WS_CLOSE, pl, 2 + rlen, 1);
    return error_of(in, n, 1024);
}


static void
close_codes_follow_rfc_rules(void **state)
{
    static const unsigned  bad[] = {
        0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535
    };
    static const unsigned  good[] = {
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013,
        1014, 3000, 3999, 4000, 4999
    };
    unsigned char          in[16];
    size_t                 i, n;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(close_error(bad[i], "", 0), -1002);
    }
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(close_error(good[i], "why", 3), 0);
    }

    /* a 1-byte payload is half a code */
    n = client_frame(in, FIN | TS_WS_CLOSE, "\x03", 1, 1);
    assert_int_equal(error_of(in, n, 1024), -1002);

    /* the reason must be UTF-8 */
    assert_int_equal(close_error(1000, "\xce\xba\xe1\xbd\xb9\xed\xa0\x80", 8),
                     -1007);
    assert_int_equal(close_error(1000, "cut \xe2\x82", 6), -1007);
    assert_int_equal(close_error(1000, "\xce\xba\xe1\xbd\xb9", 5), 0);
}


/* ---- encoders --------------------------------------------------------- */

static void
frame_header_uses_2_4_or_10_bytes(void **state)
{
    unsigned char  h[10];

    assert_int_equal(ts_ws_frame_header(TS_WS_TEXT, 0, h), 2);
    assert_memory_equal(h, "\x81\x00", 2);
    assert_int_equal(ts_ws_frame_header(TS_WS_BINARY, 125, h), 2);
    assert_memory_equal(h, "\x82\x7d", 2);
    assert_int_equal(ts_ws_frame_header(TS_WS_TEXT, 126, h), 4);
    assert_memory_equal(h, "\x81\x7e\x00\x7e", 4);
    assert_int_equal(ts_ws_frame_header(TS_WS_TEXT, 65535, h), 4);
    assert_memory_equal(h, "\x81\x7e\xff\xff", 4);
    assert_int_equal(ts_ws_frame_header(TS_WS_TEXT, 65536, h), 10);
    assert_memory_equal(h, "\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    assert_int_equal(ts_ws_frame_header(TS_WS_PONG, 3, h), 2);
    assert_memory_equal(h, "\x8a\x03", 2);
}


static void
frame_encodes_unmasked_and_refuses_what_does_not_fit(void **state)
{
    unsigned char  out[200], big[130];

    assert_int_equal(ts_ws_frame(TS_WS_TEXT, "Hello", 5, out, sizeof(out)),
                     7);
    /* the RFC 6455 5.7 unmasked example */
    assert_memory_equal(out, "\x81\x05Hello", 7);
    assert_int_equal(ts_ws_frame(TS_WS_TEXT, "Hello", 5, out, 7), 7);
    assert_int_equal(ts_ws_frame(TS_WS_TEXT, "Hello", 5, out, 6), 0);
    assert_int_equal(ts_ws_frame(TS_WS_TEXT, "Hello", 5, out, 1), 0);
    assert_int_equal(ts_ws_frame(TS_WS_PING, NULL, 0, out, 2), 2);
    assert_memory_equal(out, "\x89\x00", 2);

    memset(big, 'b', sizeof(big));
    assert_int_equal(ts_ws_frame(TS_WS_BINARY, big, 126, out, sizeof(out)),
                     130);
    assert_int_equal(ts_ws_frame(TS_WS_PING, big, 126, out, sizeof(out)), 0);
    assert_int_equal(ts_ws_frame(TS_WS_CLOSE, big, 125, out, sizeof(out)),
                     127);
}


static void
close_payload_cuts_reason_on_a_character_boundary(void **state)
{
    unsigned char  out[125];
    char           reason[200];
    size_t         n;

    assert_int_equal(ts_ws_close_payload(1000, NULL, out), 2);
    assert_memory_equal(out, "\x03\xe8", 2);
    assert_int_equal(ts_ws_close_payload(1009, "too big", out), 9);
    assert_memory_equal(out, "\x03\xf1too big", 9);

    /* 122 ASCII then a 3-byte character straddling the 123-byte limit */
    memset(reason, 'a', 122);
    strcpy(reason + 122, "\xe2\x82\xac tail");
    n = ts_ws_close_payload(4000, reason, out);
    assert_int_equal(n, 2 + 122);

    memset(reason, 'a', 150);
    reason[150] = '\0';
    assert_int_equal(ts_ws_close_payload(4000, reason, out), 125);

    /* codes that must not be sent give an empty payload */
    assert_int_equal(ts_ws_close_payload(1005, "x", out), 0);
    assert_int_equal(ts_ws_close_payload(1006, NULL, out), 0);
    assert_int_equal(ts_ws_close_payload(0, NULL, out), 0);
}


/* What the encoders write, masked as a client would, parses back. */
static void
encoded_frames_parse_back(void **state)
{
    static const size_t  sizes[] = { 0, 1, 125, 126, 65535, 65536 };
    unsigned char       *pl, *wire, *in;
    size_t               s, i, w, n;
    run_t                r;
    ts_ws_parser_t      *p = ts_ws_parser_new(65536);

    assert_non_null(p);
    pl = malloc(65536);
    wire = malloc(65536 + 10);
    in = malloc(65536 + 14);
    assert_true(pl && wire && in);
    for (i = 0; i < 65536; i++) {
        pl[i] = (unsigned char) ('a' + i % 26);
    }
    for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        w = ts_ws_frame(TS_WS_TEXT, pl, sizes[s], wire, 65536 + 10);
        assert_int_equal(w, sizes[s] + (sizes[s] <= 125 ? 2
                                        : sizes[s] <= 0xffff ? 4 : 10));
        /* set MASK, insert the key, mask the payload */
        n = w - sizes[s];
        memcpy(in, wire, n);
        in[1] |= 0x80;
        memcpy(in + n, mask_key, 4);
        for (i = 0; i < sizes[s]; i++) {
            in[n + 4 + i] = wire[n + i] ^ mask_key[i & 3];
        }
        feed(p, in, n + 4 + sizes[s], 0, &r);
        assert_int_equal(r.rc, 0);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.m[0].len, sizes[s]);
        assert_memory_equal(r.m[0].data, pl, sizes[s]);
        run_free(&r);
    }
    free(pl);
    free(wire);
    free(in);
    ts_ws_parser_free(p);
}


/* ---- memory ----------------------------------------------------------- */

#define SMALL_CONSTANT  512

static void
memory_stays_bounded_over_10000_messages(void **state)
{
    unsigned char    pl[1024], in[1024 + 8 + 32];
    size_t           n, m, used, first = 0, max = 4096;
    ts_ws_msg_t      msg;
    ts_ws_parser_t  *p = ts_ws_parser_new(max);
    int              i;

    assert_non_null(p);
    memset(pl, 'm', sizeof(pl));
    n = client_frame(in, FIN | TS_WS_TEXT, pl, sizeof(pl), 1);
    m = n + masked(in + n, FIN | TS_WS_PING, "p");

    for (i = 0; i < 10000; i++) {
        assert_int_equal(ts_ws_parse(p, in, m, &used, &msg), 1);
        assert_int_equal(used, n);
        assert_int_equal(msg.len, 1024);
        assert_int_equal(ts_ws_parse(p, in + n, m - n, &used, &msg), 1);
        assert_int_equal(msg.opcode, TS_WS_PING);
        assert_true(ts_ws_parser_memory(p) <= max + SMALL_CONSTANT);
        if (i == 0) {
            first = ts_ws_parser_memory(p);
        }
        /* the buffer is reused: not one byte more per message */
        assert_int_equal(ts_ws_parser_memory(p), first);
    }

    /* fragmented up to exactly max, repeatedly: still bounded */
    for (i = 0; i < 100; i++) {
        n = client_frame(in, TS_WS_BINARY, pl, 1024, 1);
        assert_int_equal(ts_ws_parse(p, in, n, &used, &msg), 0);
        n = client_frame(in, 0, pl, 1024, 1);
        assert_int_equal(ts_ws_parse(p, in, n, &used, &msg), 0);
        assert_int_equal(ts_ws_parse(p, in, n, &used, &msg), 0);
        n = client_frame(in, FIN, pl, 1024, 1);
        assert_int_equal(ts_ws_parse(p, in, n, &used, &msg), 1);
        assert_int_equal(msg.len, 4096);
        assert_true(ts_ws_parser_memory(p) <= max + SMALL_CONSTANT);
    }
    ts_ws_parser_free(p);
}


static void
big_message_buffer_is_released_after_delivery(void **state)
{
    unsigned char   *pl, *in;
    size_t           n, used, max = 1 << 20, idle;
    ts_ws_msg_t      msg;
    ts_ws_parser_t  *p = ts_ws_parser_new(max);

    assert_non_null(p);
    idle = ts_ws_parser_memory(p);
    assert_true(idle <= SMALL_CONSTANT);
    pl = calloc(1, 300000);
    in = malloc(300000 + 14);
    assert_true(pl && in);

    n = client_frame(in, FIN | TS_WS_BINARY, pl, 300000, 1);
    assert_int_equal(ts_ws_parse(p, in, n, &used, &msg), 1);
    assert_int_equal(msg.len, 300000);
    assert_true(ts_ws_parser_memory(p) >= 300000);
    assert_true(ts_ws_parser_memory(p) <= max + SMALL_CONSTANT);

    /* the next call forgets the message and gives the memory back */
    assert_int_equal(ts_ws_parse(p, NULL, 0, &used, &msg), 0);
    assert_int_equal(ts_ws_parser_memory(p), idle);

    /* a declared but unsent payload pins nothing */
    n = client_frame(in, FIN | TS_WS_BINARY, pl, 300000, 1);
    assert_int_equal(ts_ws_parse(p, in, 14, &used, &msg), 0);
    assert_int_equal(ts_ws_parser_memory(p), idle);

    free(pl);
    free(in);
    ts_ws_parser_free(p);
}


int
test_ws_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handshake_answers_the_rfc_example_key),
        cmocka_unit_test(handshake_refuses_what_is_not_a_websocket_upgrade),
        cmocka_unit_test(handshake_token_lists_are_case_insensitive),
        cmocka_unit_test(handshake_version_other_than_13_is_426),
        cmocka_unit_test(handshake_key_must_be_base64_of_16_bytes),
        cmocka_unit_test(masked_hello_from_rfc_example_parses),
        cmocka_unit_test(several_frames_parse_alike_whole_and_byte_by_byte),
        cmocka_unit_test(used_counts_the_bytes_of_one_message),
        cmocka_unit_test(fragmented_text_with_ping_between_is_reassembled),
        cmocka_unit_test(lengths_126_and_127_encodings_parse),
        cmocka_unit_test(unmasked_client_frame_is_protocol_error_and_stays),
        cmocka_unit_test(oversized_message_is_1009_before_its_payload),
        cmocka_unit_test(continuation_without_start_is_protocol_error),
        cmocka_unit_test(
            new_data_frame_inside_fragmented_message_is_protocol_error),
        cmocka_unit_test(
            control_frames_over_125_or_fragmented_are_protocol_errors),
        cmocka_unit_test(rsv_bits_without_extension_are_protocol_errors),
        cmocka_unit_test(reserved_opcodes_are_protocol_errors),
        cmocka_unit_test(length_with_most_significant_bit_is_protocol_error),
        cmocka_unit_test(invalid_utf8_text_is_1007),
        cmocka_unit_test(invalid_utf8_fails_fast_before_the_message_ends),
        cmocka_unit_test(code_point_split_across_fragments_is_valid),
        cmocka_unit_test(close_code_and_reason_are_parsed),
        cmocka_unit_test(close_codes_follow_rfc_rules),
        cmocka_unit_test(frame_header_uses_2_4_or_10_bytes),
        cmocka_unit_test(frame_encodes_unmasked_and_refuses_what_does_not_fit),
        cmocka_unit_test(close_payload_cuts_reason_on_a_character_boundary),
        cmocka_unit_test(encoded_frames_parse_back),
        cmocka_unit_test(memory_stays_bounded_over_10000_messages),
        cmocka_unit_test(big_message_buffer_is_released_after_delivery),
    };

    return cmocka_run_group_tests_name("ws", tests, NULL, NULL);
}

/*
 * fuzz_ws: libFuzzer target for the WebSocket codec (shared/proto/ts_ws.h).
 *
 * Input layout:  byte 0, low 4 bits = k;  the next k bytes = chunk sizes
 * (used in turn; 0 means "call with n == 0, then feed 1 byte");  the rest
 * = the client byte stream.  The stream is parsed twice, whole and in
 * those chunks, into parsers with max_message 4096, and these must hold:
 *
 *   - every return is 1, 0 or -1002/-1007/-1009/-1011; *used <= n, and
 *     0 means all n were consumed;
 *   - an error is final: every later call returns it and consumes nothing;
 *     after a CLOSE, every later call consumes all and returns 0;
 *   - ts_ws_parser_memory() <= 4096 + the parser struct, always;
 *   - a message is within its limits (data <= 4096, control <= 125,
 *     close reason <= 123 with a valid code or 1005), TEXT and close
 *     reasons are UTF-8 by ts_validate's independent ts_valid_utf8;
 *   - chunking changes nothing: both runs yield the same messages and
 *     end in the same state;
 *   - each message, encoded by ts_ws_frame and masked like a client,
 *     parses back to itself.
 * Any part of the stream is also thrown at ts_ws_handshake as each of
 * the header values.
 *
 * Build and run (clang, libFuzzer):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ishared/proto -Ishared/core \
 *     shared/proto/ts_ws.c shared/core/ts_validate.c shared/core/ts_model.c \
 *     t/fuzz/fuzz_ws.c -o /tmp/fuzz_ws -ljansson -lcrypto -lpthread
 *   /tmp/fuzz_ws -max_total_time=60
 * Without libFuzzer, add -DTS_FUZZ_STANDALONE (and drop "fuzzer," from
 * -fsanitize): the binary replays the files named on its command line,
 * or runs random frame streams when given none.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_validate.h"
#include "ts_ws.h"

#define FUZZ_MAX       4096
#define FUZZ_STRUCT    1024          /* generous bound on sizeof(parser) */

#define CHECK(c)                                                         \
    do {                                                                 \
        if (!(c)) {                                                      \
            fprintf(stderr, "fuzz_ws: %s:%d: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                     \
        }                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    uint64_t  hash;                  /* FNV-1a over all messages */
    size_t    count;
    int       rc;                    /* error the run ended in, or 0 */
    int       closed;
} outcome_t;


static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char  *s = p;
    size_t                i;

    for (i = 0; i < n; i++) {
        h = (h ^ s[i]) * 1099511628211ULL;
    }
    return h;
}


/* UTF-8 by ts_valid_utf8, which refuses NUL: check between the NULs
 * (a NUL byte is never inside a multi-byte sequence). */
static int
oracle_utf8(const unsigned char *s, size_t n)
{
    size_t  i, start = 0;

    for (i = 0; i <= n; i++) {
        if (i == n || s[i] == 0) {
            if (!ts_valid_utf8((const char *) s + start, i - start)) {
                return 0;
            }
            start = i + 1;
        }
    }
    return 1;
}


static int
close_code_ok(unsigned c)
{
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014)
           || (c >= 3000 && c <= 4999);
}


/* Encode msg as a server frame, mask it as a client would, parse back. */
static void
roundtrip(const ts_ws_msg_t *msg)
{
    static const unsigned char  key[4] = { 0xa5, 0x01, 0x7e, 0xc3 };
    unsigned char               pl[FUZZ_MAX], wire[FUZZ_MAX + 10];
    unsigned char               in[FUZZ_MAX + 14];
    char                        reason[TS_WS_MAX_CONTROL + 1];
    const unsigned char        *src = msg->data;
    size_t                      len = msg->len, w, h, i, used;
    ts_ws_parser_t             *p;
    ts_ws_msg_t                 back;

    if (msg->opcode == TS_WS_CLOSE) {
        if (memchr(msg->data, 0, msg->len) != NULL) {
            return;                 /* the encoder takes a C string */
        }
        memcpy(reason, msg->data, msg->len);
        reason[msg->len] = '\0';
        len = ts_ws_close_payload(msg->close_code, reason, pl);
        CHECK(len == (msg->close_code == 1005 ? 0 : 2 + msg->len));
        src = pl;
    }

    w = ts_ws_frame(msg->opcode, src, len, wire, sizeof(wire));
    CHECK(w > len && w - len <= TS_WS_MAX_HEADER);
    h = w - len;
    memcpy(in, wire, h);
    in[1] |= 0x80;
    memcpy(in + h, key, 4);
    for (i = 0; i < len; i++) {
        in[h + 4 + i] = wire[h + i] ^ key[i & 3];
    }

    p = ts_ws_parser_new(FUZZ_MAX);
    CHECK(p != NULL);
    CHECK(ts_ws_parse(p, in, h + 4 + len, &used, &back) == 1);
    CHECK(used == h + 4 + len);
    CHECK(back.opcode == msg->opcode);
    CHECK(back.len == msg->len);
    CHECK(back.close_code == msg->close_code);
    CHECK(msg->len == 0 || memcmp(back.data, msg->data, msg->len) == 0);
    ts_ws_parser_free(p);
}


static void
check_msg(const ts_ws_msg_t *m, int do_roundtrip)
{
    CHECK(m->data != NULL);
    switch (m->opcode) {
    case TS_WS_TEXT:
        CHECK(oracle_utf8(m->data, m->len));
        /* fall through */
    case TS_WS_BINARY:
        CHECK(m->len <= FUZZ_MAX);
        CHECK(m->close_code == 0);
        break;
    case TS_WS_PING:
    case TS_WS_PONG:
        CHECK(m->len <= TS_WS_MAX_CONTROL);
        CHECK(m->close_code == 0);
        break;
    case TS_WS_CLOSE:
        CHECK(m->len <= TS_WS_MAX_CONTROL - 2);
        CHECK(oracle_utf8(m->data, m->len));
        CHECK(close_code_ok(m->close_code)
              || (m->close_code == 1005 && m->len == 0));
        break;
    default:
        CHECK(0);
    }
    if (do_roundtrip) {
        roundtrip(m);
    }
}


/* One ts_ws_parse call with every per-call invariant checked. */
static int
call(ts_ws_parser_t *p, const unsigned char *in, size_t n, size_t *used,
    outcome_t *o, int do_roundtrip)
{
    ts_ws_msg_t  msg;
    int          rc;

    *used = (size_t) -1;
    rc = ts_ws_parse(p, in, n, used, &msg);
    CHECK(*used <= n);
    CHECK(ts_ws_parser_memory(p) <= FUZZ_MAX + FUZZ_STRUCT);

    if (o->rc) {
        CHECK(rc == o->rc && *used == 0);       /* errors are final */
        return rc;
    }
    if (o->closed) {
        CHECK(rc == 0 && *used == n);           /* nothing after close */
        return rc;
    }
    CHECK(rc == 1 || rc == 0 || rc == -1002 || rc == -1007 || rc == -1009
          || rc == -1011);
    if (rc == 0) {
        CHECK(*used == n);
    } else if (rc < 0) {
        o->rc = rc;
    } else {
        check_msg(&msg, do_roundtrip);
        o->count++;
        o->hash = fnv(o->hash, &msg.opcode, sizeof(msg.opcode));
        o->hash = fnv(o->hash, &msg.len, sizeof(msg.len));
        o->hash = fnv(o->hash, &msg.close_code, sizeof(msg.close_code));
        o->hash = fnv(o->hash, msg.data, msg.len);
        if (msg.opcode == TS_WS_CLOSE) {
            o->closed = 1;
        }
    }
    return rc;
}


/* Parse s[0..n) in chunks taken in turn from sizes (none: all at once). */
static void
run(const unsigned char *s, size_t n, const unsigned char *sizes,
    size_t nsizes, outcome_t *o, int do_roundtrip)
{
    ts_ws_parser_t  *p = ts_ws_parser_new(FUZZ_MAX);
    size_t           off = 0, c, used, j = 0;
    int              rc, tries;

    CHECK(p != NULL);
    memset(o, 0, sizeof(*o));
    o->hash = 14695981039346656037ULL;

    while (off < n) {
        c = nsizes ? sizes[j++ % nsizes] : n - off;
        if (c == 0) {
            call(p, NULL, 0, &used, o, do_roundtrip);
            CHECK(used == 0);
            c = 1;
        }
        if (c > n - off) {
            c = n - off;
        }
        while (c > 0) {
            rc = call(p, s + off, c, &used, o, do_roundtrip);
            off += used;
            c -= used;
            if (rc < 0) {
                /* stays an error, however it is called */
                for (tries = 0; tries < 2; tries++) {
                    call(p, s + off, n - off, &used, o, 0);
                }
                call(p, NULL, 0, &used, o, 0);
                ts_ws_parser_free(p);
                return;
            }
        }
    }
    call(p, NULL, 0, &used, o, do_roundtrip);
    CHECK(used == 0);
    ts_ws_parser_free(p);
}


/* Header values come from the network too. */
static void
fuzz_handshake(const unsigned char *s, size_t n)
{
    char         v[128], accept[29];
    const char  *why;
    int          rc, i;

    if (n > sizeof(v) - 1) {
        n = sizeof(v) - 1;
    }
    memcpy(v, s, n);
    v[n] = '\0';

    for (i = 0; i < 6; i++) {
        why = NULL;
        rc = ts_ws_handshake(i == 0 ? v : "GET", i == 1 ? v : "HTTP/1.1",
                             i == 2 ? v : "websocket", i == 3 ? v : "Upgrade",
                             i == 4 ? v : "13",
                             i == 5 ? v : "dGhlIHNhbXBsZSBub25jZQ==",
                             accept, &why);
        CHECK(rc == 0 || rc == 400 || rc == 426);
        CHECK(rc == 0 ? strlen(accept) == 28 && why == NULL
                      : accept[0] == '\0' && why != NULL);
        CHECK(rc != 426 || i == 4);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char  *sizes, *s;
    size_t                nsizes, n;
    outcome_t             whole, chunked;

    if (size == 0) {
        return 0;
    }
    nsizes = data[0] & 0x0f;
    if (nsizes > size - 1) {
        nsizes = size - 1;
    }
    sizes = data + 1;
    s = data + 1 + nsizes;
    n = size - 1 - nsizes;

    run(s, n, NULL, 0, &whole, 1);
    run(s, n, sizes, nsizes, &chunked, 0);
    CHECK(whole.count == chunked.count);
    CHECK(whole.hash == chunked.hash);
    CHECK(whole.rc == chunked.rc);
    CHECK(whole.closed == chunked.closed);

    fuzz_handshake(s, n);
    return 0;
}


#ifdef TS_FUZZ_STANDALONE

/* xorshift64*: deterministic, seeded from the command line or 1. */
static uint64_t
rnd(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 2685821657736338717ULL;
}


/* Mostly well-formed masked frames, then a few random byte flips. */
static size_t
random_stream(uint64_t *x, unsigned char *buf, size_t cap)
{
    static const unsigned char  ops[] = { 0x81, 0x82, 0x01, 0x00, 0x80,
                                          0x89, 0x8a, 0x88 };
    size_t                      n = 0, len, i, k, flips;

    k = rnd(x) & 0x0f;                               /* chunk sizes */
    buf[n++] = (unsigned char) k;
    for (i = 0; i < k; i++) {
        buf[n++] = (unsigned char) (rnd(x) % 9);
    }
    while (n + 14 + 300 < cap && rnd(x) % 8) {
        len = rnd(x) % 300;
        buf[n++] = ops[rnd(x) % sizeof(ops)];
        if (len > 125) {
            buf[n++] = 0x80 | 126;
            buf[n++] = (unsigned char) (len >> 8);
            buf[n++] = (unsigned char) len;
        } else {
            buf[n++] = (unsigned char) (0x80 | len);
        }
        for (i = 0; i < 4 + len; i++) {
            buf[n++] = (unsigned char) (rnd(x) % 4 ? rnd(x) & 0x7f
                                                   : rnd(x));
        }
    }
    for (flips = rnd(x) % 3; flips > 0 && n > 0; flips--) {
        buf[rnd(x) % n] ^= (unsigned char) (1u << (rnd(x) % 8));
    }
    return n;
}


int
main(int argc, char **argv)
{
    static unsigned char  buf[1 << 16];
    uint64_t              x = 0x9e3779b97f4a7c15ULL;
    size_t                n;
    long                  i, runs = 200000;
    FILE                 *f;

    if (argc > 1 && strcmp(argv[1], "-runs") != 0) {
        for (i = 1; i < argc; i++) {
            f = fopen(argv[i], "rb");
            if (f == NULL) {
                perror(argv[i]);
                return 1;
            }
            n = fread(buf, 1, sizeof(buf), f);
            fclose(f);
            LLVMFuzzerTestOneInput(buf, n);
        }
        printf("fuzz_ws: %d file(s) replayed\n", argc - 1);
        return 0;
    }
    if (argc > 2) {
        runs = atol(argv[2]);
    }
    for (i = 0; i < runs; i++) {
        n = random_stream(&x, buf, 4096);
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("fuzz_ws: %ld random inputs, no invariant broken\n", runs);
    return 0;
}

#endif /* TS_FUZZ_STANDALONE */

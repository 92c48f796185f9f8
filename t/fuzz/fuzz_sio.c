/*
 * fuzz_sio: libFuzzer target for the Engine.IO / Socket.IO codec
 * (shared/proto/ts_sio.h).
 *
 * Properties checked on every input, beyond "no crash, no leak, no UB":
 *   - a failed parse leaves the packet owning nothing;
 *   - a parsed EVENT re-encodes (ts_sio_event), re-parses, and yields the
 *     same namespace, event name and arguments; encoding that again gives
 *     the same bytes (the encoder is a fixed point after one round);
 *   - a parsed ACK does the same through ts_sio_ack, keeping its ack id;
 *   - the input used as a raw string (sid, message, event name) either is
 *     refused by the encoders or comes back unchanged through the parser.
 *
 * Build (libFuzzer):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ishared/proto \
 *       shared/proto/ts_sio.c t/fuzz/fuzz_sio.c -o /tmp/fuzz_sio -ljansson
 *   /tmp/fuzz_sio -max_total_time=60 -max_len=4096 [corpus-dir]
 *
 * Without libFuzzer, -DTS_FUZZ_STANDALONE adds a main() that mutates a few
 * seed packets at random (gcc ... -DTS_FUZZ_STANDALONE ...; then
 * /tmp/fuzz_sio [iterations] [seed]).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_sio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_LEN  65536

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_sio: %s:%d: check failed: %s\n",          \
                    __FILE__, __LINE__, #cond);                             \
            abort();                                                        \
        }                                                                   \
    } while (0)


/* enc parses back to an EVENT equal to p; then encodes to the same bytes. */
static void
check_event_round_trip(const ts_sio_packet_t *p)
{
    ts_sio_packet_t  q;
    char             err[64];
    char            *enc, *enc2;
    size_t           len, len2;

    enc = ts_sio_event(p->nsp, p->event, p->args, &len);
    CHECK(enc != NULL);
    CHECK(len == strlen(enc));

    /* compact output may be longer than the input ("1E2" -> "100.0") */
    CHECK(ts_sio_parse(enc, len, SIZE_MAX, &q, err, sizeof(err)) == 0);
    CHECK(q.eio == TS_EIO_MESSAGE && q.has_sio && q.sio == TS_SIO_EVENT);
    CHECK(strcmp(q.nsp, p->nsp) == 0);
    CHECK(strcmp(q.event, p->event) == 0);
    CHECK(q.ack_id == -1);
    CHECK(json_equal(q.args, p->args));

    enc2 = ts_sio_event(q.nsp, q.event, q.args, &len2);
    CHECK(enc2 != NULL && len2 == len && memcmp(enc, enc2, len) == 0);

    free(enc2);
    free(enc);
    ts_sio_packet_clear(&q);
}

static void
check_ack_round_trip(const ts_sio_packet_t *p)
{
    ts_sio_packet_t  q;
    char             err[64];
    char            *enc;
    size_t           len;

    enc = ts_sio_ack(p->nsp, p->ack_id, p->args, &len);
    CHECK(enc != NULL);
    CHECK(ts_sio_parse(enc, len, SIZE_MAX, &q, err, sizeof(err)) == 0);
    CHECK(q.has_sio && q.sio == TS_SIO_ACK);
    CHECK(strcmp(q.nsp, p->nsp) == 0);
    CHECK(q.ack_id == p->ack_id);
    CHECK(json_equal(q.data, p->data));
    free(enc);
    ts_sio_packet_clear(&q);
}

/* If an encoder accepted s, its value must come back from the parser. */
static void
check_string_encoders(const char *s)
{
    ts_sio_packet_t  q;
    json_t          *none;
    char            *enc;
    size_t           len;

    enc = ts_sio_connect_ok(NULL, s, &len);
    if (enc != NULL) {
        CHECK(ts_sio_parse(enc, len, SIZE_MAX, &q, NULL, 0) == 0);
        CHECK(q.sio == TS_SIO_CONNECT);
        CHECK(strcmp(json_string_value(json_object_get(q.data, "sid")), s)
              == 0);
        ts_sio_packet_clear(&q);
        free(enc);
    }

    enc = ts_sio_connect_error(NULL, s, &len);
    if (enc != NULL) {
        CHECK(ts_sio_parse(enc, len, SIZE_MAX, &q, NULL, 0) == 0);
        CHECK(q.sio == TS_SIO_CONNECT_ERROR);
        CHECK(strcmp(json_string_value(json_object_get(q.data, "message")),
                     s) == 0);
        ts_sio_packet_clear(&q);
        free(enc);
    }

    none = json_array();
    CHECK(none != NULL);
    enc = ts_sio_event(NULL, s, none, &len);
    if (enc != NULL) {
        CHECK(ts_sio_parse(enc, len, SIZE_MAX, &q, NULL, 0) == 0);
        CHECK(q.sio == TS_SIO_EVENT && strcmp(q.event, s) == 0);
        CHECK(json_array_size(q.args) == 0);
        ts_sio_packet_clear(&q);
        free(enc);
    }
    json_decref(none);

    /* the same bytes as a namespace: accepted exactly when parsable */
    enc = ts_sio_event(s, "e", NULL, &len);
    if (enc != NULL) {
        CHECK(ts_sio_parse(enc, len, SIZE_MAX, &q, NULL, 0) == 0);
        CHECK(strcmp(q.nsp, s) == 0);
        ts_sio_packet_clear(&q);
        free(enc);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ts_sio_packet_t  p;
    char             err[64];
    char            *s;

    if (ts_sio_parse((const char *) data, size, FUZZ_MAX_LEN, &p, err,
                     sizeof(err)) == 0)
    {
        CHECK(err[0] == '\0');
        if (p.has_sio && p.sio == TS_SIO_EVENT) {
            CHECK(p.event != NULL && json_is_array(p.args));
            CHECK(json_array_size(p.args) + 1 == json_array_size(p.data));
            check_event_round_trip(&p);
        } else if (p.has_sio && p.sio == TS_SIO_ACK) {
            CHECK(p.ack_id >= 0 && p.args == p.data);
            check_ack_round_trip(&p);
        }
        ts_sio_packet_clear(&p);
    } else {
        CHECK(err[0] != '\0');
        CHECK(p.data == NULL && p.args == NULL && p.event == NULL);
    }

    if (size <= 4096) {
        s = malloc(size + 1);
        CHECK(s != NULL);
        memcpy(s, data, size);
        s[size] = '\0';
        check_string_encoders(s);
        free(s);
    }
    return 0;
}


#ifdef TS_FUZZ_STANDALONE

/*
 * A poor man's fuzzer for machines without libFuzzer: take a seed packet,
 * apply a few random byte edits and splices of protocol tokens, run the
 * target.  rand_r keeps the state local.
 */

static const char *const seeds[] = {
    "0{\"sid\":\"abc\",\"upgrades\":[],\"pingInterval\":25000}",
    "1", "2", "3", "6", "40", "40{\"token\":\"abc\"}",
    "40/admin,{\"token\":\"x\"}", "41", "41/admin,",
    "42[\"join_ticket\",\"64b7f0c2a1\"]", "421[\"join_ticket\",\"x\"]",
    "42/admin,17[\"x\",1,{\"a\":null},[1.5e3,true]]",
    "431[{\"ok\":true}]", "43/admin,7[]", "44{\"message\":\"Invalid token\"}",
    "42[\"\\u00e9\\ud83d\\ude00\",\"a\\\"b\\\\c\\n\"]",
    "451-[\"x\",{\"_placeholder\":true,\"num\":0}]",
};

static const char *const tokens[] = {
    "[", "]", "{", "}", "\"", "\\", ",", ":", "/", "0", "9", "-", "1e999",
    "\\u0000", "\\ud800", "\xc3\xa9", "\xff", "null", "true", "[[[[[[[[",
    "\"connect\"", "/admin,", "99999999999999999",
};

int
main(int argc, char **argv)
{
    unsigned long  iters = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    unsigned int   seed = argc > 2 ? (unsigned int) strtoul(argv[2], NULL, 10)
                                   : 1;
    unsigned char  buf[512];
    unsigned long  it;
    size_t         n, pos, tl;
    int            k, edits;

    for (it = 0; it < iters; it++) {
        const char *s = seeds[rand_r(&seed) % (sizeof(seeds)
                                               / sizeof(seeds[0]))];

        n = strlen(s);
        memcpy(buf, s, n);
        edits = rand_r(&seed) % 4;
        for (k = 0; k < edits; k++) {
            pos = n ? (size_t) rand_r(&seed) % (n + 1) : 0;
            switch (rand_r(&seed) % 4) {
            case 0:                                 /* flip a byte */
                if (pos < n) {
                    buf[pos] = (unsigned char) rand_r(&seed);
                }
                break;
            case 1:                                 /* delete a byte */
                if (pos < n) {
                    memmove(buf + pos, buf + pos + 1, n - pos - 1);
                    n--;
                }
                break;
            case 2:                                 /* truncate */
                n = pos;
                break;
            default:                                /* insert a token */
                s = tokens[rand_r(&seed) % (sizeof(tokens)
                                            / sizeof(tokens[0]))];
                tl = strlen(s);
                if (n + tl <= sizeof(buf)) {
                    memmove(buf + pos + tl, buf + pos, n - pos);
                    memcpy(buf + pos, s, tl);
                    n += tl;
                }
                break;
            }
        }
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("fuzz_sio: %lu inputs, no failure\n", iters);
    return 0;
}

#endif /* TS_FUZZ_STANDALONE */

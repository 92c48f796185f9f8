/*
 * fuzz_conf: libFuzzer target for ticketd's reader of nginx.conf syntax
 * (daemon/conf.h), the text part (no includes: a conf_t made with
 * no_include refuses them).
 *
 * Properties checked on every input, beyond "no crash, no leak, no UB":
 *   - it parses or fails with a message ending in " in fuzz.conf:<line>"
 *     where line is at most the input's line count + 1;
 *   - every directive has a non-empty name and a line within the input,
 *     and its context is "" or the path of an earlier directive that
 *     opened a block (its context, a space, its name);
 *   - parsing the same bytes again gives the same directives.
 *
 * Build (libFuzzer):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Idaemon \
 *       daemon/conf.c t/fuzz/fuzz_conf.c -o /tmp/fuzz_conf
 *   /tmp/fuzz_conf -max_total_time=60 -max_len=4096
 *
 * Without libFuzzer, -DTS_FUZZ_STANDALONE adds a main() that mutates a few
 * seed files at random (then /tmp/fuzz_conf [iterations] [seed]).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                            \
    do {                                                                    \
        if (!(c)) {                                                         \
            fprintf(stderr, "fuzz_conf: %s:%d: check failed: %s\n",         \
                    __FILE__, __LINE__, #c);                                \
            abort();                                                        \
        }                                                                   \
    } while (0)


/* Some directive before i opens the block whose path is ctx. */
static int
opened_by_earlier(const conf_t *c, size_t i, const char *ctx)
{
    const conf_directive_t  *d;
    size_t                   j, n;

    for (j = 0; j < i; j++) {
        d = &c->d[j];
        n = strlen(d->context);
        if (n == 0 ? strcmp(ctx, d->name) == 0
                   : strncmp(ctx, d->context, n) == 0 && ctx[n] == ' '
                     && strcmp(ctx + n + 1, d->name) == 0)
        {
            return 1;
        }
    }
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    conf_t       a, b;
    unsigned     lines = 1;
    size_t       i, k;
    int          ra, rb;
    const char  *at, *ctx;

    for (i = 0; i < size; i++) {
        lines += data[i] == '\n';
    }
    CHECK(conf_init(&a, "/fuzz/") == 0);
    CHECK(conf_init(&b, "/fuzz/") == 0);
    a.no_include = b.no_include = 1;
    ra = conf_parse(&a, (const char *) data, size, "fuzz.conf");
    rb = conf_parse(&b, (const char *) data, size, "fuzz.conf");
    CHECK(ra == rb);
    if (ra != 0) {
        at = strstr(a.err, " in fuzz.conf:");
        CHECK(at != NULL);
        CHECK((unsigned) strtoul(at + 14, NULL, 10) <= lines + 1);
        CHECK(strcmp(a.err, b.err) == 0);
    }
    CHECK(a.n == b.n);
    for (i = 0; i < a.n; i++) {
        CHECK(a.d[i].name != NULL && a.d[i].line >= 1
              && a.d[i].line <= lines);
        CHECK(strcmp(a.d[i].name, b.d[i].name) == 0);
        CHECK(a.d[i].nargs == b.d[i].nargs);
        for (k = 0; k < a.d[i].nargs; k++) {
            CHECK(strcmp(a.d[i].args[k], b.d[i].args[k]) == 0);
        }
        CHECK(a.d[i].name[0] != '\0');
        ctx = a.d[i].context;
        CHECK(strcmp(ctx, b.d[i].context) == 0);
        if (ctx[0] != '\0') {
            CHECK(opened_by_earlier(&a, i, ctx));
        }
    }
    conf_free(&a);
    conf_free(&b);
    return 0;
}


#ifdef TS_FUZZ_STANDALONE

static uint64_t
rnd(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 2685821657736338717ULL;
}


int
main(int argc, char **argv)
{
    static const char  *seeds[] = {
        "user www-data;\nevents { worker_connections 1024; }\nhttp {\n"
        "    ticket_store sqlite:/var/lib/t.db;\n"
        "    ticket_mail_from \"Desk \\\"D\\\" <d@x.io>\";\n"
        "    log_format t '$remote_addr\\t${request}';\n"
        "    server { location / { return 200 \"a;b{c}\"; } } # c\n}\n",
        "a b\\;c { d 'e' \"f\"; }",
        "ticket_assign_weights skill=0.5\n  availability=0.3;",
    };
    static const char    alphabet[] = "ab \t\n;{}#'\"\\$x";
    unsigned char        buf[1024];
    unsigned long        n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    uint64_t             x = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    unsigned long        it;
    size_t               len, i, flips;

    if (x == 0) {
        x = 1;
    }
    for (it = 0; it < n; it++) {
        const char  *s = seeds[rnd(&x) % 3];

        len = strlen(s);
        memcpy(buf, s, len);
        flips = rnd(&x) % 8;
        for (i = 0; i < flips; i++) {
            buf[rnd(&x) % len] = (rnd(&x) & 1)
                ? (unsigned char) alphabet[rnd(&x) % (sizeof(alphabet) - 1)]
                : (unsigned char) rnd(&x);
        }
        len = rnd(&x) % 4 == 0 ? rnd(&x) % (len + 1) : len;   /* cut */
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("fuzz_conf: %lu inputs, no failure\n", n);
    return 0;
}

#endif

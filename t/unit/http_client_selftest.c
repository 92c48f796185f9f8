/*
 * http_client_selftest: drives daemon/http_client.c against real local
 * servers (an HTTP server and an SMTP sink that t/unit/http_client_selftest.sh
 * starts), one scenario per test_* function, and prints one "ok"/"FAIL"
 * line per check plus the measured figures.
 *
 * A standalone program with its own main(), built by hand by the script
 * (it needs libcurl and daemon/, which the unit-test binary does not link).
 * It includes daemon/http_client.c itself, so the probes only the tests
 * use (active count, connection limit, global cleanup) live here, next to
 * the client's internals, instead of in ticketd.
 * The Makefile builds every .c file of t/unit into build/unit-tests, so the
 * whole file is compiled only when HTTP_CLIENT_SELFTEST is defined; without
 * it this is an empty translation unit and adds nothing there.
 *
 * usage: http_client_selftest HTTP_PORT DEAD_PORT SMTP_PORT
 *   HTTP_PORT  the script's HTTP server (/delay, /hang, /big, /echo, ...)
 *   DEAD_PORT  a local port nothing listens on
 *   SMTP_PORT  the script's SMTP sink
 * Exit status 0 when every check passed, 1 otherwise.
 */

#ifdef HTTP_CLIENT_SELFTEST

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "http_client.c"
#include "log.h"

#define MAX_CALLS   128
#define MIB         (1024 * 1024)

/* Transfers started and not yet called back (queued ones included). */
static size_t
http_client_active(http_client_t *c)
{
    return c->nreqs;
}

/*
 * Let at most n (>= 1) connections be open at once; also the number of
 * idle connections kept for reuse.  0, or -1 when n is out of range.
 */
static int
http_client_set_max_connections(http_client_t *c, long n)
{
    if (n < 1 || c->closing) {
        return -1;
    }
    if (curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, n)
        != CURLM_OK
        || curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, n) != CURLM_OK)
    {
        return -1;
    }
    return 0;
}

/* Release libcurl's global state at exit, after every client has closed. */
static void
http_client_global_cleanup(void)
{
    if (global_ready) {
        curl_global_cleanup();
        global_ready = 0;
    }
}

/* What one request's callback saw. */
typedef struct {
    int      done;            /* times the callback ran */
    long     status;
    char    *error;           /* copies: the result dies with the call */
    char    *body;
    size_t   body_len;
    int      timed_out;
    double   at_ms;           /* when the callback ran */
} call_t;

/* A group of requests the loop runs until all are called back. */
typedef struct {
    http_client_t  *c;
    int             pending;
    call_t          calls[MAX_CALLS];
} batch_t;

static uv_loop_t    loop;
static int          failures;
static int          checks;
static int          http_port, dead_port, smtp_port;
static int          stray_callbacks;    /* callbacks for refused requests */

/* --- helpers ---------------------------------------------------------- */

static double
now_ms(void)
{
    return (double) uv_hrtime() / 1e6;
}

static void
check(int ok, const char *fmt, ...)
{
    va_list  ap;

    checks++;
    if (!ok) {
        failures++;
    }
    printf("%s - ", ok ? "ok  " : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static void
url_for(char *buf, size_t len, const char *path)
{
    snprintf(buf, len, "http://127.0.0.1:%d%s", http_port, path);
}

static void
call_record(call_t *k, const http_result_t *res)
{
    k->done++;
    k->status = res->status;
    k->timed_out = res->timed_out;
    k->at_ms = now_ms();
    k->error = res->error != NULL ? strdup(res->error) : NULL;
    k->body = malloc(res->body_len + 1);
    if (k->body != NULL) {
        memcpy(k->body, res->body, res->body_len + 1);   /* with its NUL */
    }
    k->body_len = res->body_len;
}

static void
call_reset(call_t *k)
{
    free(k->error);
    free(k->body);
    memset(k, 0, sizeof(*k));
}

static void
batch_reset(batch_t *b)
{
    int  i;

    for (i = 0; i < MAX_CALLS; i++) {
        call_reset(&b->calls[i]);
    }
    b->pending = 0;
}

/* Request i of a batch calls back with &slots[i]. */
typedef struct {
    batch_t  *b;
    int       i;
} slot_t;

static slot_t  slots[MAX_CALLS];

static void
slot_on_done(const http_result_t *res, void *arg)
{
    slot_t  *s = arg;

    call_record(&s->b->calls[s->i], res);
    if (--s->b->pending == 0) {
        uv_stop(&loop);
    }
}

/* Start request i of b; 0 or -1 as http_client_request. */
static int
batch_get(batch_t *b, int i, const char *path, long timeout_ms)
{
    char  url[256];
    int   rc;

    url_for(url, sizeof(url), path);
    slots[i].b = b;
    slots[i].i = i;
    rc = http_client_request(b->c, "GET", url, NULL, NULL, 0, timeout_ms,
                             slot_on_done, &slots[i]);
    if (rc == 0) {
        b->pending++;
    }
    return rc;
}

/* Run the loop until every started request of b is called back. */
static void
batch_wait(batch_t *b)
{
    if (b->pending > 0) {
        uv_run(&loop, UV_RUN_DEFAULT);
    }
}

static void
stray_on_done(const http_result_t *res, void *arg)
{
    stray_callbacks++;
}

/* Closing a client and waiting for its done callback. */
static int  closed_count;

static void
on_closed(void *arg)
{
    closed_count++;
}

/* Close c and run the loop until its handles are gone; 1 when the done
 * callback ran exactly once. */
static int
client_close_wait(http_client_t *c)
{
    int  before = closed_count;

    http_client_close(c, on_closed, NULL);
    while (closed_count == before && uv_run(&loop, UV_RUN_ONCE) != 0) {
        /* spin the loop */
    }
    if (closed_count == before) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    return closed_count == before + 1;
}

/* --- loop stall probe ------------------------------------------------- */

/* A 1 ms repeating timer; the largest gap between two ticks is the
 * longest the loop was kept from running timers. */
static uv_timer_t  probe;
static double      probe_last, probe_max_gap;

static void
probe_on_tick(uv_timer_t *h)
{
    double  t = now_ms();

    if (t - probe_last > probe_max_gap) {
        probe_max_gap = t - probe_last;
    }
    probe_last = t;
}

static void
probe_start(void)
{
    probe_max_gap = 0;
    probe_last = now_ms();
    uv_timer_start(&probe, probe_on_tick, 1, 1);
}

static void
probe_stop(void)
{
    uv_timer_stop(&probe);
}

/* --- tests ------------------------------------------------------------ */

static batch_t  B;

/* Connections the HTTP server has accepted so far (its /stats). */
static long
server_connections(http_client_t *c)
{
    long  n = -1;

    batch_reset(&B);
    B.c = c;
    if (batch_get(&B, 0, "/stats", 5000) == 0) {
        batch_wait(&B);
        if (B.calls[0].error == NULL && B.calls[0].body != NULL) {
            n = strtol(B.calls[0].body, NULL, 10);
        }
    }
    batch_reset(&B);
    return n;
}

/* n GETs of /delay?ms=500 at once; returns the wall time in ms. */
static double
concurrent_batch(http_client_t *c, int n, int *ok)
{
    double  t0;
    int     i;

    batch_reset(&B);
    B.c = c;
    *ok = 0;
    probe_start();
    t0 = now_ms();
    for (i = 0; i < n; i++) {
        if (batch_get(&B, i, "/delay?ms=500", 10000) != 0) {
            break;
        }
    }
    batch_wait(&B);
    probe_stop();
    for (i = 0; i < n; i++) {
        if (B.calls[i].done == 1 && B.calls[i].error == NULL
            && B.calls[i].status == 200
            && strcmp(B.calls[i].body, "ok") == 0)
        {
            (*ok)++;
        }
    }
    return now_ms() - t0;
}

static void
test_concurrent_requests_share_the_loop(void)
{
    http_client_t  *c;
    double          ms;
    long            conn0, conn1, conn2;
    int             ok;

    printf("# 100 concurrent GETs, each answered after 500 ms\n");
    c = http_client_new(&loop, MIB);
    check(c != NULL, "client created");
    if (c == NULL) {
        return;
    }

    conn0 = server_connections(c);
    ms = concurrent_batch(c, 100, &ok);
    conn1 = server_connections(c);
    printf("  default limit (%d connections): 100 requests in %.0f ms,"
           " %ld new connections, longest loop stall %.1f ms\n",
           HTTP_CLIENT_MAX_CONNS, ms, conn1 - conn0, probe_max_gap);
    check(ok == 100, "all 100 answered 200 \"ok\" (%d)", ok);
    check(ms < 5000, "100 x 500 ms took %.0f ms (< 5000: they overlapped)",
          ms);
    check(http_client_active(c) == 0, "nothing active after the batch");

    check(http_client_set_max_connections(c, 128) == 0,
          "limit raised to 128");
    ms = concurrent_batch(c, 100, &ok);
    conn2 = server_connections(c);
    printf("  limit 128, warm cache: 100 requests in %.0f ms,"
           " %ld new connections (the rest reused), longest loop stall"
           " %.1f ms\n", ms, conn2 - conn1, probe_max_gap);
    check(ok == 100, "all 100 answered again (%d)", ok);
    check(conn2 - conn1 < 100, "kept-alive connections were reused");
    check(http_client_set_max_connections(c, 0) == -1,
          "a limit of 0 is refused");

    check(client_close_wait(c), "close calls its done callback once");
}

static void
test_refused_port_fails_with_connect_failed(void)
{
    http_client_t  *c;
    char            url[128];

    printf("# nobody listens on the port\n");
    c = http_client_new(&loop, MIB);
    batch_reset(&B);
    B.c = c;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", dead_port);
    slots[0].b = &B;
    slots[0].i = 0;
    if (http_client_request(c, "GET", url, NULL, NULL, 0, 5000,
                            slot_on_done, &slots[0]) == 0)
    {
        B.pending++;
    }
    batch_wait(&B);
    printf("  error: %s\n", B.calls[0].error ? B.calls[0].error : "(none)");
    check(B.calls[0].done == 1, "called back once");
    check(B.calls[0].error != NULL
          && strncmp(B.calls[0].error, "connect failed", 14) == 0,
          "error starts with \"connect failed\"");
    check(B.calls[0].status == 0 && B.calls[0].timed_out == 0,
          "status 0, not a timeout");
    check(client_close_wait(c), "closed");
}

static void
test_silent_server_times_out(void)
{
    http_client_t  *c;
    double          t0, ms;

    printf("# the server accepts and never answers; timeout 1000 ms\n");
    c = http_client_new(&loop, MIB);
    batch_reset(&B);
    B.c = c;
    t0 = now_ms();
    batch_get(&B, 0, "/hang", 1000);
    batch_wait(&B);
    ms = B.calls[0].at_ms - t0;
    printf("  failed after %.0f ms: %s\n", ms,
           B.calls[0].error ? B.calls[0].error : "(none)");
    check(B.calls[0].timed_out == 1, "timed_out = 1");
    check(B.calls[0].error != NULL && strcmp(B.calls[0].error, "timeout") == 0,
          "error \"timeout\"");
    check(B.calls[0].status == 0, "status 0");
    check(ms >= 950 && ms < 3000, "ended at about the timeout (%.0f ms)", ms);
    check(client_close_wait(c), "closed");
}

static void
test_body_over_max_body_is_refused(void)
{
    http_client_t  *c;
    int             i;

    printf("# max_body 1 MiB\n");
    c = http_client_new(&loop, MIB);
    batch_reset(&B);
    B.c = c;
    batch_get(&B, 0, "/big?bytes=2097152", 10000);            /* length */
    batch_get(&B, 1, "/big?bytes=2097152&chunked=1", 10000);  /* no length */
    batch_get(&B, 2, "/big?bytes=1048576&chunked=1", 10000);  /* the cap */
    batch_get(&B, 3, "/big?bytes=1048577&chunked=1", 10000);  /* cap + 1 */
    batch_wait(&B);
    for (i = 0; i < 4; i++) {
        printf("  call %d: status %ld, %zu bytes, error %s\n", i,
               B.calls[i].status, B.calls[i].body_len,
               B.calls[i].error ? B.calls[i].error : "(none)");
    }
    check(B.calls[0].error != NULL
          && strcmp(B.calls[0].error, "response too large") == 0
          && B.calls[0].status == 0 && B.calls[0].body_len == 0,
          "2 MiB with Content-Length: \"response too large\"");
    check(B.calls[1].error != NULL
          && strcmp(B.calls[1].error, "response too large") == 0,
          "2 MiB chunked: \"response too large\"");
    check(B.calls[2].error == NULL && B.calls[2].status == 200
          && B.calls[2].body_len == MIB
          && strlen(B.calls[2].body) == MIB,
          "exactly 1 MiB is kept whole and NUL-terminated");
    check(B.calls[3].error != NULL
          && strcmp(B.calls[3].error, "response too large") == 0,
          "1 MiB + 1 byte: \"response too large\"");
    check(client_close_wait(c), "closed");
}

static void
test_post_sends_body_and_headers(void)
{
    static const char         body[] = "{\"a\":1}\0tail";   /* 12 bytes */
    static const char *const  headers[] = {
        "Content-Type: application/json",
        "X-Ticket: 42",
        "Authorization: Bearer sk-test",
        NULL
    };
    http_client_t  *c;
    call_t         *k;
    char            url[256];
    size_t          blen = sizeof(body) - 1;

    printf("# POST with headers and a body holding a NUL byte\n");
    c = http_client_new(&loop, MIB);
    batch_reset(&B);
    B.c = c;
    url_for(url, sizeof(url), "/echo");
    slots[0].b = &B;
    slots[0].i = 0;
    if (http_client_request(c, "POST", url, headers, body, blen, 5000,
                            slot_on_done, &slots[0]) == 0)
    {
        B.pending++;
    }
    slots[1].b = &B;
    slots[1].i = 1;
    if (http_client_request(c, "PUT", url, NULL, "x", 1, 5000,
                            slot_on_done, &slots[1]) == 0)
    {
        B.pending++;
    }
    batch_wait(&B);
    k = &B.calls[0];
    check(k->error == NULL && k->status == 200, "POST answered 200");
    check(k->body != NULL && strstr(k->body, "method=POST\n") != NULL,
          "server saw method POST");
    check(k->body != NULL && strstr(k->body, "x-ticket=42\n") != NULL
          && strstr(k->body, "content-type=application/json\n") != NULL
          && strstr(k->body, "authorization=Bearer sk-test\n") != NULL,
          "server saw the three headers");
    check(k->body != NULL && strstr(k->body, "length=12\n") != NULL
          && k->body_len >= blen
          && memcmp(k->body + k->body_len - blen, body, blen) == 0,
          "server got the 12 body bytes unchanged");
    check(k->body != NULL && strstr(k->body, "expect=") == NULL,
          "no Expect: 100-continue");
    check(B.calls[1].error == NULL && B.calls[1].body != NULL
          && strstr(B.calls[1].body, "method=PUT\n") != NULL,
          "another verb goes out as itself");
    check(client_close_wait(c), "closed");
}

static void
test_redirects_and_other_protocols_are_not_followed(void)
{
    http_client_t  *c;
    char            url[128];
    int             i;

    printf("# no redirects; http/https only\n");
    c = http_client_new(&loop, MIB);
    batch_reset(&B);
    B.c = c;
    batch_get(&B, 0, "/redirect", 5000);
    for (i = 1; i <= 2; i++) {
        slots[i].b = &B;
        slots[i].i = i;
        if (i == 1) {
            snprintf(url, sizeof(url), "file:///etc/hostname");
        } else {
            snprintf(url, sizeof(url), "smtp://127.0.0.1:%d/", smtp_port);
        }
        if (http_client_request(c, "GET", url, NULL, NULL, 0, 5000,
                                slot_on_done, &slots[i]) == 0)
        {
            B.pending++;
        }
    }
    batch_wait(&B);
    printf("  file: %s\n  smtp: %s\n",
           B.calls[1].error ? B.calls[1].error : "(none)",
           B.calls[2].error ? B.calls[2].error : "(none)");
    check(B.calls[0].error == NULL && B.calls[0].status == 302,
          "a 302 is the result, not followed");
    check(B.calls[1].error != NULL && B.calls[1].status == 0,
          "file:// is refused");
    check(B.calls[2].error != NULL && B.calls[2].status == 0,
          "smtp:// is refused for requests");
    check(client_close_wait(c), "closed");
}

static void
test_bad_arguments_are_refused_without_callback(void)
{
    static const char *const  crlf[] = { "X-A: 1\r\nX-Injected: 2", NULL };
    static const char *const  rcpt[] = { "a@example.test", NULL };
    static const char *const  none[] = { NULL };
    http_client_t  *c;
    char            url[128];

    printf("# requests that cannot start\n");
    c = http_client_new(&loop, MIB);
    url_for(url, sizeof(url), "/delay?ms=0");
    stray_callbacks = 0;
    check(http_client_request(c, "GET", url, NULL, NULL, 0, 0,
                              stray_on_done, NULL) == -1, "timeout 0");
    check(http_client_request(c, "GET", url, crlf, NULL, 0, 1000,
                              stray_on_done, NULL) == -1, "CRLF in a header");
    check(http_client_request(c, "GET", url, NULL, "x", 1, 1000,
                              stray_on_done, NULL) == -1, "GET with a body");
    check(http_client_request(c, "get /x", url, NULL, NULL, 0, 1000,
                              stray_on_done, NULL) == -1, "bad method");
    check(http_client_request(c, "GET", NULL, NULL, NULL, 0, 1000,
                              stray_on_done, NULL) == -1, "no URL");
    check(http_client_smtp(c, url, NULL, NULL, "a@example.test", none,
                           "x", 1, 1000, stray_on_done, NULL) == -1,
          "mail without recipients");
    check(http_client_smtp(c, url, NULL, NULL, "a@x\r\nRCPT TO:<b@x>", rcpt,
                           "x", 1, 1000, stray_on_done, NULL) == -1,
          "CRLF in the sender");
    check(http_client_active(c) == 0, "nothing active");
    check(client_close_wait(c), "closed");
    check(stray_callbacks == 0, "no callback for a refused request");
}

/* Each callback starts the next request, up to CHAIN_LEN. */
#define CHAIN_LEN  5

static struct {
    http_client_t  *c;
    int             done, ok, started_all;
} chain;

static void
chain_on_done(const http_result_t *res, void *arg)
{
    char  url[128];

    chain.done++;
    if (res->error == NULL && res->status == 200) {
        chain.ok++;
    }
    if (chain.done < CHAIN_LEN) {
        url_for(url, sizeof(url), "/delay?ms=10");
        if (http_client_request(chain.c, "GET", url, NULL, NULL, 0, 5000,
                                chain_on_done, NULL) != 0)
        {
            chain.started_all = 0;
        }
    } else {
        uv_stop(&loop);
    }
}

static void
test_callback_starts_the_next_request(void)
{
    char  url[128];

    printf("# each completion callback starts the next request\n");
    memset(&chain, 0, sizeof(chain));
    chain.c = http_client_new(&loop, MIB);
    chain.started_all = 1;
    url_for(url, sizeof(url), "/delay?ms=10");
    if (http_client_request(chain.c, "GET", url, NULL, NULL, 0, 5000,
                            chain_on_done, NULL) == 0)
    {
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    check(chain.started_all, "requests started from callbacks");
    check(chain.done == CHAIN_LEN && chain.ok == CHAIN_LEN,
          "%d of %d chained requests answered", chain.ok, CHAIN_LEN);
    check(client_close_wait(chain.c), "closed");
}

/* Requests cancelled by a close: every callback must see "cancelled",
 * must be refused a new request, and must come before the done callback. */
static struct {
    http_client_t  *c;
    int             cancelled, other, refused, after_done, done;
    double          closed_at, done_at;
    char            url[128];
} cx;

static void
cancel_on_done(const http_result_t *res, void *arg)
{
    if (res->error != NULL && strcmp(res->error, "cancelled") == 0
        && res->status == 0)
    {
        cx.cancelled++;
    } else {
        cx.other++;
    }
    if (cx.done) {
        cx.after_done++;
    }
    /* The client is closing: this must be refused, with no callback. */
    if (http_client_request(cx.c, "GET", cx.url, NULL, NULL, 0, 1000,
                            stray_on_done, NULL) == -1)
    {
        cx.refused++;
    }
}

static void
cancel_on_closed(void *arg)
{
    cx.done++;
    cx.done_at = now_ms();
}

static void
cancel_timer_fire(uv_timer_t *h)
{
    cx.closed_at = now_ms();
    http_client_close(cx.c, cancel_on_closed, NULL);
    uv_close((uv_handle_t *) h, NULL);
}

static void
test_close_cancels_requests_in_flight(void)
{
    uv_timer_t  t;
    int         i, started = 0;

    printf("# close with 20 slow requests in flight\n");
    memset(&cx, 0, sizeof(cx));
    stray_callbacks = 0;
    cx.c = http_client_new(&loop, MIB);
    url_for(cx.url, sizeof(cx.url), "/delay?ms=5000");
    for (i = 0; i < 20; i++) {
        if (http_client_request(cx.c, "GET", cx.url, NULL, NULL, 0, 10000,
                                cancel_on_done, NULL) == 0)
        {
            started++;
        }
    }
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, cancel_timer_fire, 200, 0);

    /* No uv_stop anywhere: the loop ends only if every handle closed. */
    uv_run(&loop, UV_RUN_DEFAULT);

    printf("  done callback %.1f ms after the close\n",
           cx.done_at - cx.closed_at);
    check(started == 20, "20 started");
    check(cx.cancelled == 20 && cx.other == 0,
          "20 callbacks with \"cancelled\" (%d, %d other)", cx.cancelled,
          cx.other);
    check(cx.refused == 20 && stray_callbacks == 0,
          "new requests refused while closing");
    check(cx.done == 1 && cx.after_done == 0,
          "done callback once, after every request callback");
    check(cx.done_at - cx.closed_at < 1000, "did not wait for the server");
}

/* One fast request whose callback closes the client while others run. */
static struct {
    http_client_t  *c;
    int             fast_ok, cancelled, other, done;
    size_t          active_in_cb;
} cc;

static void
cc_slow_done(const http_result_t *res, void *arg)
{
    if (res->error != NULL && strcmp(res->error, "cancelled") == 0) {
        cc.cancelled++;
    } else {
        cc.other++;
    }
}

static void
cc_closed(void *arg)
{
    cc.done++;
}

static void
cc_fast_done(const http_result_t *res, void *arg)
{
    cc.fast_ok = res->error == NULL && res->status == 200;
    cc.active_in_cb = http_client_active(cc.c);
    http_client_close(cc.c, cc_closed, NULL);
    /* A second close from the same callback is ignored. */
    http_client_close(cc.c, cc_closed, NULL);
}

static void
test_close_from_inside_a_callback(void)
{
    char  url[128];
    int   i;

    printf("# a completion callback closes the client\n");
    memset(&cc, 0, sizeof(cc));
    cc.c = http_client_new(&loop, MIB);
    url_for(url, sizeof(url), "/delay?ms=5000");
    for (i = 0; i < 5; i++) {
        http_client_request(cc.c, "GET", url, NULL, NULL, 0, 10000,
                            cc_slow_done, NULL);
    }
    url_for(url, sizeof(url), "/delay?ms=50");
    http_client_request(cc.c, "GET", url, NULL, NULL, 0, 10000,
                        cc_fast_done, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    check(cc.fast_ok, "the fast request succeeded");
    check(cc.active_in_cb == 5, "5 still active inside its callback (%zu)",
          cc.active_in_cb);
    check(cc.cancelled == 5 && cc.other == 0, "the 5 others cancelled");
    check(cc.done == 1, "done callback once");
}

static const char  mail_fmt[] =
    "From: ticketd <ticketd@example.test>\r\n"
    "To: alice@example.test\r\n"
    "Subject: %s\r\n"
    "%s"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Ticket #42 was assigned to you.\r\n"
    ".a line starting with a dot\r\n";

static void
mail_send(batch_t *b, int i, const char *user, const char *password,
    const char *const *rcpt, const char *subject, const char *extra, int port)
{
    char  url[128], msg[1024];
    int   n;

    snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", port);
    n = snprintf(msg, sizeof(msg), mail_fmt, subject, extra);
    slots[i].b = b;
    slots[i].i = i;
    if (http_client_smtp(b->c, url, user, password, "ticketd@example.test",
                         rcpt, msg, (size_t) n, 5000, slot_on_done,
                         &slots[i]) == 0)
    {
        b->pending++;
    }
}

static void
test_smtp(void)
{
    static const char *const  two[] = {
        "alice@example.test", "<bob@example.test>", NULL
    };
    static const char *const  r550[] = {
        "alice@example.test", "reject-550@example.test", NULL
    };
    static const char *const  r451[] = { "tempfail-451@example.test", NULL };
    static const char *const  one[] = { "alice@example.test", NULL };
    static const char *const  what[] = {
        "two recipients", "refused recipient (550)",
        "temporarily refused recipient (451)", "refused at end of DATA",
        "AUTH with the right password", "AUTH with a wrong password",
        "nobody listening"
    };
    http_client_t  *c;
    int             i;

    printf("# SMTP to the sink\n");
    c = http_client_new(&loop, MIB);
    batch_reset(&B);
    B.c = c;
    mail_send(&B, 0, NULL, NULL, two, "selftest plain", "", smtp_port);
    mail_send(&B, 1, NULL, NULL, r550, "selftest 550", "", smtp_port);
    mail_send(&B, 2, NULL, NULL, r451, "selftest 451", "", smtp_port);
    mail_send(&B, 3, NULL, NULL, one, "selftest data",
              "X-Sink: reject-data\r\n", smtp_port);
    mail_send(&B, 4, "mailer", "secret", one, "selftest auth", "",
              smtp_port);
    mail_send(&B, 5, "mailer", "wrong", one, "selftest badauth", "",
              smtp_port);
    mail_send(&B, 6, NULL, NULL, one, "selftest dead", "", dead_port);
    check(B.pending == 7, "7 mails started");
    batch_wait(&B);
    for (i = 0; i < 7; i++) {
        printf("  %-38s status %ld, error %s\n", what[i], B.calls[i].status,
               B.calls[i].error ? B.calls[i].error : "(none)");
    }
    check(B.calls[0].status == 250 && B.calls[0].error == NULL,
          "sent: 250");
    check(B.calls[1].status == 550 && B.calls[1].error != NULL,
          "refused recipient: 550 and an error");
    check(B.calls[2].status == 451 && B.calls[2].error != NULL,
          "temporary refusal: 451 and an error");
    check(B.calls[3].status == 554 && B.calls[3].error != NULL,
          "refused message: 554 and an error");
    check(B.calls[4].status == 250 && B.calls[4].error == NULL,
          "authenticated: 250");
    check(B.calls[5].status == 535 && B.calls[5].error != NULL,
          "bad password: 535 and an error");
    check(B.calls[6].status == 0 && B.calls[6].error != NULL
          && strncmp(B.calls[6].error, "connect failed", 14) == 0,
          "no server: connect failed, status 0");
    check(client_close_wait(c), "closed");
}

int
main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s HTTP_PORT DEAD_PORT SMTP_PORT\n",
                argv[0]);
        return 2;
    }
    http_port = atoi(argv[1]);
    dead_port = atoi(argv[2]);
    smtp_port = atoi(argv[3]);

    check(http_client_new(NULL, 0) == NULL,
          "no client before http_client_global_init()");
    if (http_client_global_init() != 0) {
        fprintf(stderr, "http_client_global_init failed\n");
        return 1;
    }
    uv_loop_init(&loop);
    uv_timer_init(&loop, &probe);

    test_concurrent_requests_share_the_loop();
    test_refused_port_fails_with_connect_failed();
    test_silent_server_times_out();
    test_body_over_max_body_is_refused();
    test_post_sends_body_and_headers();
    test_redirects_and_other_protocols_are_not_followed();
    test_bad_arguments_are_refused_without_callback();
    test_callback_starts_the_next_request();
    test_close_cancels_requests_in_flight();
    test_close_from_inside_a_callback();
    test_smtp();

    batch_reset(&B);
    uv_close((uv_handle_t *) &probe, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    check(uv_loop_close(&loop) == 0, "every libuv handle closed");
    http_client_global_cleanup();

    printf("# %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}

#endif /* HTTP_CLIENT_SELFTEST */

/*
 * redis_bridge: events between hosts through Redis pub/sub (see
 * redis_bridge.h).
 *
 * Wire: PUBLISH ticket:events "<mac>|1|<origin>|<ms>|<event frame JSON>",
 * sealed and opened by ts_wire (shared/proto/ts_wire.h) with the bridge key
 * derived from the JWT secret.  Anyone who reaches Redis can publish, so a
 * message is delivered only when its MAC holds, it was sent within the
 * replay window, and its frame passes the event schema (ts_event_check);
 * anything else is dropped and logged (rate-limited).  The origin (16
 * random hex digits per daemon run) keeps a daemon from delivering its
 * own events twice.  hiredis 0.14's async API on its libuv adapter; it has
 * no timeouts, so a reconnect timer (1 s doubling to 30 s) drives
 * recovery.  The host name is resolved with uv_getaddrinfo (off the loop)
 * before each round of connecting, and hiredis is given the address;
 * every connection starts with the cache's handshake (ts_redis_handshake)
 * and is dropped, and retried later, when Redis refuses a step of it.
 */

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libuv.h>

#include "link_server.h"
#include "ts_cache.h"
#include "ts_event.h"
#include "ts_model.h"
#include "ts_session.h"
#include "ts_wire.h"
#include "log.h"
#include "metrics.h"
#include "redis_bridge.h"
#include "viewers.h"

#define REDIS_CHANNEL  "ticket:events"

static struct {
    uv_loop_t           *loop;
    ts_redis_url_t       url;
    char                 origin[17];
    unsigned char        key[TS_WIRE_KEY_LEN];     /* the bridge key */
    log_limit_t          refused_log;
    ts_wire_replay_t     seen;             /* accepted in the window */
    redisAsyncContext   *pub;
    redisAsyncContext   *sub;
    uv_timer_t           retry;
    uv_getaddrinfo_t     resolve;
    int                  resolving;    /* resolve is in flight */
    char                 addr[64];     /* the host's address, as text */
    unsigned             addr_pick;    /* which of the host's addresses */
    int                  connect_failed;   /* in the last round */
    uint64_t             wait_ms;
    int                  started;
    int                  stopping;
    int                  pub_before;   /* connected once already */
    int                  sub_before;   /* subscribed once already */
} rb;

static void redis_connect_all(void);


static void
redis_schedule(void)
{
    if (rb.stopping || uv_is_active((uv_handle_t *) &rb.retry)) {
        return;
    }
    uv_timer_start(&rb.retry, (uv_timer_cb) redis_connect_all, rb.wait_ms, 0);
    rb.wait_ms = rb.wait_ms * 2 > 30000 ? 30000 : rb.wait_ms * 2;
}


static void
redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    if (ac == rb.pub) {
        rb.pub = NULL;
    } else if (ac == rb.sub) {
        rb.sub = NULL;
    }
    if (!rb.stopping) {
        log_warn("redis bridge: disconnected (%s); events stay local",
                 ac->errstr[0] ? ac->errstr : "closed");
        redis_schedule();
    }
}


static void
redis_on_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK) {
        log_warn("redis bridge: cannot connect to %s:%d (%s): %s",
                 rb.url.host, rb.url.port, rb.addr, ac->errstr);
        rb.connect_failed = 1;     /* the next round takes the next address */
        if (ac == rb.pub) {
            rb.pub = NULL;
        } else if (ac == rb.sub) {
            rb.sub = NULL;
        }
        redis_schedule();
        return;
    }
    if (ac == rb.pub && rb.pub_before) {
        /* what this host published while away (or had in flight) is
         * lost: the other hosts' sockets fall back to the store */
        redis_bridge_publish(TS_RIGHTS_RESYNC_FRAME,
                             sizeof(TS_RIGHTS_RESYNC_FRAME) - 1);
    }
    if (ac == rb.pub) {
        rb.pub_before = 1;
    }
}


/*
 * A message from the channel: authentic, recent, well-formed -- or
 * dropped.  Only then does it reach the worker links.
 */
static void
redis_deliver(const char *msg, size_t len)
{
    ts_wire_rc_e   rc;
    const char    *json, *origin;
    size_t         jlen;
    char           why[160];

    rc = ts_wire_bridge_open(rb.key, rb.origin, msg, len, ts_now_ms(), &json,
                             &jlen);
    if (rc == TS_WIRE_OWN) {
        return;                  /* our own event, delivered already */
    }
    if (rc != TS_WIRE_OK) {
        if (log_limited(&rb.refused_log, "redis bridge: dropped")) {
            log_warn("redis bridge: dropped a %zu-byte message: %s", len,
                     ts_wire_strerror(rc));
        }
        metrics_bridge(METRICS_BRIDGE_REJECTED);
        return;
    }
    if (ts_wire_replay_seen(&rb.seen, msg, ts_now_ms())) {
        if (log_limited(&rb.refused_log, "redis bridge: dropped")) {
            log_warn("redis bridge: dropped a %zu-byte message: a replay",
                     len);
        }
        metrics_bridge(METRICS_BRIDGE_REJECTED);
        return;
    }
    if (ts_event_check_text(json, jlen, NULL, why, sizeof(why)) != 0) {
        if (log_limited(&rb.refused_log, "redis bridge: dropped")) {
            log_warn("redis bridge: dropped a signed message with a bad"
                     " frame: %s", why);
        }
        metrics_bridge(METRICS_BRIDGE_REJECTED);
        return;
    }
    metrics_bridge(METRICS_BRIDGE_IN);
    /* another host's viewers of a ticket: merged with this host's (the
     * origin is the message's third field, after the MAC and version) */
    origin = memchr(msg, '|', len);
    origin = origin ? memchr(origin + 1, '|', len - (origin + 1 - msg)) : NULL;
    if (origin != NULL && (size_t) (origin + 17 - msg) < len
        && viewers_bridged(origin + 1, json, jlen) == 0)
    {
        return;
    }
    link_server_broadcast(json, jlen);
}


static void
redis_on_message(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply  *reply = r;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 3)
    {
        return;
    }
    if (reply->element[0]->type == REDIS_REPLY_STRING
        && strcmp(reply->element[0]->str, "subscribe") == 0)
    {
        log_info("redis bridge: subscribed to %s on %s:%d", REDIS_CHANNEL,
                 rb.url.host, rb.url.port);
        rb.wait_ms = 1000;
        /* subscribed again: the other hosts' events -- rights pushes
         * among them -- were missed meanwhile, so this host's sockets
         * fall back to the store */
        if (rb.sub_before) {
            link_server_broadcast(TS_RIGHTS_RESYNC_FRAME,
                                  sizeof(TS_RIGHTS_RESYNC_FRAME) - 1);
        }
        rb.sub_before = 1;
        return;
    }
    if (reply->element[2]->type != REDIS_REPLY_STRING) {
        return;                  /* other confirmations */
    }
    redis_deliver(reply->element[2]->str, reply->element[2]->len);
}


/* A handshake step's reply: anything but a status reply ("+OK") drops
 * the connection, which the disconnect callback schedules again. */
static void
redis_on_handshake(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply  *reply = r;
    const char  *step = privdata;

    if (reply == NULL || reply->type == REDIS_REPLY_STATUS) {
        return;                  /* NULL: the connection is going away */
    }
    log_warn("redis bridge: %s refused by %s:%d: %s", step, rb.url.host,
             rb.url.port,
             reply->type == REDIS_REPLY_ERROR ? reply->str : "not +OK");
    redisAsyncDisconnect(ac);
}


static redisAsyncContext *
redis_open(void)
{
    redisAsyncContext  *ac = redisAsyncConnect(rb.addr, rb.url.port);
    ts_redis_cmd_t      hs[TS_REDIS_HANDSHAKE_MAX];
    int                 i, n;

    if (ac == NULL || ac->err) {
        if (ac) {
            log_warn("redis bridge: %s", ac->errstr);
            redisAsyncFree(ac);
        }
        return NULL;
    }
    if (redisLibuvAttach(ac, rb.loop) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, redis_on_disconnect);
    n = ts_redis_handshake(&rb.url, hs);
    for (i = 0; i < n; i++) {
        redisAsyncCommandArgv(ac, redis_on_handshake, (void *) hs[i].name,
                              hs[i].argc, hs[i].argv, hs[i].argvlen);
    }
    return ac;
}


/*
 * The host resolved (or not): open what is missing, by address.  One
 * address per round, the next one after a round whose connect failed (a
 * "localhost" may list ::1 first while Redis listens on 127.0.0.1 only).
 */
static void
redis_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct addrinfo  *ai;
    unsigned          n = 0;
    int               rc = status;

    rb.resolving = 0;
    if (status == 0) {
        if (rb.connect_failed) {
            rb.addr_pick++;
            rb.connect_failed = 0;
        }
        for (ai = res; ai != NULL; ai = ai->ai_next) {
            n++;
        }
        for (ai = res, n = rb.addr_pick % n; n > 0; n--) {
            ai = ai->ai_next;
        }
        rc = uv_ip_name(ai->ai_addr, rb.addr, sizeof(rb.addr));
    }
    uv_freeaddrinfo(res);
    if (rb.stopping || status == UV_ECANCELED) {
        return;
    }
    if (rc != 0) {
        log_warn("redis bridge: cannot resolve %s: %s", rb.url.host,
                 uv_strerror(rc));
        redis_schedule();
        return;
    }

    if (rb.pub == NULL) {
        rb.pub = redis_open();
    }
    if (rb.sub == NULL) {
        rb.sub = redis_open();
        if (rb.sub != NULL) {
            redisAsyncCommand(rb.sub, redis_on_message, NULL,
                              "SUBSCRIBE %s", REDIS_CHANNEL);
        }
    }
    if (rb.pub == NULL || rb.sub == NULL) {
        redis_schedule();
    }
}


/* Resolve the host off the loop, then connect (redis_on_resolved). */
static void
redis_connect_all(void)
{
    struct addrinfo  hints;
    char             port[8];
    int              rc;

    if (rb.stopping || rb.resolving || (rb.pub != NULL && rb.sub != NULL)) {
        return;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", rb.url.port);
    rc = uv_getaddrinfo(rb.loop, &rb.resolve, redis_on_resolved, rb.url.host,
                        port, &hints);
    if (rc != 0) {
        log_warn("redis bridge: cannot resolve %s: %s", rb.url.host,
                 uv_strerror(rc));
        redis_schedule();
        return;
    }
    rb.resolving = 1;
}


int
redis_bridge_start(uv_loop_t *loop, const char *url,
    const unsigned char key[TS_WIRE_KEY_LEN])
{
    unsigned char  rnd[8];
    char           err[128];

    memset(&rb, 0, sizeof(rb));
    rb.loop = loop;
    memcpy(rb.key, key, TS_WIRE_KEY_LEN);
    rb.wait_ms = 1000;

    if (ts_redis_url_parse(url, &rb.url, err, sizeof(err)) != 0) {
        log_error("redis bridge: bad URL \"%s\": %s", url, err);
        return -1;
    }

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd)) {
        return -1;
    }
    for (size_t i = 0; i < sizeof(rnd); i++) {
        snprintf(rb.origin + 2 * i, 3, "%02x", rnd[i]);
    }
    if (uv_timer_init(loop, &rb.retry) != 0) {
        return -1;
    }
    rb.started = 1;
    redis_connect_all();
    log_info("redis bridge: %s:%d db %d, origin %s", rb.url.host,
             rb.url.port, rb.url.db, rb.origin);
    return 0;
}


void
redis_bridge_publish(const char *json, size_t len)
{
    char    *msg;
    size_t   mlen;

    if (!rb.started || rb.pub == NULL) {
        return;
    }
    msg = ts_wire_bridge_seal(rb.key, rb.origin, ts_now_ms(), json, len,
                              &mlen);
    if (msg == NULL) {
        log_warn("redis bridge: cannot seal a %zu-byte event, kept local",
                 len);
        return;
    }
    redisAsyncCommand(rb.pub, NULL, NULL, "PUBLISH %s %b", REDIS_CHANNEL,
                      msg, mlen);
    metrics_bridge(METRICS_BRIDGE_OUT);
    free(msg);
}


void
redis_bridge_stop(void)
{
    if (!rb.started) {
        return;
    }
    rb.stopping = 1;
    if (rb.resolving) {
        uv_cancel((uv_req_t *) &rb.resolve);   /* its callback still runs */
    }
    uv_timer_stop(&rb.retry);
    uv_close((uv_handle_t *) &rb.retry, NULL);
    if (rb.pub) {
        redisAsyncDisconnect(rb.pub);
    }
    if (rb.sub) {
        redisAsyncDisconnect(rb.sub);
    }
    rb.started = 0;
}

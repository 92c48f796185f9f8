/*
 * redis_bridge: events between hosts through Redis pub/sub (see
 * redis_bridge.h).
 *
 * Wire: PUBLISH ticket:events "<origin>|<event frame JSON>".  The origin
 * (16 random hex digits per daemon run) keeps a daemon from delivering its
 * own events twice.  hiredis 0.14's async API on its libuv adapter; it has
 * no timeouts, so a reconnect timer (1 s doubling to 30 s) drives
 * recovery.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libuv.h>

#include "link_server.h"
#include "ts_cache.h"
#include "log.h"
#include "redis_bridge.h"

#define REDIS_CHANNEL  "ticket:events"

static struct {
    uv_loop_t           *loop;
    ts_redis_url_t       url;
    char                 origin[17];
    redisAsyncContext   *pub;
    redisAsyncContext   *sub;
    uv_timer_t           retry;
    uint64_t             wait_ms;
    int                  started;
    int                  stopping;
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
        log_warn("redis bridge: cannot connect to %s:%d: %s", rb.url.host,
                 rb.url.port, ac->errstr);
        if (ac == rb.pub) {
            rb.pub = NULL;
        } else if (ac == rb.sub) {
            rb.sub = NULL;
        }
        redis_schedule();
        return;
    }
    if (ac == rb.sub) {
        log_info("redis bridge: subscribed to %s on %s:%d", REDIS_CHANNEL,
                 rb.url.host, rb.url.port);
        rb.wait_ms = 1000;
    }
}


static void
redis_on_message(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply  *reply = r;
    const char  *msg, *bar;
    size_t       len;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 3
        || reply->element[2]->type != REDIS_REPLY_STRING)
    {
        return;                  /* subscribe confirmations and the like */
    }
    msg = reply->element[2]->str;
    len = reply->element[2]->len;
    bar = memchr(msg, '|', len);
    if (bar == NULL || bar - msg != 16) {
        return;
    }
    if (memcmp(msg, rb.origin, 16) == 0) {
        return;                  /* our own event, delivered already */
    }
    link_server_broadcast(bar + 1, len - 17);
}


static redisAsyncContext *
redis_open(void)
{
    redisAsyncContext  *ac = redisAsyncConnect(rb.url.host, rb.url.port);

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
    if (rb.url.password[0]) {
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s", rb.url.password);
    }
    if (rb.url.db) {
        redisAsyncCommand(ac, NULL, NULL, "SELECT %d", rb.url.db);
    }
    return ac;
}


static void
redis_connect_all(void)
{
    if (rb.stopping) {
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


int
redis_bridge_start(uv_loop_t *loop, const char *url)
{
    unsigned char  rnd[8];
    char           err[128];

    memset(&rb, 0, sizeof(rb));
    rb.loop = loop;
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
    char  *msg;

    if (!rb.started || rb.pub == NULL) {
        return;
    }
    msg = malloc(len + 17);
    if (msg == NULL) {
        return;
    }
    memcpy(msg, rb.origin, 16);
    msg[16] = '|';
    memcpy(msg + 17, json, len);
    redisAsyncCommand(rb.pub, NULL, NULL, "PUBLISH %s %b", REDIS_CHANNEL,
                      msg, len + 17);
    free(msg);
}


void
redis_bridge_stop(void)
{
    if (!rb.started) {
        return;
    }
    rb.stopping = 1;
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

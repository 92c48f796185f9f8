/*
 * ts_cache: the Redis connection of one store handle (see ts_cache.h).
 *
 * Owns one synchronous hiredis context.  Every failure (refused, timed
 * out, protocol error) drops the context and starts a one-second pause in
 * which calls return at once, so a dead or stalled Redis costs a request
 * at most one timeout per second per thread.
 *
 * Values go to Redis sealed by ts_wire_cache_seal and come back through
 * ts_wire_cache_open, bound to "<prefix><key>": the store layer above
 * (ts_store_cache.c) only ever sees bytes this system wrote for that very
 * key under this very Redis run.
 */

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <openssl/crypto.h>

#include "ts_cache.h"

#define TS_CACHE_TIMEOUT_MS  200       /* connect and every command */
#define TS_CACHE_PAUSE_MS    1000      /* after a failure */

static const char *const ts_cache_vkeys[TS_CACHE_V_COUNT] = {
    "v:tickets",
    "v:users",
};

struct ts_cache_s {
    ts_redis_url_t   url;
    redisContext    *ctx;
    int64_t          retry_at;         /* ms, monotonic */
    unsigned         missed;           /* bumps that did not reach Redis */
    unsigned         outages_seen;     /* ts_cache_outages, when caught up */
    char             prefix[32];       /* "ticket:<run id>:" */
    unsigned char    key[TS_WIRE_KEY_LEN];     /* MACs of values */
};

/*
 * The highest value of each version counter any handle of this process has
 * read (or made, by INCR) under the Redis run ts_cache_seen.prefix.  The
 * counters only grow, so a lower read means someone set one back by hand,
 * to make an old page -- authentic, its MAC still good -- current again:
 * that read is refused.  Process-wide, so one thread's view protects all.
 */
static struct {
    pthread_mutex_t  lock;
    char             prefix[32];
    int64_t          seen[TS_CACHE_V_COUNT];
} ts_cache_seen = { PTHREAD_MUTEX_INITIALIZER, "", { 0 } };

/*
 * Failures seen by any handle of this process.  A handle that finds it
 * larger than what it last caught up with bumps every counter before it
 * reads: whoever wrote while Redis was away (this thread or another)
 * could not invalidate, and a Redis restarted from its dump still holds
 * the pages from before, so nothing from before an outage is served
 * after it.
 */
static unsigned  ts_cache_outages;


/* Note that counter v of c's run read version; 0, or -1 when it is lower
 * than seen before (the caller must not use the read). */
static int
ts_cache_saw(ts_cache_t *c, ts_cache_version_e v, int64_t version)
{
    int  rc = 0;

    pthread_mutex_lock(&ts_cache_seen.lock);
    if (strcmp(ts_cache_seen.prefix, c->prefix) != 0) {
        /* another Redis run: its counters start again from nothing */
        memcpy(ts_cache_seen.prefix, c->prefix, sizeof(c->prefix));
        memset(ts_cache_seen.seen, 0, sizeof(ts_cache_seen.seen));
    }
    if (version < ts_cache_seen.seen[v]) {
        rc = -1;
    } else {
        ts_cache_seen.seen[v] = version;
    }
    pthread_mutex_unlock(&ts_cache_seen.lock);
    return rc;
}


static int64_t
ts_cache_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


int
ts_redis_url_parse(const char *url, ts_redis_url_t *out, char *err,
    size_t errlen)
{
    const char  *p, *at, *end, *colon, *slash;
    size_t       n;
    char        *stop;
    long         v;

    memset(out, 0, sizeof(*out));
    out->port = 6379;

    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen, "expected redis://[:password@]host[:port][/db]");
        return -1;
    }
    p = url + 8;
    end = p + strlen(p);

    at = strrchr(p, '@');
    if (at != NULL) {
        /* userinfo is ":password" (Redis 5 has no user names) */
        if (*p != ':' || at - p - 1 <= 0
            || (size_t) (at - p - 1) >= sizeof(out->password))
        {
            snprintf(err, errlen,
                     "the password goes as redis://:password@host");
            return -1;
        }
        memcpy(out->password, p + 1, at - p - 1);
        p = at + 1;
    }

    slash = strchr(p, '/');
    if (slash != NULL) {
        v = strtol(slash + 1, &stop, 10);
        if (slash[1] == '\0' || *stop != '\0' || v < 0 || v > 15) {
            snprintf(err, errlen, "the database must be a number 0-15");
            return -1;
        }
        out->db = (int) v;
        end = slash;
    }

    colon = memchr(p, ':', end - p);
    if (colon != NULL) {
        v = strtol(colon + 1, &stop, 10);
        if (colon + 1 == end || stop != end || v < 1 || v > 65535) {
            snprintf(err, errlen, "the port must be a number 1-65535");
            return -1;
        }
        out->port = (int) v;
        end = colon;
    }

    n = end - p;
    if (n == 0 || n >= sizeof(out->host)) {
        snprintf(err, errlen, "a host is required");
        return -1;
    }
    memcpy(out->host, p, n);
    return 0;
}


int
ts_redis_handshake(const ts_redis_url_t *url,
    ts_redis_cmd_t cmds[TS_REDIS_HANDSHAKE_MAX])
{
    ts_redis_cmd_t  *c;
    int              n = 0;

    if (url->password[0]) {
        c = &cmds[n++];
        c->name = "AUTH";
        c->argc = 2;
        c->argv[0] = "AUTH";
        c->argvlen[0] = 4;
        c->argv[1] = url->password;
        c->argvlen[1] = strlen(url->password);
    }
    if (url->db != 0) {
        c = &cmds[n++];
        c->name = "SELECT";
        c->argc = 2;
        c->argv[0] = "SELECT";
        c->argvlen[0] = 6;
        c->argvlen[1] = (size_t) snprintf(c->num, sizeof(c->num), "%d",
                                          url->db);
        c->argv[1] = c->num;
    }
    return n;
}


ts_cache_t *
ts_cache_new(const char *url, const unsigned char key[TS_WIRE_KEY_LEN])
{
    ts_cache_t  *c;
    char         err[128];

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    if (ts_redis_url_parse(url, &c->url, err, sizeof(err)) != 0) {
        free(c);
        return NULL;
    }
    memcpy(c->key, key, TS_WIRE_KEY_LEN);
    return c;
}


void
ts_cache_free(ts_cache_t *c)
{
    if (c == NULL) {
        return;
    }
    if (c->ctx) {
        redisFree(c->ctx);
    }
    OPENSSL_cleanse(c->key, sizeof(c->key));
    free(c);
}


static void
ts_cache_drop(ts_cache_t *c)
{
    if (c->ctx) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    c->retry_at = ts_cache_now() + TS_CACHE_PAUSE_MS;
    __atomic_add_fetch(&ts_cache_outages, 1, __ATOMIC_RELAXED);
}


/* A command's reply, or NULL after dropping the connection. */
static redisReply *
ts_cache_command(ts_cache_t *c, const char *fmt, ...)
{
    va_list      ap;
    redisReply  *r;

    va_start(ap, fmt);
    r = redisvCommand(c->ctx, fmt, ap);
    va_end(ap);
    if (r == NULL) {
        ts_cache_drop(c);
    }
    return r;
}


/* Bump every counter in mask; 0 when all reached Redis. */
static int
ts_cache_incr(ts_cache_t *c, unsigned mask)
{
    redisReply  *r;
    int          i, rc = 0;

    for (i = 0; i < TS_CACHE_V_COUNT; i++) {
        if (mask & (1u << i)) {
            redisAppendCommand(c->ctx, "INCR %s%s", c->prefix,
                               ts_cache_vkeys[i]);
        }
    }
    for (i = 0; i < TS_CACHE_V_COUNT; i++) {
        if (!(mask & (1u << i))) {
            continue;
        }
        if (redisGetReply(c->ctx, (void **) &r) != REDIS_OK) {
            ts_cache_drop(c);
            return -1;
        }
        if (r->type != REDIS_REPLY_INTEGER) {
            rc = -1;
        } else {
            (void) ts_cache_saw(c, (ts_cache_version_e) i, r->integer);
        }
        freeReplyObject(r);
    }
    return rc;
}


/*
 * After an outage in this process, or a bump of this handle that failed:
 * invalidate everything, before anything is read again.  -1 if that
 * fails too.
 */
static int
ts_cache_catch_up(ts_cache_t *c)
{
    unsigned  outages = __atomic_load_n(&ts_cache_outages, __ATOMIC_RELAXED);

    if (c->missed == 0 && c->outages_seen == outages) {
        return 0;
    }
    if (ts_cache_incr(c, (1u << TS_CACHE_V_COUNT) - 1) != 0) {
        c->missed = (1u << TS_CACHE_V_COUNT) - 1;
        ts_cache_drop(c);
        return -1;
    }
    c->missed = 0;
    c->outages_seen = outages;
    return 0;
}


/*
 * Every key lives under "ticket:<run id>:", the run id of the Redis
 * process (INFO server).  A Redis restarted from its dump gets a new run
 * id, so the pages and counters from before the restart (when writes
 * could not invalidate them) are never read again; they expire.
 */
static int
ts_cache_run_id(ts_cache_t *c)
{
    redisReply  *r;
    const char  *p;
    int          rc = -1;

    r = ts_cache_command(c, "INFO server");
    if (r == NULL) {
        return -1;
    }
    if (r->type == REDIS_REPLY_STRING
        && (p = strstr(r->str, "run_id:")) != NULL
        && strspn(p + 7, "0123456789abcdef") >= 16)
    {
        snprintf(c->prefix, sizeof(c->prefix), "ticket:%.16s:", p + 7);
        rc = 0;
    }
    freeReplyObject(r);
    return rc;
}


/* 0 when r is a status reply ("+OK"); frees r. */
static int
ts_cache_status(redisReply *r)
{
    int  ok = r != NULL && r->type == REDIS_REPLY_STATUS;

    if (r != NULL) {
        freeReplyObject(r);
    }
    return ok ? 0 : -1;
}


/* Connected, or -1 (at once while paused). */
static int
ts_cache_ready(ts_cache_t *c)
{
    struct timeval   tv;
    ts_redis_cmd_t   hs[TS_REDIS_HANDSHAKE_MAX];
    redisReply      *r;
    int              i, n;

    if (c->ctx != NULL) {
        return ts_cache_catch_up(c);
    }
    if (ts_cache_now() < c->retry_at) {
        return -1;
    }

    tv.tv_sec = 0;
    tv.tv_usec = TS_CACHE_TIMEOUT_MS * 1000;
    c->ctx = redisConnectWithTimeout(c->url.host, c->url.port, tv);
    if (c->ctx == NULL || c->ctx->err
        || redisSetTimeout(c->ctx, tv) != REDIS_OK)
    {
        ts_cache_drop(c);
        return -1;
    }

    n = ts_redis_handshake(&c->url, hs);
    for (i = 0; i < n; i++) {
        r = redisCommandArgv(c->ctx, hs[i].argc, hs[i].argv, hs[i].argvlen);
        if (ts_cache_status(r) != 0) {
            ts_cache_drop(c);
            return -1;
        }
    }
    if (ts_cache_run_id(c) != 0) {
        ts_cache_drop(c);
        return -1;
    }
    return ts_cache_catch_up(c);
}


int
ts_cache_get(ts_cache_t *c, ts_cache_version_e v, const char *key,
    size_t keylen, int64_t *version, char **val, size_t *len)
{
    redisReply  *r, *ver, *doc;
    const char  *v_val;
    size_t       v_len;
    int          rc = -1;

    *val = NULL;
    *len = 0;
    if (ts_cache_ready(c) != 0) {
        return -1;
    }
    r = ts_cache_command(c, "MGET %s%s %s%b", c->prefix, ts_cache_vkeys[v],
                         c->prefix, key, keylen);
    if (r == NULL) {
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        goto done;
    }
    ver = r->element[0];
    doc = r->element[1];
    if (ver->type == REDIS_REPLY_NIL) {
        *version = 0;
    } else if (ver->type == REDIS_REPLY_STRING) {
        *version = strtoll(ver->str, NULL, 10);
    } else {
        goto done;
    }
    /* Counters only grow (INCR): one that went back was set by hand, to
     * make an old, authentic page current again. */
    if (ts_cache_saw(c, v, *version) != 0) {
        goto done;
    }
    if (doc->type == REDIS_REPLY_STRING
        && ts_wire_cache_open(c->key, c->prefix, key, keylen, doc->str,
                              doc->len, &v_val, &v_len) == TS_WIRE_OK)
    {
        *val = malloc(v_len + 1);
        if (*val == NULL) {
            goto done;
        }
        memcpy(*val, v_val, v_len);
        (*val)[v_len] = '\0';
        *len = v_len;
    }
    rc = 0;

done:
    freeReplyObject(r);
    return rc;
}


void
ts_cache_set(ts_cache_t *c, const char *key, size_t keylen, const char *val,
    size_t len, int ttl)
{
    redisReply  *r;
    char        *sealed;
    size_t       slen;

    if (ts_cache_ready(c) != 0) {
        return;
    }
    sealed = ts_wire_cache_seal(c->key, c->prefix, key, keylen, val, len,
                                &slen);
    if (sealed == NULL) {
        return;
    }
    r = ts_cache_command(c, "SET %s%b %b EX %d", c->prefix, key, keylen,
                         sealed, slen, ttl);
    free(sealed);
    if (r) {
        freeReplyObject(r);
    }
}


void
ts_cache_bump(ts_cache_t *c, unsigned mask)
{
    if (ts_cache_ready(c) != 0 || ts_cache_incr(c, mask) != 0) {
        c->missed |= mask;
    }
}


const char *
ts_cache_ping(ts_cache_t *c)
{
    redisReply  *r;
    int          ok;

    if (ts_cache_ready(c) != 0) {
        return "unavailable";
    }
    r = ts_cache_command(c, "PING");
    ok = r && r->type == REDIS_REPLY_STATUS;
    if (r) {
        freeReplyObject(r);
    }
    return ok ? "ok" : "unavailable";
}

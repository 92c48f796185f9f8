/*
 * ts_cache: an optional Redis cache (hiredis, synchronous, short
 * timeouts) for the thread that owns it.
 *
 * A handle never fails a caller: when Redis is unreachable, slow or
 * answers an error, a read is a miss and a write is skipped, and the
 * handle waits a second before it tries to connect again.  So a request
 * always succeeds from the store, and caching resumes by itself when
 * Redis returns.
 *
 * Invalidation is by version counters (INCR, O(1)); cached values carry
 * the version they were read under (see ts_store_cache.c), so nothing is
 * ever scanned or deleted by pattern.  Every key is stored under
 * "ticket:<Redis run id>:" (see ts_cache.c); callers name the rest.
 *
 * Nothing read from Redis is trusted (DESIGN.md section 7): every value is
 * stored with a MAC over its namespace, key and bytes (ts_wire.h, the
 * cache key derived from the JWT secret), and a value that fails it --
 * written or rewritten by anyone without the key, or copied from another
 * key -- is a miss, which the caller fills from the store and overwrites.
 * A version counter read lower than this process saw before under the same
 * run id (set back by hand, to make an old page current again) is treated
 * as Redis unavailable: nothing is served or stored from it.
 */

#ifndef TS_CACHE_H
#define TS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "ts_wire.h"

/* A parsed redis://[:password@]host[:port][/db] URL. */
typedef struct {
    char  host[256];
    int   port;                 /* default 6379 */
    int   db;                   /* default 0 */
    char  password[128];        /* "" = no AUTH */
} ts_redis_url_t;

/* Parse url into out; 0 on success, -1 (with a reason in err) if bad. */
int ts_redis_url_parse(const char *url, ts_redis_url_t *out, char *err,
    size_t errlen);

/* One command of a connection's handshake, as hiredis argv (its argv
 * may point into the struct and into the URL: use it in place). */
typedef struct {
    const char  *name;          /* "AUTH" or "SELECT", for logs */
    int          argc;
    const char  *argv[2];
    size_t       argvlen[2];
    char         num[12];       /* SELECT's database as text */
} ts_redis_cmd_t;

#define TS_REDIS_HANDSHAKE_MAX  2

/*
 * The commands that start every connection to url's server, in order:
 * AUTH when it has a password, SELECT when its database is not 0.  Each
 * worked only when it is answered with a status reply ("+OK"); on any
 * other reply the connection must not be used.  Fills cmds; returns how
 * many (0 .. TS_REDIS_HANDSHAKE_MAX).  The cache and ticketd's Redis
 * bridge both send these.
 */
int ts_redis_handshake(const ts_redis_url_t *url,
    ts_redis_cmd_t cmds[TS_REDIS_HANDSHAKE_MAX]);

typedef struct ts_cache_s ts_cache_t;

/* The version counters (keys) a cached value may depend on. */
typedef enum {
    TS_CACHE_V_TICKETS = 0,     /* any ticket, or a person shown in lists */
    TS_CACHE_V_USERS,           /* any user's role, skills, stats, presence */
    TS_CACHE_V_COUNT
} ts_cache_version_e;

/* A handle for url (not connected yet) whose values carry MACs under key
 * (TS_WIRE_LABEL_CACHE's derived key); NULL if the URL is bad or out of
 * memory.  One thread at a time. */
ts_cache_t *ts_cache_new(const char *url,
    const unsigned char key[TS_WIRE_KEY_LEN]);

void ts_cache_free(ts_cache_t *c);

/*
 * One round trip: the current value of version counter v (0 if never
 * bumped) into *version, and the value stored at key into *val (malloc'ed,
 * *len bytes, NUL-terminated) or NULL -- NULL too when the stored value
 * fails its MAC.  Returns 0, or -1 when Redis is unavailable or its
 * counter went back (then nothing is returned and nothing should be
 * stored).
 */
int ts_cache_get(ts_cache_t *c, ts_cache_version_e v, const char *key,
    size_t keylen, int64_t *version, char **val, size_t *len);

/* Store val (with its MAC) under key for ttl seconds; best effort. */
void ts_cache_set(ts_cache_t *c, const char *key, size_t keylen,
    const char *val, size_t len, int ttl);

/*
 * Bump the counters in mask (1 << ts_cache_version_e); best effort.  A
 * bump that fails is made up for: after any failure in this process,
 * each handle bumps every counter before it next reads, so what was
 * cached before an outage is not served after it.
 */
void ts_cache_bump(ts_cache_t *c, unsigned mask);

/* "ok" if Redis answers a PING now, else "unavailable". */
const char *ts_cache_ping(ts_cache_t *c);

#endif /* TS_CACHE_H */

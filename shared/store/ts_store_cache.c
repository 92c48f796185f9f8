/*
 * ts_store_cache: the optional Redis cache in front of a store handle, for
 * every backend alike (cache-aside: read Redis, else the store, then
 * remember what the store said).
 *
 * What is cached: ticket list pages (180 s, as the original app) and the
 * user lists (1800 s, the original's moderator cache): the admin users
 * page and the per-role lists (moderators, admins) the services read.
 * Never a password hash: these are public documents (ts_user_json drops
 * the hash).  Dates are ISO strings in the JSON text, so they come back
 * exactly as the store wrote them.  The assignment itself always reads its
 * candidates from the store, inside its own atomic step: a stale candidate
 * list is how the original kept assigning to a demoted moderator.
 *
 * Invalidation: each value is stored as "<version>|<payload>", where the
 * version is the counter (ts_cache_version_e) it depends on, read in the
 * same round trip as the value.  A value whose version is not the current
 * one is a miss.  Writes bump the counters after they commit
 * (ts_store_changed, called by ts_store.c for every writing operation, in
 * nginx and in ticketd), so:
 *   - a reader that read the counter before a write and the store after it
 *     stores newer data under an older version: never served again;
 *   - a reader that read the store before the write stores old data under
 *     the old version, which the bump has already made stale.
 * One INCR invalidates every page at once; no key is scanned or deleted.
 *
 * The proof assumes the values and counters in Redis are the ones this
 * system wrote.  Redis is not trusted (anyone who reaches it can SET), so
 * ts_cache makes that true or turns the read into a miss: a value is
 * served only when its MAC (ts_wire.h, keyed by the JWT secret) matches
 * "<run prefix><key><version>|<payload>" -- so neither its payload nor its
 * version can be changed, and no value moves to another key (another
 * user's scope) or run -- and a counter that reads lower than the process
 * has seen is refused, so an old authentic value cannot be made current
 * again by setting the counter back (in a process that has read or bumped
 * the newer value: nginx workers read it on every list request).  A value failing its MAC is a miss
 * that the store fills and this handle overwrites.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_store_impl.h"

#define TS_CACHE_TTL_LIST   180
#define TS_CACHE_TTL_USERS  1800


/* Set once at start, before any thread reads (see ts_store.h). */
static void  (*ts_store_cache_count)(ts_cache_result_e result);


void
ts_store_cache_counter(void (*count)(ts_cache_result_e result))
{
    ts_store_cache_count = count;
}


void
ts_store_set_cache(ts_store_t *s, const char *redis_url,
    const unsigned char *key)
{
    ts_cache_free(s->cache);
    s->cache = redis_url && *redis_url && key != NULL
               ? ts_cache_new(redis_url, key) : NULL;
}


const char *
ts_store_cache_state(ts_store_t *s)
{
    return s->cache ? ts_cache_ping(s->cache) : "disabled";
}


void
ts_store_changed(ts_store_t *s, unsigned mask)
{
    if (s->cache) {
        ts_cache_bump(s->cache, mask);
    }
}


/*
 * Look key up under version counter v: 1 and the payload (into *payload,
 * pointing into *val, which the caller frees) on a current hit; 0 on a
 * miss, with *version set when Redis answered (-1 when it did not: then
 * do not store).
 *
 * On a miss to be filled, the request's read snapshot starts again: it
 * may have begun at an earlier query (the caller's authentication),
 * before a write whose bump *version already counts, and a value read
 * from it would be kept under that newer version -- stale until the next
 * write (seen: a list missing a background job's triage for 15 s).
 */
static int
ts_store_cache_lookup(ts_store_t *s, ts_cache_version_e v, const char *key,
    size_t keylen, int64_t *version, char **val, const char **payload,
    size_t *payload_len)
{
    size_t  len;
    char   *bar, *stop;

    *version = -1;
    if (ts_cache_get(s->cache, v, key, keylen, version, val, &len) != 0) {
        *version = -1;
        if (ts_store_cache_count) {
            ts_store_cache_count(TS_CACHE_ERROR);
        }
        return 0;
    }
    if (*val != NULL) {
        bar = memchr(*val, '|', len);
        if (bar != NULL && strtoll(*val, &stop, 10) == *version
            && stop == bar)
        {
            *payload = bar + 1;
            *payload_len = len - (bar + 1 - *val);
            if (ts_store_cache_count) {
                ts_store_cache_count(TS_CACHE_HIT);
            }
            return 1;
        }
        free(*val);
        *val = NULL;
    }
    if (ts_store_cache_count) {
        ts_store_cache_count(TS_CACHE_MISS);
    }
    ts_store_read_renew(s);
    return 0;
}


/* Store "<version>|<prefix><payload>" under key. */
static void
ts_store_cache_keep(ts_store_t *s, const char *key, size_t keylen,
    int64_t version, const char *prefix, const char *payload, size_t len,
    int ttl)
{
    char    head[64];
    char   *val;
    int     n;

    n = snprintf(head, sizeof(head), "%lld|%s", (long long) version, prefix);
    if (n < 0 || (size_t) n >= sizeof(head)) {
        return;
    }
    val = malloc(n + len);
    if (val == NULL) {
        return;
    }
    memcpy(val, head, n);
    memcpy(val + n, payload, len);
    ts_cache_set(s->cache, key, keylen, val, n + len, ttl);
    free(val);
}


/* The key of one list page: every query field, the search text last (it
 * may hold any byte, so nothing may follow it). */
static char *
ts_store_cache_list_key(const ts_ticket_query_t *q, size_t *keylen)
{
    static const char  scope[] = { 'a', 'c', 'm' };
    size_t             slen = q->search ? strlen(q->search) : 0;
    char              *key;
    int                n;

    key = malloc(160 + slen);
    if (key == NULL) {
        return NULL;
    }
    n = snprintf(key, 160, "list:%c:%s:%s:%s:%lld:%lld:%c",
                 scope[q->scope],
                 q->scope == TS_SCOPE_ALL ? "" : q->user_id,
                 q->status ? q->status : "", q->priority ? q->priority : "",
                 (long long) q->limit, (long long) q->offset,
                 q->search ? 's' : '-');
    if (n < 0 || n >= 160) {
        free(key);
        return NULL;
    }
    memcpy(key + n, q->search ? q->search : "", slen);
    *keylen = n + slen;
    return key;
}


ts_rc_e
ts_store_cached_ticket_list(ts_store_t *s, const ts_ticket_query_t *q,
    ts_jw_t *tickets, int64_t *total)
{
    char         *key, *val = NULL, *stop, total_text[24];
    const char   *payload;
    size_t        keylen, plen, start;
    int64_t       version;
    ts_rc_e       rc;

    /* an SLA filter is a question about now: never cached */
    if (s->cache == NULL || q->sla != NULL
        || (key = ts_store_cache_list_key(q, &keylen)) == NULL)
    {
        return s->ops->ticket_list(s, q, tickets, total);
    }

    /* the payload is "<total>|<the page's JSON array>" */
    if (ts_store_cache_lookup(s, TS_CACHE_V_TICKETS, key, keylen, &version,
                              &val, &payload, &plen))
    {
        *total = strtoll(payload, &stop, 10);
        if (stop > payload && *stop == '|') {
            ts_jw_raw(tickets, stop + 1, plen - (stop + 1 - payload));
            free(val);
            free(key);
            return TS_OK;
        }
        free(val);
    }

    start = tickets->len;
    rc = s->ops->ticket_list(s, q, tickets, total);
    if (rc == TS_OK && version >= 0 && !tickets->err) {
        snprintf(total_text, sizeof(total_text), "%lld|", (long long) *total);
        ts_store_cache_keep(s, key, keylen, version, total_text,
                            tickets->buf + start, tickets->len - start,
                            TS_CACHE_TTL_LIST);
    }
    free(key);
    return rc;
}


ts_rc_e
ts_store_cached_users(ts_store_t *s, int all, ts_role_e role, json_t **out)
{
    char          key[48], *val = NULL, *text;
    const char   *payload;
    size_t        plen;
    int64_t       version;
    ts_rc_e       rc;

    if (s->cache == NULL) {
        return all ? s->ops->user_list(s, out)
                   : s->ops->user_list_role(s, role, out);
    }

    snprintf(key, sizeof(key), "users:%s",
             all ? "all" : ts_role_name(role));
    if (ts_store_cache_lookup(s, TS_CACHE_V_USERS, key, strlen(key), &version,
                              &val, &payload, &plen))
    {
        *out = json_loadb(payload, plen, 0, NULL);
        free(val);
        if (*out != NULL) {
            return TS_OK;
        }
    }

    rc = all ? s->ops->user_list(s, out)
             : s->ops->user_list_role(s, role, out);
    if (rc == TS_OK && version >= 0) {
        text = json_dumps(*out, JSON_COMPACT);
        if (text) {
            ts_store_cache_keep(s, key, strlen(key), version, "", text,
                                strlen(text), TS_CACHE_TTL_USERS);
            free(text);
        }
    }
    return rc;
}

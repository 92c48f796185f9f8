/*
 * ts_wire: authentication of what crosses Redis (DESIGN.md section 7,
 * "nothing on the wire is trusted").  Pure functions: no I/O, no clock
 * (callers pass the time), no state.
 *
 * Keys.  Every key is derived from one secret -- the JWT secret of
 * ticket_jwt_secret_file, the same bytes nginx reads -- as
 *     key = HMAC-SHA256(secret, label)
 * with a label per use (TS_WIRE_LABEL_*), so the secret itself never
 * signs anything on the wire and a key of one use is worthless for
 * another (a bridge message cannot pass for a cached page).
 *
 * Bridge messages (PUBLISH ticket:events):
 *     <mac: 64 hex>|1|<origin: 16 hex>|<sent: ms since epoch>|<frame JSON>
 * mac = HMAC-SHA256(bridge key, everything after "<mac>|").  A message is
 * accepted only with a valid mac (compared in constant time) and a send
 * time within TS_WIRE_WINDOW_MS of the receiver's clock, and only once
 * (ts_wire_replay_t remembers the MACs of the window); the frame is then
 * schema-checked by ts_event_check before anyone uses it.
 *
 * Cached values (ts_cache.c):
 *     <mac: 64 hex><value>
 * mac = HMAC-SHA256(cache key, "<namespace><key length>:<key><value>"),
 * so a value is bound to its key and namespace: one user's page cannot be
 * copied under another user's key, nor an old run's page into a new run.
 */

#ifndef TS_WIRE_H
#define TS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define TS_WIRE_KEY_LEN       32
#define TS_WIRE_MAC_HEX       64
#define TS_WIRE_ORIGIN_LEN    16            /* hex digits */
#define TS_WIRE_WINDOW_MS     60000         /* replay window, each way */
#define TS_WIRE_MAX_MESSAGE   (512 * 1024)  /* a bridge message, bytes */

#define TS_WIRE_LABEL_BRIDGE  "ticket redis bridge v1"
#define TS_WIRE_LABEL_CACHE   "ticket redis cache v1"
#define TS_WIRE_LABEL_CONFIG  "ticket config fingerprint v1"
#define TS_WIRE_FP_HEX        16            /* hex digits of a fingerprint */

/* One piece of a MAC's input. */
typedef struct {
    const void  *data;
    size_t       len;
} ts_wire_part_t;

typedef enum {
    TS_WIRE_OK = 0,
    TS_WIRE_MALFORMED,          /* not the format above, or too large */
    TS_WIRE_BAD_MAC,            /* forged, tampered, or another key */
    TS_WIRE_STALE,              /* sent outside the replay window */
    TS_WIRE_OWN                 /* authentic, but from this origin */
} ts_wire_rc_e;

/* HMAC-SHA256 of the concatenated parts under key[0..keylen). */
void ts_wire_hmac(const void *key, size_t keylen, const ts_wire_part_t *parts,
    size_t nparts, unsigned char out[32]);

/* key = HMAC-SHA256(secret, label): the key of one use of the secret. */
void ts_wire_derive(const void *secret, size_t secret_len, const char *label,
    unsigned char key[TS_WIRE_KEY_LEN]);

/*
 * One part of the configuration fingerprint a worker sends in hello
 * (ts_link.h): the first TS_WIRE_FP_HEX hex digits of HMAC-SHA256(key,
 * part "\0" value), key = ts_wire_derive(JWT secret, TS_WIRE_LABEL_CONFIG).
 * Parts: "store" (the store URI as nginx resolved it), "socket" (the
 * link's absolute path), "secret" (value ""; equal only with the same
 * secret, which never travels).  hex gets a NUL-terminated string.
 */
void ts_wire_fingerprint(const unsigned char key[TS_WIRE_KEY_LEN],
    const char *part, const char *value, char hex[TS_WIRE_FP_HEX + 1]);

/* 1 when the 64 hex digits at hex are the MAC mac (constant time over the
 * 32 bytes once the digits parse), else 0. */
int ts_wire_mac_check(const char *hex, const unsigned char mac[32]);

/* Short text for a ts_wire_rc_e, for logs. */
const char *ts_wire_strerror(ts_wire_rc_e rc);

/*
 * A bridge message carrying json[0..len) from origin (16 hex digits) at
 * now_ms: malloc'ed, *outlen bytes (not NUL-terminated); NULL when out of
 * memory or too large.
 */
char *ts_wire_bridge_seal(const unsigned char key[TS_WIRE_KEY_LEN],
    const char *origin, int64_t now_ms, const char *json, size_t len,
    size_t *outlen);

/*
 * Check a bridge message received at now_ms.  TS_WIRE_OK or TS_WIRE_OWN
 * (own is the 16-digit origin of this receiver, compared after the mac):
 * *json / *json_len point at the frame inside msg.  Anything else: drop.
 */
ts_wire_rc_e ts_wire_bridge_open(const unsigned char key[TS_WIRE_KEY_LEN],
    const char *own, const char *msg, size_t len, int64_t now_ms,
    const char **json, size_t *json_len);

/*
 * The bridge messages accepted within the replay window, by MAC, so that a
 * message copied off the channel and published again is refused.  Holds
 * TS_WIRE_REPLAY_SLOTS messages: in a burst of more than that within one
 * window, the oldest are forgotten early (and could be replayed until
 * their window ends).  Zero it to start.  One thread.
 */
#define TS_WIRE_REPLAY_SLOTS  8192
#define TS_WIRE_REPLAY_PROBE  8

typedef struct {
    struct {
        unsigned char  mac[16];          /* the first half of a MAC */
        int64_t        until;            /* ms; 0 = free */
    } slot[TS_WIRE_REPLAY_SLOTS];
} ts_wire_replay_t;

/*
 * For a message ts_wire_bridge_open accepted at now_ms: 1 when its MAC was
 * seen within the window (a replay: drop it), else 0 and it is remembered.
 */
int ts_wire_replay_seen(ts_wire_replay_t *r, const char *msg, int64_t now_ms);

/*
 * A cached value: mac || val for key in namespace ns (e.g.
 * "ticket:<run id>:"); malloc'ed, *outlen bytes; NULL when out of memory.
 */
char *ts_wire_cache_seal(const unsigned char key[TS_WIRE_KEY_LEN],
    const char *ns, const char *ckey, size_t ckeylen, const char *val,
    size_t len, size_t *outlen);

/*
 * Check a stored value as ts_wire_cache_seal made it: TS_WIRE_OK with
 * *val / *vallen pointing inside stored, or TS_WIRE_MALFORMED /
 * TS_WIRE_BAD_MAC (then it must be treated as a miss).
 */
ts_wire_rc_e ts_wire_cache_open(const unsigned char key[TS_WIRE_KEY_LEN],
    const char *ns, const char *ckey, size_t ckeylen, const char *stored,
    size_t len, const char **val, size_t *vallen);

#endif /* TS_WIRE_H */

/*
 * ts_wire: MACs for the bridge and the cache (see ts_wire.h).
 *
 * HMAC-SHA256 is written out over OpenSSL's EVP digest (RFC 2104) because
 * OpenSSL 3 deprecates its incremental HMAC_* calls and a MAC here covers
 * several pieces that are not contiguous in memory.  The unit tests check
 * it against RFC 4231's vectors.
 *
 * Every comparison of a received MAC with the expected one is
 * CRYPTO_memcmp over the decoded bytes: the time taken says nothing about
 * how many leading bytes were right.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ts_wire.h"

#define TS_WIRE_BLOCK  64               /* SHA-256's block size */


/* 0, or -1 when OpenSSL cannot allocate (out is then all zero and must
 * not be trusted: callers treat it as a failed check). */
static int
ts_wire_hmac_rc(const void *key, size_t keylen, const ts_wire_part_t *parts,
    size_t nparts, unsigned char out[32])
{
    unsigned char   k[TS_WIRE_BLOCK], pad[TS_WIRE_BLOCK], inner[32];
    EVP_MD_CTX     *ctx;
    size_t          i;
    int             ok;

    memset(out, 0, 32);
    memset(k, 0, sizeof(k));
    if (keylen > TS_WIRE_BLOCK) {
        if (!EVP_Digest(key, keylen, k, NULL, EVP_sha256(), NULL)) {
            return -1;
        }
    } else if (keylen > 0) {
        memcpy(k, key, keylen);
    }

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        OPENSSL_cleanse(k, sizeof(k));
        return -1;
    }
    for (i = 0; i < TS_WIRE_BLOCK; i++) {
        pad[i] = k[i] ^ 0x36;
    }
    ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)
         && EVP_DigestUpdate(ctx, pad, sizeof(pad));
    for (i = 0; ok && i < nparts; i++) {
        ok = parts[i].len == 0
             || EVP_DigestUpdate(ctx, parts[i].data, parts[i].len);
    }
    ok = ok && EVP_DigestFinal_ex(ctx, inner, NULL);

    for (i = 0; i < TS_WIRE_BLOCK; i++) {
        pad[i] = k[i] ^ 0x5c;
    }
    ok = ok && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)
         && EVP_DigestUpdate(ctx, pad, sizeof(pad))
         && EVP_DigestUpdate(ctx, inner, sizeof(inner))
         && EVP_DigestFinal_ex(ctx, out, NULL);

    EVP_MD_CTX_free(ctx);
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));
    if (!ok) {
        memset(out, 0, 32);
        return -1;
    }
    return 0;
}


void
ts_wire_hmac(const void *key, size_t keylen, const ts_wire_part_t *parts,
    size_t nparts, unsigned char out[32])
{
    (void) ts_wire_hmac_rc(key, keylen, parts, nparts, out);
}


void
ts_wire_derive(const void *secret, size_t secret_len, const char *label,
    unsigned char key[TS_WIRE_KEY_LEN])
{
    ts_wire_part_t  part = { label, strlen(label) };

    ts_wire_hmac(secret, secret_len, &part, 1, key);
}


void
ts_wire_fingerprint(const unsigned char key[TS_WIRE_KEY_LEN],
    const char *part, const char *value, char hex[TS_WIRE_FP_HEX + 1])
{
    static const char  digits[] = "0123456789abcdef";
    ts_wire_part_t     parts[2];
    unsigned char      mac[32];
    int                i;

    parts[0].data = part;
    parts[0].len = strlen(part) + 1;       /* with its NUL: unambiguous */
    parts[1].data = value;
    parts[1].len = strlen(value);
    ts_wire_hmac(key, TS_WIRE_KEY_LEN, parts, 2, mac);
    for (i = 0; i < TS_WIRE_FP_HEX / 2; i++) {
        hex[2 * i] = digits[mac[i] >> 4];
        hex[2 * i + 1] = digits[mac[i] & 0x0f];
    }
    hex[TS_WIRE_FP_HEX] = '\0';
}


static int
ts_wire_hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;                  /* MACs are written in lowercase */
}


static void
ts_wire_hex(const unsigned char mac[32], char out[TS_WIRE_MAC_HEX])
{
    static const char  digits[] = "0123456789abcdef";
    size_t             i;

    for (i = 0; i < 32; i++) {
        out[2 * i] = digits[mac[i] >> 4];
        out[2 * i + 1] = digits[mac[i] & 15];
    }
}


int
ts_wire_mac_check(const char *hex, const unsigned char mac[32])
{
    unsigned char  got[32];
    size_t         i;
    int            hi, lo;

    for (i = 0; i < 32; i++) {
        hi = ts_wire_hexval(hex[2 * i]);
        lo = hi < 0 ? -1 : ts_wire_hexval(hex[2 * i + 1]);
        if (lo < 0) {
            return 0;
        }
        got[i] = (unsigned char) (hi << 4 | lo);
    }
    return CRYPTO_memcmp(got, mac, 32) == 0;
}


const char *
ts_wire_strerror(ts_wire_rc_e rc)
{
    switch (rc) {
    case TS_WIRE_OK:        return "ok";
    case TS_WIRE_MALFORMED: return "malformed";
    case TS_WIRE_BAD_MAC:   return "bad MAC";
    case TS_WIRE_STALE:     return "outside the replay window";
    case TS_WIRE_OWN:       return "own message";
    }
    return "?";
}


/* --- bridge messages ---------------------------------------------------- */

char *
ts_wire_bridge_seal(const unsigned char key[TS_WIRE_KEY_LEN],
    const char *origin, int64_t now_ms, const char *json, size_t len,
    size_t *outlen)
{
    ts_wire_part_t  part;
    unsigned char   mac[32];
    char            head[64], *out;
    int             n;

    n = snprintf(head, sizeof(head), "1|%.*s|%" PRId64 "|",
                 TS_WIRE_ORIGIN_LEN, origin, now_ms);
    if (n < 0 || (size_t) n >= sizeof(head)
        || len > TS_WIRE_MAX_MESSAGE - TS_WIRE_MAC_HEX - 1 - (size_t) n)
    {
        return NULL;
    }
    *outlen = TS_WIRE_MAC_HEX + 1 + (size_t) n + len;
    out = malloc(*outlen);
    if (out == NULL) {
        return NULL;
    }
    memcpy(out + TS_WIRE_MAC_HEX + 1, head, n);
    memcpy(out + TS_WIRE_MAC_HEX + 1 + n, json, len);
    out[TS_WIRE_MAC_HEX] = '|';

    part.data = out + TS_WIRE_MAC_HEX + 1;
    part.len = *outlen - TS_WIRE_MAC_HEX - 1;
    if (ts_wire_hmac_rc(key, TS_WIRE_KEY_LEN, &part, 1, mac) != 0) {
        free(out);
        return NULL;
    }
    ts_wire_hex(mac, out);
    return out;
}


ts_wire_rc_e
ts_wire_bridge_open(const unsigned char key[TS_WIRE_KEY_LEN],
    const char *own, const char *msg, size_t len, int64_t now_ms,
    const char **json, size_t *json_len)
{
    ts_wire_part_t  part;
    unsigned char   mac[32];
    const char     *p, *end, *origin;
    int64_t         sent;
    size_t          i;

    /* mac "|1|" origin "|" at least one digit "|" at least one byte */
    if (len > TS_WIRE_MAX_MESSAGE
        || len < TS_WIRE_MAC_HEX + 3 + TS_WIRE_ORIGIN_LEN + 4
        || msg[TS_WIRE_MAC_HEX] != '|')
    {
        return TS_WIRE_MALFORMED;
    }
    part.data = msg + TS_WIRE_MAC_HEX + 1;
    part.len = len - TS_WIRE_MAC_HEX - 1;
    if (ts_wire_hmac_rc(key, TS_WIRE_KEY_LEN, &part, 1, mac) != 0
        || !ts_wire_mac_check(msg, mac))
    {
        return TS_WIRE_BAD_MAC;
    }

    /* Authentic from here on; the layout is still checked, not assumed. */
    p = msg + TS_WIRE_MAC_HEX + 1;
    end = msg + len;
    if (p[0] != '1' || p[1] != '|') {
        return TS_WIRE_MALFORMED;
    }
    origin = p + 2;
    for (i = 0; i < TS_WIRE_ORIGIN_LEN; i++) {
        if (ts_wire_hexval(origin[i]) < 0) {
            return TS_WIRE_MALFORMED;
        }
    }
    p = origin + TS_WIRE_ORIGIN_LEN;
    if (*p++ != '|') {
        return TS_WIRE_MALFORMED;
    }
    sent = 0;
    for (i = 0; p < end && *p >= '0' && *p <= '9'; p++, i++) {
        if (i == 15) {
            return TS_WIRE_MALFORMED;       /* beyond any real clock */
        }
        sent = sent * 10 + (*p - '0');
    }
    if (i == 0 || p >= end - 1 || *p != '|') {
        return TS_WIRE_MALFORMED;
    }
    p++;

    if (sent < now_ms - TS_WIRE_WINDOW_MS || sent > now_ms + TS_WIRE_WINDOW_MS)
    {
        return TS_WIRE_STALE;
    }
    *json = p;
    *json_len = (size_t) (end - p);
    if (own != NULL && memcmp(origin, own, TS_WIRE_ORIGIN_LEN) == 0) {
        return TS_WIRE_OWN;
    }
    return TS_WIRE_OK;
}


/* --- cached values ------------------------------------------------------ */

/* The MAC of a cached value; 0 or -1. */
static int
ts_wire_cache_mac(const unsigned char key[TS_WIRE_KEY_LEN], const char *ns,
    const char *ckey, size_t ckeylen, const char *val, size_t len,
    unsigned char mac[32])
{
    ts_wire_part_t  parts[4];
    char            klen[24];
    int             n;

    /* the key's length first: no (key, value) split can collide */
    n = snprintf(klen, sizeof(klen), "%zu:", ckeylen);
    parts[0].data = ns;
    parts[0].len = strlen(ns);
    parts[1].data = klen;
    parts[1].len = (size_t) n;
    parts[2].data = ckey;
    parts[2].len = ckeylen;
    parts[3].data = val;
    parts[3].len = len;
    return ts_wire_hmac_rc(key, TS_WIRE_KEY_LEN, parts, 4, mac);
}


char *
ts_wire_cache_seal(const unsigned char key[TS_WIRE_KEY_LEN], const char *ns,
    const char *ckey, size_t ckeylen, const char *val, size_t len,
    size_t *outlen)
{
    unsigned char   mac[32];
    char           *out;

    if (ts_wire_cache_mac(key, ns, ckey, ckeylen, val, len, mac) != 0) {
        return NULL;
    }
    out = malloc(TS_WIRE_MAC_HEX + len);
    if (out == NULL) {
        return NULL;
    }
    ts_wire_hex(mac, out);
    memcpy(out + TS_WIRE_MAC_HEX, val, len);
    *outlen = TS_WIRE_MAC_HEX + len;
    return out;
}


ts_wire_rc_e
ts_wire_cache_open(const unsigned char key[TS_WIRE_KEY_LEN], const char *ns,
    const char *ckey, size_t ckeylen, const char *stored, size_t len,
    const char **val, size_t *vallen)
{
    unsigned char  mac[32];

    if (len < TS_WIRE_MAC_HEX) {
        return TS_WIRE_MALFORMED;
    }
    if (ts_wire_cache_mac(key, ns, ckey, ckeylen, stored + TS_WIRE_MAC_HEX,
                          len - TS_WIRE_MAC_HEX, mac) != 0
        || !ts_wire_mac_check(stored, mac))
    {
        return TS_WIRE_BAD_MAC;
    }
    *val = stored + TS_WIRE_MAC_HEX;
    *vallen = len - TS_WIRE_MAC_HEX;
    return TS_WIRE_OK;
}


int
ts_wire_replay_seen(ts_wire_replay_t *r, const char *msg, int64_t now_ms)
{
    unsigned char  mac[16];
    size_t         i, h, at, victim;
    int            hi, lo;

    for (i = 0; i < sizeof(mac); i++) {
        hi = ts_wire_hexval(msg[2 * i]);
        lo = ts_wire_hexval(msg[2 * i + 1]);
        mac[i] = (unsigned char) ((hi < 0 ? 0 : hi) << 4 | (lo < 0 ? 0 : lo));
    }
    /* MACs are uniform: their first bytes are a hash already */
    h = ((size_t) mac[0] << 16 | (size_t) mac[1] << 8 | mac[2])
        % TS_WIRE_REPLAY_SLOTS;
    victim = h;
    for (i = 0; i < TS_WIRE_REPLAY_PROBE; i++) {
        at = (h + i) % TS_WIRE_REPLAY_SLOTS;
        if (r->slot[at].until > now_ms
            && memcmp(r->slot[at].mac, mac, sizeof(mac)) == 0)
        {
            return 1;
        }
        if (r->slot[at].until < r->slot[victim].until) {
            victim = at;                /* free, expired, or oldest */
        }
    }
    memcpy(r->slot[victim].mac, mac, sizeof(mac));
    /* a message is fresh until TS_WIRE_WINDOW_MS after it was sent, which
     * is at most that long after now */
    r->slot[victim].until = now_ms + 2 * TS_WIRE_WINDOW_MS;
    return 0;
}

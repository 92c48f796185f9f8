/*
 * ts_auth: bcrypt password hashing and HS256 JWT issue/verify.
 *
 * bcrypt goes through libxcrypt (crypt_gensalt_rn / crypt_rn), whose
 * buffers live on the caller's stack, so it is safe from any thread.  It
 * is deliberately slow (~50 ms at cost 10): callers run it off the event
 * loop.
 *
 * libjwt 1.10 verifies the signature when given a key but neither pins the
 * algorithm nor checks "exp"; both are done here by hand.
 */

#include <crypt.h>
#include <errno.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <openssl/sha.h>

#include "ts_auth.h"


/*
 * bcrypt reads at most the first 72 bytes of a password (every variant,
 * $2a$ $2b$ $2y$), while libxcrypt refuses a phrase of 512 bytes or more
 * outright -- and 128 characters, the longest password the API accepts,
 * may be 512 bytes of UTF-8.  So crypt sees only the bytes bcrypt reads:
 * the same hash for every password, and none too long.
 */
#define TS_BCRYPT_KEY_MAX  72

static const char *
ts_bcrypt_key(const char *password, char buf[TS_BCRYPT_KEY_MAX + 1])
{
    size_t  n = strnlen(password, TS_BCRYPT_KEY_MAX + 1);

    if (n <= TS_BCRYPT_KEY_MAX) {
        return password;
    }
    memcpy(buf, password, TS_BCRYPT_KEY_MAX);
    buf[TS_BCRYPT_KEY_MAX] = '\0';
    return buf;
}


int
ts_password_hash(const char *password, int cost, char out[TS_HASH_MAX])
{
    struct crypt_data  *cd;
    char                setting[CRYPT_GENSALT_OUTPUT_SIZE];
    char                rbytes[16], key[TS_BCRYPT_KEY_MAX + 1];
    const char         *h;
    int                 rc = -1;

    if (cost < 4 || cost > 31) {
        return -1;
    }
    if (getrandom(rbytes, sizeof(rbytes), 0) != (ssize_t) sizeof(rbytes)) {
        return -1;
    }
    if (crypt_gensalt_rn("$2b$", (unsigned long) cost, rbytes,
                         sizeof(rbytes), setting, sizeof(setting)) == NULL)
    {
        return -1;
    }

    cd = calloc(1, sizeof(*cd));          /* ~32 KB: keep it off the stack */
    if (cd == NULL) {
        return -1;
    }
    h = crypt_rn(ts_bcrypt_key(password, key), setting, cd, sizeof(*cd));
    if (h != NULL && h[0] == '$' && strlen(h) < TS_HASH_MAX) {
        strcpy(out, h);
        rc = 0;
    }
    explicit_bzero(cd, sizeof(*cd));
    explicit_bzero(key, sizeof(key));
    free(cd);
    return rc;
}


int
ts_password_verify(const char *password, const char *hash)
{
    struct crypt_data  *cd;
    const char         *h;
    char                key[TS_BCRYPT_KEY_MAX + 1];
    size_t              n, i;
    unsigned char       diff;

    if (hash == NULL || strncmp(hash, "$2", 2) != 0) {
        return 0;
    }
    cd = calloc(1, sizeof(*cd));
    if (cd == NULL) {
        return 0;
    }
    h = crypt_rn(ts_bcrypt_key(password, key), hash, cd, sizeof(*cd));
    n = strlen(hash);
    diff = (h == NULL || h[0] == '*' || strlen(h) != n);
    for (i = 0; h != NULL && i < n && h[i] != '\0'; i++) {
        diff |= (unsigned char) (h[i] ^ hash[i]);
    }
    explicit_bzero(cd, sizeof(*cd));
    explicit_bzero(key, sizeof(key));
    free(cd);
    return diff == 0;
}


void
ts_password_burn(const char *password, int cost)
{
    /* a fixed salt: the result is thrown away, only the time matters */
    char  setting[64];

    if (cost < 4 || cost > 31) {
        cost = 10;
    }
    snprintf(setting, sizeof(setting), "$2b$%02d$%s", cost,
             "CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW");
    (void) ts_password_verify(password, setting);
}


char *
ts_token_issue(const unsigned char *secret, size_t secret_len,
    const char *user_id, const char *role, int64_t epoch, int64_t now_s,
    int64_t lifetime_s)
{
    jwt_t          *jwt = NULL;
    char           *tok = NULL;
    unsigned char   rnd[12];
    char            jti[sizeof(rnd) * 2 + 1];

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd)) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof(rnd); i++) {
        snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
    }

    if (jwt_new(&jwt) != 0) {
        return NULL;
    }
    /* jti makes two tokens issued in one second distinct, so revoking one
     * never revokes the other */
    if (jwt_add_grant(jwt, "_id", user_id) == 0
        && jwt_add_grant(jwt, "role", role) == 0
        && jwt_add_grant(jwt, "jti", jti) == 0
        && jwt_add_grant_int(jwt, "iat", (long) now_s) == 0
        && jwt_add_grant_int(jwt, "exp", (long) (now_s + lifetime_s)) == 0
        && (epoch == 0 || jwt_add_grant_int(jwt, "sv", (long) epoch) == 0)
        && jwt_set_alg(jwt, JWT_ALG_HS256, secret, (int) secret_len) == 0)
    {
        tok = jwt_encode_str(jwt);
    }
    jwt_free(jwt);
    return tok;
}


int
ts_token_verify(const unsigned char *secret, size_t secret_len,
    const char *token, size_t len, int64_t now_s, ts_claims_t *out)
{
    jwt_t       *jwt = NULL;
    char        *copy;
    const char  *id, *role, *dot;
    long         exp, iat, sv;
    int          rc = -1;

    memset(out, 0, sizeof(*out));
    if (len == 0 || len > TS_TOKEN_MAX_LEN || memchr(token, '\0', len)) {
        return -1;
    }
    copy = strndup(token, len);
    if (copy == NULL) {
        return -1;
    }

    dot = strrchr(copy, '.');
    if (dot == NULL || strlen(dot + 1) == 0
        || strlen(dot + 1) > TS_TOKEN_SIG_MAX)
    {
        goto done;
    }

    if (jwt_decode(&jwt, copy, secret, (int) secret_len) != 0
        || jwt_get_alg(jwt) != JWT_ALG_HS256)
    {
        goto done;
    }

    id = jwt_get_grant(jwt, "_id");
    role = jwt_get_grant(jwt, "role");
    errno = 0;
    exp = jwt_get_grant_int(jwt, "exp");
    if (errno != 0 || exp <= now_s) {
        goto done;
    }
    errno = 0;
    iat = jwt_get_grant_int(jwt, "iat");
    if (errno != 0) {
        iat = 0;
    }
    errno = 0;
    sv = jwt_get_grant_int(jwt, "sv");
    if (errno != 0) {
        sv = 0;                 /* issued before any password change */
    }
    if (!ts_oid_valid(id) || sv < 0) {
        goto done;
    }

    memcpy(out->user_id, id, TS_OID_LEN + 1);
    snprintf(out->role, sizeof(out->role), "%s", role ? role : "");
    out->iat = iat;
    out->exp = exp;
    out->epoch = sv;
    strcpy(out->sig, dot + 1);
    rc = 0;

done:
    jwt_free(jwt);
    free(copy);
    return rc;
}


/* --- password reset tokens ------------------------------------------------ */

static const char  ts_b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


int
ts_reset_token_hash(const char *tok, size_t len,
    char hash[TS_RESET_HASH_HEX + 1])
{
    unsigned char  d[SHA256_DIGEST_LENGTH];
    size_t         i;

    if (len != TS_RESET_TOKEN_LEN) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (tok[i] == '\0' || strchr(ts_b64url, tok[i]) == NULL) {
            return -1;
        }
    }
    SHA256((const unsigned char *) tok, len, d);
    for (i = 0; i < sizeof(d); i++) {
        snprintf(hash + 2 * i, 3, "%02x", d[i]);
    }
    return 0;
}


int
ts_reset_token_new(char tok[TS_RESET_TOKEN_LEN + 1],
    char hash[TS_RESET_HASH_HEX + 1])
{
    unsigned char  rnd[32];
    unsigned       v;
    size_t         i, o = 0;

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd)) {
        return -1;
    }
    /* 30 bytes in groups of 3 (40 characters), then the last 2 (3) */
    for (i = 0; i + 3 <= sizeof(rnd); i += 3) {
        v = (unsigned) rnd[i] << 16 | (unsigned) rnd[i + 1] << 8 | rnd[i + 2];
        tok[o++] = ts_b64url[v >> 18 & 63];
        tok[o++] = ts_b64url[v >> 12 & 63];
        tok[o++] = ts_b64url[v >> 6 & 63];
        tok[o++] = ts_b64url[v & 63];
    }
    v = (unsigned) rnd[30] << 16 | (unsigned) rnd[31] << 8;
    tok[o++] = ts_b64url[v >> 18 & 63];
    tok[o++] = ts_b64url[v >> 12 & 63];
    tok[o++] = ts_b64url[v >> 6 & 63];
    tok[o] = '\0';
    explicit_bzero(rnd, sizeof(rnd));
    return ts_reset_token_hash(tok, o, hash);
}

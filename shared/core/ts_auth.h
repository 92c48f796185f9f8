/*
 * ts_auth: passwords (bcrypt through libxcrypt) and tokens (JWT HS256
 * through libjwt).  Pure functions of their inputs and the configuration;
 * no store access, so the nginx event loop may verify a token while the
 * store work happens in the thread pool.
 */

#ifndef TS_AUTH_H
#define TS_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "ts_model.h"

#define TS_HASH_MAX        128    /* room for any crypt(3) output */
#define TS_TOKEN_MAX_LEN   4096   /* longer bearer tokens are refused */
#define TS_TOKEN_SIG_MAX   128

typedef struct {
    ts_oid_t   user_id;
    char       role[16];          /* the role claimed at issue time */
    int64_t    iat;               /* seconds */
    int64_t    exp;               /* seconds */
    int64_t    epoch;             /* the user's session epoch ("sv"), 0
                                     when the token has none */
    char       sig[TS_TOKEN_SIG_MAX + 1];  /* revocation key */
} ts_claims_t;

/*
 * Hash a password with bcrypt ($2b$, cost 4..31) into out; 0 on success,
 * -1 when the cost is out of range or the system lacks randomness.
 */
int ts_password_hash(const char *password, int cost, char out[TS_HASH_MAX]);

/*
 * 1 when password matches hash (any bcrypt flavour the original app may
 * have written: $2a$, $2b$, $2y$), else 0.  Compares in constant time.
 */
int ts_password_verify(const char *password, const char *hash);

/*
 * Spend the time a verification at this cost takes, for unknown users, so
 * that "no such user" and "wrong password" cannot be told apart.
 */
void ts_password_burn(const char *password, int cost);

/*
 * Issue a token for user_id with role and the user's session epoch (the
 * "sv" claim, left out when 0, so tokens of users who never changed their
 * password look as before), valid lifetime_s seconds from now_s; returns
 * a malloc'ed string or NULL.
 */
char *ts_token_issue(const unsigned char *secret, size_t secret_len,
    const char *user_id, const char *role, int64_t epoch, int64_t now_s,
    int64_t lifetime_s);

/*
 * Verify signature (HS256 only), structure and expiry; 0 and *out filled
 * when valid, -1 otherwise.  Never trusts the token's "alg".
 */
int ts_token_verify(const unsigned char *secret, size_t secret_len,
    const char *token, size_t len, int64_t now_s, ts_claims_t *out);

/* --- password reset tokens --------------------------------------------- */

#define TS_RESET_TOKEN_LEN  43    /* 32 random bytes, base64url, no '=' */
#define TS_RESET_HASH_HEX   64    /* SHA-256, lower-case hex */

/*
 * A new reset token: 32 bytes from the system's randomness as base64url
 * into tok (TS_RESET_TOKEN_LEN + 1 with the NUL), and its hash (what the
 * store keeps) into hash.  0, or -1 when the system lacks randomness.
 */
int ts_reset_token_new(char tok[TS_RESET_TOKEN_LEN + 1],
    char hash[TS_RESET_HASH_HEX + 1]);

/*
 * The hash of a presented token, as ts_reset_token_new computed it: 0, or
 * -1 when tok[0..len) cannot be a token (not TS_RESET_TOKEN_LEN base64url
 * characters), so no lookup is ever made with it.
 */
int ts_reset_token_hash(const char *tok, size_t len,
    char hash[TS_RESET_HASH_HEX + 1]);

#endif /* TS_AUTH_H */

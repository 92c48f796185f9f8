/*
 * test_auth: bcrypt through libxcrypt and HS256 tokens through libjwt
 * (shared/core/ts_auth.h).  Protects: hashes the original Node app wrote still
 * verify; tokens with another algorithm, no signature, a bad signature,
 * a past "exp" or a malformed "_id" are refused.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <crypt.h>
#include <jwt.h>

#include "ts_auth.h"

int test_auth_run(void);

static const unsigned char  secret[] = "0123456789abcdef0123456789abcdef-test";
#define SECRET_LEN  (sizeof(secret) - 1)
#define USER_ID     "65a1b2c3d4e5f60718293a4b"


static void
bcrypt_verifies_hashes_written_by_the_original_app(void **state)
{
    /* bcryptjs 3 (what the Node app stored), cost 10 */
    assert_true(ts_password_verify("correct horse battery",
        "$2b$10$S5oruF12q.AMz5HHKAjVjedFXz0Ugqu6jqS/IAOj15b9E3pwHfqeS"));
    /* bcryptjs 2 wrote $2a$ */
    assert_true(ts_password_verify("correct horse battery",
        "$2a$10$q1FkgUg.QdmmohCEVwnVH.yHeG.E19G7N2i3nqIF8QxqQ8litu2BC"));
    /* OpenBSD's reference vector */
    assert_true(ts_password_verify("U*U",
        "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"));

    assert_false(ts_password_verify("correct horse batterY",
        "$2b$10$S5oruF12q.AMz5HHKAjVjedFXz0Ugqu6jqS/IAOj15b9E3pwHfqeS"));
    assert_false(ts_password_verify("x", "not-a-hash"));
    assert_false(ts_password_verify("x", NULL));
    assert_false(ts_password_verify("x", "$2b$10$short"));
}


/*
 * 128 characters of 4 bytes (the longest password signup takes) are 512
 * bytes, which libxcrypt refuses: signup answered 500 (found by
 * test_api_properties.py).  bcrypt reads 72 bytes; a hash made by crypt
 * from the whole of a longer password still verifies.
 */
static void
bcrypt_takes_passwords_of_any_length_as_bcrypt_reads_them(void **state)
{
    char                 pw[128 * 4 + 1], other[sizeof(pw)];
    char                 h[TS_HASH_MAX], setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data   *cd;
    const char          *full;
    size_t               i;

    (void) state;
    for (i = 0; i < 128; i++) {
        memcpy(pw + 4 * i, "\xf0\x9f\x98\x80", 4);
    }
    pw[sizeof(pw) - 1] = '\0';
    assert_int_equal(ts_password_hash(pw, 4, h), 0);
    assert_true(ts_password_verify(pw, h));
    /* bytes past the 72nd do not count, as in every bcrypt */
    memcpy(other, pw, sizeof(pw));
    other[300] = 'x';
    assert_true(ts_password_verify(other, h));
    other[71] = 'x';
    assert_false(ts_password_verify(other, h));

    /* a 100-byte password hashed by crypt itself, whole */
    memset(other, 'p', 100);
    other[100] = '\0';
    cd = calloc(1, sizeof(*cd));
    assert_non_null(cd);
    assert_non_null(crypt_gensalt_rn("$2b$", 4, NULL, 0, setting,
                                     sizeof(setting)));
    full = crypt_rn(other, setting, cd, sizeof(*cd));
    assert_non_null(full);
    assert_true(ts_password_verify(other, full));
    free(cd);
}


static void
bcrypt_hash_is_2b_at_the_requested_cost_and_salted(void **state)
{
    char  h1[TS_HASH_MAX], h2[TS_HASH_MAX];

    assert_int_equal(ts_password_hash("hunter22hunter", 4, h1), 0);
    assert_int_equal(ts_password_hash("hunter22hunter", 4, h2), 0);
    assert_memory_equal(h1, "$2b$04$", 7);
    assert_int_equal(strlen(h1), 60);
    assert_string_not_equal(h1, h2);
    assert_true(ts_password_verify("hunter22hunter", h1));
    assert_false(ts_password_verify("hunter22hunteR", h1));
    assert_int_equal(ts_password_hash("x", 3, h1), -1);
    assert_int_equal(ts_password_hash("x", 32, h1), -1);
}


static void
token_round_trip_carries_the_claims(void **state)
{
    ts_claims_t  cl;
    time_t       now = time(NULL);
    char        *tok = ts_token_issue(secret, SECRET_LEN, USER_ID, "admin",
                                      0, now, 3600);

    assert_non_null(tok);
    assert_int_equal(ts_token_verify(secret, SECRET_LEN, tok, strlen(tok),
                                     now, &cl), 0);
    assert_string_equal(cl.user_id, USER_ID);
    assert_string_equal(cl.role, "admin");
    assert_int_equal(cl.exp, now + 3600);
    assert_int_equal(cl.iat, now);
    assert_string_equal(cl.sig, strrchr(tok, '.') + 1);

    /* expired one second after exp, and with a different secret */
    assert_int_equal(ts_token_verify(secret, SECRET_LEN, tok, strlen(tok),
                                     now + 3600, &cl), -1);
    assert_int_equal(ts_token_verify((const unsigned char *) "another-secret"
                                     "-of-32-bytes-or-more!!", 36, tok,
                                     strlen(tok), now, &cl), -1);
    free(tok);
}


static void
token_tampering_is_refused(void **state)
{
    ts_claims_t  cl;
    time_t       now = time(NULL);
    char        *tok = ts_token_issue(secret, SECRET_LEN, USER_ID, "user",
                                      0, now, 3600);
    char        *bad = strdup(tok);
    char        *dot = strchr(bad, '.');

    /* flip one character of the payload */
    dot[5] = dot[5] == 'A' ? 'B' : 'A';
    assert_int_equal(ts_token_verify(secret, SECRET_LEN, bad, strlen(bad),
                                     now, &cl), -1);

    /* strip the signature */
    strcpy(bad, tok);
    *(strrchr(bad, '.') + 1) = '\0';
    assert_int_equal(ts_token_verify(secret, SECRET_LEN, bad, strlen(bad),
                                     now, &cl), -1);

    assert_int_equal(ts_token_verify(secret, SECRET_LEN, "garbage", 7, now,
                                     &cl), -1);
    assert_int_equal(ts_token_verify(secret, SECRET_LEN, "", 0, now, &cl),
                     -1);
    assert_int_equal(ts_token_verify(secret, SECRET_LEN, "a.b.c", 5, now,
                                     &cl), -1);
    free(bad);
    free(tok);
}


/* A token signed by libjwt with any algorithm and claims. */
static char *
make_token(jwt_alg_t alg, const char *id, long exp)
{
    jwt_t  *j;
    char   *t;

    assert_int_equal(jwt_new(&j), 0);
    if (id) {
        jwt_add_grant(j, "_id", id);
    }
    jwt_add_grant(j, "role", "admin");
    if (exp) {
        jwt_add_grant_int(j, "exp", exp);
    }
    if (alg != JWT_ALG_NONE) {
        jwt_set_alg(j, alg, secret, SECRET_LEN);
    }
    t = jwt_encode_str(j);
    jwt_free(j);
    return t;
}


static void
token_algorithm_and_claims_are_pinned(void **state)
{
    ts_claims_t  cl;
    time_t       now = time(NULL);
    char        *t;

    t = make_token(JWT_ALG_HS512, USER_ID, now + 60);
    assert_int_equal(ts_token_verify(secret, SECRET_LEN, t, strlen(t), now,
                                     &cl), -1);
    free(t);

    t = make_token(JWT_ALG_NONE, USER_ID, now + 60);
    assert_int_equal(ts_token_verify(secret, SECRET_LEN, t, strlen(t), now,
                                     &cl), -1);
    free(t);

    t = make_token(JWT_ALG_HS256, USER_ID, 0);          /* no exp */
    assert_int_equal(ts_token_verify(secret, SECRET_LEN, t, strlen(t), now,
                                     &cl), -1);
    free(t);

    t = make_token(JWT_ALG_HS256, "not-an-id", now + 60);
    assert_int_equal(ts_token_verify(secret, SECRET_LEN, t, strlen(t), now,
                                     &cl), -1);
    free(t);

    t = make_token(JWT_ALG_HS256, USER_ID, now + 60);   /* control */
    assert_int_equal(ts_token_verify(secret, SECRET_LEN, t, strlen(t), now,
                                     &cl), 0);
    free(t);
}


static void
token_carries_the_session_epoch_when_there_is_one(void **state)
{
    ts_claims_t  cl;
    time_t       now = time(NULL);
    jwt_t       *jwt = NULL;
    char        *grant;
    char        *tok = ts_token_issue(secret, SECRET_LEN, USER_ID, "user",
                                      3, now, 3600);

    assert_non_null(tok);
    assert_int_equal(ts_token_verify(secret, SECRET_LEN, tok, strlen(tok),
                                     now, &cl), 0);
    assert_int_equal(cl.epoch, 3);
    free(tok);

    /* epoch 0: no "sv" claim, read back as 0 */
    tok = ts_token_issue(secret, SECRET_LEN, USER_ID, "user", 0, now, 3600);
    assert_non_null(tok);
    /* the claims as libjwt reads them (the encoded text may hold "sv" by
     * chance) */
    assert_int_equal(jwt_decode(&jwt, tok, secret,
                                SECRET_LEN), 0);
    grant = jwt_get_grants_json(jwt, "sv");
    assert_null(grant);
    grant = jwt_get_grants_json(jwt, "jti");
    assert_non_null(grant);
    free(grant);
    jwt_free(jwt);
    assert_int_equal(ts_token_verify(secret, SECRET_LEN, tok, strlen(tok),
                                     now, &cl), 0);
    assert_int_equal(cl.epoch, 0);
    free(tok);
}


static void
reset_tokens_are_random_base64url_and_hash_as_sha256(void **state)
{
    char  tok[TS_RESET_TOKEN_LEN + 1], hash[TS_RESET_HASH_HEX + 1];
    char  tok2[TS_RESET_TOKEN_LEN + 1], hash2[TS_RESET_HASH_HEX + 1];
    char  again[TS_RESET_HASH_HEX + 1];

    assert_int_equal(ts_reset_token_new(tok, hash), 0);
    assert_int_equal(ts_reset_token_new(tok2, hash2), 0);
    assert_int_equal(strlen(tok), 43);
    assert_int_equal(strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
                                 "opqrstuvwxyz0123456789-_"), 43);
    assert_string_not_equal(tok, tok2);
    assert_int_equal(strlen(hash), 64);
    assert_int_equal(strspn(hash, "0123456789abcdef"), 64);

    /* the presented token hashes to what was stored */
    assert_int_equal(ts_reset_token_hash(tok, strlen(tok), again), 0);
    assert_string_equal(again, hash);
    /* SHA-256 of 43 'A's, computed with sha256sum */
    assert_int_equal(ts_reset_token_hash("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                                         "AAAAAAAA", 43, again), 0);
    assert_string_equal(again, "0f007385b6f9d4b7eeb2748605afe1a9"
                                "84a0a3bfa3f014d09e2a784ce9e5cd1a");

    /* anything else is no token */
    assert_int_equal(ts_reset_token_hash(tok, 42, again), -1);
    assert_int_equal(ts_reset_token_hash("!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                                         "AAAAAAA", 43, again), -1);
}


int
test_auth_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bcrypt_verifies_hashes_written_by_the_original_app),
        cmocka_unit_test(bcrypt_hash_is_2b_at_the_requested_cost_and_salted),
        cmocka_unit_test(bcrypt_takes_passwords_of_any_length_as_bcrypt_reads_them),
        cmocka_unit_test(token_round_trip_carries_the_claims),
        cmocka_unit_test(token_tampering_is_refused),
        cmocka_unit_test(token_algorithm_and_claims_are_pinned),
        cmocka_unit_test(token_carries_the_session_epoch_when_there_is_one),
        cmocka_unit_test(reset_tokens_are_random_base64url_and_hash_as_sha256),
    };
    return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}

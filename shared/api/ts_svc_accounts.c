/*
 * ts_svc_accounts: a user's own password -- change it (knowing the current
 * one), or reset it through a mailed single-use link.
 *
 * Sessions end through the user's session epoch: tokens carry it ("sv"),
 * ts_session_load refuses a token whose epoch is not the user's, and a
 * change or reset adds one to it in the same write as the new hash.  So
 * every token issued before is dead for REST at once, and the
 * user_changed event makes every worker on every host re-check that
 * user's sockets with the same rule, closing the old ones.  A change
 * answers with a token of the new epoch: the caller's session goes on,
 * every other one ends.
 *
 * Reset tokens: 32 random bytes (base64url in the link), stored as their
 * SHA-256 on the user (one per user: a new request replaces the older
 * link), valid one hour, used up by the conditional write that sets the
 * password (of two racing confirms one wins).  The request answers 202
 * whatever the address, after the same work for every address (a token
 * made and hashed, the per-address counter written, the lookup; the mail
 * itself is a job), so neither the answer nor its time tells much: a
 * known address adds one indexed single-row write.  The counter
 * ("reset:<email>", the login lockout's store operation and settings)
 * caps the mails one address can be sent; over it the answer is still
 * 202, and no mail goes.
 *
 * A wrong current password is 400 (not 401: the caller's session is
 * fine, and clients treat 401 as "signed out") and counts towards the
 * account's login lockout ("user:<id>"), so a stolen session cannot
 * guess the password faster than a login could.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_api_internal.h"
#include "ts_jobs.h"
#include "ts_session.h"

#define TS_RESET_TTL_MS      (3600 * 1000LL)
#define TS_MSG_BAD_CURRENT   "Current password is incorrect"
#define TS_MSG_BAD_RESET     "Invalid or expired reset token"
#define TS_MSG_RESET_SENT    "If an account with that email exists, a " \
                             "password reset link was sent to it."
#define TS_MSG_LOCKED        "Too many failed attempts, please try again " \
                             "later."


/*
 * Take one attempt under the lockout key "<prefix>:<id>" (the login
 * lockout's operation and settings): 1 allowed, 0 refused (429 answered
 * when refuse is set), -1 after a store failure (500 answered).
 */
static int
ts_acct_attempt(ts_call_t *c, const char *prefix, const char *id,
    int refuse)
{
    const ts_config_t    *cfg = c->cfg;
    ts_login_attempts_t   att;
    char                 *key;
    size_t                n;
    int                   allowed;

    if (cfg->lockout_failures <= 0) {
        return 1;
    }
    n = strlen(prefix) + strlen(id) + 2;
    key = malloc(n);
    if (key == NULL) {
        ts_reply_store_error(c);
        return -1;
    }
    snprintf(key, n, "%s:%s", prefix, id);
    if (ts_store_login_attempt(c->store, key, c->now, cfg->lockout_window_ms,
                               cfg->lockout_failures, cfg->lockout_ms, &att,
                               &allowed)
        != TS_OK)
    {
        free(key);
        ts_reply_store_error(c);
        return -1;
    }
    free(key);
    if (!allowed && refuse) {
        c->resp->retry_after = att.locked_until > c->now
                               ? (int) ((att.locked_until - c->now + 999)
                                        / 1000)
                               : 1;
        ts_api_error(c->resp, 429, TS_MSG_LOCKED);
    }
    return allowed;
}


/* Hash a new password (len bytes) into hash; 0, or -1 (500 answered). */
static int
ts_acct_hash(ts_call_t *c, const char *password, size_t len,
    char hash[TS_HASH_MAX])
{
    char  *pw = strndup(password, len);
    int    rc;

    rc = pw != NULL ? ts_password_hash(pw, c->cfg->bcrypt_cost, hash) : -1;
    if (pw) {
        explicit_bzero(pw, len);
        free(pw);
    }
    if (rc != 0) {
        ts_reply_store_error(c);
    }
    return rc;
}


void
ts_svc_password_change(ts_call_t *c)
{
    ts_errmsg_t    err;
    const char    *cur, *new_pw;
    size_t         clen, nlen;
    char           hash[TS_HASH_MAX], *pw;
    char           lock_key[TS_OID_LEN + sizeof("user:")];
    ts_job_new_t   job;
    ts_user_t      u;
    int64_t        epoch = 0;
    int            ok;
    ts_rc_e        rc;

    if (ts_get_string(c->body, "currentPassword", 1, 128, 0, &cur, &clen,
                      err)
        || ts_get_string(c->body, "newPassword", 8, 128, 0, &new_pw, &nlen,
                         err))
    {
        ts_api_error(c->resp, 400, err);
        return;
    }
    if (clen == nlen && memcmp(cur, new_pw, nlen) == 0) {
        ts_api_error(c->resp, 400, "newPassword must differ from the "
                                   "current password");
        return;
    }

    /* counted before the check, like a login (ts_svc_auth.c) */
    if (ts_acct_attempt(c, "user", c->me.id, 1) != 1) {
        return;
    }
    pw = strndup(cur, clen);
    ok = pw != NULL && ts_password_verify(pw, c->me.password);
    if (pw) {
        explicit_bzero(pw, clen);
        free(pw);
    }
    if (!ok) {
        ts_api_error(c->resp, 400, TS_MSG_BAD_CURRENT);
        return;
    }
    /* a right password clears the account's count, as a login does */
    snprintf(lock_key, sizeof(lock_key), "user:%s", c->me.id);
    (void) ts_store_login_clear(c->store, lock_key);

    if (ts_acct_hash(c, new_pw, nlen, hash) != 0) {
        return;
    }
    if (ts_job_mail_password_changed(&job, c->me.email, c->me.username,
                                     "change")
        != 0)
    {
        ts_reply_store_error(c);
        return;
    }
    /* the stored hash must still be the one just verified: of two racing
     * changes the second is refused, never silently lost */
    rc = ts_store_user_set_password(c->store, c->me.id, c->me.password, NULL,
                                    hash, c->now, &job, &epoch);
    json_decref(job.payload);
    if (rc == TS_NOT_FOUND) {
        ts_api_error(c->resp, 409, "The password was changed meanwhile");
        return;
    }
    if (rc != TS_OK) {
        ts_reply_store_error(c);
        return;
    }
    c->resp->job_stored = 1;

    /* the reply's user is the caller as loaded, with the new epoch */
    u = c->me;
    u.session_epoch = epoch;
    ts_reply_session(c, &u);
    /* every socket of the user re-checks its token: the old ones close */
    ts_emit(c, TS_EV_USER_CHANGED, NULL, ts_rights_user_changed(c->me.id));
}


void
ts_svc_password_reset(ts_call_t *c)
{
    ts_errmsg_t    err;
    const char    *email;
    size_t         elen;
    char          *key = NULL;
    char           tok[TS_RESET_TOKEN_LEN + 1], hash[TS_RESET_HASH_HEX + 1];
    ts_job_new_t   job;
    ts_user_t      u;
    int            allowed;
    ts_rc_e        rc;

    memset(&u, 0, sizeof(u));
    if (ts_get_string(c->body, "email", 3, 254, 1, &email, &elen, err)) {
        ts_api_error(c->resp, 400, err);
        return;
    }
    if (!ts_valid_email(email, elen)) {
        ts_api_error(c->resp, 400, "email must be a valid email address");
        return;
    }

    /* the same work whatever the address: token, counter, lookup */
    key = ts_strndup_lower(email, elen);
    if (key == NULL || ts_reset_token_new(tok, hash) != 0) {
        free(key);
        ts_reply_store_error(c);
        return;
    }
    allowed = ts_acct_attempt(c, "reset", key, 0);
    if (allowed < 0) {
        goto done;
    }
    rc = ts_store_user_by_email(c->store, key, &u);
    if (rc == TS_ERR) {
        ts_reply_store_error(c);
        goto done;
    }

    if (rc == TS_OK && allowed) {
        if (ts_job_mail_password_reset(&job, u.email, u.username, tok) != 0) {
            ts_reply_store_error(c);
            goto done;
        }
        /* replaces any earlier token of the user: only the newest link
         * works */
        rc = ts_store_user_reset_issue(c->store, u.id, hash,
                                       c->now + TS_RESET_TTL_MS, c->now,
                                       &job);
        json_decref(job.payload);
        if (rc == TS_ERR) {
            ts_reply_store_error(c);
            goto done;
        }
        c->resp->job_stored = rc == TS_OK;
    }
    ts_reply(c, 202, json_pack("{s:s}", "message", TS_MSG_RESET_SENT));

done:
    explicit_bzero(tok, sizeof(tok));
    free(key);
    ts_user_clear(&u);
}


void
ts_svc_password_reset_confirm(ts_call_t *c)
{
    ts_errmsg_t    err;
    const char    *tok, *new_pw;
    size_t         tlen, nlen;
    char           hash[TS_RESET_HASH_HEX + 1], pw_hash[TS_HASH_MAX];
    char           lock_key[TS_OID_LEN + sizeof("user:")];
    ts_job_new_t   job;
    ts_user_t      u;
    ts_rc_e        rc;

    memset(&u, 0, sizeof(u));
    if (ts_get_string(c->body, "token", 1, 128, 0, &tok, &tlen, err)
        || ts_get_string(c->body, "password", 8, 128, 0, &new_pw, &nlen,
                         err))
    {
        ts_api_error(c->resp, 400, err);
        return;
    }
    if (ts_reset_token_hash(tok, tlen, hash) != 0) {
        ts_api_error(c->resp, 400, TS_MSG_BAD_RESET);
        return;
    }
    rc = ts_store_user_by_reset(c->store, hash, c->now, &u);
    if (rc == TS_NOT_FOUND) {
        ts_api_error(c->resp, 400, TS_MSG_BAD_RESET);
        return;
    }
    if (rc != TS_OK) {
        ts_reply_store_error(c);
        return;
    }

    if (ts_acct_hash(c, new_pw, nlen, pw_hash) != 0) {
        goto done;
    }
    if (ts_job_mail_password_changed(&job, u.email, u.username, "reset")
        != 0)
    {
        ts_reply_store_error(c);
        goto done;
    }
    /* conditional on the token: used up by whichever confirm writes
     * first; the other finds it gone */
    rc = ts_store_user_set_password(c->store, u.id, NULL, hash, pw_hash,
                                    c->now, &job, NULL);
    json_decref(job.payload);
    if (rc == TS_NOT_FOUND) {
        ts_api_error(c->resp, 400, TS_MSG_BAD_RESET);
        goto done;
    }
    if (rc != TS_OK) {
        ts_reply_store_error(c);
        goto done;
    }
    c->resp->job_stored = 1;

    /* whoever holds the mailbox holds the account: a lockout from
     * guesses before the reset is over */
    snprintf(lock_key, sizeof(lock_key), "user:%s", u.id);
    (void) ts_store_login_clear(c->store, lock_key);

    ts_reply(c, 200, json_pack("{s:s}", "message",
                               "Password reset, please log in"));
    ts_emit(c, TS_EV_USER_CHANGED, NULL, ts_rights_user_changed(u.id));

done:
    ts_user_clear(&u);
}

/*
 * ts_svc_auth: the authentication and user routes -- signup, login,
 * logout, presence, the user list, update-user -- and health.
 *
 * Login never tells an unknown identifier from a wrong password: both
 * spend one bcrypt verification and answer the same 401, and both count
 * towards a lockout.  The lockout is the account's: its username and its
 * email share one counter ("user:<id>"), so alternating them buys no
 * extra guesses; an identifier that names no account has a counter of its
 * own ("ident:<identifier>"), which behaves the same way.  The attempt is
 * counted before the password is checked, in one atomic store operation
 * (ts_store_login_attempt), so concurrent guesses in the bcrypt thread
 * pool cannot all pass the check before any of them is counted; a right
 * password then clears the counter.
 */

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "ts_api_internal.h"
#include "ts_jobs.h"
#include "ts_session.h"

#define TS_MSG_BAD_LOGIN  "Invalid credentials"
#define TS_MSG_LOCKED     "Too many failed login attempts, please try again later."


/* 400 with a validation message. */
static void
ts_reply_invalid(ts_call_t *c, const char *msg)
{
    ts_api_error(c->resp, 400, msg);
}


/* {user, token} for a freshly authenticated user. */
void
ts_reply_session(ts_call_t *c, const ts_user_t *u)
{
    char  *token;

    token = ts_token_issue(c->cfg->jwt_secret, c->cfg->jwt_secret_len, u->id,
                           ts_role_name(u->role), u->session_epoch,
                           c->now / 1000, c->cfg->token_lifetime_s);
    if (token == NULL) {
        ts_reply_store_error(c);
        return;
    }
    ts_reply(c, 200, json_pack("{s:o, s:s}", "user", ts_user_json(u),
                               "token", token));
    free(token);
    c->resp->authenticated = 1;
    c->resp->role = u->role;
    memcpy(c->resp->user_id, u->id, sizeof(ts_oid_t));
}


static void
ts_emit_presence(ts_call_t *c, const char *user_id, ts_presence_e status,
    int64_t last_seen)
{
    ts_emit(c, "user_status_changed", NULL,
            json_pack("{s:s, s:s, s:o}", "userId", user_id,
                      "status", ts_presence_name(status),
                      "lastSeen", ts_iso_json(last_seen)));
}


void
ts_svc_signup(ts_call_t *c)
{
    ts_errmsg_t    err;
    const char    *username, *email, *password, *which = "email";
    size_t         ulen, elen, plen;
    char           hash[TS_HASH_MAX];
    char          *pw;
    ts_user_t      u;
    ts_job_new_t   job;
    ts_rc_e        rc;

    memset(&u, 0, sizeof(u));

    if (ts_get_string(c->body, "username", 3, 32, 1, &username, &ulen, err)
        || ts_get_string(c->body, "email", 3, 254, 1, &email, &elen, err)
        || ts_get_string(c->body, "password", 8, 128, 0, &password, &plen,
                         err))
    {
        ts_reply_invalid(c, err);
        return;
    }
    if (!ts_valid_username(username, ulen)) {
        ts_reply_invalid(c, "username must be 3 to 32 letters, digits, "
                            "'_', '.' or '-'");
        return;
    }
    if (!ts_valid_email(email, elen)) {
        ts_reply_invalid(c, "email must be a valid email address");
        return;
    }
    if (ts_get_skills(c->body, "skills", &u.skills, err) < 0) {
        ts_reply_invalid(c, err);
        return;
    }

    /* "role" in the body is ignored: the store decides (first = admin) */
    pw = strndup(password, plen);
    if (pw == NULL || ts_password_hash(pw, c->cfg->bcrypt_cost, hash) != 0) {
        free(pw);
        json_decref(u.skills);
        ts_reply_store_error(c);
        return;
    }
    free(pw);

    u.username = strndup(username, ulen);
    u.email = ts_strndup_lower(email, elen);
    u.password = strdup(hash);
    u.status = TS_PRESENCE_ONLINE;
    u.last_seen = c->now;
    u.created_at = c->now;
    u.avg_resolution_hours = 24;
    if (u.skills == NULL) {
        u.skills = json_array();
    }

    ts_job_mail_welcome(&job, u.email ? u.email : "",
                        u.username ? u.username : "");

    if (u.username == NULL || u.email == NULL || u.password == NULL
        || job.payload == NULL)
    {
        rc = TS_ERR;
    } else {
        rc = ts_store_user_signup(c->store, &u, &job, &which);
    }
    json_decref(job.payload);

    if (rc == TS_CONFLICT) {
        ts_api_error(c->resp, 409, strcmp(which, "email") == 0
                                   ? "Email already registered"
                                   : "Username already taken");
    } else if (rc != TS_OK) {
        ts_reply_store_error(c);
    } else {
        c->resp->job_stored = 1;
        ts_reply_session(c, &u);
        ts_emit_presence(c, u.id, u.status, u.last_seen);
    }
    ts_user_clear(&u);
}


void
ts_svc_login(ts_call_t *c)
{
    const ts_config_t    *cfg = c->cfg;
    ts_errmsg_t           err;
    const char           *ident, *password, *field = "identifier";
    size_t                ilen, plen;
    char                 *key = NULL, *pw = NULL, *lock_key = NULL;
    ts_login_attempts_t   att;
    ts_user_t             u;
    ts_rc_e               rc;
    size_t                n;
    int                   ok, allowed;

    memset(&u, 0, sizeof(u));

    /* the original app's clients send "email" */
    if (json_object_get(c->body, "identifier") == NULL
        && json_object_get(c->body, "email") != NULL)
    {
        field = "email";
    }
    if (ts_get_string(c->body, field, 1, 254, 1, &ident, &ilen, err)
        || ts_get_string(c->body, "password", 1, 128, 0, &password, &plen,
                         err))
    {
        ts_reply_invalid(c, err);
        return;
    }

    key = ts_strndup_lower(ident, ilen);
    pw = strndup(password, plen);
    if (key == NULL || pw == NULL) {
        ts_reply_store_error(c);
        goto done;
    }

    rc = ts_store_user_by_login(c->store, key, &u);
    if (rc == TS_ERR) {
        ts_reply_store_error(c);
        goto done;
    }

    if (cfg->lockout_failures > 0) {
        n = strlen(key) + TS_OID_LEN + sizeof("ident:");
        lock_key = malloc(n);
        if (lock_key == NULL) {
            ts_reply_store_error(c);
            goto done;
        }
        if (rc == TS_OK) {
            snprintf(lock_key, n, "user:%s", u.id);
        } else {
            snprintf(lock_key, n, "ident:%s", key);
        }
        if (ts_store_login_attempt(c->store, lock_key, c->now,
                                   cfg->lockout_window_ms,
                                   cfg->lockout_failures, cfg->lockout_ms,
                                   &att, &allowed)
            != TS_OK)
        {
            ts_reply_store_error(c);
            goto done;
        }
        if (!allowed) {
            c->resp->retry_after = att.locked_until > c->now
                                   ? (int) ((att.locked_until - c->now + 999)
                                            / 1000)
                                   : 1;
            ts_api_error(c->resp, 429, TS_MSG_LOCKED);
            goto done;
        }
    }

    if (rc == TS_OK) {
        ok = ts_password_verify(pw, u.password);
    } else {
        ts_password_burn(pw, cfg->bcrypt_cost);
        ok = 0;
    }

    if (!ok) {
        /* counted already, by ts_store_login_attempt */
        ts_api_error(c->resp, 401, TS_MSG_BAD_LOGIN);
        goto done;
    }

    if (lock_key != NULL) {
        (void) ts_store_login_clear(c->store, lock_key);
    }
    if (ts_store_user_set_status(c->store, u.id, TS_PRESENCE_ONLINE, c->now,
                                 1)
        != TS_OK)
    {
        ts_reply_store_error(c);
        goto done;
    }
    u.status = TS_PRESENCE_ONLINE;
    u.last_seen = c->now;
    ts_reply_session(c, &u);
    ts_emit_presence(c, u.id, u.status, u.last_seen);

done:
    if (pw) {
        explicit_bzero(pw, plen);
        free(pw);
    }
    free(key);
    free(lock_key);
    ts_user_clear(&u);
}


void
ts_svc_logout(ts_call_t *c)
{
    const ts_claims_t  *cl = c->req->claims;
    int64_t             until;

    /* kept until the token's exp; one signed with an absurd exp must not
     * overflow into the past and be purged early */
    until = cl->exp > INT64_MAX / 1000 ? INT64_MAX : cl->exp * 1000;
    if (ts_store_token_revoke(c->store, cl->sig, until) != TS_OK
        || ts_store_user_set_status(c->store, c->me.id, TS_PRESENCE_OFFLINE,
                                    c->now, 0) == TS_ERR)
    {
        ts_reply_store_error(c);
        return;
    }
    ts_reply(c, 200, json_pack("{s:s}", "message", "Logout successfully"));
    ts_emit_presence(c, c->me.id, TS_PRESENCE_OFFLINE, c->now);
    /* the sockets opened with this token close on every worker and host */
    ts_emit(c, TS_EV_SESSION_REVOKED, NULL,
            ts_rights_session_revoked(c->me.id, cl->sig));
}


void
ts_svc_set_status(ts_call_t *c)
{
    ts_errmsg_t     err;
    const char     *s;
    size_t          len;
    char            buf[16];
    ts_presence_e   st;

    if (ts_get_string(c->body, "status", 1, 16, 1, &s, &len, err)) {
        ts_reply_invalid(c, err);
        return;
    }
    snprintf(buf, sizeof(buf), "%.*s", (int) len, s);
    if (ts_presence_parse(buf, &st) != 0) {
        ts_reply_invalid(c, "status must be one of online, offline, dnd");
        return;
    }
    if (ts_store_user_set_status(c->store, c->me.id, st, c->now, 1)
        != TS_OK)
    {
        ts_reply_store_error(c);
        return;
    }
    ts_reply(c, 200, json_pack("{s:s, s:s, s:o}", "message", "Status updated",
                               "status", ts_presence_name(st),
                               "lastSeen", ts_iso_json(c->now)));
    ts_emit_presence(c, c->me.id, st, c->now);
}


void
ts_svc_users(ts_call_t *c)
{
    json_t  *users;

    if (ts_store_user_list(c->store, &users) != TS_OK) {
        ts_reply_store_error(c);
        return;
    }
    ts_reply(c, 200, users);
}


void
ts_svc_update_user(ts_call_t *c)
{
    ts_errmsg_t   err;
    const char   *email, *role_s;
    size_t        elen, rlen;
    char         *key, buf[16];
    json_t       *skills = NULL, *handed = NULL, *why;
    ts_user_t     u;
    ts_role_e     role;
    int64_t       admins;
    ts_rc_e       rc;

    memset(&u, 0, sizeof(u));
    if (ts_get_string(c->body, "email", 3, 254, 1, &email, &elen, err)
        || ts_get_string_opt(c->body, "role", 1, 16, 1, &role_s, &rlen, err)
           < 0
        || ts_get_skills(c->body, "skills", &skills, err) < 0)
    {
        ts_reply_invalid(c, err);
        return;
    }

    key = ts_strndup_lower(email, elen);
    rc = key ? ts_store_user_by_email(c->store, key, &u) : TS_ERR;
    free(key);
    if (rc == TS_NOT_FOUND) {
        json_decref(skills);
        ts_api_error(c->resp, 404, "User not found");
        return;
    }
    if (rc != TS_OK) {
        json_decref(skills);
        ts_reply_store_error(c);
        return;
    }

    role = u.role;
    if (role_s) {
        snprintf(buf, sizeof(buf), "%.*s", (int) rlen, role_s);
        if (ts_role_parse(buf, &role) != 0) {
            ts_reply_invalid(c, "role must be one of user, moderator, admin");
            goto done;
        }
    }

    /* an installation must keep at least one admin */
    if (u.role == TS_ROLE_ADMIN && role != TS_ROLE_ADMIN) {
        if (ts_store_user_count_role(c->store, TS_ROLE_ADMIN, &admins)
            != TS_OK)
        {
            ts_reply_store_error(c);
            goto done;
        }
        if (admins <= 1) {
            ts_reply_invalid(c, "Cannot remove the role of the last admin");
            goto done;
        }
    }

    if (role == TS_ROLE_USER) {
        /* a demotion hands back the open tickets in the same write, each
         * through the assignment job again without them; repeated for
         * any update to "user", so a retry finishes an interrupted one
         * (MongoDB) */
        /* each ticket's history: handed back by this admin, why */
        why = json_pack("{s:s, s:s}", "rule", "demotion", "reason",
                        "Handed back: the assignee's role became user");
        rc = why ? ts_store_user_handback(c->store, u.id, 1, skills, 0,
                                          c->me.id, why, ts_job_reassign,
                                          c->now, &handed)
                 : TS_ERR;
        json_decref(why);
    } else {
        rc = ts_store_user_update(c->store, u.id, role, skills);
    }
    if (rc == TS_NOT_FOUND) {
        ts_api_error(c->resp, 404, "User not found");
    } else if (rc != TS_OK) {
        ts_reply_store_error(c);
    } else {
        c->resp->job_stored = json_array_size(handed) > 0;
        ts_reply(c, 200, json_pack("{s:s}", "message",
                                   "User updated successfully"));
        /* that user's sockets are re-authorised from the store */
        ts_emit(c, TS_EV_USER_CHANGED, NULL, ts_rights_user_changed(u.id));
        ts_svc_handback_events(c, handed);
    }

done:
    json_decref(handed);
    json_decref(skills);
    ts_user_clear(&u);
}


void
ts_svc_health(ts_call_t *c)
{
    int  store_ok = ts_store_ping(c->store) == TS_OK;

    ts_reply(c, store_ok ? 200 : 503,
             json_pack("{s:s, s:s, s:s, s:s, s:s}",
                       "status", store_ok ? "ok" : "degraded",
                       "store", store_ok ? "ok" : "unavailable",
                       "backend", ts_store_backend(c->store),
                       "daemon", c->req->daemon_state
                                 ? c->req->daemon_state : "unknown",
                       "redis", ts_store_cache_state(c->store)));
}

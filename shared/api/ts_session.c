/*
 * ts_session: sessions, ticket visibility and the rights events (see
 * ts_session.h).
 *
 * Invariant: every place that decides whether a token still opens a
 * session, or whether a user may see a ticket, calls these functions --
 * REST on each request, Socket.IO at CONNECT, at join_ticket and again
 * whenever a rights event or a link reconnect says the answer may have
 * changed.  Nothing caches the answer without such a push behind it.
 */

#include <string.h>

#include "ts_session.h"


ts_session_e
ts_session_load(ts_store_t *store, const ts_claims_t *claims,
    ts_user_t *user)
{
    ts_rc_e  rc;

    memset(user, 0, sizeof(*user));

    rc = ts_store_token_revoked(store, claims->sig);
    if (rc == TS_OK) {
        return TS_SESSION_INVALID;
    }
    if (rc != TS_NOT_FOUND) {
        return TS_SESSION_ERROR;
    }

    /* the role comes from the store, not the token: demotion is instant;
     * so does the session epoch: a password change or reset ends every
     * token issued before it, here and on every socket (user_changed) */
    rc = ts_store_user_by_id(store, claims->user_id, user);
    if (rc == TS_OK) {
        if (claims->epoch == user->session_epoch) {
            return TS_SESSION_OK;
        }
        ts_user_clear(user);
        return TS_SESSION_INVALID;
    }
    ts_user_clear(user);
    return rc == TS_NOT_FOUND ? TS_SESSION_INVALID : TS_SESSION_ERROR;
}


int
ts_ticket_visible(const ts_user_t *user, const ts_ticket_keys_t *k)
{
    return user->role == TS_ROLE_ADMIN
           || strcmp(k->created_by, user->id) == 0
           || (k->assigned_to[0] != '\0'
               && strcmp(k->assigned_to, user->id) == 0);
}


int
ts_ticket_staff(const ts_user_t *user, const ts_ticket_keys_t *k)
{
    return user->role == TS_ROLE_ADMIN
           || (user->role == TS_ROLE_MODERATOR && k->assigned_to[0] != '\0'
               && strcmp(k->assigned_to, user->id) == 0);
}


/* --- rights events ----------------------------------------------------- */

static const struct {
    const char   *name;
    ts_rights_e   kind;
} ts_rights_names[] = {
    { TS_EV_SESSION_REVOKED,       TS_RIGHTS_SESSION_REVOKED },
    { TS_EV_USER_CHANGED,          TS_RIGHTS_USER_CHANGED },
    { TS_EV_TICKET_ACCESS_CHANGED, TS_RIGHTS_TICKET_ACCESS },
    { TS_EV_RIGHTS_RESYNC,         TS_RIGHTS_RESYNC },
};


static ts_rights_e
ts_rights_kind(const char *event)
{
    size_t  i;

    if (event == NULL) {
        return TS_RIGHTS_NONE;
    }
    for (i = 0; i < sizeof(ts_rights_names) / sizeof(ts_rights_names[0]);
         i++)
    {
        if (strcmp(event, ts_rights_names[i].name) == 0) {
            return ts_rights_names[i].kind;
        }
    }
    return TS_RIGHTS_NONE;
}


int
ts_rights_internal(const char *event)
{
    return ts_rights_kind(event) != TS_RIGHTS_NONE;
}


/* Copy data[key] into out when it is 24 lowercase hex digits. */
static int
ts_rights_oid(const json_t *data, const char *key, ts_oid_t out)
{
    const char  *s = json_string_value(json_object_get(data, key));
    size_t       i;

    if (s == NULL || json_string_length(json_object_get(data, key))
                     != TS_OID_LEN)
    {
        return -1;
    }
    for (i = 0; i < TS_OID_LEN; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return -1;
        }
    }
    memcpy(out, s, TS_OID_LEN + 1);
    return 0;
}


static int
ts_rights_sig(const json_t *data, char out[TS_TOKEN_SIG_MAX + 1])
{
    const json_t  *v = json_object_get(data, "sig");
    const char    *s = json_string_value(v);
    size_t         i, n;

    if (s == NULL) {
        return -1;
    }
    n = json_string_length(v);
    if (n == 0 || n > TS_TOKEN_SIG_MAX) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
        {
            return -1;
        }
    }
    memcpy(out, s, n + 1);
    return 0;
}


int
ts_rights_parse(const char *event, const json_t *data, ts_rights_t *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = ts_rights_kind(event);
    if (!json_is_object(data)) {
        out->kind = TS_RIGHTS_NONE;
        return -1;
    }

    switch (out->kind) {
    case TS_RIGHTS_SESSION_REVOKED:
        if (ts_rights_oid(data, "userId", out->user_id) == 0
            && ts_rights_sig(data, out->sig) == 0)
        {
            return 0;
        }
        break;
    case TS_RIGHTS_USER_CHANGED:
        if (ts_rights_oid(data, "userId", out->user_id) == 0) {
            return 0;
        }
        break;
    case TS_RIGHTS_RESYNC:
        if (json_object_size(data) == 0) {
            return 0;
        }
        break;
    case TS_RIGHTS_TICKET_ACCESS:
        if (ts_rights_oid(data, "ticketId", out->ticket_id) == 0) {
            return 0;
        }
        break;
    default:
        break;
    }
    memset(out, 0, sizeof(*out));
    return -1;
}


json_t *
ts_rights_session_revoked(const char *user_id, const char *sig)
{
    return json_pack("{s:s, s:s}", "userId", user_id, "sig", sig);
}


json_t *
ts_rights_user_changed(const char *user_id)
{
    return json_pack("{s:s}", "userId", user_id);
}


json_t *
ts_rights_ticket_access_changed(const char *ticket_id)
{
    return json_pack("{s:s}", "ticketId", ticket_id);
}

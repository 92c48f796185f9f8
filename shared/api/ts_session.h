/*
 * ts_session: the one rule for "who is this token, and what may they see",
 * shared by REST (ts_api.c, ts_svc_tickets.c) and the Socket.IO thread
 * tasks of the nginx module, so the two cannot drift apart; and the
 * internal "rights" events that tell every worker a session, a user or a
 * ticket's audience changed (see DESIGN.md section 7).
 *
 * Rights events travel as ordinary event frames
 * {"type":"event","event":NAME,"room":null,"data":{...}} through ticketd
 * and the Redis bridge; a worker applies them and never forwards them to a
 * Socket.IO client.
 */

#ifndef TS_SESSION_H
#define TS_SESSION_H

#include <jansson.h>

#include "ts_auth.h"
#include "ts_store.h"

typedef enum {
    TS_SESSION_OK = 0,        /* user filled */
    TS_SESSION_INVALID,       /* revoked token or no such user */
    TS_SESSION_ERROR          /* the store failed: not the caller's fault */
} ts_session_e;

/*
 * Load the user behind verified claims from the store: the token must not
 * be revoked, the user must exist and the token's session epoch must be
 * the user's (a password change or reset ends older tokens); the role is
 * the store's, never the token's.  On TS_SESSION_OK *user is filled (free
 * with ts_user_clear); otherwise it is left zeroed.
 */
ts_session_e ts_session_load(ts_store_t *store, const ts_claims_t *claims,
    ts_user_t *user);

/* 1 when user may see the ticket with these keys: admins, its creator and
 * its assignee; 0 otherwise. */
int ts_ticket_visible(const ts_user_t *user, const ts_ticket_keys_t *k);

/* 1 when user is staff on the ticket -- an admin, or a moderator it is
 * assigned to -- and so reads its internal notes, triage notes and
 * provenance; 0 for its requester and anyone else (DESIGN.md section 7:
 * staff-only by default). */
int ts_ticket_staff(const ts_user_t *user, const ts_ticket_keys_t *k);

/* --- rights events ----------------------------------------------------- */

#define TS_EV_SESSION_REVOKED        "session_revoked"
#define TS_EV_USER_CHANGED           "user_changed"
#define TS_EV_TICKET_ACCESS_CHANGED  "ticket_access_changed"
/* data {}: pushes may have been missed (a host's Redis bridge was down);
 * every socket falls back to the store, as after a link outage */
#define TS_EV_RIGHTS_RESYNC          "rights_resync"
#define TS_RIGHTS_RESYNC_FRAME \
    "{\"type\":\"event\",\"event\":\"" TS_EV_RIGHTS_RESYNC "\"," \
    "\"room\":null,\"data\":{}}"

typedef enum {
    TS_RIGHTS_NONE = 0,             /* not a rights event */
    TS_RIGHTS_SESSION_REVOKED,      /* user_id, sig */
    TS_RIGHTS_USER_CHANGED,         /* user_id */
    TS_RIGHTS_TICKET_ACCESS,        /* ticket_id */
    TS_RIGHTS_RESYNC                /* nothing */
} ts_rights_e;

typedef struct {
    ts_rights_e  kind;
    ts_oid_t     user_id;
    ts_oid_t     ticket_id;
    char         sig[TS_TOKEN_SIG_MAX + 1];
} ts_rights_t;

/* 1 when an event of this name is internal (never sent to a client). */
int ts_rights_internal(const char *event);

/*
 * Parse a rights event's data against its schema: 0 with *out filled, -1
 * when event is no rights event or data does not match (userId and
 * ticketId 24 lowercase hex, sig 1..128 of [A-Za-z0-9_-]).
 */
int ts_rights_parse(const char *event, const json_t *data, ts_rights_t *out);

/* The data of each rights event (new references, NULL without memory). */
json_t *ts_rights_session_revoked(const char *user_id, const char *sig);
json_t *ts_rights_user_changed(const char *user_id);
json_t *ts_rights_ticket_access_changed(const char *ticket_id);

#endif /* TS_SESSION_H */

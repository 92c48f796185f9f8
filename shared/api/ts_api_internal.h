/*
 * ts_api_internal: what route handlers (ts_svc_*.c) share with the
 * dispatcher (ts_api.c).  Not for callers outside shared/.
 */

#ifndef TS_API_INTERNAL_H
#define TS_API_INTERNAL_H

#include "ts_api.h"
#include "ts_json_writer.h"
#include "ts_validate.h"

/* One request in flight inside ts_api_call(). */
typedef struct {
    const ts_config_t   *cfg;
    ts_store_t          *store;
    const ts_request_t  *req;
    ts_response_t       *resp;
    json_t              *body;     /* parsed object, or NULL if none sent */
    ts_user_t            me;       /* loaded when the route needs a token */
    int64_t              now;      /* ms */
} ts_call_t;

typedef void (*ts_handler_pt)(ts_call_t *c);

struct ts_route_s {
    ts_method_e    method;
    const char    *pattern;        /* "/api/tickets/:id/status" */
    ts_access_e    access;
    int            needs_body;     /* a JSON object body is required */
    int            cpu_heavy;      /* runs bcrypt: use the password pool */
    ts_handler_pt  handler;
};

/* Reply with a JSON value (stolen) and status. */
void ts_reply(ts_call_t *c, int status, json_t *body);

/* Reply with JSON text taken from a writer (500 if it ran out of memory). */
void ts_reply_text(ts_call_t *c, int status, ts_jw_t *w);

/* Reply 500 after a store failure; never leaks the backend message. */
void ts_reply_store_error(ts_call_t *c);

/* Queue an event for the daemon link: room may be NULL; data is stolen. */
void ts_emit(ts_call_t *c, const char *event, const char *room, json_t *data);

/* The same for the staff on the ticket only (ts_event_frame_staff). */
void ts_emit_staff(ts_call_t *c, const char *event, const char *room,
    json_t *data);

/* 200 {user, token}: a token issued for u (its role, session epoch) and
 * the response marked as authenticated as u (ts_svc_auth.c). */
void ts_reply_session(ts_call_t *c, const ts_user_t *u);

/* Route handlers, by file. */
void ts_svc_signup(ts_call_t *c);
void ts_svc_login(ts_call_t *c);
void ts_svc_logout(ts_call_t *c);
void ts_svc_set_status(ts_call_t *c);
void ts_svc_users(ts_call_t *c);
void ts_svc_update_user(ts_call_t *c);
void ts_svc_health(ts_call_t *c);
void ts_svc_password_change(ts_call_t *c);
void ts_svc_password_reset(ts_call_t *c);
void ts_svc_password_reset_confirm(ts_call_t *c);
void ts_svc_ticket_create(ts_call_t *c);
void ts_svc_ticket_list(ts_call_t *c);
void ts_svc_ticket_get(ts_call_t *c);
void ts_svc_ticket_status(ts_call_t *c);
void ts_svc_comment_add(ts_call_t *c);
void ts_svc_comment_list(ts_call_t *c);
void ts_svc_ticket_priority(ts_call_t *c);
void ts_svc_analytics(ts_call_t *c);
void ts_svc_modreq_create(ts_call_t *c);
void ts_svc_modreq_me(ts_call_t *c);
void ts_svc_modreq_list(ts_call_t *c);
void ts_svc_modreq_decide(ts_call_t *c);
void ts_svc_job_list(ts_call_t *c);
void ts_svc_job_retry(ts_call_t *c);
void ts_svc_ticket_assignee(ts_call_t *c);
void ts_svc_ticket_history(ts_call_t *c);
void ts_svc_canned_list(ts_call_t *c);
void ts_svc_canned_create(ts_call_t *c);
void ts_svc_canned_update(ts_call_t *c);
void ts_svc_canned_delete(ts_call_t *c);

/* ticket_access_changed and ticket_updated for each ticket of a
 * ts_store_user_handback() result (ts_svc_assignee.c). */
void ts_svc_handback_events(ts_call_t *c, json_t *handed);

#endif /* TS_API_INTERNAL_H */

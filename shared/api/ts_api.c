/*
 * ts_api: route table, routing, and the dispatcher that turns a request
 * into a response: authentication against the store, body parsing, then
 * the route's handler (ts_svc_*.c).
 *
 * Routing is a linear scan of a short table of segment patterns; ":name"
 * matches one non-empty segment.  A trailing slash is ignored, as Express
 * does by default.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_api_internal.h"
#include "ts_event.h"
#include "ts_session.h"

static const ts_route_t  ts_routes[] = {
    { TS_POST,  "/api/auth/signup",      TS_ACCESS_ANYONE, 1, 1,
      ts_svc_signup },
    { TS_POST,  "/api/auth/login",       TS_ACCESS_ANYONE, 1, 1,
      ts_svc_login },
    { TS_POST,  "/api/auth/logout",      TS_ACCESS_TOKEN,  0, 0,
      ts_svc_logout },
    { TS_PATCH, "/api/auth/status",      TS_ACCESS_TOKEN,  1, 0,
      ts_svc_set_status },
    { TS_GET,   "/api/auth/users",       TS_ACCESS_ADMIN,  0, 0,
      ts_svc_users },
    { TS_GET,   "/api/users",            TS_ACCESS_ADMIN,  0, 0,
      ts_svc_users },
    { TS_POST,  "/api/auth/update-user", TS_ACCESS_ADMIN,  1, 0,
      ts_svc_update_user },
    { TS_GET,   "/api/health",           TS_ACCESS_ANYONE, 0, 0,
      ts_svc_health },
    { TS_POST,  "/api/auth/password",    TS_ACCESS_TOKEN,  1, 1,
      ts_svc_password_change },
    { TS_POST,  "/api/auth/password-reset", TS_ACCESS_ANYONE, 1, 0,
      ts_svc_password_reset },
    { TS_POST,  "/api/auth/password-reset/confirm", TS_ACCESS_ANYONE, 1, 1,
      ts_svc_password_reset_confirm },
    /* no handler: the host answers it from memory (ts_api_document) */
    { TS_GET,   "/api/openapi.json",     TS_ACCESS_ANYONE, 0, 0,
      NULL },

    { TS_POST,  "/api/tickets",          TS_ACCESS_TOKEN,  1, 0,
      ts_svc_ticket_create },
    { TS_GET,   "/api/tickets",          TS_ACCESS_TOKEN,  0, 0,
      ts_svc_ticket_list },
    { TS_GET,   "/api/tickets/:id",      TS_ACCESS_TOKEN,  0, 0,
      ts_svc_ticket_get },
    { TS_PATCH, "/api/tickets/:id/status", TS_ACCESS_TOKEN, 1, 0,
      ts_svc_ticket_status },
    { TS_POST,  "/api/tickets/:id/comments", TS_ACCESS_TOKEN, 1, 0,
      ts_svc_comment_add },
    { TS_GET,   "/api/tickets/:id/comments", TS_ACCESS_TOKEN, 0, 0,
      ts_svc_comment_list },
    { TS_PATCH, "/api/tickets/:id/priority", TS_ACCESS_TOKEN, 1, 0,
      ts_svc_ticket_priority },
    { TS_PATCH, "/api/tickets/:id/assignee", TS_ACCESS_TOKEN, 1, 0,
      ts_svc_ticket_assignee },
    { TS_GET,   "/api/tickets/:id/history", TS_ACCESS_TOKEN, 0, 0,
      ts_svc_ticket_history },
    { TS_GET,   "/api/canned-responses", TS_ACCESS_TOKEN,  0, 0,
      ts_svc_canned_list },
    { TS_POST,  "/api/canned-responses", TS_ACCESS_TOKEN,  1, 0,
      ts_svc_canned_create },
    { TS_PATCH, "/api/canned-responses/:id", TS_ACCESS_TOKEN, 1, 0,
      ts_svc_canned_update },
    { TS_DELETE, "/api/canned-responses/:id", TS_ACCESS_TOKEN, 0, 0,
      ts_svc_canned_delete },

    { TS_POST,  "/api/mod-requests",     TS_ACCESS_TOKEN,  1, 0,
      ts_svc_modreq_create },
    { TS_GET,   "/api/mod-requests/me",  TS_ACCESS_TOKEN,  0, 0,
      ts_svc_modreq_me },
    { TS_GET,   "/api/mod-requests",     TS_ACCESS_ADMIN,  0, 0,
      ts_svc_modreq_list },
    { TS_POST,  "/api/mod-requests/:id/decide", TS_ACCESS_ADMIN, 1, 0,
      ts_svc_modreq_decide },
    { TS_PATCH, "/api/mod-requests/:id", TS_ACCESS_ADMIN,  1, 0,
      ts_svc_modreq_decide },

    { TS_GET,   "/api/analytics",        TS_ACCESS_ADMIN,  0, 0,
      ts_svc_analytics },

    { TS_GET,   "/api/jobs",             TS_ACCESS_ADMIN,  0, 0,
      ts_svc_job_list },
    { TS_POST,  "/api/jobs/:id/retry",   TS_ACCESS_ADMIN,  0, 0,
      ts_svc_job_retry },
};

#define TS_NROUTES  (sizeof(ts_routes) / sizeof(ts_routes[0]))

static const char *ts_method_names[] = {
    "GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS", "OTHER"
};


/* Match path against pattern; params receive ":name" segments. */
static int
ts_route_path_match(const char *pattern, const char *path, size_t len,
    char params[TS_API_MAX_PARAMS][64])
{
    const char  *p = pattern, *end = path + len, *seg;
    int          np = 0;

    while (*p) {
        if (*p == ':') {
            /* a parameter: one non-empty segment */
            while (*p && *p != '/') {
                p++;
            }
            seg = path;
            while (path < end && *path != '/') {
                path++;
            }
            if (path == seg || np >= TS_API_MAX_PARAMS
                || (size_t) (path - seg) >= sizeof(params[0]))
            {
                return 0;
            }
            memcpy(params[np], seg, path - seg);
            params[np][path - seg] = '\0';
            np++;
            continue;
        }
        if (path == end || *p != *path) {
            return 0;
        }
        p++;
        path++;
    }
    return path == end;
}


int
ts_api_match(ts_method_e method, const char *path, size_t len,
    ts_match_t *match, char *allow, size_t allow_len)
{
    size_t       i, used = 0;
    int          found = 0;
    ts_match_t   m;

    /* "/api/users/" is "/api/users"; "/" alone stays */
    while (len > 1 && path[len - 1] == '/') {
        len--;
    }
    if (method == TS_HEAD) {
        method = TS_GET;
    }
    if (allow && allow_len) {
        allow[0] = '\0';
    }

    for (i = 0; i < TS_NROUTES; i++) {
        memset(&m, 0, sizeof(m));
        if (!ts_route_path_match(ts_routes[i].pattern, path, len, m.params)) {
            continue;
        }
        if (ts_routes[i].method == method) {
            m.route = &ts_routes[i];
            *match = m;
            return 200;
        }
        found = 1;
        if (allow && used < allow_len) {
            used += snprintf(allow + used, allow_len - used, "%s%s",
                             used ? ", " : "",
                             ts_method_names[ts_routes[i].method]);
        }
    }
    return found ? 405 : 404;
}


int
ts_api_routes(void)
{
    return (int) TS_NROUTES;
}


int
ts_api_route_id(const ts_match_t *match)
{
    return match->route ? (int) (match->route - ts_routes) : -1;
}


const char *
ts_api_route_name(int id)
{
    static char  names[TS_NROUTES][64];
    size_t       i;

    /* built once, before any thread runs: the module asks at
     * configuration time (ngx_http_ticket_metrics.c) */
    if (names[0][0] == '\0') {
        for (i = 0; i < TS_NROUTES; i++) {
            snprintf(names[i], sizeof(names[i]), "%s %s",
                     ts_method_names[ts_routes[i].method],
                     ts_routes[i].pattern);
        }
    }
    return id >= 0 && (size_t) id < TS_NROUTES ? names[id] : NULL;
}


ts_access_e
ts_api_access(const ts_match_t *match)
{
    return match->route ? match->route->access : TS_ACCESS_ANYONE;
}


int
ts_api_document(const ts_match_t *match)
{
    return match->route != NULL && match->route->handler == NULL;
}


int
ts_api_cpu_heavy(const ts_match_t *match)
{
    return match->route ? match->route->cpu_heavy : 0;
}


void
ts_reply(ts_call_t *c, int status, json_t *body)
{
    char  *text;

    free(c->resp->body);
    c->resp->body = NULL;
    c->resp->status = status;

    text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(12))
                : NULL;
    json_decref(body);
    if (text == NULL) {
        /* only an allocation failure gets here */
        c->resp->status = 500;
        text = strdup("{\"error\":\"Internal server error\","
                      "\"message\":\"Internal server error\"}");
    }
    c->resp->body = text;
    c->resp->body_len = text ? strlen(text) : 0;
}


void
ts_reply_text(ts_call_t *c, int status, ts_jw_t *w)
{
    size_t  len;
    char   *text = ts_jw_finish(w, &len);

    if (text == NULL) {
        ts_api_error(c->resp, 500, "Internal server error");
        return;
    }
    free(c->resp->body);
    c->resp->status = status;
    c->resp->body = text;
    c->resp->body_len = len;
}


void
ts_api_error(ts_response_t *resp, int status, const char *msg)
{
    ts_call_t  c;

    memset(&c, 0, sizeof(c));
    c.resp = resp;
    ts_reply(&c, status, json_pack("{s:s, s:s}", "error", msg,
                                   "message", msg));
}


void
ts_reply_store_error(ts_call_t *c)
{
    ts_api_error(c->resp, 500, "Internal server error");
}


void
ts_emit(ts_call_t *c, const char *event, const char *room, json_t *data)
{
    json_t  *ev;

    if (c->resp->events == NULL) {
        c->resp->events = json_array();
    }
    ev = ts_event_frame(event, room, data);
    if (ev) {
        json_array_append_new(c->resp->events, ev);
    }
}


void
ts_emit_staff(ts_call_t *c, const char *event, const char *room,
    json_t *data)
{
    json_t  *ev;

    if (c->resp->events == NULL) {
        c->resp->events = json_array();
    }
    ev = ts_event_frame_staff(event, room, data);
    if (ev) {
        json_array_append_new(c->resp->events, ev);
    }
}


/* Check the token against the store and load the caller; 0 when allowed. */
static int
ts_api_authenticate(ts_call_t *c)
{
    const ts_claims_t  *cl = c->req->claims;

    if (cl == NULL) {
        ts_api_error(c->resp, 401, "Access Denied. No token found.");
        return -1;
    }

    switch (ts_session_load(c->store, cl, &c->me)) {
    case TS_SESSION_OK:
        break;
    case TS_SESSION_INVALID:
        c->resp->session_refused = 1;
        ts_api_error(c->resp, 401, "Invalid token");
        return -1;
    default:
        ts_reply_store_error(c);
        return -1;
    }
    c->resp->authenticated = 1;
    c->resp->role = c->me.role;
    memcpy(c->resp->user_id, c->me.id, sizeof(ts_oid_t));

    if (c->req->match.route->access == TS_ACCESS_ADMIN
        && c->me.role != TS_ROLE_ADMIN)
    {
        ts_api_error(c->resp, 403, "Access denied: admins only");
        return -1;
    }
    return 0;
}


static int
ts_api_parse_body(ts_call_t *c)
{
    const ts_request_t  *req = c->req;
    json_error_t         jerr;

    if (req->body_len > TS_API_MAX_BODY) {
        ts_api_error(c->resp, 413, "Request body too large");
        return -1;
    }
    if (req->body == NULL || req->body_len == 0) {
        ts_api_error(c->resp, 400, "Request body must be a JSON object");
        return -1;
    }
    c->body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES,
                         &jerr);
    if (c->body == NULL) {
        ts_api_error(c->resp, 400, "Invalid JSON body");
        return -1;
    }
    if (!json_is_object(c->body)) {
        ts_api_error(c->resp, 400, "Request body must be a JSON object");
        return -1;
    }
    return 0;
}


void
ts_api_call(const ts_config_t *cfg, ts_store_t *store,
    const ts_request_t *req, ts_response_t *resp)
{
    ts_call_t          c;
    const ts_route_t  *route = req->match.route;

    memset(resp, 0, sizeof(*resp));
    memset(&c, 0, sizeof(c));
    c.cfg = cfg;
    c.store = store;
    c.req = req;
    c.resp = resp;
    c.now = ts_now_ms();

    if (route == NULL || route->handler == NULL) {
        ts_api_error(resp, 404, "Route not found");
        return;
    }
    /* GET routes only read: one snapshot for all their queries */
    if (route->method == TS_GET) {
        ts_store_read_begin(store);
    }
    if (route->access != TS_ACCESS_ANYONE && ts_api_authenticate(&c) != 0) {
        goto done;
    }
    if (route->needs_body && ts_api_parse_body(&c) != 0) {
        goto done;
    }

    route->handler(&c);

    if (resp->body == NULL) {
        ts_api_error(resp, 500, "Internal server error");
    }

done:
    if (route->method == TS_GET) {
        ts_store_read_end(store);
    }
    json_decref(c.body);
    ts_user_clear(&c.me);
}


void
ts_response_free(ts_response_t *resp)
{
    free(resp->body);
    json_decref(resp->events);
    memset(resp, 0, sizeof(*resp));
}

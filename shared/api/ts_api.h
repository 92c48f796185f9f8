/*
 * ts_api: the REST route table and the request -> response function the
 * nginx module calls from its thread pool.  Everything here is plain C on
 * plain buffers (no nginx types), so the whole API is unit-tested without
 * a server.
 *
 * Split of work: ts_api_match() and token verification are cheap and run
 * on the nginx event loop (404/405/401 without a thread hop); ts_api_call()
 * does JSON parsing, store access and bcrypt, and runs in the thread pool.
 */

#ifndef TS_API_H
#define TS_API_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "ts_auth.h"
#include "ts_store.h"

#define TS_API_MAX_BODY    (100 * 1024)
#define TS_API_MAX_PARAMS  2

typedef enum {
    TS_GET = 0,
    TS_POST,
    TS_PATCH,
    TS_PUT,
    TS_DELETE,
    TS_HEAD,
    TS_OPTIONS,
    TS_METHOD_OTHER
} ts_method_e;

typedef enum {
    TS_ACCESS_ANYONE = 0,   /* no token needed */
    TS_ACCESS_TOKEN,        /* any valid token */
    TS_ACCESS_ADMIN         /* a valid token of a current admin */
} ts_access_e;

/* Process-wide settings (from nginx directives or daemon options). */
typedef struct {
    const unsigned char  *jwt_secret;
    size_t                jwt_secret_len;
    int64_t               token_lifetime_s;    /* default 7 days */
    int                   bcrypt_cost;         /* default 10 */
    int                   lockout_failures;    /* 0 = no lockout */
    int64_t               lockout_window_ms;
    int64_t               lockout_ms;
    int64_t               max_comments;        /* per ticket; 0 = default */
    ts_sla_cfg_t          sla;                 /* ticket_sla: the dates a
                                                  priority change sets */
} ts_config_t;

/* Comments a ticket may hold unless ticket_max_comments says otherwise. */
#define TS_MAX_COMMENTS_DEFAULT  1000

typedef struct ts_route_s ts_route_t;

typedef struct {
    const ts_route_t  *route;
    char               params[TS_API_MAX_PARAMS][64];
} ts_match_t;

typedef struct {
    ts_method_e         method;
    ts_match_t          match;
    const char         *query;        /* after '?', may be NULL */
    size_t              query_len;
    const char         *body;         /* may be NULL */
    size_t              body_len;
    const ts_claims_t  *claims;       /* verified token or NULL */
    const char         *daemon_state; /* for /api/health */
    int64_t             if_unmodified_since;  /* ms, from the header; 0:
                                                 none (or not a date) */
} ts_request_t;

typedef struct {
    int        status;
    char      *body;          /* malloc'ed JSON text */
    size_t     body_len;
    json_t    *events;        /* array of event frames (ts_event_frame) or NULL */
    int        job_stored;    /* wake the daemon */
    int        retry_after;   /* seconds, for 429; 0 = none */
    ts_role_e  role;          /* of the authenticated user */
    int        authenticated;
    ts_oid_t   user_id;       /* the authenticated user (with it) */
    int        session_refused;   /* valid signature, but the store says
                                   * revoked token or deleted user */
} ts_response_t;

/* Route a path; returns 200 (match filled), 404 or 405.  For 405, allow
 * (may be NULL) receives the allowed methods, e.g. "GET, POST". */
int ts_api_match(ts_method_e method, const char *path, size_t len,
    ts_match_t *match, char *allow, size_t allow_len);

/* Routes in the table: route ids are 0 .. ts_api_routes() - 1 (the
 * metrics count requests by route id, a bounded set). */
int ts_api_routes(void);

/* The id of a matched route, or -1 when match holds none. */
int ts_api_route_id(const ts_match_t *match);

/* The route's method and pattern, "GET /api/tickets/:id"; NULL for an id
 * out of range.  Static text. */
const char *ts_api_route_name(int id);

/* What the matched route requires of the caller. */
ts_access_e ts_api_access(const ts_match_t *match);

/* 1 for GET /api/openapi.json: the API's OpenAPI document
 * (shared/api/openapi.json), which the host serves itself, from memory. */
int ts_api_document(const ts_match_t *match);

/* 1 when the route hashes a password (tens of ms of CPU): the module runs
 * it in the password thread pool so other routes never queue behind it. */
int ts_api_cpu_heavy(const ts_match_t *match);

/* Run a matched request against the store; fills resp (free it with
 * ts_response_free).  Never fails: errors become 4xx/5xx JSON bodies. */
void ts_api_call(const ts_config_t *cfg, ts_store_t *store,
    const ts_request_t *req, ts_response_t *resp);

/* Fill resp with {"error": msg, "message": msg}. */
void ts_api_error(ts_response_t *resp, int status, const char *msg);

void ts_response_free(ts_response_t *resp);

#endif /* TS_API_H */

/*
 * ngx_http_ticket_module: configuration and per-request state shared by
 * the module's files (directives, API handler, auth, CORS, daemon link).
 */

#ifndef NGX_HTTP_TICKET_MODULE_H
#define NGX_HTTP_TICKET_MODULE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ts_api.h"

typedef struct {
    ngx_str_t            store;           /* ticket_store URI */
    ngx_str_t            jwt_secret;      /* from ticket_jwt_secret_file */
    time_t               jwt_lifetime;    /* ticket_jwt_lifetime */
    ngx_int_t            bcrypt_cost;     /* ticket_bcrypt_cost */
    ngx_int_t            lockout_failures;
    time_t               lockout_window;
    time_t               lockout_time;
    ngx_int_t            max_comments;    /* ticket_max_comments */
    ngx_flag_t           sla;             /* ticket_sla seen (in api.sla) */
    ngx_flag_t           sla_warning;     /* ticket_sla_warning seen */
    ngx_str_t            daemon;          /* ticket_daemon unix socket path */
    ngx_str_t            redis;           /* ticket_redis URL, "" = none;
                                             with the password of
                                             ticket_redis_password_file
                                             once the http block is read */
    ngx_str_t            redis_password;  /* ticket_redis_password_file */
    u_char               cache_key[32];   /* MACs of cached values,
                                             derived from jwt_secret */
    ngx_str_t            fingerprint;     /* hello's "config":{...} of
                                             store, socket and secret */
    ts_config_t          api;             /* the above, for shared/ */
    ngx_uint_t           used;            /* some location has ticket_api */
    ngx_uint_t           socketio_used;   /* ... has ticket_socketio */
    ngx_uint_t           ws_user_sockets; /* ticket_socketio_user_sockets */
    size_t               ws_users_size;   /* ... zone=size */
    ngx_shm_zone_t      *ws_users;        /* NULL: no limit */
    ngx_shm_zone_t      *metrics;         /* ticket_metrics; NULL: none */
} ngx_http_ticket_main_conf_t;

typedef struct {
    ngx_flag_t           api;             /* ticket_api */
    ngx_str_t            pool_name;       /* ticket_thread_pool */
    ngx_thread_pool_t   *pool;
    ngx_str_t            pw_pool_name;    /* ticket_password_thread_pool */
    ngx_thread_pool_t   *pw_pool;
    size_t               max_body;        /* ticket_max_body */
    ngx_array_t         *cors_origins;    /* ngx_str_t; NULL = no CORS */
    ngx_flag_t           cors_any;        /* "*" */
    ngx_flag_t           socketio;        /* ticket_socketio */
    ngx_msec_t           ping_interval;   /* ticket_socketio_ping */
    ngx_msec_t           ping_timeout;
    size_t               ws_max_message;  /* ticket_socketio_max_message */
    size_t               ws_send_buffer;  /* ticket_socketio_send_buffer */
    ngx_msec_t           ws_connect_timeout; /* ..._connect_timeout */
    ngx_uint_t           ws_event_rate;   /* ticket_socketio_event_rate */
    ngx_uint_t           ws_event_burst;
} ngx_http_ticket_loc_conf_t;

/* Per-request state: the bearer token is verified at most once. */
typedef struct {
    ngx_uint_t           token_done;      /* verification ran */
    ngx_uint_t           token_present;
    ngx_uint_t           token_valid;
    ts_claims_t          claims;
    ngx_uint_t           role_known;      /* the API ran: user_id and role
                                           * are the store's session */
    ngx_uint_t           session_refused; /* the API found the token
                                           * revoked or its user gone */
    ts_oid_t             user_id;
    ts_role_e            role;
    ngx_thread_task_t   *task;            /* the API call in flight */
} ngx_http_ticket_ctx_t;

extern ngx_module_t  ngx_http_ticket_module;

/* The post handler of a number directive (ngx_conf_num_bounds_t) whose
 * message names the directive, unlike nginx's own. */
char *ngx_http_ticket_num_bounds(ngx_conf_t *cf, void *post, void *data);

/* ngx_http_ticket_api.c */
ngx_int_t ngx_http_ticket_api_handler(ngx_http_request_t *r);

/* The router's method of r (TS_METHOD_OTHER for one it does not know). */
ts_method_e ngx_http_ticket_method(ngx_http_request_t *r);

/* ngx_http_ticket_auth.c: the request's ctx with its token verified. */
ngx_http_ticket_ctx_t *ngx_http_ticket_auth(ngx_http_request_t *r);

/* A bearer token's signature and expiry (cached per worker): NGX_OK and
 * claims filled, or NGX_DECLINED. */
ngx_int_t ngx_http_ticket_verify(ngx_http_ticket_main_conf_t *tmcf,
    u_char *token, size_t len, ts_claims_t *claims);

/* This thread's store connection, opened on first use; NULL with err. */
ts_store_t *ngx_http_ticket_thread_store(ngx_http_ticket_main_conf_t *tmcf,
    char *err, size_t errlen);
/* Run a thread-pool task's work, leaving no OpenSSL state in the thread. */
void ngx_http_ticket_thread_run(void (*work)(void *data, ngx_log_t *log),
    void *data, ngx_log_t *log);

/* ngx_http_ticket_ws*.c: WebSocket + Engine.IO/Socket.IO
 * ("ticket_socketio"); the files' internals are in ngx_http_ticket_ws.h */
char *ngx_http_ticket_socketio(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
/* An event frame from ticketd: deliver it to this worker's sockets. */
void ngx_http_ticket_ws_deliver(const char *payload, size_t len);
/* Close every socket with 1001 (the worker is going away). */
void ngx_http_ticket_ws_shutdown(void);
/* The link to ticketd is back: re-authorise every socket from the store
 * (rights pushes may have been missed). */
void ngx_http_ticket_ws_resync(void);
/* The link is up: this worker's staff viewers are announced to ticketd. */
void ngx_http_ticket_ws_views_announce(void);
char *ngx_http_ticket_socketio_event_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_ticket_ws_users.c: sockets per user across the workers. */
char *ngx_http_ticket_ws_user_sockets(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
/* Defaults, and the shared zone when ticket_socketio is used. */
char *ngx_http_ticket_ws_users_conf(ngx_conf_t *cf,
    ngx_http_ticket_main_conf_t *tmcf);
/* Take a place for a socket of the user: NGX_OK, NGX_DECLINED at the
 * limit, NGX_ERROR when the zone is full (logged). */
ngx_int_t ngx_http_ticket_ws_users_acquire(ngx_http_ticket_main_conf_t *tmcf,
    const char *user_id);
/* Give back a place taken by ngx_http_ticket_ws_users_acquire(). */
void ngx_http_ticket_ws_users_release(ngx_http_ticket_main_conf_t *tmcf,
    const char *user_id);
ngx_int_t ngx_http_ticket_add_variables(ngx_conf_t *cf);

/* ngx_http_ticket_openapi.c: GET/HEAD /api/openapi.json from memory. */
ngx_int_t ngx_http_ticket_openapi_send(ngx_http_request_t *r);

/* ngx_http_ticket_cors.c */
ngx_int_t ngx_http_ticket_cors_init(ngx_conf_t *cf);
ngx_int_t ngx_http_ticket_cors_preflight(ngx_http_request_t *r);
char *ngx_http_ticket_cors_origins(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_ticket_link.c: this worker's link to ticketd. */
/* config: the hello's "config" member (ticketd checks it), or "" */
ngx_int_t ngx_http_ticket_link_start(ngx_cycle_t *cycle, ngx_str_t *path,
    ngx_str_t *config);
void ngx_http_ticket_link_stop(void);
void ngx_http_ticket_link_send(const u_char *frames, size_t len);
/* Frame one JSON message and send it. */
void ngx_http_ticket_link_send_message(const char *json, size_t len);
const char *ngx_http_ticket_link_state(void);

#endif /* NGX_HTTP_TICKET_MODULE_H */

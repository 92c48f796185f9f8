/*
 * ngx_http_ticket_module: directives, configuration, and process hooks.
 *
 * The REST handler lives in ngx_http_ticket_api.c, token checks and the
 * $ticket_user_* variables in ngx_http_ticket_auth.c, CORS in
 * ngx_http_ticket_cors.c, the link to ticketd in ngx_http_ticket_link.c,
 * the WebSocket/Socket.IO endpoint in ngx_http_ticket_ws.c (its rooms and
 * event delivery in ngx_http_ticket_ws_rooms.c, its store checks and
 * rights pushes in ngx_http_ticket_ws_rights.c, its sockets per user
 * across the workers in ngx_http_ticket_ws_users.c), JSON responses and
 * header helpers in ngx_http_ticket_reply.c, the ticket_metrics handler
 * and its counters in ngx_http_ticket_metrics.c, and the rate limiter, a
 * module of its own, in ngx_http_ticket_limit.c.
 */

#include "ts_cache.h"
#include "ts_store.h"
#include "ts_wire.h"
#include "ngx_http_ticket_module.h"
#include "ngx_http_ticket_metrics.h"

#define NGX_HTTP_TICKET_MIN_SECRET  32

static void *ngx_http_ticket_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_ticket_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_ticket_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ticket_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_ticket_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ticket_init_process(ngx_cycle_t *cycle);
static void ngx_http_ticket_exit_process(ngx_cycle_t *cycle);

static char *ngx_http_ticket_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ticket_store(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ticket_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ticket_daemon(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ticket_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ticket_redis_password_file(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_ticket_read_secret(ngx_conf_t *cf, ngx_str_t *path,
    const char *what, size_t max, ngx_uint_t one_line, ngx_str_t *out);
static char *ngx_http_ticket_redis_init(ngx_conf_t *cf,
    ngx_http_ticket_main_conf_t *tmcf);
static char *ngx_http_ticket_fingerprint(ngx_conf_t *cf,
    ngx_http_ticket_main_conf_t *tmcf);
static char *ngx_http_ticket_sla(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ticket_lockout(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ticket_socketio_ping(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);

/* libxcrypt accepts 4..31; below 10 is for tests, not production */
static ngx_conf_num_bounds_t  ngx_http_ticket_bcrypt_cost_bounds = {
    ngx_http_ticket_num_bounds, 4, 31
};

/* a bound, not a quota: a thread is sent whole after every comment */
static ngx_conf_num_bounds_t  ngx_http_ticket_max_comments_bounds = {
    ngx_http_ticket_num_bounds, 1, 100000
};


static ngx_command_t  ngx_http_ticket_commands[] = {

    { ngx_string("ticket_store"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ticket_store,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ticket_jwt_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ticket_secret_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ticket_jwt_lifetime"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ticket_main_conf_t, jwt_lifetime),
      NULL },

    { ngx_string("ticket_bcrypt_cost"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ticket_main_conf_t, bcrypt_cost),
      &ngx_http_ticket_bcrypt_cost_bounds },

    { ngx_string("ticket_login_lockout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_ticket_lockout,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ticket_max_comments"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ticket_main_conf_t, max_comments),
      &ngx_http_ticket_max_comments_bounds },

    /* read by the workers (a priority change sets the dates) and by
     * ticketd (triage sets them), with the same parser (ts_sla.h) */
    { ngx_string("ticket_sla"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_ticket_sla,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ticket_main_conf_t, sla),
      NULL },

    { ngx_string("ticket_sla_warning"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ticket_sla,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ticket_main_conf_t, sla_warning),
      NULL },

    { ngx_string("ticket_daemon"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ticket_daemon,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ticket_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ticket_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ticket_redis_password_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ticket_redis_password_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ticket_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ticket_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ticket_socketio"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ticket_socketio,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ticket_socketio_ping"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_ticket_socketio_ping,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ticket_socketio_max_message"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ticket_loc_conf_t, ws_max_message),
      NULL },

    { ngx_string("ticket_socketio_send_buffer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ticket_loc_conf_t, ws_send_buffer),
      NULL },

    { ngx_string("ticket_socketio_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ticket_loc_conf_t, ws_connect_timeout),
      NULL },

    { ngx_string("ticket_socketio_event_rate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_ticket_socketio_event_rate,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ticket_socketio_user_sockets"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_ticket_ws_user_sockets,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ticket_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ticket_loc_conf_t, pool_name),
      NULL },

    { ngx_string("ticket_password_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ticket_loc_conf_t, pw_pool_name),
      NULL },

    { ngx_string("ticket_max_body"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ticket_loc_conf_t, max_body),
      NULL },

    { ngx_string("ticket_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ticket_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ticket_cors_origins"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ticket_cors_origins,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ticket_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_ticket_postconfiguration,     /* postconfiguration */

    ngx_http_ticket_create_main_conf,      /* create main configuration */
    ngx_http_ticket_init_main_conf,        /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ticket_create_loc_conf,       /* create location configuration */
    ngx_http_ticket_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_http_ticket_module = {
    NGX_MODULE_V1,
    &ngx_http_ticket_module_ctx,           /* module context */
    ngx_http_ticket_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_ticket_init_process,          /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_ticket_exit_process,          /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_ticket_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ticket_main_conf_t  *tmcf;

    tmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ticket_main_conf_t));
    if (tmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *     tmcf->store = { 0, NULL };
     *     tmcf->jwt_secret = { 0, NULL };
     *     tmcf->daemon = { 0, NULL };
     */

    tmcf->jwt_lifetime = NGX_CONF_UNSET;
    tmcf->bcrypt_cost = NGX_CONF_UNSET;
    tmcf->lockout_failures = NGX_CONF_UNSET;
    tmcf->lockout_window = NGX_CONF_UNSET;
    tmcf->lockout_time = NGX_CONF_UNSET;
    tmcf->ws_user_sockets = NGX_CONF_UNSET_UINT;
    tmcf->ws_users_size = NGX_CONF_UNSET_SIZE;
    tmcf->max_comments = NGX_CONF_UNSET;
    tmcf->sla = NGX_CONF_UNSET;
    tmcf->sla_warning = NGX_CONF_UNSET;
    ts_sla_cfg_default(&tmcf->api.sla);

    return tmcf;
}


static char *
ngx_http_ticket_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_ticket_main_conf_t  *tmcf = conf;

    ngx_conf_init_value(tmcf->jwt_lifetime, 7 * 24 * 3600);
    ngx_conf_init_value(tmcf->bcrypt_cost, 10);
    ngx_conf_init_value(tmcf->lockout_failures, 5);
    ngx_conf_init_value(tmcf->lockout_window, 15 * 60);
    ngx_conf_init_value(tmcf->lockout_time, 15 * 60);
    ngx_conf_init_value(tmcf->max_comments, TS_MAX_COMMENTS_DEFAULT);

    if (tmcf->jwt_lifetime < 60) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ticket_jwt_lifetime\" must be at least 60s");
        return NGX_CONF_ERROR;
    }

    tmcf->api.jwt_secret = tmcf->jwt_secret.data;
    tmcf->api.jwt_secret_len = tmcf->jwt_secret.len;
    tmcf->api.token_lifetime_s = tmcf->jwt_lifetime;
    tmcf->api.bcrypt_cost = (int) tmcf->bcrypt_cost;
    tmcf->api.lockout_failures = (int) tmcf->lockout_failures;
    tmcf->api.lockout_window_ms = (int64_t) tmcf->lockout_window * 1000;
    tmcf->api.lockout_ms = (int64_t) tmcf->lockout_time * 1000;
    tmcf->api.max_comments = (int64_t) tmcf->max_comments;

    if (ngx_http_ticket_redis_init(cf, tmcf) != NGX_CONF_OK
        || ngx_http_ticket_fingerprint(cf, tmcf) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }
    return ngx_http_ticket_ws_users_conf(cf, tmcf);
}


/*
 * The cache's MAC key and the URL the threads connect with.  The key is
 * derived from the JWT secret as ticketd derives it (ts_wire.h), so pages
 * either one writes verify in the other; without a secret there is no
 * key and no cache (the module refuses ticket_api without one anyway).
 */
static char *
ngx_http_ticket_redis_init(ngx_conf_t *cf, ngx_http_ticket_main_conf_t *tmcf)
{
    u_char  *url, *p;

    if (tmcf->redis.len == 0) {
        if (tmcf->redis_password.len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"ticket_redis_password_file\" needs "
                               "\"ticket_redis\"");
            return NGX_CONF_ERROR;
        }
        return NGX_CONF_OK;
    }
    if (tmcf->jwt_secret.len == 0) {
        ngx_str_set(&tmcf->redis, "");
        return NGX_CONF_OK;
    }
    ts_wire_derive(tmcf->jwt_secret.data, tmcf->jwt_secret.len,
                   TS_WIRE_LABEL_CACHE, tmcf->cache_key);

    if (tmcf->redis_password.len == 0) {
        return NGX_CONF_OK;
    }

    /* "redis://" ":" password "@" rest: ts_redis_url_parse takes the
     * password up to the last '@', whatever it holds */
    url = ngx_pnalloc(cf->pool, tmcf->redis.len + tmcf->redis_password.len
                                + 3);
    if (url == NULL) {
        return NGX_CONF_ERROR;
    }
    p = ngx_cpymem(url, "redis://:", 9);
    p = ngx_cpymem(p, tmcf->redis_password.data, tmcf->redis_password.len);
    *p++ = '@';
    p = ngx_cpymem(p, tmcf->redis.data + 8, tmcf->redis.len - 8);
    *p = '\0';
    tmcf->redis.data = url;
    tmcf->redis.len = p - url;
    return NGX_CONF_OK;
}


/*
 * What the worker tells ticketd in hello so both know they read the same
 * configuration (ts_wire_fingerprint): keyed hashes of the store URI and
 * the socket path as resolved here (absolute), and of the secret itself,
 * which never travels.  ticketd -c resolves them from the same file.
 */
static char *
ngx_http_ticket_fingerprint(ngx_conf_t *cf, ngx_http_ticket_main_conf_t *tmcf)
{
    u_char  key[TS_WIRE_KEY_LEN], *store, *sock, *p;
    char    fp[3][TS_WIRE_FP_HEX + 1];
    size_t  len;

    if (tmcf->jwt_secret.len == 0 || tmcf->daemon.len == 0) {
        ngx_str_set(&tmcf->fingerprint, "");
        return NGX_CONF_OK;
    }
    store = ngx_pnalloc(cf->pool, tmcf->store.len + 1);
    sock = ngx_pnalloc(cf->pool, tmcf->daemon.len + 1);
    len = sizeof("\"config\":{\"store\":\"\",\"socket\":\"\",\"secret\":\"\"}")
          - 1 + 3 * TS_WIRE_FP_HEX;
    p = ngx_pnalloc(cf->pool, len);
    if (store == NULL || sock == NULL || p == NULL) {
        return NGX_CONF_ERROR;
    }
    ngx_cpystrn(store, tmcf->store.data, tmcf->store.len + 1);
    ngx_cpystrn(sock, tmcf->daemon.data, tmcf->daemon.len + 1);

    ts_wire_derive(tmcf->jwt_secret.data, tmcf->jwt_secret.len,
                   TS_WIRE_LABEL_CONFIG, key);
    ts_wire_fingerprint(key, "store", (char *) store, fp[0]);
    ts_wire_fingerprint(key, "socket", (char *) sock, fp[1]);
    ts_wire_fingerprint(key, "secret", "", fp[2]);
    ngx_explicit_memzero(key, sizeof(key));

    tmcf->fingerprint.data = p;
    tmcf->fingerprint.len = ngx_sprintf(p, "\"config\":{\"store\":\"%s\","
                                        "\"socket\":\"%s\",\"secret\":"
                                        "\"%s\"}", fp[0], fp[1], fp[2])
                            - p;
    return NGX_CONF_OK;
}


static void *
ngx_http_ticket_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ticket_loc_conf_t  *tlcf;

    tlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ticket_loc_conf_t));
    if (tlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *     tlcf->pool_name = { 0, NULL };
     *     tlcf->pool = NULL;
     *     tlcf->pw_pool_name = { 0, NULL };
     *     tlcf->pw_pool = NULL;
     */

    tlcf->api = NGX_CONF_UNSET;
    tlcf->max_body = NGX_CONF_UNSET_SIZE;
    tlcf->cors_origins = NGX_CONF_UNSET_PTR;
    tlcf->cors_any = NGX_CONF_UNSET;
    tlcf->socketio = NGX_CONF_UNSET;
    tlcf->ping_interval = NGX_CONF_UNSET_MSEC;
    tlcf->ping_timeout = NGX_CONF_UNSET_MSEC;
    tlcf->ws_max_message = NGX_CONF_UNSET_SIZE;
    tlcf->ws_send_buffer = NGX_CONF_UNSET_SIZE;
    tlcf->ws_connect_timeout = NGX_CONF_UNSET_MSEC;
    tlcf->ws_event_rate = NGX_CONF_UNSET_UINT;
    tlcf->ws_event_burst = NGX_CONF_UNSET_UINT;

    return tlcf;
}


static char *
ngx_http_ticket_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ticket_loc_conf_t  *prev = parent;
    ngx_http_ticket_loc_conf_t  *conf = child;

    ngx_http_ticket_main_conf_t  *tmcf;

    ngx_conf_merge_value(conf->api, prev->api, 0);
    ngx_conf_merge_str_value(conf->pool_name, prev->pool_name, "default");
    ngx_conf_merge_str_value(conf->pw_pool_name, prev->pw_pool_name, "");
    ngx_conf_merge_size_value(conf->max_body, prev->max_body,
                              TS_API_MAX_BODY);
    ngx_conf_merge_ptr_value(conf->cors_origins, prev->cors_origins, NULL);
    ngx_conf_merge_value(conf->cors_any, prev->cors_any, 0);
    ngx_conf_merge_value(conf->socketio, prev->socketio, 0);
    ngx_conf_merge_msec_value(conf->ping_interval, prev->ping_interval,
                              25000);
    ngx_conf_merge_msec_value(conf->ping_timeout, prev->ping_timeout, 20000);
    ngx_conf_merge_size_value(conf->ws_max_message, prev->ws_max_message,
                              1024 * 1024);
    ngx_conf_merge_size_value(conf->ws_send_buffer, prev->ws_send_buffer,
                              1024 * 1024);

    if (conf->ws_max_message < 1024
        || conf->ws_max_message > 64 * 1024 * 1024)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ticket_socketio_max_message\" must be between "
                           "1k and 64m");
        return NGX_CONF_ERROR;
    }
    ngx_conf_merge_msec_value(conf->ws_connect_timeout,
                              prev->ws_connect_timeout, 10000);
    if (conf->ws_event_rate == NGX_CONF_UNSET_UINT) {
        conf->ws_event_rate = prev->ws_event_rate;
        conf->ws_event_burst = prev->ws_event_burst;
    }
    ngx_conf_merge_uint_value(conf->ws_event_rate, prev->ws_event_rate, 20);
    ngx_conf_merge_uint_value(conf->ws_event_burst, prev->ws_event_burst,
                              100);
    if (conf->ws_connect_timeout < 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ticket_socketio_connect_timeout\" must be at "
                           "least 1s");
        return NGX_CONF_ERROR;
    }
    if (conf->ws_send_buffer < 16 * 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ticket_socketio_send_buffer\" must be at "
                           "least 16k");
        return NGX_CONF_ERROR;
    }

    if (conf->max_body == 0 || conf->max_body > 16 * 1024 * 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ticket_max_body\" must be between 1 and 16m");
        return NGX_CONF_ERROR;
    }

    if (!conf->api && !conf->socketio) {
        return NGX_CONF_OK;
    }

    tmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ticket_module);

    if (tmcf->store.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ticket_api\" and \"ticket_socketio\" need "
                           "\"ticket_store\" at the http level");
        return NGX_CONF_ERROR;
    }
    if (tmcf->jwt_secret.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ticket_api\" and \"ticket_socketio\" need "
                           "\"ticket_jwt_secret_file\" at the http level");
        return NGX_CONF_ERROR;
    }

    /* adds the pool if it is not declared yet; ngx_thread_pool's own
     * init_conf then rejects a name no "thread_pool" directive defines */
    conf->pool = ngx_thread_pool_add(cf, &conf->pool_name);
    if (conf->pool == NULL) {
        return NGX_CONF_ERROR;
    }

    /* bcrypt routes get their own pool when one is named, so a burst of
     * logins never delays the store work of every other route */
    if (conf->pw_pool_name.len == 0) {
        conf->pw_pool = conf->pool;
    } else {
        conf->pw_pool = ngx_thread_pool_add(cf, &conf->pw_pool_name);
        if (conf->pw_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_ticket_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ticket_loc_conf_t  *tlcf = conf;

    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_ticket_main_conf_t  *tmcf;

    if (tlcf->api != NGX_CONF_UNSET) {
        return "is duplicate";
    }
    tlcf->api = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ticket_api_handler;

    tmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ticket_module);
    tmcf->used = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_ticket_store(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ticket_main_conf_t  *tmcf = conf;

    ngx_str_t  *value, path;

    if (tmcf->store.data) {
        return "is duplicate";
    }
    value = cf->args->elts;

    if (ngx_strncmp(value[1].data, "sqlite:", 7) == 0) {
        path.data = value[1].data + 7;
        path.len = value[1].len - 7;
        if (path.len == 0) {
            return "needs a file path after \"sqlite:\"";
        }
        /* a relative path is relative to the prefix, like other files */
        if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
        tmcf->store.len = sizeof("sqlite:") - 1 + path.len;
        tmcf->store.data = ngx_pnalloc(cf->pool, tmcf->store.len + 1);
        if (tmcf->store.data == NULL) {
            return NGX_CONF_ERROR;
        }
        ngx_sprintf(tmcf->store.data, "sqlite:%V%Z", &path);
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value[1].data, "mongodb://", 10) == 0
        || ngx_strncmp(value[1].data, "mongodb+srv://", 14) == 0)
    {
        /* parsed here so `nginx -t` reports a bad URI; connections are
         * made later, per worker thread (ts_store_mongo.c) */
        char  err[512];

        if (ts_store_uri_check((const char *) value[1].data, err,
                               sizeof(err))
            != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid MongoDB URI in \"ticket_store\": %s",
                               err);
            return NGX_CONF_ERROR;
        }
        tmcf->store = value[1];          /* NUL-terminated by the parser */
        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid \"ticket_store\" \"%V\": expected "
                       "\"sqlite:/path/to/file.db\" or "
                       "\"mongodb://host/database\"", &value[1]);
    return NGX_CONF_ERROR;
}


/* ticket_redis redis://[:password@]host[:port][/db] | off */
static char *
ngx_http_ticket_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ticket_main_conf_t  *tmcf = conf;

    ngx_str_t       *value;
    ts_redis_url_t   url;
    char             err[128];

    if (tmcf->redis.data != NULL) {
        return "is duplicate";
    }
    value = cf->args->elts;
    if (ngx_strcmp(value[1].data, "off") == 0) {
        ngx_str_set(&tmcf->redis, "");
        return NGX_CONF_OK;
    }
    /* value[1] is NUL-terminated: ngx_conf_file adds one to every word */
    if (ts_redis_url_parse((const char *) value[1].data, &url, err,
                           sizeof(err)) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"ticket_redis\" \"%V\": %s",
                           &value[1], err);
        return NGX_CONF_ERROR;
    }
    if (url.password[0] != '\0') {
        ngx_explicit_memzero(&url, sizeof(url));
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ticket_redis\" takes no password: put it in "
                           "a file only nginx can read and name it with "
                           "\"ticket_redis_password_file\"");
        return NGX_CONF_ERROR;
    }
    tmcf->redis = value[1];
    return NGX_CONF_OK;
}


/* ticket_redis_password_file path: the Redis AUTH password (first line) */
static char *
ngx_http_ticket_redis_password_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ticket_main_conf_t  *tmcf = conf;

    ngx_str_t  *value;

    if (tmcf->redis_password.data != NULL) {
        return "is duplicate";
    }
    value = cf->args->elts;
    if (ngx_http_ticket_read_secret(cf, &value[1], "Redis password", 127,
                                    1, &tmcf->redis_password)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }
    if (tmcf->redis_password.len == 0
        || ngx_strlchr(tmcf->redis_password.data,
                       tmcf->redis_password.data + tmcf->redis_password.len,
                       '\0') != NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the Redis password in \"%V\" is empty or holds "
                           "a NUL byte", &value[1]);
        return NGX_CONF_ERROR;
    }
    return NGX_CONF_OK;
}


static char *
ngx_http_ticket_secret_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ticket_main_conf_t  *tmcf = conf;

    ngx_str_t  *value;

    if (tmcf->jwt_secret.data) {
        return "is duplicate";
    }
    value = cf->args->elts;
    if (ngx_http_ticket_read_secret(cf, &value[1], "JWT secret", 4096, 0,
                                    &tmcf->jwt_secret)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }
    if (tmcf->jwt_secret.len < NGX_HTTP_TICKET_MIN_SECRET) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "JWT secret in \"%V\" is shorter than %d bytes",
                           &value[1], NGX_HTTP_TICKET_MIN_SECRET);
        return NGX_CONF_ERROR;
    }
    return NGX_CONF_OK;
}


/*
 * A secret from the file at path (relative to the prefix), at most max
 * bytes, a trailing newline from "echo secret > file" not part of it (the
 * rule ticketd's --jwt-secret-file follows too: both derive the same
 * keys).  With one_line (a password), CR or LF inside is refused.
 */
static ngx_int_t
ngx_http_ticket_read_secret(ngx_conf_t *cf, ngx_str_t *path,
    const char *what, size_t max, ngx_uint_t one_line, ngx_str_t *out)
{
    ngx_str_t         name;
    ngx_file_t        file;
    ngx_file_info_t   fi;
    ssize_t           n;
    size_t            size;
    u_char           *buf;

    name = *path;
    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = name;
    file.log = cf->log;
    file.fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%s\" failed", name.data);
        return NGX_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%s\" failed", name.data);
        goto failed;
    }
    size = (size_t) ngx_file_size(&fi);
    if (size > max + 2) {                   /* + "\r\n" */
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s file \"%s\" is larger than %uz bytes",
                           what, name.data, max);
        goto failed;
    }

    buf = ngx_pnalloc(cf->pool, size + 1);
    if (buf == NULL) {
        goto failed;
    }
    n = ngx_read_file(&file, buf, size, 0);
    if (n == NGX_ERROR) {
        goto failed;
    }

    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }
    if ((size_t) n > max) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s file \"%s\" is larger than %uz bytes",
                           what, name.data, max);
        goto failed;
    }
    if (one_line
        && (ngx_strlchr(buf, buf + n, '\n') || ngx_strlchr(buf, buf + n, '\r')))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s in \"%s\" must be one line", what, name.data);
        goto failed;
    }
    buf[n] = '\0';

    out->data = buf;
    out->len = n;
    ngx_close_file(file.fd);
    return NGX_OK;

failed:
    ngx_close_file(file.fd);
    return NGX_ERROR;
}


static char *
ngx_http_ticket_daemon(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ticket_main_conf_t  *tmcf = conf;

    ngx_str_t  *value, path;

    if (tmcf->daemon.data) {
        return "is duplicate";
    }
    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        ngx_str_set(&tmcf->daemon, "");
        return NGX_CONF_OK;
    }
    if (ngx_strncmp(value[1].data, "unix:", 5) != 0 || value[1].len == 5) {
        return "must be \"unix:/path/to/ticketd.sock\" or \"off\"";
    }

    path.data = value[1].data + 5;
    path.len = value[1].len - 5;
    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }
    if (path.len >= sizeof(((struct sockaddr_un *) 0)->sun_path)) {
        return "has a socket path that is too long";
    }
    tmcf->daemon = path;
    return NGX_CONF_OK;
}


/*
 * ticket_sla High=1h/8h Medium=4h/24h Low=24h/72h;  (priorities not named
 * keep their defaults)
 * ticket_sla_warning 80% | 30m;
 */
static char *
ngx_http_ticket_sla(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ticket_main_conf_t  *tmcf = conf;
    ngx_flag_t                   *seen;
    ngx_str_t                    *value;
    ngx_uint_t                    i;
    char                          err[128];

    seen = (ngx_flag_t *) ((u_char *) conf + cmd->offset);
    if (*seen != NGX_CONF_UNSET) {
        return "is duplicate";
    }
    value = cf->args->elts;
    for (i = 1; i < cf->args->nelts; i++) {
        /* value[i] is NUL-terminated: ngx_conf_file adds one */
        if ((cmd->offset == offsetof(ngx_http_ticket_main_conf_t, sla)
             ? ts_sla_cfg_target(&tmcf->api.sla, (const char *) value[i].data,
                                 err)
             : ts_sla_cfg_warning(&tmcf->api.sla,
                                  (const char *) value[i].data, err))
            != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"%V\": %s", &cmd->name, err);
            return NGX_CONF_ERROR;
        }
    }
    *seen = 1;
    return NGX_CONF_OK;
}


static char *
ngx_http_ticket_lockout(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ticket_main_conf_t  *tmcf = conf;

    ngx_str_t   *value, s;
    ngx_uint_t   i;
    ngx_int_t    n;
    time_t       t;

    if (tmcf->lockout_failures != NGX_CONF_UNSET) {
        return "is duplicate";
    }
    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        tmcf->lockout_failures = 0;
        return NGX_CONF_OK;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "failures=", 9) == 0) {
            n = ngx_atoi(value[i].data + 9, value[i].len - 9);
            if (n < 1 || n > 1000) {
                goto invalid;
            }
            tmcf->lockout_failures = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "window=", 7) == 0
            || ngx_strncmp(value[i].data, "lock=", 5) == 0)
        {
            s.data = (u_char *) ngx_strchr(value[i].data, '=') + 1;
            s.len = value[i].data + value[i].len - s.data;
            t = ngx_parse_time(&s, 1);
            if (t == (time_t) NGX_ERROR || t < 1) {
                goto invalid;
            }
            if (value[i].data[0] == 'w') {
                tmcf->lockout_window = t;
            } else {
                tmcf->lockout_time = t;
            }
            continue;
        }

        goto invalid;
    }

    if (tmcf->lockout_failures == NGX_CONF_UNSET) {
        tmcf->lockout_failures = 5;
    }
    return NGX_CONF_OK;

invalid:
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" of \"ticket_login_lockout\";"
                       " expected failures=1..1000, window=<time>, "
                       "lock=<time> or \"off\"", &value[i]);
    return NGX_CONF_ERROR;
}


/*
 * The ngx_conf_num_bounds_t post handler of a number directive: nginx's
 * own (ngx_conf_check_num_bounds) says "value must be between ..." without
 * the directive's name; this one's answer is logged after the name.
 */
char *
ngx_http_ticket_num_bounds(ngx_conf_t *cf, void *post, void *data)
{
    ngx_conf_num_bounds_t  *bounds = post;
    ngx_int_t              *np = data;

    u_char  *msg;

    if (*np >= bounds->low && *np <= bounds->high) {
        return NGX_CONF_OK;
    }
    msg = ngx_pnalloc(cf->pool, sizeof("must be between  and ")
                                + 2 * NGX_INT_T_LEN);
    if (msg == NULL) {
        return NGX_CONF_ERROR;
    }
    ngx_sprintf(msg, "must be between %i and %i%Z", bounds->low,
                bounds->high);
    return (char *) msg;
}


static char *
ngx_http_ticket_socketio_ping(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ticket_loc_conf_t  *tlcf = conf;

    ngx_str_t   *value;
    ngx_msec_t   interval, timeout;

    if (tlcf->ping_interval != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }
    value = cf->args->elts;
    interval = ngx_parse_time(&value[1], 0);
    timeout = ngx_parse_time(&value[2], 0);
    if (interval == (ngx_msec_t) NGX_ERROR || timeout == (ngx_msec_t) NGX_ERROR
        || interval < 1000 || timeout < 1000)
    {
        return "wants two times of at least 1s: the ping interval and "
               "the pong timeout";
    }
    tlcf->ping_interval = interval;
    tlcf->ping_timeout = timeout;
    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ticket_postconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_ticket_add_variables(cf) != NGX_OK) {
        return NGX_ERROR;
    }
    if (ngx_http_ticket_metrics_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }
    return ngx_http_ticket_cors_init(cf);
}


static ngx_int_t
ngx_http_ticket_init_process(ngx_cycle_t *cycle)
{
    ngx_http_ticket_main_conf_t  *tmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    ngx_http_ticket_metrics_init_process(cycle);

    tmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_ticket_module);
    if (tmcf == NULL || tmcf->daemon.len == 0 || !tmcf->used) {
        return NGX_OK;
    }

    return ngx_http_ticket_link_start(cycle, &tmcf->daemon,
                                      &tmcf->fingerprint);
}


static void
ngx_http_ticket_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_ticket_ws_shutdown();
    ngx_http_ticket_link_stop();
}

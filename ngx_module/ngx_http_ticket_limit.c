
/*
 * ngx_http_ticket_limit_module: a fixed-window request limiter that takes
 * over from express-rate-limit.
 *
 * It owns the "ticket_limit_zone" and "ticket_limit" directives, one
 * shared-memory zone per ticket_limit_zone (an rbtree of per-key counters
 * plus a queue ordered by window start), and a PREACCESS handler that
 * counts each client request once, adds the IETF draft-6 RateLimit-*
 * headers, and answers 429 in JSON once a key goes over its limit.  It
 * is a module of its own in one file (a little over 1 000 lines), as
 * nginx's limit_req is: zone, directives and handler share one context
 * and read best in one place.
 *
 * Layout follows ngx_http_limit_req_module.c: the zone's process-local
 * context lives in the configuration, its tree lives in the slab pool and
 * is inherited across "nginx -s reload" by init_zone.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ticket_metrics.h"
#include "ngx_http_ticket_reply.h"


/* keys are stored with a one-byte length; longer keys are not limited */
#define NGX_HTTP_TICKET_LIMIT_KEY_MAX     255

/* expired nodes removed from the queue tail on each request */
#define NGX_HTTP_TICKET_LIMIT_EXPIRE      2

/* live nodes evicted from the queue tail when the slab pool is full */
#define NGX_HTTP_TICKET_LIMIT_EVICT       3


/*
 * One counter per key, in shared memory; the first bytes overlay the
 * "color" field of its ngx_rbtree_node_t, like ngx_http_limit_req_node_t.
 */
typedef struct {
    u_char                        color;
    u_char                        len;
    u_short                       dummy;
    ngx_queue_t                   queue;
    ngx_msec_t                    start;    /* ngx_current_msec at window
                                               start */
    ngx_uint_t                    count;    /* requests in this window,
                                               saturates at limit + 1 */
    u_char                        data[1];
} ngx_http_ticket_limit_node_t;


typedef struct {
    ngx_rbtree_t                  rbtree;
    ngx_rbtree_node_t             sentinel;

    /*
     * Nodes in window-start order, newest at the head.  All windows of a
     * zone have the same length, so the tail is always the window that
     * ends first: expiry stops at the first live node it meets, and
     * eviction under memory pressure drops the counters that would have
     * reset soonest anyway.
     */
    ngx_queue_t                   queue;

    ngx_atomic_t                  rejected;   /* 429s, for ticket_metrics */
} ngx_http_ticket_limit_shctx_t;


/* per zone, process-local (lives in the configuration pool) */
typedef struct {
    ngx_http_ticket_limit_shctx_t  *sh;
    ngx_slab_pool_t                *shpool;
    ngx_http_complex_value_t        key;
    time_t                          window;     /* seconds */
    ngx_msec_t                      window_ms;
    ngx_uint_t                      limit;
} ngx_http_ticket_limit_ctx_t;


/* a "ticket_limit" line, kept to report zones that are never declared */
typedef struct {
    ngx_shm_zone_t                 *shm_zone;
    ngx_str_t                       file;
    ngx_uint_t                      line;
} ngx_http_ticket_limit_use_t;


typedef struct {
    ngx_array_t                     uses;   /* ngx_http_ticket_limit_use_t */
} ngx_http_ticket_limit_main_conf_t;


typedef struct {
    ngx_shm_zone_t                 *shm_zone;  /* NULL for "off" */
} ngx_http_ticket_limit_loc_conf_t;


/*
 * Exists once the main request has been counted.  It is reached through
 * a pool cleanup as well as r->ctx because internal redirects zero r->ctx
 * and the request must not be counted again in the new location.
 */
typedef struct {
    ngx_uint_t                      counted;
} ngx_http_ticket_limit_req_ctx_t;


static ngx_int_t ngx_http_ticket_limit_handler(ngx_http_request_t *r);
static ngx_http_ticket_limit_req_ctx_t *ngx_http_ticket_limit_get_ctx(
    ngx_http_request_t *r);
static void ngx_http_ticket_limit_cleanup(void *data);
static ngx_int_t ngx_http_ticket_limit_lookup(ngx_http_ticket_limit_ctx_t *ctx,
    uint32_t hash, u_char *data, size_t len, ngx_uint_t *count,
    time_t *reset);
static void ngx_http_ticket_limit_expire(ngx_http_ticket_limit_ctx_t *ctx,
    ngx_msec_t now, ngx_uint_t evict);
static void ngx_http_ticket_limit_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_http_ticket_limit_add_headers(ngx_http_request_t *r,
    ngx_http_ticket_limit_ctx_t *ctx, ngx_uint_t count, time_t reset);
static ngx_int_t ngx_http_ticket_limit_reject(ngx_http_request_t *r,
    time_t reset);

static ngx_int_t ngx_http_ticket_limit_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void *ngx_http_ticket_limit_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ticket_limit_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ticket_limit_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_ticket_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ticket_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_ticket_limit_init(ngx_conf_t *cf);


static ngx_str_t  ngx_http_ticket_limit_default_key =
    ngx_string("$binary_remote_addr");



static ngx_command_t  ngx_http_ticket_limit_commands[] = {

    { ngx_string("ticket_limit_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_ticket_limit_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ticket_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ticket_limit,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ticket_limit_module_ctx = {
    NULL,                                    /* preconfiguration */
    ngx_http_ticket_limit_init,              /* postconfiguration */

    ngx_http_ticket_limit_create_main_conf,  /* create main configuration */
    NULL,                                    /* init main configuration */

    NULL,                                    /* create server configuration */
    NULL,                                    /* merge server configuration */

    ngx_http_ticket_limit_create_loc_conf,   /* create location configuration */
    ngx_http_ticket_limit_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_ticket_limit_module = {
    NGX_MODULE_V1,
    &ngx_http_ticket_limit_module_ctx,       /* module context */
    ngx_http_ticket_limit_commands,          /* module directives */
    NGX_HTTP_MODULE,                         /* module type */
    NULL,                                    /* init master */
    NULL,                                    /* init module */
    NULL,                                    /* init process */
    NULL,                                    /* init thread */
    NULL,                                    /* exit thread */
    NULL,                                    /* exit process */
    NULL,                                    /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_ticket_limit_handler(ngx_http_request_t *r)
{
    time_t                             reset;
    uint32_t                           hash;
    ngx_int_t                          rc;
    ngx_str_t                          key;
    ngx_uint_t                         count;
    ngx_pool_cleanup_t                *cln;
    ngx_http_ticket_limit_ctx_t       *ctx;
    ngx_http_ticket_limit_req_ctx_t   *rctx;
    ngx_http_ticket_limit_loc_conf_t  *lcf;

    /* a subrequest is part of its parent, which was counted already */

    if (r != r->main) {
        return NGX_DECLINED;
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_ticket_limit_module);

    if (lcf->shm_zone == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_ticket_limit_get_ctx(r) != NULL) {
        return NGX_DECLINED;
    }

    /*
     * Browsers send preflights on their own before the real request;
     * counting them would halve the budget of every cross-origin client.
     */

    if (ngx_http_ticket_is_preflight(r)) {
        return NGX_DECLINED;
    }

    ctx = lcf->shm_zone->data;

    if (ngx_http_complex_value(r, &ctx->key, &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (key.len == 0) {
        return NGX_DECLINED;
    }

    if (key.len > NGX_HTTP_TICKET_LIMIT_KEY_MAX) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "the value of the \"%V\" key is more than %d bytes, "
                      "not limited by ticket_limit_zone \"%V\"",
                      &ctx->key.value, NGX_HTTP_TICKET_LIMIT_KEY_MAX,
                      &lcf->shm_zone->shm.name);
        return NGX_DECLINED;
    }

    /* mark the request before counting so that no failure counts it twice */

    cln = ngx_pool_cleanup_add(r->pool,
                               sizeof(ngx_http_ticket_limit_req_ctx_t));
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_ticket_limit_cleanup;
    rctx = cln->data;
    rctx->counted = 1;

    ngx_http_set_ctx(r, rctx, ngx_http_ticket_limit_module);

    hash = ngx_crc32_short(key.data, key.len);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    rc = ngx_http_ticket_limit_lookup(ctx, hash, key.data, key.len, &count,
                                      &reset);

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    if (rc != NGX_OK) {

        /* a full zone must not take the API down: let the request through */

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "could not allocate node in ticket_limit_zone \"%V\"",
                      &lcf->shm_zone->shm.name);
        return NGX_DECLINED;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ticket_limit \"%V\": %ui of %ui, reset in %T",
                   &lcf->shm_zone->shm.name, count, ctx->limit, reset);

    if (ngx_http_ticket_limit_add_headers(r, ctx, count, reset) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (count <= ctx->limit) {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "limiting requests by zone \"%V\"",
                  &lcf->shm_zone->shm.name);

    (void) ngx_atomic_fetch_add(&ctx->sh->rejected, 1);

    return ngx_http_ticket_limit_reject(r, reset);
}


static ngx_http_ticket_limit_req_ctx_t *
ngx_http_ticket_limit_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t               *cln;
    ngx_http_ticket_limit_req_ctx_t  *rctx;

    rctx = ngx_http_get_module_ctx(r, ngx_http_ticket_limit_module);
    if (rctx != NULL) {
        return rctx;
    }

    /* r->ctx was zeroed by an internal redirect: look in the pool */

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_ticket_limit_cleanup) {
            rctx = cln->data;
            ngx_http_set_ctx(r, rctx, ngx_http_ticket_limit_module);
            return rctx;
        }
    }

    return NULL;
}


static void
ngx_http_ticket_limit_cleanup(void *data)
{
    /*
     * Nothing to release: the handler's address only tags the cleanup
     * that carries the request context across internal redirects.
     */
}


/*
 * Counts one request for the key and returns the count in this window
 * and the seconds until it ends.  Called with the zone mutex held.
 * Returns NGX_ERROR only when no node could be allocated.
 */

static ngx_int_t
ngx_http_ticket_limit_lookup(ngx_http_ticket_limit_ctx_t *ctx, uint32_t hash,
    u_char *data, size_t len, ngx_uint_t *count, time_t *reset)
{
    size_t                         size;
    ngx_int_t                      rc;
    ngx_msec_t                     now;
    ngx_msec_int_t                 left;
    ngx_rbtree_node_t             *node, *sentinel;
    ngx_http_ticket_limit_node_t  *ln;

    /*
     * ngx_current_msec is monotonic and system-wide, so windows started
     * by one worker are measured correctly by the others, and a wall
     * clock step does not open or stretch a window.
     */

    now = ngx_current_msec;

    ngx_http_ticket_limit_expire(ctx, now, 0);

    node = ctx->sh->rbtree.root;
    sentinel = ctx->sh->rbtree.sentinel;
    ln = NULL;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        /* hash == node->key */

        ln = (ngx_http_ticket_limit_node_t *) &node->color;

        rc = ngx_memn2cmp(data, ln->data, len, (size_t) ln->len);

        if (rc == 0) {
            break;
        }

        ln = NULL;
        node = (rc < 0) ? node->left : node->right;
    }

    if (ln == NULL) {
        size = offsetof(ngx_rbtree_node_t, color)
               + offsetof(ngx_http_ticket_limit_node_t, data)
               + len;

        node = ngx_slab_alloc_locked(ctx->shpool, size);

        if (node == NULL) {
            ngx_http_ticket_limit_expire(ctx, now,
                                         NGX_HTTP_TICKET_LIMIT_EVICT);

            node = ngx_slab_alloc_locked(ctx->shpool, size);
            if (node == NULL) {
                return NGX_ERROR;
            }
        }

        node->key = hash;

        ln = (ngx_http_ticket_limit_node_t *) &node->color;

        ln->len = (u_char) len;
        ln->start = now;
        ln->count = 0;
        ngx_memcpy(ln->data, data, len);

        ngx_rbtree_insert(&ctx->sh->rbtree, node);
        ngx_queue_insert_head(&ctx->sh->queue, &ln->queue);

    } else if ((ngx_msec_int_t) (now - ln->start)
               >= (ngx_msec_int_t) ctx->window_ms)
    {
        /* the key's window ended: this request opens a new one */

        ln->start = now;
        ln->count = 0;

        ngx_queue_remove(&ln->queue);
        ngx_queue_insert_head(&ctx->sh->queue, &ln->queue);
    }

    /*
     * Only "over the limit or not" matters past the limit, so the count
     * stops there instead of growing for as long as a client keeps trying.
     */

    if (ln->count <= ctx->limit) {
        ln->count++;
    }

    *count = ln->count;

    left = (ngx_msec_int_t) (ln->start + ctx->window_ms - now);

    *reset = (time_t) ((left + 999) / 1000);

    if (*reset < 1) {
        *reset = 1;
    }

    return NGX_OK;
}


/*
 * Frees up to NGX_HTTP_TICKET_LIMIT_EXPIRE nodes whose window has ended,
 * after first evicting "evict" nodes from the tail whatever their state.
 * Called with the zone mutex held.
 */

static void
ngx_http_ticket_limit_expire(ngx_http_ticket_limit_ctx_t *ctx, ngx_msec_t now,
    ngx_uint_t evict)
{
    ngx_uint_t                     n;
    ngx_queue_t                   *q;
    ngx_rbtree_node_t             *node;
    ngx_http_ticket_limit_node_t  *ln;

    for (n = 0; n < evict + NGX_HTTP_TICKET_LIMIT_EXPIRE; n++) {

        if (ngx_queue_empty(&ctx->sh->queue)) {
            return;
        }

        q = ngx_queue_last(&ctx->sh->queue);

        ln = ngx_queue_data(q, ngx_http_ticket_limit_node_t, queue);

        if (n >= evict
            && (ngx_msec_int_t) (now - ln->start)
               < (ngx_msec_int_t) ctx->window_ms)
        {
            /* the queue is in window order: the rest is live too */
            return;
        }

        ngx_queue_remove(q);

        node = (ngx_rbtree_node_t *)
                   ((u_char *) ln - offsetof(ngx_rbtree_node_t, color));

        ngx_rbtree_delete(&ctx->sh->rbtree, node);

        ngx_slab_free_locked(ctx->shpool, node);
    }
}


static void
ngx_http_ticket_limit_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t             **p;
    ngx_http_ticket_limit_node_t   *ln, *lnt;

    for ( ;; ) {

        if (node->key < temp->key) {

            p = &temp->left;

        } else if (node->key > temp->key) {

            p = &temp->right;

        } else { /* node->key == temp->key */

            ln = (ngx_http_ticket_limit_node_t *) &node->color;
            lnt = (ngx_http_ticket_limit_node_t *) &temp->color;

            p = (ngx_memn2cmp(ln->data, lnt->data, ln->len, lnt->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/*
 * IETF draft-ietf-httpapi-ratelimit-headers-06, as express-rate-limit
 * sends with standardHeaders: "draft-6", so existing clients keep working.
 */

static ngx_int_t
ngx_http_ticket_limit_add_headers(ngx_http_request_t *r,
    ngx_http_ticket_limit_ctx_t *ctx, ngx_uint_t count, time_t reset)
{
    u_char      buf[2 * NGX_INT_T_LEN + sizeof(";w=")];
    ngx_str_t   value;
    ngx_uint_t  remaining;

    remaining = (count < ctx->limit) ? ctx->limit - count : 0;

    value.data = buf;

    value.len = ngx_sprintf(buf, "%ui;w=%T", ctx->limit, ctx->window) - buf;
    if (ngx_http_ticket_add_header(r, "RateLimit-Policy", &value) != NGX_OK) {
        return NGX_ERROR;
    }

    value.len = ngx_sprintf(buf, "%ui", ctx->limit) - buf;
    if (ngx_http_ticket_add_header(r, "RateLimit-Limit", &value) != NGX_OK) {
        return NGX_ERROR;
    }

    value.len = ngx_sprintf(buf, "%ui", remaining) - buf;
    if (ngx_http_ticket_add_header(r, "RateLimit-Remaining", &value)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    value.len = ngx_sprintf(buf, "%T", reset) - buf;
    if (ngx_http_ticket_add_header(r, "RateLimit-Reset", &value) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Answers 429 from the PREACCESS phase.  A phase handler that sends its
 * own body finalizes the request itself and returns NGX_DONE so that the
 * phase engine stops.
 */

static ngx_int_t
ngx_http_ticket_limit_reject(ngx_http_request_t *r, time_t reset)
{
    u_char     buf[NGX_TIME_T_LEN];
    ngx_int_t  rc;
    ngx_str_t  value;

    value.data = buf;
    value.len = ngx_sprintf(buf, "%T", reset) - buf;

    if (ngx_http_ticket_add_header(r, "Retry-After", &value) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* an unread body would otherwise be parsed as the next request */

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_ticket_send_error(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                    "Too many requests, "
                                    "please try again later.");

    if (rc == NGX_ERROR || r->connection->error) {
        rc = NGX_ERROR;
    }

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


static ngx_int_t
ngx_http_ticket_limit_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ticket_limit_ctx_t  *octx = data;

    size_t                        len;
    ngx_http_ticket_limit_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {

        /*
         * Counters under a different key expression would be charged to
         * the wrong clients: refuse the reload, as limit_req does.
         */

        if (ctx->key.value.len != octx->key.value.len
            || ngx_strncmp(ctx->key.value.data, octx->key.value.data,
                           ctx->key.value.len)
               != 0)
        {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "ticket_limit_zone \"%V\" uses the \"%V\" key "
                          "while previously it used the \"%V\" key",
                          &shm_zone->shm.name, &ctx->key.value,
                          &octx->key.value);
            return NGX_ERROR;
        }

        /*
         * A new window or limit keeps the counters: the nodes store only
         * when their window started and how many requests it saw, which
         * mean the same under the new values.  Dropping them on every
         * tuning reload would hand each client a fresh budget; keeping
         * them applies the new limit at once and the new window length
         * to windows already running.
         */

        if (ctx->window != octx->window || ctx->limit != octx->limit) {
            ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                          "ticket_limit_zone \"%V\" changed from "
                          "window=%Ts limit=%ui to window=%Ts limit=%ui, "
                          "keeping current counts",
                          &shm_zone->shm.name, octx->window, octx->limit,
                          ctx->window, ctx->limit);
        }

        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;

        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;

        return NGX_OK;
    }

    ctx->sh = ngx_slab_alloc(ctx->shpool,
                             sizeof(ngx_http_ticket_limit_shctx_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_http_ticket_limit_rbtree_insert_value);

    ngx_queue_init(&ctx->sh->queue);

    len = sizeof(" in ticket_limit_zone \"\"") + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in ticket_limit_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is handled (and logged) by the lookup */

    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


static void *
ngx_http_ticket_limit_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ticket_limit_main_conf_t  *lmcf;

    lmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ticket_limit_main_conf_t));
    if (lmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&lmcf->uses, cf->pool, 4,
                       sizeof(ngx_http_ticket_limit_use_t))
        != NGX_OK)
    {
        return NULL;
    }

    return lmcf;
}


static void *
ngx_http_ticket_limit_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ticket_limit_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ticket_limit_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->shm_zone = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_ticket_limit_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_ticket_limit_loc_conf_t *prev = parent;
    ngx_http_ticket_limit_loc_conf_t *conf = child;

    ngx_conf_merge_ptr_value(conf->shm_zone, prev->shm_zone, NULL);

    return NGX_CONF_OK;
}


static char *
ngx_http_ticket_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ssize_t                            size;
    ngx_int_t                          n;
    ngx_str_t                         *value, name, key, s;
    ngx_uint_t                         i;
    ngx_shm_zone_t                    *shm_zone;
    ngx_http_ticket_limit_ctx_t       *ctx;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;

    name = value[1];

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" needs a zone name", &cmd->name);
        return NGX_CONF_ERROR;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_ticket_limit_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    key = ngx_http_ticket_limit_default_key;
    ctx->window = 15 * 60;
    ctx->limit = 500;
    size = 10 * 1024 * 1024;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "key=", 4) == 0) {

            /* the argument lives in cf->pool, as the key must */

            key.data = value[i].data + 4;
            key.len = value[i].len - 4;

            if (key.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "empty key in \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "window=", 7) == 0) {

            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            n = ngx_parse_time(&s, 1);

            if (n == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid window \"%V\", expected "
                                   "whole seconds such as \"30s\" or "
                                   "\"15m\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            if (n < 1) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "window must be at least 1s in \"%V\"",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            ctx->window = (time_t) n;

            continue;
        }

        if (ngx_strncmp(value[i].data, "limit=", 6) == 0) {

            n = ngx_atoi(value[i].data + 6, value[i].len - 6);

            if (n == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid limit \"%V\", expected a number",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            if (n < 1) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "limit must be at least 1 in \"%V\"",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            ctx->limit = (ngx_uint_t) n;

            continue;
        }

        if (ngx_strncmp(value[i].data, "size=", 5) == 0) {

            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid size \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown parameter \"%V\" in \"%V\", expected "
                           "key=, window=, limit= or size=",
                           &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    /* the slab allocator needs a few pages for its own bookkeeping */

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ticket_limit_zone \"%V\" is too small: "
                           "size=%z, at least %uz is needed",
                           &name, size, 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &key;
    ccv.complex_value = &ctx->key;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ctx->window_ms = (ngx_msec_t) ctx->window * 1000;

    /*
     * Look the name up with size 0 first: a second declaration with
     * another size would otherwise be reported as a size conflict
     * rather than as the duplicate it is.
     */

    shm_zone = ngx_shared_memory_add(cf, &name, 0,
                                     &ngx_http_ticket_limit_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate ticket_limit_zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_ticket_limit_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_ticket_limit_init_zone;
    shm_zone->data = ctx;

    return NGX_CONF_OK;
}


static char *
ngx_http_ticket_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ticket_limit_loc_conf_t *lcf = conf;

    ngx_str_t                          *value;
    ngx_http_ticket_limit_use_t        *use;
    ngx_http_ticket_limit_main_conf_t  *lmcf;

    if (lcf->shm_zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        lcf->shm_zone = NULL;
        return NGX_CONF_OK;
    }

    /*
     * Size 0 finds the zone or reserves its name: the zone may be
     * declared further down, so whether it exists is only checked once
     * the whole http block has been read.
     */

    lcf->shm_zone = ngx_shared_memory_add(cf, &value[1], 0,
                                          &ngx_http_ticket_limit_module);
    if (lcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    lmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_ticket_limit_module);

    use = ngx_array_push(&lmcf->uses);
    if (use == NULL) {
        return NGX_CONF_ERROR;
    }

    use->shm_zone = lcf->shm_zone;
    use->file = cf->conf_file->file.name;
    use->line = cf->conf_file->line;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ticket_limit_init(ngx_conf_t *cf)
{
    ngx_uint_t                          i;
    ngx_http_handler_pt                *h;
    ngx_http_core_main_conf_t          *cmcf;
    ngx_http_ticket_limit_use_t        *use;
    ngx_http_ticket_limit_main_conf_t  *lmcf;

    lmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_ticket_limit_module);

    use = lmcf->uses.elts;

    for (i = 0; i < lmcf->uses.nelts; i++) {
        if (use[i].shm_zone->data == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "unknown ticket_limit_zone \"%V\" in %V:%ui",
                          &use[i].shm_zone->shm.name, &use[i].file,
                          use[i].line);
            return NGX_ERROR;
        }
    }

    /* no "ticket_limit" anywhere: stay out of every request */

    if (lmcf->uses.nelts == 0) {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ticket_limit_handler;

    return NGX_OK;
}


/*
 * The zones of the running configuration, for ticket_metrics: found by
 * their tag among the cycle's shared memory, so no list is kept.
 */

void
ngx_http_ticket_limit_each(ngx_cycle_t *cycle,
    ngx_http_ticket_limit_each_pt each, void *arg)
{
    ngx_uint_t                    i;
    ngx_list_part_t              *part;
    ngx_shm_zone_t               *zone;
    ngx_http_ticket_limit_ctx_t  *ctx;

    part = &cycle->shared_memory.part;
    zone = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }
            part = part->next;
            zone = part->elts;
            i = 0;
        }

        if (zone[i].tag != &ngx_http_ticket_limit_module) {
            continue;
        }

        ctx = zone[i].data;
        if (ctx == NULL || ctx->sh == NULL) {
            continue;
        }

        each(&zone[i].shm.name, ctx->sh->rejected, arg);
    }
}

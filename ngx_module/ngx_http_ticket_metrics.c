/*
 * ngx_http_ticket_metrics: "ticket_metrics", a content handler that
 * answers Prometheus text (format 0.0.4) for the whole nginx instance:
 * the counters of every worker, summed, and ticketd's own block.
 *
 * Where the numbers live.  The first ticket_metrics in the configuration
 * creates one shared-memory zone, "ticket_metrics", of a fixed size
 * computed from the route table.  It holds plain words updated with
 * ngx_atomic_fetch_add() -- no lock on any request path:
 *
 *   requests      one counter per (route id, status code), the route
 *                 being the router's template ("GET /api/tickets/:id"),
 *                 never the raw URI, and the code one of a fixed list
 *                 (the codes the API answers) or "other": a bounded set.
 *                 Counted once per request in the log phase, so every
 *                 answer is seen whoever sent it (the rate limiter's
 *                 429, the router's 404, the thread's 200).
 *   sockets,     Socket.IO sockets and rooms: every worker adds its
 *   rooms        deltas to one word, as stub_status does for
 *                connections (a crashed worker's share is not taken
 *                back; it is lost with its sockets anyway).
 *   events       events from ticketd queued on a socket.
 *   link[w]      the pid of worker slot w's process while its link to
 *                ticketd is up, else 0.  A new worker claims its slot at
 *                start; a worker clears it only if it still holds it
 *                (compare-and-set), so after a reload an old worker
 *                closing its link cannot mark the new one down.
 *   cache        Redis cache reads (hit, miss, error), counted by
 *                shared/store through ts_store_cache_counter(): they run
 *                in the thread pool, where an atomic add is as good.
 *
 * The rate limiter's refusals are counted in each ticket_limit_zone's own
 * shared context (ngx_http_ticket_limit_each()), so a zone is a label.
 *
 * ticketd's numbers (jobs, latencies, mail, the bridge) are rendered by
 * ticketd itself as Prometheus text and pushed to every worker over the
 * link every 2 s and when a link connects:
 *     {"type":"metrics","text":"# HELP ...\n..."}
 * A worker checks the frame (a string of at most 64 KB of printable
 * ASCII lines) and copies it into the zone under the zone's mutex with
 * the time it came; the handler copies it out under the same mutex.  The
 * handler emits ticket_daemon_metrics_age_seconds, and leaves the block
 * out once it is older than 10 s (ticketd gone: stale counters would
 * lie).
 *
 * The zone survives "nginx -s reload" (same name and size: init_zone
 * keeps the old counters), like the rate limiter's.  The handler runs on
 * the event loop: it reads words and copies one block, nothing blocks.
 */

#include "ngx_http_ticket_module.h"
#include "ngx_http_ticket_metrics.h"
#include "ngx_http_ticket_reply.h"

#include "ts_prom.h"


#define NGX_HTTP_TICKET_METRICS_ZONE     "ticket_metrics"

/* worker slots for the link state (ngx_worker beyond: not shown) */
#define NGX_HTTP_TICKET_METRICS_WORKERS  256

/* the largest daemon block kept */
#define NGX_HTTP_TICKET_METRICS_DAEMON   (64 * 1024)

/* a daemon block older than this is left out (ms) */
#define NGX_HTTP_TICKET_METRICS_STALE    10000


/* the status codes counted one by one; the last slot is "other" */
static ngx_uint_t  ngx_http_ticket_metrics_codes[] = {
    200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 429, 500, 502, 503,
    504
};

#define NGX_HTTP_TICKET_METRICS_NCODES                                        \
    (sizeof(ngx_http_ticket_metrics_codes)                                    \
     / sizeof(ngx_http_ticket_metrics_codes[0]) + 1)


typedef struct {
    ngx_uint_t     nroutes;       /* route ids, plus one for no route */
    ngx_atomic_t   sockets;       /* gauges, as signed words */
    ngx_atomic_t   rooms;
    ngx_atomic_t   events;
    ngx_atomic_t   cache[TS_CACHE_RESULTS];
    ngx_atomic_t   link[NGX_HTTP_TICKET_METRICS_WORKERS];

    /* under the slab pool's mutex */
    ngx_msec_t     daemon_at;     /* ngx_current_msec (monotonic) */
    ngx_uint_t     daemon_seen;
    size_t         daemon_len;
    u_char         daemon[NGX_HTTP_TICKET_METRICS_DAEMON];

    ngx_atomic_t   requests[1];   /* nroutes x NCODES */
} ngx_http_ticket_metrics_sh_t;


typedef struct {
    ngx_http_ticket_metrics_sh_t  *sh;
    ngx_slab_pool_t               *shpool;
    ngx_uint_t                     nroutes;
} ngx_http_ticket_metrics_ctx_t;


/* this worker's zone (set at init_process) */
static ngx_http_ticket_metrics_ctx_t  *ngx_http_ticket_metrics_zone;


static ngx_int_t ngx_http_ticket_metrics_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ticket_metrics_log(ngx_http_request_t *r);
static ngx_int_t ngx_http_ticket_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_ticket_metrics_cache(ts_cache_result_e result);


char *
ngx_http_ticket_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                       name = ngx_string(
                                               NGX_HTTP_TICKET_METRICS_ZONE);
    ngx_http_ticket_main_conf_t    *tmcf;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_ticket_metrics_ctx_t  *ctx;
    size_t                          size;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    if (clcf->handler == ngx_http_ticket_metrics_handler) {
        return "is duplicate";
    }
    clcf->handler = ngx_http_ticket_metrics_handler;

    tmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ticket_module);
    if (tmcf->metrics != NULL) {
        return NGX_CONF_OK;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_ticket_metrics_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }
    ctx->nroutes = (ngx_uint_t) ts_api_routes() + 1;

    /* the counters, and pages for the slab pool's own bookkeeping */
    size = sizeof(ngx_http_ticket_metrics_sh_t)
           + ctx->nroutes * NGX_HTTP_TICKET_METRICS_NCODES
             * sizeof(ngx_atomic_t);
    size = ngx_align(size, ngx_pagesize) + 8 * ngx_pagesize;

    tmcf->metrics = ngx_shared_memory_add(cf, &name, size,
                                          &ngx_http_ticket_module);
    if (tmcf->metrics == NULL) {
        return NGX_CONF_ERROR;
    }
    tmcf->metrics->init = ngx_http_ticket_metrics_init_zone;
    tmcf->metrics->data = ctx;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ticket_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ticket_metrics_ctx_t  *octx = data;
    ngx_http_ticket_metrics_ctx_t  *ctx;
    size_t                          size;

    ctx = shm_zone->data;

    if (octx) {
        /* a reload with the same binary: same routes, same layout */
        if (octx->nroutes != ctx->nroutes) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "the \"%V\" zone counts %ui routes, this "
                          "module %ui", &shm_zone->shm.name,
                          octx->nroutes, ctx->nroutes);
            return NGX_ERROR;
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

    size = sizeof(ngx_http_ticket_metrics_sh_t)
           + ctx->nroutes * NGX_HTTP_TICKET_METRICS_NCODES
             * sizeof(ngx_atomic_t);

    ctx->sh = ngx_slab_calloc(ctx->shpool, size);
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }
    ctx->sh->nroutes = ctx->nroutes;
    ctx->shpool->data = ctx->sh;

    return NGX_OK;
}


ngx_int_t
ngx_http_ticket_metrics_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt          *h;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_ticket_main_conf_t  *tmcf;

    tmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ticket_module);
    if (tmcf->metrics == NULL) {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }
    *h = ngx_http_ticket_metrics_log;

    return NGX_OK;
}


void
ngx_http_ticket_metrics_init_process(ngx_cycle_t *cycle)
{
    ngx_http_ticket_main_conf_t  *tmcf;

    tmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_ticket_module);
    if (tmcf == NULL || tmcf->metrics == NULL) {
        ngx_http_ticket_metrics_zone = NULL;
        ts_store_cache_counter(NULL);
        return;
    }
    ngx_http_ticket_metrics_zone = tmcf->metrics->data;

    /* before any thread-pool task reads through the cache */
    ts_store_cache_counter(ngx_http_ticket_metrics_cache);

    /* this slot is ours now: a respawned worker's predecessor is gone,
     * after a reload the old worker of this slot clears it only while
     * it still holds its own pid there */
    if (ngx_worker < NGX_HTTP_TICKET_METRICS_WORKERS) {
        ngx_http_ticket_metrics_zone->sh->link[ngx_worker] = 0;
    }
}


/* --- the hooks --------------------------------------------------------- */

static void
ngx_http_ticket_metrics_cache(ts_cache_result_e result)
{
    if (ngx_http_ticket_metrics_zone != NULL && result < TS_CACHE_RESULTS) {
        (void) ngx_atomic_fetch_add(
                   &ngx_http_ticket_metrics_zone->sh->cache[result], 1);
    }
}


void
ngx_http_ticket_metrics_sockets(ngx_int_t delta)
{
    if (ngx_http_ticket_metrics_zone != NULL) {
        (void) ngx_atomic_fetch_add(&ngx_http_ticket_metrics_zone->sh->sockets,
                                    (ngx_atomic_int_t) delta);
    }
}


void
ngx_http_ticket_metrics_rooms(ngx_int_t delta)
{
    if (ngx_http_ticket_metrics_zone != NULL) {
        (void) ngx_atomic_fetch_add(&ngx_http_ticket_metrics_zone->sh->rooms,
                                    (ngx_atomic_int_t) delta);
    }
}


void
ngx_http_ticket_metrics_delivered(void)
{
    if (ngx_http_ticket_metrics_zone != NULL) {
        (void) ngx_atomic_fetch_add(&ngx_http_ticket_metrics_zone->sh->events,
                                    1);
    }
}


void
ngx_http_ticket_metrics_link(ngx_uint_t up)
{
    ngx_atomic_t  *slot;

    if (ngx_http_ticket_metrics_zone == NULL
        || ngx_worker >= NGX_HTTP_TICKET_METRICS_WORKERS)
    {
        return;
    }
    slot = &ngx_http_ticket_metrics_zone->sh->link[ngx_worker];
    if (up) {
        *slot = (ngx_atomic_uint_t) ngx_pid;
    } else {
        (void) ngx_atomic_cmp_set(slot, (ngx_atomic_uint_t) ngx_pid, 0);
    }
}


/* Index of a status code in the codes table; the last one is "other". */
static ngx_uint_t
ngx_http_ticket_metrics_code(ngx_uint_t status)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_TICKET_METRICS_NCODES - 1; i++) {
        if (ngx_http_ticket_metrics_codes[i] == status) {
            return i;
        }
    }
    return NGX_HTTP_TICKET_METRICS_NCODES - 1;
}


/*
 * Log phase: one count per API request by route template and status.  The
 * route is matched again here (a short table scan) rather than carried
 * from the content handler, because answers given before it ran -- the
 * rate limiter's 429 -- must be counted under their route too.
 */
static ngx_int_t
ngx_http_ticket_metrics_log(ngx_http_request_t *r)
{
    ngx_http_ticket_loc_conf_t     *tlcf;
    ngx_http_ticket_metrics_ctx_t  *ctx = ngx_http_ticket_metrics_zone;
    ts_match_t                      match;
    ts_method_e                     method;
    ngx_uint_t                      route, code;
    int                             id;

    if (ctx == NULL || r != r->main) {
        return NGX_OK;
    }
    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_ticket_module);
    if (tlcf == NULL || tlcf->api != 1) {
        return NGX_OK;
    }

    method = ngx_http_ticket_method(r);

    id = -1;
    if (ts_api_match(method, (const char *) r->uri.data, r->uri.len, &match,
                     NULL, 0)
        == 200)
    {
        id = ts_api_route_id(&match);
    }
    route = (id >= 0 && (ngx_uint_t) id < ctx->nroutes - 1)
            ? (ngx_uint_t) id : ctx->nroutes - 1;
    code = ngx_http_ticket_metrics_code(r->headers_out.status);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ticket metrics: route %ui, status %ui (slot %ui)",
                   route, r->headers_out.status, code);

    (void) ngx_atomic_fetch_add(
               &ctx->sh->requests[route * NGX_HTTP_TICKET_METRICS_NCODES
                                  + code], 1);
    return NGX_OK;
}


/* --- ticketd's block --------------------------------------------------- */

ngx_int_t
ngx_http_ticket_metrics_daemon(const char *payload, size_t len)
{
    static const char               prefix[] = "{\"type\":\"metrics\"";
    ngx_http_ticket_metrics_ctx_t  *ctx = ngx_http_ticket_metrics_zone;
    json_t                         *frame, *text;
    const char                     *s, *type, *why;
    size_t                          n, i;

    if (len < sizeof(prefix) - 1
        || ngx_memcmp(payload, prefix, sizeof(prefix) - 1) != 0)
    {
        return NGX_DECLINED;
    }
    if (ctx == NULL) {
        return NGX_OK;              /* no ticket_metrics: nothing to keep */
    }

    why = NULL;
    frame = json_loadb(payload, len, 0, NULL);
    text = json_object_get(frame, "text");
    s = json_string_value(text);
    n = json_string_length(text);

    type = json_string_value(json_object_get(frame, "type"));

    if (s == NULL || type == NULL || ngx_strcmp(type, "metrics") != 0) {
        why = "not a metrics frame";
    } else if (n > NGX_HTTP_TICKET_METRICS_DAEMON) {
        why = "too long";
    } else if (n > 0 && s[n - 1] != '\n') {
        why = "not whole lines";
    } else {
        /* lines of printable ASCII: nothing that could end the answer
         * early or smuggle a byte the exposition format does not allow */
        for (i = 0; i < n; i++) {
            if (s[i] != '\n' && (s[i] < 0x20 || s[i] > 0x7e)) {
                why = "a byte that is not printable ASCII";
                break;
            }
        }
    }

    if (why != NULL) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "ticket metrics: ticketd's metrics frame dropped: %s",
                      why);
        json_decref(frame);
        return NGX_OK;
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);
    ngx_memcpy(ctx->sh->daemon, s, n);
    ctx->sh->daemon_len = n;
    ctx->sh->daemon_at = ngx_current_msec;
    ctx->sh->daemon_seen = 1;
    ngx_shmtx_unlock(&ctx->shpool->mutex);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "ticket metrics: ticketd block of %uz bytes", n);

    json_decref(frame);
    return NGX_OK;
}


/* --- the handler ------------------------------------------------------- */

static void
ngx_http_ticket_metrics_limit(ngx_str_t *zone, ngx_atomic_uint_t rejected,
    void *arg)
{
    ts_prom_t   *p = arg;
    char         name[256];
    const char  *labels[3];

    ngx_cpystrn((u_char *) name, zone->data,
                ngx_min(zone->len + 1, sizeof(name)));
    labels[0] = "zone";
    labels[1] = name;
    labels[2] = NULL;
    ts_prom_u64(p, "ticket_rate_limited_total", labels, rejected);
}


static ngx_atomic_int_t
ngx_http_ticket_metrics_gauge(ngx_atomic_t *v)
{
    ngx_atomic_int_t  n = (ngx_atomic_int_t) *v;

    return n > 0 ? n : 0;
}


/* The module's families into p. */
static void
ngx_http_ticket_metrics_render(ngx_http_ticket_metrics_sh_t *sh,
    ts_prom_t *p)
{
    ngx_uint_t        i, c, workers;
    ngx_atomic_uint_t n;
    ngx_core_conf_t  *ccf;
    const char       *labels[5], *route;
    char              code[NGX_INT_T_LEN + 1], worker[NGX_INT_T_LEN + 1];
    static const char *cache[TS_CACHE_RESULTS] = { "hit", "miss", "error" };

    ts_prom_family(p, "ticket_http_requests_total", "counter",
                   "API requests answered, by route template and status "
                   "code (\"other\": a code not listed; route "
                   "\"unmatched\": no route)");
    for (i = 0; i < sh->nroutes; i++) {
        route = ts_api_route_name((int) i);
        for (c = 0; c < NGX_HTTP_TICKET_METRICS_NCODES; c++) {
            n = sh->requests[i * NGX_HTTP_TICKET_METRICS_NCODES + c];
            if (n == 0) {
                continue;   /* a series appears with its first request */
            }
            if (c < NGX_HTTP_TICKET_METRICS_NCODES - 1) {
                ngx_sprintf((u_char *) code, "%ui%Z",
                            ngx_http_ticket_metrics_codes[c]);
            } else {
                ngx_cpystrn((u_char *) code, (u_char *) "other",
                            sizeof(code));
            }
            labels[0] = "route";
            labels[1] = route ? route : "unmatched";
            labels[2] = "code";
            labels[3] = code;
            labels[4] = NULL;
            ts_prom_u64(p, "ticket_http_requests_total", labels, n);
        }
    }

    ts_prom_family(p, "ticket_rate_limited_total", "counter",
                   "Requests refused with 429 by a ticket_limit_zone");
    ngx_http_ticket_limit_each((ngx_cycle_t *) ngx_cycle,
                               ngx_http_ticket_metrics_limit, p);

    ts_prom_family(p, "ticket_socketio_sockets", "gauge",
                   "Open Socket.IO connections, all workers");
    ts_prom_u64(p, "ticket_socketio_sockets", NULL,
                (uint64_t) ngx_http_ticket_metrics_gauge(&sh->sockets));

    ts_prom_family(p, "ticket_socketio_rooms", "gauge",
                   "Ticket rooms with a member, summed over the workers "
                   "(a room with members in two workers counts twice)");
    ts_prom_u64(p, "ticket_socketio_rooms", NULL,
                (uint64_t) ngx_http_ticket_metrics_gauge(&sh->rooms));

    ts_prom_family(p, "ticket_socketio_events_delivered_total", "counter",
                   "Events from ticketd queued on a socket (one per "
                   "receiving socket)");
    ts_prom_u64(p, "ticket_socketio_events_delivered_total", NULL,
                sh->events);

    ts_prom_family(p, "ticket_link_connected", "gauge",
                   "1 while the worker's link to ticketd is up, else 0");
    ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                           ngx_core_module);
    workers = (ngx_process == NGX_PROCESS_SINGLE || ccf == NULL)
              ? 1 : (ngx_uint_t) ccf->worker_processes;
    workers = ngx_min(workers, NGX_HTTP_TICKET_METRICS_WORKERS);
    for (i = 0; i < workers; i++) {
        ngx_sprintf((u_char *) worker, "%ui%Z", i);
        labels[0] = "worker";
        labels[1] = worker;
        labels[2] = NULL;
        ts_prom_u64(p, "ticket_link_connected", labels, sh->link[i] != 0);
    }

    ts_prom_family(p, "ticket_cache_requests_total", "counter",
                   "Redis cache reads by the workers, by result");
    for (i = 0; i < TS_CACHE_RESULTS; i++) {
        labels[0] = "result";
        labels[1] = cache[i];
        labels[2] = NULL;
        ts_prom_u64(p, "ticket_cache_requests_total", labels, sh->cache[i]);
    }
}


static ngx_int_t
ngx_http_ticket_metrics_handler(ngx_http_request_t *r)
{
    static ngx_str_t                type = ngx_string(
                                      "text/plain; version=0.0.4; "
                                      "charset=utf-8");
    static ngx_str_t                allow = ngx_string("GET, HEAD");
    ngx_http_ticket_metrics_ctx_t  *ctx = ngx_http_ticket_metrics_zone;
    ngx_http_ticket_metrics_sh_t   *sh;
    ngx_int_t                       rc;
    ngx_buf_t                      *b;
    ngx_chain_t                     out;
    ts_prom_t                       p;
    u_char                         *block;
    size_t                          block_len, len;
    ngx_msec_t                      age;
    ngx_uint_t                      seen;
    const char                     *text;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        if (ngx_http_ticket_add_header(r, "Allow", &allow) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        return ngx_http_ticket_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                          "Method not allowed");
    }
    if (ctx == NULL) {
        /* a single-process nginx, say, that never ran init_process */
        return ngx_http_ticket_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "Metrics unavailable");
    }
    sh = ctx->sh;

    block = ngx_pnalloc(r->pool, NGX_HTTP_TICKET_METRICS_DAEMON);
    if (block == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_shmtx_lock(&ctx->shpool->mutex);
    seen = sh->daemon_seen;
    age = ngx_current_msec - sh->daemon_at;
    block_len = sh->daemon_len;
    ngx_memcpy(block, sh->daemon, block_len);
    ngx_shmtx_unlock(&ctx->shpool->mutex);

    ts_prom_init(&p);
    ngx_http_ticket_metrics_render(sh, &p);

    if (seen) {
        ts_prom_family(&p, "ticket_daemon_metrics_age_seconds", "gauge",
                       "Seconds since ticketd last sent its metrics; its "
                       "block is left out once older than 10 s");
        ts_prom_double(&p, "ticket_daemon_metrics_age_seconds", NULL,
                       (double) age / 1000);
        if (age <= NGX_HTTP_TICKET_METRICS_STALE) {
            ts_prom_raw(&p, (const char *) block, block_len);
        }
    }

    text = ts_prom_text(&p, &len);
    if (text == NULL) {
        ts_prom_free(&p);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type = type;
    r->headers_out.content_type_len = type.len;
    r->headers_out.content_length_n = len;

    if (r->method == NGX_HTTP_HEAD) {
        ts_prom_free(&p);
        r->header_only = 1;
        return ngx_http_send_header(r);
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        ts_prom_free(&p);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    b->last = ngx_cpymem(b->pos, text, len);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;
    ts_prom_free(&p);

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;
    return ngx_http_output_filter(r, &out);
}

/*
 * The REST handler ("ticket_api"): routes on the event loop, runs the
 * route in the thread pool, answers on the event loop.
 *
 *   event loop   route match (404/405), CORS preflight, token signature
 *                (401), Content-Length bound (413), read the body
 *   thread       read a buffered-to-disk body, open this thread's store
 *                connection, ts_api_call() (JSON, store, bcrypt), encode
 *                the events as link frames
 *   event loop   send the JSON, hand the frames to the daemon link
 *
 * While the task runs, r->main->blocked keeps the request (and its pool,
 * which holds the task) alive even if the client goes away.
 */

#include "ngx_http_ticket_module.h"
#include "ngx_http_ticket_reply.h"

#include <openssl/crypto.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "ts_link.h"

typedef struct {
    ngx_http_request_t           *request;
    ngx_http_ticket_main_conf_t  *tmcf;
    ts_request_t                  req;
    ts_claims_t                   claims;
    ts_response_t                 resp;
    u_char                       *body;        /* assembled request body */
    size_t                        body_len;
    ngx_uint_t                    body_malloced;
    ngx_chain_t                  *bufs;        /* body partly in a file */
    u_char                       *frames;      /* malloc'ed link frames */
    size_t                        frames_len;
    ngx_uint_t                    heavy;       /* bcrypt route */
    char                          err[256];    /* logged on the loop */
} ngx_http_ticket_task_t;

/* One store connection per thread-pool thread, opened on first use. */
static __thread ts_store_t  *ngx_http_ticket_store;

/* Threads that ran bcrypt lower their own priority once (see below). */
static __thread ngx_uint_t   ngx_http_ticket_niced;

static void ngx_http_ticket_body_handler(ngx_http_request_t *r);


ts_store_t *
ngx_http_ticket_thread_store(ngx_http_ticket_main_conf_t *tmcf, char *err,
    size_t errlen)
{
    if (ngx_http_ticket_store == NULL) {
        ngx_http_ticket_store = ts_store_open((const char *) tmcf->store.data,
                                              err, errlen);
        if (ngx_http_ticket_store != NULL && tmcf->redis.len) {
            ts_store_set_cache(ngx_http_ticket_store,
                               (const char *) tmcf->redis.data,
                               tmcf->cache_key);
        }
    }
    return ngx_http_ticket_store;
}

static void ngx_http_ticket_thread(void *data, ngx_log_t *log);
static void ngx_http_ticket_done(ngx_event_t *ev);


ts_method_e
ngx_http_ticket_method(ngx_http_request_t *r)
{
    switch (r->method) {
    case NGX_HTTP_GET:     return TS_GET;
    case NGX_HTTP_POST:    return TS_POST;
    case NGX_HTTP_PATCH:   return TS_PATCH;
    case NGX_HTTP_PUT:     return TS_PUT;
    case NGX_HTTP_DELETE:  return TS_DELETE;
    case NGX_HTTP_HEAD:    return TS_HEAD;
    case NGX_HTTP_OPTIONS: return TS_OPTIONS;
    default:               return TS_METHOD_OTHER;
    }
}


/* Discard any body, then send an error: for answers before reading. */
static ngx_int_t
ngx_http_ticket_early_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *msg)
{
    ngx_str_t  bearer = ngx_string("Bearer");

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }
    if (status == NGX_HTTP_UNAUTHORIZED) {
        (void) ngx_http_ticket_add_header(r, "WWW-Authenticate", &bearer);
    }
    return ngx_http_ticket_send_error(r, status, msg);
}


ngx_int_t
ngx_http_ticket_api_handler(ngx_http_request_t *r)
{
    ngx_http_ticket_loc_conf_t  *tlcf;
    ngx_http_ticket_task_t      *t;
    ngx_http_ticket_ctx_t       *ctx;
    ngx_thread_task_t           *task;
    ts_method_e                  method;
    ts_match_t                   match;
    char                         allow[64];
    ngx_str_t                    allow_v;
    ngx_int_t                    rc;
    int                          route;
    time_t                       since;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_ticket_module);
    method = ngx_http_ticket_method(r);

    if (tlcf->cors_origins != NULL && ngx_http_ticket_is_preflight(r)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
        return ngx_http_ticket_cors_preflight(r);
    }

    route = ts_api_match(method, (const char *) r->uri.data, r->uri.len,
                         &match, allow, sizeof(allow));

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ticket api: %V \"%V\" route %d", &r->method_name,
                   &r->uri, route);

    if (route == 404) {
        return ngx_http_ticket_early_error(r, NGX_HTTP_NOT_FOUND,
                                           "Route not found");
    }
    if (route == 405) {
        allow_v.data = (u_char *) allow;
        allow_v.len = ngx_strlen(allow);
        if (ngx_http_ticket_add_header(r, "Allow", &allow_v) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        if (method == TS_OPTIONS) {
            rc = ngx_http_discard_request_body(r);
            if (rc != NGX_OK) {
                return rc;
            }
            return ngx_http_ticket_send_json(r, NGX_HTTP_NO_CONTENT, NULL, 0);
        }
        return ngx_http_ticket_early_error(r, NGX_HTTP_NOT_ALLOWED,
                                           "Method not allowed");
    }

    if (ts_api_document(&match)) {
        return ngx_http_ticket_openapi_send(r);
    }

    ctx = ngx_http_ticket_auth(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    if (ts_api_access(&match) != TS_ACCESS_ANYONE) {
        if (!ctx->token_present) {
            return ngx_http_ticket_early_error(r, NGX_HTTP_UNAUTHORIZED,
                                          "Access Denied. No token found.");
        }
        if (!ctx->token_valid) {
            return ngx_http_ticket_early_error(r, NGX_HTTP_UNAUTHORIZED,
                                               "Invalid token");
        }
    }

    if (r->headers_in.content_length_n > (off_t) tlcf->max_body) {
        r->keepalive = 0;
        return ngx_http_ticket_early_error(r,
                                           NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                           "Request body too large");
    }

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_ticket_task_t));
    if (task == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    t = task->ctx;
    t->request = r;
    t->tmcf = ngx_http_get_module_main_conf(r, ngx_http_ticket_module);
    t->req.method = method;
    t->req.match = match;
    if (r->args.len) {
        t->req.query = (const char *) r->args.data;
        t->req.query_len = r->args.len;
    }
    if (ctx->token_valid) {
        t->claims = ctx->claims;
        t->req.claims = &t->claims;
    }
    task->handler = ngx_http_ticket_thread;
    task->event.handler = ngx_http_ticket_done;
    task->event.data = task;

    t->req.daemon_state = ngx_http_ticket_link_state();
    /* the preconditions are the route's (a 409 with the ticket), not the
     * not_modified filter's: without a Last-Modified it would answer 412
     * to every If-Unmodified-Since */
    r->disable_not_modified = 1;
    if (r->headers_in.if_unmodified_since) {
        /* a date that does not parse is ignored (RFC 9110, 13.1.4); the
         * header has whole seconds, so the rest of that second counts as
         * unmodified */
        since = ngx_parse_http_time(
                    r->headers_in.if_unmodified_since->value.data,
                    r->headers_in.if_unmodified_since->value.len);
        if (since != NGX_ERROR && since >= 0) {
            t->req.if_unmodified_since = (int64_t) since * 1000 + 999;
        }
    }
    t->heavy = ts_api_cpu_heavy(&match);
    ctx->task = task;

    rc = ngx_http_read_client_request_body(r, ngx_http_ticket_body_handler);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ticket api: reading body: %i, %s task", rc,
                   t->heavy ? "heavy" : "quick");

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }
    return NGX_DONE;
}


static void
ngx_http_ticket_body_handler(ngx_http_request_t *r)
{
    ngx_http_ticket_loc_conf_t  *tlcf;
    ngx_http_ticket_ctx_t       *ctx;
    ngx_http_ticket_task_t      *t;
    ngx_thread_task_t           *task;
    ngx_chain_t                 *cl;
    ngx_uint_t                   in_file = 0;
    size_t                       len = 0;
    u_char                      *p;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ticket_module);
    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_ticket_module);
    task = ctx->task;
    t = task->ctx;

    if (r->request_body && r->request_body->bufs) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            if (cl->buf->in_file) {
                in_file = 1;
                len += cl->buf->file_last - cl->buf->file_pos;
            } else {
                len += cl->buf->last - cl->buf->pos;
            }
        }
    }

    /* a chunked body has no Content-Length to check up front */
    if (len > tlcf->max_body) {
        r->keepalive = 0;
        ngx_http_finalize_request(r,
            ngx_http_ticket_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       "Request body too large"));
        return;
    }

    t->body_len = len;
    if (in_file) {
        /* reading the temp file is I/O: the thread does it */
        t->bufs = r->request_body->bufs;
    } else if (len) {
        t->body = ngx_pnalloc(r->pool, len);
        if (t->body == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
        p = t->body;
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        }
        t->req.body = (const char *) t->body;
        t->req.body_len = len;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ticket api: body %uz bytes%s, posting task #%ui",
                   len, in_file ? " in a file" : "", task->id);

    if (ngx_thread_task_post(t->heavy ? tlcf->pw_pool : tlcf->pool, task)
        != NGX_OK)
    {
        ngx_http_finalize_request(r,
            ngx_http_ticket_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       "Server busy, please retry"));
        return;
    }
    r->main->blocked++;
}


/* Read a body that nginx buffered to a temp file; runs in the thread. */
static int
ngx_http_ticket_read_body(ngx_http_ticket_task_t *t)
{
    ngx_chain_t  *cl;
    ngx_buf_t    *b;
    u_char       *p;
    ssize_t       n;
    size_t        want;

    t->body = malloc(t->body_len ? t->body_len : 1);
    if (t->body == NULL) {
        return -1;
    }
    t->body_malloced = 1;
    p = t->body;

    for (cl = t->bufs; cl; cl = cl->next) {
        b = cl->buf;
        if (!b->in_file) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }
        want = b->file_last - b->file_pos;
        n = pread(b->file->fd, p, want, b->file_pos);
        if (n != (ssize_t) want) {
            return -1;
        }
        p += n;
    }
    t->req.body = (const char *) t->body;
    t->req.body_len = t->body_len;
    return 0;
}


/* Append one link frame holding msg (stolen) to t->frames. */
static void
ngx_http_ticket_add_frame(ngx_http_ticket_task_t *t, json_t *msg)
{
    char           *text;
    unsigned char  *frame, *all;
    size_t          flen;

    text = msg ? json_dumps(msg, JSON_COMPACT | JSON_REAL_PRECISION(12))
               : NULL;
    json_decref(msg);
    if (text == NULL) {
        return;
    }
    frame = ts_link_frame(text, strlen(text), &flen);
    free(text);
    if (frame == NULL) {
        return;
    }
    all = realloc(t->frames, t->frames_len + flen);
    if (all != NULL) {
        memcpy(all + t->frames_len, frame, flen);
        t->frames = all;
        t->frames_len += flen;
    }
    free(frame);
}


/*
 * OpenSSL keeps per-thread state (libjwt's HMAC, the MongoDB driver's
 * hashes) and frees it from a thread-local destructor in pthread_exit().
 * When a worker exits, nginx lets the main thread go on as soon as each
 * pool thread has taken its exit task -- while that thread may still be in
 * pthread_exit() -- and the main thread's exit() tears OpenSSL down
 * (atexit): a pool thread crashed in libcrypto that way at a worker's exit.
 * So a task frees its thread's OpenSSL state before it ends.
 */
void
ngx_http_ticket_thread_run(void (*work)(void *data, ngx_log_t *log),
    void *data, ngx_log_t *log)
{
    work(data, log);
    OPENSSL_thread_stop();
}


static void
ngx_http_ticket_thread_call(void *data, ngx_log_t *log)
{
    ngx_http_ticket_task_t  *t = data;
    json_t                  *ev;
    size_t                   i;
    char                     err[200];

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                   "ticket api thread: start, %uz body bytes%s",
                   t->req.body_len, t->bufs ? " (in a file)" : "");

    /*
     * bcrypt is CPU-bound for tens of milliseconds: a thread that runs it
     * drops to nice 5 so the workers' event loops and the threads doing
     * quick store work win the CPU when logins pile up.
     */
    if (t->heavy && !ngx_http_ticket_niced) {
        ngx_http_ticket_niced = 1;
        (void) setpriority(PRIO_PROCESS, (id_t) syscall(SYS_gettid), 5);
    }

    if (t->bufs && ngx_http_ticket_read_body(t) != 0) {
        ngx_snprintf((u_char *) t->err, sizeof(t->err) - 1,
                     "reading the buffered request body failed%Z");
        ts_api_error(&t->resp, 500, "Internal server error");
        return;
    }

    if (ngx_http_ticket_thread_store(t->tmcf, err, sizeof(err)) == NULL) {
        ngx_snprintf((u_char *) t->err, sizeof(t->err) - 1, "%s%Z", err);
        ts_api_error(&t->resp, 503, "Service unavailable");
        return;
    }

    ts_api_call(&t->tmcf->api, ngx_http_ticket_store, &t->req, &t->resp);

    if (t->resp.status >= 500) {
        ngx_snprintf((u_char *) t->err, sizeof(t->err) - 1, "store: %s%Z",
                     ts_store_errmsg(ngx_http_ticket_store));
    }

    json_array_foreach(t->resp.events, i, ev) {
        ngx_http_ticket_add_frame(t, json_incref(ev));
    }
    if (t->resp.job_stored) {
        ngx_http_ticket_add_frame(t, json_pack("{s:s}", "type", "wake"));
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                   "ticket api thread: done, status %d, %uz events,"
                   " %uz frame bytes", t->resp.status,
                   json_array_size(t->resp.events), t->frames_len);
}


static void
ngx_http_ticket_thread(void *data, ngx_log_t *log)
{
    ngx_http_ticket_thread_run(ngx_http_ticket_thread_call, data, log);
}


static void
ngx_http_ticket_done(ngx_event_t *ev)
{
    ngx_thread_task_t       *task = ev->data;
    ngx_http_ticket_task_t  *t = task->ctx;
    ngx_http_request_t      *r = t->request;
    ngx_connection_t        *c = r->connection;
    ngx_http_ticket_ctx_t   *ctx;
    ngx_str_t                v;
    u_char                   buf[NGX_INT_T_LEN];
    ngx_int_t                rc;

    r->main->blocked--;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "ticket api: task #%ui done, status %d%s", task->id,
                   t->resp.status, c->error ? ", client gone" : "");

    if (t->err[0]) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0, "ticket api: %s", t->err);
    }

    /* events go out even if the client has gone: the change happened */
    if (t->frames) {
        ngx_http_ticket_link_send(t->frames, t->frames_len);
        free(t->frames);
        t->frames = NULL;
    }

    /* what $ticket_user_id / $ticket_user_role show from now on (the
     * log phase): the session the store confirmed, or none */
    ctx = ngx_http_get_module_ctx(r, ngx_http_ticket_module);
    if (ctx && t->resp.authenticated) {
        ctx->role_known = 1;
        ctx->role = t->resp.role;
        ngx_memcpy(ctx->user_id, t->resp.user_id, sizeof(ts_oid_t));
    } else if (ctx && t->resp.session_refused) {
        ctx->session_refused = 1;
    }

    if (c->error) {
        rc = NGX_ERROR;
        goto done;
    }

    if (t->resp.retry_after > 0) {
        v.data = buf;
        v.len = ngx_sprintf(buf, "%d", t->resp.retry_after) - buf;
        (void) ngx_http_ticket_add_header(r, "Retry-After", &v);
    }
    if (t->resp.status == NGX_HTTP_UNAUTHORIZED) {
        ngx_str_set(&v, "Bearer");
        (void) ngx_http_ticket_add_header(r, "WWW-Authenticate", &v);
    }

    rc = ngx_http_ticket_send_json(r, t->resp.status,
                                   (u_char *) t->resp.body,
                                   t->resp.body_len);
done:
    ts_response_free(&t->resp);
    if (t->body_malloced) {
        free(t->body);
        t->body = NULL;
    }
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}

/*
 * This worker's link to ticketd: one Unix-socket connection per nginx
 * worker, framed with ts_link.
 *
 * The link is an optimisation, never a dependency: jobs are already in
 * the store before anything is sent here, so when ticketd is down frames
 * are dropped (events are ephemeral) and the link reconnects with
 * exponential backoff (100 ms doubling to 5 s).  Outgoing bytes wait in a
 * bounded buffer; past NGX_HTTP_TICKET_LINK_MAX_OUT the newest frames are
 * dropped rather than letting a stalled daemon grow worker memory.
 *
 * The connection is marked idle so a graceful shutdown (reload, quit)
 * closes it like an idle keepalive connection; the reconnect timer is
 * cancelable so it never holds a worker up.
 */

#include "ngx_http_ticket_module.h"
#include "ngx_http_ticket_metrics.h"

#include "ts_link.h"

#define NGX_HTTP_TICKET_LINK_MAX_OUT  (8 * 1024 * 1024)
#define NGX_HTTP_TICKET_LINK_MIN_WAIT 100
#define NGX_HTTP_TICKET_LINK_MAX_WAIT 5000
/* the daemon's answer to a hello whose fingerprint is not its own */
#define NGX_HTTP_TICKET_REFUSED       "{\"type\":\"refused\""

typedef struct {
    ngx_str_t            path;          /* NUL-terminated socket path */
    ngx_str_t            config;        /* hello's "config" member, or "" */
    ngx_connection_t    *c;
    ngx_uint_t           connected;
    ngx_event_t          retry;
    ngx_msec_t           wait;
    ngx_log_t           *log;
    u_char              *out;           /* pending bytes, malloc'ed */
    size_t               out_len;
    size_t               out_cap;
    ts_link_decoder_t    dec;
    ngx_uint_t           dropped;       /* frames lost since last notice */
} ngx_http_ticket_link_t;

static ngx_http_ticket_link_t  ngx_http_ticket_link;

static void ngx_http_ticket_link_connect(ngx_event_t *ev);
static void ngx_http_ticket_link_read(ngx_event_t *ev);
static void ngx_http_ticket_link_write(ngx_event_t *ev);
static void ngx_http_ticket_link_close(ngx_uint_t reconnect);
static void ngx_http_ticket_link_flush(void);


ngx_int_t
ngx_http_ticket_link_start(ngx_cycle_t *cycle, ngx_str_t *path,
    ngx_str_t *config)
{
    ngx_http_ticket_link_t  *l = &ngx_http_ticket_link;

    ngx_memzero(l, sizeof(*l));
    l->log = cycle->log;
    l->config = *config;
    l->path.len = path->len;
    l->path.data = ngx_pnalloc(cycle->pool, path->len + 1);
    if (l->path.data == NULL) {
        return NGX_ERROR;
    }
    ngx_memcpy(l->path.data, path->data, path->len);
    l->path.data[path->len] = '\0';

    ts_link_decoder_init(&l->dec);

    l->retry.handler = ngx_http_ticket_link_connect;
    l->retry.log = cycle->log;
    l->retry.data = l;
    l->retry.cancelable = 1;
    l->wait = NGX_HTTP_TICKET_LINK_MIN_WAIT;

    ngx_http_ticket_link_connect(&l->retry);
    return NGX_OK;
}


void
ngx_http_ticket_link_stop(void)
{
    ngx_http_ticket_link_t  *l = &ngx_http_ticket_link;

    if (l->path.data == NULL) {
        return;
    }
    ngx_http_ticket_link_close(0);
    free(l->out);
    l->out = NULL;
    l->out_len = l->out_cap = 0;
    ts_link_decoder_free(&l->dec);
    l->path.data = NULL;
}


const char *
ngx_http_ticket_link_state(void)
{
    ngx_http_ticket_link_t  *l = &ngx_http_ticket_link;

    if (l->path.data == NULL) {
        return "disabled";
    }
    return l->connected ? "connected" : "disconnected";
}


static void
ngx_http_ticket_link_schedule(void)
{
    ngx_http_ticket_link_t  *l = &ngx_http_ticket_link;

    if (ngx_exiting || ngx_quit || ngx_terminate || l->path.data == NULL) {
        return;
    }
    if (!l->retry.timer_set) {
        ngx_add_timer(&l->retry, l->wait);
    }
    l->wait = ngx_min(l->wait * 2, NGX_HTTP_TICKET_LINK_MAX_WAIT);
}


static void
ngx_http_ticket_link_connect(ngx_event_t *ev)
{
    ngx_http_ticket_link_t  *l = &ngx_http_ticket_link;
    struct sockaddr_un       sun;
    ngx_socket_t             s;
    ngx_connection_t        *c;
    ngx_err_t                err;
    ngx_uint_t               level;
    u_char                   hello[256];
    size_t                   n;

    if (l->c != NULL || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, l->log, 0,
                   "ticket link: connecting to \"%V\"", &l->path);

    s = ngx_socket(AF_UNIX, SOCK_STREAM, 0);
    if (s == (ngx_socket_t) -1) {
        ngx_log_error(NGX_LOG_ALERT, l->log, ngx_socket_errno,
                      "ticket link: socket() failed");
        ngx_http_ticket_link_schedule();
        return;
    }
    if (ngx_nonblocking(s) == -1) {
        ngx_close_socket(s);
        ngx_http_ticket_link_schedule();
        return;
    }

    ngx_memzero(&sun, sizeof(sun));
    sun.sun_family = AF_UNIX;
    ngx_memcpy(sun.sun_path, l->path.data, l->path.len);

    /* a Unix-socket connect completes at once or fails at once */
    if (connect(s, (struct sockaddr *) &sun, sizeof(sun)) == -1) {
        err = ngx_socket_errno;
        level = (l->wait >= NGX_HTTP_TICKET_LINK_MAX_WAIT) ? NGX_LOG_WARN
                                                           : NGX_LOG_INFO;
        ngx_log_error(level, l->log, err,
                      "ticket link: connect to ticketd at \"%V\" failed, "
                      "retrying", &l->path);
        ngx_close_socket(s);
        ngx_http_ticket_link_schedule();
        return;
    }

    c = ngx_get_connection(s, l->log);
    if (c == NULL) {
        ngx_close_socket(s);
        ngx_http_ticket_link_schedule();
        return;
    }
    c->recv = ngx_recv;
    c->send = ngx_send;
    c->log = l->log;
    c->read->log = l->log;
    c->write->log = l->log;
    c->read->handler = ngx_http_ticket_link_read;
    c->write->handler = ngx_http_ticket_link_write;
    c->data = l;
    c->idle = 1;            /* closed by a graceful shutdown */
    c->write->ready = 1;

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_close_connection(c);
        ngx_http_ticket_link_schedule();
        return;
    }

    l->c = c;
    l->connected = 1;
    ngx_http_ticket_metrics_link(1);
    l->wait = NGX_HTTP_TICKET_LINK_MIN_WAIT;
    ts_link_decoder_free(&l->dec);
    ts_link_decoder_init(&l->dec);

    ngx_log_error(NGX_LOG_INFO, l->log, 0,
                  "ticket link: connected to ticketd at \"%V\"", &l->path);

    /* nothing is queued while down (see link_send), so hello is first */
    n = ngx_snprintf(hello, sizeof(hello),
                     "{\"type\":\"hello\",\"pid\":%P,\"worker\":%ui%s%V}",
                     ngx_pid, ngx_worker, l->config.len ? "," : "",
                     &l->config) - hello;
    ngx_http_ticket_link_send_message((const char *) hello, n);

    /* rights pushes sent while the link was down are lost: the sockets
     * fall back to the store (DESIGN.md section 7) */
    ngx_http_ticket_ws_views_announce();
    ngx_http_ticket_ws_resync();
}


static void
ngx_http_ticket_link_close(ngx_uint_t reconnect)
{
    ngx_http_ticket_link_t  *l = &ngx_http_ticket_link;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                   "ticket link: close, %uz bytes unsent dropped%s",
                   l->out_len, reconnect ? ", reconnecting" : "");

    if (l->retry.timer_set) {
        ngx_del_timer(&l->retry);
    }
    if (l->c) {
        ngx_close_connection(l->c);
        l->c = NULL;
    }
    if (l->connected) {
        ngx_log_error(NGX_LOG_INFO, l->log, 0,
                      "ticket link: disconnected from ticketd");
    }
    l->connected = 0;
    ngx_http_ticket_metrics_link(0);
    /* what was queued for the old connection may be cut mid-frame */
    l->out_len = 0;

    if (reconnect) {
        ngx_http_ticket_link_schedule();
    }
}


static void
ngx_http_ticket_link_read(ngx_event_t *ev)
{
    ngx_connection_t        *c = ev->data;
    ngx_http_ticket_link_t  *l = &ngx_http_ticket_link;
    u_char                   buf[16384];
    ssize_t                  n;
    const char              *payload;
    size_t                   len;
    int                      rc;

    if (c->close) {
        /* ngx_close_idle_connections(): the worker is shutting down */
        ngx_http_ticket_link_close(0);
        return;
    }

    for ( ;; ) {
        n = c->recv(c, buf, sizeof(buf));
        if (n == NGX_AGAIN) {
            break;
        }
        if (n == 0 || n == NGX_ERROR) {
            ngx_http_ticket_link_close(1);
            return;
        }
        if (ts_link_decoder_feed(&l->dec, buf, n) != 0) {
            ngx_http_ticket_link_close(1);
            return;
        }
        while ((rc = ts_link_decoder_next(&l->dec, &payload, &len)) == 1) {
            /* daemon -> worker: events for this worker's sockets, or
             * ticketd's metrics */
            ngx_log_debug1(NGX_LOG_DEBUG_EVENT, l->log, 0,
                           "ticket link: frame of %uz bytes from ticketd",
                           len);
            if (len > sizeof(NGX_HTTP_TICKET_REFUSED) - 1
                && ngx_strncmp(payload, NGX_HTTP_TICKET_REFUSED,
                               sizeof(NGX_HTTP_TICKET_REFUSED) - 1) == 0)
            {
                /* ticketd reads another nginx.conf: say so, and try
                 * again slowly (ticketd may be restarted with this one) */
                ngx_log_error(NGX_LOG_ERR, l->log, 0,
                              "ticket link: ticketd refused this worker: "
                              "%*s", len, payload);
                ngx_http_ticket_link_close(0);
                l->wait = NGX_HTTP_TICKET_LINK_MAX_WAIT;
                ngx_http_ticket_link_schedule();
                return;
            }
            if (ngx_http_ticket_metrics_daemon(payload, len)
                == NGX_DECLINED)
            {
                ngx_http_ticket_ws_deliver(payload, len);
            }
        }
        if (rc < 0) {
            ngx_log_error(NGX_LOG_ERR, l->log, 0,
                          "ticket link: corrupt frame from ticketd");
            ngx_http_ticket_link_close(1);
            return;
        }
    }

    if (ngx_handle_read_event(ev, 0) != NGX_OK) {
        ngx_http_ticket_link_close(1);
    }
}


static void
ngx_http_ticket_link_flush(void)
{
    ngx_http_ticket_link_t  *l = &ngx_http_ticket_link;
    ngx_connection_t        *c = l->c;
    ssize_t                  n;

    if (c == NULL) {
        return;
    }
    while (l->out_len > 0) {
        n = c->send(c, l->out, l->out_len);
        if (n == NGX_AGAIN) {
            break;
        }
        if (n == NGX_ERROR) {
            ngx_http_ticket_link_close(1);
            return;
        }
        ngx_memmove(l->out, l->out + n, l->out_len - n);
        l->out_len -= n;
    }
    if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
        ngx_http_ticket_link_close(1);
    }
}


static void
ngx_http_ticket_link_write(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    if (c->close) {
        ngx_http_ticket_link_close(0);
        return;
    }
    ngx_http_ticket_link_flush();
}


void
ngx_http_ticket_link_send(const u_char *frames, size_t len)
{
    ngx_http_ticket_link_t  *l = &ngx_http_ticket_link;
    size_t                   cap;
    u_char                  *nb;

    if (l->path.data == NULL || l->c == NULL) {
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                       "ticket link: down, %uz bytes not sent", len);
        return;                 /* no daemon: events are ephemeral */
    }

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, l->log, 0,
                   "ticket link: queue %uz bytes after %uz", len,
                   l->out_len);

    if (l->out_len + len > NGX_HTTP_TICKET_LINK_MAX_OUT) {
        if (l->dropped++ % 1000 == 0) {
            ngx_log_error(NGX_LOG_WARN, l->log, 0,
                          "ticket link: ticketd is not reading, "
                          "dropping events");
        }
        return;
    }

    if (l->out_len + len > l->out_cap) {
        cap = ngx_max(l->out_cap * 2, l->out_len + len);
        cap = ngx_max(cap, 4096);
        nb = realloc(l->out, cap);
        if (nb == NULL) {
            return;
        }
        l->out = nb;
        l->out_cap = cap;
    }
    ngx_memcpy(l->out + l->out_len, frames, len);
    l->out_len += len;

    ngx_http_ticket_link_flush();
}


void
ngx_http_ticket_link_send_message(const char *json, size_t len)
{
    unsigned char  *frame;
    size_t          flen;

    frame = ts_link_frame(json, len, &flen);
    if (frame != NULL) {
        ngx_http_ticket_link_send(frame, flen);
        free(frame);
    }
}

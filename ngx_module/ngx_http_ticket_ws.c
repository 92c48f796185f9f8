/*
 * WebSocket + Engine.IO v4 / Socket.IO v5 inside nginx ("ticket_socketio").
 *
 * A request to the location is upgraded (RFC 6455, 101) and kept as a
 * long-lived connection owned by this file: bytes go through ts_ws (frames)
 * and ts_sio (packets).  Engine.IO: the open packet, server pings every
 * ping interval, a missing pong within the timeout closes.  Socket.IO:
 * CONNECT must carry auth {token} within ticket_socketio_connect_timeout;
 * the token is checked here and the session in the thread pool with
 * ts_session_load(), REST's own function, then CONNECT or CONNECT_ERROR.
 * Events: join_ticket / leave_ticket (ts_ticket_visible(), the rule of
 * GET /api/tickets/:id, in the thread pool).
 *
 * Abuse is bounded per socket: thread tasks in flight
 * (NGX_HTTP_TICKET_WS_MAX_TASKS), client events by a token bucket
 * (ticket_socketio_event_rate), and sockets per user across the node's
 * workers (ticket_socketio_user_sockets, a shared-memory count).
 *
 * Memory: the per-connection state lives in r->pool, allocated once;
 * buffers are malloc'ed and bounded; nothing grows per message.
 * Graceful shutdown: the connection is marked idle, so nginx's
 * ngx_close_idle_connections() reaches our read handler, which sends
 * close 1001.
 *
 * This file owns the upgrade, the packets, the timers and I/O, sending
 * and closing.  The rooms and the delivery of ticketd's events are in
 * ngx_http_ticket_ws_rooms.c, the store checks and the rights pushes in
 * ngx_http_ticket_ws_rights.c; what the three share is in
 * ngx_http_ticket_ws.h.
 */

#include "ngx_http_ticket_ws.h"
#include "ngx_http_ticket_reply.h"

#define NGX_HTTP_TICKET_WS_EARLY      8    /* events kept before CONNECT's
                                              answer */

ngx_queue_t  ngx_http_ticket_ws_sockets;
ngx_uint_t   ngx_http_ticket_ws_ready;

/*
 * Delivered events are queued on the sockets and written once per event
 * loop iteration (a posted event): the events ticketd sent in one burst --
 * often several per read of the link -- reach each socket in one send()
 * instead of one per event, which is most of the cost of a fan-out (the
 * kernel's loopback/TCP work per call).
 *
 * One pass writes at most NGX_HTTP_TICKET_WS_FLUSH_SLICE sockets, then
 * yields to the event loop (ngx_posted_next_events: the next iteration
 * polls without waiting) and goes on where it stopped.  A big room's
 * fan-out then no longer holds the worker for its whole length: requests
 * and the link are served in between, and the events they bring are
 * appended to the queues still waiting, so under load each send() carries
 * several events.  An idle worker finishes a fan-out of thousands of
 * sockets within a few iterations that do not wait.
 */
#define NGX_HTTP_TICKET_WS_FLUSH_SLICE  64

static ngx_queue_t  ngx_http_ticket_ws_unsent;
static ngx_event_t  ngx_http_ticket_ws_flush_ev;

static ngx_int_t ngx_http_ticket_ws_handler(ngx_http_request_t *r);
static void ngx_http_ticket_ws_read(ngx_http_request_t *r);
static void ngx_http_ticket_ws_write(ngx_http_request_t *r);
static void ngx_http_ticket_ws_packet(ngx_http_ticket_ws_t *ws,
    const char *text, size_t len);


char *
ngx_http_ticket_socketio(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ticket_loc_conf_t   *tlcf = conf;
    ngx_http_ticket_main_conf_t  *tmcf;
    ngx_http_core_loc_conf_t     *clcf;

    if (tlcf->socketio != NGX_CONF_UNSET) {
        return "is duplicate";
    }
    tlcf->socketio = 1;
    tmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ticket_module);
    tmcf->socketio_used = 1;
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ticket_ws_handler;
    return NGX_CONF_OK;
}


/* ticket_socketio_event_rate rate [burst]: events per second per socket. */
char *
ngx_http_ticket_socketio_event_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ticket_loc_conf_t  *tlcf = conf;
    ngx_str_t                   *value = cf->args->elts;
    ngx_int_t                    rate, burst;

    if (tlcf->ws_event_rate != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }
    rate = ngx_atoi(value[1].data, value[1].len);
    burst = (cf->args->nelts == 3) ? ngx_atoi(value[2].data, value[2].len)
                                   : rate;
    if (rate == NGX_ERROR || rate < 1 || rate > 100000
        || burst == NGX_ERROR || burst < 1 || burst > 100000)
    {
        return "wants an event rate per second and a burst, each from 1 "
               "to 100000";
    }
    tlcf->ws_event_rate = (ngx_uint_t) rate;
    tlcf->ws_event_burst = (ngx_uint_t) burst;
    return NGX_CONF_OK;
}

/* --- sending ---------------------------------------------------------------- */

static void
ngx_http_ticket_ws_flush(ngx_http_ticket_ws_t *ws)
{
    ngx_connection_t  *c = ws->request->connection;
    ssize_t            n;

    while (ws->out_len > 0) {
        n = c->send(c, ws->out, ws->out_len);
        if (n == NGX_AGAIN) {
            break;
        }
        if (n == NGX_ERROR) {
            c->error = 1;
            ws->out_len = 0;
            ngx_http_ticket_ws_close(ws, 0);
            return;
        }
        ngx_memmove(ws->out, ws->out + n, ws->out_len - n);
        ws->out_len -= n;
    }
    if (ws->out_len == 0 && ws->out != NULL) {
        /* an idle socket holds no send buffer */
        free(ws->out);
        ws->out = NULL;
        ws->out_cap = 0;
    }
    if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
        ngx_http_ticket_ws_close(ws, 0);
    }
}


/* Append one frame to the socket's buffer; -1 when the socket was closed
 * instead (a reader too far behind: 1008). */
static ngx_int_t
ngx_http_ticket_ws_queue(ngx_http_ticket_ws_t *ws, ts_ws_opcode_e op,
    const void *payload, size_t len)
{
    unsigned char  hdr[TS_WS_MAX_HEADER];
    size_t         hlen, cap;
    u_char        *nb;

    if (ws->closed) {
        return -1;
    }
    hlen = ts_ws_frame_header(op, len, hdr);
    /* the bound is on what waits: one event larger than the buffer still
     * goes to a reader that has kept up */
    if (ws->out_len > 0
        && ws->out_len + hlen + len > ws->conf->ws_send_buffer)
    {
        ngx_log_error(NGX_LOG_INFO, ws->request->connection->log, 0,
                      "socket.io: slow reader, %uz bytes queued, closing",
                      ws->out_len);
        ws->out_len = 0;
        ngx_http_ticket_ws_reset(ws);
        ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_POLICY);
        return -1;
    }
    if (ws->out_len + hlen + len > ws->out_cap) {
        cap = ngx_max(ws->out_cap * 2, ws->out_len + hlen + len);
        cap = ngx_max(cap, 1024);
        nb = realloc(ws->out, cap);
        if (nb == NULL) {
            ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_INTERNAL);
            return -1;
        }
        ws->out = nb;
        ws->out_cap = cap;
    }
    ngx_memcpy(ws->out + ws->out_len, hdr, hlen);
    if (len) {
        ngx_memcpy(ws->out + ws->out_len + hlen, payload, len);
    }
    ws->out_len += hlen + len;
    return 0;
}


/* Queue one frame and write it now (answers to this socket's own
 * packets). */
static void
ngx_http_ticket_ws_send(ngx_http_ticket_ws_t *ws, ts_ws_opcode_e op,
    const void *payload, size_t len)
{
    if (ngx_http_ticket_ws_queue(ws, op, payload, len) == 0) {
        ngx_http_ticket_ws_flush(ws);
    }
}


/* Queue one frame, written with the others at the end of this iteration. */
void
ngx_http_ticket_ws_send_later(ngx_http_ticket_ws_t *ws, const char *s,
    size_t len)
{
    if (ngx_http_ticket_ws_queue(ws, TS_WS_TEXT, s, len) != 0) {
        return;
    }
    if (!ws->queued) {
        ws->queued = 1;
        ngx_queue_insert_tail(&ngx_http_ticket_ws_unsent, &ws->unsent);
    }
    if (!ngx_http_ticket_ws_flush_ev.posted) {
        ngx_post_event(&ngx_http_ticket_ws_flush_ev, &ngx_posted_events);
    }
}


static void
ngx_http_ticket_ws_flush_unsent(ngx_event_t *ev)
{
    ngx_uint_t             n;
    ngx_queue_t           *q;
    ngx_http_ticket_ws_t  *ws;

    for (n = 0; n < NGX_HTTP_TICKET_WS_FLUSH_SLICE; n++) {
        if (ngx_queue_empty(&ngx_http_ticket_ws_unsent)) {
            return;
        }
        q = ngx_queue_head(&ngx_http_ticket_ws_unsent);
        ngx_queue_remove(q);
        ws = ngx_queue_data(q, ngx_http_ticket_ws_t, unsent);
        ws->queued = 0;
        ngx_http_ticket_ws_flush(ws);
    }
    if (!ngx_queue_empty(&ngx_http_ticket_ws_unsent)) {
        ngx_post_event(ev, &ngx_posted_next_events);
    }
}


void
ngx_http_ticket_ws_send_text(ngx_http_ticket_ws_t *ws, const char *s,
    size_t len)
{
    ngx_http_ticket_ws_send(ws, TS_WS_TEXT, s, len);
}


/* Send a malloc'ed, NUL-terminated packet from a ts_sio encoder (JSON
 * text holds no NUL) and free it. */
void
ngx_http_ticket_ws_send_owned(ngx_http_ticket_ws_t *ws, char *packet)
{
    if (packet != NULL) {
        ngx_http_ticket_ws_send_text(ws, packet, ngx_strlen(packet));
        free(packet);
    }
}


/* Tell ticketd a session of this socket's user began (+1) or ended (-1). */
void
ngx_http_ticket_ws_presence(ngx_http_ticket_ws_t *ws, int delta)
{
    u_char  msg[128];
    size_t  n;

    n = ngx_snprintf(msg, sizeof(msg),
                     "{\"type\":\"presence\",\"userId\":\"%s\","
                     "\"delta\":%d}", ws->claims.user_id, delta) - msg;
    ngx_http_ticket_link_send_message((const char *) msg, n);
}


/* --- closing ---------------------------------------------------------------- */

/* One best-effort write of a close frame, never in the middle of a queued
 * frame: the peer may be gone already. */
static void
ngx_http_ticket_ws_send_close(ngx_http_ticket_ws_t *ws, uint16_t code)
{
    ngx_connection_t  *c = ws->request->connection;
    unsigned char      payload[TS_WS_MAX_CONTROL];
    unsigned char      frame[TS_WS_MAX_CONTROL + TS_WS_MAX_HEADER];
    size_t             plen, flen;

    if (code == 0 || c->error || ws->out_len != 0) {
        return;
    }
    plen = ts_ws_close_payload(code, NULL, payload);
    flen = ts_ws_frame(TS_WS_CLOSE, payload, plen, frame, sizeof(frame));
    if (flen) {
        (void) c->send(c, frame, flen);
    }
}


/* The socket's session ends (a close, or the client's DISCONNECT): ticketd
 * and the per-user count are told, the token's expiry timer goes. */
static void
ngx_http_ticket_ws_unauth(ngx_http_ticket_ws_t *ws)
{
    if (!ws->authed) {
        return;
    }
    ws->authed = 0;
    ngx_http_ticket_ws_presence(ws, -1);
    if (ws->counted) {
        ws->counted = 0;
        ngx_http_ticket_ws_users_release(ws->mconf, ws->claims.user_id);
    }
    if (ws->deadline.timer_set) {
        ngx_del_timer(&ws->deadline);
    }
}


/*
 * Everything a socket holds goes, once, on either way out: our own close,
 * or the request ending under us (the pool cleanup).  The peer is told
 * with a close frame first, and ticketd that the session ended.
 */
static void
ngx_http_ticket_ws_release(ngx_http_ticket_ws_t *ws, uint16_t code)
{
    ws->closed = 1;
    ngx_http_ticket_ws_send_close(ws, code);
    ngx_http_ticket_ws_unauth(ws);
    if (ws->ping.timer_set) {
        ngx_del_timer(&ws->ping);
    }
    if (ws->deadline.timer_set) {
        ngx_del_timer(&ws->deadline);
    }
    ngx_queue_remove(&ws->queue);
    ngx_http_ticket_metrics_sockets(-1);
    ngx_http_ticket_ws_leave_all(ws);
    if (ws->queued) {
        ws->queued = 0;
        ngx_queue_remove(&ws->unsent);
    }
    ts_ws_parser_free(ws->parser);
    ws->parser = NULL;
    free(ws->out);
    ws->out = NULL;
    ws->out_len = ws->out_cap = 0;
    free(ws->held.buf);
    ngx_memzero(&ws->held, sizeof(ws->held));
    free(ws->early.buf);
    ngx_memzero(&ws->early, sizeof(ws->early));
}


/*
 * Close a socket from anywhere: everything it holds is released now, the
 * request is finalized by a posted event.  Callers may still look at ws
 * (ws->closed) after this returns, and a close from outside the request's
 * own handlers -- a delivery, a rights push, a timer -- still ends the
 * connection at once: the termination nginx posts for a request with a
 * write handler runs only when someone runs the connection's posted
 * requests, which the closer does.
 */
void
ngx_http_ticket_ws_close(ngx_http_ticket_ws_t *ws, uint16_t code)
{
    if (ws->closed) {
        return;
    }
    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ws->request->connection->log, 0,
                   "socket.io: close %ui, %ui tasks in flight",
                   (ngx_uint_t) code, ws->tasks);
    ngx_http_ticket_ws_release(ws, code);
    ngx_post_event(&ws->closer, &ngx_posted_events);
}


/*
 * Finalize a closed socket's request, unless a thread task still uses it:
 * then the last task's completion finalizes, and meanwhile the closer is
 * also a timer that is not cancelable, so a worker shutting down waits
 * for the task instead of exiting with the connection open.
 */
void
ngx_http_ticket_ws_finalize(ngx_http_ticket_ws_t *ws)
{
    if (ws->closer.posted) {
        ngx_delete_posted_event(&ws->closer);
    }
    if (ws->tasks == 0) {
        ngx_http_finalize_request(ws->request, NGX_HTTP_CLOSE);
    } else if (!ws->closer.timer_set) {
        ngx_add_timer(&ws->closer, 1000);
    }
}


static void
ngx_http_ticket_ws_closer(ngx_event_t *ev)
{
    ngx_http_ticket_ws_t  *ws = ev->data;
    ngx_connection_t      *c = ws->request->connection;

    ngx_http_ticket_ws_finalize(ws);
    ngx_http_run_posted_requests(c);
}


/* A reader too far behind: its connection is reset, so the kernel drops
 * what it still buffers for it at once instead of holding the socket
 * (and its send buffer) while the peer keeps its window shut. */
void
ngx_http_ticket_ws_reset(ngx_http_ticket_ws_t *ws)
{
    ngx_connection_t  *c = ws->request->connection;
    struct linger      linger;

    linger.l_onoff = 1;
    linger.l_linger = 0;
    if (setsockopt(c->fd, SOL_SOCKET, SO_LINGER, (const void *) &linger,
                   sizeof(struct linger)) == -1)
    {
        ngx_log_error(NGX_LOG_ALERT, c->log, ngx_socket_errno,
                      "setsockopt(SO_LINGER) failed");
    }
}


void
ngx_http_ticket_ws_shutdown(void)
{
    ngx_queue_t           *q;
    ngx_http_ticket_ws_t  *ws;
    ngx_connection_t      *c;

    if (!ngx_http_ticket_ws_ready) {
        return;
    }
    /* the process exits: no posted event runs any more */
    while (!ngx_queue_empty(&ngx_http_ticket_ws_sockets)) {
        q = ngx_queue_head(&ngx_http_ticket_ws_sockets);
        ws = ngx_queue_data(q, ngx_http_ticket_ws_t, queue);
        c = ws->request->connection;
        ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_GOING);
        ngx_http_ticket_ws_finalize(ws);
        ngx_http_run_posted_requests(c);
    }
}

/* --- Engine.IO / Socket.IO packets ------------------------------------------ */

static void
ngx_http_ticket_ws_connect(ngx_http_ticket_ws_t *ws, ts_sio_packet_t *p)
{
    json_t       *token = json_object_get(p->data, "token");
    const char   *tok;
    ngx_int_t     rc;

    if (ws->authed || ws->connecting) {
        return;
    }
    if (ngx_strcmp(p->nsp, "/") != 0) {
        ngx_http_ticket_ws_send_owned(ws,
            ts_sio_connect_error(p->nsp, "Invalid namespace", NULL));
        return;
    }
    tok = json_string_value(token);
    if (tok == NULL || *tok == '\0') {
        ngx_http_ticket_ws_send_owned(ws,
            ts_sio_connect_error(NULL, "Access Denied. No token found.", NULL));
        return;
    }
    if (ngx_http_ticket_verify(ws->mconf, (u_char *) tok, ngx_strlen(tok),
                               &ws->claims) != NGX_OK)
    {
        ngx_http_ticket_ws_send_owned(ws,
            ts_sio_connect_error(NULL, "Invalid token", NULL));
        return;
    }
    rc = ngx_http_ticket_ws_post(ws, NGX_HTTP_TICKET_WS_CONNECT, NULL, -1);
    if (rc != NGX_OK) {
        ngx_http_ticket_ws_send_owned(ws,
            ts_sio_connect_error(NULL, rc == NGX_BUSY
                                       ? "Too many requests in progress"
                                       : "Internal server error", NULL));
        return;
    }
    ws->connecting = 1;
}


/* 1 when the socket may send one more event now (a token bucket of
 * ticket_socketio_event_rate per second, burst tokens deep). */
static ngx_uint_t
ngx_http_ticket_ws_rate(ngx_http_ticket_ws_t *ws)
{
    ngx_msec_int_t  ms;
    ngx_uint_t      cap;

    cap = ws->conf->ws_event_burst * 1000;
    ms = (ngx_msec_int_t) (ngx_current_msec - ws->bucket_at);
    ws->bucket_at = ngx_current_msec;
    if (ms > 0) {
        ws->bucket = ngx_min(cap, ws->bucket
                                  + (ngx_uint_t) ms * ws->conf->ws_event_rate);
    }
    if (ws->bucket < 1000) {
        return 0;
    }
    ws->bucket -= 1000;
    return 1;
}


static void
ngx_http_ticket_ws_event(ngx_http_ticket_ws_t *ws, ts_sio_packet_t *p)
{
    const char                   *id;
    ngx_http_ticket_ws_member_t  *m;
    ngx_int_t                     rc;

    id = json_string_value(json_array_get(p->args, 0));

    if (!ws->authed) {
        return;                 /* events before CONNECT are ignored */
    }
    if (!ngx_http_ticket_ws_rate(ws)) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ws->request->connection->log, 0,
                       "socket.io: event over the rate, refused");
        ngx_http_ticket_ws_ack_error(ws, p->ack_id,
                              "Too many requests, please try again later.");
        return;
    }
    if (ngx_strcmp(p->event, "join_ticket") == 0) {
        if (id == NULL || !ts_oid_valid(id)) {
            ngx_http_ticket_ws_ack_error(ws, p->ack_id, "Ticket not found");
            return;
        }
        rc = ngx_http_ticket_ws_post(ws, NGX_HTTP_TICKET_WS_JOIN, id,
                                     p->ack_id);
        if (rc != NGX_OK) {
            ngx_http_ticket_ws_ack_error(ws, p->ack_id, rc == NGX_BUSY
                                         ? "Too many requests in progress"
                                         : "Internal server error");
        }
        return;
    }
    if (ngx_strcmp(p->event, "typing") == 0) {
        ngx_http_ticket_ws_typing(ws, json_array_get(p->args, 0));
        ngx_http_ticket_ws_ack(ws, p->ack_id, json_pack("{s:b}", "ok", 1));
        return;
    }
    if (ngx_strcmp(p->event, "leave_ticket") == 0) {
        if (id != NULL && (m = ngx_http_ticket_ws_membership(ws, id)) != NULL) {
            ngx_http_ticket_ws_leave(m);
        }
        ngx_http_ticket_ws_ack(ws, p->ack_id, json_pack("{s:b}", "ok", 1));
        return;
    }
    ngx_http_ticket_ws_ack_error(ws, p->ack_id, "Unknown event");
}


/* --- stashes ---------------------------------------------------------------- */

typedef struct {
    ts_oid_t   tag;           /* all zero bytes: none */
    u_char     staff;         /* for the staff on the tag's ticket only */
    size_t     len;
} ngx_http_ticket_ws_record_t;


ngx_int_t
ngx_http_ticket_ws_stash_add(ngx_http_ticket_ws_stash_t *st,
    const char *tag, ngx_uint_t staff, const char *data, size_t len,
    size_t limit)
{
    ngx_http_ticket_ws_record_t   r;
    size_t                        need, cap;
    u_char                       *nb;

    need = st->len + sizeof(r) + len;
    if (st->len > 0 && need > limit) {
        return NGX_DECLINED;
    }
    if (need > st->cap) {
        cap = ngx_max(st->cap * 2, ngx_max(need, 1024));
        nb = realloc(st->buf, cap);
        if (nb == NULL) {
            return NGX_ERROR;
        }
        st->buf = nb;
        st->cap = cap;
    }
    ngx_memzero(&r, sizeof(r));
    if (tag != NULL) {
        ngx_memcpy(r.tag, tag, sizeof(ts_oid_t));
    }
    r.staff = (u_char) staff;
    r.len = len;
    ngx_memcpy(st->buf + st->len, &r, sizeof(r));
    ngx_memcpy(st->buf + st->len + sizeof(r), data, len);
    st->len = need;
    st->n++;
    return NGX_OK;
}


void
ngx_http_ticket_ws_stash_drain(ngx_http_ticket_ws_t *ws,
    ngx_http_ticket_ws_stash_t *st, void (*each)(ngx_http_ticket_ws_t *ws,
    const char *tag, ngx_uint_t staff, const char *data, size_t len))
{
    ngx_http_ticket_ws_stash_t    took = *st;
    ngx_http_ticket_ws_record_t   r;
    size_t                        off = 0;

    /* each() may stash again (a replayed event, a new hold) */
    ngx_memzero(st, sizeof(*st));
    while (off < took.len && !ws->closed) {
        ngx_memcpy(&r, took.buf + off, sizeof(r));
        off += sizeof(r);
        each(ws, r.tag[0] ? r.tag : NULL, r.staff, (char *) took.buf + off,
             r.len);
        off += r.len;
    }
    free(took.buf);
}


/*
 * An event sent after CONNECT but before its answer (a client that
 * pipelines, or a CONNECT check slow in the thread pool) is kept, up to
 * NGX_HTTP_TICKET_WS_EARLY of them within the send buffer's size, and
 * handled in order once the session is known -- not dropped in silence.
 */
static void
ngx_http_ticket_ws_keep_early(ngx_http_ticket_ws_t *ws, const char *text,
    size_t len)
{
    ngx_int_t  rc;

    rc = ws->early.n == NGX_HTTP_TICKET_WS_EARLY
         ? NGX_DECLINED
         : ngx_http_ticket_ws_stash_add(&ws->early, NULL, 0, text, len,
                                        ws->conf->ws_send_buffer);
    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_INFO, ws->request->connection->log, 0,
                      "socket.io: more than %d events or %uz bytes before "
                      "CONNECT's answer, closing", NGX_HTTP_TICKET_WS_EARLY,
                      ws->conf->ws_send_buffer);
        ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_POLICY);
    } else if (rc == NGX_ERROR) {
        ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_INTERNAL);
    }
}


static void
ngx_http_ticket_ws_replay_one(ngx_http_ticket_ws_t *ws, const char *tag,
    ngx_uint_t staff, const char *text, size_t len)
{
    ngx_http_ticket_ws_packet(ws, text, len);
}


/* CONNECT is answered: the events kept meanwhile are handled now (and,
 * without a session, ignored as any event before CONNECT is). */
void
ngx_http_ticket_ws_replay_early(ngx_http_ticket_ws_t *ws)
{
    ngx_http_ticket_ws_stash_drain(ws, &ws->early,
                                   ngx_http_ticket_ws_replay_one);
}


static void
ngx_http_ticket_ws_packet(ngx_http_ticket_ws_t *ws, const char *text,
    size_t len)
{
    ts_sio_packet_t  p;
    char             err[128];

    if (ts_sio_parse(text, len, ws->conf->ws_max_message, &p, err,
                     sizeof(err)) != 0)
    {
        ngx_log_error(NGX_LOG_INFO, ws->request->connection->log, 0,
                      "socket.io: bad packet: %s", err);
        ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_POLICY);
        return;
    }

    switch (p.eio) {
    case TS_EIO_PONG:
        /* in time: the next ping goes a full interval from now */
        ws->awaiting_pong = 0;
        ngx_add_timer(&ws->ping, ws->conf->ping_interval);
        break;
    case TS_EIO_PING:
        ngx_http_ticket_ws_send_text(ws, "3", 1);
        break;
    case TS_EIO_CLOSE:
        ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_NORMAL);
        break;
    case TS_EIO_MESSAGE:
        if (!p.has_sio) {
            break;
        }
        if (p.sio == TS_SIO_CONNECT) {
            ngx_http_ticket_ws_connect(ws, &p);
        } else if (p.sio == TS_SIO_EVENT && ws->connecting) {
            ngx_http_ticket_ws_keep_early(ws, text, len);
        } else if (p.sio == TS_SIO_EVENT) {
            ngx_http_ticket_ws_event(ws, &p);
        } else if (p.sio == TS_SIO_DISCONNECT && ws->authed) {
            ngx_http_ticket_ws_unauth(ws);
            ngx_http_ticket_ws_leave_all(ws);
            /* unauthenticated again: a new CONNECT is due in time */
            ngx_add_timer(&ws->deadline, ws->conf->ws_connect_timeout);
        }
        break;
    default:
        break;
    }
    ts_sio_packet_clear(&p);
}


/* --- timers and I/O ----------------------------------------------------------- */

static void
ngx_http_ticket_ws_ping(ngx_event_t *ev)
{
    ngx_http_ticket_ws_t  *ws = ev->data;

    if (ws->awaiting_pong) {
        ngx_log_error(NGX_LOG_INFO, ws->request->connection->log, 0,
                      "socket.io: no pong, closing");
        ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_GOING);
        ngx_http_run_posted_requests(ws->request->connection);
        return;
    }
    ws->awaiting_pong = 1;
    ngx_http_ticket_ws_send_text(ws, "2", 1);
    if (!ws->closed) {
        /* the pong must come within the timeout (see TS_EIO_PONG) */
        ngx_add_timer(&ws->ping, ws->conf->ping_timeout);
    }
}


static void
ngx_http_ticket_ws_read(ngx_http_request_t *r)
{
    ngx_http_ticket_ws_t  *ws = ngx_http_get_module_ctx(r,
                                                        ngx_http_ticket_module);
    ngx_connection_t      *c = r->connection;
    u_char                 buf[8192];
    ssize_t                n;
    size_t                 used, off;
    ts_ws_msg_t            msg;
    int                    rc;

    if (ws == NULL) {
        return;
    }
    if (c->close) {
        /* ngx_close_idle_connections(): the worker is going away, and
         * may exit before a posted closer would run */
        ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_GOING);
        ngx_http_ticket_ws_finalize(ws);
        return;
    }
    if (ws->closed) {
        return;
    }

    for ( ;; ) {
        n = c->recv(c, buf, sizeof(buf));
        if (n == NGX_AGAIN) {
            break;
        }
        if (n == 0 || n == NGX_ERROR) {
            c->error = 1;
            ngx_http_ticket_ws_close(ws, 0);
            return;
        }
        off = 0;
        do {
            rc = ts_ws_parse(ws->parser, buf + off, (size_t) n - off, &used,
                             &msg);
            off += used;
            if (rc < 0) {
                ngx_http_ticket_ws_close(ws, (uint16_t) -rc);
                return;
            }
            if (rc == 0) {
                break;
            }
            switch (msg.opcode) {
            case TS_WS_TEXT:
                ngx_http_ticket_ws_packet(ws, (const char *) msg.data,
                                          msg.len);
                break;
            case TS_WS_PING:
                ngx_http_ticket_ws_send(ws, TS_WS_PONG, msg.data, msg.len);
                break;
            case TS_WS_CLOSE:
                ngx_http_ticket_ws_close(ws, msg.close_code == 1005
                                             ? TS_WS_CLOSE_NORMAL
                                             : msg.close_code);
                return;
            default:
                break;          /* binary and pong frames carry nothing */
            }
            if (ws->closed) {
                return;
            }
        } while (off < (size_t) n);
    }

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_http_ticket_ws_close(ws, 0);
    }
}


static void
ngx_http_ticket_ws_write(ngx_http_request_t *r)
{
    ngx_http_ticket_ws_t  *ws = ngx_http_get_module_ctx(r,
                                                        ngx_http_ticket_module);

    if (ws != NULL && !ws->closed) {
        ngx_http_ticket_ws_flush(ws);
    }
}

/* --- the upgrade ------------------------------------------------------------ */

static const char *
ngx_http_ticket_ws_header(ngx_http_request_t *r, const char *name)
{
    ngx_table_elt_t  *h = ngx_http_ticket_find_header(r, name);

    return h ? (const char *) h->value.data : NULL;
}


static void
ngx_http_ticket_ws_cleanup(void *data)
{
    ngx_http_ticket_ws_t  *ws = data;

    if (!ws->closed) {
        /*
         * The request ends without our close: nginx terminated it, as a
         * graceful shutdown does (ngx_close_idle_connections() marks the
         * connection and the request handler terminates it before any
         * read handler runs).  The peer still gets a 1001.
         */
        ngx_http_ticket_ws_release(ws, TS_WS_CLOSE_GOING);
    }
    if (ws->closer.posted) {
        ngx_delete_posted_event(&ws->closer);
    }
    if (ws->closer.timer_set) {
        ngx_del_timer(&ws->closer);
    }
}


static ngx_int_t
ngx_http_ticket_ws_handler(ngx_http_request_t *r)
{
    ngx_http_ticket_loc_conf_t  *tlcf;
    ngx_http_core_loc_conf_t    *clcf;
    ngx_http_ticket_ws_t        *ws;
    ngx_pool_cleanup_t          *cln;
    ngx_str_t                    v, transport;
    char                         accept[TS_WS_ACCEPT_LEN + 1];
    const char                  *why;
    char                        *open;
    int                          status;

    if (r != r->main) {
        return NGX_DECLINED;
    }
    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_ticket_module);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "socket.io: %V \"%V\"", &r->method_name, &r->uri);

    if (!ngx_http_ticket_ws_ready) {
        ngx_queue_init(&ngx_http_ticket_ws_sockets);
        ngx_queue_init(&ngx_http_ticket_ws_unsent);
        ngx_rbtree_init(&ngx_http_ticket_ws_rooms,
                        &ngx_http_ticket_ws_rooms_sentinel,
                        ngx_str_rbtree_insert_value);
        ngx_http_ticket_ws_flush_ev.handler = ngx_http_ticket_ws_flush_unsent;
        ngx_http_ticket_ws_flush_ev.log = ngx_cycle->log;
        ngx_http_ticket_ws_ready = 1;
    }

    /* only the websocket transport: answer polling as Engine.IO does */
    if (ngx_http_arg(r, (u_char *) "transport", 9, &transport) == NGX_OK
        && !(transport.len == 9
             && ngx_strncmp(transport.data, "websocket", 9) == 0))
    {
        (void) ngx_http_discard_request_body(r);
        return ngx_http_ticket_send_json(r, NGX_HTTP_BAD_REQUEST,
                   (u_char *) "{\"code\":0,\"message\":\"Transport unknown\"}",
                   sizeof("{\"code\":0,\"message\":\"Transport unknown\"}")
                   - 1);
    }

    status = ts_ws_handshake(r->method == NGX_HTTP_GET ? "GET" : "OTHER",
                             r->http_version == NGX_HTTP_VERSION_11
                             ? "HTTP/1.1" : "HTTP/1.0",
                             ngx_http_ticket_ws_header(r, "Upgrade"),
                             ngx_http_ticket_ws_header(r, "Connection"),
                             ngx_http_ticket_ws_header(r,
                                                    "Sec-WebSocket-Version"),
                             ngx_http_ticket_ws_header(r, "Sec-WebSocket-Key"),
                             accept, &why);
    if (status != 0) {
        (void) ngx_http_discard_request_body(r);
        if (status == 426) {
            ngx_str_set(&v, "13");
            (void) ngx_http_ticket_add_header(r, "Sec-WebSocket-Version", &v);
        }
        return ngx_http_ticket_send_error(r, status,
                                          "WebSocket handshake required");
    }
    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_BAD_REQUEST;
    }

    ws = ngx_pcalloc(r->pool, sizeof(ngx_http_ticket_ws_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (ws == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ws->request = r;
    ws->conf = tlcf;
    ngx_queue_init(&ws->rooms);
    ws->mconf = ngx_http_get_module_main_conf(r, ngx_http_ticket_module);
    ws->parser = ts_ws_parser_new(tlcf->ws_max_message);
    if (ws->parser == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_queue_insert_tail(&ngx_http_ticket_ws_sockets, &ws->queue);
    ngx_http_ticket_metrics_sockets(1);
    cln->handler = ngx_http_ticket_ws_cleanup;
    cln->data = ws;
    ngx_http_set_ctx(r, ws, ngx_http_ticket_module);
    ts_sio_sid(ws->sid);

    /* 101: nginx's header filter writes "Connection: upgrade" itself */
    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;
    r->headers_out.content_length_n = -1;
    r->keepalive = 0;
    ngx_str_set(&v, "websocket");
    if (ngx_http_ticket_add_header(r, "Upgrade", &v) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    v.data = (u_char *) accept;
    v.len = ngx_strlen(accept);
    if (ngx_http_ticket_add_header(r, "Sec-WebSocket-Accept", &v) != NGX_OK
        || ngx_http_send_header(r) == NGX_ERROR
        || ngx_http_send_special(r, NGX_HTTP_FLUSH) == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    /* from here the connection is ours */
    r->read_event_handler = ngx_http_ticket_ws_read;
    r->write_event_handler = ngx_http_ticket_ws_write;
    r->connection->idle = 1;           /* a graceful shutdown reaches us */
    r->connection->log->action = "serving socket.io";
    r->main->count++;

    /* events are small writes that must not wait for the peer's delayed
     * ACK (Nagle); as nginx does for proxied upgrades, per tcp_nodelay */
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    if (clcf->tcp_nodelay && ngx_tcp_nodelay(r->connection) != NGX_OK) {
        return NGX_ERROR;
    }

    ws->ping.handler = ngx_http_ticket_ws_ping;
    ws->ping.data = ws;
    ws->ping.log = r->connection->log;
    ws->ping.cancelable = 1;
    ws->deadline.handler = ngx_http_ticket_ws_deadline;
    ws->deadline.data = ws;
    ws->deadline.log = r->connection->log;
    ws->deadline.cancelable = 1;
    ws->closer.handler = ngx_http_ticket_ws_closer;
    ws->closer.data = ws;
    ws->closer.log = r->connection->log;
    ws->bucket = tlcf->ws_event_burst * 1000;
    ws->bucket_at = ngx_current_msec;

    open = ts_eio_open(ws->sid, (int) tlcf->ping_interval,
                       (int) tlcf->ping_timeout, (int) tlcf->ws_max_message,
                       NULL);
    ngx_http_ticket_ws_send_owned(ws, open);
    if (!ws->closed) {
        ngx_add_timer(&ws->ping, tlcf->ping_interval);
        ngx_add_timer(&ws->deadline, tlcf->ws_connect_timeout);
    }

    if (ngx_handle_read_event(r->connection->read, 0) != NGX_OK) {
        return NGX_ERROR;
    }
    return NGX_DONE;
}

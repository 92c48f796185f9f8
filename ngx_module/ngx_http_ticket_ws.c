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
 * Rights follow REST continuously (DESIGN.md section 7): no role or room
 * is trusted past the push that can invalidate it.  ticketd's internal
 * rights events (ts_session.h) are applied here and never reach a client:
 * session_revoked closes that token's sockets, user_changed and
 * ticket_access_changed re-authorise the sockets concerned in the thread
 * pool (rooms no longer visible are left with a room_left event), and a
 * link to ticketd that comes back re-authorises every socket, since
 * pushes may have been missed.  The token's exp closes its socket.  A
 * check in flight while such a push arrives is stale and is run again
 * (ws->gen, ngx_http_ticket_ws_access_epoch).  While a socket is being
 * re-authorised, the events for it are held, not sent: a push is applied
 * before the events that follow it on the link (a comment posted right
 * after a demotion, the ticket_updated that follows a reassignment), and
 * the held events go out once the check is done, those of the rooms the
 * socket left dropped.
 *
 * Abuse is bounded per socket: thread tasks in flight
 * (NGX_HTTP_TICKET_WS_MAX_TASKS), client events by a token bucket
 * (ticket_socketio_event_rate), and sockets per user across the node's
 * workers (ticket_socketio_user_sockets, a shared-memory count).
 *
 * Delivery: ticketd sends every event to every worker; this worker encodes
 * it once and queues it on its local sockets in the room (or on every
 * authenticated socket for user_status_changed).  Each socket has a
 * bounded send buffer: a reader that falls behind by more than
 * ticket_socketio_send_buffer is closed, so memory stays flat.
 *
 * Memory: the per-connection state lives in r->pool, allocated once;
 * buffers are malloc'ed and bounded; nothing grows per message.
 * Graceful shutdown: the connection is marked idle, so nginx's
 * ngx_close_idle_connections() reaches our read handler, which sends
 * close 1001.
 */

#include "ngx_http_ticket_module.h"
#include "ngx_http_ticket_reply.h"

#include "ts_event.h"
#include "ts_session.h"
#include "ts_sio.h"
#include "ts_ws.h"

#define NGX_HTTP_TICKET_WS_ROOMS   64      /* rooms one socket may join */
#define NGX_HTTP_TICKET_WS_MAX_TASKS  4    /* client tasks in flight */
#define NGX_HTTP_TICKET_WS_MAX_REDO   8    /* stale checks run again */
#define NGX_HTTP_TICKET_WS_EARLY      8    /* events kept before CONNECT's
                                              answer */

typedef struct ngx_http_ticket_ws_s  ngx_http_ticket_ws_t;

struct ngx_http_ticket_ws_s {
    ngx_http_request_t          *request;
    ngx_http_ticket_loc_conf_t  *conf;
    ngx_http_ticket_main_conf_t *mconf;
    ts_ws_parser_t              *parser;
    ngx_queue_t                  queue;        /* this worker's sockets */

    u_char                      *out;          /* pending bytes, malloc'ed */
    size_t                       out_len;
    size_t                       out_cap;

    ngx_event_t                  ping;
    ngx_uint_t                   awaiting_pong;

    ngx_event_t                  deadline;     /* CONNECT due, then exp */
    ngx_event_t                  closer;       /* finalizes after a close */

    char                         sid[TS_SIO_SID_LEN + 1];
    ts_claims_t                  claims;
    ngx_uint_t                   connecting;   /* CONNECT being checked */
    ngx_uint_t                   authed;
    ngx_uint_t                   counted;      /* in the per-user count */
    ngx_uint_t                   closed;
    ngx_uint_t                   tasks;        /* thread tasks in flight */
    ngx_uint_t                   client_tasks; /* ... of them CONNECT/join */

    ngx_uint_t                   gen;          /* rights pushes seen */
    ngx_uint_t                   reauth;       /* re-authorisation running */
    ngx_uint_t                   reauth_again; /* ... and another is due */

    u_char                      *early;        /* events before CONNECT's
                                                  answer, replayed after */
    size_t                       early_len;
    ngx_uint_t                   nearly;

    u_char                      *held;         /* events held meanwhile */
    size_t                       held_len;
    size_t                       held_cap;

    ngx_msec_t                   bucket_at;    /* event rate token bucket */
    ngx_uint_t                   bucket;       /* tokens x 1000 */

    ngx_uint_t                   nrooms;
    ngx_queue_t                  rooms;        /* its memberships */

    ngx_queue_t                  unsent;       /* in ngx_http_ticket_ws_unsent */
    ngx_uint_t                   queued;       /* ... when set */
};

static ngx_queue_t  ngx_http_ticket_ws_sockets;
static ngx_uint_t   ngx_http_ticket_ws_ready;
/* ticket_access_changed pushes seen: a join check older than one is
 * stale */
static ngx_uint_t   ngx_http_ticket_ws_access_epoch;

/*
 * The rooms of this worker, by ticket id (a red-black tree of the ids'
 * CRC32s), each with its members in the order they joined: an event for a
 * room costs its members, not every socket of the worker, and a socket
 * pays only for the rooms it is in.  A room lives while it has members.
 */
typedef struct {
    ngx_str_node_t   sn;           /* sn.str: id */
    ngx_queue_t      members;      /* ngx_http_ticket_ws_member_t.in_room */
    ts_oid_t         id;
} ngx_http_ticket_ws_room_t;

typedef struct {
    ngx_queue_t                  in_room;
    ngx_queue_t                  in_socket;    /* ngx_http_ticket_ws_t.rooms */
    ngx_http_ticket_ws_room_t   *room;
    ngx_http_ticket_ws_t        *ws;
} ngx_http_ticket_ws_member_t;

static ngx_rbtree_t                ngx_http_ticket_ws_rooms;
static ngx_rbtree_node_t           ngx_http_ticket_ws_rooms_sentinel;
/* the room an event is being delivered to: not freed under the loop */
static ngx_http_ticket_ws_room_t  *ngx_http_ticket_ws_delivering;

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
static void ngx_http_ticket_ws_close(ngx_http_ticket_ws_t *ws,
    uint16_t code);
static void ngx_http_ticket_ws_leave_all(ngx_http_ticket_ws_t *ws);
static void ngx_http_ticket_ws_reset(ngx_http_ticket_ws_t *ws);
static void ngx_http_ticket_ws_release_held(ngx_http_ticket_ws_t *ws);
static void ngx_http_ticket_ws_replay_early(ngx_http_ticket_ws_t *ws);
static void ngx_http_ticket_ws_expiry(ngx_http_ticket_ws_t *ws);
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
static void
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


static void
ngx_http_ticket_ws_send_text(ngx_http_ticket_ws_t *ws, const char *s,
    size_t len)
{
    ngx_http_ticket_ws_send(ws, TS_WS_TEXT, s, len);
}


/* Send a malloc'ed, NUL-terminated packet from a ts_sio encoder (JSON
 * text holds no NUL) and free it. */
static void
ngx_http_ticket_ws_send_owned(ngx_http_ticket_ws_t *ws, char *packet)
{
    if (packet != NULL) {
        ngx_http_ticket_ws_send_text(ws, packet, ngx_strlen(packet));
        free(packet);
    }
}


/* Tell ticketd a session of this socket's user began (+1) or ended (-1). */
static void
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
    free(ws->held);
    ws->held = NULL;
    ws->held_len = ws->held_cap = 0;
    free(ws->early);
    ws->early = NULL;
    ws->early_len = ws->nearly = 0;
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
static void
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
static void
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
static void
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


/* --- rooms ------------------------------------------------------------------ */

static ngx_http_ticket_ws_room_t *
ngx_http_ticket_ws_room(const char *ticket, uint32_t *hash)
{
    ngx_str_t  key;

    key.data = (u_char *) ticket;
    key.len = TS_OID_LEN;
    *hash = ngx_crc32_short(key.data, key.len);
    return (ngx_http_ticket_ws_room_t *)
           ngx_str_rbtree_lookup(&ngx_http_ticket_ws_rooms, &key, *hash);
}


static ngx_http_ticket_ws_member_t *
ngx_http_ticket_ws_membership(ngx_http_ticket_ws_t *ws, const char *ticket)
{
    ngx_queue_t                  *q;
    ngx_http_ticket_ws_member_t  *m;

    for (q = ngx_queue_head(&ws->rooms);
         q != ngx_queue_sentinel(&ws->rooms);
         q = ngx_queue_next(q))
    {
        m = ngx_queue_data(q, ngx_http_ticket_ws_member_t, in_socket);
        if (ngx_strcmp(m->room->id, ticket) == 0) {
            return m;
        }
    }
    return NULL;
}


/* NGX_OK (a member now or already), NGX_DECLINED at the limit of rooms,
 * NGX_ERROR without memory. */
static ngx_int_t
ngx_http_ticket_ws_join(ngx_http_ticket_ws_t *ws, const char *ticket)
{
    ngx_http_ticket_ws_room_t    *room;
    ngx_http_ticket_ws_member_t  *m;
    uint32_t                      hash;

    if (ngx_http_ticket_ws_membership(ws, ticket) != NULL) {
        return NGX_OK;
    }
    if (ws->nrooms >= NGX_HTTP_TICKET_WS_ROOMS) {
        return NGX_DECLINED;
    }
    m = ngx_alloc(sizeof(*m), ws->request->connection->log);
    if (m == NULL) {
        return NGX_ERROR;
    }
    room = ngx_http_ticket_ws_room(ticket, &hash);
    if (room == NULL) {
        room = ngx_calloc(sizeof(*room), ws->request->connection->log);
        if (room == NULL) {
            ngx_free(m);
            return NGX_ERROR;
        }
        ngx_memcpy(room->id, ticket, sizeof(ts_oid_t));
        room->sn.str.data = (u_char *) room->id;
        room->sn.str.len = TS_OID_LEN;
        room->sn.node.key = hash;
        ngx_queue_init(&room->members);
        ngx_rbtree_insert(&ngx_http_ticket_ws_rooms, &room->sn.node);
    }
    m->room = room;
    m->ws = ws;
    ngx_queue_insert_tail(&room->members, &m->in_room);
    ngx_queue_insert_tail(&ws->rooms, &m->in_socket);
    ws->nrooms++;
    return NGX_OK;
}


static void
ngx_http_ticket_ws_leave(ngx_http_ticket_ws_member_t *m)
{
    ngx_http_ticket_ws_room_t  *room = m->room;

    ngx_queue_remove(&m->in_room);
    ngx_queue_remove(&m->in_socket);
    m->ws->nrooms--;
    ngx_free(m);
    if (ngx_queue_empty(&room->members)
        && room != ngx_http_ticket_ws_delivering)
    {
        ngx_rbtree_delete(&ngx_http_ticket_ws_rooms, &room->sn.node);
        ngx_free(room);
    }
}


static void
ngx_http_ticket_ws_leave_all(ngx_http_ticket_ws_t *ws)
{
    while (!ngx_queue_empty(&ws->rooms)) {
        ngx_http_ticket_ws_leave(ngx_queue_data(ngx_queue_head(&ws->rooms),
                                                ngx_http_ticket_ws_member_t,
                                                in_socket));
    }
}


/* --- thread tasks: the store checks ----------------------------------------- */

/*
 * Every task loads the session first (ts_session_load: revocation, the
 * user, the role from the store) -- the role is never remembered between
 * checks -- and then:
 *   CONNECT  nothing more;
 *   JOIN     the ticket's visibility (ts_ticket_visible);
 *   REAUTH   the visibility of every room the socket was in when posted.
 */
typedef enum {
    NGX_HTTP_TICKET_WS_CONNECT,
    NGX_HTTP_TICKET_WS_JOIN,
    NGX_HTTP_TICKET_WS_REAUTH
} ngx_http_ticket_ws_job_e;

typedef struct {
    ngx_http_ticket_ws_t      *ws;
    ngx_http_ticket_ws_job_e   job;
    ts_claims_t                claims;
    ts_oid_t                   ticket;
    int64_t                    ack_id;
    ngx_uint_t                 gen;          /* ws->gen when posted */
    ngx_uint_t                 access;       /* the access epoch then */
    ngx_uint_t                 redo;         /* times run again */
    ngx_uint_t                 nrooms;       /* REAUTH: rooms to check */
    ts_oid_t                   rooms[NGX_HTTP_TICKET_WS_ROOMS];
    /* results */
    ts_session_e               session;
    int                        ok;           /* JOIN: visible */
    u_char                     visible[NGX_HTTP_TICKET_WS_ROOMS];
} ngx_http_ticket_ws_task_t;

static ngx_int_t ngx_http_ticket_ws_post(ngx_http_ticket_ws_t *ws,
    ngx_http_ticket_ws_job_e job, const char *ticket, int64_t ack_id);


/* ok: 1 visible, 0 not (or no such ticket); -1 when the store failed. */
static int
ngx_http_ticket_ws_visible(ts_store_t *s, const ts_user_t *u,
    const char *ticket)
{
    ts_ticket_keys_t  k;

    switch (ts_store_ticket_get(s, ticket, 0, NULL, &k)) {
    case TS_OK:
        return ts_ticket_visible(u, &k);
    case TS_NOT_FOUND:
        return 0;
    default:
        return -1;
    }
}


static void
ngx_http_ticket_ws_task_call(void *data, ngx_log_t *log)
{
    ngx_http_ticket_ws_task_t  *t = data;
    ts_store_t                 *s;
    ts_user_t                   u;
    ngx_uint_t                  i;
    int                         v;
    char                        err[200];

    t->ok = 0;
    s = ngx_http_ticket_thread_store(t->ws->mconf, err, sizeof(err));
    if (s == NULL) {
        t->session = TS_SESSION_ERROR;
        ngx_log_error(NGX_LOG_ERR, log, 0, "socket.io: store: %s", err);
        return;
    }

    /* one snapshot for the session and its tickets */
    ts_store_read_begin(s);
    t->session = ts_session_load(s, &t->claims, &u);

    if (t->session == TS_SESSION_OK) {
        if (t->job == NGX_HTTP_TICKET_WS_JOIN) {
            v = ngx_http_ticket_ws_visible(s, &u, t->ticket);
            if (v < 0) {
                t->session = TS_SESSION_ERROR;
            }
            t->ok = v > 0;

        } else if (t->job == NGX_HTTP_TICKET_WS_REAUTH) {
            for (i = 0; i < t->nrooms; i++) {
                v = ngx_http_ticket_ws_visible(s, &u, t->rooms[i]);
                if (v < 0) {
                    t->session = TS_SESSION_ERROR;
                    break;
                }
                t->visible[i] = (u_char) v;
            }
        }
        ts_user_clear(&u);
    }
    ts_store_read_end(s);

    if (t->session == TS_SESSION_ERROR) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "socket.io: store: %s",
                      ts_store_errmsg(s));
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                   "socket.io thread: job %d, session %d, ok %d",
                   (int) t->job, (int) t->session, t->ok);
}


static void
ngx_http_ticket_ws_task_run(void *data, ngx_log_t *log)
{
    ngx_http_ticket_thread_run(ngx_http_ticket_ws_task_call, data, log);
}


static void
ngx_http_ticket_ws_ack(ngx_http_ticket_ws_t *ws, int64_t ack_id, json_t *v)
{
    json_t  *args;

    if (ack_id < 0) {
        json_decref(v);
        return;
    }
    args = json_pack("[o]", v);
    ngx_http_ticket_ws_send_owned(ws, ts_sio_ack(NULL, ack_id, args, NULL));
    json_decref(args);
}


static void
ngx_http_ticket_ws_ack_error(ngx_http_ticket_ws_t *ws, int64_t ack_id,
    const char *error)
{
    ngx_http_ticket_ws_ack(ws, ack_id, json_pack("{s:b, s:s}", "ok", 0,
                                                 "error", error));
}


/* The session is over (revoked, expired, user gone): a Socket.IO
 * DISCONNECT, so the client does not reconnect by itself, then close. */
static void
ngx_http_ticket_ws_disconnect(ngx_http_ticket_ws_t *ws, const char *why)
{
    ngx_log_error(NGX_LOG_INFO, ws->request->connection->log, 0,
                  "socket.io: %s, disconnecting user %s", why,
                  ws->claims.user_id);
    ngx_http_ticket_ws_send_text(ws, "41", 2);
    ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_NORMAL);
}


/* The session opened: counted, announced, and closed at the token's exp. */
static void
ngx_http_ticket_ws_authed(ngx_http_ticket_ws_t *ws)
{
    ngx_int_t  rc;

    rc = ngx_http_ticket_ws_users_acquire(ws->mconf, ws->claims.user_id);
    if (rc != NGX_OK) {
        if (rc == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_INFO, ws->request->connection->log, 0,
                          "socket.io: user %s has %ui sockets already, "
                          "refused", ws->claims.user_id,
                          ws->mconf->ws_user_sockets);
        }
        ngx_http_ticket_ws_send_owned(ws,
            ts_sio_connect_error(NULL, rc == NGX_DECLINED
                                       ? "Too many connections"
                                       : "Internal server error", NULL));
        return;
    }
    ws->counted = ws->mconf->ws_users != NULL;

    if (ws->deadline.timer_set) {
        ngx_del_timer(&ws->deadline);           /* the CONNECT timeout */
    }
    ws->authed = 1;
    ngx_http_ticket_ws_presence(ws, 1);
    ngx_http_ticket_ws_send_owned(ws, ts_sio_connect_ok(NULL, ws->sid, NULL));
    if (ws->closed) {
        return;
    }
    ngx_http_ticket_ws_expiry(ws);
}


/* Disconnect at the token's exp: the timer runs at most a day at a time,
 * so any exp a token may carry is a sane timer. */
static void
ngx_http_ticket_ws_expiry(ngx_http_ticket_ws_t *ws)
{
    int64_t  left;

    left = ws->claims.exp - (int64_t) ngx_time();
    if (left <= 0) {
        ngx_http_ticket_ws_disconnect(ws, "token expired");
        return;
    }
    ngx_add_timer(&ws->deadline, (ngx_msec_t) ngx_min(left, 86400) * 1000);
}


/* Apply a re-authorisation: rooms the user may no longer see are left,
 * and the client told with room_left {ticketId}. */
static void
ngx_http_ticket_ws_reauthed(ngx_http_ticket_ws_t *ws,
    ngx_http_ticket_ws_task_t *t)
{
    ngx_uint_t                    i;
    ngx_http_ticket_ws_member_t  *m;
    json_t                       *args;

    switch (t->session) {
    case TS_SESSION_OK:
        break;
    case TS_SESSION_INVALID:
        ngx_http_ticket_ws_disconnect(ws, "session ended");
        return;
    default:
        /* rights unknown: the client reconnects and is checked afresh */
        ngx_log_error(NGX_LOG_ERR, ws->request->connection->log, 0,
                      "socket.io: cannot re-authorise user %s, closing",
                      ws->claims.user_id);
        ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_INTERNAL);
        return;
    }

    for (i = 0; i < t->nrooms && !ws->closed; i++) {
        if (t->visible[i]
            || (m = ngx_http_ticket_ws_membership(ws, t->rooms[i])) == NULL)
        {
            continue;
        }
        ngx_log_error(NGX_LOG_INFO, ws->request->connection->log, 0,
                      "socket.io: user %s may no longer see ticket %s, "
                      "leaving its room", ws->claims.user_id, t->rooms[i]);
        ngx_http_ticket_ws_leave(m);
        args = json_pack("[{s:s}]", "ticketId", t->rooms[i]);
        if (args != NULL) {
            ngx_http_ticket_ws_send_owned(ws,
                ts_sio_event(NULL, "room_left", args, NULL));
            json_decref(args);
        }
    }
}


/* A check that started before a rights push it may not have seen is run
 * again; NGX_OK when it was. */
static ngx_int_t
ngx_http_ticket_ws_redo(ngx_http_ticket_ws_t *ws, ngx_thread_task_t *task,
    ngx_http_ticket_ws_task_t *t)
{
    if (t->gen == ws->gen
        && (t->job != NGX_HTTP_TICKET_WS_JOIN
            || t->access == ngx_http_ticket_ws_access_epoch))
    {
        return NGX_DECLINED;
    }
    if (t->redo++ >= NGX_HTTP_TICKET_WS_MAX_REDO) {
        return NGX_DECLINED;                    /* answered as an error */
    }
    t->gen = ws->gen;
    t->access = ngx_http_ticket_ws_access_epoch;
    if (ngx_thread_task_post(ws->conf->pool, task) != NGX_OK) {
        t->redo = NGX_HTTP_TICKET_WS_MAX_REDO + 1;
        return NGX_DECLINED;
    }
    ws->tasks++;
    ws->request->main->blocked++;
    if (t->job != NGX_HTTP_TICKET_WS_REAUTH) {
        ws->client_tasks++;
    }
    return NGX_OK;
}


static void
ngx_http_ticket_ws_task_done(ngx_event_t *ev)
{
    ngx_thread_task_t          *task = ev->data;
    ngx_http_ticket_ws_task_t  *t = task->ctx;
    ngx_http_ticket_ws_t       *ws = t->ws;
    ngx_http_request_t         *r = ws->request;
    ngx_connection_t           *c = r->connection;
    ngx_uint_t                  stale;
    ngx_int_t                   rc;

    r->main->blocked--;
    ws->tasks--;
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "socket.io: task #%ui done, job %d%s", task->id,
                   (int) t->job, ws->closed ? ", socket closed" : "");
    if (t->job == NGX_HTTP_TICKET_WS_REAUTH) {
        ws->reauth = 0;
    } else {
        ws->client_tasks--;
    }

    if (ws->closed) {
        if (ws->tasks == 0) {
            ngx_http_ticket_ws_finalize(ws);
        }
        ngx_free(task);
        ngx_http_run_posted_requests(c);
        return;
    }

    if (t->job != NGX_HTTP_TICKET_WS_REAUTH
        && ngx_http_ticket_ws_redo(ws, task, t) == NGX_OK)
    {
        return;
    }
    stale = t->redo > NGX_HTTP_TICKET_WS_MAX_REDO;

    switch (t->job) {

    case NGX_HTTP_TICKET_WS_CONNECT:
        ws->connecting = 0;
        if (t->session == TS_SESSION_OK && !stale) {
            ngx_http_ticket_ws_authed(ws);
        } else {
            ngx_http_ticket_ws_send_owned(ws,
                ts_sio_connect_error(NULL,
                                     t->session == TS_SESSION_INVALID
                                     ? "Invalid token"
                                     : "Internal server error", NULL));
        }
        ngx_http_ticket_ws_replay_early(ws);
        break;

    case NGX_HTTP_TICKET_WS_JOIN:
        if (!ws->authed) {
            ngx_http_ticket_ws_ack_error(ws, t->ack_id, "Ticket not found");
        } else if (t->session == TS_SESSION_INVALID) {
            ngx_http_ticket_ws_disconnect(ws, "session ended");
        } else if (t->session != TS_SESSION_OK || stale) {
            ngx_http_ticket_ws_ack_error(ws, t->ack_id,
                                         "Internal server error");
        } else if (!t->ok) {
            ngx_http_ticket_ws_ack_error(ws, t->ack_id, "Ticket not found");
        } else {
            rc = ngx_http_ticket_ws_join(ws, t->ticket);
            if (rc == NGX_OK) {
                ngx_http_ticket_ws_ack(ws, t->ack_id,
                                       json_pack("{s:b, s:s}", "ok", 1,
                                                 "room", "joined"));
            } else {
                ngx_http_ticket_ws_ack_error(ws, t->ack_id,
                                             rc == NGX_DECLINED
                                             ? "Too many rooms"
                                             : "Internal server error");
            }
        }
        break;

    default: /* NGX_HTTP_TICKET_WS_REAUTH */
        if (!ws->authed) {
            ws->reauth_again = 0;               /* the client left */
        } else if (ws->reauth_again) {
            /* a newer push came meanwhile: only a check after it counts */
            ws->reauth_again = 0;
            if (ngx_http_ticket_ws_post(ws, NGX_HTTP_TICKET_WS_REAUTH, NULL,
                                        -1)
                != NGX_OK)
            {
                ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_INTERNAL);
            }
        } else {
            ngx_http_ticket_ws_reauthed(ws, t);
        }
        if (!ws->reauth) {
            ngx_http_ticket_ws_release_held(ws);
        }
        break;
    }

    ngx_free(task);
    ngx_http_run_posted_requests(c);
}


/*
 * Post a check; NGX_OK, NGX_BUSY at the socket's limit of client tasks
 * (nothing is queued), NGX_ERROR when it could not be posted (logged).
 */
static ngx_int_t
ngx_http_ticket_ws_post(ngx_http_ticket_ws_t *ws, ngx_http_ticket_ws_job_e job,
    const char *ticket, int64_t ack_id)
{
    ngx_thread_task_t            *task;
    ngx_http_ticket_ws_task_t    *t;
    ngx_queue_t                  *q;
    ngx_http_ticket_ws_member_t  *m;

    if (job != NGX_HTTP_TICKET_WS_REAUTH
        && ws->client_tasks >= NGX_HTTP_TICKET_WS_MAX_TASKS)
    {
        return NGX_BUSY;
    }

    /* malloc'ed, not from r->pool: a long connection must not grow it */
    task = ngx_calloc(sizeof(ngx_thread_task_t)
                      + sizeof(ngx_http_ticket_ws_task_t),
                      ws->request->connection->log);
    if (task == NULL) {
        return NGX_ERROR;
    }
    t = (ngx_http_ticket_ws_task_t *) (task + 1);
    task->ctx = t;
    task->handler = ngx_http_ticket_ws_task_run;
    task->event.handler = ngx_http_ticket_ws_task_done;
    task->event.data = task;
    t->ws = ws;
    t->job = job;
    t->claims = ws->claims;
    t->ack_id = ack_id;
    t->gen = ws->gen;
    t->access = ngx_http_ticket_ws_access_epoch;
    if (ticket) {
        ngx_memcpy(t->ticket, ticket, sizeof(ts_oid_t));
    }
    if (job == NGX_HTTP_TICKET_WS_REAUTH) {
        for (q = ngx_queue_head(&ws->rooms);
             q != ngx_queue_sentinel(&ws->rooms)
             && t->nrooms < NGX_HTTP_TICKET_WS_ROOMS;
             q = ngx_queue_next(q))
        {
            m = ngx_queue_data(q, ngx_http_ticket_ws_member_t, in_socket);
            ngx_memcpy(t->rooms[t->nrooms++], m->room->id, sizeof(ts_oid_t));
        }
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ws->request->connection->log, 0,
                   "socket.io: posting task #%ui, job %d, %ui rooms",
                   task->id, (int) job, t->nrooms);

    if (ngx_thread_task_post(ws->conf->pool, task) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, ws->request->connection->log, 0,
                      "socket.io: cannot post a check to thread pool "
                      "\"%V\"", &ws->conf->pool_name);
        ngx_free(task);
        return NGX_ERROR;
    }
    ws->tasks++;
    ws->request->main->blocked++;
    if (job == NGX_HTTP_TICKET_WS_REAUTH) {
        ws->reauth = 1;
    } else {
        ws->client_tasks++;
    }
    return NGX_OK;
}


/* --- rights pushes ----------------------------------------------------------- */

/*
 * Something this socket's rights depend on changed: a check in flight is
 * stale (gen), and an authenticated socket is re-authorised -- one check
 * at a time; a push during one asks for another after it.
 */
static void
ngx_http_ticket_ws_recheck(ngx_http_ticket_ws_t *ws)
{
    ws->gen++;
    if (!ws->authed) {
        return;                 /* a CONNECT in flight runs again */
    }
    if (ws->reauth) {
        ws->reauth_again = 1;
        return;
    }
    if (ngx_http_ticket_ws_post(ws, NGX_HTTP_TICKET_WS_REAUTH, NULL, -1)
        != NGX_OK)
    {
        /* rights unknown: closed, the client reconnects and is checked */
        ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_INTERNAL);
    }
}


/* Each socket of this worker with a session (or a CONNECT in flight) of
 * the user; sig, when not NULL, narrows to one token. */
static void
ngx_http_ticket_ws_each_session(const char *user_id, const char *sig,
    void (*apply)(ngx_http_ticket_ws_t *ws))
{
    ngx_queue_t           *q, *next;
    ngx_http_ticket_ws_t  *ws;

    /* apply may close the current socket, never the next */
    for (q = ngx_queue_head(&ngx_http_ticket_ws_sockets);
         q != ngx_queue_sentinel(&ngx_http_ticket_ws_sockets);
         q = next)
    {
        next = ngx_queue_next(q);
        ws = ngx_queue_data(q, ngx_http_ticket_ws_t, queue);
        if ((ws->authed || ws->connecting)
            && (user_id == NULL || ngx_strcmp(ws->claims.user_id, user_id)
                                   == 0)
            && (sig == NULL || ngx_strcmp(ws->claims.sig, sig) == 0))
        {
            apply(ws);
        }
    }
}


static void
ngx_http_ticket_ws_revoked(ngx_http_ticket_ws_t *ws)
{
    if (ws->authed) {
        ngx_http_ticket_ws_disconnect(ws, "token revoked");
    } else {
        ws->gen++;              /* the CONNECT in flight runs again */
    }
}


/*
 * apply(member socket, arg) for each member of the ticket's room, if this
 * worker has one.  apply may close the current member (it leaves), never
 * the next; the room stays until the loop ends, then goes if empty.
 */
static void
ngx_http_ticket_ws_room_each(const char *ticket,
    void (*apply)(ngx_http_ticket_ws_t *ws, void *arg), void *arg)
{
    ngx_queue_t                  *q, *next;
    uint32_t                      hash;
    ngx_http_ticket_ws_room_t    *room;
    ngx_http_ticket_ws_member_t  *m;

    room = ngx_http_ticket_ws_room(ticket, &hash);
    if (room == NULL) {
        return;
    }
    ngx_http_ticket_ws_delivering = room;
    for (q = ngx_queue_head(&room->members);
         q != ngx_queue_sentinel(&room->members);
         q = next)
    {
        next = ngx_queue_next(q);
        m = ngx_queue_data(q, ngx_http_ticket_ws_member_t, in_room);
        apply(m->ws, arg);
    }
    ngx_http_ticket_ws_delivering = NULL;
    if (ngx_queue_empty(&room->members)) {
        ngx_rbtree_delete(&ngx_http_ticket_ws_rooms, &room->sn.node);
        ngx_free(room);
    }
}


static void
ngx_http_ticket_ws_recheck_member(ngx_http_ticket_ws_t *ws, void *arg)
{
    ngx_http_ticket_ws_recheck(ws);
}


static void
ngx_http_ticket_ws_access_changed(const char *ticket)
{
    ngx_http_ticket_ws_access_epoch++;          /* joins in flight redo */
    ngx_http_ticket_ws_room_each(ticket, ngx_http_ticket_ws_recheck_member,
                                 NULL);
}


/* An internal rights event from ticketd: applied, never forwarded. */
static void
ngx_http_ticket_ws_rights(const char *event, json_t *data)
{
    ts_rights_t  rt;

    if (ts_rights_parse(event, data, &rt) != 0) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "socket.io: malformed \"%s\" event from ticketd, "
                      "ignored", event);
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "socket.io: rights event %s %s", event,
                   rt.kind == TS_RIGHTS_TICKET_ACCESS ? rt.ticket_id
                                                      : rt.user_id);

    switch (rt.kind) {
    case TS_RIGHTS_SESSION_REVOKED:
        ngx_http_ticket_ws_each_session(rt.user_id, rt.sig,
                                        ngx_http_ticket_ws_revoked);
        break;
    case TS_RIGHTS_USER_CHANGED:
        ngx_http_ticket_ws_each_session(rt.user_id, NULL,
                                        ngx_http_ticket_ws_recheck);
        break;
    case TS_RIGHTS_RESYNC:
        ngx_http_ticket_ws_resync();
        break;
    default: /* TS_RIGHTS_TICKET_ACCESS */
        ngx_http_ticket_ws_access_changed(rt.ticket_id);
        break;
    }
}


void
ngx_http_ticket_ws_resync(void)
{
    if (!ngx_http_ticket_ws_ready) {
        return;
    }
    /* pushes may have been missed while the link was down: every session
     * falls back to the store */
    ngx_http_ticket_ws_access_epoch++;
    ngx_http_ticket_ws_each_session(NULL, NULL, ngx_http_ticket_ws_recheck);
}


/* The token's exp (or, before CONNECT, the connect timeout) is reached. */
static void
ngx_http_ticket_ws_deadline(ngx_event_t *ev)
{
    ngx_http_ticket_ws_t  *ws = ev->data;
    ngx_connection_t      *c = ws->request->connection;

    if (ws->authed) {
        ngx_http_ticket_ws_expiry(ws);
    } else {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "socket.io: no CONNECT within %M ms, closing",
                      ws->conf->ws_connect_timeout);
        ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_POLICY);
    }
    ngx_http_run_posted_requests(c);
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
    if (ngx_strcmp(p->event, "leave_ticket") == 0) {
        if (id != NULL && (m = ngx_http_ticket_ws_membership(ws, id)) != NULL) {
            ngx_http_ticket_ws_leave(m);
        }
        ngx_http_ticket_ws_ack(ws, p->ack_id, json_pack("{s:b}", "ok", 1));
        return;
    }
    ngx_http_ticket_ws_ack_error(ws, p->ack_id, "Unknown event");
}


/*
 * An event sent after CONNECT but before its answer (a client that
 * pipelines, or a CONNECT check slow in the thread pool) is kept, up to
 * NGX_HTTP_TICKET_WS_EARLY of them, and handled in order once the session
 * is known -- not dropped in silence.  Records: length, then the packet.
 */
static void
ngx_http_ticket_ws_keep_early(ngx_http_ticket_ws_t *ws, const char *text,
    size_t len)
{
    u_char  *nb;

    if (ws->nearly == NGX_HTTP_TICKET_WS_EARLY) {
        ngx_log_error(NGX_LOG_INFO, ws->request->connection->log, 0,
                      "socket.io: more than %d events before CONNECT's "
                      "answer, closing", NGX_HTTP_TICKET_WS_EARLY);
        ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_POLICY);
        return;
    }
    nb = realloc(ws->early, ws->early_len + sizeof(size_t) + len);
    if (nb == NULL) {
        ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_INTERNAL);
        return;
    }
    ngx_memcpy(nb + ws->early_len, &len, sizeof(size_t));
    ngx_memcpy(nb + ws->early_len + sizeof(size_t), text, len);
    ws->early = nb;
    ws->early_len += sizeof(size_t) + len;
    ws->nearly++;
}


/* CONNECT is answered: the events kept meanwhile are handled now (and,
 * without a session, ignored as any event before CONNECT is). */
static void
ngx_http_ticket_ws_replay_early(ngx_http_ticket_ws_t *ws)
{
    u_char  *early = ws->early;
    size_t   len = ws->early_len, off = 0, n;

    ws->early = NULL;
    ws->early_len = ws->nearly = 0;
    while (off < len && !ws->closed) {
        ngx_memcpy(&n, early + off, sizeof(size_t));
        off += sizeof(size_t);
        ngx_http_ticket_ws_packet(ws, (char *) early + off, n);
        off += n;
    }
    free(early);
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


/* --- delivery of ticketd's events ------------------------------------------ */

/*
 * Held events, one record each: the ticket id of the room it was sent to
 * (all zero bytes for an event to every socket), the packet's length,
 * the packet.  Bounded like the send buffer: a socket whose check takes
 * longer than its buffer's worth of events is a slow reader.
 */
typedef struct {
    ts_oid_t   ticket;
    size_t     len;
} ngx_http_ticket_ws_held_t;


static void
ngx_http_ticket_ws_hold(ngx_http_ticket_ws_t *ws, const char *ticket,
    const char *packet, size_t len)
{
    ngx_http_ticket_ws_held_t   h;
    size_t                      need, cap;
    u_char                     *nb;

    need = ws->held_len + sizeof(h) + len;
    if (ws->held_len > 0 && need > ws->conf->ws_send_buffer) {
        ngx_log_error(NGX_LOG_INFO, ws->request->connection->log, 0,
                      "socket.io: %uz bytes held during a re-check, "
                      "closing", ws->held_len);
        ngx_http_ticket_ws_reset(ws);
        ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_POLICY);
        return;
    }
    if (need > ws->held_cap) {
        cap = ngx_max(ws->held_cap * 2, ngx_max(need, 1024));
        nb = realloc(ws->held, cap);
        if (nb == NULL) {
            ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_INTERNAL);
            return;
        }
        ws->held = nb;
        ws->held_cap = cap;
    }
    ngx_memzero(&h, sizeof(h));
    if (ticket != NULL) {
        ngx_memcpy(h.ticket, ticket, sizeof(ts_oid_t));
    }
    h.len = len;
    ngx_memcpy(ws->held + ws->held_len, &h, sizeof(h));
    ngx_memcpy(ws->held + ws->held_len + sizeof(h), packet, len);
    ws->held_len = need;
}


/* The socket's check is done: what it held goes out, but for the rooms
 * it is no longer in. */
static void
ngx_http_ticket_ws_release_held(ngx_http_ticket_ws_t *ws)
{
    u_char                     *held = ws->held;
    size_t                      len = ws->held_len, off = 0;
    ngx_http_ticket_ws_held_t   h;

    ws->held = NULL;
    ws->held_len = ws->held_cap = 0;

    while (off < len && !ws->closed) {
        ngx_memcpy(&h, held + off, sizeof(h));
        off += sizeof(h);
        if (h.ticket[0] == '\0'
            || ngx_http_ticket_ws_membership(ws, h.ticket) != NULL)
        {
            ngx_http_ticket_ws_send_later(ws, (char *) held + off, h.len);
        }
        off += h.len;
    }
    free(held);
}


/* Queue an event on a socket, or hold it while the socket is re-checked
 * (ticket: the room's ticket id, NULL for every socket). */
static void
ngx_http_ticket_ws_offer(ngx_http_ticket_ws_t *ws, const char *ticket,
    const char *packet, size_t len)
{
    if (ws->reauth) {
        ngx_http_ticket_ws_hold(ws, ticket, packet, len);
    } else {
        ngx_http_ticket_ws_send_later(ws, packet, len);
    }
}


typedef struct {
    const char  *ticket;
    const char  *packet;
    size_t       len;
} ngx_http_ticket_ws_out_t;


static void
ngx_http_ticket_ws_offer_member(ngx_http_ticket_ws_t *ws, void *arg)
{
    ngx_http_ticket_ws_out_t  *out = arg;

    if (ws->authed) {
        ngx_http_ticket_ws_offer(ws, out->ticket, out->packet, out->len);
    }
}


void
ngx_http_ticket_ws_deliver(const char *payload, size_t len)
{
    json_t                    *frame, *data, *args;
    const char                *event, *to, *ticket = NULL;
    char                      *packet;
    size_t                     plen;
    ngx_queue_t               *q, *next;
    ngx_http_ticket_ws_t      *ws;
    ngx_http_ticket_ws_out_t   out;

    if (!ngx_http_ticket_ws_ready
        || ngx_queue_empty(&ngx_http_ticket_ws_sockets))
    {
        return;
    }
    frame = json_loadb(payload, len, 0, NULL);
    event = json_string_value(json_object_get(frame, "event"));
    to = json_string_value(json_object_get(frame, "room"));
    data = json_object_get(frame, "data");

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "socket.io: deliver \"%s\" to room \"%s\", %uz bytes",
                   event ? event : "-", to ? to : "-", len);
    if (event == NULL || data == NULL) {
        json_decref(frame);
        return;
    }
    if (ts_rights_internal(event)) {
        /* applied here, never sent to a client */
        ngx_http_ticket_ws_rights(event, data);
        json_decref(frame);
        return;
    }
    if (to != NULL) {
        ticket = ts_room_ticket(to);
        if (ticket == NULL) {
            json_decref(frame);
            return;
        }
    }

    /* encoded once for every socket of this worker */
    args = json_pack("[O]", data);
    packet = args ? ts_sio_event(NULL, event, args, &plen) : NULL;
    json_decref(args);
    if (packet == NULL) {
        json_decref(frame);
        return;
    }

    if (ticket == NULL) {
        /* to every authenticated socket; a write may close the current
         * one (a slow reader), never the next */
        for (q = ngx_queue_head(&ngx_http_ticket_ws_sockets);
             q != ngx_queue_sentinel(&ngx_http_ticket_ws_sockets);
             q = next)
        {
            next = ngx_queue_next(q);
            ws = ngx_queue_data(q, ngx_http_ticket_ws_t, queue);
            if (ws->authed) {
                ngx_http_ticket_ws_offer(ws, NULL, packet, plen);
            }
        }

    } else {
        out.ticket = ticket;
        out.packet = packet;
        out.len = plen;
        ngx_http_ticket_ws_room_each(ticket, ngx_http_ticket_ws_offer_member,
                                     &out);
    }
    free(packet);
    json_decref(frame);
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

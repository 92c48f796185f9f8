/*
 * WebSocket + Engine.IO v4 / Socket.IO v5 inside nginx ("ticket_socketio").
 *
 * A request to the location is upgraded (RFC 6455, 101) and kept as a
 * long-lived connection owned by this file: bytes go through ts_ws (frames)
 * and ts_sio (packets).  Engine.IO: the open packet, server pings every
 * ping interval, a missing pong within the timeout closes.  Socket.IO:
 * CONNECT must carry auth {token}; the token is checked here and the user
 * (and revocation) in the thread pool, then CONNECT or CONNECT_ERROR.
 * Events: join_ticket / leave_ticket (visibility checked in the thread
 * pool, like GET /api/tickets/:id).
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
#include "ngx_http_ticket_json.h"

#include "ts_sio.h"
#include "ts_ws.h"

#define NGX_HTTP_TICKET_WS_ROOMS   64      /* rooms one socket may join */

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

    char                         sid[TS_SIO_SID_LEN + 1];
    ts_claims_t                  claims;
    ts_role_e                    role;
    ngx_uint_t                   connecting;   /* CONNECT being checked */
    ngx_uint_t                   authed;
    ngx_uint_t                   closed;
    ngx_uint_t                   tasks;        /* thread tasks in flight */

    ngx_uint_t                   nrooms;
    ngx_queue_t                  rooms;        /* its memberships */

    ngx_queue_t                  unsent;       /* in ngx_http_ticket_ws_unsent */
    ngx_uint_t                   queued;       /* ... when set */
};

static ngx_queue_t  ngx_http_ticket_ws_sockets;
static ngx_uint_t   ngx_http_ticket_ws_ready;

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


char *
ngx_http_ticket_socketio(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ticket_loc_conf_t  *tlcf = conf;
    ngx_http_core_loc_conf_t    *clcf;

    if (tlcf->socketio != NGX_CONF_UNSET) {
        return "is duplicate";
    }
    tlcf->socketio = 1;
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ticket_ws_handler;
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
    if (ws->authed) {
        ws->authed = 0;
        ngx_http_ticket_ws_presence(ws, -1);
    }
    if (ws->ping.timer_set) {
        ngx_del_timer(&ws->ping);
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
}


static void
ngx_http_ticket_ws_close(ngx_http_ticket_ws_t *ws, uint16_t code)
{
    ngx_http_request_t  *r = ws->request;

    if (ws->closed) {
        return;
    }
    ngx_http_ticket_ws_release(ws, code);

    if (ws->tasks == 0) {
        ngx_http_finalize_request(r, NGX_HTTP_CLOSE);
    }
    /* else the last task's completion finalizes */
}


void
ngx_http_ticket_ws_shutdown(void)
{
    ngx_queue_t           *q;
    ngx_http_ticket_ws_t  *ws;

    if (!ngx_http_ticket_ws_ready) {
        return;
    }
    while (!ngx_queue_empty(&ngx_http_ticket_ws_sockets)) {
        q = ngx_queue_head(&ngx_http_ticket_ws_sockets);
        ws = ngx_queue_data(q, ngx_http_ticket_ws_t, queue);
        ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_GOING);
    }
}


/* --- thread tasks: the store checks of CONNECT and join_ticket ------------ */

typedef enum {
    NGX_HTTP_TICKET_WS_CONNECT,
    NGX_HTTP_TICKET_WS_JOIN
} ngx_http_ticket_ws_job_e;

typedef struct {
    ngx_http_ticket_ws_t      *ws;
    ngx_http_ticket_ws_job_e   job;
    ts_claims_t                claims;
    ts_oid_t                   ticket;
    int64_t                    ack_id;
    /* results */
    int                        ok;
    ts_role_e                  role;
    char                       err[128];
} ngx_http_ticket_ws_task_t;


static void
ngx_http_ticket_ws_task_call(void *data, ngx_log_t *log)
{
    ngx_http_ticket_ws_task_t  *t = data;
    ts_store_t                 *s;
    ts_user_t                   u;
    ts_ticket_keys_t            k;
    char                        err[200];

    s = ngx_http_ticket_thread_store(t->ws->mconf, err, sizeof(err));
    if (s == NULL) {
        ngx_snprintf((u_char *) t->err, sizeof(t->err) - 1,
                     "Service unavailable%Z");
        return;
    }

    if (t->job == NGX_HTTP_TICKET_WS_CONNECT) {
        ngx_memzero(&u, sizeof(u));
        if (ts_store_token_revoked(s, t->claims.sig) == TS_NOT_FOUND
            && ts_store_user_by_id(s, t->claims.user_id, &u) == TS_OK)
        {
            t->ok = 1;
            t->role = u.role;
        }
        ts_user_clear(&u);
        return;
    }

    /* join: the same visibility rule as GET /api/tickets/:id */
    if (ts_store_ticket_get(s, t->ticket, 0, NULL, &k) == TS_OK
        && (t->role == TS_ROLE_ADMIN
            || ngx_strcmp(k.created_by, t->claims.user_id) == 0
            || ngx_strcmp(k.assigned_to, t->claims.user_id) == 0))
    {
        t->ok = 1;
    }
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


static void
ngx_http_ticket_ws_task_done(ngx_event_t *ev)
{
    ngx_thread_task_t          *task = ev->data;
    ngx_http_ticket_ws_task_t  *t = task->ctx;
    ngx_http_ticket_ws_t       *ws = t->ws;
    ngx_http_request_t         *r = ws->request;
    ngx_connection_t           *c = r->connection;
    ngx_int_t                   rc;

    r->main->blocked--;
    ws->tasks--;

    if (ws->closed) {
        if (ws->tasks == 0) {
            ngx_http_finalize_request(r, NGX_HTTP_CLOSE);
        }
        ngx_free(task);
        ngx_http_run_posted_requests(c);
        return;
    }

    if (t->job == NGX_HTTP_TICKET_WS_CONNECT) {
        ws->connecting = 0;
        if (t->ok) {
            ws->authed = 1;
            ws->claims = t->claims;
            ws->role = t->role;
            ngx_http_ticket_ws_presence(ws, 1);
            ngx_http_ticket_ws_send_owned(ws,
                ts_sio_connect_ok(NULL, ws->sid, NULL));
        } else {
            ngx_http_ticket_ws_send_owned(ws,
                ts_sio_connect_error(NULL, t->err[0] ? t->err
                                                     : "Invalid token", NULL));
        }
    } else if (t->ok && ws->authed) {
        rc = ngx_http_ticket_ws_join(ws, t->ticket);
        ngx_http_ticket_ws_ack(ws, t->ack_id,
            rc == NGX_OK ? json_pack("{s:b, s:s}", "ok", 1, "room", "joined")
            : json_pack("{s:b, s:s}", "ok", 0, "error",
                        rc == NGX_DECLINED ? "Too many rooms"
                                           : "Internal server error"));
    } else {
        ngx_http_ticket_ws_ack(ws, t->ack_id,
                               json_pack("{s:b, s:s}", "ok", 0, "error",
                                         "Ticket not found"));
    }

    ngx_free(task);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_ticket_ws_post(ngx_http_ticket_ws_t *ws, ngx_http_ticket_ws_job_e job,
    const char *ticket, int64_t ack_id)
{
    ngx_thread_task_t          *task;
    ngx_http_ticket_ws_task_t  *t;

    /* malloc'ed, not from r->pool: a long connection must not grow it */
    task = ngx_calloc(sizeof(ngx_thread_task_t)
                      + sizeof(ngx_http_ticket_ws_task_t),
                      ws->request->connection->log);
    if (task == NULL) {
        return;
    }
    t = (ngx_http_ticket_ws_task_t *) (task + 1);
    task->ctx = t;
    task->handler = ngx_http_ticket_ws_task_run;
    task->event.handler = ngx_http_ticket_ws_task_done;
    task->event.data = task;
    t->ws = ws;
    t->job = job;
    t->claims = ws->claims;
    t->role = ws->role;
    t->ack_id = ack_id;
    if (ticket) {
        ngx_memcpy(t->ticket, ticket, sizeof(ts_oid_t));
    }

    if (ngx_thread_task_post(ws->conf->pool, task) != NGX_OK) {
        ngx_free(task);
        return;
    }
    ws->tasks++;
    ws->request->main->blocked++;
}


/* --- Engine.IO / Socket.IO packets ------------------------------------------ */

static void
ngx_http_ticket_ws_connect(ngx_http_ticket_ws_t *ws, ts_sio_packet_t *p)
{
    json_t       *token = json_object_get(p->data, "token");
    const char   *tok;

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
    ws->connecting = 1;
    ngx_http_ticket_ws_post(ws, NGX_HTTP_TICKET_WS_CONNECT, NULL, -1);
}


static void
ngx_http_ticket_ws_event(ngx_http_ticket_ws_t *ws, ts_sio_packet_t *p)
{
    const char                   *id;
    ngx_http_ticket_ws_member_t  *m;

    id = json_string_value(json_array_get(p->args, 0));

    if (!ws->authed) {
        return;                 /* events before CONNECT are ignored */
    }
    if (ngx_strcmp(p->event, "join_ticket") == 0) {
        if (id == NULL || !ts_oid_valid(id)) {
            ngx_http_ticket_ws_ack(ws, p->ack_id,
                                   json_pack("{s:b, s:s}", "ok", 0, "error",
                                             "Ticket not found"));
            return;
        }
        ngx_http_ticket_ws_post(ws, NGX_HTTP_TICKET_WS_JOIN, id, p->ack_id);
        return;
    }
    if (ngx_strcmp(p->event, "leave_ticket") == 0) {
        if (id != NULL && (m = ngx_http_ticket_ws_membership(ws, id)) != NULL) {
            ngx_http_ticket_ws_leave(m);
        }
        ngx_http_ticket_ws_ack(ws, p->ack_id, json_pack("{s:b}", "ok", 1));
        return;
    }
    ngx_http_ticket_ws_ack(ws, p->ack_id,
                           json_pack("{s:b, s:s}", "ok", 0, "error",
                                     "Unknown event"));
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
        } else if (p.sio == TS_SIO_EVENT) {
            ngx_http_ticket_ws_event(ws, &p);
        } else if (p.sio == TS_SIO_DISCONNECT && ws->authed) {
            ws->authed = 0;
            ngx_http_ticket_ws_leave_all(ws);
            ngx_http_ticket_ws_presence(ws, -1);
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

    if (ws == NULL || ws->closed) {
        return;
    }
    if (c->close) {
        /* ngx_close_idle_connections(): the worker is going away */
        ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_GOING);
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

void
ngx_http_ticket_ws_deliver(const char *payload, size_t len)
{
    json_t                       *frame, *data, *args;
    const char                   *event, *to, *ticket = NULL;
    char                         *packet;
    size_t                        plen;
    uint32_t                      hash;
    ngx_queue_t                  *q, *next;
    ngx_http_ticket_ws_t         *ws;
    ngx_http_ticket_ws_room_t    *room;
    ngx_http_ticket_ws_member_t  *m;

    if (!ngx_http_ticket_ws_ready
        || ngx_queue_empty(&ngx_http_ticket_ws_sockets))
    {
        return;
    }
    frame = json_loadb(payload, len, 0, NULL);
    event = json_string_value(json_object_get(frame, "event"));
    to = json_string_value(json_object_get(frame, "room"));
    data = json_object_get(frame, "data");
    if (event == NULL || data == NULL) {
        json_decref(frame);
        return;
    }
    if (to != NULL) {
        if (ngx_strncmp(to, "ticket_", 7) != 0 || !ts_oid_valid(to + 7)) {
            json_decref(frame);
            return;
        }
        ticket = to + 7;
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
                ngx_http_ticket_ws_send_later(ws, packet, plen);
            }
        }

    } else if ((room = ngx_http_ticket_ws_room(ticket, &hash)) != NULL) {
        /* a closed member leaves; the room stays until the loop ends */
        ngx_http_ticket_ws_delivering = room;
        for (q = ngx_queue_head(&room->members);
             q != ngx_queue_sentinel(&room->members);
             q = next)
        {
            next = ngx_queue_next(q);
            m = ngx_queue_data(q, ngx_http_ticket_ws_member_t, in_room);
            if (m->ws->authed) {
                ngx_http_ticket_ws_send_later(m->ws, packet, plen);
            }
        }
        ngx_http_ticket_ws_delivering = NULL;
        if (ngx_queue_empty(&room->members)) {
            ngx_rbtree_delete(&ngx_http_ticket_ws_rooms, &room->sn.node);
            ngx_free(room);
        }
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

    open = ts_eio_open(ws->sid, (int) tlcf->ping_interval,
                       (int) tlcf->ping_timeout, (int) tlcf->ws_max_message,
                       NULL);
    ngx_http_ticket_ws_send_owned(ws, open);
    if (!ws->closed) {
        ngx_add_timer(&ws->ping, tlcf->ping_interval);
    }

    if (ngx_handle_read_event(r->connection->read, 0) != NGX_OK) {
        return NGX_ERROR;
    }
    return NGX_DONE;
}

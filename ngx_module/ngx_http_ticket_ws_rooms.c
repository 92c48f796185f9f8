/*
 * The rooms of ticket_socketio and the delivery of ticketd's events to
 * them (split from ngx_http_ticket_ws.c along its seams; the socket
 * itself is there, what the files share in ngx_http_ticket_ws.h).
 *
 * Delivery: ticketd sends every event to every worker; this worker encodes
 * it once and queues it on its local sockets in the room (or on every
 * authenticated socket for user_status_changed, on the sockets of one
 * user for ticket_assigned).  Each socket has a
 * bounded send buffer: a reader that falls behind by more than
 * ticket_socketio_send_buffer is closed, so memory stays flat.
 *
 * Events for a socket being re-authorised are held here and released
 * once its check is done (ngx_http_ticket_ws_rights.c).
 *
 * Staff-only events ("audience":"staff", ts_event.h) go to the members
 * that are staff on the ticket (member->staff, set by the last check), so
 * an internal note never reaches the requester's sockets; a held one is
 * checked again when released.  The staff members are the ticket's
 * viewers: each joins and leaves ticketd's count (a "view" link frame),
 * and ticketd sends ticket_viewers to the room's staff.  Their typing
 * goes the same way as user_typing (rate-limited here).
 */

#include "ngx_http_ticket_ws.h"


ngx_rbtree_t                       ngx_http_ticket_ws_rooms;
ngx_rbtree_node_t                  ngx_http_ticket_ws_rooms_sentinel;
/* the room an event is being delivered to: not freed under the loop */
static ngx_http_ticket_ws_room_t  *ngx_http_ticket_ws_delivering;


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


ngx_http_ticket_ws_member_t *
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
ngx_int_t
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
        ngx_http_ticket_metrics_rooms(1);
    }
    m->room = room;
    m->ws = ws;
    m->staff = 0;
    m->typed_at = 0;
    m->typing = 0;
    ngx_queue_insert_tail(&room->members, &m->in_room);
    ngx_queue_insert_tail(&ws->rooms, &m->in_socket);
    ws->nrooms++;
    return NGX_OK;
}


/* Tell ticketd the member's user started (+1) or stopped (-1) viewing. */
static void
ngx_http_ticket_ws_view(ngx_http_ticket_ws_member_t *m, int delta)
{
    json_t  *msg;
    char    *text;

    msg = json_pack("{s:s, s:s, s:s, s:s, s:i}", "type", "view",
                    "ticketId", m->room->id, "userId", m->ws->claims.user_id,
                    "username", m->ws->username, "delta", delta);
    text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    if (text != NULL) {
        ngx_http_ticket_link_send_message(text, ngx_strlen(text));
    }
    free(text);
    json_decref(msg);
}


/* Forward the member's typing to the room's staff (user_typing). */
static void
ngx_http_ticket_ws_typed(ngx_http_ticket_ws_member_t *m, ngx_uint_t on)
{
    json_t  *frame;
    char    *text, room[TS_ROOM_LEN];

    m->typing = on;
    m->typed_at = ngx_current_msec;
    frame = ts_event_frame_staff("user_typing",
                                 ts_room_name(m->room->id, room),
                                 json_pack("{s:s, s:{s:s, s:s}, s:b}",
                                           "ticketId", m->room->id, "user",
                                           "_id", m->ws->claims.user_id,
                                           "username", m->ws->username,
                                           "typing", (int) on));
    text = frame ? json_dumps(frame, JSON_COMPACT) : NULL;
    if (text != NULL) {
        ngx_http_ticket_link_send_message(text, ngx_strlen(text));
    }
    free(text);
    json_decref(frame);
}


void
ngx_http_ticket_ws_set_staff(ngx_http_ticket_ws_member_t *m,
    ngx_uint_t staff)
{
    if (staff == m->staff) {
        return;
    }
    if (!staff && m->typing) {
        ngx_http_ticket_ws_typed(m, 0);
    }
    m->staff = staff;
    ngx_http_ticket_ws_view(m, staff ? 1 : -1);
}


void
ngx_http_ticket_ws_views_announce(void)
{
    ngx_queue_t                  *q, *r;
    ngx_http_ticket_ws_t         *ws;
    ngx_http_ticket_ws_member_t  *m;

    if (!ngx_http_ticket_ws_ready) {
        return;
    }
    for (q = ngx_queue_head(&ngx_http_ticket_ws_sockets);
         q != ngx_queue_sentinel(&ngx_http_ticket_ws_sockets);
         q = ngx_queue_next(q))
    {
        ws = ngx_queue_data(q, ngx_http_ticket_ws_t, queue);
        for (r = ngx_queue_head(&ws->rooms);
             r != ngx_queue_sentinel(&ws->rooms);
             r = ngx_queue_next(r))
        {
            m = ngx_queue_data(r, ngx_http_ticket_ws_member_t, in_socket);
            if (m->staff) {
                ngx_http_ticket_ws_view(m, 1);
            }
        }
    }
}


void
ngx_http_ticket_ws_typing(ngx_http_ticket_ws_t *ws, json_t *arg)
{
    const char                   *id;
    ngx_http_ticket_ws_member_t  *m;
    ngx_uint_t                    on;

    id = json_string_value(json_object_get(arg, "ticketId"));
    if (id == NULL || !ts_oid_valid(id)
        || (m = ngx_http_ticket_ws_membership(ws, id)) == NULL
        || !m->staff)
    {
        return;                 /* only staff in the room type to staff */
    }
    on = json_is_true(json_object_get(arg, "typing"));
    /* a change passes; "still typing" at most once a second */
    if (on == m->typing
        && (!on || ngx_current_msec - m->typed_at < 1000))
    {
        return;
    }
    ngx_http_ticket_ws_typed(m, on);
}


void
ngx_http_ticket_ws_leave(ngx_http_ticket_ws_member_t *m)
{
    ngx_http_ticket_ws_room_t  *room = m->room;

    ngx_http_ticket_ws_set_staff(m, 0);

    ngx_queue_remove(&m->in_room);
    ngx_queue_remove(&m->in_socket);
    m->ws->nrooms--;
    ngx_free(m);
    if (ngx_queue_empty(&room->members)
        && room != ngx_http_ticket_ws_delivering)
    {
        ngx_rbtree_delete(&ngx_http_ticket_ws_rooms, &room->sn.node);
        ngx_http_ticket_metrics_rooms(-1);
        ngx_free(room);
    }
}


void
ngx_http_ticket_ws_leave_all(ngx_http_ticket_ws_t *ws)
{
    while (!ngx_queue_empty(&ws->rooms)) {
        ngx_http_ticket_ws_leave(ngx_queue_data(ngx_queue_head(&ws->rooms),
                                                ngx_http_ticket_ws_member_t,
                                                in_socket));
    }
}

/*
 * apply(member socket, arg) for each member of the ticket's room, if this
 * worker has one.  apply may close the current member (it leaves), never
 * the next; the room stays until the loop ends, then goes if empty.
 */
void
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
        ngx_http_ticket_metrics_rooms(-1);
        ngx_free(room);
    }
}

/* --- delivery of ticketd's events ------------------------------------------ */

/*
 * Held events (ws->held), tagged with the ticket id of the room each was
 * sent to (none for an event to every socket).  Bounded like the send
 * buffer: a socket whose check takes longer than its buffer's worth of
 * events is a slow reader.
 */
static void
ngx_http_ticket_ws_hold(ngx_http_ticket_ws_t *ws, const char *ticket,
    ngx_uint_t staff, const char *packet, size_t len)
{
    ngx_int_t  rc;

    rc = ngx_http_ticket_ws_stash_add(&ws->held, ticket, staff, packet, len,
                                      ws->conf->ws_send_buffer);
    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_INFO, ws->request->connection->log, 0,
                      "socket.io: %uz bytes held during a re-check, "
                      "closing", ws->held.len);
        ngx_http_ticket_ws_reset(ws);
        ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_POLICY);
    } else if (rc == NGX_ERROR) {
        ngx_http_ticket_ws_close(ws, TS_WS_CLOSE_INTERNAL);
    }
}


static void
ngx_http_ticket_ws_send_held(ngx_http_ticket_ws_t *ws, const char *ticket,
    ngx_uint_t staff, const char *packet, size_t len)
{
    ngx_http_ticket_ws_member_t  *m;

    m = ticket ? ngx_http_ticket_ws_membership(ws, ticket) : NULL;
    if (ticket == NULL || (m != NULL && (!staff || m->staff))) {
        ngx_http_ticket_ws_send_later(ws, packet, len);
        ngx_http_ticket_metrics_delivered();
    }
}


/* The socket's check is done: what it held goes out, but for the rooms
 * it is no longer in. */
void
ngx_http_ticket_ws_release_held(ngx_http_ticket_ws_t *ws)
{
    ngx_http_ticket_ws_stash_drain(ws, &ws->held,
                                   ngx_http_ticket_ws_send_held);
}


/* Queue an event on a socket, or hold it while the socket is re-checked
 * (ticket: the room's ticket id, NULL for every socket; staff: for the
 * staff on it only, checked again on release). */
static void
ngx_http_ticket_ws_offer(ngx_http_ticket_ws_t *ws, const char *ticket,
    ngx_uint_t staff, const char *packet, size_t len)
{
    if (ws->reauth) {
        ngx_http_ticket_ws_hold(ws, ticket, staff, packet, len);
    } else {
        ngx_http_ticket_ws_send_later(ws, packet, len);
        ngx_http_ticket_metrics_delivered();
    }
}


typedef struct {
    const char  *ticket;
    const char  *packet;
    size_t       len;
    ngx_uint_t   staff;        /* for the staff on the ticket only */
    const char  *not_user;     /* ... but this user's sockets (typing) */
} ngx_http_ticket_ws_out_t;


static void
ngx_http_ticket_ws_offer_member(ngx_http_ticket_ws_t *ws, void *arg)
{
    ngx_http_ticket_ws_out_t     *out = arg;
    ngx_http_ticket_ws_member_t  *m;

    if (!ws->authed
        || (out->not_user != NULL
            && ngx_strcmp(ws->claims.user_id, out->not_user) == 0))
    {
        return;
    }
    if (out->staff && !ws->reauth) {
        /* a socket being re-checked holds it and is checked on release */
        m = ngx_http_ticket_ws_membership(ws, out->ticket);
        if (m == NULL || !m->staff) {
            return;
        }
    }
    ngx_http_ticket_ws_offer(ws, out->ticket, out->staff, out->packet,
                             out->len);
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
    const char                *only = NULL;

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

    if (ngx_strcmp(event, TS_EV_TICKET_ASSIGNED) == 0) {
        /* to the new assignee's own sockets only (their list follows) */
        only = json_string_value(json_object_get(data, "userId"));
        if (only == NULL) {
            free(packet);
            json_decref(frame);
            return;
        }
    }

    if (ticket == NULL) {
        /* to every authenticated socket (or the one user's); a write may
         * close the current one (a slow reader), never the next */
        for (q = ngx_queue_head(&ngx_http_ticket_ws_sockets);
             q != ngx_queue_sentinel(&ngx_http_ticket_ws_sockets);
             q = next)
        {
            next = ngx_queue_next(q);
            ws = ngx_queue_data(q, ngx_http_ticket_ws_t, queue);
            if (ws->authed
                && (only == NULL
                    || ngx_strcmp(ws->claims.user_id, only) == 0))
            {
                ngx_http_ticket_ws_offer(ws, NULL, 0, packet, plen);
            }
        }

    } else {
        out.ticket = ticket;
        out.packet = packet;
        out.len = plen;
        out.staff = ts_event_staff_only(frame);
        out.not_user = ngx_strcmp(event, "user_typing") == 0
                       ? json_string_value(json_object_get(
                             json_object_get(data, "user"), "_id"))
                       : NULL;
        ngx_http_ticket_ws_room_each(ticket, ngx_http_ticket_ws_offer_member,
                                     &out);
    }
    free(packet);
    json_decref(frame);
}

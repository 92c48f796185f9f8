/*
 * What the three files of ticket_socketio share: the socket, the rooms
 * and their memberships, the kinds of store check, the globals of this
 * worker, and the functions one file calls in another.
 *
 *   ngx_http_ticket_ws.c         the upgrade, packets, timers and I/O,
 *                                sending, closing;
 *   ngx_http_ticket_ws_rooms.c   rooms, delivery of ticketd's events,
 *                                held events;
 *   ngx_http_ticket_ws_rights.c  the store checks (thread tasks) and the
 *                                rights pushes.
 *
 * Internal to those files; the module's entry points are in
 * ngx_http_ticket_module.h.
 */

#ifndef NGX_HTTP_TICKET_WS_H
#define NGX_HTTP_TICKET_WS_H

#include "ngx_http_ticket_module.h"
#include "ngx_http_ticket_metrics.h"


#include "ts_event.h"
#include "ts_session.h"
#include "ts_sio.h"
#include "ts_ws.h"

#define NGX_HTTP_TICKET_WS_ROOMS   64      /* rooms one socket may join */

typedef struct ngx_http_ticket_ws_s  ngx_http_ticket_ws_t;

/*
 * Packets kept aside on a socket for later, in arrival order: one
 * malloc'ed buffer of records (a tag -- a ticket id, or empty -- the
 * length, the bytes), bounded by the caller.  Used for the events a client
 * sends before CONNECT is answered and for the events held while a socket
 * is re-authorised.
 */
typedef struct {
    u_char      *buf;
    size_t       len;
    size_t       cap;
    ngx_uint_t   n;            /* records */
} ngx_http_ticket_ws_stash_t;

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
    char                         username[64]; /* as CONNECT loaded it */
    ngx_uint_t                   connecting;   /* CONNECT being checked */
    ngx_uint_t                   authed;
    ngx_uint_t                   counted;      /* in the per-user count */
    ngx_uint_t                   closed;
    ngx_uint_t                   tasks;        /* thread tasks in flight */
    ngx_uint_t                   client_tasks; /* ... of them CONNECT/join */

    ngx_uint_t                   gen;          /* rights pushes seen */
    ngx_uint_t                   reauth;       /* re-authorisation running */
    ngx_uint_t                   reauth_again; /* ... and another is due */

    ngx_http_ticket_ws_stash_t   early;        /* events before CONNECT's
                                                  answer, replayed after */
    ngx_http_ticket_ws_stash_t   held;         /* events held during a
                                                  re-check */

    ngx_msec_t                   bucket_at;    /* event rate token bucket */
    ngx_uint_t                   bucket;       /* tokens x 1000 */

    ngx_uint_t                   nrooms;
    ngx_queue_t                  rooms;        /* its memberships */

    ngx_queue_t                  unsent;       /* in ngx_http_ticket_ws_unsent */
    ngx_uint_t                   queued;       /* ... when set */
};

/* this worker's sockets (ngx_http_ticket_ws_t.queue), set up with the
 * rooms by the first request (ngx_http_ticket_ws_ready) */
extern ngx_queue_t  ngx_http_ticket_ws_sockets;
extern ngx_uint_t   ngx_http_ticket_ws_ready;

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

/*
 * staff: the socket's user is staff on the ticket (ts_ticket_staff), as
 * the last check found -- join, or a re-authorisation after a push that
 * may change it (demotion, reassignment); staff-only events reach only
 * such members, and ticketd counts them as the ticket's viewers.
 */
typedef struct {
    ngx_queue_t                  in_room;
    ngx_queue_t                  in_socket;    /* ngx_http_ticket_ws_t.rooms */
    ngx_http_ticket_ws_room_t   *room;
    ngx_http_ticket_ws_t        *ws;
    ngx_uint_t                   staff;
    ngx_msec_t                   typed_at;     /* last typing forwarded */
    ngx_uint_t                   typing;       /* ... and whether it was on */
} ngx_http_ticket_ws_member_t;

extern ngx_rbtree_t       ngx_http_ticket_ws_rooms;
extern ngx_rbtree_node_t  ngx_http_ticket_ws_rooms_sentinel;

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


/* ngx_http_ticket_ws.c: sending and closing */

/* Queue one frame, written with the others at the end of this iteration. */
void ngx_http_ticket_ws_send_later(ngx_http_ticket_ws_t *ws, const char *s,
    size_t len);
/* Queue one text frame and write it now. */
void ngx_http_ticket_ws_send_text(ngx_http_ticket_ws_t *ws, const char *s,
    size_t len);
/* Send a malloc'ed, NUL-terminated packet from a ts_sio encoder and free
 * it (NULL: nothing). */
void ngx_http_ticket_ws_send_owned(ngx_http_ticket_ws_t *ws, char *packet);
/* Tell ticketd a session of this socket's user began (+1) or ended (-1). */
void ngx_http_ticket_ws_presence(ngx_http_ticket_ws_t *ws, int delta);
/* Close a socket from anywhere: released now, finalized by a posted event;
 * ws stays readable (ws->closed).  code 0: no close frame. */
void ngx_http_ticket_ws_close(ngx_http_ticket_ws_t *ws, uint16_t code);
/* Finalize a closed socket's request, or leave it to the last thread
 * task's completion. */
void ngx_http_ticket_ws_finalize(ngx_http_ticket_ws_t *ws);
/* Reset a slow reader's connection on close (SO_LINGER 0). */
void ngx_http_ticket_ws_reset(ngx_http_ticket_ws_t *ws);
/* Append a record (tag: a ticket id, or NULL); NGX_DECLINED when the
 * stash, not empty, would pass limit bytes, NGX_ERROR without memory. */
ngx_int_t ngx_http_ticket_ws_stash_add(ngx_http_ticket_ws_stash_t *st,
    const char *tag, ngx_uint_t staff, const char *data, size_t len,
    size_t limit);
/* Empty the stash into each(ws, tag or NULL, data, len), in order, while
 * the socket stays open; the stash is empty (and free) afterwards. */
void ngx_http_ticket_ws_stash_drain(ngx_http_ticket_ws_t *ws,
    ngx_http_ticket_ws_stash_t *st, void (*each)(ngx_http_ticket_ws_t *ws,
    const char *tag, ngx_uint_t staff, const char *data, size_t len));
/* CONNECT is answered: handle the events kept meanwhile. */
void ngx_http_ticket_ws_replay_early(ngx_http_ticket_ws_t *ws);

/* ngx_http_ticket_ws_rooms.c: rooms and held events */

/* The socket's membership of the ticket's room, or NULL. */
ngx_http_ticket_ws_member_t *ngx_http_ticket_ws_membership(
    ngx_http_ticket_ws_t *ws, const char *ticket);
/* Join the ticket's room: NGX_OK (a member now or already), NGX_DECLINED
 * at the limit of rooms, NGX_ERROR without memory. */
ngx_int_t ngx_http_ticket_ws_join(ngx_http_ticket_ws_t *ws,
    const char *ticket);
/* Leave one room (freed, and the room with it once empty). */
void ngx_http_ticket_ws_leave(ngx_http_ticket_ws_member_t *m);
/* Leave every room the socket is in. */
void ngx_http_ticket_ws_leave_all(ngx_http_ticket_ws_t *ws);
/* Set whether the member is staff on its ticket, telling ticketd when it
 * starts or stops being one of the ticket's viewers. */
void ngx_http_ticket_ws_set_staff(ngx_http_ticket_ws_member_t *m,
    ngx_uint_t staff);
/* The link to ticketd is (back) up: announce every staff member of this
 * worker's rooms as a viewer again (ticketd forgot the old link's). */
void ngx_http_ticket_ws_views_announce(void);
/* A client's typing {ticketId, typing}: forwarded to the staff in the room
 * as user_typing when the socket is staff there, at most once a second
 * while on (a change always passes). */
void ngx_http_ticket_ws_typing(ngx_http_ticket_ws_t *ws, json_t *arg);
/* apply(member, arg) for each member of the ticket's room on this worker;
 * apply may close the current member, never the next. */
void ngx_http_ticket_ws_room_each(const char *ticket,
    void (*apply)(ngx_http_ticket_ws_t *ws, void *arg), void *arg);
/* The socket's check is done: send what it held, but for the rooms it is
 * no longer in. */
void ngx_http_ticket_ws_release_held(ngx_http_ticket_ws_t *ws);

/* ngx_http_ticket_ws_rights.c: store checks and rights pushes */

/* Post a check; NGX_OK, NGX_BUSY at the socket's limit of client tasks,
 * NGX_ERROR when it could not be posted (logged). */
ngx_int_t ngx_http_ticket_ws_post(ngx_http_ticket_ws_t *ws,
    ngx_http_ticket_ws_job_e job, const char *ticket, int64_t ack_id);
/* Answer a client event's ack (none when ack_id < 0); takes v. */
void ngx_http_ticket_ws_ack(ngx_http_ticket_ws_t *ws, int64_t ack_id,
    json_t *v);
/* Answer a client event's ack with {ok: false, error}. */
void ngx_http_ticket_ws_ack_error(ngx_http_ticket_ws_t *ws, int64_t ack_id,
    const char *error);
/* Timer: the token's exp (or, before CONNECT, the connect timeout). */
void ngx_http_ticket_ws_deadline(ngx_event_t *ev);
/* Apply an internal rights event from ticketd; never forwarded. */
void ngx_http_ticket_ws_rights(const char *event, json_t *data);

#endif /* NGX_HTTP_TICKET_WS_H */

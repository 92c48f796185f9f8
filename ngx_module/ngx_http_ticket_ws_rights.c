/*
 * The store checks of ticket_socketio's sockets, run in the thread pool
 * (CONNECT, join_ticket, re-authorisation), and the rights pushes from
 * ticketd that trigger them (split from ngx_http_ticket_ws.c along its
 * seams; the socket itself is there, what the files share in
 * ngx_http_ticket_ws.h).
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
 */

#include "ngx_http_ticket_ws.h"

#define NGX_HTTP_TICKET_WS_MAX_TASKS  4    /* client tasks in flight */
#define NGX_HTTP_TICKET_WS_MAX_REDO   8    /* stale checks run again */

/* ticket_access_changed pushes seen: a join check older than one is
 * stale */
static ngx_uint_t   ngx_http_ticket_ws_access_epoch;

static void ngx_http_ticket_ws_expiry(ngx_http_ticket_ws_t *ws);


/* --- thread tasks: the store checks ----------------------------------------- */

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
    u_char                     staff;        /* JOIN: staff on it */
    u_char                     visible[NGX_HTTP_TICKET_WS_ROOMS];
    u_char                     staff_of[NGX_HTTP_TICKET_WS_ROOMS];
    char                       username[64];
} ngx_http_ticket_ws_task_t;


/* ok: 1 visible, 0 not (or no such ticket); -1 when the store failed;
 * *staff: whether u is staff on it (ts_ticket_staff). */
static int
ngx_http_ticket_ws_visible(ts_store_t *s, const ts_user_t *u,
    const char *ticket, u_char *staff)
{
    ts_ticket_keys_t  k;

    *staff = 0;
    switch (ts_store_ticket_get(s, ticket, 0, NULL, &k)) {
    case TS_OK:
        *staff = (u_char) ts_ticket_staff(u, &k);
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
        ngx_cpystrn((u_char *) t->username,
                    (u_char *) (u.username ? u.username : ""),
                    sizeof(t->username));
        if (t->job == NGX_HTTP_TICKET_WS_JOIN) {
            v = ngx_http_ticket_ws_visible(s, &u, t->ticket, &t->staff);
            if (v < 0) {
                t->session = TS_SESSION_ERROR;
            }
            t->ok = v > 0;

        } else if (t->job == NGX_HTTP_TICKET_WS_REAUTH) {
            for (i = 0; i < t->nrooms; i++) {
                v = ngx_http_ticket_ws_visible(s, &u, t->rooms[i],
                                               &t->staff_of[i]);
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


void
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


void
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

    ngx_memcpy(ws->username, t->username, sizeof(ws->username));
    for (i = 0; i < t->nrooms && !ws->closed; i++) {
        m = ngx_http_ticket_ws_membership(ws, t->rooms[i]);
        if (m == NULL) {
            continue;
        }
        if (t->visible[i]) {
            /* a demotion or reassignment may end (or start) staffness */
            ngx_http_ticket_ws_set_staff(m, t->staff_of[i]);
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
            ngx_memcpy(ws->username, t->username, sizeof(ws->username));
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
                ngx_http_ticket_ws_set_staff(
                    ngx_http_ticket_ws_membership(ws, t->ticket), t->staff);
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
ngx_int_t
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
void
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
void
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

/*
 * link_server: accepts worker links and handles their frames (see
 * link_server.h).
 *
 * Ownership:
 *   - the server owns the listening pipe, the socket path and the list of
 *     open links;
 *   - a link owns its pipe handle and its decoder; it leaves the list the
 *     moment it starts closing (so broadcasts skip it) and is freed in the
 *     pipe's close callback, after libuv has cancelled its pending writes;
 *   - an outgoing frame (link_frame_t) is shared by every write that sends
 *     it and freed when the last reference goes; a broadcast copies the
 *     payload once whatever the number of links.
 *
 * Invariant: link->out_bytes is the sum of the lengths of the writes
 * queued on that link and not yet called back, and never exceeds
 * LINK_OUT_MAX.
 *
 * Trust: a link reads every event and may inject events and presence, so
 * only the nginx workers may hold one.  The socket is 0660, and every
 * accepted connection is checked with SO_PEERCRED before a byte is read
 * or sent: its uid must be root, ticketd's own, or the --link-user's;
 * any other peer is closed at once and logged (rate-limited).  Every event
 * frame is then checked against the one event schema (ts_event_check)
 * before it is fanned out or published.
 */

#define _GNU_SOURCE             /* struct ucred */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "hub.h"
#include "job_runner.h"
#include "link_server.h"
#include "log.h"
#include "metrics.h"
#include "presence.h"
#include "viewers.h"
#include "ts_event.h"
#include "ts_link.h"
#include "ts_model.h"
#include "ts_wire.h"

#define LINK_BACKLOG   128
#define LINK_READ_BUF  (64 * 1024)

typedef struct link_s  link_t;

struct link_s {
    uv_pipe_t           pipe;        /* pipe.data == this link */
    link_t             *prev, *next;
    uint64_t            id;          /* 1, 2, ... in accept order; for logs */
    ts_link_decoder_t   dec;
    size_t              out_bytes;   /* see the invariant above */
    json_int_t          pid;         /* from hello; -1 until then */
    json_int_t          worker;
    int                 closing;
    int                 refused;     /* peer check failed: close quietly */
    int                 refusing;    /* hello refused: nothing more in or
                                        out but the refusal, then closed */
    uv_shutdown_t       shutdown;
    const char         *text;        /* the frame being handled, as */
    size_t              text_len;    /*   received (its JSON text) */
};

typedef struct {
    unsigned        refs;
    size_t          len;
    unsigned char  *data;            /* header + payload, from ts_link_frame */
} link_frame_t;

typedef struct {
    uv_write_t      req;             /* first: callbacks cast back */
    link_t         *link;
    link_frame_t   *frame;
} link_write_t;

typedef struct {
    const char  *type;
    void       (*handle)(link_t *l, json_t *msg);
} link_handler_t;

static struct {
    uv_loop_t   *loop;
    uv_pipe_t    listener;
    int          listening;
    char        *path;               /* owned; set once the file is ours */
    link_t      *links;
    uint64_t     next_id;
    uv_pipe_t    reject;             /* accepts and drops when out of memory */
    int          rejecting;
    uid_t        peer_uid;           /* --link-user's uid ... */
    int          peer_uid_set;       /* ... when one was given */
    log_limit_t  refused_log;        /* peers refused, frames dropped */
    int          expect_config;      /* link_server_expect() was called */
    char         expect[3][TS_WIRE_FP_HEX + 1];  /* store, socket, secret */
} server;

/* Reads are consumed (copied into the decoder) before the next one starts,
 * so every link can share this buffer. */
static char  read_buf[LINK_READ_BUF];

static void link_close(link_t *l);

/* --- outgoing frames -------------------------------------------------- */

static link_frame_t *
frame_new(const char *json, size_t len)
{
    link_frame_t  *f;

    f = malloc(sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    f->data = ts_link_frame(json, len, &f->len);
    if (f->data == NULL) {
        free(f);
        return NULL;
    }
    f->refs = 1;
    return f;
}

static void
frame_release(link_frame_t *f)
{
    if (--f->refs == 0) {
        free(f->data);
        free(f);
    }
}

static void
link_on_write(uv_write_t *req, int status)
{
    link_write_t  *w = (link_write_t *) req;
    link_t        *l = w->link;

    l->out_bytes -= w->frame->len;
    frame_release(w->frame);
    free(w);

    /* UV_ECANCELED: the link is closing and this write was dropped. */
    if (status < 0 && status != UV_ECANCELED) {
        log_warn("link %" PRIu64 ": write failed: %s", l->id,
                 uv_strerror(status));
        link_close(l);
    }
}

/* Queue f on l; 0 when queued, -1 when the link was closed instead. */
static int
link_send(link_t *l, link_frame_t *f)
{
    link_write_t  *w;
    uv_buf_t       buf;
    int            rc;

    if (l->closing || l->refusing) {
        return -1;
    }
    if (f->len > LINK_OUT_MAX - l->out_bytes) {
        log_warn("link %" PRIu64 ": slow reader, %zu bytes queued, closing",
                 l->id, l->out_bytes);
        link_close(l);
        return -1;
    }

    w = malloc(sizeof(*w));
    if (w == NULL) {
        log_error("link %" PRIu64 ": out of memory, closing", l->id);
        link_close(l);
        return -1;
    }
    w->link = l;
    w->frame = f;
    f->refs++;
    l->out_bytes += f->len;

    buf = uv_buf_init((char *) f->data, (unsigned int) f->len);
    rc = uv_write(&w->req, (uv_stream_t *) &l->pipe, &buf, 1, link_on_write);
    if (rc != 0) {
        l->out_bytes -= f->len;
        frame_release(f);
        free(w);
        log_warn("link %" PRIu64 ": write failed: %s, closing", l->id,
                 uv_strerror(rc));
        link_close(l);
        return -1;
    }
    return 0;
}

int
link_server_broadcast(const char *json, size_t len)
{
    link_frame_t  *f;
    link_t        *l, *next;
    int            n = 0;

    f = frame_new(json, len);
    if (f == NULL) {
        return -1;
    }
    for (l = server.links; l != NULL; l = next) {
        next = l->next;              /* link_send may unlink l */
        if (link_send(l, f) == 0) {
            n++;
        }
    }
    frame_release(f);
    return n;
}


/* Send json (malloc'ed, taken; NULL: nothing) on one link. */
static void
link_send_json(link_t *l, char *json, size_t len)
{
    link_frame_t  *f;

    if (json == NULL) {
        return;
    }
    f = frame_new(json, len);
    free(json);
    if (f != NULL) {
        (void) link_send(l, f);
        frame_release(f);
    }
}

int
link_server_links(void)
{
    link_t  *l;
    int      n = 0;

    for (l = server.links; l != NULL; l = l->next) {
        n++;
    }
    return n;
}

/* --- incoming frames -------------------------------------------------- */

static void
link_on_shutdown(uv_shutdown_t *req, int status)
{
    link_close(req->data);
}


/* Send json (the reason) to l, then close it once it is written; l takes
 * nothing more in the meantime. */
static void
link_refuse(link_t *l, const char *json, size_t len)
{
    link_frame_t  *f = frame_new(json, len);

    if (f != NULL) {
        link_send(l, f);
        frame_release(f);
    }
    if (l->closing) {
        return;
    }
    l->refusing = 1;
    uv_read_stop((uv_stream_t *) &l->pipe);
    l->shutdown.data = l;
    if (uv_shutdown(&l->shutdown, (uv_stream_t *) &l->pipe, link_on_shutdown)
        != 0)
    {
        link_close(l);
    }
}


void
link_server_expect(const char *store, const char *socket, const char *secret)
{
    snprintf(server.expect[0], sizeof(server.expect[0]), "%s", store);
    snprintf(server.expect[1], sizeof(server.expect[1]), "%s", socket);
    snprintf(server.expect[2], sizeof(server.expect[2]), "%s", secret);
    server.expect_config = 1;
}


/*
 * NULL when the hello's fingerprint is ticketd's, else which part differs,
 * as a sentence.  The secret is compared first: the other parts are keyed
 * by it, so with another secret they all differ and only it is named.
 */
static const char *
link_config_mismatch(json_t *msg)
{
    static const char  *parts[] = { "secret", "store", "socket" };
    static const int    index[] = { 2, 0, 1 };
    static const char  *why[] = {
        "its ticket_jwt_secret_file holds another secret than ticketd's",
        "its ticket_store is not ticketd's store",
        "its ticket_daemon socket is not the one ticketd listens on"
    };
    json_t             *config = json_object_get(msg, "config");
    const char         *v;
    int                 i;

    if (!json_is_object(config)) {
        return "its hello carries no configuration fingerprint (an older"
               " module?)";
    }
    for (i = 0; i < 3; i++) {
        v = json_string_value(json_object_get(config, parts[i]));
        if (v == NULL || strcmp(v, server.expect[index[i]]) != 0) {
            return why[i];
        }
    }
    return NULL;
}


static void
link_on_hello(link_t *l, json_t *msg)
{
    json_t      *pid = json_object_get(msg, "pid");
    json_t      *worker = json_object_get(msg, "worker");
    const char  *why;
    char         refusal[256];
    size_t       n_metrics = 0;
    int          n;

    if (!json_is_integer(pid) || !json_is_integer(worker)) {
        log_warn("link %" PRIu64 ": hello without integer pid and worker,"
                 " ignored", l->id);
        return;
    }
    l->pid = json_integer_value(pid);
    l->worker = json_integer_value(worker);
    if (server.expect_config && (why = link_config_mismatch(msg)) != NULL) {
        log_error("link %" PRIu64 ": refused nginx worker %"
                  JSON_INTEGER_FORMAT " pid %" JSON_INTEGER_FORMAT ": %s;"
                  " nginx and ticketd must read the same nginx.conf"
                  " (ticketd -c)", l->id, l->worker, l->pid, why);
        n = snprintf(refusal, sizeof(refusal),
                     "{\"type\":\"refused\",\"reason\":\"%s\"}", why);
        link_refuse(l, refusal, (size_t) n);
        return;
    }
    log_info("link %" PRIu64 ": hello from nginx worker %" JSON_INTEGER_FORMAT
             " pid %" JSON_INTEGER_FORMAT, l->id, l->worker, l->pid);
    /* the new worker (only) gets the daemon's metrics without waiting a
     * push: one render, one frame */
    link_send_json(l, metrics_frame(&n_metrics), n_metrics);
}

/* 1 when msg is an event frame of the schema (ts_event.h); else the
 * frame is logged (rate-limited) and must be dropped. */
static int
link_event_valid(link_t *l, json_t *msg)
{
    char  why[160];

    if (ts_event_check(msg, why, sizeof(why)) == 0) {
        return 1;
    }
    if (log_limited(&server.refused_log, "link: frames dropped")) {
        log_warn("link %" PRIu64 ": event frame dropped: %s", l->id, why);
    }
    return 0;
}

static void
link_on_event(link_t *l, json_t *msg)
{
    json_t      *name = json_object_get(msg, "event");
    json_t      *room = json_object_get(msg, "room");
    json_t      *data = json_object_get(msg, "data");
    char        *dump;

    if (!link_event_valid(l, msg)) {
        return;
    }
    if (l->text_len > TS_EVENT_MAX) {
        /* the checked size is the compact one; what goes on is this */
        if (log_limited(&server.refused_log, "link: frames dropped")) {
            log_warn("link %" PRIu64 ": event frame dropped: over %d bytes",
                     l->id, TS_EVENT_MAX);
        }
        return;
    }

    /*
     * Debug only, and never the data: events carry users' text, emails
     * and presence, and one line per event at info would fill the log
     * with them.  Name, room and size are enough to trace the hub.
     */
    if (log_enabled(LOG_DEBUG)) {
        dump = json_dumps(data != NULL ? data : json_null(),
                          JSON_COMPACT | JSON_ENCODE_ANY);
        log_debug("link %" PRIu64 ": event %s room=%s (%zu bytes)", l->id,
                  json_string_value(name),
                  json_is_string(room) ? json_string_value(room) : "-",
                  dump != NULL ? strlen(dump) : (size_t) 0);
        free(dump);
    }

    /*
     * The hub: every worker gets every event -- the sender too, since its
     * own sockets may be in the room -- and delivers it to its local
     * members, and every other host through the Redis bridge.  The bytes
     * received go on as they are: checked, not re-encoded (the parse
     * refused duplicate keys, so every later reader of these bytes sees
     * the object that was checked).
     */
    hub_publish(l->text, l->text_len);
}

static void
link_on_presence(link_t *l, json_t *msg)
{
    const char  *user = json_string_value(json_object_get(msg, "userId"));
    json_t      *delta = json_object_get(msg, "delta");

    if (user == NULL || !json_is_integer(delta)
        || json_string_length(json_object_get(msg, "userId")) != TS_OID_LEN
        || !ts_oid_valid(user)
        || (json_integer_value(delta) != 1 && json_integer_value(delta) != -1))
    {
        log_warn("link %" PRIu64 ": presence without a userId and a delta"
                 " of 1 or -1, ignored", l->id);
        return;
    }
    presence_change(l->id, user, (int) json_integer_value(delta));
}

/* {"type":"view","ticketId","userId","username","delta":1|-1}: a staff
 * member's socket joined or left a ticket's room (viewers.h). */
static void
link_on_view(link_t *l, json_t *msg)
{
    json_t      *t = json_object_get(msg, "ticketId");
    json_t      *u = json_object_get(msg, "userId");
    json_t      *name = json_object_get(msg, "username");
    json_t      *delta = json_object_get(msg, "delta");

    if (!json_is_string(t) || json_string_length(t) != TS_OID_LEN
        || !ts_oid_valid(json_string_value(t))
        || !json_is_string(u) || json_string_length(u) != TS_OID_LEN
        || !ts_oid_valid(json_string_value(u))
        || !json_is_string(name) || json_string_length(name) == 0
        || json_string_length(name) > 63
        || !json_is_integer(delta)
        || (json_integer_value(delta) != 1 && json_integer_value(delta) != -1))
    {
        log_warn("link %" PRIu64 ": view without a ticketId, a userId, a"
                 " username and a delta of 1 or -1, ignored", l->id);
        return;
    }
    viewers_change(l->id, json_string_value(t), json_string_value(u),
                   json_string_value(name), (int) json_integer_value(delta));
}

static void
link_on_wake(link_t *l, json_t *msg)
{
    log_debug("link %" PRIu64 ": wake", l->id);
    job_runner_wake();
}

static const link_handler_t  link_handlers[] = {
    { "hello", link_on_hello },
    { "event", link_on_event },
    { "wake",  link_on_wake },
    { "presence", link_on_presence },
    { "view", link_on_view },
};

/* Parse one frame and dispatch it; a bad frame is logged and dropped. */
static void
link_handle_frame(link_t *l, const char *payload, size_t len)
{
    json_t        *msg, *type;
    json_error_t   jerr;
    const char    *t;
    size_t         i;

    if (l->refusing || l->closing) {
        return;
    }
    msg = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
    if (msg == NULL) {
        log_warn("link %" PRIu64 ": invalid JSON frame (%s at byte %d),"
                 " ignored", l->id, jerr.text, jerr.position);
        return;
    }

    type = json_object_get(msg, "type");   /* NULL for non-objects */
    if (!json_is_string(type)) {
        log_warn("link %" PRIu64 ": frame is not an object with a string"
                 " \"type\", ignored", l->id);
        json_decref(msg);
        return;
    }

    t = json_string_value(type);
    for (i = 0; i < sizeof(link_handlers) / sizeof(link_handlers[0]); i++) {
        if (strcmp(t, link_handlers[i].type) == 0) {
            l->text = payload;
            l->text_len = len;
            link_handlers[i].handle(l, msg);
            l->text = NULL;
            l->text_len = 0;
            json_decref(msg);
            return;
        }
    }

    log_warn("link %" PRIu64 ": unknown frame type \"%s\", ignored", l->id,
             t);
    json_decref(msg);
}

static void
link_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    *buf = uv_buf_init(read_buf, sizeof(read_buf));
}

static void
link_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    link_t       *l = s->data;
    const char   *payload;
    size_t        len;
    int           rc;

    if (nread == 0) {
        return;                      /* EAGAIN */
    }
    if (nread < 0) {
        if (nread != UV_EOF) {
            log_warn("link %" PRIu64 ": read failed: %s", l->id,
                     uv_strerror((int) nread));
        }
        link_close(l);
        return;
    }

    if (ts_link_decoder_feed(&l->dec, buf->base, (size_t) nread) != 0) {
        log_error("link %" PRIu64 ": out of memory, closing", l->id);
        link_close(l);
        return;
    }

    while (!l->closing) {
        rc = ts_link_decoder_next(&l->dec, &payload, &len);
        if (rc == 0) {
            break;
        }
        if (rc < 0) {
            log_warn("link %" PRIu64 ": corrupt stream (frame length 0 or"
                     " over %d bytes), closing", l->id, TS_LINK_MAX_FRAME);
            link_close(l);
            break;
        }
        link_handle_frame(l, payload, len);
    }
}

/* --- link lifetime ---------------------------------------------------- */

static void
link_on_close(uv_handle_t *h)
{
    link_t  *l = h->data;

    if (!l->refused) {
        log_info("link %" PRIu64 ": closed", l->id);
    }
    ts_link_decoder_free(&l->dec);
    free(l);
}

static void
link_close(link_t *l)
{
    if (l->closing) {
        return;
    }
    l->closing = 1;

    if (l->prev != NULL) {
        l->prev->next = l->next;
    } else {
        server.links = l->next;
    }
    if (l->next != NULL) {
        l->next->prev = l->prev;
    }
    l->prev = l->next = NULL;
    presence_link_closed(l->id);       /* its sockets are gone */
    viewers_link_closed(l->id);

    uv_close((uv_handle_t *) &l->pipe, link_on_close);
}

static void
reject_on_close(uv_handle_t *h)
{
    server.rejecting = 0;
}

/* Out of memory: accept the pending connection and drop it, otherwise
 * libuv stops accepting until something is accepted. */
static void
link_reject(void)
{
    if (server.rejecting) {
        return;
    }
    if (uv_pipe_init(server.loop, &server.reject, 0) != 0) {
        return;
    }
    server.rejecting = 1;
    (void) uv_accept((uv_stream_t *) &server.listener,
                     (uv_stream_t *) &server.reject);
    uv_close((uv_handle_t *) &server.reject, reject_on_close);
}

/*
 * 1 when the peer of a just-accepted link may hold one: root, this
 * daemon's own uid, or the --link-user's (see the top of this file).
 */
static int
link_peer_allowed(link_t *l)
{
    struct ucred  cred;
    socklen_t     len = sizeof(cred);
    uv_os_fd_t    fd;

    if (uv_fileno((uv_handle_t *) &l->pipe, &fd) != 0
        || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0
        || len != sizeof(cred))
    {
        if (log_limited(&server.refused_log, "link: peers refused")) {
            log_warn("link %" PRIu64 ": refused: peer credentials"
                     " unavailable: %s", l->id, strerror(errno));
        }
        return 0;
    }
    if (cred.uid == 0 || cred.uid == geteuid()
        || (server.peer_uid_set && cred.uid == server.peer_uid))
    {
        return 1;
    }
    if (log_limited(&server.refused_log, "link: peers refused")) {
        log_warn("link %" PRIu64 ": refused a peer with uid %ld (pid %ld):"
                 " only root, ticketd's uid %ld%s may link", l->id,
                 (long) cred.uid, (long) cred.pid, (long) geteuid(),
                 server.peer_uid_set ? " and the --link-user" : "");
    }
    return 0;
}

void
link_server_allow_uid(uid_t uid)
{
    server.peer_uid = uid;
    server.peer_uid_set = 1;
}

static void
link_on_connection(uv_stream_t *listener, int status)
{
    link_t  *l;
    int      rc;

    if (status < 0) {
        log_warn("accept failed: %s", uv_strerror(status));
        return;
    }

    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        log_error("out of memory, refusing a link");
        link_reject();
        return;
    }
    ts_link_decoder_init(&l->dec);
    l->pid = -1;
    l->worker = -1;

    rc = uv_pipe_init(server.loop, &l->pipe, 0);
    if (rc != 0) {
        log_error("refusing a link: %s", uv_strerror(rc));
        free(l);
        link_reject();
        return;
    }
    l->pipe.data = l;
    l->id = ++server.next_id;

    /* In the list from here on, so link_close() can unlink it. */
    l->next = server.links;
    if (server.links != NULL) {
        server.links->prev = l;
    }
    server.links = l;

    rc = uv_accept(listener, (uv_stream_t *) &l->pipe);
    if (rc == 0 && !link_peer_allowed(l)) {
        l->refused = 1;
        link_close(l);               /* before a byte is read or sent */
        return;
    }
    if (rc == 0) {
        rc = uv_read_start((uv_stream_t *) &l->pipe, link_on_alloc,
                           link_on_read);
    }
    if (rc != 0) {
        log_warn("link %" PRIu64 ": accept failed: %s", l->id,
                 uv_strerror(rc));
        link_close(l);
        return;
    }
    log_info("link %" PRIu64 ": connected", l->id);
}

/* --- the socket ------------------------------------------------------- */

/*
 * Make path free for bind: nothing there, or a socket nobody answers on
 * (left by a daemon that died), which is removed.  A live listener, or
 * anything that is not a socket, is left alone and reported.
 */
static int
link_socket_claim(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un  sa;
    struct stat         st;
    int                 fd, rc, e;

    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) {
            return 0;
        }
        snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a socket; refusing to"
                 " remove it", path);
        return -1;
    }

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path));     /* length checked by caller */

    rc = connect(fd, (struct sockaddr *) &sa, sizeof(sa));
    e = errno;
    close(fd);

    /* EAGAIN: the listener's backlog is full, so it is alive too. */
    if (rc == 0 || e == EAGAIN || e == EINPROGRESS) {
        snprintf(err, errlen, "another ticketd is already listening on %s;"
                 " refusing to start", path);
        return -1;
    }
    if (e == ENOENT) {
        return 0;
    }
    if (e != ECONNREFUSED) {
        snprintf(err, errlen, "cannot probe %s: %s", path, strerror(e));
        return -1;
    }

    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove stale socket %s: %s", path,
                 strerror(errno));
        return -1;
    }
    log_info("removed stale socket %s", path);
    return 0;
}

int
link_server_start(uv_loop_t *loop, const char *path, char *err,
    size_t errlen)
{
    int  rc;

    if (server.listening) {
        snprintf(err, errlen, "link server already started");
        return -1;
    }
    if (strlen(path) >= sizeof(((struct sockaddr_un *) 0)->sun_path)) {
        snprintf(err, errlen, "socket path too long: %s", path);
        return -1;
    }
    if (link_socket_claim(path, err, errlen) != 0) {
        return -1;
    }

    server.loop = loop;
    rc = uv_pipe_init(loop, &server.listener, 0);
    if (rc != 0) {
        snprintf(err, errlen, "pipe init: %s", uv_strerror(rc));
        return -1;
    }
    server.listening = 1;            /* the handle needs closing from here */

    rc = uv_pipe_bind(&server.listener, path);
    if (rc != 0) {
        snprintf(err, errlen, "bind %s: %s", path, uv_strerror(rc));
        link_server_stop();
        return -1;
    }
    server.path = strdup(path);      /* the file is ours: stop removes it */
    if (server.path == NULL) {
        unlink(path);
        snprintf(err, errlen, "out of memory");
        link_server_stop();
        return -1;
    }

    /* Nobody can connect before listen(), so there is no window in which
     * the umask's mode is the one that counts. */
    if (chmod(path, 0660) != 0) {
        snprintf(err, errlen, "chmod %s: %s", path, strerror(errno));
        link_server_stop();
        return -1;
    }
    rc = uv_listen((uv_stream_t *) &server.listener, LINK_BACKLOG,
                   link_on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s: %s", path, uv_strerror(rc));
        link_server_stop();
        return -1;
    }
    return 0;
}

void
link_server_stop(void)
{
    if (server.listening) {
        uv_close((uv_handle_t *) &server.listener, NULL);
        server.listening = 0;
    }
    if (server.path != NULL) {
        if (unlink(server.path) != 0 && errno != ENOENT) {
            log_warn("cannot remove %s: %s", server.path, strerror(errno));
        }
        free(server.path);
        server.path = NULL;
    }
    while (server.links != NULL) {
        link_close(server.links);
    }
}

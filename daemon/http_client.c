/*
 * http_client: libcurl's multi-socket interface driven by libuv (see
 * http_client.h).
 *
 * How the two meet:
 *   - libcurl says which sockets it wants watched, and for what, through
 *     the socket callback; each such socket gets one uv_poll_t (an
 *     http_sock_t), attached to the socket with curl_multi_assign() and
 *     closed when libcurl says CURL_POLL_REMOVE;
 *   - libcurl says when it next needs to be called without socket activity
 *     through the timer callback; that is the client's one uv_timer_t;
 *   - a poll event or the timer calls curl_multi_socket_action(), then
 *     client_dispatch() collects finished transfers with
 *     curl_multi_info_read() and runs their callbacks.
 * User callbacks run from client_dispatch() and http_client_close() only,
 * never from inside a libcurl callback, so a user callback may call back
 * into this module (start a request, close the client).
 *
 * Ownership:
 *   - the client owns the multi handle (and through it the connection
 *     cache), the timer, the list of in-flight requests and the list of
 *     watched sockets;
 *   - a request (http_req_t) owns its easy handle, its header or recipient
 *     list, its copy of the body or message and the response buffer; it is
 *     in the client's list from the moment libcurl has it until its
 *     callback runs, and is freed right after that callback;
 *   - a watched socket owns its uv_poll_t; it leaves the list when its
 *     handle starts closing and is freed in the close callback.  The
 *     socket itself is libcurl's: it is opened and closed by libcurl.
 *
 * Invariants:
 *   - c->nreqs is the length of c->reqs, and every easy handle in the
 *     multi handle belongs to a request in that list;
 *   - c->handles counts the libuv handles not yet closed (the timer, plus
 *     every poll, the closing ones included); the client is freed when it
 *     reaches 0, which only happens after http_client_close();
 *   - c->depth counts the frames that run user callbacks; the multi handle
 *     is destroyed only at depth 0, so no frame below a callback ever sees
 *     it go (a callback may close the client);
 *   - every transfer has a total timeout, so a transfer whose socket could
 *     not be watched still ends, with an error, within that time.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "http_client.h"
#include "log.h"
#include "ts_validate.h"

#define HTTP_BODY_MIN_CAP   4096
#define HTTP_KEEPIDLE_S     60
#define HTTP_KEEPINTVL_S    30
#define HTTP_USER_AGENT     "ticketd"
#define HTTP_REPLY_MAX      160     /* SMTP reply text kept for errors */

/* Set an easy option unless an earlier one failed: rc keeps the first
 * error, so a run of options is checked once at its end. */
#define EASY_SET(rc, e, opt, val)                                        \
    do {                                                                 \
        if ((rc) == CURLE_OK) {                                          \
            (rc) = curl_easy_setopt((e), (opt), (val));                  \
        }                                                                \
    } while (0)

typedef struct http_req_s   http_req_t;
typedef struct http_sock_s  http_sock_t;

struct http_client_s {
    uv_loop_t     *loop;
    CURLM         *multi;          /* NULL once destroyed by the close */
    uv_timer_t     timer;          /* timer.data == this client */
    size_t         max_body;
    http_req_t    *reqs;
    size_t         nreqs;
    http_sock_t   *socks;
    unsigned       handles;        /* see the invariants above */
    unsigned       depth;
    int            closing;
    void         (*close_cb)(void *arg);
    void          *close_arg;
};

struct http_req_s {
    http_client_t       *c;
    http_req_t          *prev, *next;
    CURL                *easy;
    int                  smtp;
    struct curl_slist   *list;      /* HTTP headers or SMTP recipients */
    char                *out;       /* request body or mail; owned */
    size_t               out_len;
    size_t               out_off;   /* mail bytes handed to libcurl */
    char                *body;      /* response; owned */
    size_t               body_len;
    size_t               body_cap;
    int                  too_large;
    int                  unwatched; /* a socket could not be polled */
    http_done_cb         cb;
    void                *arg;
    char                 errbuf[CURL_ERROR_SIZE];
    char                 reply[HTTP_REPLY_MAX]; /* last SMTP 4xx/5xx line */
    char                 errtext[CURL_ERROR_SIZE + HTTP_REPLY_MAX + 32];
};

struct http_sock_s {
    uv_poll_t        poll;          /* poll.data == this socket */
    http_client_t   *c;
    http_sock_t     *prev, *next;
    curl_socket_t    fd;
};

static int  global_ready;

static void client_dispatch(http_client_t *c);
static void client_shutdown(http_client_t *c);

/* --- process setup ---------------------------------------------------- */

int
http_client_global_init(void)
{
    const curl_version_info_data  *v;

    if (global_ready) {
        return 0;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("http_client: libcurl global init failed");
        return -1;
    }
    v = curl_version_info(CURLVERSION_NOW);
    if (v->version_num < 0x075500) {
        log_error("http_client: libcurl %s is older than 7.85.0",
                  v->version);
        curl_global_cleanup();
        return -1;
    }
    global_ready = 1;
    return 0;
}

/* --- libuv handles ---------------------------------------------------- */

/* A handle of c finished closing; the last one frees the client. */
static void
client_handle_closed(http_client_t *c)
{
    void  (*cb)(void *arg);
    void   *arg;

    if (--c->handles > 0) {
        return;
    }
    cb = c->close_cb;
    arg = c->close_arg;
    free(c);
    if (cb != NULL) {
        cb(arg);
    }
}

static void
timer_on_close(uv_handle_t *h)
{
    client_handle_closed(h->data);
}

static void
sock_on_close(uv_handle_t *h)
{
    http_sock_t    *s = h->data;
    http_client_t  *c = s->c;

    free(s);
    client_handle_closed(c);
}

static void
sock_close(http_sock_t *s)
{
    http_client_t  *c = s->c;

    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        c->socks = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    s->prev = s->next = NULL;

    /* Stopping takes the fd out of epoll now, before libcurl closes it;
     * only the handle's memory waits for the close callback. */
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *) &s->poll, sock_on_close);
}

/* Run libcurl for fd (or CURL_SOCKET_TIMEOUT), then finish what ended. */
static void
client_drive(http_client_t *c, curl_socket_t fd, int flags)
{
    CURLMcode  mrc;
    int        running;

    mrc = curl_multi_socket_action(c->multi, fd, flags, &running);
    if (mrc != CURLM_OK) {
        log_error("http_client: curl_multi_socket_action: %s",
                  curl_multi_strerror(mrc));
    }
    client_dispatch(c);
}

static void
sock_on_poll(uv_poll_t *h, int status, int events)
{
    http_sock_t  *s = h->data;
    int           flags = 0;

    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE) {
            flags |= CURL_CSELECT_IN;
        }
        if (events & UV_WRITABLE) {
            flags |= CURL_CSELECT_OUT;
        }
    }
    /* s may be closed (not freed) by the socket callback in here. */
    client_drive(s->c, s->fd, flags);
}

static void
timer_on_fire(uv_timer_t *h)
{
    client_drive(h->data, CURL_SOCKET_TIMEOUT, 0);
}

/* --- libcurl's callbacks (no user code may run in these) -------------- */

/* A socket of easy could not be watched: its transfer will end by its
 * timeout; say why instead of "timeout". */
static void
req_mark_unwatched(CURL *easy, curl_socket_t fd, int rc)
{
    char  *r = NULL;

    log_error("http_client: cannot watch socket %d: %s", (int) fd,
              uv_strerror(rc));
    if (easy != NULL
        && curl_easy_getinfo(easy, CURLINFO_PRIVATE, &r) == CURLE_OK
        && r != NULL)
    {
        ((http_req_t *) r)->unwatched = 1;
    }
}

static int
client_on_socket(CURL *easy, curl_socket_t fd, int what, void *userp,
    void *socketp)
{
    http_client_t  *c = userp;
    http_sock_t    *s = socketp;
    int             events, rc;

    if (what == CURL_POLL_REMOVE) {
        /* libcurl forgets its socketp for fd right after this. */
        if (s != NULL) {
            sock_close(s);
        }
        return 0;
    }

    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL) {
            req_mark_unwatched(easy, fd, UV_ENOMEM);
            return 0;
        }
        rc = uv_poll_init_socket(c->loop, &s->poll, fd);
        if (rc != 0) {
            free(s);
            req_mark_unwatched(easy, fd, rc);
            return 0;
        }
        s->poll.data = s;
        s->c = c;
        s->fd = fd;
        s->next = c->socks;
        if (c->socks != NULL) {
            c->socks->prev = s;
        }
        c->socks = s;
        c->handles++;
        curl_multi_assign(c->multi, fd, s);
    }

    events = 0;
    if (what & CURL_POLL_IN) {
        events |= UV_READABLE;
    }
    if (what & CURL_POLL_OUT) {
        events |= UV_WRITABLE;
    }
    rc = uv_poll_start(&s->poll, events, sock_on_poll);
    if (rc != 0) {
        req_mark_unwatched(easy, fd, rc);
    }
    return 0;
}

static int
client_on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    http_client_t  *c = userp;

    if (timeout_ms < 0) {
        uv_timer_stop(&c->timer);
    } else {
        /* 0 means "as soon as possible": the next loop iteration, never
         * from in here (libcurl must not be re-entered). */
        uv_timer_start(&c->timer, timer_on_fire, (uint64_t) timeout_ms, 0);
    }
    return 0;
}

static size_t
req_on_write(char *data, size_t size, size_t nmemb, void *userdata)
{
    http_req_t  *r = userdata;
    size_t       n = size * nmemb, cap;
    char        *p;

    if (n > r->c->max_body - r->body_len) {
        r->too_large = 1;
        return 0;                       /* != n: libcurl aborts */
    }
    if (r->body_len + n + 1 > r->body_cap) {
        cap = r->body_cap > 0 ? r->body_cap : HTTP_BODY_MIN_CAP;
        while (cap < r->body_len + n + 1) {
            cap *= 2;
        }
        if (cap > r->c->max_body + 1) {
            cap = r->c->max_body + 1;   /* room for the cap and the NUL */
        }
        p = realloc(r->body, cap);
        if (p == NULL) {
            return 0;                   /* reported as a write error */
        }
        r->body = p;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    return n;
}

static size_t
req_on_read(char *buf, size_t size, size_t nitems, void *userdata)
{
    http_req_t  *r = userdata;
    size_t       n = size * nitems;

    if (n > r->out_len - r->out_off) {
        n = r->out_len - r->out_off;
    }
    memcpy(buf, r->out + r->out_off, n);
    r->out_off += n;
    return n;
}

/* libcurl rewinds the mail when it resends it on a fresh connection. */
static int
req_on_seek(void *userdata, curl_off_t offset, int origin)
{
    http_req_t  *r = userdata;

    if (origin != SEEK_SET || offset < 0 || (size_t) offset > r->out_len) {
        return CURL_SEEKFUNC_CANTSEEK;
    }
    r->out_off = (size_t) offset;
    return CURL_SEEKFUNC_OK;
}

/*
 * Keeps the last refusal (4xx/5xx line) the SMTP server sent, so an error
 * reads "554 5.6.0 message refused" rather than only libcurl's "Weird
 * server reply"; the last line overall is no good, libcurl QUITs after a
 * failure.  Only server lines are looked at (what we send holds the AUTH
 * secret).
 */
static int
req_on_debug(CURL *easy, curl_infotype type, char *data, size_t size,
    void *userdata)
{
    http_req_t  *r = userdata;
    size_t       n;

    if (type != CURLINFO_HEADER_IN || size == 0
        || (data[0] != '4' && data[0] != '5'))
    {
        return 0;
    }
    while (size > 0 && (data[size - 1] == '\n' || data[size - 1] == '\r')) {
        size--;
    }
    /* a server's text may be UTF-8: cut it between characters */
    n = ts_utf8_cut(data, size, (size_t) -1, sizeof(r->reply) - 1);
    memcpy(r->reply, data, n);
    r->reply[n] = '\0';
    return 0;
}

/* --- requests --------------------------------------------------------- */

static void
req_free(http_req_t *r)
{
    if (r->easy != NULL) {
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->list);
    free(r->out);
    free(r->body);
    free(r);
}

/* A copy of data[0..len) plus a NUL; "" for len 0.  NULL: no memory. */
static char *
copy_bytes(const char *data, size_t len)
{
    char  *p;

    p = malloc(len + 1);
    if (p == NULL) {
        return NULL;
    }
    if (len > 0) {
        memcpy(p, data, len);
    }
    p[len] = '\0';
    return p;
}

/*
 * A request with the options every transfer shares; NULL when out of
 * memory or an option is refused (then nothing is left allocated).
 */
static http_req_t *
req_new(http_client_t *c, const char *url, const char *protocols,
    long timeout_ms, http_done_cb cb, void *arg)
{
    http_req_t  *r;
    CURL        *e;
    CURLcode     rc = CURLE_OK;
    long         connect_ms;

    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    r->easy = e = curl_easy_init();
    if (e == NULL) {
        free(r);
        return NULL;
    }
    r->c = c;
    r->cb = cb;
    r->arg = arg;

    connect_ms = timeout_ms < HTTP_CLIENT_CONNECT_MAX_MS
                 ? timeout_ms : HTTP_CLIENT_CONNECT_MAX_MS;

    EASY_SET(rc, e, CURLOPT_PRIVATE, (void *) r);
    EASY_SET(rc, e, CURLOPT_ERRORBUFFER, r->errbuf);
    EASY_SET(rc, e, CURLOPT_URL, url);
    EASY_SET(rc, e, CURLOPT_PROTOCOLS_STR, protocols);
    EASY_SET(rc, e, CURLOPT_NOSIGNAL, 1L);
    EASY_SET(rc, e, CURLOPT_FOLLOWLOCATION, 0L);
    EASY_SET(rc, e, CURLOPT_TIMEOUT_MS, timeout_ms);
    EASY_SET(rc, e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    EASY_SET(rc, e, CURLOPT_TCP_KEEPALIVE, 1L);
    EASY_SET(rc, e, CURLOPT_TCP_KEEPIDLE, (long) HTTP_KEEPIDLE_S);
    EASY_SET(rc, e, CURLOPT_TCP_KEEPINTVL, (long) HTTP_KEEPINTVL_S);

    if (rc != CURLE_OK) {
        log_error("http_client: curl_easy_setopt: %s", curl_easy_strerror(rc));
        req_free(r);
        return NULL;
    }
    return r;
}

/* Hand r to libcurl; 0, or -1 with r freed. */
static int
req_start(http_req_t *r)
{
    http_client_t  *c = r->c;
    CURLMcode       mrc;

    /* This only arms the timer (at 0): the transfer, and any callback,
     * starts on a later loop iteration. */
    mrc = curl_multi_add_handle(c->multi, r->easy);
    if (mrc != CURLM_OK) {
        log_error("http_client: curl_multi_add_handle: %s",
                  curl_multi_strerror(mrc));
        req_free(r);
        return -1;
    }
    r->next = c->reqs;
    if (c->reqs != NULL) {
        c->reqs->prev = r;
    }
    c->reqs = r;
    c->nreqs++;
    return 0;
}

/* Take r out of the client and out of libcurl. */
static void
req_detach(http_req_t *r)
{
    http_client_t  *c = r->c;

    if (r->prev != NULL) {
        r->prev->next = r->next;
    } else {
        c->reqs = r->next;
    }
    if (r->next != NULL) {
        r->next->prev = r->prev;
    }
    r->prev = r->next = NULL;
    c->nreqs--;
    curl_multi_remove_handle(c->multi, r->easy);
}

/* The text for a failed transfer; sets res->timed_out. */
static const char *
req_error_text(http_req_t *r, CURLcode rc, http_result_t *res)
{
    const char  *detail;

    detail = r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(rc);

    if (r->unwatched) {
        return "event loop cannot watch the connection";
    }
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        res->timed_out = 1;
        return "timeout";

    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        snprintf(r->errtext, sizeof(r->errtext), "connect failed: %s",
                 detail);
        return r->errtext;

    case CURLE_FILESIZE_EXCEEDED:       /* Content-Length over the cap */
        return "response too large";

    case CURLE_WRITE_ERROR:
        return r->too_large ? "response too large" : "out of memory";

    default:
        if (r->reply[0] != '\0') {
            snprintf(r->errtext, sizeof(r->errtext), "%s (server said: %s)",
                     detail, r->reply);
        } else {
            snprintf(r->errtext, sizeof(r->errtext), "%s", detail);
        }
        return r->errtext;
    }
}

/* r's transfer ended with rc: detach it, call back, free it. */
static void
req_finish(http_req_t *r, CURLcode rc)
{
    http_result_t  res;
    long           code = 0;

    req_detach(r);

    memset(&res, 0, sizeof(res));
    (void) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    if (rc == CURLE_OK) {
        res.status = code;
    } else {
        res.error = req_error_text(r, rc, &res);
        /* SMTP keeps the code of the reply that refused the mail. */
        res.status = r->smtp ? code : 0;
    }
    if (rc == CURLE_OK && r->body != NULL) {
        r->body[r->body_len] = '\0';
        res.body = r->body;
        res.body_len = r->body_len;
    } else {
        res.body = "";
    }

    r->cb(&res, r->arg);
    req_free(r);
}

static void
req_cancel(http_req_t *r)
{
    http_result_t  res;

    req_detach(r);
    memset(&res, 0, sizeof(res));
    res.body = "";
    res.error = "cancelled";
    r->cb(&res, r->arg);
    req_free(r);
}

/* Run the callbacks of the transfers libcurl reports done. */
static void
client_dispatch(http_client_t *c)
{
    CURLMsg     *m;
    CURLcode     rc;
    char        *r;
    int          left;

    c->depth++;
    while (!c->closing
           && (m = curl_multi_info_read(c->multi, &left)) != NULL)
    {
        if (m->msg != CURLMSG_DONE) {
            continue;
        }
        /* m is libcurl's and dies with remove_handle: copy first. */
        rc = m->data.result;
        r = NULL;
        (void) curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &r);
        req_finish((http_req_t *) r, rc);
    }
    c->depth--;

    if (c->closing && c->depth == 0) {
        client_shutdown(c);
    }
}

/* --- public ----------------------------------------------------------- */

http_client_t *
http_client_new(uv_loop_t *loop, size_t max_body)
{
    http_client_t  *c;
    CURLMcode       mrc = CURLM_OK;

    if (!global_ready) {
        log_error("http_client: http_client_global_init() has not run");
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->loop = loop;
    /* Keeps max_body + 1 (the NUL) and the buffer doubling from wrapping. */
    c->max_body = max_body < SIZE_MAX / 4 ? max_body : SIZE_MAX / 4;
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        free(c);
        return NULL;
    }

#define MSET(opt, val)                                                  \
    if (mrc == CURLM_OK) mrc = curl_multi_setopt(c->multi, (opt), (val))
    MSET(CURLMOPT_SOCKETFUNCTION, client_on_socket);
    MSET(CURLMOPT_SOCKETDATA, (void *) c);
    MSET(CURLMOPT_TIMERFUNCTION, client_on_timer);
    MSET(CURLMOPT_TIMERDATA, (void *) c);
    MSET(CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) HTTP_CLIENT_MAX_CONNS);
    MSET(CURLMOPT_MAXCONNECTS, (long) HTTP_CLIENT_MAX_CONNS);
#undef MSET

    if (mrc != CURLM_OK) {
        log_error("http_client: curl_multi_setopt: %s",
                  curl_multi_strerror(mrc));
        curl_multi_cleanup(c->multi);
        free(c);
        return NULL;
    }

    /* Last: once the timer exists, only a close can free the client. */
    (void) uv_timer_init(loop, &c->timer);        /* cannot fail */
    c->timer.data = c;
    c->handles = 1;
    return c;
}

/* 1 when every string in the NULL-terminated list is a single line. */
static int
headers_valid(const char *const *headers)
{
    for (; headers != NULL && *headers != NULL; headers++) {
        if (strpbrk(*headers, "\r\n") != NULL) {
            return 0;
        }
    }
    return 1;
}

/* 1 when method is a short upper-case token (nothing else reaches the
 * request line). */
static int
method_valid(const char *method)
{
    size_t  i;

    for (i = 0; method[i] != '\0'; i++) {
        if (method[i] < 'A' || method[i] > 'Z' || i >= 16) {
            return 0;
        }
    }
    return i > 0;
}

static int
header_has(const char *const *headers, const char *name)
{
    size_t  n = strlen(name);

    for (; headers != NULL && *headers != NULL; headers++) {
        if (strncasecmp(*headers, name, n) == 0 && (*headers)[n] == ':') {
            return 1;
        }
    }
    return 0;
}

int
http_client_request(http_client_t *c, const char *method, const char *url,
    const char *const *headers, const char *body, size_t body_len,
    long timeout_ms, http_done_cb cb, void *arg)
{
    http_req_t         *r;
    struct curl_slist  *l;
    CURL               *e;
    CURLcode            rc = CURLE_OK;
    int                 get;

    if (c == NULL || c->closing || method == NULL || url == NULL
        || cb == NULL || timeout_ms <= 0 || (body == NULL && body_len > 0)
        || !method_valid(method) || !headers_valid(headers))
    {
        return -1;
    }
    get = strcmp(method, "GET") == 0;
    if (get && body_len > 0) {
        return -1;
    }

    r = req_new(c, url, "http,https", timeout_ms, cb, arg);
    if (r == NULL) {
        return -1;
    }
    e = r->easy;

    /* Not "Expect: 100-continue": it costs a round trip (or a second when
     * a proxy ignores it) on every large POST to an API that answers
     * anyway. */
    if (!header_has(headers, "Expect")) {
        r->list = curl_slist_append(NULL, "Expect:");
        if (r->list == NULL) {
            goto fail;
        }
    }
    for (; headers != NULL && *headers != NULL; headers++) {
        l = curl_slist_append(r->list, *headers);
        if (l == NULL) {
            goto fail;
        }
        r->list = l;
    }

    EASY_SET(rc, e, CURLOPT_HTTPHEADER, r->list);
    EASY_SET(rc, e, CURLOPT_USERAGENT, HTTP_USER_AGENT);
    /* "": every encoding libcurl can decode; max_body caps decoded bytes. */
    EASY_SET(rc, e, CURLOPT_ACCEPT_ENCODING, "");
    EASY_SET(rc, e, CURLOPT_WRITEFUNCTION, req_on_write);
    EASY_SET(rc, e, CURLOPT_WRITEDATA, (void *) r);
    if ((uint64_t) c->max_body < (uint64_t) INT64_MAX) {
        EASY_SET(rc, e, CURLOPT_MAXFILESIZE_LARGE,
                 (curl_off_t) c->max_body);
    }
    if (get) {
        EASY_SET(rc, e, CURLOPT_HTTPGET, 1L);
    } else {
        r->out = copy_bytes(body, body_len);
        if (r->out == NULL) {
            goto fail;
        }
        r->out_len = body_len;
        EASY_SET(rc, e, CURLOPT_POSTFIELDSIZE_LARGE,
                 (curl_off_t) body_len);
        EASY_SET(rc, e, CURLOPT_POSTFIELDS, r->out);
        if (strcmp(method, "POST") != 0) {
            EASY_SET(rc, e, CURLOPT_CUSTOMREQUEST, method);
        }
    }

    if (rc != CURLE_OK) {
        log_error("http_client: curl_easy_setopt: %s", curl_easy_strerror(rc));
        goto fail;
    }
    return req_start(r);

fail:
    req_free(r);
    return -1;
}

int
http_client_smtp(http_client_t *c, const char *url, const char *user,
    const char *password, const char *from, const char *const *rcpt,
    const char *message, size_t message_len, long timeout_ms,
    http_done_cb cb, void *arg)
{
    http_req_t         *r;
    struct curl_slist  *l;
    CURL               *e;
    CURLcode            rc = CURLE_OK;

    if (c == NULL || c->closing || url == NULL || from == NULL
        || rcpt == NULL || rcpt[0] == NULL || message == NULL || cb == NULL
        || timeout_ms <= 0 || !headers_valid(rcpt)
        || strpbrk(from, "\r\n") != NULL)
    {
        return -1;
    }

    r = req_new(c, url, "smtp,smtps", timeout_ms, cb, arg);
    if (r == NULL) {
        return -1;
    }
    e = r->easy;
    r->smtp = 1;

    for (; *rcpt != NULL; rcpt++) {
        l = curl_slist_append(r->list, *rcpt);
        if (l == NULL) {
            goto fail;
        }
        r->list = l;
    }
    r->out = copy_bytes(message, message_len);
    if (r->out == NULL) {
        goto fail;
    }
    r->out_len = message_len;

    EASY_SET(rc, e, CURLOPT_MAIL_FROM, from);
    EASY_SET(rc, e, CURLOPT_MAIL_RCPT, r->list);
    EASY_SET(rc, e, CURLOPT_UPLOAD, 1L);
    EASY_SET(rc, e, CURLOPT_READFUNCTION, req_on_read);
    EASY_SET(rc, e, CURLOPT_READDATA, (void *) r);
    EASY_SET(rc, e, CURLOPT_SEEKFUNCTION, req_on_seek);
    EASY_SET(rc, e, CURLOPT_SEEKDATA, (void *) r);
    EASY_SET(rc, e, CURLOPT_INFILESIZE_LARGE, (curl_off_t) message_len);
    /* smtp://: STARTTLS when offered; smtps:// is TLS from the start. */
    EASY_SET(rc, e, CURLOPT_USE_SSL, (long) CURLUSESSL_TRY);
    EASY_SET(rc, e, CURLOPT_DEBUGFUNCTION, req_on_debug);
    EASY_SET(rc, e, CURLOPT_DEBUGDATA, (void *) r);
    EASY_SET(rc, e, CURLOPT_VERBOSE, 1L);   /* to req_on_debug, not stderr */
    if (user != NULL) {
        EASY_SET(rc, e, CURLOPT_USERNAME, user);
    }
    if (password != NULL) {
        EASY_SET(rc, e, CURLOPT_PASSWORD, password);
    }

    if (rc != CURLE_OK) {
        log_error("http_client: curl_easy_setopt: %s", curl_easy_strerror(rc));
        goto fail;
    }
    return req_start(r);

fail:
    req_free(r);
    return -1;
}

/*
 * Destroy the multi handle (closing cached connections), then close the
 * sockets libcurl did not remove and the timer.  Runs once, at depth 0,
 * after every request has been called back.
 */
static void
client_shutdown(http_client_t *c)
{
    if (c->multi == NULL) {
        return;
    }
    /* May still call the socket and timer callbacks: both handles live. */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;

    while (c->socks != NULL) {
        sock_close(c->socks);
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *) &c->timer, timer_on_close);
}

void
http_client_close(http_client_t *c, void (*done_cb)(void *arg), void *arg)
{
    if (c->closing) {
        return;                         /* closed from a cancel callback */
    }
    c->closing = 1;
    c->close_cb = done_cb;
    c->close_arg = arg;

    /* Callbacks run from here may start requests (refused now) or call
     * close again (ignored); the depth keeps the multi handle alive for
     * a dispatch loop this close was called from. */
    c->depth++;
    while (c->reqs != NULL) {
        req_cancel(c->reqs);
    }
    c->depth--;

    if (c->depth == 0) {
        client_shutdown(c);
    }
}

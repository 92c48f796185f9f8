/*
 * store_pool: store connections used from libuv thread-pool threads
 * (see store_pool.h).
 *
 * Why a pool of checked-out connections rather than one connection per
 * thread-pool thread in a __thread pointer: libuv's pool threads live until
 * the process exits and a task cannot be sent to a chosen thread, so
 * per-thread connections could never be closed cleanly at shutdown (SQLite
 * would not checkpoint, valgrind would report them lost), and every thread
 * that ever ran a store task would keep a connection open.  Here the pool
 * owns a fixed set of handles; a task takes one from `idle`, so no handle
 * is ever used by two threads at once (the ts_store contract), and at most
 * nconns pool threads are busy with the store, leaving the rest of libuv's
 * pool to DNS and file work.  The skeleton opens one connection: SQLite
 * has a single writer anyway.  The job runner can raise nconns without
 * changing callers.
 *
 * Invariants (all state is touched on the loop thread only, except
 * task->conn, which the worker thread reads while the task is running):
 *   - nidle + running == nconns while the pool is open;
 *   - a task is either in the wait queue (head..tail) or running, never
 *     both; it is freed right after its done callback;
 *   - the close work is queued only once nothing is queued or running.
 */

#include <stdlib.h>
#include <string.h>

#include "store_pool.h"
#include "ts_wire.h"

typedef enum {
    POOL_IDLE = 0,     /* never opened */
    POOL_OPENING,
    POOL_OPEN,
    POOL_FAILED,       /* open failed; nothing to close */
    POOL_CLOSING,      /* draining, then closing connections */
    POOL_CLOSED
} pool_state_e;

typedef struct store_task_s  store_task_t;

struct store_task_s {
    uv_work_t       req;
    store_task_t   *next;
    ts_store_t     *conn;
    store_work_cb   work;
    store_done_cb   done;
    void           *arg;
};

static struct {
    uv_loop_t        *loop;
    pool_state_e      state;
    int               opening;          /* open work not yet done */
    char             *uri;              /* owned, for the open work */
    char             *cache_url;        /* owned, NULL = no cache */
    unsigned char     cache_key[TS_WIRE_KEY_LEN];  /* MACs of its values */
    int               nconns;
    ts_store_t       *conns[STORE_POOL_MAX_CONNS];
    ts_store_t       *idle[STORE_POOL_MAX_CONNS];
    int               nidle;
    int               running;          /* tasks handed to libuv */
    store_task_t     *head, *tail;      /* tasks waiting for a connection */
    uv_work_t         admin;            /* the open and the close work */
    char              backend[16];
    char              err[256];
    store_open_cb     open_cb;
    void             *open_arg;
    store_closed_cb   closed_cb;
    void             *closed_arg;
} pool;

static void pool_pump(void);
static void pool_maybe_close(void);

/* --- open ------------------------------------------------------------- */

static void
pool_open_work(uv_work_t *req)
{
    int  i;

    for (i = 0; i < pool.nconns; i++) {
        pool.conns[i] = ts_store_open(pool.uri, pool.err, sizeof(pool.err));
        if (pool.conns[i] == NULL) {
            if (pool.err[0] == '\0') {
                strcpy(pool.err, "unknown error");
            }
            while (i-- > 0) {
                ts_store_close(pool.conns[i]);
                pool.conns[i] = NULL;
            }
            pool.nconns = 0;
            return;
        }
        ts_store_set_cache(pool.conns[i], pool.cache_url, pool.cache_key);
    }
    snprintf(pool.backend, sizeof(pool.backend), "%s",
             ts_store_backend(pool.conns[0]));
}

static void
pool_open_done(uv_work_t *req, int status)
{
    int  i, ok;

    pool.opening = 0;
    free(pool.uri);
    free(pool.cache_url);
    pool.uri = pool.cache_url = NULL;

    ok = status == 0 && pool.nconns > 0;
    if (!ok && pool.err[0] == '\0') {
        snprintf(pool.err, sizeof(pool.err), "%s", uv_strerror(status));
    }

    if (ok) {
        for (i = 0; i < pool.nconns; i++) {
            pool.idle[i] = pool.conns[i];
        }
        pool.nidle = pool.nconns;
    }
    if (pool.state == POOL_OPENING) {
        pool.state = ok ? POOL_OPEN : POOL_FAILED;
    }

    pool.open_cb(ok ? NULL : pool.err, pool.open_arg);
    pool_maybe_close();
}

int
store_pool_open(uv_loop_t *loop, const char *uri, const char *cache_url,
    const unsigned char *cache_key, int nconns, store_open_cb cb, void *arg)
{
    if (pool.state != POOL_IDLE || nconns < 1
        || nconns > STORE_POOL_MAX_CONNS || cb == NULL
        || (cache_url != NULL && cache_key == NULL))
    {
        return -1;
    }
    if (cache_key != NULL) {
        memcpy(pool.cache_key, cache_key, TS_WIRE_KEY_LEN);
    }
    pool.uri = strdup(uri);
    pool.cache_url = cache_url ? strdup(cache_url) : NULL;
    if (pool.uri == NULL || (cache_url && pool.cache_url == NULL)) {
        free(pool.uri);
        free(pool.cache_url);
        pool.uri = pool.cache_url = NULL;
        return -1;
    }

    pool.loop = loop;
    pool.nconns = nconns;
    pool.open_cb = cb;
    pool.open_arg = arg;
    strcpy(pool.backend, "-");

    if (uv_queue_work(loop, &pool.admin, pool_open_work, pool_open_done)
        != 0)
    {
        free(pool.uri);
        free(pool.cache_url);
        pool.uri = pool.cache_url = NULL;
        return -1;
    }
    pool.state = POOL_OPENING;
    pool.opening = 1;
    return 0;
}

const char *
store_pool_backend(void)
{
    return pool.backend[0] ? pool.backend : "-";
}

/* --- tasks ------------------------------------------------------------ */

static void
task_work(uv_work_t *req)
{
    store_task_t  *t = req->data;

    t->work(t->conn, t->arg);
}

static void
task_done(uv_work_t *req, int status)
{
    store_task_t  *t = req->data;

    pool.idle[pool.nidle++] = t->conn;
    pool.running--;

    t->done(t->arg, status);
    free(t);

    pool_pump();
    pool_maybe_close();
}

/* Start queued tasks while connections are free. */
static void
pool_pump(void)
{
    store_task_t  *t;

    while (pool.head != NULL && pool.nidle > 0) {
        t = pool.head;
        pool.head = t->next;
        if (pool.head == NULL) {
            pool.tail = NULL;
        }

        t->conn = pool.idle[--pool.nidle];
        t->req.data = t;
        pool.running++;

        if (uv_queue_work(pool.loop, &t->req, task_work, task_done) != 0) {
            /* Cannot happen with valid arguments; fail the task, not us. */
            pool.idle[pool.nidle++] = t->conn;
            pool.running--;
            t->done(t->arg, UV_ECANCELED);
            free(t);
        }
    }
}

int
store_pool_submit(store_work_cb work, store_done_cb done, void *arg)
{
    store_task_t  *t;

    if (pool.state != POOL_OPEN) {
        return -1;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return -1;
    }
    t->work = work;
    t->done = done;
    t->arg = arg;

    if (pool.tail != NULL) {
        pool.tail->next = t;
    } else {
        pool.head = t;
    }
    pool.tail = t;

    pool_pump();
    return 0;
}

/* --- close ------------------------------------------------------------ */

static void
pool_close_work(uv_work_t *req)
{
    int  i;

    for (i = 0; i < pool.nconns; i++) {
        ts_store_close(pool.conns[i]);
        pool.conns[i] = NULL;
    }
}

static void
pool_close_done(uv_work_t *req, int status)
{
    pool.nconns = 0;
    pool.nidle = 0;
    pool.state = POOL_CLOSED;
    pool.closed_cb(pool.closed_arg);
}

/* Queue the close work once the pool has drained. */
static void
pool_maybe_close(void)
{
    if (pool.state != POOL_CLOSING || pool.opening || pool.running > 0
        || pool.head != NULL)
    {
        return;
    }
    pool.state = POOL_CLOSED;   /* until close_done: no second close */

    if (uv_queue_work(pool.loop, &pool.admin, pool_close_work,
                      pool_close_done) != 0)
    {
        /* Cannot happen; leaking the handles beats blocking the loop. */
        pool.closed_cb(pool.closed_arg);
    }
}

int
store_pool_close(store_closed_cb cb, void *arg)
{
    if (pool.state == POOL_IDLE) {
        return -1;
    }
    pool.closed_cb = cb;
    pool.closed_arg = arg;

    if (pool.state != POOL_CLOSING && pool.state != POOL_CLOSED) {
        pool.state = POOL_CLOSING;
        pool_maybe_close();
    }
    return 0;
}

/*
 * store_pool: the daemon's only road to the store.
 *
 * Store calls block (SQLite file I/O, a MongoDB round trip), so they never
 * run on the libuv loop thread.  Callers hand the pool a task: `work` runs
 * on a libuv thread-pool thread with a store connection checked out for it
 * alone, then `done` runs back on the loop thread.  The pool owns the
 * connections; a task only borrows one for the length of its work.
 *
 * One pool per process, driven from the loop thread only.
 */

#ifndef TICKETD_STORE_POOL_H
#define TICKETD_STORE_POOL_H

#include <uv.h>

#include "ts_store.h"

/* Connections a pool may hold (the libuv thread pool has 4 threads by
 * default; more connections than threads would sit idle). */
#define STORE_POOL_MAX_CONNS  4

/* Runs on a thread-pool thread; s is exclusively this task's. */
typedef void (*store_work_cb)(ts_store_t *s, void *arg);

/* Runs on the loop thread after work; status is 0, or UV_ECANCELED when
 * work never ran. */
typedef void (*store_done_cb)(void *arg, int status);

/* Runs on the loop thread; err is NULL on success, else the reason. */
typedef void (*store_open_cb)(const char *err, void *arg);

/* Runs on the loop thread once every connection is closed. */
typedef void (*store_closed_cb)(void *arg);

/*
 * Open nconns (1..STORE_POOL_MAX_CONNS) connections to uri off the loop,
 * each with the Redis cache at cache_url (NULL: none; its values
 * MAC'ed under cache_key, ts_store_set_cache) in front, so what the jobs
 * write invalidates what nginx cached; cb reports the outcome.  0 when
 * started, -1 when the pool is already in use or the arguments are bad.
 */
int store_pool_open(uv_loop_t *loop, const char *uri, const char *cache_url,
    const unsigned char *cache_key, int nconns, store_open_cb cb, void *arg);

/* Backend name of the open store ("sqlite", "mongodb"), or "-". */
const char *store_pool_backend(void);

/*
 * Queue a task (FIFO; it starts when a connection is free).  0 when
 * queued (done will be called exactly once), -1 when the pool is not open
 * or is closing, or memory ran out (done will not be called).
 */
int store_pool_submit(store_work_cb work, store_done_cb done, void *arg);

/*
 * Refuse new tasks, let queued and running ones finish, then close every
 * connection off the loop and call cb (never before this returns).  Also
 * right when open failed or is still in progress.  0 when cb will be
 * called, -1 when the pool was never opened (there is nothing to wait for).
 * Call once.
 */
int store_pool_close(store_closed_cb cb, void *arg);

#endif /* TICKETD_STORE_POOL_H */

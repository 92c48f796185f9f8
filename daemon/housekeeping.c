/*
 * housekeeping: the sweep timer and the purge task (see housekeeping.h).
 *
 * The sweep's result lives in a static struct: there is at most one sweep
 * in flight (`sweeping`), so one slot is enough, and it outlives the timer
 * when the daemon stops mid-sweep.
 */

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "housekeeping.h"
#include "log.h"
#include "store_pool.h"

static struct {
    uv_timer_t  timer;
    int         started;
    int         sweeping;
    int64_t     done_retention_ms;      /* 0: keep */
    int64_t     dead_retention_ms;      /* 0: keep */

    /* Written by the pool thread, read in sweep_done. */
    ts_rc_e     rc;
    int64_t     removed;
    int64_t     jobs_removed;
    char        err[256];
} hk;

static int64_t
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sweep_work(ts_store_t *s, void *arg)
{
    int64_t  now = now_ms(), n;
    int64_t  done_before, dead_before;

    hk.removed = 0;
    hk.jobs_removed = 0;
    hk.rc = ts_store_purge_expired(s, now, &hk.removed);

    done_before = hk.done_retention_ms > 0 ? now - hk.done_retention_ms : 0;
    dead_before = hk.dead_retention_ms > 0 ? now - hk.dead_retention_ms : 0;
    for (int i = 0; hk.rc == TS_OK && i < HOUSEKEEPING_MAX_BATCHES; i++) {
        n = 0;
        hk.rc = ts_store_job_purge(s, done_before, dead_before,
                                   HOUSEKEEPING_BATCH, &n);
        hk.jobs_removed += n;
        if (n < HOUSEKEEPING_BATCH) {
            break;
        }
    }
    if (hk.rc != TS_OK) {
        snprintf(hk.err, sizeof(hk.err), "%s", ts_store_errmsg(s));
    }
}

static void
sweep_done(void *arg, int status)
{
    hk.sweeping = 0;

    if (status != 0) {
        log_warn("housekeeping: sweep did not run: %s", uv_strerror(status));
    } else if (hk.rc != TS_OK) {
        log_warn("housekeeping: purge failed: %s", hk.err);
    } else if (hk.removed > 0 || hk.jobs_removed > 0) {
        log_info("housekeeping: purged %" PRId64 " expired rows and %"
                 PRId64 " finished jobs", hk.removed, hk.jobs_removed);
    }
}

static void
sweep_tick(uv_timer_t *t)
{
    if (hk.sweeping) {
        log_debug("housekeeping: previous sweep still running, skipped");
        return;
    }
    if (store_pool_submit(sweep_work, sweep_done, NULL) != 0) {
        log_warn("housekeeping: cannot queue a sweep");
        return;
    }
    hk.sweeping = 1;
}

int
housekeeping_start(uv_loop_t *loop, uint64_t interval_ms,
    int64_t done_retention_ms, int64_t dead_retention_ms)
{
    if (hk.started || interval_ms == 0) {
        return -1;
    }
    hk.done_retention_ms = done_retention_ms;
    hk.dead_retention_ms = dead_retention_ms;
    if (uv_timer_init(loop, &hk.timer) != 0) {
        return -1;
    }
    hk.started = 1;
    if (uv_timer_start(&hk.timer, sweep_tick, interval_ms, interval_ms)
        != 0)
    {
        housekeeping_stop();
        return -1;
    }
    return 0;
}

void
housekeeping_stop(void)
{
    if (hk.started) {
        uv_close((uv_handle_t *) &hk.timer, NULL);
        hk.started = 0;
    }
}

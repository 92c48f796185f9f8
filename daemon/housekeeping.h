/*
 * housekeeping: periodic store maintenance.
 *
 * Every interval, off the loop through store_pool, drops revoked tokens
 * past their expiry and stale login-attempt rows
 * (ts_store_purge_expired), and finished jobs past their retention
 * (ts_store_job_purge, in batches of HOUSEKEEPING_BATCH, so the store's
 * write lock is taken briefly and often rather than once for long).  One
 * sweep at a time: a tick that finds the previous sweep still running is
 * skipped.  Loop thread only.
 */

#ifndef TICKETD_HOUSEKEEPING_H
#define TICKETD_HOUSEKEEPING_H

#include <stdint.h>
#include <uv.h>

/* Jobs deleted per store call, and the most calls in one sweep (the rest
 * waits for the next sweep). */
#define HOUSEKEEPING_BATCH        500
#define HOUSEKEEPING_MAX_BATCHES  200

/*
 * Start sweeping every interval_ms (first sweep after one interval);
 * done jobs are purged done_retention_ms after they finished, dead jobs
 * dead_retention_ms after they died (0: kept).  0 on success, -1 when
 * already started or the timer cannot start.
 */
int housekeeping_start(uv_loop_t *loop, uint64_t interval_ms,
    int64_t done_retention_ms, int64_t dead_retention_ms);

/* Stop the timer; a sweep in flight still finishes and logs. */
void housekeeping_stop(void);

#endif /* TICKETD_HOUSEKEEPING_H */

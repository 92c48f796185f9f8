/*
 * housekeeping: periodic store maintenance.
 *
 * Every interval, off the loop through store_pool, drops revoked tokens
 * past their expiry and stale login-attempt rows
 * (ts_store_purge_expired).  One sweep at a time: a tick that finds the
 * previous sweep still running is skipped.  Loop thread only.
 */

#ifndef TICKETD_HOUSEKEEPING_H
#define TICKETD_HOUSEKEEPING_H

#include <stdint.h>
#include <uv.h>

/* Start sweeping every interval_ms (first sweep after one interval);
 * 0 on success, -1 when already started or the timer cannot start. */
int housekeeping_start(uv_loop_t *loop, uint64_t interval_ms);

/* Stop the timer; a sweep in flight still finishes and logs. */
void housekeeping_stop(void);

#endif /* TICKETD_HOUSEKEEPING_H */

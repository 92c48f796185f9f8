/*
 * job_runner: claiming and running stored jobs (see job_runner.h).
 *
 * Skeleton.  The runner to come owns a poll timer and a bounded number of
 * in-flight jobs submitted through store_pool; job_runner_wake() will fire
 * that poll early (coalescing bursts of wakes into one claim round).
 */

#include "job_runner.h"

void
job_runner_wake(void)
{
    /* Nothing to run yet: the job runner is not written. */
}

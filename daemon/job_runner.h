/*
 * job_runner: will claim stored jobs (AI triage, assignment, stats, email;
 * DESIGN.md section 5) with a lease and run them off the loop.
 *
 * Skeleton: only the wake hook exists.  Jobs are rows in the store before
 * any worker says "wake", so a missed or ignored wake loses nothing; it
 * only makes the runner look sooner than its next poll.
 */

#ifndef TICKETD_JOB_RUNNER_H
#define TICKETD_JOB_RUNNER_H

/* A worker stored a job: look for due jobs now.  Loop thread; cheap. */
void job_runner_wake(void);

#endif /* TICKETD_JOB_RUNNER_H */

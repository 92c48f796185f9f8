/*
 * job_runner_internal: what the runner core (job_runner.c: claims, leases,
 * retries, batched outcomes) shares with the job kinds (job_triage.c,
 * job_assign.c, job_sla.c, job_mail.c).  Not for callers outside the job
 * runner.
 *
 * Every stage runs on the loop thread; a kind ends each job it is given in
 * exactly one of finish_ok(), finish_fail() or (when stopping) slot_free().
 */

#ifndef TICKETD_JOB_RUNNER_INTERNAL_H
#define TICKETD_JOB_RUNNER_INTERNAL_H

#include "http_client.h"
#include "job_runner.h"
#include "metrics.h"
#include "ts_store.h"
#include "ts_triage.h"

typedef struct job_s job_t;

typedef void (*job_stage_pt)(job_t *j);

struct job_s {
    ts_job_t        job;
    job_t          *next_waiting;   /* provider queue */
    job_t          *next_done;      /* successes waiting to be recorded */
    job_t          *prev_held;      /* every job in flight, for renewals */
    job_t          *next_held;

    /* triage */
    char           *title;
    char           *description;
    int             triaged;
    int64_t         created_at;
    ts_triage_t     result;
    const char     *provider;       /* who produced result */
    int             fallback;
    char            ai_error[256];

    /* assignment / events */
    json_t         *event;          /* data of a ticket_updated to send */

    int             is_triage;
    uint64_t        claimed_ns;     /* uv_hrtime() at its start */

    /* outcome of the last store step */
    ts_rc_e         rc;
    char            store_err[256];
    char            err[256];       /* why the attempt failed */
    int             permanent;      /* the failure will never succeed */
    int             counted;
    job_stage_pt    after_store;    /* runs on the loop after a store step */
};

/* The runner's state; one runner per process. */
typedef struct {
    uv_loop_t          *loop;
    job_runner_cfg_t    cfg;
    uv_timer_t          timer;
    int                 timer_ready;
    http_client_t      *http;
    int                 claiming;
    int                 again;          /* a wake came during a claim */
    int                 due;            /* a claim may find due jobs */
    int                 in_flight;
    int                 ai_in_flight;
    int                 triage_in_flight;
    job_t              *waiting_head;   /* jobs waiting for a provider slot */
    job_t              *waiting_tail;
    job_t              *held;           /* jobs in flight */
    job_t              *done_head;      /* successes to record */
    job_t              *done_tail;
    int                 recording;      /* a batch of them is in the store */
    uv_timer_t          renew;          /* extends their leases */
    int                 renewing;
    int                 stopping;
    void              (*stopped)(void *);
    void               *stopped_arg;
    unsigned            seed;
} job_runner_state_t;

extern job_runner_state_t  jr;

typedef void (*job_store_pt)(ts_store_t *s, job_t *j);


/* --- the runner core (job_runner.c) --- */

/* Run work(s, j) off the loop, then next(j) on it. */
void store_step(job_t *j, job_store_pt work, job_stage_pt next);

/* Free j and its slot (nothing recorded: its lease expires); may claim. */
void slot_free(job_t *j);

/* The attempt succeeded: record it (batched), then free the slot. */
void finish_ok(job_t *j);

/* The attempt failed with j->err; permanent failures go dead at once. */
void finish_fail(job_t *j);

/* Send a ticket_updated event for the ticket to every worker link. */
void emit_ticket_updated(const char *ticket_id, json_t *data);

/* The ticket is now user_id's: tell their sockets (ticket_assigned). */
void emit_ticket_assigned(const char *ticket_id, const char *user_id);

/* The ticket's assignee changed: tell every worker to re-check its room. */
void emit_ticket_access_changed(const char *ticket_id);

/* Seconds since j was claimed, for the latency metrics. */
double job_seconds(const job_t *j);

/* The string member key of j's payload, or NULL. */
const char *payload_str(job_t *j, const char *key);

/* --- "triage" (job_triage.c) --- */

/* Store step: read the ticket's title, description and triaged flag. */
void triage_read_work(ts_store_t *s, job_t *j);

/* After it: triage offline or queue for a provider slot, then store. */
void triage_have_text(job_t *j);

/* --- "assign" and "stats" (job_assign.c) --- */

/* Store step: assign the ticket (once) and queue its mail. */
void assign_work(ts_store_t *s, job_t *j);

/* After it: emit the events and finish. */
void assign_done(job_t *j);

/* Store step: count the ticket in the moderator's stats (once). */
void stats_work(ts_store_t *s, job_t *j);

/* After it: finish. */
void stats_done(job_t *j);

/* --- "sla_warn" and "sla_breach" (job_sla.c) --- */

/* Re-check the ticket's target, then warn (store the emails) or mark the
 * breach (and send ticket_updated); both do nothing once the target is
 * met, moved or marked. */
void sla_start(job_t *j);

/* --- the absence rule (job_absence.c) --- */

/* Sweep for absent staff every so often (absence_ms > 0; 0 is a no-op);
 * 0 or -1. */
int absence_start(uv_loop_t *loop, int64_t absence_ms);

/* Stop the sweep timer; a sweep in flight still finishes. */
void absence_stop(void);

/* --- "email" (job_mail.c) --- */

/* Render the mail and send it by the configured transport, then finish. */
void email_start(job_t *j);

#endif /* TICKETD_JOB_RUNNER_INTERNAL_H */

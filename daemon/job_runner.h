/*
 * job_runner: claims stored jobs (DESIGN.md section 5) with a lease and
 * runs them without blocking the loop: store work through store_pool,
 * HTTP and SMTP through http_client (curl multi), files through the libuv
 * thread pool.
 *
 * Kinds: "triage" (AI provider or the built-in offline triage; the
 * provider's last failure falls back to offline), "assign" (atomic, in
 * the store), "stats", "email" (outbox folder, SendGrid or SMTP),
 * "sla_warn" and "sla_breach" (delayed, at a ticket's SLA dates).  A
 * failed attempt is retried with exponential backoff and jitter; after
 * the last one the job is dead, with its error, for admins to see.
 * After triage and after assignment a ticket_updated event goes to every
 * worker link.
 */

#ifndef TICKETD_JOB_RUNNER_H
#define TICKETD_JOB_RUNNER_H

#include <stdint.h>
#include <uv.h>

#include "ts_assign.h"
#include "ts_sla.h"

typedef struct {
    int              concurrency;      /* jobs in flight (64) */
    int              poll_ms;          /* sweep for due jobs (1000) */
    int64_t          lease_ms;         /* a claim's lease (60 000) */
    int64_t          retry_base_ms;    /* first retry delay (2 000) */
    int64_t          retry_max_ms;     /* longest retry delay (300 000) */

    const char      *provider;         /* "offline" | "gemini" | "openai" */
    const char      *ai_url;           /* provider base URL */
    const char      *ai_model;
    const char      *ai_key;           /* NULL: offline only */
    long             ai_timeout_ms;    /* per call (30 000) */
    int              ai_concurrency;   /* provider calls in flight (16) */

    const char      *mail_transport;   /* "outbox" | "sendgrid" | "smtp" */
    const char      *outbox_dir;
    const char      *sendgrid_url;
    const char      *sendgrid_key;
    const char      *smtp_url;
    const char      *smtp_user;
    const char      *smtp_password;
    const char      *mail_from;
    const char      *mail_reply_to;    /* NULL: no Reply-To */
    const char      *public_url;       /* links in mail; NULL: none */
    long             mail_timeout_ms;  /* per send (20 000) */

    ts_assign_cfg_t  assign;
    ts_sla_cfg_t     sla;              /* ticket_sla, ticket_sla_warning */
    int64_t          assign_absence_ms; /* hand back the To-Do tickets of
                                           staff dnd/offline this long
                                           (0: never) */
} job_runner_cfg_t;

/* Defaults for every field (offline triage, outbox mail). */
void job_runner_cfg_default(job_runner_cfg_t *cfg);

/* Start polling; cfg's strings must outlive the runner.  0 or -1. */
int job_runner_start(uv_loop_t *loop, const job_runner_cfg_t *cfg);

/* A worker stored a job: look for due jobs now.  Loop thread; cheap. */
void job_runner_wake(void);

/* Stop claiming, cancel transfers in flight (their jobs' leases expire
 * and another run picks them up), then call done(arg). */
void job_runner_stop(void (*done)(void *arg), void *arg);

#endif /* TICKETD_JOB_RUNNER_H */

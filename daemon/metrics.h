/*
 * metrics: ticketd's counters, rendered as Prometheus text and pushed to
 * every nginx worker over the link, where ticket_metrics serves them with
 * the workers' own (ngx_module/ngx_http_ticket_metrics.c).
 *
 * Loop thread only, but for the cache counter, which the store pool's
 * threads call (atomics).  Every recorder is cheap and never fails.
 */

#ifndef TICKETD_METRICS_H
#define TICKETD_METRICS_H

#include <stdint.h>
#include <uv.h>

/* How often the block goes to the workers. */
#define METRICS_PUSH_MS  2000

/* Count the Redis cache reads of this process's store connections; call
 * before the store pool opens. */
void metrics_count_cache(void);

/* Push every interval_ms (and on metrics_push()).  0, or -1 when the
 * timer cannot start. */
int metrics_start(uv_loop_t *loop, uint64_t interval_ms);

void metrics_stop(void);

/* Render and send the block to every link now. */
void metrics_push(void);

/* The block as a link frame's JSON, malloc'ed (*len set); NULL before
 * metrics_start or without memory. */
char *metrics_frame(size_t *len);

/* A job of kind was claimed and started. */
void metrics_job_started(const char *kind);

/* A job's attempt ended: outcome "done", "retry" or "dead"; seconds from
 * its claim, observed in the latency histogram for "done". */
void metrics_job_ended(const char *kind, const char *outcome,
    double seconds);

/* A ticket was triaged by provider ("offline", "gemini", "openai") in
 * seconds from its job's claim. */
void metrics_triage(const char *provider, double seconds);

/* The configured provider kept failing: the offline triage stands in. */
void metrics_triage_fallback(const char *provider);

/* A mail was handed to transport ("outbox", "sendgrid", "smtp"), or
 * refused (ok = 0). */
void metrics_mail(const char *transport, int ok);

/* Redis bridge messages: one published, one delivered from another host,
 * one dropped (bad seal, replay, bad frame). */
typedef enum {
    METRICS_BRIDGE_OUT = 0,
    METRICS_BRIDGE_IN,
    METRICS_BRIDGE_REJECTED,
    METRICS_BRIDGE_N
} metrics_bridge_e;

void metrics_bridge(metrics_bridge_e what);

#endif /* TICKETD_METRICS_H */

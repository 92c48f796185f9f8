/*
 * ts_prom: a writer of the Prometheus text exposition format (version
 * 0.0.4), shared by the nginx module's ticket_metrics handler and
 * ticketd, which renders its own block of metrics for the workers to
 * serve (see ngx_http_ticket_metrics.c).
 *
 *   # HELP ticket_jobs_finished_total Job attempts ended, by kind ...
 *   # TYPE ticket_jobs_finished_total counter
 *   ticket_jobs_finished_total{kind="email",outcome="done"} 3
 *
 * A family is opened with ts_prom_family() (its HELP and TYPE lines),
 * then its samples follow.  Label values are escaped as the format wants
 * (backslash, double quote, newline); names are the caller's constants
 * and are not checked.  Histograms are given per-bucket counts and are
 * written cumulative, ending with le="+Inf", then _sum and _count.
 *
 * The text grows in one malloc'ed buffer; a failed allocation is sticky
 * (ts_prom_text() then returns NULL), so callers write without checking
 * each call.  Pure: no I/O, no clock.
 */

#ifndef TS_PROM_H
#define TS_PROM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char    *buf;          /* malloc'ed, NUL-terminated once written */
    size_t   len;
    size_t   cap;
    int      oom;          /* an allocation failed: the text is lost */
} ts_prom_t;

/* Start an empty text. */
void ts_prom_init(ts_prom_t *p);

/* Release the text. */
void ts_prom_free(ts_prom_t *p);

/* The text so far (NUL-terminated, *len bytes), or NULL after a failed
 * allocation; it stays owned by p. */
const char *ts_prom_text(ts_prom_t *p, size_t *len);

/* Append bytes as they are (a block rendered elsewhere). */
void ts_prom_raw(ts_prom_t *p, const char *s, size_t len);

/* The "# HELP" and "# TYPE" lines of a family; type is "counter",
 * "gauge" or "histogram". */
void ts_prom_family(ts_prom_t *p, const char *name, const char *type,
    const char *help);

/*
 * One sample.  labels is NULL or a NULL-terminated list of name, value
 * pairs: { "kind", "email", "outcome", "done", NULL }.
 */
void ts_prom_u64(ts_prom_t *p, const char *name, const char *const *labels,
    uint64_t v);
void ts_prom_double(ts_prom_t *p, const char *name,
    const char *const *labels, double v);

/*
 * A histogram's samples: nbounds upper bounds (ascending, seconds for
 * latencies), counts[nbounds + 1] observations per bucket -- not
 * cumulative; the last is above every bound -- and the sum of the
 * observed values.  Writes name_bucket{...,le="..."} cumulative through
 * le="+Inf", then name_sum and name_count (the +Inf bucket's count).
 */
void ts_prom_histogram(ts_prom_t *p, const char *name,
    const char *const *labels, const double *bounds, size_t nbounds,
    const uint64_t *counts, double sum);

#endif /* TS_PROM_H */

/*
 * ts_sla: service-level targets (issue 15 item 3), pure.
 *
 * A ticket has two targets once its priority is known: a first response
 * (a public staff comment) and a resolution (status Completed), each a
 * duration from the ticket's creation that depends on the priority
 * (ticket_sla).  A warning is due a lead before each (ticket_sla_warning:
 * a share of the target, "80%", or a time before the due date, "30m").
 *
 * The dates are computed once, when the priority is set (triage, or a
 * staff member changing it), and stored on the ticket, so the module
 * (lists, filters) and ticketd (warning and breach jobs) read the same
 * dates and never need to agree on a configuration read at another time.
 */

#ifndef TS_SLA_H
#define TS_SLA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ts_json_writer.h"

#define TS_SLA_PRIORITIES  3       /* Low, Medium, High */

typedef struct {
    int64_t  response_ms[TS_SLA_PRIORITIES];     /* by ts_sla_priority() */
    int64_t  resolution_ms[TS_SLA_PRIORITIES];
    int      warn_percent;                       /* 1..99, or 0: warn_ms */
    int64_t  warn_ms;                            /* lead before a due date */
} ts_sla_cfg_t;

/* The dates of one ticket's targets (ms since the epoch; 0 = none). */
typedef struct ts_sla_due_s {
    int64_t  response_due;
    int64_t  resolution_due;
    int64_t  response_warn;        /* when the warning is due */
    int64_t  resolution_warn;
} ts_sla_due_t;

/* What the store keeps of a ticket's SLA, for checks and the JSON. */
typedef struct {
    ts_sla_due_t  due;
    int64_t       responded_at;    /* firstResponseAt, 0 = not yet */
    int64_t       breached_at;     /* slaBreachedAt, 0 = not marked */
    int           completed;       /* status is Completed */
} ts_sla_state_t;

/* Defaults: High 1h/8h, Medium 4h/24h, Low 24h/72h, warn at 80%. */
void ts_sla_cfg_default(ts_sla_cfg_t *cfg);

/* 0..2 for "Low", "Medium", "High", -1 for anything else (NULL too). */
int ts_sla_priority(const char *priority);

/* A duration: one or more <integer><unit> with units ms, s, m, h, d
 * ("90s", "1h30m"); > 0 and at most a year.  0 ok, -1 bad. */
int ts_sla_parse_duration(const char *s, int64_t *ms);

/* One word of ticket_sla, "High=1h/8h", into cfg; 0, or -1 with the
 * reason in err[128]. */
int ts_sla_cfg_target(ts_sla_cfg_t *cfg, const char *word, char err[128]);

/* The value of ticket_sla_warning, "80%" or "30m"; 0 or -1 (err[128]). */
int ts_sla_cfg_warning(ts_sla_cfg_t *cfg, const char *value, char err[128]);

/* The dates of a ticket created at created_at with priority (an index of
 * ts_sla_priority); every field 0 when priority < 0. */
void ts_sla_dates(const ts_sla_cfg_t *cfg, int priority, int64_t created_at,
    ts_sla_due_t *out);

/*
 * Breached at now: marked so (a breach job ran, or a target was met
 * late), or, while not completed, a target is overdue: no first response
 * by its date, or the resolution date passed.  A completed ticket is
 * judged by its mark alone (completing late marks it).  The one rule the JSON,
 * the list filter (written as a query in each backend) and the jobs keep.
 */
int ts_sla_breached(const ts_sla_state_t *st, int64_t now);

/* Due soon at now: not breached, and a target not met is past its
 * warning date. */
int ts_sla_due_soon(const ts_sla_state_t *st, int64_t now);

/*
 * The staff-only "sla" member's value: {firstResponseDue, resolutionDue,
 * firstResponseAt, breached, breachedAt, dueSoon}, or null for a ticket
 * without targets (not triaged yet).  A ticket with a deadline alone (the
 * original app's field) has a resolution target only: firstResponseDue
 * null.
 */
void ts_sla_write(ts_jw_t *w, const ts_sla_state_t *st, int64_t now);

/* One priority's line of analytics: {completed, breached, withinSla},
 * withinSla the share of completed tickets with no breach, in percent
 * (null when none completed). */
json_t *ts_sla_figures(int64_t completed, int64_t breached);

#endif /* TS_SLA_H */

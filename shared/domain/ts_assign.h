/*
 * ts_assign: who gets a ticket.  Pure scoring (DESIGN.md section 5.2): no
 * I/O and no mutable globals, so any thread may call it; what it allocates
 * is freed before it returns, but for the explanation it hands over.  The
 * caller (ticketd's assignment job) loads the candidates, calls
 * ts_assign_choose(), claims the chosen moderator atomically and stores
 * the explanation on the ticket.
 *
 * The formula is the original app's:
 *
 *     score = w_skill * skill + w_avail * availability + w_perf * performance
 *
 *     skill        matched ticket skills / ticket skills (case-insensitive);
 *                  0.5 when the ticket has none (checked first, so also
 *                  when the moderator has none), 0 when only the moderator
 *                  has none
 *     availability max(0, 1 - active / capacity)
 *     performance  0.7 when nothing was ever resolved; 1 at an average
 *                  <= target hours; then max(0, 1 - 0.5 (avg - target) /
 *                  target)
 *
 * Every candidate within tie_margin of the best is tied; among the tied
 * the one assigned least recently wins (never assigned = first).  Beyond
 * the original: offline and dnd candidates are skipped while anyone is
 * online.  The full tie-break order is at ts_assign_choose().
 */

#ifndef TS_ASSIGN_H
#define TS_ASSIGN_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "ts_model.h"
#include "ts_validate.h"

typedef struct {
    double  w_skill, w_avail, w_perf;   /* 0.5, 0.3, 0.2 */
    double  capacity;                   /* 10 */
    double  target_hours;               /* 24 */
    double  tie_margin;                 /* 0.05 */
} ts_assign_cfg_t;

/* Fill cfg with the original app's constants (the values above). */
void ts_assign_cfg_default(ts_assign_cfg_t *cfg);

/*
 * 0 when cfg is usable (finite weights >= 0 and not all 0, capacity > 0,
 * target_hours > 0, 0 <= tie_margin <= 1); otherwise -1 and a message
 * naming the field in err.  For whoever parses the configuration.
 */
int ts_assign_cfg_check(const ts_assign_cfg_t *cfg, ts_errmsg_t err);

/*
 * One word of the weights setting ("skill=0.5", "availability=0.3",
 * "performance=0.2": the names of the explanation's "weights") into cfg;
 * 0, or -1 and a message in err.  ts_assign_cfg_check() then checks the
 * whole.  For nginx's ticket_assign_weights and ticketd's reader of it.
 */
int ts_assign_cfg_weight(ts_assign_cfg_t *cfg, const char *word,
    ts_errmsg_t err);

/* A plain decimal number ("0.05", "10", "1e-1" refused) into *v: 0 or
 * -1. */
int ts_assign_number(const char *s, double *v);

/* 1 when id is one of the strings of exclude (a JSON array, or NULL:
 * nobody is excluded), else 0: a hand-back keeps who handed it back out
 * of the candidates (ts_job_reassign). */
int ts_assign_excluded(json_t *exclude, const char *id);

/* One moderator or admin as the scorer sees it; every pointer borrowed. */
typedef struct {
    const char     *id;                 /* 24-hex */
    const char     *username;
    json_t         *skills;             /* array of strings (borrowed) */
    int64_t         active;             /* assigned To-Do + In Progress */
    int64_t         total_resolved;
    double          avg_resolution_hours;
    int64_t         last_assigned_at;   /* ms, 0 = never */
    ts_presence_e   status;
} ts_candidate_t;

/*
 * Skill term in [0, 1]: the share of ticket_skills entries that some entry
 * of mod_skills equals, ignoring case (Unicode lower-case, as JavaScript's
 * toLowerCase()).  NULL, a non-array or non-string entries count as absent.
 */
double ts_assign_skill(json_t *ticket_skills, json_t *mod_skills);

/* Availability term in [0, 1]: max(0, 1 - active / capacity). */
double ts_assign_availability(const ts_assign_cfg_t *cfg, int64_t active);

/* Performance term in [0, 1] from resolved count and average hours. */
double ts_assign_performance(const ts_assign_cfg_t *cfg, int64_t resolved,
    double avg_hours);

/* The weighted sum of the three terms for candidate c. */
double ts_assign_score(const ts_assign_cfg_t *cfg, json_t *ticket_skills,
    const ts_candidate_t *c);

/*
 * Choose a candidate for a ticket: returns its index, or -1 when n == 0.
 *
 * Eligible: the online candidates, or all of them when nobody is online.
 * Tied: eligible candidates scoring within tie_margin of the best eligible
 * score (inclusive).  Among the tied, in order: least recently assigned
 * (last_assigned_at 0 or below = never = first), then higher score, then
 * lower id (ignoring case; a NULL id last), then lower index.
 *
 * *explanation (may be NULL) receives a new JSON object, owned by the
 * caller, or NULL if memory ran out (the choice is made regardless):
 * {"candidates":[{"_id","username","status","skill","availability",
 *    "performance","score","lastAssignedAt","eligible":bool,"tied":bool}
 *    ...] (every candidate, in input order, numbers rounded to 3 decimals),
 *  "chosen": "<id>" | null, "reason": "<one sentence>",
 *  "weights": {"skill","availability","performance"}, "capacity",
 *  "targetHours", "tieMargin"}
 */
int ts_assign_choose(const ts_assign_cfg_t *cfg, json_t *ticket_skills,
    const ts_candidate_t *c, size_t n, json_t **explanation);

#endif /* TS_ASSIGN_H */

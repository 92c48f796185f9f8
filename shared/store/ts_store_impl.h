/*
 * ts_store_impl: what a store backend implements.  Callers never include
 * this; they use ts_store.h, whose functions dispatch through the table.
 */

#ifndef TS_STORE_IMPL_H
#define TS_STORE_IMPL_H

#include "ts_cache.h"
#include "ts_store.h"

typedef struct {
    const char *name;
    void     (*close)(ts_store_t *s);
    ts_rc_e  (*ping)(ts_store_t *s);
    void     (*read_begin)(ts_store_t *s);    /* NULL: nothing to do */
    void     (*read_renew)(ts_store_t *s);    /* NULL: nothing to do */
    void     (*read_end)(ts_store_t *s);
    ts_rc_e  (*user_signup)(ts_store_t *s, ts_user_t *u,
                            const ts_job_new_t *job, const char **which);
    ts_rc_e  (*user_by_id)(ts_store_t *s, const char *id, ts_user_t *out);
    ts_rc_e  (*user_by_email)(ts_store_t *s, const char *email,
                              ts_user_t *out);
    ts_rc_e  (*user_by_username)(ts_store_t *s, const char *username,
                                 ts_user_t *out);
    ts_rc_e  (*user_list)(ts_store_t *s, json_t **out);
    ts_rc_e  (*user_count_role)(ts_store_t *s, ts_role_e role,
                                int64_t *count);
    ts_rc_e  (*user_set_status)(ts_store_t *s, const char *id,
                                ts_presence_e status, int64_t last_seen,
                                int chosen);
    ts_rc_e  (*user_update)(ts_store_t *s, const char *id, ts_role_e role,
                            json_t *skills);
    ts_rc_e  (*user_set_password)(ts_store_t *s, const char *id,
                                  const char *old_hash,
                                  const char *reset_hash,
                                  const char *new_hash, int64_t now,
                                  const ts_job_new_t *job, int64_t *epoch);
    ts_rc_e  (*user_reset_issue)(ts_store_t *s, const char *id,
                                 const char *token_hash, int64_t expires_at,
                                 int64_t now, const ts_job_new_t *job);
    ts_rc_e  (*user_by_reset)(ts_store_t *s, const char *token_hash,
                              int64_t now, ts_user_t *out);
    ts_rc_e  (*token_revoke)(ts_store_t *s, const char *sig, int64_t exp);
    ts_rc_e  (*token_revoked)(ts_store_t *s, const char *sig);
    ts_rc_e  (*login_get)(ts_store_t *s, const char *ident,
                          ts_login_attempts_t *out);
    ts_rc_e  (*login_attempt)(ts_store_t *s, const char *key,
                              int64_t now_ms, int64_t window_ms,
                              int max_failures, int64_t lock_ms,
                              ts_login_attempts_t *out, int *allowed);
    ts_rc_e  (*login_clear)(ts_store_t *s, const char *ident);
    ts_rc_e  (*job_insert)(ts_store_t *s, const ts_job_new_t *job,
                           ts_oid_t out_id);
    ts_rc_e  (*job_counts)(ts_store_t *s, ts_job_counts_t *out);
    ts_rc_e  (*purge_expired)(ts_store_t *s, int64_t now_ms,
                              int64_t *removed);
    ts_rc_e  (*ticket_create)(ts_store_t *s, const char *id,
                              const char *title, const char *description,
                              const char *created_by, int64_t now,
                              const ts_job_new_t *jobs, size_t njobs);
    ts_rc_e  (*ticket_get)(ts_store_t *s, const char *id, int with_comments,
                           json_t **doc, ts_ticket_keys_t *keys);
    ts_rc_e  (*ticket_list)(ts_store_t *s, const ts_ticket_query_t *q,
                            ts_jw_t *tickets, int64_t *total);
    ts_rc_e  (*ticket_set_status)(ts_store_t *s, const char *id,
                                  const char *status, const char *actor,
                                  int64_t now, int64_t unmodified_since,
                                  const ts_job_new_t *jobs, size_t njobs);
    ts_rc_e  (*ticket_history)(ts_store_t *s, const char *id,
                               json_t **history);
    ts_rc_e  (*canned_create)(ts_store_t *s, const char *id,
                              const char *owner, const char *title,
                              const char *body, int64_t now);
    ts_rc_e  (*canned_list)(ts_store_t *s, json_t **out);
    ts_rc_e  (*canned_get)(ts_store_t *s, const char *id, json_t **doc,
                           ts_oid_t owner);
    ts_rc_e  (*canned_update)(ts_store_t *s, const char *id,
                              const char *title, const char *body,
                              int64_t now);
    ts_rc_e  (*canned_delete)(ts_store_t *s, const char *id);
    ts_rc_e  (*comment_add)(ts_store_t *s, const char *ticket_id,
                            const ts_comment_new_t *c, int64_t now,
                            int64_t max_comments, const ts_job_new_t *jobs,
                            size_t njobs);
    ts_rc_e  (*comment_list)(ts_store_t *s, const char *ticket_id,
                             int with_internal, ts_jw_t *out);
    ts_rc_e  (*user_list_role)(ts_store_t *s, ts_role_e role, json_t **out);
    ts_rc_e  (*modreq_create)(ts_store_t *s, const char *id,
                              const char *applicant, const char *username,
                              const char *email, json_t *skills, int64_t now,
                              const ts_job_new_t *jobs, size_t njobs);
    ts_rc_e  (*modreq_get)(ts_store_t *s, const char *id, json_t **doc);
    ts_rc_e  (*modreq_latest)(ts_store_t *s, const char *applicant,
                              json_t **doc);
    ts_rc_e  (*modreq_last_rejection)(ts_store_t *s, const char *applicant,
                                      int64_t *rejected_at);
    ts_rc_e  (*modreq_pending)(ts_store_t *s, json_t **requests);
    ts_rc_e  (*modreq_decide)(ts_store_t *s, const char *id, int accept,
                              const char *reviewer, int64_t now,
                              const ts_job_new_t *jobs, size_t njobs);
    ts_rc_e  (*analytics)(ts_store_t *s, int64_t now, json_t **out);
    ts_rc_e  (*job_claim)(ts_store_t *s, int64_t now, int64_t lease_ms,
                          int max, int max_triage, ts_job_t **jobs,
                          size_t *n);
    ts_rc_e  (*job_done)(ts_store_t *s, const char *id, int attempts,
                         int64_t now);
    /* optional: several job_done in one transaction */
    ts_rc_e  (*jobs_done)(ts_store_t *s, const ts_job_t *jobs, size_t n,
                          int64_t now, ts_rc_e *rcs);
    ts_rc_e  (*job_extend)(ts_store_t *s, const ts_job_t *jobs, size_t n,
                           int64_t lease_until);
    ts_rc_e  (*job_fail)(ts_store_t *s, const char *id, int attempts,
                         const char *error, int dead, int64_t run_after,
                         int64_t now);
    ts_rc_e  (*job_list)(ts_store_t *s, const char *state, int64_t limit,
                         json_t **out);
    ts_rc_e  (*job_retry)(ts_store_t *s, const char *id, int64_t now);
    ts_rc_e  (*job_purge)(ts_store_t *s, int64_t done_before,
                          int64_t dead_before, int limit, int64_t *removed);
    ts_rc_e  (*ticket_text)(ts_store_t *s, const char *id, char **title,
                            char **description, int *triaged,
                            int64_t *created_at);
    ts_rc_e  (*ticket_set_triage)(ts_store_t *s, const char *id,
                                  json_t *triage, json_t *meta,
                                  const char *provider, int fallback,
                                  const ts_sla_due_t *due,
                                  int64_t now, const ts_job_new_t *jobs,
                                  size_t njobs);
    ts_rc_e  (*ticket_set_priority)(ts_store_t *s, const char *id,
                                    const char *priority, const char *actor,
                                    const ts_sla_due_t *due, int64_t now,
                                    const ts_job_new_t *jobs, size_t njobs);
    ts_rc_e  (*ticket_sla_breach)(ts_store_t *s, const char *id,
                                  const char *target, int64_t due,
                                  int64_t now);
    ts_rc_e  (*ticket_assign)(ts_store_t *s, const char *id,
                              json_t *exclude, const ts_assign_cfg_t *cfg,
                              ts_assigned_job_fn assigned_job, int64_t now,
                              json_t **result);
    ts_rc_e  (*ticket_stats)(ts_store_t *s, const char *id,
                             const char *moderator_id, double hours, int *counted);
    ts_rc_e  (*ticket_set_assignee)(ts_store_t *s, const char *id,
                                    const char *from, const char *to,
                                    const char *by, json_t *assignment,
                                    int64_t now, const ts_job_new_t *jobs,
                                    size_t njobs);
    ts_rc_e  (*user_handback)(ts_store_t *s, const char *user_id,
                              int demote, json_t *skills, int todo_only,
                              const char *actor, json_t *why,
                              ts_handback_job_fn job_fn, int64_t now,
                              json_t **handed);
    ts_rc_e  (*absent_assignees)(ts_store_t *s, int64_t before,
                                 json_t **users);
} ts_store_ops_t;

/* Every backend's handle starts with this header (zeroed: calloc it). */
struct ts_store_s {
    const ts_store_ops_t  *ops;
    char                   errmsg[256];
    ts_cache_t            *cache;        /* NULL: no Redis configured */
};

/* Cache-aside reads and the invalidation after writes (ts_store_cache.c);
 * ts_store.c calls them around the backend's operations. */
ts_rc_e ts_store_cached_ticket_list(ts_store_t *s, const ts_ticket_query_t *q,
    ts_jw_t *tickets, int64_t *total);
ts_rc_e ts_store_cached_users(ts_store_t *s, int all, ts_role_e role,
    json_t **out);
void ts_store_changed(ts_store_t *s, unsigned mask);

/* Record n jobs in state (a NULL or unknown state is ignored). */
/* Count n jobs of kind in state into c (both its totals and by kind). */
void ts_job_counts_add(ts_job_counts_t *c, const char *kind,
    const char *state, int64_t n);

/* The parts of GET /api/analytics each backend computes its own way. */
typedef struct {
    int64_t          tickets, triaged, fallbacks;
    json_t          *by_status, *by_priority, *providers, *daily, *backlog;
    json_t          *first_response, *resolution, *moderators;
    json_t          *sla;          /* by priority: completed, breached */
    ts_job_counts_t  jobs;
} ts_analytics_parts_t;

/*
 * The analytics document from its parts (their references are stolen,
 * NULLs allowed): ok is 0 after a backend failure (everything is released
 * and TS_ERR returned), else the document goes to *out.
 */
ts_rc_e ts_store_analytics_doc(ts_store_t *s, ts_analytics_parts_t *p, int ok,
    json_t **out);

/*
 * History entries both backends write the same way (ts_store.c).  They
 * fill h[] with NEW references (release with ts_hist_release) and return
 * how many entries there are: only what changed is recorded.
 *   ts_triage_history: priority and skills (relatedSkills) from the
 *     values before (old_prio a string or null, old_skills an array; NULL
 *     = null / []) to the triage result's; actor ticketd (NULL).
 *   ts_assign_history: the automatic assignment -- status, when To-Do
 *     moved to In Progress, then assignee null -> to ({_id, username})
 *     with the explanation; actor ticketd.
 */
size_t ts_triage_history(ts_hist_t h[2], json_t *old_prio, json_t *old_skills,
    json_t *triage);
size_t ts_assign_history(ts_hist_t h[2], json_t *to, json_t *explanation,
    const char *old_status, const char *new_status);
/*   ts_handback_history: a hand-back by actor (NULL: ticketd) -- assignee
 *     from ({_id, username}) -> null with why as the explanation, then
 *     status, when it moved (old_status -> new_status). */
size_t ts_handback_history(ts_hist_t h[2], const char *actor, json_t *from,
    json_t *why, const char *old_status, const char *new_status);
void ts_hist_release(ts_hist_t *h, size_t n);

/* Record a backend error for ts_store_errmsg(); returns TS_ERR. */
ts_rc_e ts_store_fail(ts_store_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Backend constructors, selected by ts_store_open() from the URI. */
ts_store_t *ts_store_sqlite_open(const char *path, char *err, size_t errlen);
/* "mongodb://..." or "mongodb+srv://..." (ts_store_mongo.c). */
ts_store_t *ts_store_mongo_open(const char *uri, char *err, size_t errlen);
/* 0 when libmongoc parses uri; else -1 and the parser's reason in err. */
int ts_store_mongo_uri_check(const char *uri, char *err, size_t errlen);

#endif /* TS_STORE_IMPL_H */

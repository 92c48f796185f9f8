/*
 * ts_store_mongo: what the MongoDB backend's files share -- the handle and
 * the BSON helpers.  Internal to shared/.
 *
 * ts_store_mongo.c owns the process-wide client pool, indexes, the job
 * outbox, the sweep and the ops table; ts_store_mongo_bson.c the BSON,
 * JSON and lookup helpers; ts_store_mongo_users.c users, tokens and login
 * attempts; ts_store_mongo_accounts.c password changes and reset tokens;
 * ts_store_mongo_tickets.c owns tickets and comments;
 * ts_store_mongo_modreqs.c moderator requests; ts_store_mongo_analytics.c
 * analytics; ts_store_mongo_jobs.c the job runner's ops, triage results,
 * assignment and moderator stats.
 *
 * Documents (shaped like the original app's Mongoose models, so a database
 * it wrote opens as is):
 *   users             _id, username, email, password, role, skills[],
 *                     status, lastSeen, totalTicketsResolved,
 *                     averageResolutionTimeHours, lastAssignedAt,
 *                     createdAt, updatedAt, __v; ours: usernameLower,
 *                     emailLower (case-insensitive unique keys, back-filled
 *                     for documents that lack them), presenceChoice,
 *                     pendingModRequest (one pending request per user),
 *                     sessionEpoch, passwordReset {tokenHash, expiresAt}
 *                     (ts_store_mongo_accounts.c),
 *                     recentStats (tickets already counted, see stats).
 *   tickets           _id, title, description, status, priority, summary,
 *                     helpfulNotes, relatedSkills[], createdBy, assignedTo,
 *                     deadline, comments[{_id, author, text, role,
 *                     createdAt}], createdAt, updatedAt, __v; ours: triage,
 *                     triageProvider, triageFallback, assignment,
 *                     completedAt, statsCounted, statsPending, assignedBy
 *                     (who assigned it by hand; null otherwise).
 *   moderatorrequests _id, applicant, username, email, skills[], status,
 *                     reviewedBy, createdAt, updatedAt, rejectedAt; ours:
 *                     promoted (an accepted request's promotion is done).
 *                     pendingHistory: the history outbox.
 *   tickethistory     _id, ticket, at, actor, action, from, to,
 *                     explanation, staffOnly (ts_store_mongo_history.c).
 *   cannedresponses   _id, title, body, owner, createdAt, updatedAt.
 *   jobs, revokedtokens, loginattempts: this project's own.
 * Every _id is an ObjectId (exposed as 24 hex digits); every time a BSON
 * date (exposed as ISO-8601 UTC).  __v and unknown fields are ignored.
 *
 * The job outbox: a write that stores jobs puts them, with their final
 * _id, into the written document's "pendingJobs" array in the same
 * single-document update, then inserts them into "jobs" and pulls them
 * back out (ts_mg_outbox_flush).  See ts_store_mongo.c for why nothing is
 * lost or duplicated.
 */

#ifndef TS_STORE_MONGO_H
#define TS_STORE_MONGO_H

#include <mongoc/mongoc.h>

#include "ts_store_impl.h"

typedef struct {
    struct ts_store_s      base;
    mongoc_client_pool_t  *pool;       /* the process's, for this URI */
    mongoc_client_t       *client;     /* popped from pool, pushed back */
    void                  *owner;      /* the process's pool record */
    mongoc_collection_t   *users;
    mongoc_collection_t   *tickets;
    mongoc_collection_t   *modreqs;
    mongoc_collection_t   *jobs;
    mongoc_collection_t   *tokens;
    mongoc_collection_t   *logins;
    mongoc_collection_t   *history;    /* "tickethistory" */
    mongoc_collection_t   *canned;     /* "cannedresponses" */
} ts_mongo_t;

#define TS_MG(s)  ((ts_mongo_t *) (s))

/* Record a driver error; TS_CONFLICT for a duplicate key, else TS_ERR. */
ts_rc_e ts_mg_fail(ts_mongo_t *m, const char *what, const bson_error_t *e);

/* 1 when the error is a duplicate key (E11000). */
int ts_mg_dup(const bson_error_t *e);

/* Parse 24 hex digits into oid; 0 ok, -1 malformed. */
int ts_mg_oid(const char *hex, bson_oid_t *oid);

/* A fresh ObjectId (ts_oid_new: fork-safe). */
void ts_mg_oid_new(bson_oid_t *oid);

/* Append an ObjectId parsed from hex (null when malformed or NULL). */
void ts_mg_append_oid_hex(bson_t *b, const char *key, const char *hex);

/* The ticket document with _id id (projection may be NULL) into *doc (the
 * caller destroys it); TS_NOT_FOUND when there is none. */
ts_rc_e ts_mg_ticket_doc(ts_mongo_t *m, const char *id,
    const bson_t *projection, bson_t **doc);

/* Append ms as a BSON date, or null when ms is 0. */
void ts_mg_append_time(bson_t *b, const char *key, int64_t ms);

/* Append a jansson value as BSON (objects, arrays, scalars). */
void ts_mg_append_json(bson_t *b, const char *key, json_t *v);

/* A BSON value as jansson: ObjectIds as hex, dates as ISO strings. */
json_t *ts_mg_json(const bson_iter_t *it);

/* Field of doc as jansson (null when missing). */
json_t *ts_mg_get_json(const bson_t *doc, const char *key);

/* Field as an ISO date string or null. */
json_t *ts_mg_get_time_json(const bson_t *doc, const char *key);

/* Field as ms: dates, ints and doubles accepted; 0 when missing/null. */
int64_t ts_mg_get_time(const bson_t *doc, const char *key);

/* Field as a string (borrowed from doc), NULL when not a string. */
const char *ts_mg_get_str(const bson_t *doc, const char *key);

/* Field as an int64 (int32/int64/double/bool), dflt when absent. */
int64_t ts_mg_get_int(const bson_t *doc, const char *key, int64_t dflt);

/* Field as a double, dflt when absent. */
double ts_mg_get_double(const bson_t *doc, const char *key, double dflt);

/* Field holding an ObjectId, as hex into out; 0 ok, -1 absent/other. */
int ts_mg_get_oid_hex(const bson_t *doc, const char *key, ts_oid_t out);

/* A strings array field as a jansson array (empty when absent). */
json_t *ts_mg_get_str_array(const bson_t *doc, const char *key);

/* {_id, email, username, status} of users by hex id, as an object keyed
 * by hex id; ids is a jansson array of hex strings. */
ts_rc_e ts_mg_people(ts_mongo_t *m, json_t *ids, json_t **out);

/* Append the job documents (final _ids decided here) for jobs[] to the
 * BSON array arr, as stored in "jobs" and in an owner's pendingJobs. */
void ts_mg_jobs_array(bson_t *arr, const ts_job_new_t *jobs, size_t njobs,
    int64_t now);

/* Move the jobs in arr (from ts_mg_jobs_array, or read back from the
 * owner) from the owner document's pendingJobs into "jobs": insert each
 * (a duplicate _id means it is there already), then $pullAll them.  A
 * failure leaves them for the sweep and is not an error of the write. */
void ts_mg_outbox_flush(ts_mongo_t *m, mongoc_collection_t *owner,
    const bson_oid_t *owner_id, const bson_t *arr);

/* ts_mg_outbox_flush for any outbox: field of the owner into to. */
void ts_mg_outbox_flush_to(ts_mongo_t *m, mongoc_collection_t *owner,
    const bson_oid_t *owner_id, const char *field, mongoc_collection_t *to,
    const bson_t *arr);

/* Flush every non-empty outbox field of collection c into to (one_id:
 * only that document's), as the sweep does. */
void ts_mg_sweep_outbox(ts_mongo_t *m, mongoc_collection_t *c,
    const char *field, mongoc_collection_t *to, const bson_oid_t *one_id);

/* Re-deliver outboxes left behind by crashed writers, repair half-done
 * promotions and back-fill lookup keys; at most every 2 s per process
 * unless force. */
void ts_mg_sweep(ts_mongo_t *m, int force);

/* Update one document; *matched gets the matched count. */
ts_rc_e ts_mg_update(ts_mongo_t *m, mongoc_collection_t *c,
    const bson_t *filter, const bson_t *update, int upsert, int64_t *matched);

/* ts_store_mongo_users.c */
/* Add usernameLower/emailLower to users that lack them. */
ts_rc_e ts_mg_backfill_keys(ts_mongo_t *m);
ts_rc_e ts_mg_user_signup(ts_store_t *s, ts_user_t *u,
    const ts_job_new_t *job, const char **which);
ts_rc_e ts_mg_user_by_id(ts_store_t *s, const char *id, ts_user_t *out);
ts_rc_e ts_mg_user_by_email(ts_store_t *s, const char *email,
    ts_user_t *out);
ts_rc_e ts_mg_user_by_username(ts_store_t *s, const char *name,
    ts_user_t *out);
ts_rc_e ts_mg_user_list(ts_store_t *s, json_t **out);
ts_rc_e ts_mg_user_count_role(ts_store_t *s, ts_role_e role,
    int64_t *count);
ts_rc_e ts_mg_user_set_status(ts_store_t *s, const char *id,
    ts_presence_e status, int64_t last_seen, int chosen);
ts_rc_e ts_mg_user_update(ts_store_t *s, const char *id, ts_role_e role,
    json_t *skills);
/* The one user matching filter (its own fields: no outbox, no stats). */
ts_rc_e ts_mg_user_find(ts_mongo_t *m, const bson_t *filter, ts_user_t *out);
ts_rc_e ts_mg_token_revoke(ts_store_t *s, const char *sig, int64_t exp);
ts_rc_e ts_mg_token_revoked(ts_store_t *s, const char *sig);
ts_rc_e ts_mg_login_get(ts_store_t *s, const char *ident,
    ts_login_attempts_t *out);
ts_rc_e ts_mg_login_attempt(ts_store_t *s, const char *key, int64_t now_ms,
    int64_t window_ms, int max_failures, int64_t lock_ms,
    ts_login_attempts_t *out, int *allowed);
ts_rc_e ts_mg_login_clear(ts_store_t *s, const char *ident);

/* ts_store_mongo_accounts.c */
ts_rc_e ts_mg_user_set_password(ts_store_t *s, const char *id,
    const char *old_hash, const char *reset_hash, const char *new_hash,
    int64_t now, const ts_job_new_t *job, int64_t *epoch);
ts_rc_e ts_mg_user_reset_issue(ts_store_t *s, const char *id,
    const char *token_hash, int64_t expires_at, int64_t now,
    const ts_job_new_t *job);
ts_rc_e ts_mg_user_by_reset(ts_store_t *s, const char *token_hash,
    int64_t now, ts_user_t *out);

/* ts_store_mongo_tickets.c */
/* Flush the outbox a write just filled (arr: its job documents). */
void ts_flush(ts_mongo_t *m, mongoc_collection_t *c, const char *owner_hex,
    bson_t *arr);
/* Append {$push: {pendingJobs: {$each: arr}}} to an update. */
void ts_push_jobs(bson_t *upd, const bson_t *arr);
/* Add the hex ids of a document's people fields to ids. */
void ts_collect(json_t *ids, const bson_t *doc, const char *key);
ts_rc_e ts_mg_ticket_create(ts_store_t *s, const char *id, const char *title,
    const char *description, const char *created_by, int64_t now,
    const ts_job_new_t *jobs, size_t njobs);
ts_rc_e ts_mg_ticket_get(ts_store_t *s, const char *id, int with_comments,
    json_t **doc, ts_ticket_keys_t *keys);
ts_rc_e ts_mg_ticket_list(ts_store_t *s, const ts_ticket_query_t *q,
    ts_jw_t *out, int64_t *total);
ts_rc_e ts_mg_ticket_set_status(ts_store_t *s, const char *id,
    const char *status, const char *actor, int64_t now,
    int64_t unmodified_since,
    const ts_job_new_t *jobs, size_t njobs);
ts_rc_e ts_mg_comment_add(ts_store_t *s, const char *ticket_id,
    const ts_comment_new_t *c, int64_t now, int64_t max_comments,
    const ts_job_new_t *jobs, size_t njobs);
ts_rc_e ts_mg_comment_list(ts_store_t *s, const char *ticket_id,
    int with_internal, ts_jw_t *out);
ts_rc_e ts_mg_user_list_role(ts_store_t *s, ts_role_e role, json_t **out);

/* ts_store_mongo_modreqs.c */
ts_rc_e ts_mg_modreq_create(ts_store_t *s, const char *id,
    const char *applicant, const char *username, const char *email,
    json_t *skills, int64_t now, const ts_job_new_t *jobs, size_t njobs);
ts_rc_e ts_mg_modreq_get(ts_store_t *s, const char *id, json_t **doc);
ts_rc_e ts_mg_modreq_latest(ts_store_t *s, const char *applicant,
    json_t **doc);
ts_rc_e ts_mg_modreq_last_rejection(ts_store_t *s, const char *applicant,
    int64_t *rejected_at);
ts_rc_e ts_mg_modreq_pending(ts_store_t *s, json_t **out);
ts_rc_e ts_mg_modreq_decide(ts_store_t *s, const char *id, int accept,
    const char *reviewer, int64_t now, const ts_job_new_t *jobs,
    size_t njobs);
/* Promote the applicant of an accepted request not yet applied. */
ts_rc_e ts_mg_modreq_promote(ts_mongo_t *m, const bson_t *req, int64_t now);

/* ts_store_mongo_history.c */
/*
 * Append history entries (final _ids chosen here) of ticket_id at now to
 * the BSON array arr, after what it holds.  The write that makes the
 * change pushes arr into the ticket's "pendingHistory" in its own update
 * (ts_mg_push_outboxes), then calls ts_mg_history_flush: one line wires
 * a new action.
 */
void ts_mg_history_array(bson_t *arr, const char *ticket_id,
    const ts_hist_t *h, size_t n, int64_t now);
/* Append one $push of the non-empty outboxes: pendingJobs (jobs, may be
 * NULL) and pendingHistory (hist, may be NULL). */
void ts_mg_push_outboxes(bson_t *upd, const bson_t *jobs, const bson_t *hist);
/* Move the entries of arr from the ticket's outbox into "tickethistory"
 * (a failure leaves them for the sweep). */
void ts_mg_history_flush(ts_mongo_t *m, const char *ticket_id,
    const bson_t *arr);
ts_rc_e ts_mg_ticket_history(ts_store_t *s, const char *id,
    json_t **history);
ts_rc_e ts_mg_canned_create(ts_store_t *s, const char *id, const char *owner,
    const char *title, const char *body, int64_t now);
ts_rc_e ts_mg_canned_list(ts_store_t *s, json_t **out);
ts_rc_e ts_mg_canned_get(ts_store_t *s, const char *id, json_t **doc,
    ts_oid_t owner);
ts_rc_e ts_mg_canned_update(ts_store_t *s, const char *id, const char *title,
    const char *body, int64_t now);
ts_rc_e ts_mg_canned_delete(ts_store_t *s, const char *id);

/* ts_store_mongo_analytics.c */
ts_rc_e ts_mg_analytics(ts_store_t *s, int64_t now, json_t **out);

/* ts_store_mongo_jobs.c */
ts_rc_e ts_mg_job_claim(ts_store_t *s, int64_t now, int64_t lease_ms,
    int max, int max_triage, ts_job_t **jobs, size_t *n);
ts_rc_e ts_mg_job_done(ts_store_t *s, const char *id, int attempts,
    int64_t now);
ts_rc_e ts_mg_job_extend(ts_store_t *s, const ts_job_t *jobs, size_t n,
    int64_t lease_until);
ts_rc_e ts_mg_job_fail(ts_store_t *s, const char *id, int attempts,
    const char *error, int dead, int64_t run_after, int64_t now);
ts_rc_e ts_mg_job_list(ts_store_t *s, const char *state, int64_t limit,
    json_t **out);
ts_rc_e ts_mg_job_retry(ts_store_t *s, const char *id, int64_t now);
ts_rc_e ts_mg_job_purge(ts_store_t *s, int64_t done_before,
    int64_t dead_before, int limit, int64_t *removed);
ts_rc_e ts_mg_job_counts(ts_store_t *s, ts_job_counts_t *out);
ts_rc_e ts_mg_ticket_text(ts_store_t *s, const char *id, char **title,
    char **description, int *triaged, int64_t *created_at);
ts_rc_e ts_mg_ticket_set_triage(ts_store_t *s, const char *id,
    json_t *triage, json_t *meta, const char *provider, int fallback,
    const ts_sla_due_t *due, int64_t now, const ts_job_new_t *jobs,
    size_t njobs);

/* ts_store_mongo_sla.c: the SLA (ts_sla.h) */
/* A ticket document's SLA dates and state. */
void ts_mg_sla_state(const bson_t *doc, ts_sla_state_t *st);
/* Its "sla" value for staff at now (ts_sla_write). */
json_t *ts_mg_sla_json(const bson_t *doc, int64_t now);
/* The list filter for "breached" or "due_soon" at now (caller destroys). */
bson_t *ts_mg_sla_filter(const char *which, int64_t now);
/* $set the four dates of due into set (null when 0). */
void ts_mg_sla_append_dates(bson_t *set, const ts_sla_due_t *due);
ts_rc_e ts_mg_ticket_set_priority(ts_store_t *s, const char *id,
    const char *priority, const char *actor, const ts_sla_due_t *due,
    int64_t now, const ts_job_new_t *jobs, size_t njobs);
ts_rc_e ts_mg_ticket_sla_breach(ts_store_t *s, const char *id,
    const char *target, int64_t due, int64_t now);
/* Mark a breach that a target met late (or a completion past a date)
 * shows, once, with its "sla" history entry in the same update; TS_OK
 * when there is none. */
ts_rc_e ts_mg_sla_settle(ts_mongo_t *m, const char *id, int64_t now);
/* Completed tickets with SLA dates by priority (analytics "sla"). */
ts_rc_e ts_mg_sla_analytics(ts_mongo_t *m, json_t **out);
ts_rc_e ts_mg_ticket_assign(ts_store_t *s, const char *id,
    json_t *exclude, const ts_assign_cfg_t *cfg,
    ts_assigned_job_fn assigned_job, int64_t now, json_t **result);

/* ts_store_mongo_assignee.c: assignment by hand and hand-back. */
ts_rc_e ts_mg_ticket_set_assignee(ts_store_t *s, const char *id,
    const char *from, const char *to, const char *by, json_t *assignment,
    int64_t now, const ts_job_new_t *jobs, size_t njobs);
ts_rc_e ts_mg_user_handback(ts_store_t *s, const char *user_id, int demote,
    json_t *skills, int todo_only, const char *actor, json_t *why,
    ts_handback_job_fn job_fn, int64_t now, json_t **handed);
ts_rc_e ts_mg_absent_assignees(ts_store_t *s, int64_t before,
    json_t **users);
ts_rc_e ts_mg_ticket_stats(ts_store_t *s, const char *id,
    const char *moderator_id, double hours, int *counted);
/* Finish a ticket's stats left half-done (statsPending set). */
ts_rc_e ts_mg_stats_apply(ts_mongo_t *m, const bson_oid_t *ticket,
    const bson_t *pending);

#endif /* TS_STORE_MONGO_H */

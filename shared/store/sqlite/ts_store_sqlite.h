/*
 * ts_store_sqlite: what the SQLite backend's files share -- the handle,
 * the statement cache and the small helpers.  Internal to shared/.
 *
 * ts_store_sqlite.c owns the connection, the statement cache, transactions,
 * job inserts and the ops table; ts_store_sqlite_schema.c the schema and
 * its migrations; ts_store_sqlite_users.c users, tokens and login
 * attempts; ts_store_sqlite_tickets.c owns tickets and comments;
 * ts_store_sqlite_modreqs.c moderator requests; ts_store_sqlite_analytics.c
 * analytics; ts_store_sqlite_jobs.c claims and finishes jobs and makes
 * background work's writes (triage, assignment, stats);
 * ts_store_sqlite_history.c tickets' history and canned responses.
 */

#ifndef TS_STORE_SQLITE_H
#define TS_STORE_SQLITE_H

#include <sqlite3.h>

#include "ts_store_impl.h"

typedef enum {
    TS_SQL_BEGIN = 0,
    TS_SQL_BEGIN_READ,
    TS_SQL_COMMIT,
    TS_SQL_ROLLBACK,
    TS_SQL_PING,
    TS_SQL_USER_ANY,
    TS_SQL_USER_EMAIL_TAKEN,
    TS_SQL_USER_INSERT,
    TS_SQL_USER_BY_ID,
    TS_SQL_USER_BY_EMAIL,
    TS_SQL_USER_BY_USERNAME,
    TS_SQL_USER_LIST,
    TS_SQL_USER_COUNT_ROLE,
    TS_SQL_USER_SET_STATUS,
    TS_SQL_USER_UPDATE_ROLE,
    TS_SQL_USER_UPDATE_ROLE_SKILLS,
    TS_SQL_USER_SET_PASSWORD,
    TS_SQL_USER_RESET_ISSUE,
    TS_SQL_USER_BY_RESET,
    TS_SQL_TOKEN_REVOKE,
    TS_SQL_TOKEN_REVOKED,
    TS_SQL_LOGIN_GET,
    TS_SQL_LOGIN_ATTEMPT,
    TS_SQL_LOGIN_CLEAR,
    TS_SQL_JOB_INSERT,
    TS_SQL_JOB_COUNTS,
    TS_SQL_PURGE_TOKENS,
    TS_SQL_PURGE_LOGINS,
    TS_SQL_COUNT
} ts_sql_e;

/*
 * Statement slots in q->more[]: [0, TS_SQLITE_TICKET_STMTS) is shared by
 * ts_store_sqlite_tickets.c's ts_tsql_e (from 0),
 * ts_store_sqlite_modreqs.c's ts_msql_e (from TS_SQLITE_MODREQ_FIRST) and
 * ts_store_sqlite_analytics.c's ts_asql_e (from TS_SQLITE_ANALYTICS_FIRST);
 * ts_store_sqlite_jobs.c's ts_jsql_e uses the TS_SQLITE_JOB_STMTS after
 * them.  Each enum is numbered from its range's start and each file
 * _Static_asserts that it ends within it (before the next range's start).
 */
#define TS_SQLITE_MODREQ_FIRST     60
#define TS_SQLITE_ANALYTICS_FIRST  72
#define TS_SQLITE_TICKET_STMTS  80
#define TS_SQLITE_JOB_STMTS     24
/* ts_store_sqlite_history.c's ts_hsql_e: history and canned responses */
#define TS_SQLITE_HISTORY_FIRST  (TS_SQLITE_TICKET_STMTS + TS_SQLITE_JOB_STMTS)
#define TS_SQLITE_HISTORY_STMTS  12
#define TS_SQLITE_MORE_STMTS \
    (TS_SQLITE_HISTORY_FIRST + TS_SQLITE_HISTORY_STMTS)

typedef struct {
    struct ts_store_s   base;
    sqlite3            *db;
    sqlite3_stmt       *stmt[TS_SQL_COUNT];
    sqlite3_stmt       *more[TS_SQLITE_MORE_STMTS];
    int                 writing;     /* holds the process's writer turn */
} ts_sqlite_t;

/* The statement in *slot (prepared from sql on first use; sql may be NULL
 * once *slot holds one), reset and with its bindings cleared; NULL on
 * error (recorded). */
sqlite3_stmt *ts_sqlite_cached(ts_sqlite_t *q, sqlite3_stmt **slot,
    const char *sql);

/* The cached statement of ts_sql_text[which] (ts_store_sqlite.c), reset and
 * ready to bind; NULL on error (recorded). */
sqlite3_stmt *ts_sqlite_stmt(ts_sqlite_t *q, ts_sql_e which);

/* Record sqlite's current error as the store error; returns TS_ERR. */
ts_rc_e ts_sqlite_fail(ts_sqlite_t *q, const char *what);

/* Step a statement without result rows; TS_CONFLICT on a constraint. */
ts_rc_e ts_sqlite_done(ts_sqlite_t *q, sqlite3_stmt *st);

/* Step a one-value SELECT into *out; TS_NOT_FOUND when no row. */
ts_rc_e ts_sqlite_scalar(ts_sqlite_t *q, sqlite3_stmt *st, int64_t *out);

/* Turns the current row of a statement into a JSON value (NULL: skip). */
typedef json_t *(*ts_sqlite_row_pt)(sqlite3_stmt *st);

/* Step a bound statement to the end, collecting row(st) of every row into
 * a new array in *out; what names the query in an error. */
ts_rc_e ts_sqlite_rows(ts_sqlite_t *q, sqlite3_stmt *st, ts_sqlite_row_pt row,
    json_t **out, const char *what);

/* Finish an UPDATE of one row: TS_NOT_FOUND when nothing matched. */
ts_rc_e ts_sqlite_update_one(ts_sqlite_t *q, sqlite3_stmt *st);

/* BEGIN IMMEDIATE / COMMIT (rolls back on failure) / ROLLBACK -> rc. */
ts_rc_e ts_sqlite_begin(ts_sqlite_t *q);
ts_rc_e ts_sqlite_commit(ts_sqlite_t *q);
ts_rc_e ts_sqlite_rollback(ts_sqlite_t *q, ts_rc_e rc);

/* Insert one job (inside the caller's transaction, if any); id filled. */
ts_rc_e ts_sqlite_insert_job(ts_sqlite_t *q, const ts_job_new_t *job,
    ts_oid_t id, int64_t now);

void ts_sqlite_bind_text(sqlite3_stmt *st, int i, const char *s);
void ts_sqlite_bind_time(sqlite3_stmt *st, int i, int64_t ms);
int ts_sqlite_bind_json(sqlite3_stmt *st, int i, json_t *v);
char *ts_sqlite_col_strdup(sqlite3_stmt *st, int i);
json_t *ts_sqlite_col_json_array(sqlite3_stmt *st, int i);
/* A text column as a JSON string, or null. */
json_t *ts_sqlite_col_json_text(sqlite3_stmt *st, int i);
/* A ms column as an ISO-8601 JSON string, or null. */
json_t *ts_sqlite_col_json_time(sqlite3_stmt *st, int i);

/* ts_store_sqlite_schema.c: bring the file's schema up to this build's
 * (PRAGMA user_version), in one BEGIN IMMEDIATE transaction. */
ts_rc_e ts_sqlite_migrate(ts_sqlite_t *q);

/* ts_store_sqlite_users.c: the ops of ts_store_impl.h it provides. */
ts_rc_e ts_sqlite_user_signup(ts_store_t *s, ts_user_t *u,
    const ts_job_new_t *job, const char **which);
ts_rc_e ts_sqlite_user_by_id(ts_store_t *s, const char *id, ts_user_t *out);
ts_rc_e ts_sqlite_user_by_email(ts_store_t *s, const char *email,
    ts_user_t *out);
ts_rc_e ts_sqlite_user_by_username(ts_store_t *s, const char *name,
    ts_user_t *out);
ts_rc_e ts_sqlite_user_list(ts_store_t *s, json_t **out);
ts_rc_e ts_sqlite_user_count_role(ts_store_t *s, ts_role_e role,
    int64_t *count);
ts_rc_e ts_sqlite_user_set_status(ts_store_t *s, const char *id,
    ts_presence_e status, int64_t last_seen, int chosen);
ts_rc_e ts_sqlite_user_update(ts_store_t *s, const char *id, ts_role_e role,
    json_t *skills);
ts_rc_e ts_sqlite_user_set_password(ts_store_t *s, const char *id,
    const char *old_hash, const char *reset_hash, const char *new_hash,
    int64_t now, const ts_job_new_t *job, int64_t *epoch);
ts_rc_e ts_sqlite_user_reset_issue(ts_store_t *s, const char *id,
    const char *token_hash, int64_t expires_at, int64_t now,
    const ts_job_new_t *job);
ts_rc_e ts_sqlite_user_by_reset(ts_store_t *s, const char *token_hash,
    int64_t now, ts_user_t *out);
ts_rc_e ts_sqlite_token_revoke(ts_store_t *s, const char *sig, int64_t exp);
ts_rc_e ts_sqlite_token_revoked(ts_store_t *s, const char *sig);
ts_rc_e ts_sqlite_login_get(ts_store_t *s, const char *ident,
    ts_login_attempts_t *out);
ts_rc_e ts_sqlite_login_attempt(ts_store_t *s, const char *ident,
    int64_t now_ms, int64_t window_ms, int max_failures, int64_t lock_ms,
    ts_login_attempts_t *out, int *allowed);
ts_rc_e ts_sqlite_login_clear(ts_store_t *s, const char *ident);
ts_rc_e ts_sqlite_purge_expired(ts_store_t *s, int64_t now_ms,
    int64_t *removed);

/* ts_store_sqlite_jobs.c: the job runner's and background work's ops. */
ts_rc_e ts_sqlite_job_claim(ts_store_t *s, int64_t now, int64_t lease_ms,
    int max, int max_triage, ts_job_t **jobs, size_t *n);
ts_rc_e ts_sqlite_jobs_done(ts_store_t *s, const ts_job_t *jobs, size_t n,
    int64_t now, ts_rc_e *rcs);
ts_rc_e ts_sqlite_job_done(ts_store_t *s, const char *id, int attempts,
    int64_t now);
ts_rc_e ts_sqlite_job_extend(ts_store_t *s, const ts_job_t *jobs, size_t n,
    int64_t lease_until);
ts_rc_e ts_sqlite_job_fail(ts_store_t *s, const char *id, int attempts,
    const char *error, int dead, int64_t run_after, int64_t now);
ts_rc_e ts_sqlite_job_list(ts_store_t *s, const char *state, int64_t limit,
    json_t **out);
ts_rc_e ts_sqlite_job_retry(ts_store_t *s, const char *id, int64_t now);
ts_rc_e ts_sqlite_job_purge(ts_store_t *s, int64_t done_before,
    int64_t dead_before, int limit, int64_t *removed);
ts_rc_e ts_sqlite_ticket_text(ts_store_t *s, const char *id, char **title,
    char **description, int *triaged, int64_t *created_at);
ts_rc_e ts_sqlite_ticket_set_triage(ts_store_t *s, const char *id,
    json_t *triage, json_t *meta, const char *provider, int fallback,
    const ts_sla_due_t *due, int64_t now, const ts_job_new_t *jobs,
    size_t njobs);

/* ts_store_sqlite_sla.c: the SLA's writes (ts_sla.h). */
ts_rc_e ts_sqlite_ticket_set_priority(ts_store_t *s, const char *id,
    const char *priority, const char *actor, const ts_sla_due_t *due,
    int64_t now, const ts_job_new_t *jobs, size_t njobs);
ts_rc_e ts_sqlite_ticket_sla_breach(ts_store_t *s, const char *id,
    const char *target, int64_t due, int64_t now);
/* Inside a comment's write transaction: a first response stamped at now
 * past firstResponseDue marks the breach (with its history entry);
 * TS_OK whether or not it did. */
ts_rc_e ts_sqlite_sla_answered(ts_sqlite_t *q, const char *ticket_id,
    int64_t now);
/* Inside a completion's write transaction: a date missed (the first
 * response's, else the resolution's) marks the breach, with its entry. */
ts_rc_e ts_sqlite_sla_completed(ts_sqlite_t *q, const char *id,
    int64_t now);
/* Completed tickets with SLA dates by priority, into p->sla. */
ts_rc_e ts_sqlite_sla_analytics(ts_sqlite_t *q, json_t **out);
ts_rc_e ts_sqlite_ticket_assign(ts_store_t *s, const char *id,
    json_t *exclude, const ts_assign_cfg_t *cfg,
    ts_assigned_job_fn assigned_job, int64_t now, json_t **result);
ts_rc_e ts_sqlite_ticket_stats(ts_store_t *s, const char *id,
    const char *moderator_id, double hours, int *counted);

/* ts_store_sqlite_assignee.c: assignment by hand and hand-back. */
ts_rc_e ts_sqlite_ticket_set_assignee(ts_store_t *s, const char *id,
    const char *from, const char *to, const char *by, json_t *assignment,
    int64_t now, const ts_job_new_t *jobs, size_t njobs);
ts_rc_e ts_sqlite_user_handback(ts_store_t *s, const char *user_id,
    int demote, json_t *skills, int todo_only, const char *actor,
    json_t *why, ts_handback_job_fn job_fn, int64_t now, json_t **handed);
ts_rc_e ts_sqlite_absent_assignees(ts_store_t *s, int64_t before,
    json_t **users);

/* ts_store_sqlite_tickets.c: the helpers its siblings share, then the ops
 * of ts_store_impl.h it provides. */
/* {_id, email, username, status} from four columns from i, or null. */
json_t *ts_col_person(sqlite3_stmt *st, int i);
/* Commit a transaction whose last write returned rc (rolled back if not
 * TS_OK), then its jobs. */
ts_rc_e ts_finish(ts_sqlite_t *q, ts_rc_e rc, const ts_job_new_t *jobs,
    size_t njobs, int64_t now);
ts_rc_e ts_sqlite_ticket_create(ts_store_t *s, const char *id,
    const char *title, const char *description, const char *created_by,
    int64_t now, const ts_job_new_t *jobs, size_t njobs);
ts_rc_e ts_sqlite_ticket_get(ts_store_t *s, const char *id,
    int with_comments, json_t **doc, ts_ticket_keys_t *keys);
ts_rc_e ts_sqlite_ticket_list(ts_store_t *s, const ts_ticket_query_t *tq,
    ts_jw_t *out, int64_t *total);
ts_rc_e ts_sqlite_ticket_set_status(ts_store_t *s, const char *id,
    const char *status, const char *actor, int64_t now,
    int64_t unmodified_since,
    const ts_job_new_t *jobs, size_t njobs);
ts_rc_e ts_sqlite_comment_add(ts_store_t *s, const char *ticket_id,
    const ts_comment_new_t *c, int64_t now, int64_t max_comments,
    const ts_job_new_t *jobs, size_t njobs);
ts_rc_e ts_sqlite_comment_list(ts_store_t *s, const char *ticket_id,
    int with_internal, ts_jw_t *out);
ts_rc_e ts_sqlite_user_list_role(ts_store_t *s, ts_role_e role,
    json_t **out);

/* ts_store_sqlite_modreqs.c */
ts_rc_e ts_sqlite_modreq_create(ts_store_t *s, const char *id,
    const char *applicant, const char *username, const char *email,
    json_t *skills, int64_t now, const ts_job_new_t *jobs, size_t njobs);
ts_rc_e ts_sqlite_modreq_get(ts_store_t *s, const char *id, json_t **doc);
ts_rc_e ts_sqlite_modreq_latest(ts_store_t *s, const char *applicant,
    json_t **doc);
ts_rc_e ts_sqlite_modreq_last_rejection(ts_store_t *s,
    const char *applicant, int64_t *rejected_at);
ts_rc_e ts_sqlite_modreq_pending(ts_store_t *s, json_t **out);
ts_rc_e ts_sqlite_modreq_decide(ts_store_t *s, const char *id, int accept,
    const char *reviewer, int64_t now, const ts_job_new_t *jobs,
    size_t njobs);

/* ts_store_sqlite_history.c */
/*
 * Add n history entries of ticket_id at now, INSIDE the caller's write
 * transaction (after its change, before ts_finish/commit): the entry
 * commits or rolls back with the change.  A failure is the write's.
 */
ts_rc_e ts_sqlite_history_add(ts_sqlite_t *q, const char *ticket_id,
    const ts_hist_t *h, size_t n, int64_t now);
ts_rc_e ts_sqlite_ticket_history(ts_store_t *s, const char *id,
    json_t **history);
ts_rc_e ts_sqlite_canned_create(ts_store_t *s, const char *id,
    const char *owner, const char *title, const char *body, int64_t now);
ts_rc_e ts_sqlite_canned_list(ts_store_t *s, json_t **out);
ts_rc_e ts_sqlite_canned_get(ts_store_t *s, const char *id, json_t **doc,
    ts_oid_t owner);
ts_rc_e ts_sqlite_canned_update(ts_store_t *s, const char *id,
    const char *title, const char *body, int64_t now);
ts_rc_e ts_sqlite_canned_delete(ts_store_t *s, const char *id);

/* ts_store_sqlite_analytics.c */
ts_rc_e ts_sqlite_analytics(ts_store_t *s, int64_t now, json_t **out);

#endif /* TS_STORE_SQLITE_H */

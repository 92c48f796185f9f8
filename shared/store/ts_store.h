/*
 * ts_store: the one storage interface the module and the daemon call.
 *
 * A store handle is one connection and belongs to one thread at a time
 * (nginx opens one per thread-pool thread, ticketd one per worker thread).
 * Operations are domain verbs, not queries, so a MongoDB backend can
 * implement the same table of functions without changing callers.
 *
 * Every operation returns a ts_rc_e; TS_ERR carries a message for logs
 * (ts_store_errmsg), never shown to clients.
 */

#ifndef TS_STORE_H
#define TS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "ts_assign.h"
#include "ts_auth.h"
#include "ts_jobs.h"
#include "ts_json_writer.h"
#include "ts_model.h"
#include "ts_sla.h"

typedef enum {
    TS_OK = 0,
    TS_NOT_FOUND,      /* no such document */
    TS_CONFLICT,       /* a unique key is taken */
    TS_ERR,            /* backend failure: see ts_store_errmsg() */
    TS_STALE           /* a precondition failed: the ticket changed after
                          the caller's unmodified_since (nothing written) */
} ts_rc_e;

typedef struct ts_store_s ts_store_t;

/* ts_job_new_t, a job to store, is the domain's (ts_jobs.h). */

/* Jobs by state, in all and by kind (ts_job_kind_index: the second index
 * is the state, in the order of the fields). */
typedef struct {
    int64_t  pending, running, done, dead;
    int64_t  by_kind[TS_JOB_KINDS][4];
} ts_job_counts_t;

/* Login-attempt bookkeeping for one lockout key (ts_svc_auth.c: an
 * account, or an identifier that names none). */
typedef struct {
    int      failures;
    int64_t  window_start;     /* ms */
    int64_t  locked_until;     /* ms, 0 = not locked */
} ts_login_attempts_t;

/*
 * Open a store from a URI: "sqlite:/path/to/file.db" (or a bare path), or
 * "mongodb://host[:port]/database?options" (database "tickets" if none).
 * Runs pending migrations.  On failure returns NULL and writes a reason
 * into err (errlen bytes).
 */
ts_store_t *ts_store_open(const char *uri, char *err, size_t errlen);

/*
 * Check a store URI's syntax without opening anything (for configuration
 * checks): 0 when ts_store_open would try it, else -1 and the reason in
 * err.  A MongoDB URI is parsed by libmongoc; err is then its message.
 */
int ts_store_uri_check(const char *uri, char *err, size_t errlen);

/* Close the connection and free the handle. */
void ts_store_close(ts_store_t *s);

/* Last backend error message, for logs only. */
const char *ts_store_errmsg(ts_store_t *s);

/* Name of the backend: "sqlite" or "mongodb". */
const char *ts_store_backend(ts_store_t *s);

/*
 * Group the reads of one request into one snapshot (SQLite: one read
 * transaction, so one round of file locks instead of one per query).
 * Only for requests that do not write; end it before the call returns.
 */
void ts_store_read_begin(ts_store_t *s);
void ts_store_read_end(ts_store_t *s);

/* If a read snapshot is open, start it again: what is read next is at
 * least as new as anything written before this call. */
void ts_store_read_renew(ts_store_t *s);

/* A cheap round trip to the backend. */
ts_rc_e ts_store_ping(ts_store_t *s);

/*
 * Put a Redis cache (redis://[:password@]host[:port][/db]; NULL or "" for
 * none) in front of this handle: list reads are cached, every write
 * invalidates what it changed (ts_store_cache.c).  Values carry MACs under
 * key (32 bytes, ts_wire_derive(secret, TS_WIRE_LABEL_CACHE)); one that
 * fails is a miss.  Never required: with Redis away every call goes to
 * the store.
 */
void ts_store_set_cache(ts_store_t *s, const char *redis_url,
    const unsigned char *key);

/* "disabled" without a cache, else "ok" or "unavailable" (a PING). */
const char *ts_store_cache_state(ts_store_t *s);

/* What a cached read found, for a process's metrics. */
typedef enum {
    TS_CACHE_HIT = 0,           /* a current value was served */
    TS_CACHE_MISS,              /* none (or a stale or forged one): the
                                   store answered */
    TS_CACHE_ERROR,             /* Redis unavailable: the store answered */
    TS_CACHE_RESULTS
} ts_cache_result_e;

/*
 * Count every cached read of every store of this process by calling
 * count(result) (NULL: stop counting).  count runs on whichever thread
 * reads, so it must be thread-safe (an atomic add).  Set it once before
 * any thread uses a store.
 */
void ts_store_cache_counter(void (*count)(ts_cache_result_e result));

/* --- users ------------------------------------------------------------ */

/*
 * Insert a new user and its welcome job atomically.  The first user ever
 * becomes admin (u->role is overwritten accordingly).  u->id, created_at
 * and updated_at are filled in.  Email/username taken: TS_CONFLICT and
 * *which = "email" or "username".
 */
ts_rc_e ts_store_user_signup(ts_store_t *s, ts_user_t *u,
    const ts_job_new_t *job, const char **which);

ts_rc_e ts_store_user_by_id(ts_store_t *s, const char *id, ts_user_t *out);
ts_rc_e ts_store_user_by_email(ts_store_t *s, const char *email,
    ts_user_t *out);

/* By email (case-insensitive) or, failing that, by username. */
ts_rc_e ts_store_user_by_login(ts_store_t *s, const char *identifier,
    ts_user_t *out);

/* All users, oldest first, as an array of public JSON objects. */
ts_rc_e ts_store_user_list(ts_store_t *s, json_t **out);

/* Count users holding a role. */
ts_rc_e ts_store_user_count_role(ts_store_t *s, ts_role_e role,
    int64_t *count);

/*
 * Set presence and lastSeen.  chosen: the user picked it (PATCH
 * /api/auth/status, login): dnd or offline is remembered as their choice,
 * online clears it; otherwise (sockets coming and going) the choice is
 * left as it is.
 */
ts_rc_e ts_store_user_set_status(ts_store_t *s, const char *id,
    ts_presence_e status, int64_t last_seen, int chosen);

/* Update role and/or skills (NULL skills = unchanged) by user id. */
ts_rc_e ts_store_user_update(ts_store_t *s, const char *id, ts_role_e role,
    json_t *skills);

/* --- passwords and reset tokens (ts_svc_accounts.c) --------------------- */

/*
 * Set a user's password hash, add one to their session epoch (every token
 * issued before ends: ts_session_load), drop any reset token they hold
 * and store job (NULL: none, e.g. the "password changed" notice), all in
 * one atomic write, and only while the conditions hold: old_hash (NULL =
 * any) still the stored hash, so two racing changes cannot both pass
 * their current-password check; reset_hash (NULL = none) still the user's
 * unexpired reset token (expiresAt > now), so of two racing confirms one
 * wins.  TS_NOT_FOUND when no such user or a condition failed (nothing
 * written).  *epoch (may be NULL) receives the new epoch.
 */
ts_rc_e ts_store_user_set_password(ts_store_t *s, const char *id,
    const char *old_hash, const char *reset_hash, const char *new_hash,
    int64_t now, const ts_job_new_t *job, int64_t *epoch);

/*
 * Give the user with this id one reset token -- token_hash (its hash by
 * ts_reset_token_new), valid until expires_at (ms) -- replacing any
 * earlier one (only the newest link works), and store job (the mail
 * carrying the token) with it, atomically.  TS_NOT_FOUND when no such user.
 */
ts_rc_e ts_store_user_reset_issue(ts_store_t *s, const char *id,
    const char *token_hash, int64_t expires_at, int64_t now,
    const ts_job_new_t *job);

/* The user holding the unexpired (expiresAt > now) reset token with this
 * hash; TS_NOT_FOUND when none (unknown, used, replaced or expired). */
ts_rc_e ts_store_user_by_reset(ts_store_t *s, const char *token_hash,
    int64_t now, ts_user_t *out);

/* --- tokens and login attempts ---------------------------------------- */

/* Revoke a token (by its signature) until exp (ms). Idempotent. */
ts_rc_e ts_store_token_revoke(ts_store_t *s, const char *sig, int64_t exp);

/* TS_OK when revoked, TS_NOT_FOUND when not. */
ts_rc_e ts_store_token_revoked(ts_store_t *s, const char *sig);

ts_rc_e ts_store_login_get(ts_store_t *s, const char *key,
    ts_login_attempts_t *out);

/*
 * Take one login attempt for key, before its password is checked, as one
 * atomic check-and-count: while the key is locked (locked_until > now_ms)
 * nothing is counted and *allowed is 0; otherwise the attempt is counted
 * as a failure in advance -- a window older than window_ms restarts at 1,
 * reaching max_failures locks the key for lock_ms -- and *allowed is 1.
 * Concurrent attempts are serialised, so at most max_failures of them
 * reach the password check before the lock.  *out gets the state after
 * the call.  A right password then clears the key (ts_store_login_clear).
 */
ts_rc_e ts_store_login_attempt(ts_store_t *s, const char *key,
    int64_t now_ms, int64_t window_ms, int max_failures, int64_t lock_ms,
    ts_login_attempts_t *out, int *allowed);

/* Forget a key's attempts (after a successful login). */
ts_rc_e ts_store_login_clear(ts_store_t *s, const char *key);

/* --- jobs ------------------------------------------------------------- */

/* Store a job; out_id (may be NULL) receives its id. */
ts_rc_e ts_store_job_insert(ts_store_t *s, const ts_job_new_t *job,
    ts_oid_t out_id);

ts_rc_e ts_store_job_counts(ts_store_t *s, ts_job_counts_t *out);

/* --- tickets and comments ----------------------------------------------- */

/* A list's scope is also its reader's: TS_SCOPE_CREATOR pages are a
 * plain user's and leave out the staff-only triage notes (helpfulNotes)
 * and provenance. */
typedef enum {
    TS_SCOPE_ALL = 0,          /* admin: every ticket */
    TS_SCOPE_CREATOR,          /* user: created by user_id */
    TS_SCOPE_MODERATOR         /* created by or assigned to user_id */
} ts_scope_e;

typedef struct {
    ts_scope_e   scope;
    const char  *user_id;      /* for the two narrow scopes */
    const char  *status;       /* NULL = any */
    const char  *priority;     /* NULL = any */
    const char  *search;       /* NULL = none; a literal substring */
    const char  *sla;          /* NULL, "breached" or "due_soon" at now
                                  (ts_sla_breached, ts_sla_due_soon) */
    int64_t      now;          /* ms: the time breached and dueSoon of
                                  the staff's "sla" object are judged at */
    int64_t      limit;
    int64_t      offset;
} ts_ticket_query_t;

/* The fields permission checks need, read with the document. */
typedef struct {
    ts_oid_t   created_by;
    ts_oid_t   assigned_to;    /* "" when unassigned */
    char       status[16];
    int64_t    created_at;     /* ms */
    int64_t    updated_at;     /* ms */
    int64_t    comments;       /* how many public comments it has
                                  (internal notes not counted) */
    char       priority[8];    /* "" before triage */
    ts_sla_state_t  sla;       /* its SLA dates (all 0 before triage) */
} ts_ticket_keys_t;

/* Insert a ticket (id chosen by the caller) and its jobs atomically. */
ts_rc_e ts_store_ticket_create(ts_store_t *s, const char *id,
    const char *title, const char *description, const char *created_by,
    int64_t now, const ts_job_new_t *jobs, size_t njobs);

/*
 * One ticket: keys (may be NULL) and, when doc is not NULL, its public
 * JSON with people populated and, with with_comments, its comments (all
 * of them, internal notes included: the caller filters for its reader).
 */
ts_rc_e ts_store_ticket_get(ts_store_t *s, const char *id, int with_comments,
    json_t **doc, ts_ticket_keys_t *keys);

/* A page of tickets appended to out as a JSON array (public form, people
 * populated, newest update first) and the total matching the query.
 * Staff scopes' tickets carry "sla" (ts_sla_write at q->now); a creator's
 * never do. */
ts_rc_e ts_store_ticket_list(ts_store_t *s, const ts_ticket_query_t *q,
    ts_jw_t *tickets, int64_t *total);

/*
 * Set the status (and completedAt when "Completed") with jobs, atomically;
 * actor (the user who changed it) is the history entry's when the status
 * changes.  unmodified_since (ms, 0: none) is a compare-and-set: a ticket
 * whose updatedAt is later is left alone (TS_STALE, no job stored, no
 * history), checked in the same write (transaction, conditional update).
 * Completing a ticket past a due date it missed marks the SLA breached
 * (slaBreachedAt = that date, with an "sla" history entry; SQLite: in the
 * same write, MongoDB: a conditional write right after).
 */
ts_rc_e ts_store_ticket_set_status(ts_store_t *s, const char *id,
    const char *status, const char *actor, int64_t now,
    int64_t unmodified_since, const ts_job_new_t *jobs, size_t njobs);

/* A comment to add (ts_store_comment_add). */
typedef struct {
    const char  *id;               /* chosen by the caller */
    const char  *author;
    const char  *text;
    const char  *role;             /* the author's role when written */
    int          internal;         /* a staff-only note */
    int          first_response;   /* stamps firstResponseAt if unset */
    int64_t      unmodified_since; /* ms, 0: none (see set_status) */
} ts_comment_new_t;

/*
 * Add a comment, touch the ticket (updatedAt; an internal note leaves it
 * alone, so nothing a requester sees moves), stamp firstResponseAt when
 * asked and unset, store jobs, atomically.  A ticket holding max_comments
 * already is left alone (TS_CONFLICT), one updated after
 * unmodified_since too (TS_STALE), and no job is stored.  Count and time
 * are checked in the same write (transaction, conditional update), so
 * racing writers cannot pass them.  SLA: a first response stamped after
 * firstResponseDue marks the breach (slaBreachedAt = firstResponseDue,
 * with an "sla" history entry; SQLite: in the same transaction; MongoDB:
 * a conditional single-document write right after the comment's).
 */
ts_rc_e ts_store_comment_add(ts_store_t *s, const char *ticket_id,
    const ts_comment_new_t *c, int64_t now, int64_t max_comments,
    const ts_job_new_t *jobs, size_t njobs);

/* A ticket's comments, oldest first, authors populated, appended to out
 * as a JSON array (written as text: a thread is sent whole after every
 * comment, so it is on the path of every real-time message); internal
 * notes only with with_internal (a reader who is staff on the ticket). */
ts_rc_e ts_store_comment_list(ts_store_t *s, const char *ticket_id,
    int with_internal, ts_jw_t *out);

/* Users holding a role, as {_id, email, username, status}. */
ts_rc_e ts_store_user_list_role(ts_store_t *s, ts_role_e role, json_t **out);

/* --- ticket history ------------------------------------------------------ */

/*
 * A ticket's history: one entry per change of what the support team
 * tracks, written by the store INSIDE the write that makes the change
 * (SQLite: the same transaction; MongoDB: the same single-document update,
 * through the ticket's history outbox, see ts_store_mongo_history.c), so
 * a change never exists without its entry and a failed change leaves
 * none.  Wiring a new action is one call in the backend's write:
 * ts_sqlite_history_add() / ts_mg_history_array() with a ts_hist_t.
 *
 * Entry (JSON): {_id, at, actor, action, from, to, staffOnly[,
 * explanation]}: actor {_id, username} of the user who made the change,
 * or null for ticketd's own work (triage, automatic assignment); from and
 * to are the values before and after (strings, arrays, {_id, username}
 * for people, null for none).  staffOnly entries, and every explanation,
 * are for staff: the service drops them for requesters.
 */
#define TS_HIST_CREATED   "created"     /* null -> "To-Do" */
#define TS_HIST_STATUS    "status"      /* status -> status */
#define TS_HIST_ASSIGNEE  "assignee"    /* person|null -> person|null,
                                           explanation: the assign job's */
#define TS_HIST_PRIORITY  "priority"    /* priority|null -> priority */
#define TS_HIST_SKILLS    "skills"      /* [skills] -> [skills] */
#define TS_HIST_NOTE      "note"        /* internal notes: staff only */
#define TS_HIST_SLA       "sla"         /* SLA events: staff only */

typedef struct {
    const char  *action;       /* TS_HIST_* */
    const char  *actor;        /* user id; NULL: ticketd (system) */
    json_t      *from;         /* borrowed; NULL: null */
    json_t      *to;           /* borrowed; NULL: null */
    json_t      *explanation;  /* borrowed; NULL: none (staff only) */
    int          staff_only;
} ts_hist_t;

/* The "to" of an internal note's entry (a new reference): its text, cut
 * to TS_HIST_NOTE_CHARS code points ("…" appended when cut). */
#define TS_HIST_NOTE_CHARS  140
json_t *ts_hist_note(const char *text);

/* A ticket's history, oldest first (at, then write order), actors
 * populated, every entry (the caller filters for requesters). */
ts_rc_e ts_store_ticket_history(ts_store_t *s, const char *id,
    json_t **history);

/* --- canned responses ------------------------------------------------------ */

/*
 * Canned responses are shared by the whole staff: every moderator and
 * admin lists and uses all of them; their owner or an admin edits and
 * deletes (the service checks: the store only stores).  Document
 * {_id, title, body, owner: {_id, username}, createdAt, updatedAt}.
 */
ts_rc_e ts_store_canned_create(ts_store_t *s, const char *id,
    const char *owner, const char *title, const char *body, int64_t now);

/* All canned responses, by title (case-insensitive), then _id. */
ts_rc_e ts_store_canned_list(ts_store_t *s, json_t **out);

/* One, and its owner's id into owner (may be NULL). */
ts_rc_e ts_store_canned_get(ts_store_t *s, const char *id, json_t **doc,
    ts_oid_t owner);

/* Change title and/or body (NULL: unchanged); TS_NOT_FOUND if none. */
ts_rc_e ts_store_canned_update(ts_store_t *s, const char *id,
    const char *title, const char *body, int64_t now);

/* TS_NOT_FOUND if none. */
ts_rc_e ts_store_canned_delete(ts_store_t *s, const char *id);

/* --- moderator requests --------------------------------------------------- */

/* Insert a pending request with its jobs; TS_CONFLICT when the applicant
 * already has one pending (even under concurrent submissions). */
ts_rc_e ts_store_modreq_create(ts_store_t *s, const char *id,
    const char *applicant, const char *username, const char *email,
    json_t *skills, int64_t now, const ts_job_new_t *jobs, size_t njobs);

ts_rc_e ts_store_modreq_get(ts_store_t *s, const char *id, json_t **doc);

/* The applicant's newest request. */
ts_rc_e ts_store_modreq_latest(ts_store_t *s, const char *applicant,
    json_t **doc);

/* When the applicant's newest rejection happened (TS_NOT_FOUND: never). */
ts_rc_e ts_store_modreq_last_rejection(ts_store_t *s, const char *applicant,
    int64_t *rejected_at);

/* Pending requests, newest first, applicant populated. */
ts_rc_e ts_store_modreq_pending(ts_store_t *s, json_t **requests);

/*
 * Accept or reject a pending request with its jobs, atomically; accepting
 * makes the applicant a moderator (admins stay admins) and merges the
 * skills.  TS_NOT_FOUND: no such request; TS_CONFLICT: already processed.
 */
ts_rc_e ts_store_modreq_decide(ts_store_t *s, const char *id, int accept,
    const char *reviewer, int64_t now, const ts_job_new_t *jobs,
    size_t njobs);

/* --- analytics ------------------------------------------------------------ */

/* Every metric of GET /api/analytics, computed from indexes/counters. */
ts_rc_e ts_store_analytics(ts_store_t *s, int64_t now, json_t **out);

/* --- jobs: the runner's side -------------------------------------------- */

typedef struct {
    ts_oid_t   id;
    char       kind[16];
    json_t    *payload;        /* owned */
    int        attempts;       /* including the one just claimed */
    int        max_attempts;
} ts_job_t;

/*
 * Claim up to max due jobs -- pending with runAfter <= now, or running
 * with an expired lease (its runner died) -- atomically: each becomes
 * running, attempts + 1, leaseUntil = now + lease_ms.  Jobs of later
 * stages (assign, email, stats) come first, then at most max_triage
 * triage jobs, so a triage backlog never delays assignments.  *jobs
 * receives a malloc'ed array of *n jobs (free with ts_jobs_free).
 */
ts_rc_e ts_store_job_claim(ts_store_t *s, int64_t now, int64_t lease_ms,
    int max, int max_triage, ts_job_t **jobs, size_t *n);

void ts_jobs_free(ts_job_t *jobs, size_t n);

/* Extend the leases of jobs still running as the given attempts (a
 * runner renews what it holds, so slow providers never lose a lease). */
ts_rc_e ts_store_job_extend(ts_store_t *s, const ts_job_t *jobs, size_t n,
    int64_t lease_until);

/* Finish a claimed job; TS_NOT_FOUND when its lease was lost meanwhile
 * (another runner re-claimed it: attempts differ). */
ts_rc_e ts_store_job_done(ts_store_t *s, const char *id, int attempts,
    int64_t now);

/* ts_store_job_done for each of n jobs (their id and attempts), in one
 * transaction where the store has them; rcs[i] receives job i's outcome.
 * TS_ERR (and every rcs[i] TS_ERR) when the store failed. */
ts_rc_e ts_store_jobs_done(ts_store_t *s, const ts_job_t *jobs, size_t n,
    int64_t now, ts_rc_e *rcs);

/* A failed attempt: pending again at run_after, or dead (kept, with the
 * error, for admins) when dead is set. */
ts_rc_e ts_store_job_fail(ts_store_t *s, const char *id, int attempts,
    const char *error, int dead, int64_t run_after, int64_t now);

/* Jobs in a state (NULL = any), newest first, at most limit, as JSON. */
ts_rc_e ts_store_job_list(ts_store_t *s, const char *state, int64_t limit,
    json_t **out);

/* A dead job back to pending with a fresh set of attempts;
 * TS_CONFLICT when it is not dead. */
ts_rc_e ts_store_job_retry(ts_store_t *s, const char *id, int64_t now);

/*
 * Delete at most limit finished jobs: done jobs finished (updatedAt)
 * before done_before, dead jobs before dead_before; 0 purges none of that
 * state.  Pending and running jobs are never touched.  *removed gets how
 * many went; fewer than limit means nothing else is due, so a caller
 * purges in small batches (each a short write) until then.
 */
ts_rc_e ts_store_job_purge(ts_store_t *s, int64_t done_before,
    int64_t dead_before, int limit, int64_t *removed);

/* --- background work on tickets ------------------------------------------ */

/* A ticket's text for triage; *triaged is set when it has a result;
 * *created_at (may be NULL) receives its creation time. */
ts_rc_e ts_store_ticket_text(ts_store_t *s, const char *id, char **title,
    char **description, int *triaged, int64_t *created_at);

/*
 * Store a triage result ({summary, priority, helpfulNotes,
 * relatedSkills}) and its provenance (meta: provider, model, fallback,
 * error) and its SLA dates (due: NULL for none; deadline is
 * due->resolution_due) with the follow-up jobs, atomically; a ticket
 * triaged already is left alone (TS_CONFLICT) and no job is stored.
 */
ts_rc_e ts_store_ticket_set_triage(ts_store_t *s, const char *id,
    json_t *triage, json_t *meta, const char *provider, int fallback,
    const ts_sla_due_t *due, int64_t now, const ts_job_new_t *jobs,
    size_t njobs);

/*
 * Set a ticket's priority and move its SLA dates to due (computed from
 * its createdAt by the caller) with jobs (the SLA jobs of the new dates),
 * atomically, with a "priority" history entry by actor (public) when the
 * priority changes.  A mark of a breach already recorded stays.
 */
ts_rc_e ts_store_ticket_set_priority(ts_store_t *s, const char *id,
    const char *priority, const char *actor, const ts_sla_due_t *due,
    int64_t now, const ts_job_new_t *jobs, size_t njobs);

/*
 * Mark a missed target: slaBreachedAt = due when the ticket's target
 * ("response" or "resolution") is still due at exactly that date, still
 * unmet (no first response, and not Completed) and no breach is marked --
 * one conditional write, so a breach is marked once, with its "sla"
 * history entry (staff only, actor null, to {"breached": "firstResponse"
 * or "resolution"}) in the same write.  TS_CONFLICT when there is nothing
 * to mark (met, moved, or marked already).
 */
ts_rc_e ts_store_ticket_sla_breach(ts_store_t *s, const char *id,
    const char *target, int64_t due, int64_t now);

/*
 * The job an assignment stores with it, built by the caller's domain code
 * (ts_job_mail_assigned) once the store has chosen the moderator (email
 * to, username) of ticket {ticket_id, ticket_title}: the store writes
 * jobs, it never composes them.  0, or -1 when it could not be built.
 */
typedef int (*ts_assigned_job_fn)(ts_job_new_t *job, json_t *to,
    json_t *username, const char *ticket_id, const char *ticket_title);

/*
 * Assign a ticket inside one write transaction, so concurrent assignments
 * see each other's load: read the candidates (moderators and admins),
 * leave out the ids in exclude (a JSON array, or NULL: a hand-back's job
 * keeps who handed it back out; they are listed in the explanation),
 * choose with ts_assign_choose(), set assignedTo and the explanation, move
 * To-Do to In Progress (any other status is left as an admin set it),
 * stamp the moderator's lastAssignedAt and store the job made by
 * assigned_job for the chosen moderator (the "Ticket Assigned" email).
 * TS_CONFLICT when the ticket is assigned already (by an admin or an
 * earlier run): a ticket assigned by hand (assignedBy set, see
 * ts_store_ticket_set_assignee) is never replaced.  *result: {ticketId, assignedTo, status, assignment} for
 * the ticket_updated event.
 */
ts_rc_e ts_store_ticket_assign(ts_store_t *s, const char *id,
    json_t *exclude, const ts_assign_cfg_t *cfg,
    ts_assigned_job_fn assigned_job, int64_t now, json_t **result);

/*
 * Count a completed ticket for its moderator once: totalTicketsResolved
 * + 1 and the running average with this ticket's creation-to-completion
 * hours (measured when it was completed, so a later reopen changes
 * nothing), in one transaction guarded by the ticket's statsCounted flag.
 * *counted says whether this call counted it.
 */
ts_rc_e ts_store_ticket_stats(ts_store_t *s, const char *id,
    const char *moderator_id, double hours, int *counted);

/* --- assignment by hand and hand-back ------------------------------------ */

/*
 * The job a hand-back stores for each ticket it frees, built by the
 * caller's domain code (ts_job_reassign): the assignment job again, with
 * exclude (who handed it back) left out of the choice.  0 or -1.
 */
typedef int (*ts_handback_job_fn)(ts_job_new_t *job,
    char key[TS_JOB_KEY_LEN], const char *ticket_id, const char *exclude,
    int64_t now);

/*
 * Set or clear a ticket's assignee by hand, as one compare-and-set: only
 * while assignedTo is still from ("" = unassigned), else TS_CONFLICT;
 * TS_NOT_FOUND when there is no such ticket.  to != NULL: assignedTo = to,
 * assignedBy = by (the manual marker ts_store_ticket_assign respects),
 * assignment = the caller's explanation, the status left as it is.
 * to == NULL (a hand-back): assignedTo, assignedBy and assignment cleared,
 * In Progress back to To-Do.  Either way updatedAt = now and jobs (the
 * "Ticket Assigned" mail, or the assignment job again) are stored with
 * the change, atomically.  by is also the history's actor (who assigned,
 * or who handed back): an "assignee" entry from -> to ({_id, username},
 * null for none; assignment as its explanation) and, when a hand-back
 * moves In Progress to To-Do, a "status" entry, in the same write.
 */
ts_rc_e ts_store_ticket_set_assignee(ts_store_t *s, const char *id,
    const char *from, const char *to, const char *by, json_t *assignment,
    int64_t now, const ts_job_new_t *jobs, size_t njobs);

/*
 * Hand back the open tickets assigned to user_id (To-Do and In Progress;
 * To-Do only with todo_only), each as ts_store_ticket_set_assignee(to =
 * NULL) does, with the job job_fn makes (excluding user_id) for each one
 * that is not Completed.  With demote the user's role becomes "user" (and
 * skills, when not NULL, replace theirs): on SQLite in the same
 * transaction as the hand-backs; on MongoDB (no transactions) the role is
 * written first, so no new assignment can pick them, then each ticket
 * with its own compare-and-set -- a crash in between leaves tickets that
 * a repeated call (the service repeats it for any update to role "user")
 * hands back.  *handed: [{ticketId, status}] of the tickets handed back.
 * TS_NOT_FOUND when demote and there is no such user.  Each ticket's
 * history gets, in its own write, "assignee" user -> null by actor (the
 * admin who demoted; NULL: ticketd, the absence rule) with why as the
 * explanation (borrowed, may be NULL), and "status" In Progress -> To-Do
 * when it moved.
 */
ts_rc_e ts_store_user_handback(ts_store_t *s, const char *user_id,
    int demote, json_t *skills, int todo_only, const char *actor,
    json_t *why, ts_handback_job_fn job_fn, int64_t now, json_t **handed);

/*
 * Staff (moderators, admins) absent since before `before` -- presence dnd
 * or offline and lastSeen (or, when never seen, createdAt) older than
 * before -- who hold To-Do tickets: *users receives their ids (array).
 */
ts_rc_e ts_store_absent_assignees(ts_store_t *s, int64_t before,
    json_t **users);

/* --- housekeeping ----------------------------------------------------- */

/* Drop revoked tokens past their exp and stale login attempts;
 * *removed (may be NULL) receives how many rows went. */
ts_rc_e ts_store_purge_expired(ts_store_t *s, int64_t now_ms,
    int64_t *removed);

#endif /* TS_STORE_H */

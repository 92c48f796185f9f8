/*
 * ts_jobs: the job vocabulary (DESIGN.md section 5).  Every job the
 * services, the store's assignment and ticketd create is built here: one
 * constructor per kind (and per email template), the attempt budget of
 * each kind in one table (ts_jobs.c), the dedupe key of each kind in one
 * place.  Nothing else spells a job's kind, payload or attempts.
 *
 * A constructor fills a ts_job_new_t (below): payload is a new
 * reference the caller releases (json_decref(job->payload)) once the job
 * is stored; string arguments are copied into the payload, json_t ones are
 * referenced (json_pack "O": a NULL one fails).  The dedupe key is written
 * into the caller's key buffer, which the job borrows, so it must outlive
 * the store call.  Each returns 0, or -1 when the payload could not be
 * built (job->payload is then NULL).
 */

#ifndef TS_JOBS_H
#define TS_JOBS_H

#include <stdint.h>

#include <jansson.h>

/* A job to store (see DESIGN.md section 5); strings are borrowed. */
typedef struct {
    const char  *kind;         /* "email", "triage", ...: the kinds here */
    json_t      *payload;      /* object; never holds secrets */
    const char  *dedupe_key;   /* NULL or unique: a second insert is a
                                  no-op */
    int          max_attempts;
    int64_t      run_after;    /* ms; 0 = now */
} ts_job_new_t;

/* Room for a dedupe key: "<kind>:" and a ticket id. */
#define TS_JOB_KEY_LEN  96

/* The attempt budget of a job kind ("email", "triage", ...); 0 when the
 * kind is unknown. */
int ts_job_max_attempts(const char *kind);

/*
 * The kinds as a dense index, for counting by kind: 0 .. TS_JOB_KINDS - 1,
 * the last being "other" (a kind this build does not know, e.g. a job a
 * newer version stored).
 */
#define TS_JOB_KINDS  7

/* The index of a kind (TS_JOB_KINDS - 1, "other", when unknown or NULL). */
size_t ts_job_kind_index(const char *kind);

/* The name of index i ("other" for the last, NULL past it). */
const char *ts_job_kind_name(size_t i);

/* Triage of a new ticket; deduplicated per ticket. */
int ts_job_triage(ts_job_new_t *job, char key[TS_JOB_KEY_LEN],
    const char *ticket_id);

/* Assignment of a triaged ticket; deduplicated per ticket. */
int ts_job_assign(ts_job_new_t *job, char key[TS_JOB_KEY_LEN],
    const char *ticket_id);

/* Assignment of a ticket handed back (by hand, on demotion or absence):
 * the assign job again, its payload {ticketId, exclude: [exclude]} keeping
 * whoever handed it back out of the choice; deduplicated per ticket and
 * hand-back time (a ticket can be handed back many times). */
int ts_job_reassign(ts_job_new_t *job, char key[TS_JOB_KEY_LEN],
    const char *ticket_id, const char *exclude, int64_t now);

/* A completed ticket counted into its moderator's statistics; the dedupe
 * key counts a ticket once, however often it completes. */
int ts_job_stats(ts_job_new_t *job, char key[TS_JOB_KEY_LEN],
    const char *ticket_id, const char *moderator_id, double hours);

/*
 * The SLA jobs of a ticket whose target dates are due (ts_sla.h): a
 * warning ("sla_warn") and a breach check ("sla_breach") for each target
 * ("response", "resolution"), run at the warning and due dates.  Each
 * carries the date it was made for, so a run after the priority moved
 * the dates finds them changed and does nothing; keys[i] is job i's
 * dedupe key.  jobs[4], keys[4]; returns how many were made (0 when the
 * ticket has no targets), -1 on failure (no payload to release then).
 */
struct ts_sla_due_s;
int ts_job_sla(ts_job_new_t jobs[4], char keys[4][TS_JOB_KEY_LEN],
    const char *ticket_id, const struct ts_sla_due_s *due);

/* The "sla_warning" email to one recipient ({email, username}) about
 * ticket ({_id, title}) whose target ("response", "resolution") is due
 * at due (ms); deduplicated per recipient and due date. */
int ts_job_mail_sla_warning(ts_job_new_t *job, char key[TS_JOB_KEY_LEN],
    json_t *to, const char *ticket_id, const char *title,
    const char *target, int64_t due);

/* The "welcome" email to a new account. */
int ts_job_mail_welcome(ts_job_new_t *job, const char *to,
    const char *username);

/* The "assigned" email to the moderator (to, username) given a ticket. */
int ts_job_mail_assigned(ts_job_new_t *job, json_t *to, json_t *username,
    const char *ticket_id, const char *ticket_title);

/* The "comment" email to one recipient ({email, username}) about a comment
 * by author on ticket ({_id, title}); excerpt is the comment's cut text. */
int ts_job_mail_comment(ts_job_new_t *job, json_t *to, json_t *ticket,
    const char *author, const char *excerpt);

/* A moderator-request email (template "modreq_submitted", "modreq_new",
 * "modreq_accepted" or "modreq_rejected") to address to about applicant
 * user and their skills (NULL = null); to_name, when a string, names the
 * addressee (else "username" does). */
int ts_job_mail_modreq(ts_job_new_t *job, const char *tmpl, json_t *to,
    json_t *to_name, const char *user, json_t *skills);

/*
 * The "password_reset" email to one account (to, username) with the
 * reset token (43 base64url characters) its link carries.  The one
 * payload that holds a secret: the mail itself must carry it.  The token
 * is single-use and short-lived; the admins' job list (GET /api/jobs)
 * shows it redacted (ts_job_payload_redact).
 */
int ts_job_mail_password_reset(ts_job_new_t *job, const char *to,
    const char *username, const char *token);

/* The "password_changed" notice to one account (to, username); how is
 * "change" (the user changed it) or "reset" (through a reset link). */
int ts_job_mail_password_changed(ts_job_new_t *job, const char *to,
    const char *username, const char *how);

/* A job payload as it may be shown (admins' job list): a copy with any
 * secret a payload carries (the reset token) replaced by "[redacted]";
 * a new reference, the same object when there is nothing to hide. */
json_t *ts_job_payload_redact(json_t *payload);

#endif /* TS_JOBS_H */

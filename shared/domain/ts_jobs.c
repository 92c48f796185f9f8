/*
 * ts_jobs: job constructors and the attempts table (see ts_jobs.h).
 *
 * Attempts: triage calls an AI provider that falls back to the offline
 * triage on its last attempt, so it needs fewer; assignment, statistics
 * and email only wait for the store or a mail provider to come back.
 */

#include <stdio.h>
#include <string.h>

#include "ts_jobs.h"
#include "ts_model.h"
#include "ts_sla.h"

static const struct {
    const char  *kind;
    int          max_attempts;
} ts_job_kinds[] = {
    { "triage", 5 },
    { "assign", 8 },
    { "stats",  8 },
    { "email",  8 },
    { "sla_warn", 8 },
    { "sla_breach", 8 },
};


#define TS_JOB_KNOWN  (sizeof(ts_job_kinds) / sizeof(ts_job_kinds[0]))

/* the known kinds and "other" */
typedef char ts_job_kinds_fit[TS_JOB_KNOWN + 1 == TS_JOB_KINDS ? 1 : -1];


int
ts_job_max_attempts(const char *kind)
{
    size_t  i = ts_job_kind_index(kind);

    return i < TS_JOB_KNOWN ? ts_job_kinds[i].max_attempts : 0;
}


size_t
ts_job_kind_index(const char *kind)
{
    size_t  i;

    for (i = 0; kind != NULL && i < TS_JOB_KNOWN; i++) {
        if (strcmp(ts_job_kinds[i].kind, kind) == 0) {
            return i;
        }
    }
    return TS_JOB_KINDS - 1;
}


const char *
ts_job_kind_name(size_t i)
{
    return i < TS_JOB_KNOWN ? ts_job_kinds[i].kind
           : i == TS_JOB_KNOWN ? "other" : NULL;
}


/* Start a job of kind with payload (owned by the job from now on); key,
 * when not NULL, becomes "<kind>:<id>". */
static int
ts_job_init(ts_job_new_t *job, const char *kind, char *key, const char *id,
    json_t *payload)
{
    memset(job, 0, sizeof(*job));
    job->kind = kind;
    job->max_attempts = ts_job_max_attempts(kind);
    job->payload = payload;
    if (key != NULL) {
        snprintf(key, TS_JOB_KEY_LEN, "%s:%s", kind, id);
        job->dedupe_key = key;
    }
    return payload != NULL ? 0 : -1;
}


int
ts_job_triage(ts_job_new_t *job, char key[TS_JOB_KEY_LEN],
    const char *ticket_id)
{
    return ts_job_init(job, "triage", key, ticket_id,
                       json_pack("{s:s}", "ticketId", ticket_id));
}


int
ts_job_assign(ts_job_new_t *job, char key[TS_JOB_KEY_LEN],
    const char *ticket_id)
{
    return ts_job_init(job, "assign", key, ticket_id,
                       json_pack("{s:s}", "ticketId", ticket_id));
}


int
ts_job_reassign(ts_job_new_t *job, char key[TS_JOB_KEY_LEN],
    const char *ticket_id, const char *exclude, int64_t now)
{
    char  id[64];

    snprintf(id, sizeof(id), "%s:%lld", ticket_id, (long long) now);
    return ts_job_init(job, "assign", key, id,
                       exclude
                       ? json_pack("{s:s, s:[s]}", "ticketId", ticket_id,
                                   "exclude", exclude)
                       : json_pack("{s:s}", "ticketId", ticket_id));
}


int
ts_job_stats(ts_job_new_t *job, char key[TS_JOB_KEY_LEN],
    const char *ticket_id, const char *moderator_id, double hours)
{
    return ts_job_init(job, "stats", key, ticket_id,
                       json_pack("{s:s, s:s, s:f}", "ticketId", ticket_id,
                                 "moderatorId", moderator_id,
                                 "hours", hours));
}


int
ts_job_sla(ts_job_new_t jobs[4], char keys[4][TS_JOB_KEY_LEN],
    const char *ticket_id, const ts_sla_due_t *due)
{
    static const char  *kinds[4] = {
        "sla_warn", "sla_breach", "sla_warn", "sla_breach"
    };
    static const char  *targets[4] = {
        "response", "response", "resolution", "resolution"
    };
    int64_t  at[4], due_at[4];
    int      i, n = 0;

    if (due->resolution_due == 0) {
        return 0;
    }
    at[0] = due->response_warn;
    at[1] = due->response_due;
    at[2] = due->resolution_warn;
    at[3] = due->resolution_due;
    due_at[0] = due_at[1] = due->response_due;
    due_at[2] = due_at[3] = due->resolution_due;

    for (i = 0; i < 4; i++) {
        memset(&jobs[n], 0, sizeof(jobs[n]));
        jobs[n].kind = kinds[i];
        jobs[n].max_attempts = ts_job_max_attempts(kinds[i]);
        /* the breach check runs just after the due date, so "now > due"
         * holds when it looks */
        jobs[n].run_after = at[i] + (i % 2);
        jobs[n].payload = json_pack("{s:s, s:s, s:I}", "ticketId", ticket_id,
                                    "target", targets[i],
                                    "due", (json_int_t) due_at[i]);
        if (jobs[n].payload == NULL) {
            while (n-- > 0) {
                json_decref(jobs[n].payload);
            }
            return -1;
        }
        snprintf(keys[n], TS_JOB_KEY_LEN, "%s:%s:%s:%lld", kinds[i],
                 ticket_id, targets[i], (long long) due_at[i]);
        jobs[n].dedupe_key = keys[n];
        n++;
    }
    return n;
}


int
ts_job_mail_sla_warning(ts_job_new_t *job, char key[TS_JOB_KEY_LEN],
    json_t *to, const char *ticket_id, const char *title,
    const char *target, int64_t due)
{
    char  iso[32];
    int   rc;

    ts_iso_time(due, iso);
    rc = ts_job_init(job, "email", NULL, NULL,
                     json_pack("{s:s, s:O, s:O, s:s, s:s, s:s, s:s}",
                               "template", "sla_warning",
                               "to", json_object_get(to, "email"),
                               "toName", json_object_get(to, "username"),
                               "ticketId", ticket_id,
                               "ticketTitle", title ? title : "",
                               "target", target, "due", iso));
    /* one warning per recipient, target and due date, however often the
     * job that stores it runs */
    snprintf(key, TS_JOB_KEY_LEN, "slamail:%s:%.1s%lld:%.24s", ticket_id,
             target, (long long) due,
             json_string_value(json_object_get(to, "_id")) ?: "");
    job->dedupe_key = key;
    return rc;
}


int
ts_job_mail_welcome(ts_job_new_t *job, const char *to, const char *username)
{
    return ts_job_init(job, "email", NULL, NULL,
                       json_pack("{s:s, s:s, s:s}", "template", "welcome",
                                 "to", to, "username", username));
}


int
ts_job_mail_assigned(ts_job_new_t *job, json_t *to, json_t *username,
    const char *ticket_id, const char *ticket_title)
{
    return ts_job_init(job, "email", NULL, NULL,
                       json_pack("{s:s, s:O, s:O, s:s, s:s}",
                                 "template", "assigned",
                                 "to", to, "username", username,
                                 "ticketId", ticket_id,
                                 "ticketTitle",
                                 ticket_title ? ticket_title : ""));
}


int
ts_job_mail_comment(ts_job_new_t *job, json_t *to, json_t *ticket,
    const char *author, const char *excerpt)
{
    return ts_job_init(job, "email", NULL, NULL,
                       json_pack("{s:s, s:O, s:O, s:O, s:O, s:s, s:s}",
                                 "template", "comment",
                                 "to", json_object_get(to, "email"),
                                 "toName", json_object_get(to, "username"),
                                 "ticketId", json_object_get(ticket, "_id"),
                                 "ticketTitle",
                                 json_object_get(ticket, "title"),
                                 "author", author,
                                 "excerpt", excerpt));
}


int
ts_job_mail_modreq(ts_job_new_t *job, const char *tmpl, json_t *to,
    json_t *to_name, const char *user, json_t *skills)
{
    if (ts_job_init(job, "email", NULL, NULL,
                    json_pack("{s:s, s:O, s:s, s:O}", "template", tmpl,
                              "to", to, "username", user,
                              "skills", skills ? skills : json_null()))
        != 0)
    {
        return -1;
    }
    if (json_is_string(to_name)) {
        json_object_set(job->payload, "toName", to_name);
    }
    return 0;
}


int
ts_job_mail_password_reset(ts_job_new_t *job, const char *to,
    const char *username, const char *token)
{
    return ts_job_init(job, "email", NULL, NULL,
                       json_pack("{s:s, s:s, s:s, s:s}",
                                 "template", "password_reset", "to", to,
                                 "username", username, "resetToken", token));
}


int
ts_job_mail_password_changed(ts_job_new_t *job, const char *to,
    const char *username, const char *how)
{
    return ts_job_init(job, "email", NULL, NULL,
                       json_pack("{s:s, s:s, s:s, s:s}",
                                 "template", "password_changed", "to", to,
                                 "username", username, "how", how));
}


json_t *
ts_job_payload_redact(json_t *payload)
{
    json_t  *copy;

    if (!json_is_object(payload)
        || json_object_get(payload, "resetToken") == NULL)
    {
        return json_incref(payload);
    }
    copy = json_copy(payload);
    if (copy != NULL) {
        json_object_set_new(copy, "resetToken", json_string("[redacted]"));
    }
    return copy;
}

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

static const struct {
    const char  *kind;
    int          max_attempts;
} ts_job_kinds[] = {
    { "triage", 5 },
    { "assign", 8 },
    { "stats",  8 },
    { "email",  8 },
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

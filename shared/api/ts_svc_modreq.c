/*
 * ts_svc_modreq: applying to become a moderator and the admin's decision.
 *
 * One pending request per applicant is the store's invariant (a partial
 * unique index), so concurrent submissions cannot both land; the 72-hour
 * cooldown after a rejection is checked from the newest rejection.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_api_internal.h"
#include "ts_jobs.h"
#include "ts_session.h"

#define TS_COOLDOWN_MS  (72 * 3600 * 1000LL)
#define TS_HOUR_MS      (3600 * 1000LL)


/* Hours left of the cooldown (rounded up), 0 when the user may apply. */
static ts_rc_e
ts_cooldown_hours(ts_call_t *c, int64_t *hours)
{
    int64_t  rejected_at, left;
    ts_rc_e  rc;

    *hours = 0;
    rc = ts_store_modreq_last_rejection(c->store, c->me.id, &rejected_at);
    if (rc == TS_NOT_FOUND) {
        return TS_OK;
    }
    if (rc != TS_OK) {
        return rc;
    }
    left = rejected_at + TS_COOLDOWN_MS - c->now;
    if (left > 0) {
        *hours = (left + TS_HOUR_MS - 1) / TS_HOUR_MS;
    }
    return TS_OK;
}


void
ts_svc_modreq_create(ts_call_t *c)
{
    ts_errmsg_t    err;
    json_t        *skills = NULL, *admins = NULL, *doc = NULL, *a, *email;
    ts_job_new_t  *jobs = NULL;
    size_t         njobs = 0, i;
    int64_t        hours;
    ts_oid_t       id;
    ts_rc_e        rc;

    if (c->me.role == TS_ROLE_ADMIN) {
        ts_api_error(c->resp, 400, "Admins cannot apply to become "
                                   "moderators");
        return;
    }
    if (c->me.role == TS_ROLE_MODERATOR) {
        ts_api_error(c->resp, 400, "You are already a moderator");
        return;
    }
    if (ts_get_skills(c->body, "skills", &skills, err) < 0) {
        ts_api_error(c->resp, 400, err);
        return;
    }
    if (skills == NULL || json_array_size(skills) == 0) {
        ts_api_error(c->resp, 400, "skills is required");
        goto done;
    }

    if (ts_cooldown_hours(c, &hours) != TS_OK
        || ts_store_user_list_role(c->store, TS_ROLE_ADMIN, &admins) != TS_OK)
    {
        ts_reply_store_error(c);
        goto done;
    }
    if (hours > 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "Your last request was rejected; you can "
                 "apply again in %lld hours", (long long) hours);
        ts_reply(c, 400, json_pack("{s:s, s:s, s:I}", "error", msg,
                                   "message", msg,
                                   "cooldownHours", (json_int_t) hours));
        goto done;
    }

    /* the applicant's receipt, then one notice to every admin */
    jobs = calloc(json_array_size(admins) + 1, sizeof(*jobs));
    if (jobs == NULL) {
        ts_reply_store_error(c);
        goto done;
    }
    email = json_string(c->me.email);
    ts_job_mail_modreq(&jobs[njobs++], "modreq_submitted", email, NULL,
                       c->me.username, skills);
    json_decref(email);
    json_array_foreach(admins, i, a) {
        ts_job_mail_modreq(&jobs[njobs++], "modreq_new",
                           json_object_get(a, "email"),
                           json_object_get(a, "username"), c->me.username,
                           skills);
    }

    ts_oid_new(id);
    rc = ts_store_modreq_create(c->store, id, c->me.id, c->me.username,
                                c->me.email, skills, c->now, jobs, njobs);
    if (rc == TS_OK) {
        rc = ts_store_modreq_get(c->store, id, &doc);
    }
    if (rc == TS_CONFLICT) {
        ts_api_error(c->resp, 400, "You already have a pending request");
    } else if (rc != TS_OK) {
        ts_reply_store_error(c);
    } else {
        c->resp->job_stored = 1;
        ts_reply(c, 201, json_pack("{s:s, s:o}", "message", "Request created",
                                   "request", doc));
    }

done:
    for (i = 0; i < njobs; i++) {
        json_decref(jobs[i].payload);
    }
    free(jobs);
    json_decref(admins);
    json_decref(skills);
}


void
ts_svc_modreq_me(ts_call_t *c)
{
    json_t   *doc = NULL;
    int64_t   hours;
    ts_rc_e   rc;

    rc = ts_store_modreq_latest(c->store, c->me.id, &doc);
    if ((rc != TS_OK && rc != TS_NOT_FOUND)
        || ts_cooldown_hours(c, &hours) != TS_OK)
    {
        json_decref(doc);
        ts_reply_store_error(c);
        return;
    }
    ts_reply(c, 200, json_pack("{s:o, s:I}", "request",
                               doc ? doc : json_null(),
                               "cooldownHours", (json_int_t) hours));
}


void
ts_svc_modreq_list(ts_call_t *c)
{
    json_t  *requests;

    if (ts_store_modreq_pending(c->store, &requests) != TS_OK) {
        ts_reply_store_error(c);
        return;
    }
    ts_reply(c, 200, json_pack("{s:o}", "requests", requests));
}


/* The applicant's role changed: their sockets are re-authorised.  The
 * applicant is an id, or a populated {_id, ...}. */
static void
ts_emit_user_changed(ts_call_t *c, json_t *applicant)
{
    const char  *id;

    if (json_is_object(applicant)) {
        applicant = json_object_get(applicant, "_id");
    }
    id = json_string_value(applicant);
    if (id != NULL && ts_oid_valid(id)) {
        ts_emit(c, TS_EV_USER_CHANGED, NULL, ts_rights_user_changed(id));
    }
}


void
ts_svc_modreq_decide(ts_call_t *c)
{
    const char    *id = c->req->match.params[0];
    ts_errmsg_t    err;
    const char    *action;
    size_t         alen;
    int            accept;
    json_t        *doc = NULL;
    ts_job_new_t   job;
    ts_rc_e        rc;

    if (ts_get_string(c->body, "action", 1, 16, 1, &action, &alen, err)) {
        ts_api_error(c->resp, 400, err);
        return;
    }
    if (alen == 6 && memcmp(action, "accept", 6) == 0) {
        accept = 1;
    } else if (alen == 6 && memcmp(action, "reject", 6) == 0) {
        accept = 0;
    } else {
        ts_api_error(c->resp, 400, "action must be accept or reject");
        return;
    }

    rc = ts_store_modreq_get(c->store, id, &doc);
    if (rc == TS_NOT_FOUND) {
        ts_api_error(c->resp, 404, "Request not found");
        return;
    }
    if (rc != TS_OK) {
        ts_reply_store_error(c);
        return;
    }

    ts_job_mail_modreq(&job, accept ? "modreq_accepted" : "modreq_rejected",
                       json_object_get(doc, "email"), NULL,
                       json_string_value(json_object_get(doc, "username")),
                       json_object_get(doc, "skills"));
    rc = ts_store_modreq_decide(c->store, id, accept, c->me.id, c->now, &job,
                                1);
    json_decref(job.payload);
    json_decref(doc);
    doc = NULL;

    if (rc == TS_OK) {
        rc = ts_store_modreq_get(c->store, id, &doc);
    }
    if (rc == TS_CONFLICT) {
        ts_api_error(c->resp, 400, "Request already processed");
    } else if (rc == TS_NOT_FOUND) {
        ts_api_error(c->resp, 404, "Request not found");
    } else if (rc != TS_OK) {
        ts_reply_store_error(c);
    } else {
        c->resp->job_stored = 1;
        if (accept) {
            ts_emit_user_changed(c, json_object_get(doc, "applicant"));
        }
        ts_reply(c, 200, json_pack("{s:s, s:o}", "message",
                                   "Request processed", "request", doc));
    }
}

/*
 * job_sla: the "sla_warn" and "sla_breach" job kinds (see
 * job_runner_internal.h).  Stored with the ticket's SLA dates (triage, a
 * priority change), each runs at its date and looks again before acting:
 * a target met (a first response, completion), moved (the priority
 * changed: its date is not the job's) or already marked needs nothing.
 *
 * A warning stores one "sla_warning" email per recipient -- the assignee
 * and every admin -- each deduplicated, so a run
 * repeated after a crash sends nothing twice.  A breach is one
 * conditional write (ts_store_ticket_sla_breach) and a ticket_updated
 * holding only the ticket id: the room holds the requester, who is not
 * shown the SLA, so staff re-read the ticket.
 */

#include <stdio.h>
#include <string.h>

#include "job_runner_internal.h"
#include "ts_jobs.h"
#include "ts_sla.h"
#include "ts_store.h"

/* The job's date is still the ticket's, unmet and unmarked. */
static int
sla_pending(const ts_ticket_keys_t *k, const char *target, int64_t due)
{
    if (k->sla.breached_at != 0 || k->sla.completed) {
        return 0;               /* completing late marks it itself */
    }
    if (strcmp(target, "response") == 0) {
        return k->sla.due.response_due == due && k->sla.responded_at == 0;
    }
    return k->sla.due.resolution_due == due && !k->sla.completed;
}


/* Store the warning emails of ticket doc -- to the assignee and to every
 * admin (the assignee once when an admin); TS_OK or the first failure. */
static ts_rc_e
sla_warn_mail(ts_store_t *s, json_t *doc, const char *id, const char *target,
    int64_t due)
{
    json_t        *to = json_object_get(doc, "assignedTo"), *admins = NULL;
    json_t        *v;
    const char    *title = json_string_value(json_object_get(doc, "title"));
    const char    *assignee;
    char           key[TS_JOB_KEY_LEN];
    ts_job_new_t   job;
    ts_rc_e        rc;
    size_t         i, n;

    rc = ts_store_user_list_role(s, TS_ROLE_ADMIN, &admins);
    if (rc != TS_OK) {
        return rc;
    }
    assignee = json_is_object(to)
               ? json_string_value(json_object_get(to, "_id")) : NULL;
    n = json_array_size(admins);
    for (i = 0; rc == TS_OK && i <= n; i++) {
        /* 0: the assignee; 1..n: the admins but the assignee */
        v = i == 0 ? (assignee ? to : NULL) : json_array_get(admins, i - 1);
        if (v == NULL
            || (i > 0 && assignee != NULL
                && strcmp(assignee, json_string_value(
                       json_object_get(v, "_id")) ?: "") == 0))
        {
            continue;
        }
        if (ts_job_mail_sla_warning(&job, key, v, id, title, target, due)
            != 0)
        {
            rc = TS_ERR;                /* out of memory */
        } else {
            rc = ts_store_job_insert(s, &job, NULL);
        }
        json_decref(job.payload);
    }
    json_decref(admins);
    return rc;
}


static void
sla_work(ts_store_t *s, job_t *j)
{
    const char        *id = payload_str(j, "ticketId");
    const char        *target = payload_str(j, "target");
    /* a number: a MongoDB server may hand an int64 back as a double
     * (exact for any date in ms) */
    int64_t            due = (int64_t) json_number_value(json_object_get(
                                 j->job.payload, "due"));
    int                warn = strcmp(j->job.kind, "sla_warn") == 0;
    ts_ticket_keys_t   k;
    json_t            *doc = NULL;

    if (id == NULL || target == NULL) {
        j->rc = TS_NOT_FOUND;
        return;
    }
    j->rc = ts_store_ticket_get(s, id, 0, warn ? &doc : NULL, &k);
    if (j->rc != TS_OK) {
        return;
    }
    if (!sla_pending(&k, target, due)) {
        j->rc = TS_CONFLICT;            /* met, moved or marked */
    } else if (warn) {
        j->rc = sla_warn_mail(s, doc, id, target, due);
    } else {
        j->rc = ts_store_ticket_sla_breach(s, id, target, due, ts_now_ms());
        if (j->rc == TS_OK) {
            j->event = json_pack("{s:s}", "ticketId", id);
        }
    }
    json_decref(doc);
}


static void
sla_done(job_t *j)
{
    if (j->rc == TS_OK) {
        if (j->event != NULL) {
            emit_ticket_updated(payload_str(j, "ticketId"), j->event);
        } else {
            job_runner_wake();           /* the warning emails are due */
        }
        finish_ok(j);
    } else if (j->rc == TS_CONFLICT || j->rc == TS_NOT_FOUND) {
        finish_ok(j);                    /* nothing (more) to do */
    } else {
        finish_fail(j);
    }
}


void
sla_start(job_t *j)
{
    store_step(j, sla_work, sla_done);
}

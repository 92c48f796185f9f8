/*
 * job_assign: the "assign" and "stats" job kinds (see job_runner.h).  Both
 * are one store step each, idempotent in the store; an assignment sends
 * ticket_access_changed and ticket_updated.
 */

#include <stdio.h>

#include "job_runner_internal.h"
#include "ts_jobs.h"
#include "ts_store.h"

/* --- assignment and stats ------------------------------------------------- */

void
assign_work(ts_store_t *s, job_t *j)
{
    /* a hand-back's job keeps who handed it back out (ts_job_reassign) */
    j->rc = ts_store_ticket_assign(s, payload_str(j, "ticketId"),
                                   json_object_get(j->job.payload, "exclude"),
                                   &jr.cfg.assign, ts_job_mail_assigned,
                                   ts_now_ms(), &j->event);
}


void
assign_done(job_t *j)
{
    if (j->rc == TS_OK) {
        const char *to = json_string_value(json_object_get(
                             json_object_get(j->event, "assignedTo"), "_id"));

        emit_ticket_access_changed(payload_str(j, "ticketId"));
        if (to != NULL) {
            emit_ticket_assigned(payload_str(j, "ticketId"), to);
        }
        emit_ticket_updated(payload_str(j, "ticketId"), j->event);
        job_runner_wake();       /* the "Ticket Assigned" mail is due */
        finish_ok(j);
    } else if (j->rc == TS_CONFLICT) {
        finish_ok(j);            /* assigned already, by hand or before */
    } else {
        j->permanent = j->rc == TS_NOT_FOUND;
        if (j->permanent) {
            snprintf(j->err, sizeof(j->err), "ticket not found");
        }
        finish_fail(j);
    }
}


void
stats_work(ts_store_t *s, job_t *j)
{
    j->rc = ts_store_ticket_stats(s, payload_str(j, "ticketId"),
                                  payload_str(j, "moderatorId"),
                                  json_number_value(json_object_get(
                                      j->job.payload, "hours")),
                                  &j->counted);
}


void
stats_done(job_t *j)
{
    if (j->rc == TS_OK) {
        finish_ok(j);
    } else {
        finish_fail(j);
    }
}

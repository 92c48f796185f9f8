/*
 * ts_svc_sla: the SLA's route (issue 15 item 3).
 *
 * PATCH /api/tickets/:id/priority {priority}: an admin or the assigned
 * moderator changes a ticket's priority; its SLA dates move with it
 * (ts_sla_dates from its createdAt and this process's ticket_sla), and
 * the warning and breach jobs of the new dates are stored in the same
 * write.  The jobs of the old dates stay stored and do nothing when they
 * run: the ticket no longer holds their date (job_sla.c).  A breach
 * already marked stays marked.
 *
 * The dates are shown to staff only, as "sla" on tickets (the stores
 * write it; the ticket routes drop it for requesters), so the
 * ticket_updated event here carries the new priority alone.
 */

#include <stdio.h>
#include <string.h>

#include "ts_api_internal.h"
#include "ts_event.h"
#include "ts_jobs.h"
#include "ts_session.h"
#include "ts_sla.h"

static const char *ts_sla_priorities[] = { "Low", "Medium", "High" };


void
ts_svc_ticket_priority(ts_call_t *c)
{
    const char        *id = c->req->match.params[0];
    ts_errmsg_t        err;
    ts_ticket_keys_t   k;
    const char        *s, *priority = NULL;
    size_t             len, i;
    ts_sla_cfg_t       cfg;
    ts_sla_due_t       due;
    ts_job_new_t       jobs[4];
    char               keys[4][TS_JOB_KEY_LEN], room[TS_ROOM_LEN];
    json_t            *doc = NULL;
    int                njobs = 0, p;
    ts_rc_e            rc;

    rc = ts_store_ticket_get(c->store, id, 0, NULL, &k);
    if (rc == TS_NOT_FOUND || (rc == TS_OK && !ts_ticket_visible(&c->me, &k)))
    {
        ts_api_error(c->resp, 404, "Ticket not found");
        return;
    }
    if (rc != TS_OK) {
        ts_reply_store_error(c);
        return;
    }
    if (c->me.role != TS_ROLE_ADMIN && strcmp(k.assigned_to, c->me.id) != 0) {
        ts_api_error(c->resp, 403, "Only an admin or the assigned moderator "
                                   "can change the priority");
        return;
    }
    if (ts_get_string(c->body, "priority", 1, 16, 1, &s, &len, err)) {
        ts_api_error(c->resp, 400, err);
        return;
    }
    for (i = 0; i < 3; i++) {
        if (strlen(ts_sla_priorities[i]) == len
            && memcmp(ts_sla_priorities[i], s, len) == 0)
        {
            priority = ts_sla_priorities[i];
        }
    }
    if (priority == NULL) {
        ts_api_error(c->resp, 400, "priority must be one of Low, Medium, "
                                   "High");
        return;
    }

    /* a host that left the targets unset (all 0) gets the defaults */
    if (c->cfg->sla.resolution_ms[0] > 0) {
        cfg = c->cfg->sla;
    } else {
        ts_sla_cfg_default(&cfg);
    }
    p = ts_sla_priority(priority);
    ts_sla_dates(&cfg, p, k.created_at, &due);
    njobs = ts_job_sla(jobs, keys, id, &due);
    if (njobs < 0) {
        ts_reply_store_error(c);
        return;
    }
    rc = ts_store_ticket_set_priority(c->store, id, priority, c->me.id, &due,
                                      c->now, jobs, (size_t) njobs);
    for (i = 0; i < (size_t) njobs; i++) {
        json_decref(jobs[i].payload);
    }
    if (rc == TS_OK) {
        rc = ts_store_ticket_get(c->store, id, 0, &doc, NULL);
    }
    if (rc == TS_NOT_FOUND) {
        ts_api_error(c->resp, 404, "Ticket not found");
        return;
    }
    if (rc != TS_OK) {
        ts_reply_store_error(c);
        return;
    }
    c->resp->job_stored = njobs > 0;
    ts_reply(c, 200, json_pack("{s:s, s:o}", "message", "Priority updated",
                               "ticket", doc));
    ts_emit(c, "ticket_updated", ts_room_name(id, room),
            json_pack("{s:s, s:s}", "ticketId", id, "priority", priority));
}

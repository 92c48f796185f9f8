/*
 * ts_svc_assignee: assignment by hand and hand-back (issue 15 item 1).
 *
 *   PATCH /api/tickets/:id/assignee  {"assignedTo": "<user id>" | null}
 *
 * Admins may point a ticket at any moderator or admin, or hand it back
 * (null); the assigned moderator may only hand it back.  A ticket assigned
 * by hand carries the manual marker (assignedBy) and the assignment job
 * never replaces it; a ticket handed back goes through the assignment job
 * again with the person it was taken from left out (ts_job_reassign).
 * Every change is one compare-and-set on the assignee read here (another
 * change in between: 409), stored with its job (the "Ticket Assigned"
 * mail, or the assignment job), then pushed: ticket_access_changed (the
 * former assignee loses sight of it at once, sockets too) and
 * ticket_updated to the ticket's room.
 *
 * ts_svc_handback_events() is shared with the demotion in ts_svc_auth.c.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_api_internal.h"
#include "ts_event.h"
#include "ts_jobs.h"
#include "ts_session.h"

#define TS_MSG_NO_TICKET  "Ticket not found"


/* The pushes after a ticket's assignee changed: the rights event first,
 * so a former assignee's sockets leave the room before the update. */
static void
ts_assignee_events(ts_call_t *c, const char *id, json_t *who,
    const char *status)
{
    char  room[TS_ROOM_LEN];

    ts_emit(c, TS_EV_TICKET_ACCESS_CHANGED, NULL,
            ts_rights_ticket_access_changed(id));
    ts_emit(c, "ticket_updated", ts_room_name(id, room),
            json_pack("{s:s, s:O, s:s}", "ticketId", id, "assignedTo", who,
                      "status", status));
    if (json_is_string(json_object_get(who, "_id"))) {
        /* the new assignee's list follows (their sockets only) */
        ts_emit(c, TS_EV_TICKET_ASSIGNED, NULL,
                json_pack("{s:s, s:O}", "ticketId", id, "userId",
                          json_object_get(who, "_id")));
    }
}


void
ts_svc_handback_events(ts_call_t *c, json_t *handed)
{
    json_t  *v;
    size_t   i;

    json_array_foreach(handed, i, v) {
        ts_assignee_events(c,
                           json_string_value(json_object_get(v, "ticketId")),
                           json_null(),
                           json_string_value(json_object_get(v, "status")));
    }
}


void
ts_svc_ticket_assignee(ts_call_t *c)
{
    const char        *id = c->req->match.params[0];
    ts_errmsg_t        err;
    ts_ticket_keys_t   k;
    ts_user_t          to;
    ts_job_new_t       job;
    const char        *to_id;
    char               key[TS_JOB_KEY_LEN];
    json_t            *doc = NULL, *assignment = NULL, *who;
    json_t            *email, *name;
    size_t             njobs = 0;
    int                admin, mine, r;
    ts_rc_e            rc;

    memset(&to, 0, sizeof(to));
    memset(&job, 0, sizeof(job));

    rc = ts_store_ticket_get(c->store, id, 0, &doc, &k);
    if (rc == TS_OK && !ts_ticket_visible(&c->me, &k)) {
        rc = TS_NOT_FOUND;
    }
    if (rc == TS_NOT_FOUND) {
        ts_api_error(c->resp, 404, TS_MSG_NO_TICKET);
        goto done;
    }
    if (rc != TS_OK) {
        ts_reply_store_error(c);
        goto done;
    }

    admin = c->me.role == TS_ROLE_ADMIN;
    mine = k.assigned_to[0] && strcmp(k.assigned_to, c->me.id) == 0;
    if (!admin && !mine) {
        ts_api_error(c->resp, 403, "Only an admin or the assigned moderator "
                                   "can change the assignee");
        goto done;
    }
    r = ts_get_user_id_or_null(c->body, "assignedTo", &to_id, err);
    if (r < 0) {
        ts_api_error(c->resp, 400, err);
        goto done;
    }
    if (to_id != NULL && !admin) {
        ts_api_error(c->resp, 403, "The assigned moderator can only hand "
                                   "the ticket back (assignedTo: null)");
        goto done;
    }

    if (to_id == NULL) {
        if (k.assigned_to[0] == '\0') {
            ts_api_error(c->resp, 400, "The ticket is not assigned to "
                                       "anyone");
            goto done;
        }
        /* back through the assignment job, without the one it left */
        if (strcmp(k.status, "Completed") != 0) {
            if (ts_job_reassign(&job, key, id, k.assigned_to, c->now) != 0) {
                ts_reply_store_error(c);
                goto done;
            }
            njobs = 1;
        }
    } else {
        rc = ts_store_user_by_id(c->store, to_id, &to);
        if (rc == TS_NOT_FOUND || (rc == TS_OK && to.role == TS_ROLE_USER)) {
            ts_api_error(c->resp, 400, "assignedTo must be a moderator or "
                                       "an admin");
            goto done;
        }
        if (rc != TS_OK) {
            ts_reply_store_error(c);
            goto done;
        }
        if (strcmp(k.assigned_to, to.id) == 0) {
            /* nothing changes: no mail, no event */
            json_object_del(doc, "assignment");
            ts_reply(c, 200, json_pack("{s:s, s:O}", "message",
                                       "Assignee unchanged", "ticket", doc));
            goto done;
        }
        assignment = json_pack("{s:b, s:o, s:o}", "manual", 1,
                               "assignedBy", ts_user_ref_json(&c->me),
                               "at", ts_iso_json(c->now));
        email = json_string(to.email);
        name = json_string(to.username);
        r = assignment && email && name
            ? ts_job_mail_assigned(&job, email, name, id,
                                   json_string_value(json_object_get(doc,
                                                                "title")))
            : -1;
        json_decref(email);
        json_decref(name);
        if (r != 0) {
            ts_reply_store_error(c);
            goto done;
        }
        njobs = 1;
    }

    /* history: assignment (by hand, or handed back) */
    rc = ts_store_ticket_set_assignee(c->store, id, k.assigned_to,
                                      to_id ? to.id : NULL, c->me.id,
                                      assignment, c->now, &job, njobs);
    if (rc == TS_CONFLICT) {
        ts_api_error(c->resp, 409, "The ticket's assignee changed "
                                   "meanwhile; reload it and try again");
        goto done;
    }
    json_decref(doc);
    doc = NULL;
    if (rc == TS_OK) {
        rc = ts_store_ticket_get(c->store, id, 0, &doc, &k);
    }
    if (rc == TS_NOT_FOUND) {
        ts_api_error(c->resp, 404, TS_MSG_NO_TICKET);
        goto done;
    }
    if (rc != TS_OK) {
        ts_reply_store_error(c);
        goto done;
    }
    c->resp->job_stored = njobs > 0;
    who = json_object_get(doc, "assignedTo");
    ts_assignee_events(c, id, who ? who : json_null(), k.status);
    if (!admin) {
        /* a moderator who handed it back no longer sees its staff parts */
        json_object_del(doc, "assignment");
        json_object_del(doc, "triage");
    }
    ts_reply(c, 200, json_pack("{s:s, s:O}", "message",
                               to_id ? "Ticket assigned"
                                     : "Ticket handed back",
                               "ticket", doc));

done:
    json_decref(job.payload);
    json_decref(assignment);
    json_decref(doc);
    ts_user_clear(&to);
}

/*
 * ts_svc_history: GET /api/tickets/:id/history, a ticket's history.
 *
 * Same visibility as the ticket (ts_ticket_visible: 404 to anyone else).
 * Staff-only by default (DESIGN section 7): a requester (role user) gets
 * no staffOnly entry and no assignment explanation; staff get everything.
 * The entries are written by the store with each change (ts_store.h,
 * "ticket history").
 */

#include <string.h>

#include "ts_api_internal.h"
#include "ts_session.h"


void
ts_svc_ticket_history(ts_call_t *c)
{
    const char        *id = c->req->match.params[0];
    ts_ticket_keys_t   k;
    json_t            *hist = NULL, *e, *keep;
    size_t             i;
    ts_rc_e            rc;

    rc = ts_store_ticket_get(c->store, id, 0, NULL, &k);
    if (rc == TS_OK && !ts_ticket_visible(&c->me, &k)) {
        rc = TS_NOT_FOUND;
    }
    if (rc == TS_OK) {
        rc = ts_store_ticket_history(c->store, id, &hist);
    }
    if (rc == TS_NOT_FOUND) {
        ts_api_error(c->resp, 404, "Ticket not found");
        return;
    }
    if (rc != TS_OK) {
        ts_reply_store_error(c);
        return;
    }

    if (c->me.role == TS_ROLE_USER) {
        keep = json_array();
        json_array_foreach(hist, i, e) {
            if (json_is_true(json_object_get(e, "staffOnly"))) {
                continue;
            }
            json_object_del(e, "explanation");
            json_array_append(keep, e);
        }
        json_decref(hist);
        hist = keep;
    }
    ts_reply(c, 200, json_pack("{s:o}", "history", hist));
}

/*
 * ts_svc_canned: the staff's canned responses,
 * GET/POST /api/canned-responses, PATCH/DELETE /api/canned-responses/:id.
 *
 * Staff only: a plain user gets 403 on every route.  They are shared by
 * the whole team -- every moderator and admin lists and inserts all of
 * them -- and edited or deleted by their owner or an admin (403 for other
 * moderators).  {title, body}: trimmed, title 1..100 and body 1..5000 code
 * points (ts_get_canned); a bad body changes nothing.
 */

#include <stdlib.h>
#include <string.h>

#include "ts_api_internal.h"

#define TS_MSG_NO_CANNED  "Canned response not found"


/* 0 when the caller is staff; otherwise the 403 is made. */
static int
ts_canned_staff(ts_call_t *c)
{
    if (c->me.role == TS_ROLE_USER) {
        ts_api_error(c->resp, 403, "Access denied: staff only");
        return -1;
    }
    return 0;
}


/* The response named by :id if the caller may change it; 0, else the
 * reply (404, 403, 500) is made. */
static int
ts_canned_mine(ts_call_t *c, const char *id)
{
    ts_oid_t  owner;
    ts_rc_e   rc;

    rc = ts_store_canned_get(c->store, id, NULL, owner);
    if (rc == TS_NOT_FOUND) {
        ts_api_error(c->resp, 404, TS_MSG_NO_CANNED);
        return -1;
    }
    if (rc != TS_OK) {
        ts_reply_store_error(c);
        return -1;
    }
    if (c->me.role != TS_ROLE_ADMIN && strcmp(owner, c->me.id) != 0) {
        ts_api_error(c->resp, 403, "Only its owner or an admin can change "
                                   "a canned response");
        return -1;
    }
    return 0;
}


/* Reply status with {message, cannedResponse} read back from the store. */
static void
ts_canned_reply(ts_call_t *c, int status, const char *message,
    const char *id)
{
    json_t  *doc = NULL;

    if (ts_store_canned_get(c->store, id, &doc, NULL) != TS_OK) {
        ts_reply_store_error(c);
        return;
    }
    ts_reply(c, status, json_pack("{s:s, s:o}", "message", message,
                                  "cannedResponse", doc));
}


void
ts_svc_canned_list(ts_call_t *c)
{
    json_t  *list = NULL;

    if (ts_canned_staff(c) != 0) {
        return;
    }
    if (ts_store_canned_list(c->store, &list) != TS_OK) {
        ts_reply_store_error(c);
        return;
    }
    ts_reply(c, 200, json_pack("{s:o}", "cannedResponses", list));
}


void
ts_svc_canned_create(ts_call_t *c)
{
    ts_errmsg_t   err;
    const char   *title, *body;
    size_t        tlen, blen;
    char         *t, *b;
    ts_oid_t      id;
    ts_rc_e       rc;

    if (ts_canned_staff(c) != 0) {
        return;
    }
    if (ts_get_canned(c->body, 0, &title, &tlen, &body, &blen, err) != 0) {
        ts_api_error(c->resp, 400, err);
        return;
    }
    ts_oid_new(id);
    t = strndup(title, tlen);
    b = strndup(body, blen);
    rc = t && b ? ts_store_canned_create(c->store, id, c->me.id, t, b,
                                         c->now)
                : TS_ERR;
    free(t);
    free(b);
    if (rc != TS_OK) {
        ts_reply_store_error(c);
        return;
    }
    ts_canned_reply(c, 201, "Canned response created", id);
}


void
ts_svc_canned_update(ts_call_t *c)
{
    const char   *id = c->req->match.params[0];
    ts_errmsg_t   err;
    const char   *title, *body;
    size_t        tlen, blen;
    char         *t = NULL, *b = NULL;
    ts_rc_e       rc;

    if (ts_canned_staff(c) != 0 || ts_canned_mine(c, id) != 0) {
        return;
    }
    if (ts_get_canned(c->body, 1, &title, &tlen, &body, &blen, err) != 0) {
        ts_api_error(c->resp, 400, err);
        return;
    }
    t = title ? strndup(title, tlen) : NULL;
    b = body ? strndup(body, blen) : NULL;
    rc = (title && t == NULL) || (body && b == NULL)
         ? TS_ERR : ts_store_canned_update(c->store, id, t, b, c->now);
    free(t);
    free(b);
    if (rc == TS_NOT_FOUND) {
        ts_api_error(c->resp, 404, TS_MSG_NO_CANNED);
        return;
    }
    if (rc != TS_OK) {
        ts_reply_store_error(c);
        return;
    }
    ts_canned_reply(c, 200, "Canned response updated", id);
}


void
ts_svc_canned_delete(ts_call_t *c)
{
    const char  *id = c->req->match.params[0];
    ts_rc_e      rc;

    if (ts_canned_staff(c) != 0 || ts_canned_mine(c, id) != 0) {
        return;
    }
    rc = ts_store_canned_delete(c->store, id);
    if (rc == TS_NOT_FOUND) {
        ts_api_error(c->resp, 404, TS_MSG_NO_CANNED);
        return;
    }
    if (rc != TS_OK) {
        ts_reply_store_error(c);
        return;
    }
    ts_reply(c, 200, json_pack("{s:s}", "message",
                               "Canned response deleted"));
}

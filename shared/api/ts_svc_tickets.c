/*
 * ts_svc_tickets: tickets, comments and analytics routes.
 *
 * Visibility is one rule, ts_ticket_visible(): the creator, the assignee
 * and admins see a ticket; to anyone else it does not exist (404, the same
 * answer as a malformed or unknown id), so ids cannot be probed.  What
 * is for staff (ts_reader_view): the triage's helpfulNotes and
 * provenance and the assignment explanation go to moderators and admins
 * (a plain user never reads them); internal notes go to the staff on
 * the ticket only, ts_ticket_staff() (admins, the assigned moderator) --
 * never to its requester, whatever their role -- and the events carrying
 * them are staff-only.
 *
 * A write may carry a precondition, "expectedUpdatedAt" in the body or
 * the If-Unmodified-Since header: the store compares it with the
 * ticket's updatedAt in the same write, and a ticket changed meanwhile
 * is answered 409 {message, ticket} with the ticket as it is now.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_api_internal.h"
#include "ts_event.h"
#include "ts_jobs.h"
#include "ts_session.h"

#define TS_MSG_NO_TICKET   "Ticket not found"
#define TS_MSG_STALE       "The ticket changed since you loaded it; reload " \
                           "it and try again"

static const char *ts_statuses[] = { "To-Do", "In Progress", "Completed" };
static const char *ts_priorities[] = { "Low", "Medium", "High" };


/* The canonical spelling of s if it is one of n names, else NULL. */
static const char *
ts_enum(const char *s, size_t len, const char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) {
            return names[i];
        }
    }
    return NULL;
}


/* Drop the internal notes from an array of comments. */
static void
ts_drop_internal(json_t *comments)
{
    size_t  i = 0;

    while (i < json_array_size(comments)) {
        if (json_is_true(json_object_get(json_array_get(comments, i),
                                         "internal")))
        {
            json_array_remove(comments, i);
        } else {
            i++;
        }
    }
}


/* A ticket document as its reader may see it: without what is for
 * staff. */
static void
ts_reader_view(ts_call_t *c, json_t *doc, const ts_ticket_keys_t *k)
{
    if (c->me.role == TS_ROLE_USER) {
        /* the assignment explanation, the triage's notes and provenance
         * (provider, model, fallback, the provider's error text) */
        json_object_del(doc, "assignment");
        json_object_del(doc, "triage");
        json_object_del(doc, "helpfulNotes");
        json_object_del(doc, "sla");            /* staff-only */
    }
    if (!ts_ticket_staff(&c->me, k)) {
        ts_drop_internal(json_object_get(doc, "comments"));
    }
}


/* The caller's precondition (ms, 0: none): "expectedUpdatedAt" in the
 * body, else If-Unmodified-Since; -1 after a 400 reply. */
static int
ts_precondition(ts_call_t *c, int64_t *since)
{
    ts_errmsg_t  err;
    int          rc;

    rc = ts_get_time_opt(c->body, "expectedUpdatedAt", since, err);
    if (rc < 0) {
        ts_api_error(c->resp, 400, err);
        return -1;
    }
    if (rc == 1) {
        *since = c->req->if_unmodified_since;
    }
    return 0;
}


/* 409 {error, message, ticket}: the ticket changed after the caller's
 * precondition; the ticket as it is now, as the caller may see it. */
static void
ts_reply_stale(ts_call_t *c, const char *id)
{
    ts_ticket_keys_t  k;
    json_t           *doc = NULL;
    ts_rc_e           rc;

    rc = ts_store_ticket_get(c->store, id, 1, &doc, &k);
    if (rc == TS_NOT_FOUND) {
        ts_api_error(c->resp, 404, TS_MSG_NO_TICKET);
        return;
    }
    if (rc != TS_OK) {
        ts_reply_store_error(c);
        return;
    }
    ts_reader_view(c, doc, &k);
    ts_reply(c, 409, json_pack("{s:s, s:s, s:o}", "error", TS_MSG_STALE,
                               "message", TS_MSG_STALE, "ticket", doc));
}


/*
 * Load the ticket named by the route's :id if the caller may see it; on
 * any other outcome the reply is already made and -1 returned.
 */
static int
ts_load_ticket(ts_call_t *c, int with_comments, json_t **doc,
    ts_ticket_keys_t *k)
{
    ts_rc_e  rc;

    rc = ts_store_ticket_get(c->store, c->req->match.params[0],
                             with_comments, doc, k);
    if (rc == TS_OK && !ts_ticket_visible(&c->me, k)) {
        if (doc) {
            json_decref(*doc);
            *doc = NULL;
        }
        rc = TS_NOT_FOUND;
    }
    if (rc == TS_NOT_FOUND) {
        ts_api_error(c->resp, 404, TS_MSG_NO_TICKET);
        return -1;
    }
    if (rc != TS_OK) {
        ts_reply_store_error(c);
        return -1;
    }
    if (doc) {
        ts_reader_view(c, *doc, k);
    }
    return 0;
}


void
ts_svc_ticket_create(ts_call_t *c)
{
    ts_errmsg_t    err;
    const char    *title, *desc;
    size_t         tlen, dlen;
    char          *t = NULL, *d = NULL, key[TS_JOB_KEY_LEN];
    ts_oid_t       id;
    ts_job_new_t   job;
    json_t        *doc = NULL;
    ts_rc_e        rc;

    if (ts_get_string(c->body, "title", 1, 200, 1, &title, &tlen, err)
        || ts_get_string(c->body, "description", 1, 10000, 1, &desc, &dlen,
                         err))
    {
        ts_api_error(c->resp, 400, err);
        return;
    }

    ts_oid_new(id);
    ts_job_triage(&job, key, id);

    t = strndup(title, tlen);
    d = strndup(desc, dlen);
    rc = (t && d && job.payload)
         ? ts_store_ticket_create(c->store, id, t, d, c->me.id, c->now, &job,
                                  1)
         : TS_ERR;
    if (rc == TS_OK) {
        rc = ts_store_ticket_get(c->store, id, 0, &doc, NULL);
    }
    if (rc != TS_OK) {
        ts_reply_store_error(c);
    } else {
        json_object_del(doc, "assignment");
        if (c->me.role == TS_ROLE_USER) {
            json_object_del(doc, "triage");
            json_object_del(doc, "helpfulNotes");
            json_object_del(doc, "sla");
        }
        c->resp->job_stored = 1;
        ts_reply(c, 201, json_pack("{s:s, s:o}", "message",
                                   "Ticket created and processing started",
                                   "ticket", doc));
    }
    json_decref(job.payload);
    free(t);
    free(d);
}


void
ts_svc_ticket_list(ts_call_t *c)
{
    const ts_request_t  *req = c->req;
    ts_ticket_query_t    q;
    char                 v[1024];
    int64_t              page = 1, limit = 10, total = 0;
    char                *search = NULL;
    ts_jw_t              w;
    int                  rc;

    memset(&q, 0, sizeof(q));

    rc = ts_query_get(req->query, req->query_len, "page", v, sizeof(v));
    if (rc < 0 || (rc == 1 && ts_query_int(v, 1, 1000000000, &page) != 0)) {
        ts_api_error(c->resp, 400, "page must be an integer of 1 or more");
        return;
    }
    rc = ts_query_get(req->query, req->query_len, "limit", v, sizeof(v));
    if (rc < 0 || (rc == 1 && ts_query_int(v, 1, 100, &limit) != 0)) {
        ts_api_error(c->resp, 400, "limit must be an integer from 1 to 100");
        return;
    }
    rc = ts_query_get(req->query, req->query_len, "status", v, sizeof(v));
    if (rc < 0 || (rc == 1 && (q.status = ts_enum(v, strlen(v), ts_statuses,
                                                  3)) == NULL))
    {
        ts_api_error(c->resp, 400, "status must be one of To-Do, "
                                   "In Progress, Completed");
        return;
    }
    rc = ts_query_get(req->query, req->query_len, "priority", v, sizeof(v));
    if (rc < 0 || (rc == 1 && (q.priority = ts_enum(v, strlen(v),
                                                    ts_priorities, 3))
                              == NULL))
    {
        ts_api_error(c->resp, 400, "priority must be one of Low, Medium, "
                                   "High");
        return;
    }
    /* sla=breached|due_soon: staff's question, as the "sla" object */
    rc = ts_query_get(req->query, req->query_len, "sla", v, sizeof(v));
    if (rc < 0 || (rc == 1 && strcmp(v, "breached") != 0
                   && strcmp(v, "due_soon") != 0))
    {
        ts_api_error(c->resp, 400, "sla must be breached or due_soon");
        return;
    }
    if (rc == 1 && c->me.role == TS_ROLE_USER) {
        ts_api_error(c->resp, 403, "Only staff can filter by SLA");
        return;
    }
    q.sla = rc == 1 ? (strcmp(v, "breached") == 0 ? "breached" : "due_soon")
                    : NULL;
    q.now = c->now;

    rc = ts_query_get(req->query, req->query_len, "search", v, sizeof(v));
    if (rc < 0 || (rc == 1 && (!ts_valid_utf8(v, strlen(v))
                               || ts_utf8_len(v, strlen(v)) > 200)))
    {
        ts_api_error(c->resp, 400, "search must be text of at most 200 "
                                   "characters");
        return;
    }
    if (rc == 1 && v[0] != '\0') {
        search = strdup(v);
        if (search == NULL) {
            ts_reply_store_error(c);
            return;
        }
    }

    q.scope = c->me.role == TS_ROLE_ADMIN ? TS_SCOPE_ALL
              : c->me.role == TS_ROLE_MODERATOR ? TS_SCOPE_MODERATOR
              : TS_SCOPE_CREATOR;
    q.user_id = c->me.id;
    q.search = search;
    q.limit = limit;
    q.offset = (page - 1) * limit;

    /* the hot route: written as text, not built as a jansson tree */
    ts_jw_init(&w, 4096);
    TS_JW_LIT(&w, "{\"tickets\":");
    if (ts_store_ticket_list(c->store, &q, &w, &total) != TS_OK) {
        ts_jw_free(&w);
        ts_reply_store_error(c);
    } else {
        TS_JW_LIT(&w, ",\"pagination\":{\"total\":");
        ts_jw_int(&w, total);
        TS_JW_LIT(&w, ",\"page\":");
        ts_jw_int(&w, page);
        TS_JW_LIT(&w, ",\"pages\":");
        ts_jw_int(&w, (total + limit - 1) / limit);
        TS_JW_LIT(&w, ",\"limit\":");
        ts_jw_int(&w, limit);
        TS_JW_LIT(&w, "}}");
        ts_reply_text(c, 200, &w);
    }
    free(search);
}


void
ts_svc_ticket_get(ts_call_t *c)
{
    ts_ticket_keys_t  k;
    json_t           *doc;

    if (ts_load_ticket(c, 1, &doc, &k) == 0) {
        ts_reply(c, 200, json_pack("{s:o}", "ticket", doc));
    }
}


void
ts_svc_ticket_status(ts_call_t *c)
{
    const char        *id = c->req->match.params[0];
    ts_errmsg_t        err;
    ts_ticket_keys_t   k;
    const char        *s, *status;
    size_t             len;
    ts_job_new_t       job;
    size_t             njobs = 0;
    char               key[TS_JOB_KEY_LEN], room[TS_ROOM_LEN];
    json_t            *doc = NULL;
    int64_t            since;
    ts_rc_e            rc;

    if (ts_load_ticket(c, 0, NULL, &k) != 0) {
        return;
    }
    if (c->me.role != TS_ROLE_ADMIN && strcmp(k.assigned_to, c->me.id) != 0) {
        ts_api_error(c->resp, 403, "Only an admin or the assigned moderator "
                                   "can change the status");
        return;
    }
    if (ts_get_string(c->body, "status", 1, 32, 1, &s, &len, err)) {
        ts_api_error(c->resp, 400, err);
        return;
    }
    status = ts_enum(s, len, ts_statuses, 3);
    if (status == NULL) {
        ts_api_error(c->resp, 400, "status must be one of To-Do, "
                                   "In Progress, Completed");
        return;
    }
    if (ts_precondition(c, &since) != 0) {
        return;
    }

    memset(&job, 0, sizeof(job));
    if (strcmp(status, "Completed") == 0 && k.assigned_to[0]) {
        ts_job_stats(&job, key, id, k.assigned_to,
                     (double) (c->now - k.created_at) / 3600000.0);
        njobs = 1;
    }

    /* history: status (the store writes it with the change) */
    rc = ts_store_ticket_set_status(c->store, id, status, c->me.id, c->now,
                                    since, &job, njobs);
    json_decref(job.payload);
    if (rc == TS_STALE) {
        ts_reply_stale(c, id);
        return;
    }
    if (rc == TS_OK) {
        rc = ts_store_ticket_get(c->store, id, 0, &doc, &k);
    }
    if (rc == TS_NOT_FOUND) {
        ts_api_error(c->resp, 404, TS_MSG_NO_TICKET);
        return;
    }
    if (rc != TS_OK) {
        ts_reply_store_error(c);
        return;
    }
    c->resp->job_stored = njobs > 0;
    ts_reader_view(c, doc, &k);
    ts_reply(c, 200, json_pack("{s:s, s:o}", "message", "Status updated",
                               "ticket", doc));
    ts_emit(c, "status_updated", ts_room_name(id, room),
            json_pack("{s:s, s:s}", "ticketId", id, "status", status));
}


/* An email job for a new comment to one recipient ({_id, email, ...}). */
static void
ts_comment_job(ts_job_new_t *job, json_t *to, json_t *ticket,
    const ts_user_t *author, const char *text)
{
    char    excerpt[200 * 4 + 1];
    size_t  n;

    /* 200 characters, never a split one: the payload must stay UTF-8 */
    n = ts_utf8_cut(text, strlen(text), 200, sizeof(excerpt) - 1);
    memcpy(excerpt, text, n);
    excerpt[n] = '\0';
    ts_job_mail_comment(job, to, ticket, author->username, excerpt);
}


void
ts_svc_comment_add(ts_call_t *c)
{
    const char        *id = c->req->match.params[0];
    ts_errmsg_t        err;
    ts_ticket_keys_t   k;
    const char        *s;
    size_t             len, njobs = 0, i;
    char              *text = NULL, room[TS_ROOM_LEN];
    json_t            *doc = NULL, *admins = NULL, *v, *ev;
    ts_jw_t            w;
    ts_job_new_t       one, *jobs = &one;
    ts_oid_t           cid;
    ts_comment_new_t   cm;
    int                creator, staff, internal;
    ts_rc_e            rc;

    if (ts_load_ticket(c, 0, &doc, &k) != 0) {
        return;
    }
    creator = strcmp(k.created_by, c->me.id) == 0;
    staff = c->me.role == TS_ROLE_ADMIN || strcmp(k.assigned_to, c->me.id)
                                           == 0;
    if (ts_get_bool_opt(c->body, "internal", &internal, err) < 0) {
        ts_api_error(c->resp, 400, err);
        goto done;
    }
    if (internal && !ts_ticket_staff(&c->me, &k)) {
        ts_api_error(c->resp, 403, "Only the assigned moderator or an admin "
                                   "can write internal notes");
        goto done;
    }
    if (!staff && k.comments == 0) {
        ts_api_error(c->resp, 403, "The assigned moderator or an admin "
                                   "starts the conversation");
        goto done;
    }
    if (ts_get_string(c->body, "text", 1, 5000, 1, &s, &len, err)) {
        ts_api_error(c->resp, 400, err);
        goto done;
    }
    memset(&cm, 0, sizeof(cm));
    if (ts_precondition(c, &cm.unmodified_since) != 0) {
        goto done;
    }
    text = strndup(s, len);
    if (text == NULL) {
        ts_reply_store_error(c);
        goto done;
    }

    /* staff write to the creator; the creator to the assignee, or to
     * every admin while nobody is assigned; an internal note is mailed to
     * nobody (the staff on the ticket read it there) */
    if (internal) {
        /* no mail */
    } else if (!creator) {
        ts_comment_job(&jobs[njobs++], json_object_get(doc, "createdBy"),
                       doc, &c->me, text);
    } else if (!staff && k.assigned_to[0]) {
        ts_comment_job(&jobs[njobs++], json_object_get(doc, "assignedTo"),
                       doc, &c->me, text);
    } else if (!staff) {
        /* every admin, however many: one job each */
        if (ts_store_user_list_role(c->store, TS_ROLE_ADMIN, &admins)
            != TS_OK
            || (jobs = calloc(json_array_size(admins) + 1, sizeof(*jobs)))
               == NULL)
        {
            jobs = &one;
            ts_reply_store_error(c);
            goto done;
        }
        json_array_foreach(admins, i, v) {
            ts_comment_job(&jobs[njobs++], v, doc, &c->me, text);
        }
    }

    ts_oid_new(cid);
    cm.id = cid;
    cm.author = c->me.id;
    cm.text = text;
    cm.role = ts_role_name(c->me.role);
    cm.internal = internal;
    /* the first public answer of staff to the requester (the SLA's
     * first response); an internal note is none */
    cm.first_response = !internal && staff && !creator;
    rc = ts_store_comment_add(c->store, id, &cm, c->now,
                              c->cfg->max_comments > 0
                              ? c->cfg->max_comments
                              : TS_MAX_COMMENTS_DEFAULT, jobs, njobs);
    if (rc == TS_CONFLICT) {
        ts_api_error(c->resp, 409, "This ticket has reached its limit of "
                                   "comments");
        goto done;
    }
    if (rc == TS_STALE) {
        ts_reply_stale(c, id);
        goto done;
    }
    ts_jw_init(&w, 4096);
    TS_JW_LIT(&w, "{\"comments\":");
    if (rc == TS_OK) {
        rc = ts_store_comment_list(c->store, id, ts_ticket_staff(&c->me, &k),
                                   &w);
    }
    if (rc != TS_OK) {
        ts_jw_free(&w);
        ts_reply_store_error(c);
        goto done;
    }
    ts_jw_raw(&w, "}", 1);
    c->resp->job_stored = njobs > 0;
    /* the comment as the store keeps it and the thread shows it; an
     * internal note reaches the staff in the room only */
    ev = json_pack("{s:s, s:{s:s, s:o, s:s, s:s, s:o}}", "ticketId", id,
                   "comment", "_id", cid,
                   "author", ts_user_ref_json(&c->me),
                   "text", text, "role", ts_role_name(c->me.role),
                   "createdAt", ts_iso_json(c->now));
    if (internal) {
        json_object_set_new(json_object_get(ev, "comment"), "internal",
                            json_true());
        ts_emit_staff(c, "comment_added", ts_room_name(id, room), ev);
    } else {
        ts_emit(c, "comment_added", ts_room_name(id, room), ev);
    }
    ts_reply_text(c, 200, &w);

done:
    for (i = 0; i < njobs; i++) {
        json_decref(jobs[i].payload);
    }
    if (jobs != &one) {
        free(jobs);
    }
    json_decref(admins);
    json_decref(doc);
    free(text);
}


void
ts_svc_comment_list(ts_call_t *c)
{
    ts_ticket_keys_t  k;
    ts_jw_t           w;

    if (ts_load_ticket(c, 0, NULL, &k) != 0) {
        return;
    }
    ts_jw_init(&w, 4096);
    TS_JW_LIT(&w, "{\"comments\":");
    if (ts_store_comment_list(c->store, c->req->match.params[0],
                              ts_ticket_staff(&c->me, &k), &w)
        != TS_OK)
    {
        ts_jw_free(&w);
        ts_reply_store_error(c);
        return;
    }
    ts_jw_raw(&w, "}", 1);
    ts_reply_text(c, 200, &w);
}


void
ts_svc_analytics(ts_call_t *c)
{
    json_t  *out;

    if (ts_store_analytics(c->store, c->now, &out) != TS_OK) {
        ts_reply_store_error(c);
        return;
    }
    ts_reply(c, 200, out);
}

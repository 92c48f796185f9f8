/*
 * ts_store_mongo_assign: a triaged ticket assigned to a moderator on
 * MongoDB (split from ts_store_mongo_jobs.c, code moved as it was).
 *
 * Assignment without a transaction (concurrent assignments must not pile
 * onto one moderator):
 *   1. read the ticket (must be unassigned), then the candidates with
 *      their lastAssignedAt stamps, then their loads (tickets To-Do/In
 *      Progress assigned to them, this ticket excluded);
 *   2. choose; claim the ticket: {_id, assignedTo: null} -> the choice,
 *      with the "Ticket Assigned" email in its outbox;
 *   3. advance the moderator's stamp with a compare-and-set on the value
 *      read in step 1 (strictly increasing: max(now, newest stamp + 1)).
 * An assignment that loses the compare-and-set raced with another one
 * onto the same moderator: it re-reads (stamps first, then loads -- the
 * winner's ticket was claimed before its stamp moved, so the re-read sees
 * it), chooses again and re-points its ticket (and its email) before
 * trying again.  Two assignments can only both keep a moderator when the
 * later one read the load after the earlier one's ticket was claimed.
 * History: the claim pushes its entries (status To-Do -> In Progress when
 * it moves it, the assignee with the explanation) into the ticket's
 * history outbox in the claiming update; a re-point pulls the previous
 * assignee entry with the previous email.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_store_mongo.h"

#define TS_ASSIGN_TRIES  8


typedef struct {
    json_t          *rows;       /* one object per candidate */
    ts_candidate_t  *cands;      /* borrow from rows */
    size_t           n;
    int64_t          newest;     /* largest lastAssignedAt */
} ts_cands_t;


static void
ts_cands_free(ts_cands_t *c)
{
    json_decref(c->rows);
    free(c->cands);
    memset(c, 0, sizeof(*c));
}


/* Candidates with their stamps, then their loads (ticket id excluded). */
static ts_rc_e
ts_cands_read(ts_mongo_t *m, const char *id, json_t *exclude,
    ts_cands_t *out)
{
    mongoc_cursor_t  *cur;
    const bson_t     *d;
    bson_t           *f, *opts, *pipe, ex = BSON_INITIALIZER;
    bson_oid_t        self;
    bson_error_t      e;
    json_t           *rows = json_array(), *r, *loads = json_object();
    ts_oid_t          hex;
    const char       *status;
    size_t            i;
    int64_t           last;

    memset(out, 0, sizeof(*out));
    f = BCON_NEW("role", "{", "$in", "[", BCON_UTF8("moderator"),
                 BCON_UTF8("admin"), "]", "}");
    opts = BCON_NEW("sort", "{", "createdAt", BCON_INT32(1), "_id",
                    BCON_INT32(1), "}",
                    "projection", "{", "username", BCON_INT32(1),
                    "email", BCON_INT32(1), "skills", BCON_INT32(1),
                    "status", BCON_INT32(1), "totalTicketsResolved",
                    BCON_INT32(1), "averageResolutionTimeHours",
                    BCON_INT32(1), "lastAssignedAt", BCON_INT32(1), "}");
    cur = mongoc_collection_find_with_opts(m->users, f, opts, NULL);
    while (mongoc_cursor_next(cur, &d)) {
        if (ts_mg_get_oid_hex(d, "_id", hex) != 0
            || ts_assign_excluded(exclude, hex))
        {
            continue;           /* a hand-back keeps its giver out */
        }
        status = ts_mg_get_str(d, "status");
        last = ts_mg_get_time(d, "lastAssignedAt");
        if (last > out->newest) {
            out->newest = last;
        }
        r = json_pack("{s:s, s:o, s:o, s:o, s:s, s:I, s:f, s:I, s:b}",
                      "_id", hex,
                      "username", ts_mg_get_json(d, "username"),
                      "email", ts_mg_get_json(d, "email"),
                      "skills", ts_mg_get_str_array(d, "skills"),
                      "status", status ? status : "offline",
                      "resolved", (json_int_t) ts_mg_get_int(d,
                                              "totalTicketsResolved", 0),
                      "avg", ts_mg_get_double(d,
                                              "averageResolutionTimeHours",
                                              24),
                      "last", (json_int_t) last,
                      /* a stamp of null and a missing one differ for $eq */
                      "hasLast", bson_has_field(d, "lastAssignedAt"));
        if (r) {
            json_array_append_new(rows, r);
        }
    }
    bson_destroy(f);
    bson_destroy(opts);
    if (mongoc_cursor_error(cur, &e)) {
        mongoc_cursor_destroy(cur);
        json_decref(rows);
        json_decref(loads);
        return ts_mg_fail(m, "candidates", &e);
    }
    mongoc_cursor_destroy(cur);

    /* loads, read after the stamps (see the top of the file) */
    if (ts_mg_oid(id, &self) == 0) {
        BSON_APPEND_OID(&ex, "$ne", &self);
    }
    pipe = BCON_NEW("pipeline", "[",
                    "{", "$match", "{", "status", "{", "$in", "[",
                    BCON_UTF8("To-Do"), BCON_UTF8("In Progress"), "]", "}",
                    "assignedTo", "{", "$ne", BCON_NULL, "}",
                    "_id", BCON_DOCUMENT(&ex), "}", "}",
                    "{", "$group", "{", "_id", BCON_UTF8("$assignedTo"),
                    "n", "{", "$sum", BCON_INT32(1), "}", "}", "}", "]");
    cur = mongoc_collection_aggregate(m->tickets, MONGOC_QUERY_NONE, pipe,
                                      NULL, NULL);
    while (mongoc_cursor_next(cur, &d)) {
        if (ts_mg_get_oid_hex(d, "_id", hex) == 0) {
            json_object_set_new(loads, hex,
                                json_integer(ts_mg_get_int(d, "n", 0)));
        }
    }
    bson_destroy(pipe);
    bson_destroy(&ex);
    if (mongoc_cursor_error(cur, &e)) {
        mongoc_cursor_destroy(cur);
        json_decref(rows);
        json_decref(loads);
        return ts_mg_fail(m, "loads", &e);
    }
    mongoc_cursor_destroy(cur);

    out->cands = calloc(json_array_size(rows) + 1, sizeof(ts_candidate_t));
    if (out->cands == NULL) {
        json_decref(rows);
        json_decref(loads);
        return ts_store_fail(&m->base, "out of memory");
    }
    json_array_foreach(rows, i, r) {
        ts_candidate_t *c = &out->cands[i];

        c->id = json_string_value(json_object_get(r, "_id"));
        c->username = json_string_value(json_object_get(r, "username"));
        if (c->username == NULL) {
            c->username = "";
        }
        c->skills = json_object_get(r, "skills");
        c->active = json_integer_value(json_object_get(loads, c->id));
        c->total_resolved = json_integer_value(json_object_get(r,
                                                               "resolved"));
        c->avg_resolution_hours = json_real_value(json_object_get(r, "avg"));
        c->last_assigned_at = json_integer_value(json_object_get(r, "last"));
        status = json_string_value(json_object_get(r, "status"));
        if (status == NULL || ts_presence_parse(status, &c->status) != 0) {
            c->status = TS_PRESENCE_OFFLINE;
        }
    }
    json_decref(loads);
    out->rows = rows;
    out->n = json_array_size(rows);
    return TS_OK;
}


/* Move the moderator's stamp from what was read to stamp; *won set when
 * nobody moved it meanwhile. */
static ts_rc_e
ts_stamp_cas(ts_mongo_t *m, json_t *row, int64_t stamp, int *won)
{
    bson_t   f = BSON_INITIALIZER, *u;
    int64_t  matched = 0, last;
    ts_rc_e  rc;

    last = json_integer_value(json_object_get(row, "last"));
    ts_mg_append_oid_hex(&f, "_id",
                         json_string_value(json_object_get(row, "_id")));
    if (last > 0) {
        BSON_APPEND_DATE_TIME(&f, "lastAssignedAt", last);
    } else {
        BSON_APPEND_NULL(&f, "lastAssignedAt");     /* null or missing */
    }
    u = BCON_NEW("$set", "{", "lastAssignedAt", BCON_DATE_TIME(stamp), "}");
    rc = ts_mg_update(m, m->users, &f, u, 0, &matched);
    bson_destroy(u);
    bson_destroy(&f);
    *won = matched > 0;
    return rc;
}


/*
 * Point the ticket at the candidate (claim: filter on what it was
 * pointing at, prev NULL = unassigned), replacing the previous email job
 * (prev_job) in its outbox with job_arr.  *status receives the status.
 */
/* The history a claim pushes: the status entries (when it moves To-Do),
 * then the assignee entry, as one array into out.  Both were built by
 * the caller in that order, so their _ids (the order within one write)
 * follow it. */
static void
ts_assign_hist(bson_t *out, const bson_t *status, const bson_t *assignee)
{
    const bson_t  *parts[2] = { status, assignee };
    bson_iter_t    it;
    char           k[24];
    int            i;

    for (i = 0; i < 2; i++) {
        if (parts[i] && bson_iter_init(&it, parts[i])) {
            while (bson_iter_next(&it)) {
                snprintf(k, sizeof(k), "%u", bson_count_keys(out));
                bson_append_iter(out, k, -1, &it);
            }
        }
    }
}


static ts_rc_e
ts_assign_point(ts_mongo_t *m, const char *id, const char *prev,
    const char *to, json_t *explain, int64_t now, const bson_t *prev_job,
    const bson_t *job_arr, const bson_t *prev_hist, const bson_t *status_arr,
    const bson_t *hist_arr, int *claimed)
{
    bson_t   f, upd, set, pull, hist;
    int64_t  matched = 0;
    ts_rc_e  rc;
    int      pass;

    *claimed = 0;
    /* To-Do moves to In Progress; any other status stays as set */
    for (pass = 0; pass < 2 && !*claimed; pass++) {
        bson_init(&f);
        bson_init(&upd);
        ts_mg_append_oid_hex(&f, "_id", id);
        if (prev) {
            /* re-pointing our own claim: never a hand assignment an
             * admin made meanwhile (assignedBy set) */
            ts_mg_append_oid_hex(&f, "assignedTo", prev);
            BSON_APPEND_NULL(&f, "assignedBy");
        } else {
            BSON_APPEND_NULL(&f, "assignedTo");
        }
        if (pass == 0) {
            BSON_APPEND_UTF8(&f, "status", "To-Do");
        } else {
            bson_t ne;
            BSON_APPEND_DOCUMENT_BEGIN(&f, "status", &ne);
            BSON_APPEND_UTF8(&ne, "$ne", "To-Do");
            bson_append_document_end(&f, &ne);
        }
        BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
        ts_mg_append_oid_hex(&set, "assignedTo", to);
        ts_mg_append_json(&set, "assignment", explain);
        BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
        if (pass == 0) {
            BSON_APPEND_UTF8(&set, "status", "In Progress");
        }
        bson_append_document_end(&upd, &set);
        /* history: the entries ride the claim itself */
        bson_init(&hist);
        ts_assign_hist(&hist, pass == 0 ? status_arr : NULL, hist_arr);
        ts_mg_push_outboxes(&upd, job_arr, &hist);
        /* one update may not $push and $pull one field: pulls after */
        rc = ts_mg_update(m, m->tickets, &f, &upd, 0, &matched);
        bson_destroy(&hist);
        bson_destroy(&f);
        bson_destroy(&upd);
        if (rc != TS_OK) {
            return rc;
        }
        *claimed = matched > 0;
    }
    if (*claimed && prev_job) {
        /* the email for the candidate we moved away from */
        bson_init(&f);
        bson_init(&upd);
        ts_mg_append_oid_hex(&f, "_id", id);
        BSON_APPEND_DOCUMENT_BEGIN(&upd, "$pullAll", &pull);
        BSON_APPEND_ARRAY(&pull, "pendingJobs", prev_job);
        if (prev_hist) {
            /* and the entry naming them */
            BSON_APPEND_ARRAY(&pull, "pendingHistory", prev_hist);
        }
        bson_append_document_end(&upd, &pull);
        rc = ts_mg_update(m, m->tickets, &f, &upd, 0, NULL);
        bson_destroy(&f);
        bson_destroy(&upd);
        return rc;
    }
    return TS_OK;
}


ts_rc_e
ts_mg_ticket_assign(ts_store_t *s, const char *id, json_t *exclude,
    const ts_assign_cfg_t *cfg, ts_assigned_job_fn assigned_job, int64_t now,
    json_t **result)
{
    ts_mongo_t   *m = TS_MG(s);
    bson_t       *d = NULL, jobs_now = BSON_INITIALIZER, *jobs_prev = NULL;
    bson_t       *proj, hist_now = BSON_INITIALIZER, *hist_prev = NULL;
    bson_t        hist_status = BSON_INITIALIZER;
    bson_oid_t    toid;
    json_t       *to_person;
    bson_iter_t   it;
    ts_cands_t    c;
    ts_job_new_t  job;
    json_t       *skills = NULL, *explain = NULL, *row, *who;
    char         *title = NULL, *status = NULL;
    char          prev[TS_OID_LEN + 1] = "";
    int           pick, tries, claimed, won = 0;
    int64_t       stamp;
    ts_rc_e       rc;

    memset(&c, 0, sizeof(c));
    proj = BCON_NEW("assignedTo", BCON_INT32(1), "title", BCON_INT32(1),
                    "relatedSkills", BCON_INT32(1));
    rc = ts_mg_ticket_doc(m, id, proj, &d);
    bson_destroy(proj);
    if (rc != TS_OK) {
        return rc;
    }
    if (bson_iter_init_find(&it, d, "assignedTo")
        && !BSON_ITER_HOLDS_NULL(&it))
    {
        bson_destroy(d);
        return TS_CONFLICT;
    }
    title = strdup(ts_mg_get_str(d, "title") ? ts_mg_get_str(d, "title")
                                             : "");
    skills = ts_mg_get_str_array(d, "relatedSkills");
    bson_destroy(d);

    for (tries = 0; tries < TS_ASSIGN_TRIES; tries++) {
        ts_cands_free(&c);
        json_decref(explain);
        explain = NULL;
        rc = ts_cands_read(m, id, exclude, &c);
        if (rc != TS_OK) {
            goto done;
        }
        pick = ts_assign_choose(cfg, skills, c.cands, c.n, &explain);
        if (explain == NULL) {
            rc = ts_store_fail(s, "out of memory");
            goto done;
        }
        if (exclude != NULL) {
            json_object_set(explain, "excluded", exclude);
        }
        if (pick < 0) {
            if (prev[0]) {
                /* everyone went away while we retried: keep the last
                 * claim (the ticket is assigned) */
                break;
            }
            /* nobody to assign to: keep the explanation, leave it To-Do */
            bson_t f = BSON_INITIALIZER, upd = BSON_INITIALIZER, set;
            ts_mg_append_oid_hex(&f, "_id", id);
            BSON_APPEND_NULL(&f, "assignedTo");
            BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
            ts_mg_append_json(&set, "assignment", explain);
            bson_append_document_end(&upd, &set);
            {
                /* nobody fit: staff see why in the history */
                ts_hist_t h = { TS_HIST_ASSIGNEE, NULL, NULL, NULL, explain,
                                1 };
                ts_mg_history_array(&hist_now, id, &h, 1, now);
                ts_mg_push_outboxes(&upd, NULL, &hist_now);
            }
            rc = ts_mg_update(m, m->tickets, &f, &upd, 0, NULL);
            bson_destroy(&f);
            bson_destroy(&upd);
            if (rc == TS_OK) {
                ts_mg_history_flush(m, id, &hist_now);
            }
            if (rc == TS_OK) {
                *result = json_pack("{s:s, s:n, s:s, s:O}", "ticketId", id,
                                    "assignedTo", "status", "To-Do",
                                    "assignment", explain);
            }
            goto done;
        }

        row = json_array_get(c.rows, pick);
        assigned_job(&job, json_object_get(row, "email"),
                     json_object_get(row, "username"), id, title);
        bson_reinit(&jobs_now);
        ts_mg_jobs_array(&jobs_now, &job, 1, now);
        json_decref(job.payload);
        bson_reinit(&hist_status);
        bson_reinit(&hist_now);
        {
            json_t *from = json_string("To-Do");
            json_t *into = json_string("In Progress");
            ts_hist_t h = { TS_HIST_STATUS, NULL, from, into, NULL, 0 };
            ts_mg_history_array(&hist_status, id, &h, 1, now);
            json_decref(from);
            json_decref(into);
        }
        to_person = json_pack("{s:s, s:s}", "_id", c.cands[pick].id,
                              "username", c.cands[pick].username);
        {
            ts_hist_t h = { TS_HIST_ASSIGNEE, NULL, NULL, to_person, explain,
                            0 };
            ts_mg_history_array(&hist_now, id, &h, 1, now);
        }
        json_decref(to_person);
        rc = ts_assign_point(m, id, prev[0] ? prev : NULL, c.cands[pick].id,
                             explain, now, jobs_prev, &jobs_now, hist_prev,
                             &hist_status, &hist_now, &claimed);
        if (rc != TS_OK) {
            goto done;
        }
        if (!claimed) {
            /* an admin (or an earlier run) assigned it meanwhile */
            /* an admin assigned it by hand meanwhile (or before we
             * came): theirs stands; the email of our earlier claim, still
             * in the ticket's outbox, goes with it */
            if (jobs_prev) {
                bson_t pf = BSON_INITIALIZER, pu = BSON_INITIALIZER, pl;

                ts_mg_append_oid_hex(&pf, "_id", id);
                BSON_APPEND_DOCUMENT_BEGIN(&pu, "$pullAll", &pl);
                BSON_APPEND_ARRAY(&pl, "pendingJobs", jobs_prev);
                bson_append_document_end(&pu, &pl);
                (void) ts_mg_update(m, m->tickets, &pf, &pu, 0, NULL);
                bson_destroy(&pf);
                bson_destroy(&pu);
            }
            rc = TS_CONFLICT;
            goto done;
        }
        snprintf(prev, sizeof(prev), "%s", c.cands[pick].id);
        if (jobs_prev) {
            bson_destroy(jobs_prev);
        }
        jobs_prev = bson_copy(&jobs_now);
        if (hist_prev) {
            bson_destroy(hist_prev);
        }
        hist_prev = bson_copy(&hist_now);

        stamp = c.newest + 1 > now ? c.newest + 1 : now;
        rc = ts_stamp_cas(m, row, stamp, &won);
        if (rc != TS_OK) {
            goto done;
        }
        if (won) {
            break;
        }
        /* another assignment took this moderator meanwhile: re-read */
    }

    /* the ticket is ours, pointing at prev; deliver its email */
    {
        bson_oid_t oid;
        if (jobs_prev && ts_mg_oid(id, &oid) == 0) {
            ts_mg_outbox_flush(m, m->tickets, &oid, jobs_prev);
        }
    }
    /* and its history (the status entry and the last assignee entry) */
    if (ts_mg_oid(id, &toid) == 0) {
        ts_mg_sweep_outbox(m, m->tickets, "pendingHistory", m->history,
                           &toid);
    }
    proj = BCON_NEW("status", BCON_INT32(1), "assignment", BCON_INT32(1));
    rc = ts_mg_ticket_doc(m, id, proj, &d);
    bson_destroy(proj);
    if (rc != TS_OK) {
        goto done;
    }
    status = strdup(ts_mg_get_str(d, "status") ? ts_mg_get_str(d, "status")
                                               : "In Progress");
    bson_destroy(d);
    who = NULL;
    {
        size_t  i;
        json_t *r;

        json_array_foreach(c.rows, i, r) {
            if (strcmp(json_string_value(json_object_get(r, "_id")), prev)
                == 0)
            {
                who = json_pack("{s:s, s:O, s:O, s:O}", "_id", prev,
                                "email", json_object_get(r, "email"),
                                "username", json_object_get(r, "username"),
                                "status", json_object_get(r, "status"));
                break;
            }
        }
    }
    if (who == NULL) {
        who = json_pack("{s:s}", "_id", prev);
    }
    *result = json_pack("{s:s, s:o, s:s, s:O}", "ticketId", id,
                        "assignedTo", who, "status", status,
                        "assignment", explain);
    rc = *result ? TS_OK : ts_store_fail(s, "out of memory");

done:
    ts_cands_free(&c);
    json_decref(explain);
    json_decref(skills);
    if (jobs_prev) {
        bson_destroy(jobs_prev);
    }
    if (hist_prev) {
        bson_destroy(hist_prev);
    }
    bson_destroy(&jobs_now);
    bson_destroy(&hist_now);
    bson_destroy(&hist_status);
    free(title);
    free(status);
    return rc;
}

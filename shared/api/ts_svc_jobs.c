/*
 * ts_svc_jobs: the admins' view of background work -- jobs by state with
 * their attempts and last error, and a retry for dead ones.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_api_internal.h"

static const char *ts_job_states[] = { "pending", "running", "done", "dead" };


void
ts_svc_job_list(ts_call_t *c)
{
    char          v[32];
    const char   *state = NULL;
    json_t       *jobs, *job, *p;
    int64_t       limit = 100;
    int           rc, i;
    size_t        k;

    rc = ts_query_get(c->req->query, c->req->query_len, "state", v,
                      sizeof(v));
    if (rc == 1 && v[0] != '\0') {
        for (i = 0; i < 4; i++) {
            if (strcmp(v, ts_job_states[i]) == 0) {
                state = ts_job_states[i];
            }
        }
    }
    if (rc < 0 || (rc == 1 && v[0] != '\0' && state == NULL)) {
        ts_api_error(c->resp, 400, "state must be one of pending, running, "
                                   "done, dead");
        return;
    }
    rc = ts_query_get(c->req->query, c->req->query_len, "limit", v,
                      sizeof(v));
    /* the ticket list's strict integers: "+5" or " 5" is no number */
    if (rc < 0 || (rc == 1 && ts_query_int(v, 1, 500, &limit) != 0)) {
        ts_api_error(c->resp, 400, "limit must be an integer from 1 to 500");
        return;
    }

    if (ts_store_job_list(c->store, state, limit, &jobs) != TS_OK) {
        ts_reply_store_error(c);
        return;
    }
    /* a reset mail's token is a secret even from admins */
    json_array_foreach(jobs, k, job) {
        p = ts_job_payload_redact(json_object_get(job, "payload"));
        if (p != NULL) {
            json_object_set_new(job, "payload", p);
        }
    }
    ts_reply(c, 200, json_pack("{s:o}", "jobs", jobs));
}


void
ts_svc_job_retry(ts_call_t *c)
{
    ts_rc_e  rc = ts_store_job_retry(c->store, c->req->match.params[0],
                                     c->now);

    if (rc == TS_NOT_FOUND) {
        ts_api_error(c->resp, 404, "Job not found");
    } else if (rc == TS_CONFLICT) {
        ts_api_error(c->resp, 400, "Only dead jobs can be retried");
    } else if (rc != TS_OK) {
        ts_reply_store_error(c);
    } else {
        c->resp->job_stored = 1;
        ts_reply(c, 200, json_pack("{s:s, s:s}", "message",
                                   "Job queued again", "jobId",
                                   c->req->match.params[0]));
    }
}

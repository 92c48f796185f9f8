/*
 * job_triage: the "triage" job kind (see job_runner.h).  Reads the
 * ticket's text, triages it offline or through the AI provider (calls
 * queue for one of ai_concurrency slots; a provider's last failure falls
 * back to offline triage), stores the result with the ticket's "assign"
 * job in one step, then sends ticket_updated.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "job_runner_internal.h"
#include "log.h"
#include "ts_jobs.h"
#include "ts_store.h"
#include "ts_triage.h"
#include "ts_validate.h"

static void triage_store(job_t *j);
static void ai_next(void);


/* --- triage --------------------------------------------------------------- */

void
triage_read_work(ts_store_t *s, job_t *j)
{
    j->rc = ts_store_ticket_text(s, payload_str(j, "ticketId"), &j->title,
                                 &j->description, &j->triaged,
                                 &j->created_at);
}


static void
triage_offline(job_t *j, int fallback)
{
    ts_triage_clear(&j->result);
    ts_triage_offline(j->title, j->description, &j->result);
    j->provider = "offline";
    j->fallback = fallback;
    if (fallback) {
        metrics_triage_fallback(jr.cfg.provider);
    }
    metrics_triage("offline", job_seconds(j));
    triage_store(j);
}


static void
ai_release(void)
{
    jr.ai_in_flight--;
    ai_next();
}


static void
ai_done(const http_result_t *res, void *arg)
{
    job_t  *j = arg;
    char    err[200];
    int     ok, retryable;

    ai_release();
    if (jr.stopping) {
        snprintf(j->err, sizeof(j->err), "stopping");
        slot_free(j);            /* the lease expires; a later run retries */
        return;
    }

    err[0] = '\0';
    ok = 0;
    retryable = 1;
    if (res->error != NULL) {
        snprintf(err, sizeof(err), "%s", res->error);
    } else if (res->status < 200 || res->status > 299) {
        char         why[160];
        ts_triage_t  unused;

        /* the provider's own error message, if its body has one */
        why[0] = '\0';
        memset(&unused, 0, sizeof(unused));
        if (res->body_len > 0
            && (strcmp(jr.cfg.provider, "gemini") == 0
                ? ts_triage_parse_gemini(res->body, res->body_len, &unused,
                                         why, sizeof(why))
                : ts_triage_parse_openai(res->body, res->body_len, &unused,
                                         why, sizeof(why))) == 0)
        {
            ts_triage_clear(&unused);
            why[0] = '\0';
        }
        snprintf(err, sizeof(err), "HTTP %ld%s%s", res->status,
                 why[0] ? ": " : "", why);
        /* bad key, bad request: retrying will not help */
        retryable = res->status == 429 || res->status >= 500;
    } else if (strcmp(jr.cfg.provider, "gemini") == 0) {
        ok = ts_triage_parse_gemini(res->body, res->body_len, &j->result,
                                    err, sizeof(err)) == 0;
    } else {
        ok = ts_triage_parse_openai(res->body, res->body_len, &j->result,
                                    err, sizeof(err)) == 0;
    }

    if (ok) {
        j->provider = jr.cfg.provider;
        j->fallback = 0;
        metrics_triage(j->provider, job_seconds(j));
        triage_store(j);
        return;
    }

    snprintf(j->ai_error, sizeof(j->ai_error), "%s: %s", jr.cfg.provider,
             err);
    ts_utf8_trim_tail(j->ai_error);     /* the ticket's triage.error */
    if (retryable && j->job.attempts < j->job.max_attempts) {
        snprintf(j->err, sizeof(j->err), "%s", j->ai_error);
        finish_fail(j);
        return;
    }
    /* the provider's retries are spent: the ticket is triaged anyway */
    log_warn("job %s: %s; falling back to offline triage", j->job.id,
             j->ai_error);
    triage_offline(j, 1);
}


static void
ai_call(job_t *j)
{
    json_t      *req;
    char        *body, url[1024], auth[600];
    const char  *headers[4];
    int          rc;

    if (strcmp(jr.cfg.provider, "gemini") == 0) {
        req = ts_triage_gemini_request(j->title, j->description);
        snprintf(url, sizeof(url), "%s/v1beta/models/%s:generateContent",
                 jr.cfg.ai_url, jr.cfg.ai_model);
        snprintf(auth, sizeof(auth), "x-goog-api-key: %s", jr.cfg.ai_key);
    } else {
        req = ts_triage_openai_request(jr.cfg.ai_model, j->title,
                                       j->description);
        snprintf(url, sizeof(url), "%s/v1/chat/completions", jr.cfg.ai_url);
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
                 jr.cfg.ai_key);
    }
    headers[0] = "Content-Type: application/json";
    headers[1] = auth;
    headers[2] = NULL;

    body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (body == NULL) {
        snprintf(j->err, sizeof(j->err), "out of memory");
        ai_release();
        finish_fail(j);
        return;
    }
    rc = http_client_request(jr.http, "POST", url, headers, body,
                             strlen(body), jr.cfg.ai_timeout_ms, ai_done, j);
    free(body);
    if (rc != 0) {
        ai_release();
        snprintf(j->err, sizeof(j->err), "cannot start the provider call");
        finish_fail(j);
    }
}


/* Start queued provider calls while there are free provider slots. */
static void
ai_next(void)
{
    job_t  *j;

    while (jr.waiting_head != NULL
           && jr.ai_in_flight < jr.cfg.ai_concurrency)
    {
        j = jr.waiting_head;
        jr.waiting_head = j->next_waiting;
        if (jr.waiting_head == NULL) {
            jr.waiting_tail = NULL;
        }
        j->next_waiting = NULL;
        jr.ai_in_flight++;
        ai_call(j);
    }
}


void
triage_have_text(job_t *j)
{
    if (j->rc == TS_NOT_FOUND) {
        snprintf(j->err, sizeof(j->err), "ticket not found");
        j->permanent = 1;
        finish_fail(j);
        return;
    }
    if (j->rc != TS_OK) {
        finish_fail(j);
        return;
    }
    if (j->triaged) {
        finish_ok(j);            /* an earlier attempt got this far */
        return;
    }
    if (strcmp(jr.cfg.provider, "offline") == 0 || jr.cfg.ai_key == NULL) {
        triage_offline(j, 0);
        return;
    }
    if (jr.waiting_tail) {
        jr.waiting_tail->next_waiting = j;
    } else {
        jr.waiting_head = j;
    }
    jr.waiting_tail = j;
    ai_next();
}


static void
triage_write_work(ts_store_t *s, job_t *j)
{
    const char    *id = payload_str(j, "ticketId");
    json_t        *triage = ts_triage_json(&j->result);
    json_t        *meta;
    char           key[TS_JOB_KEY_LEN], sla_keys[4][TS_JOB_KEY_LEN];
    ts_job_new_t   jobs[5];
    ts_sla_due_t   due;
    int            nsla = 0, i;

    meta = json_pack("{s:s, s:s?, s:b, s:s?, s:o}", "provider", j->provider,
                     "model", strcmp(j->provider, "offline") == 0
                              ? NULL : jr.cfg.ai_model,
                     "fallback", j->fallback,
                     "error", j->ai_error[0] ? j->ai_error : NULL,
                     "at", ts_iso_json(ts_now_ms()));

    ts_job_assign(&jobs[0], key, id);
    /* the SLA dates from the priority just found, and their jobs */
    ts_sla_dates(&jr.cfg.sla, ts_sla_priority(j->result.priority),
                 j->created_at, &due);
    nsla = ts_job_sla(jobs + 1, sla_keys, id, &due);

    if (triage == NULL || meta == NULL || jobs[0].payload == NULL
        || nsla < 0)
    {
        j->rc = TS_ERR;
        snprintf(j->err, sizeof(j->err), "out of memory");
        nsla = nsla < 0 ? 0 : nsla;
    } else {
        j->rc = ts_store_ticket_set_triage(s, id, triage, meta, j->provider,
                                           j->fallback, &due, ts_now_ms(),
                                           jobs, 1 + (size_t) nsla);
    }
    if (j->rc == TS_OK) {
        /* the room holds the requester: no provenance (provider, its
         * error) in the event, staff read it with the ticket; the notes
         * for staff go in a staff-only frame (emit_ticket_updated) */
        j->event = json_pack("{s:s, s:O, s:O, s:O, s:O}",
                             "ticketId", id,
                             "summary", json_object_get(triage, "summary"),
                             "priority", json_object_get(triage, "priority"),
                             "helpfulNotes",
                             json_object_get(triage, "helpfulNotes"),
                             "relatedSkills",
                             json_object_get(triage, "relatedSkills"));
    }
    for (i = 0; i < 1 + nsla; i++) {
        json_decref(jobs[i].payload);
    }
    json_decref(triage);
    json_decref(meta);
}


static void
triage_written(job_t *j)
{
    if (j->rc == TS_OK) {
        emit_ticket_updated(payload_str(j, "ticketId"), j->event);
        job_runner_wake();       /* the assignment job is due now */
        finish_ok(j);
    } else if (j->rc == TS_CONFLICT) {
        finish_ok(j);            /* triaged by an earlier attempt */
    } else if (j->rc == TS_NOT_FOUND) {
        snprintf(j->err, sizeof(j->err), "ticket not found");
        j->permanent = 1;
        finish_fail(j);
    } else {
        finish_fail(j);
    }
}


static void
triage_store(job_t *j)
{
    store_step(j, triage_write_work, triage_written);
}

/*
 * job_runner: claiming and running stored jobs (see job_runner.h).
 *
 * One claim round at a time: it asks the store for as many due jobs as
 * there are free slots; each claimed job is a job_t that walks through its
 * kind's stages and ends in exactly one of finish_ok() or finish_fail(),
 * which record the outcome in the store and free the slot.  Jobs are rows
 * before anything runs, so a crash anywhere loses nothing: the lease
 * expires and the next claim takes the job again; every stage is
 * idempotent in the store (triage once, assignment once, stats once).
 *
 * This file is the runner core: claims, leases, retries and the batching
 * of outcomes.  The kinds' work lives in job_triage.c, job_assign.c,
 * job_sla.c and job_mail.c (job_runner_internal.h is what they share).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http_client.h"
#include "hub.h"
#include "job_runner.h"
#include "job_runner_internal.h"
#include "link_server.h"
#include "log.h"
#include "store_pool.h"
#include "ts_event.h"
#include "ts_jobs.h"
#include "ts_session.h"
#include "ts_store.h"
#include "ts_triage.h"
#include "ts_validate.h"

#define RUNNER_MAX_BODY  (1024 * 1024)

job_runner_state_t  jr;

static void runner_tick(void);
static void job_start(job_t *j);


void
job_runner_cfg_default(job_runner_cfg_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->concurrency = 64;
    cfg->poll_ms = 1000;
    cfg->lease_ms = 60000;
    cfg->retry_base_ms = 2000;
    cfg->retry_max_ms = 300000;
    cfg->provider = "offline";
    cfg->ai_timeout_ms = 30000;
    cfg->ai_concurrency = 16;
    cfg->mail_transport = "outbox";
    cfg->outbox_dir = "outbox";
    cfg->mail_from = "Ticket Assistant <no-reply@example.com>";
    cfg->mail_timeout_ms = 20000;
    ts_assign_cfg_default(&cfg->assign);
    ts_sla_cfg_default(&cfg->sla);
}


/* --- the store steps ------------------------------------------------------ */


typedef struct {
    job_t         *job;
    job_store_pt   work;
} store_step_t;


static void
store_step_work(ts_store_t *s, void *arg)
{
    store_step_t  *st = arg;

    st->work(s, st->job);
    if (st->job->rc == TS_ERR) {
        snprintf(st->job->store_err, sizeof(st->job->store_err), "store: %s",
                 ts_store_errmsg(s));
    }
}


static void
store_step_done(void *arg, int status)
{
    store_step_t  *st = arg;
    job_t         *j = st->job;

    free(st);
    if (status != 0) {
        j->rc = TS_ERR;
        snprintf(j->store_err, sizeof(j->store_err), "store task cancelled");
    }
    j->after_store(j);
}


/* Run work(s, j) off the loop, then next(j) on it. */
void
store_step(job_t *j, job_store_pt work, job_stage_pt next)
{
    store_step_t  *st = malloc(sizeof(*st));

    j->rc = TS_OK;
    j->store_err[0] = '\0';
    j->after_store = next;
    if (st == NULL) {
        j->rc = TS_ERR;
        snprintf(j->store_err, sizeof(j->store_err), "out of memory");
        next(j);
        return;
    }
    st->job = j;
    st->work = work;
    if (store_pool_submit(store_step_work, store_step_done, st) != 0) {
        free(st);
        j->rc = TS_ERR;
        snprintf(j->store_err, sizeof(j->store_err), "store unavailable");
        next(j);
    }
}


/* --- finishing ------------------------------------------------------------ */

static void
job_free(job_t *j)
{
    json_decref(j->job.payload);
    json_decref(j->event);
    free(j->title);
    free(j->description);
    ts_triage_clear(&j->result);
    free(j);
}


void
slot_free(job_t *j)
{
    if (j->prev_held) {
        j->prev_held->next_held = j->next_held;
    } else {
        jr.held = j->next_held;
    }
    if (j->next_held) {
        j->next_held->prev_held = j->prev_held;
    }
    if (j->is_triage) {
        jr.triage_in_flight--;
    }
    job_free(j);
    jr.in_flight--;
    if (jr.stopping) {
        if (jr.in_flight == 0 && jr.stopped) {
            void (*cb)(void *) = jr.stopped;
            jr.stopped = NULL;
            cb(jr.stopped_arg);
        }
        return;
    }
    /* a freed slot claims again only when jobs may be waiting for one: a
     * claim that came back full or found no free slot, or a wake since
     * (an empty claim is a write transaction all the same) */
    if (jr.due) {
        runner_tick();
    }
}


static void
finished(job_t *j)
{
    if (j->rc != TS_OK && j->rc != TS_NOT_FOUND) {
        log_warn("job %s (%s): could not record the outcome: %s",
                 j->job.id, j->job.kind, j->store_err);
    }
    slot_free(j);
}


/*
 * Successes are recorded in batches: while one batch is in the store, the
 * jobs finishing meanwhile queue up and go in the next one, in one
 * transaction (under load a round of mail shares one commit instead of
 * taking the write lock once per message, against the nginx workers).
 * Each job keeps its own outcome: TS_NOT_FOUND when its lease was lost.
 */
typedef struct {
    job_t     *jobs;          /* linked by next_done */
    size_t     n;
    ts_rc_e   *rcs;           /* after keys, in the same allocation */
    char       err[256];      /* the store's message when it failed */
    ts_job_t   keys[];        /* their ids and attempts */
} done_batch_t;

static void record_done(void);


static void
done_batch_work(ts_store_t *s, void *arg)
{
    done_batch_t  *b = arg;

    if (ts_store_jobs_done(s, b->keys, b->n, ts_now_ms(), b->rcs)
        == TS_ERR)
    {
        snprintf(b->err, sizeof(b->err), "store: %s", ts_store_errmsg(s));
    }
}


/* status != 0: the batch never reached the store */
static void
done_batch_after(void *arg, int status)
{
    done_batch_t  *b = arg;
    job_t         *j, *next;
    size_t         i = 0;

    jr.recording = 0;
    for (j = b->jobs; j != NULL; j = next, i++) {
        next = j->next_done;
        j->rc = status != 0 ? TS_ERR : b->rcs[i];
        if (j->rc == TS_ERR) {
            /* unrecorded: the lease expires and the job runs again,
             * which every stage allows */
            snprintf(j->store_err, sizeof(j->store_err), "%s",
                     status != 0 ? "store unavailable"
                                 : b->err[0] ? b->err : "store failed");
        }
        finished(j);
    }
    free(b);
    record_done();
}


static void
record_done(void)
{
    done_batch_t  *b;
    job_t         *j, *next;
    size_t         n = 0, i = 0;

    if (jr.recording || jr.done_head == NULL) {
        return;
    }
    for (j = jr.done_head; j != NULL; j = j->next_done) {
        n++;
    }
    b = calloc(1, sizeof(*b) + n * (sizeof(ts_job_t) + sizeof(ts_rc_e)));
    if (b == NULL) {
        for (j = jr.done_head, jr.done_head = jr.done_tail = NULL; j != NULL;
             j = next)
        {
            next = j->next_done;
            j->rc = TS_ERR;
            snprintf(j->store_err, sizeof(j->store_err), "out of memory");
            finished(j);
        }
        return;
    }
    b->jobs = jr.done_head;
    b->n = n;
    b->rcs = (ts_rc_e *) (b->keys + n);
    for (j = b->jobs; j != NULL; j = j->next_done, i++) {
        memcpy(b->keys[i].id, j->job.id, sizeof(b->keys[i].id));
        b->keys[i].attempts = j->job.attempts;
    }
    jr.done_head = jr.done_tail = NULL;
    jr.recording = 1;
    if (store_pool_submit(done_batch_work, done_batch_after, b) != 0) {
        done_batch_after(b, -1);
    }
}


double
job_seconds(const job_t *j)
{
    return (double) (uv_hrtime() - j->claimed_ns) / 1e9;
}


void
finish_ok(job_t *j)
{
    log_debug("job %s (%s) done", j->job.id, j->job.kind);
    metrics_job_ended(j->job.kind, "done", job_seconds(j));
    j->next_done = NULL;
    if (jr.done_tail) {
        jr.done_tail->next_done = j;
    } else {
        jr.done_head = j;
    }
    jr.done_tail = j;
    record_done();
}


static int64_t
retry_delay(int attempts)
{
    int64_t   d = jr.cfg.retry_base_ms;
    double    jitter;

    for (int i = 1; i < attempts && d < jr.cfg.retry_max_ms; i++) {
        d *= 2;
    }
    if (d > jr.cfg.retry_max_ms) {
        d = jr.cfg.retry_max_ms;
    }
    /* +-25 %, so jobs failing together do not retry together */
    jitter = 0.75 + 0.5 * ((double) rand_r(&jr.seed) / RAND_MAX);
    return (int64_t) ((double) d * jitter);
}


static void
fail_work(ts_store_t *s, job_t *j)
{
    int64_t  now = ts_now_ms();
    int      dead = j->permanent || j->job.attempts >= j->job.max_attempts;

    j->rc = ts_store_job_fail(s, j->job.id, j->job.attempts, j->err, dead,
                              now + retry_delay(j->job.attempts), now);
}


/* The attempt failed with j->err; permanent failures go dead at once. */
void
finish_fail(job_t *j)
{
    int  dead = j->permanent || j->job.attempts >= j->job.max_attempts;

    if (j->err[0] == '\0') {
        /* a store step failed: its reason is the attempt's */
        snprintf(j->err, sizeof(j->err), "%s",
                 j->store_err[0] ? j->store_err : "failed");
    }
    /* it may quote a provider's or mail server's text, cut by bytes: the
     * store, GET /api/jobs and the log want whole characters */
    ts_utf8_trim_tail(j->err);
    metrics_job_ended(j->job.kind, dead ? "dead" : "retry", job_seconds(j));

    if (dead) {
        log_error("job %s (%s) dead after %d attempt(s): %s", j->job.id,
                  j->job.kind, j->job.attempts, j->err);
    } else {
        log_warn("job %s (%s) attempt %d of %d failed: %s; retrying",
                 j->job.id, j->job.kind, j->job.attempts,
                 j->job.max_attempts, j->err);
    }
    store_step(j, fail_work, finished);
}


/* Send an event (room may be NULL) through the hub: every worker link and
 * every other host. */
static void
emit_event(const char *event, const char *room, json_t *data, int staff)
{
    json_t  *frame;
    char    *text;

    frame = staff ? ts_event_frame_staff(event, room, json_incref(data))
                  : ts_event_frame(event, room, json_incref(data));
    text = frame ? json_dumps(frame, JSON_COMPACT | JSON_REAL_PRECISION(12))
                 : NULL;
    json_decref(frame);
    if (text != NULL) {
        hub_publish(text, strlen(text));
        log_debug("event %s room=%s", event, room ? room : "-");
    }
    free(text);
}


/* Send a ticket_updated event for the ticket to every worker link. */
void
emit_ticket_updated(const char *ticket_id, json_t *data)
{
    char  room[TS_ROOM_LEN];

    /* everyone in the room gets it, the ticket's creator too: the
     * assignment explanation (other moderators' names, presence and
     * scores) is for staff, who read it with GET /api/tickets/:id */
    json_t  *notes, *staff = NULL;

    json_object_del(data, "assignment");
    /* the triage's notes are for staff too: theirs is a second frame,
     * after the one for everyone */
    notes = json_object_get(data, "helpfulNotes");
    if (notes != NULL) {
        staff = json_pack("{s:s, s:O}", "ticketId", ticket_id,
                          "helpfulNotes", notes);
        json_object_del(data, "helpfulNotes");
    }
    emit_event("ticket_updated", ts_room_name(ticket_id, room), data, 0);
    if (staff != NULL) {
        emit_event("ticket_updated", ts_room_name(ticket_id, room), staff,
                   1);
        json_decref(staff);
    }
}


/* The ticket is now user_id's: their own sockets hear it (their ticket
 * list follows); nobody else's. */
void
emit_ticket_assigned(const char *ticket_id, const char *user_id)
{
    json_t  *data = json_pack("{s:s, s:s}", "ticketId", ticket_id,
                              "userId", user_id);

    if (data != NULL) {
        emit_event(TS_EV_TICKET_ASSIGNED, NULL, data, 0);
        json_decref(data);
    }
}


/* The ticket's assignee changed: every worker re-checks the members of
 * its room against the visibility rule (a former assignee leaves). */
void
emit_ticket_access_changed(const char *ticket_id)
{
    json_t  *data = ts_rights_ticket_access_changed(ticket_id);

    if (data != NULL) {
        emit_event(TS_EV_TICKET_ACCESS_CHANGED, NULL, data, 0);
        json_decref(data);
    }
}


const char *
payload_str(job_t *j, const char *key)
{
    return json_string_value(json_object_get(j->job.payload, key));
}


/* --- claiming ------------------------------------------------------------- */

static void
job_start(job_t *j)
{
    const char  *kind = j->job.kind;

    j->claimed_ns = uv_hrtime();
    metrics_job_started(kind);

    if (j->job.attempts > j->job.max_attempts) {
        /* its last runner died mid-attempt; no tries are left */
        snprintf(j->err, sizeof(j->err), "no attempts left");
        j->permanent = 1;
        finish_fail(j);
    } else if (strcmp(kind, "triage") == 0) {
        jr.triage_in_flight++;
        j->is_triage = 1;
        store_step(j, triage_read_work, triage_have_text);
    } else if (strcmp(kind, "assign") == 0) {
        store_step(j, assign_work, assign_done);
    } else if (strcmp(kind, "stats") == 0) {
        store_step(j, stats_work, stats_done);
    } else if (strcmp(kind, "email") == 0) {
        email_start(j);
    } else if (strncmp(kind, "sla_", 4) == 0) {
        sla_start(j);           /* sla_warn, sla_breach */
    } else {
        snprintf(j->err, sizeof(j->err), "unknown job kind \"%s\"", kind);
        j->permanent = 1;
        finish_fail(j);
    }
}


typedef struct {
    int        max;
    int        max_triage;
    ts_job_t  *jobs;
    size_t     n;
    ts_rc_e    rc;
    char       err[256];
} claim_t;


static void
claim_work(ts_store_t *s, void *arg)
{
    claim_t  *c = arg;

    c->rc = ts_store_job_claim(s, ts_now_ms(), jr.cfg.lease_ms, c->max,
                               c->max_triage,
                               &c->jobs, &c->n);
    if (c->rc != TS_OK) {
        snprintf(c->err, sizeof(c->err), "%s", ts_store_errmsg(s));
    }
}


static void
claim_done(void *arg, int status)
{
    claim_t  *c = arg;
    job_t    *j;
    size_t    i;
    int       full;

    jr.claiming = 0;
    if (status != 0 || c->rc != TS_OK) {
        log_warn("claiming jobs failed: %s",
                 status != 0 ? "cancelled" : c->err);
        jr.due = 1;
        ts_jobs_free(c->jobs, c->n);
        free(c);
        return;
    }

    full = (int) c->n == c->max;
    if (full) {
        jr.due = 1;
    }
    for (i = 0; i < c->n; i++) {
        j = calloc(1, sizeof(*j));
        if (j == NULL) {
            /* its lease expires and a later claim takes it */
            json_decref(c->jobs[i].payload);
            continue;
        }
        j->job = c->jobs[i];
        jr.in_flight++;
        j->next_held = jr.held;
        if (jr.held) {
            jr.held->prev_held = j;
        }
        jr.held = j;
        if (jr.stopping) {
            slot_free(j);
            continue;
        }
        job_start(j);
    }
    free(c->jobs);
    free(c);

    /* a full batch: more may be due right away */
    if ((full || jr.again) && !jr.stopping) {
        jr.again = 0;
        runner_tick();
    }
}


static void
runner_tick(void)
{
    claim_t  *c;
    int       free_slots = jr.cfg.concurrency - jr.in_flight;

    if (jr.stopping) {
        return;
    }
    if (jr.claiming) {
        jr.again = 1;
        return;
    }
    if (free_slots <= 0) {
        jr.due = 1;
        return;                  /* slot_free() ticks again */
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return;
    }
    c->max = free_slots;
    /* triage jobs beyond twice the provider's slots would only wait in
     * the queue, holding slots that assignments and mail need */
    c->max_triage = free_slots;
    if (strcmp(jr.cfg.provider, "offline") != 0 && jr.cfg.ai_key != NULL) {
        c->max_triage = 2 * jr.cfg.ai_concurrency - jr.triage_in_flight;
    }
    jr.claiming = 1;
    jr.due = 0;
    if (store_pool_submit(claim_work, claim_done, c) != 0) {
        jr.claiming = 0;
        jr.due = 1;
        free(c);
    }
}


static void
on_timer(uv_timer_t *t)
{
    runner_tick();
}


/*
 * Lease renewal: every third of a lease, the leases of every job still in
 * flight are extended, so a job waiting for a slow provider is never taken
 * for abandoned.  Only a runner that died stops renewing.
 */
typedef struct {
    ts_job_t  *jobs;          /* copies of ids and attempts */
    size_t     n;
} renew_t;


static void
renew_work(ts_store_t *s, void *arg)
{
    renew_t  *r = arg;

    (void) ts_store_job_extend(s, r->jobs, r->n,
                               ts_now_ms() + jr.cfg.lease_ms);
}


static void
renew_done(void *arg, int status)
{
    renew_t  *r = arg;

    free(r->jobs);
    free(r);
    jr.renewing = 0;
}


static void
on_renew(uv_timer_t *t)
{
    renew_t  *r;
    job_t    *j;
    size_t    n = 0;

    if (jr.renewing || jr.held == NULL || jr.stopping) {
        return;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return;
    }
    r->jobs = calloc((size_t) jr.in_flight + 1, sizeof(ts_job_t));
    if (r->jobs == NULL) {
        free(r);
        return;
    }
    for (j = jr.held; j != NULL && n < (size_t) jr.in_flight;
         j = j->next_held)
    {
        memcpy(r->jobs[n].id, j->job.id, sizeof(ts_oid_t));
        r->jobs[n].attempts = j->job.attempts;
        n++;
    }
    r->n = n;
    jr.renewing = 1;
    if (store_pool_submit(renew_work, renew_done, r) != 0) {
        jr.renewing = 0;
        free(r->jobs);
        free(r);
    }
}


void
job_runner_wake(void)
{
    if (jr.timer_ready && !jr.stopping) {
        jr.due = 1;
        runner_tick();
    }
}


int
job_runner_start(uv_loop_t *loop, const job_runner_cfg_t *cfg)
{
    memset(&jr, 0, sizeof(jr));
    jr.loop = loop;
    jr.cfg = *cfg;
    jr.seed = (unsigned) (ts_now_ms() ^ getpid());

    if (cfg->concurrency == 0) {
        log_info("job runner: disabled (--jobs 0); jobs wait in the store");
        return 0;
    }

    if (strcmp(cfg->mail_transport, "outbox") == 0
        && mkdir(cfg->outbox_dir, 0750) != 0 && errno != EEXIST)
    {
        log_error("cannot create the outbox %s: %s", cfg->outbox_dir,
                  strerror(errno));
        return -1;
    }
    jr.http = http_client_new(loop, RUNNER_MAX_BODY);
    if (jr.http == NULL) {
        log_error("cannot create the HTTP client");
        return -1;
    }
    if (uv_timer_init(loop, &jr.timer) != 0
        || uv_timer_start(&jr.timer, on_timer, 0, (uint64_t) cfg->poll_ms)
           != 0)
    {
        log_error("cannot start the job timer");
        return -1;
    }
    if (uv_timer_init(loop, &jr.renew) != 0
        || uv_timer_start(&jr.renew, on_renew, (uint64_t) cfg->lease_ms / 3,
                          (uint64_t) cfg->lease_ms / 3) != 0)
    {
        log_error("cannot start the lease timer");
        return -1;
    }
    jr.timer_ready = 1;
    if (absence_start(loop, cfg->assign_absence_ms) != 0) {
        log_error("cannot start the absence timer");
        return -1;
    }
    log_info("job runner: triage %s%s, mail via %s, %d jobs in flight",
             cfg->provider, cfg->ai_key || strcmp(cfg->provider, "offline")
                            == 0 ? "" : " (no key: offline)",
             cfg->mail_transport, cfg->concurrency);
    return 0;
}


static void
http_closed(void *arg)
{
    jr.http = NULL;
    if (jr.in_flight == 0 && jr.stopped) {
        void (*cb)(void *) = jr.stopped;
        jr.stopped = NULL;
        cb(jr.stopped_arg);
    }
}


void
job_runner_stop(void (*done)(void *arg), void *arg)
{
    if (!jr.timer_ready) {
        done(arg);
        return;
    }
    absence_stop();
    jr.stopping = 1;
    jr.stopped = done;
    jr.stopped_arg = arg;
    uv_timer_stop(&jr.timer);
    uv_close((uv_handle_t *) &jr.timer, NULL);
    uv_timer_stop(&jr.renew);
    uv_close((uv_handle_t *) &jr.renew, NULL);

    /* queued provider calls never start; their leases expire */
    while (jr.waiting_head) {
        job_t *j = jr.waiting_head;
        jr.waiting_head = j->next_waiting;
        slot_free(j);
    }
    jr.waiting_tail = NULL;
    if (jr.http) {
        http_client_close(jr.http, http_closed, NULL);
    } else if (jr.in_flight == 0 && jr.stopped) {
        jr.stopped = NULL;
        done(arg);
    }
}

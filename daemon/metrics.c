/*
 * metrics: ticketd's counters and their push to the workers (metrics.h).
 *
 * ticketd serves no HTTP.  Its numbers reach Prometheus through nginx:
 * every METRICS interval (2 s) and whenever a worker says hello, the
 * block below is rendered as exposition text (shared/core/ts_prom.h) and
 * broadcast on every link as {"type":"metrics","text":"..."}; each worker
 * checks it and keeps the latest in its shared zone, and ticket_metrics
 * appends it to the workers' own families.  The frame is written by hand
 * so that it starts with {"type":"metrics" -- the prefix the worker looks
 * for before it parses a frame as metrics rather than an event.
 *
 * What is counted here is this process's since it started (counters
 * restart with ticketd, which Prometheus's rate() handles), except
 * ticket_jobs, the store's own count of jobs by kind and state, read
 * through the store pool once per push (one in flight at a time).
 *
 * Label sets are bounded: job kinds, providers and transports are the
 * known names, anything else is "other".  The block stays far below the
 * 64 KB a worker accepts (about 12 KB).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "link_server.h"
#include "log.h"
#include "metrics.h"
#include "store_pool.h"
#include "ts_jobs.h"
#include "ts_prom.h"
#include "ts_store.h"

/* job kinds: the domain's (ts_jobs.h), "other" last */
#define NKINDS  TS_JOB_KINDS

static const char  *outcomes[] = { "done", "retry", "dead" };
#define NOUTCOMES  (sizeof(outcomes) / sizeof(outcomes[0]))

static const char  *providers[] = { "offline", "gemini", "openai", "other" };
#define NPROVIDERS  (sizeof(providers) / sizeof(providers[0]))

static const char  *transports[] = { "outbox", "sendgrid", "smtp", "other" };
#define NTRANSPORTS  (sizeof(transports) / sizeof(transports[0]))

/* latency buckets, seconds: from a store round trip to a slow provider */
static const double  bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                  1, 2.5, 5, 10, 30, 60, 120, 300 };
#define NBOUNDS  (sizeof(bounds) / sizeof(bounds[0]))

typedef struct {
    uint64_t  counts[NBOUNDS + 1];      /* per bucket, not cumulative */
    double    sum;
} histogram_t;

static struct {
    uv_loop_t        *loop;
    uv_timer_t        timer;
    int               started;
    uint64_t          started_jobs[NKINDS];
    uint64_t          ended[NKINDS][NOUTCOMES];
    histogram_t       job_latency[NKINDS];
    histogram_t       triage_latency[NPROVIDERS];
    uint64_t          fallbacks[NPROVIDERS];
    uint64_t          mails[NTRANSPORTS][2];    /* [failed, sent] */
    uint64_t          bridge[METRICS_BRIDGE_N];
    uint64_t          cache[TS_CACHE_RESULTS];  /* atomics: pool threads */
    ts_job_counts_t   jobs;                     /* the store's, last read */
    int               jobs_known;
    int               counting;                 /* a read is in flight */
    ts_job_counts_t   reading;                  /* its result (pool) */
    ts_rc_e           reading_rc;
} m;


static size_t
name_index(const char **names, size_t n, const char *name)
{
    size_t  i;

    for (i = 0; name != NULL && i < n - 1; i++) {
        if (strcmp(names[i], name) == 0) {
            return i;
        }
    }
    return n - 1;                        /* "other" */
}


static void
observe(histogram_t *h, double v)
{
    size_t  i;

    if (v < 0) {
        v = 0;
    }
    for (i = 0; i < NBOUNDS && v > bounds[i]; i++) {
        /* the first bucket whose bound holds v */
    }
    h->counts[i]++;
    h->sum += v;
}


void
metrics_job_started(const char *kind)
{
    m.started_jobs[ts_job_kind_index(kind)]++;
}


void
metrics_job_ended(const char *kind, const char *outcome, double seconds)
{
    size_t  k = ts_job_kind_index(kind);
    size_t  o;

    for (o = 0; o < NOUTCOMES - 1 && strcmp(outcomes[o], outcome) != 0;
         o++)
    {
        /* "dead" when nothing else matches */
    }
    m.ended[k][o]++;
    if (o == 0) {
        observe(&m.job_latency[k], seconds);
    }
}


void
metrics_triage(const char *provider, double seconds)
{
    observe(&m.triage_latency[name_index(providers, NPROVIDERS, provider)],
            seconds);
}


void
metrics_triage_fallback(const char *provider)
{
    m.fallbacks[name_index(providers, NPROVIDERS, provider)]++;
}


void
metrics_mail(const char *transport, int ok)
{
    m.mails[name_index(transports, NTRANSPORTS, transport)][ok ? 1 : 0]++;
}


void
metrics_bridge(metrics_bridge_e what)
{
    if (what < METRICS_BRIDGE_N) {
        m.bridge[what]++;
    }
}


/* From the store pool's threads (ts_store_cache_counter). */
static void
cache_count(ts_cache_result_e result)
{
    if (result < TS_CACHE_RESULTS) {
        __atomic_fetch_add(&m.cache[result], 1, __ATOMIC_RELAXED);
    }
}


/* --- rendering ----------------------------------------------------------- */

static void
render(ts_prom_t *p)
{
    const char  *labels[5];
    size_t       i, j;
    static const char  *directions[METRICS_BRIDGE_N] = { "out", "in",
                                                          "rejected" };
    static const char  *results[TS_CACHE_RESULTS] = { "hit", "miss",
                                                       "error" };

    if (m.jobs_known) {
        const char  *states[] = { "pending", "running", "done", "dead" };

        ts_prom_family(p, "ticket_jobs", "gauge",
                       "Jobs in the store by kind and state (read by "
                       "ticketd every push)");
        for (i = 0; i < NKINDS; i++) {
            for (j = 0; j < 4; j++) {
                labels[0] = "kind";
                labels[1] = ts_job_kind_name(i);
                labels[2] = "state";
                labels[3] = states[j];
                labels[4] = NULL;
                ts_prom_u64(p, "ticket_jobs", labels,
                            m.jobs.by_kind[i][j] > 0
                            ? (uint64_t) m.jobs.by_kind[i][j] : 0);
            }
        }
    }

    ts_prom_family(p, "ticket_jobs_started_total", "counter",
                   "Job attempts ticketd claimed and started, by kind");
    for (i = 0; i < NKINDS; i++) {
        labels[0] = "kind";
        labels[1] = ts_job_kind_name(i);
        labels[2] = NULL;
        ts_prom_u64(p, "ticket_jobs_started_total", labels,
                    m.started_jobs[i]);
    }

    ts_prom_family(p, "ticket_jobs_ended_total", "counter",
                   "Job attempts ended, by kind and outcome (done; retry: "
                   "failed, tried again later; dead: failed for good)");
    for (i = 0; i < NKINDS; i++) {
        for (j = 0; j < NOUTCOMES; j++) {
            labels[0] = "kind";
            labels[1] = ts_job_kind_name(i);
            labels[2] = "outcome";
            labels[3] = outcomes[j];
            labels[4] = NULL;
            ts_prom_u64(p, "ticket_jobs_ended_total", labels, m.ended[i][j]);
        }
    }

    ts_prom_family(p, "ticket_job_duration_seconds", "histogram",
                   "Seconds from a job's claim to its success, by kind");
    for (i = 0; i < NKINDS; i++) {
        labels[0] = "kind";
        labels[1] = ts_job_kind_name(i);
        labels[2] = NULL;
        ts_prom_histogram(p, "ticket_job_duration_seconds", labels, bounds,
                          NBOUNDS, m.job_latency[i].counts,
                          m.job_latency[i].sum);
    }

    ts_prom_family(p, "ticket_triage_duration_seconds", "histogram",
                   "Seconds from a triage job's claim to its result, by "
                   "the provider that gave it");
    for (i = 0; i < NPROVIDERS; i++) {
        labels[0] = "provider";
        labels[1] = providers[i];
        labels[2] = NULL;
        ts_prom_histogram(p, "ticket_triage_duration_seconds", labels,
                          bounds, NBOUNDS, m.triage_latency[i].counts,
                          m.triage_latency[i].sum);
    }

    ts_prom_family(p, "ticket_triage_fallbacks_total", "counter",
                   "Tickets triaged offline after the AI provider kept "
                   "failing, by that provider");
    for (i = 0; i < NPROVIDERS; i++) {
        labels[0] = "provider";
        labels[1] = providers[i];
        labels[2] = NULL;
        ts_prom_u64(p, "ticket_triage_fallbacks_total", labels,
                    m.fallbacks[i]);
    }

    ts_prom_family(p, "ticket_mails_total", "counter",
                   "Mails handed to the transport (sent) or refused by it "
                   "(failed), by transport");
    for (i = 0; i < NTRANSPORTS; i++) {
        for (j = 0; j < 2; j++) {
            labels[0] = "transport";
            labels[1] = transports[i];
            labels[2] = "result";
            labels[3] = j ? "sent" : "failed";
            labels[4] = NULL;
            ts_prom_u64(p, "ticket_mails_total", labels, m.mails[i][j]);
        }
    }

    ts_prom_family(p, "ticket_daemon_links", "gauge",
                   "nginx worker links connected to ticketd");
    ts_prom_u64(p, "ticket_daemon_links", NULL,
                (uint64_t) link_server_links());

    ts_prom_family(p, "ticket_bridge_messages_total", "counter",
                   "Redis bridge messages: published (out), delivered "
                   "from other hosts (in), dropped (rejected)");
    for (i = 0; i < METRICS_BRIDGE_N; i++) {
        labels[0] = "direction";
        labels[1] = directions[i];
        labels[2] = NULL;
        ts_prom_u64(p, "ticket_bridge_messages_total", labels, m.bridge[i]);
    }

    ts_prom_family(p, "ticket_daemon_cache_requests_total", "counter",
                   "Redis cache reads by ticketd's store connections, by "
                   "result");
    for (i = 0; i < TS_CACHE_RESULTS; i++) {
        labels[0] = "result";
        labels[1] = results[i];
        labels[2] = NULL;
        ts_prom_u64(p, "ticket_daemon_cache_requests_total", labels,
                    __atomic_load_n(&m.cache[i], __ATOMIC_RELAXED));
    }
}


char *
metrics_frame(size_t *frame_len)
{
    ts_prom_t    p;
    const char  *text;
    char        *str, *frame;
    size_t       len, slen;
    json_t      *js;

    if (!m.started) {
        return NULL;
    }
    ts_prom_init(&p);
    render(&p);
    text = ts_prom_text(&p, &len);
    js = text ? json_stringn(text, len) : NULL;
    str = js ? json_dumps(js, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref(js);
    ts_prom_free(&p);
    if (str == NULL) {
        log_warn("metrics: out of memory rendering the block");
        return NULL;
    }
    slen = strlen(str);
    frame = malloc(sizeof("{\"type\":\"metrics\",\"text\":}") + slen);
    if (frame != NULL) {
        *frame_len = (size_t) sprintf(frame,
                                      "{\"type\":\"metrics\",\"text\":%s}",
                                      str);
    }
    free(str);
    return frame;
}


void
metrics_push(void)
{
    char    *frame;
    size_t   len;

    if (link_server_links() == 0 || (frame = metrics_frame(&len)) == NULL) {
        return;
    }
    (void) link_server_broadcast(frame, len);
    free(frame);
}


/* --- the store's job counts ---------------------------------------------- */

static void
counts_work(ts_store_t *s, void *arg)
{
    m.reading_rc = ts_store_job_counts(s, &m.reading);
}


static void
counts_done(void *arg, int status)
{
    m.counting = 0;
    if (status == 0 && m.reading_rc == TS_OK) {
        m.jobs = m.reading;
        m.jobs_known = 1;
    }
    metrics_push();
}


/* The counts are read even with no link, so the first worker to say
 * hello gets them at once. */
static void
on_timer(uv_timer_t *t)
{
    if (!m.counting) {
        m.counting = 1;
        if (store_pool_submit(counts_work, counts_done, NULL) == 0) {
            return;                 /* pushes when the counts are in */
        }
        m.counting = 0;
    }
    metrics_push();
}


int
metrics_start(uv_loop_t *loop, uint64_t interval_ms)
{
    m.loop = loop;
    if (uv_timer_init(loop, &m.timer) != 0
        || uv_timer_start(&m.timer, on_timer, 0, interval_ms) != 0)
    {
        return -1;
    }
    m.started = 1;
    return 0;
}


void
metrics_count_cache(void)
{
    ts_store_cache_counter(cache_count);
}


void
metrics_stop(void)
{
    if (m.started) {
        m.started = 0;
        uv_timer_stop(&m.timer);
        uv_close((uv_handle_t *) &m.timer, NULL);
    }
}

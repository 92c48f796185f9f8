/*
 * ts_sla: targets, their dates and the breach rule (see ts_sla.h).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_sla.h"

#define TS_SLA_MAX_MS  (366LL * 86400000)

static const char *ts_sla_names[TS_SLA_PRIORITIES] = {
    "Low", "Medium", "High"
};


void
ts_sla_cfg_default(ts_sla_cfg_t *cfg)
{
    static const int64_t  h = 3600000;

    memset(cfg, 0, sizeof(*cfg));
    cfg->response_ms[0] = 24 * h;
    cfg->resolution_ms[0] = 72 * h;
    cfg->response_ms[1] = 4 * h;
    cfg->resolution_ms[1] = 24 * h;
    cfg->response_ms[2] = 1 * h;
    cfg->resolution_ms[2] = 8 * h;
    cfg->warn_percent = 80;
}


int
ts_sla_priority(const char *priority)
{
    for (int i = 0; priority != NULL && i < TS_SLA_PRIORITIES; i++) {
        if (strcmp(priority, ts_sla_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}


int
ts_sla_parse_duration(const char *s, int64_t *ms)
{
    int64_t     total = 0, unit;
    long long   n;
    char       *end;

    if (s == NULL || *s == '\0') {
        return -1;
    }
    while (*s) {
        if (*s < '0' || *s > '9') {
            return -1;
        }
        errno = 0;
        n = strtoll(s, &end, 10);
        if (errno != 0 || n > TS_SLA_MAX_MS) {
            return -1;
        }
        s = end;
        if (strncmp(s, "ms", 2) == 0) {
            unit = 1;
            s += 2;
        } else if (*s == 's') {
            unit = 1000;
            s++;
        } else if (*s == 'm') {
            unit = 60000;
            s++;
        } else if (*s == 'h') {
            unit = 3600000;
            s++;
        } else if (*s == 'd') {
            unit = 86400000;
            s++;
        } else {
            return -1;          /* a unit is required: "8" is ambiguous */
        }
        if (n > TS_SLA_MAX_MS / unit) {
            return -1;
        }
        total += n * unit;
        if (total > TS_SLA_MAX_MS) {
            return -1;
        }
    }
    if (total <= 0) {
        return -1;
    }
    *ms = total;
    return 0;
}


int
ts_sla_cfg_target(ts_sla_cfg_t *cfg, const char *word, char err[128])
{
    const char  *eq = strchr(word, '='), *slash;
    char         name[16], resp[32], res[32];
    int64_t      a, b;
    int          p;

    if (eq == NULL || (size_t) (eq - word) >= sizeof(name)
        || (slash = strchr(eq + 1, '/')) == NULL
        || (size_t) (slash - eq - 1) >= sizeof(resp)
        || strlen(slash + 1) >= sizeof(res))
    {
        snprintf(err, 128, "\"%.40s\": expected Priority=response/"
                 "resolution, e.g. High=1h/8h", word);
        return -1;
    }
    memcpy(name, word, (size_t) (eq - word));
    name[eq - word] = '\0';
    memcpy(resp, eq + 1, (size_t) (slash - eq - 1));
    resp[slash - eq - 1] = '\0';
    strcpy(res, slash + 1);

    p = ts_sla_priority(name);
    if (p < 0) {
        snprintf(err, 128, "\"%s\": the priority is Low, Medium or High",
                 name);
        return -1;
    }
    if (ts_sla_parse_duration(resp, &a) != 0
        || ts_sla_parse_duration(res, &b) != 0)
    {
        snprintf(err, 128, "\"%.40s\": times are like 90s, 30m, 4h, 3d "
                 "(more than 0, at most a year)", word);
        return -1;
    }
    if (a > b) {
        snprintf(err, 128, "\"%.40s\": the response target is longer than "
                 "the resolution target", word);
        return -1;
    }
    cfg->response_ms[p] = a;
    cfg->resolution_ms[p] = b;
    return 0;
}


int
ts_sla_cfg_warning(ts_sla_cfg_t *cfg, const char *value, char err[128])
{
    size_t  n = strlen(value);
    char   *end;
    long    pct;

    if (n > 1 && value[n - 1] == '%') {
        errno = 0;
        pct = strtol(value, &end, 10);
        if (errno != 0 || end != value + n - 1 || value[0] < '0'
            || value[0] > '9' || pct < 1 || pct > 99)
        {
            snprintf(err, 128, "\"%.40s\": a share is 1%% to 99%% of the "
                     "target", value);
            return -1;
        }
        cfg->warn_percent = (int) pct;
        cfg->warn_ms = 0;
        return 0;
    }
    if (ts_sla_parse_duration(value, &cfg->warn_ms) != 0) {
        snprintf(err, 128, "\"%.40s\": expected a share (80%%) or a time "
                 "before the due date (30m)", value);
        return -1;
    }
    cfg->warn_percent = 0;
    return 0;
}


/* When the warning for a target of length ms starting at t0 is due. */
static int64_t
ts_sla_warn_at(const ts_sla_cfg_t *cfg, int64_t t0, int64_t ms)
{
    int64_t  lead;

    if (cfg->warn_percent > 0) {
        return t0 + ms * cfg->warn_percent / 100;
    }
    lead = cfg->warn_ms < ms ? cfg->warn_ms : ms;
    return t0 + ms - lead;
}


void
ts_sla_dates(const ts_sla_cfg_t *cfg, int priority, int64_t created_at,
    ts_sla_due_t *out)
{
    memset(out, 0, sizeof(*out));
    if (priority < 0 || priority >= TS_SLA_PRIORITIES) {
        return;
    }
    out->response_due = created_at + cfg->response_ms[priority];
    out->resolution_due = created_at + cfg->resolution_ms[priority];
    out->response_warn = ts_sla_warn_at(cfg, created_at,
                                        cfg->response_ms[priority]);
    out->resolution_warn = ts_sla_warn_at(cfg, created_at,
                                          cfg->resolution_ms[priority]);
}


int
ts_sla_breached(const ts_sla_state_t *st, int64_t now)
{
    if (st->breached_at != 0) {
        return 1;
    }
    if (st->completed) {
        return 0;       /* a late completion was marked when it happened */
    }
    if (st->due.response_due != 0 && st->responded_at == 0
        && now > st->due.response_due)
    {
        return 1;
    }
    return st->due.resolution_due != 0 && now > st->due.resolution_due;
}


int
ts_sla_due_soon(const ts_sla_state_t *st, int64_t now)
{
    if (st->completed || ts_sla_breached(st, now)) {
        return 0;
    }
    if (st->due.response_due != 0 && st->responded_at == 0
        && now >= st->due.response_warn)
    {
        return 1;
    }
    return st->due.resolution_due != 0 && !st->completed
           && now >= st->due.resolution_warn;
}


void
ts_sla_write(ts_jw_t *w, const ts_sla_state_t *st, int64_t now)
{
    if (st->due.resolution_due == 0) {
        ts_jw_raw(w, "null", 4);
        return;
    }
    TS_JW_LIT(w, "{\"firstResponseDue\":");
    ts_jw_time(w, st->due.response_due);
    TS_JW_LIT(w, ",\"resolutionDue\":");
    ts_jw_time(w, st->due.resolution_due);
    TS_JW_LIT(w, ",\"firstResponseAt\":");
    ts_jw_time(w, st->responded_at);
    TS_JW_LIT(w, ",\"breached\":");
    ts_jw_lit(w, ts_sla_breached(st, now) ? "true" : "false");
    TS_JW_LIT(w, ",\"breachedAt\":");
    ts_jw_time(w, st->breached_at);
    TS_JW_LIT(w, ",\"dueSoon\":");
    ts_jw_lit(w, ts_sla_due_soon(st, now) ? "true" : "false");
    ts_jw_raw(w, "}", 1);
}


json_t *
ts_sla_figures(int64_t completed, int64_t breached)
{
    return json_pack("{s:I, s:I, s:o}", "completed", (json_int_t) completed,
                     "breached", (json_int_t) breached,
                     "withinSla", completed > 0
                     ? json_real(100.0 * (double) (completed - breached)
                                 / (double) completed)
                     : json_null());
}

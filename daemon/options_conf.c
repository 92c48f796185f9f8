/*
 * options_conf: the ticket_* directives ticketd takes from nginx.conf
 * (ticketd -c), each parsed as nginx's module parses it
 * (ngx_module/ngx_http_ticket_daemon.c for the daemon's own, the main
 * module for store, socket, secret and Redis): the same ranges, the same
 * shared parsers (ts_valid_url, ts_mail_address_check,
 * ts_assign_cfg_weight), times as ngx_parse_time, relative paths from the
 * main file's folder.  So a file nginx -t accepts is one ticketd -t
 * accepts, and the reverse.
 */

#define _GNU_SOURCE             /* asprintf */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "ts_assign.h"
#include "ts_mail.h"
#include "ts_sla.h"
#include "ts_store.h"
#include "ts_validate.h"

/* --- nginx.conf (-c) ---------------------------------------------------- */

/*
 * The ticket_* directives ticketd takes from the http block.  Others of
 * the prefix (ticket_api, ticket_limit_zone, ticket_socketio_ping, ...)
 * are nginx's alone and skipped; nginx -t checks those.
 */
typedef enum {
    D_STORE, D_DAEMON, D_SECRET, D_REDIS, D_REDIS_PW,
    D_AI_PROVIDER, D_AI_URL, D_AI_MODEL, D_AI_KEY, D_AI_TIMEOUT,
    D_AI_CONCURRENCY,
    D_MAIL_TRANSPORT, D_MAIL_FROM, D_MAIL_REPLY_TO, D_SENDGRID_KEY,
    D_SENDGRID_URL, D_SMTP_URL, D_SMTP_USER, D_SMTP_PW, D_OUTBOX,
    D_PUBLIC_URL,
    D_ASSIGN_WEIGHTS, D_ASSIGN_CAPACITY, D_ASSIGN_TARGET, D_ASSIGN_TIE,
    D_SLA, D_SLA_WARNING,
    D_ASSIGN_ABSENCE,
    D_PRESENCE_GRACE, D_JOBS, D_JOB_LEASE, D_JOB_RETENTION,
    D_DEAD_JOB_RETENTION, D_DAEMON_LOG, D_DAEMON_PIDFILE
} directive_e;

static const struct {
    const char   *name;
    directive_e   id;
    int           multi;             /* takes 1 or more words */
} directives[] = {
    { "ticket_store", D_STORE, 0 },
    { "ticket_daemon", D_DAEMON, 0 },
    { "ticket_jwt_secret_file", D_SECRET, 0 },
    { "ticket_redis", D_REDIS, 0 },
    { "ticket_redis_password_file", D_REDIS_PW, 0 },
    { "ticket_ai_provider", D_AI_PROVIDER, 0 },
    { "ticket_ai_url", D_AI_URL, 0 },
    { "ticket_ai_model", D_AI_MODEL, 0 },
    { "ticket_ai_key_file", D_AI_KEY, 0 },
    { "ticket_ai_timeout", D_AI_TIMEOUT, 0 },
    { "ticket_ai_concurrency", D_AI_CONCURRENCY, 0 },
    { "ticket_mail_transport", D_MAIL_TRANSPORT, 0 },
    { "ticket_mail_from", D_MAIL_FROM, 0 },
    { "ticket_mail_reply_to", D_MAIL_REPLY_TO, 0 },
    { "ticket_sendgrid_key_file", D_SENDGRID_KEY, 0 },
    { "ticket_sendgrid_url", D_SENDGRID_URL, 0 },
    { "ticket_smtp_url", D_SMTP_URL, 0 },
    { "ticket_smtp_user", D_SMTP_USER, 0 },
    { "ticket_smtp_password_file", D_SMTP_PW, 0 },
    { "ticket_outbox", D_OUTBOX, 0 },
    { "ticket_public_url", D_PUBLIC_URL, 0 },
    { "ticket_assign_weights", D_ASSIGN_WEIGHTS, 1 },
    { "ticket_assign_capacity", D_ASSIGN_CAPACITY, 0 },
    { "ticket_assign_target", D_ASSIGN_TARGET, 0 },
    { "ticket_assign_tie_window", D_ASSIGN_TIE, 0 },
    /* the workers read these too (priority changes): the same parser,
     * ts_sla.h, in both */
    { "ticket_sla", D_SLA, 1 },
    { "ticket_sla_warning", D_SLA_WARNING, 0 },
    { "ticket_assign_absence", D_ASSIGN_ABSENCE, 0 },
    { "ticket_presence_grace", D_PRESENCE_GRACE, 0 },
    { "ticket_jobs", D_JOBS, 0 },
    { "ticket_job_lease", D_JOB_LEASE, 0 },
    { "ticket_job_retention", D_JOB_RETENTION, 0 },
    { "ticket_dead_job_retention", D_DEAD_JOB_RETENTION, 0 },
    { "ticket_daemon_log", D_DAEMON_LOG, 0 },
    { "ticket_daemon_pidfile", D_DAEMON_PIDFILE, 0 },
};

#define NDIRECTIVES  (sizeof(directives) / sizeof(directives[0]))


/* A time within [min, max] ms ("off" is 0 when off_ok), or -1. */
static long long
conf_time(const char *v, long long min, long long max, int off_ok)
{
    long long  t;

    if (off_ok && strcmp(v, "off") == 0) {
        return 0;
    }
    t = conf_parse_time(v, 0);
    return t < min || t > max ? -1 : t;
}


/* A whole number within [min, max], or -1. */
static long
conf_num(const char *v, long min, long max)
{
    char  *end;
    long   n;

    if (*v < '0' || *v > '9') {
        return -1;
    }
    errno = 0;
    n = strtol(v, &end, 10);
    return errno != 0 || *end != '\0' || n < min || n > max ? -1 : n;
}


/*
 * One directive into o: NULL, or why its value is bad (after "invalid
 * value ... in "name"").  Relative paths are relative to nginx's conf
 * prefix, the main file's folder, as nginx resolves them.
 */
static const char *
conf_apply(options_t *o, directive_e id, const conf_directive_t *d,
    const char **bad)
{
    job_runner_cfg_t  *jc = &o->jobs;
    const char        *v = d->args[0], *full;
    char              *s;
    ts_errmsg_t        err;
    static char        why[TS_ERRMSG_MAX];
    long long          t;
    double             x;
    long               n;
    size_t             i;

    *bad = v;
    switch (id) {

    case D_STORE:
        if (strncmp(v, "sqlite:", 7) == 0) {
            if (v[7] == '\0') {
                return "a file path after \"sqlite:\"";
            }
            full = conf_full_name(&o->conf, v + 7);
            if (full == NULL || asprintf(&s, "sqlite:%s", full) < 0
                || conf_keep(&o->conf, s) == NULL)
            {
                return "out of memory";
            }
            o->store_uri = s;
            return NULL;
        }
        if (strncmp(v, "mongodb://", 10) == 0
            || strncmp(v, "mongodb+srv://", 14) == 0)
        {
            if (ts_store_uri_check(v, why, sizeof(why)) != 0) {
                return why;
            }
            o->store_uri = v;
            return NULL;
        }
        return "expected \"sqlite:/path/to/file.db\" or"
               " \"mongodb://host/database\"";

    case D_DAEMON:
        if (strcmp(v, "off") == 0) {
            return "ticketd needs \"unix:/path/to/ticketd.sock\", not"
                   " \"off\"";
        }
        if (strncmp(v, "unix:", 5) != 0 || v[5] == '\0') {
            return "expected \"unix:/path/to/ticketd.sock\"";
        }
        o->socket_path = conf_full_name(&o->conf, v + 5);
        return o->socket_path ? NULL : "out of memory";

    case D_REDIS:
        o->redis_url = strcmp(v, "off") == 0 ? NULL : v;
        return NULL;

    case D_SECRET: case D_REDIS_PW: case D_AI_KEY: case D_SENDGRID_KEY:
    case D_SMTP_PW: case D_OUTBOX: case D_DAEMON_LOG: case D_DAEMON_PIDFILE:
        full = conf_full_name(&o->conf, v);
        if (full == NULL) {
            return "out of memory";
        }
        if (*v == '\0') {
            return "a file name";
        }
        *(id == D_SECRET ? &o->secret_path
          : id == D_REDIS_PW ? &o->redis_password_file
          : id == D_AI_KEY ? &o->ai_key_file
          : id == D_SENDGRID_KEY ? &o->sendgrid_key_file
          : id == D_SMTP_PW ? &o->smtp_password_file
          : id == D_OUTBOX ? &jc->outbox_dir
          : id == D_DAEMON_LOG ? &o->log_path : &o->pidfile) = full;
        return NULL;

    case D_AI_PROVIDER:
        if (strcmp(v, "offline") && strcmp(v, "gemini") && strcmp(v, "openai"))
        {
            return "expected offline, gemini or openai";
        }
        jc->provider = v;
        return NULL;

    case D_MAIL_TRANSPORT:
        if (strcmp(v, "outbox") && strcmp(v, "sendgrid") && strcmp(v, "smtp"))
        {
            return "expected outbox, sendgrid or smtp";
        }
        o->mail_transport = v;
        return NULL;

    case D_AI_URL: case D_SENDGRID_URL: case D_PUBLIC_URL:
        if (!ts_valid_url(v, "http https")) {
            return "expected an http:// or https:// URL";
        }
        *(id == D_AI_URL ? &jc->ai_url : id == D_SENDGRID_URL
          ? &jc->sendgrid_url : &jc->public_url) = v;
        return NULL;

    case D_SMTP_URL:
        if (!ts_valid_url(v, "smtp smtps")) {
            return "expected an smtp:// or smtps:// URL";
        }
        jc->smtp_url = v;
        return NULL;

    case D_AI_MODEL: case D_SMTP_USER:
        if (*v == '\0') {
            return "a name";
        }
        *(id == D_AI_MODEL ? &jc->ai_model : &jc->smtp_user) = v;
        return NULL;

    case D_MAIL_FROM: case D_MAIL_REPLY_TO:
        if (ts_mail_address_check(v) != 0) {
            return "expected \"Name <address@domain>\" or"
                   " \"address@domain\"";
        }
        *(id == D_MAIL_FROM ? &jc->mail_from : &jc->mail_reply_to) = v;
        return NULL;

    case D_ASSIGN_WEIGHTS:
        for (i = 0; i < d->nargs; i++) {
            *bad = d->args[i];
            if (ts_assign_cfg_weight(&jc->assign, d->args[i], err) != 0) {
                snprintf(why, sizeof(why), "%s", err);
                return why;
            }
        }
        if (ts_assign_cfg_check(&jc->assign, err) != 0) {
            snprintf(why, sizeof(why), "%s", err);
            return why;
        }
        return NULL;

    case D_ASSIGN_CAPACITY:
        n = conf_num(v, 1, 100000);
        if (n < 0) {
            return "expected a number of tickets from 1 to 100000";
        }
        jc->assign.capacity = (double) n;
        return NULL;

    case D_ASSIGN_TARGET:
        t = conf_time(v, 60000, 365LL * 86400000, 0);
        if (t < 0) {
            return "expected a time from 1m to 1y, such as 24h";
        }
        jc->assign.target_hours = (double) t / 3600000.0;
        return NULL;

    case D_SLA:
        for (i = 0; i < d->nargs; i++) {
            char  e[128];

            *bad = d->args[i];
            if (ts_sla_cfg_target(&jc->sla, d->args[i], e) != 0) {
                snprintf(why, sizeof(why), "%s", e);
                return why;
            }
        }
        return NULL;

    case D_SLA_WARNING:
        {
            char  e[128];

            if (ts_sla_cfg_warning(&jc->sla, v, e) != 0) {
                snprintf(why, sizeof(why), "%s", e);
                return why;
            }
        }
        return NULL;

    case D_ASSIGN_TIE:
        if (ts_assign_number(v, &x) != 0 || x > 1) {
            return "expected a decimal number from 0 to 1, such as 0.05";
        }
        jc->assign.tie_margin = x;
        return NULL;

    case D_ASSIGN_ABSENCE:
        t = conf_time(v, 1000, OPTIONS_RETENTION_MAX_S * 1000LL, 1);
        if (t < 0) {
            return "wants a time from 1s to 3650d, or \"off\"";
        }
        jc->assign_absence_ms = t;
        return NULL;

    case D_AI_TIMEOUT:
        t = conf_time(v, 1000, 3600000, 0);
        if (t < 0) {
            return "expected a time from 1s to 1h";
        }
        jc->ai_timeout_ms = (long) t;
        return NULL;

    case D_PRESENCE_GRACE:
        t = conf_time(v, 0, 3600000, 0);
        if (t < 0) {
            return "expected a time from 0 to 1h";
        }
        o->presence_grace_ms = (uint64_t) t;
        return NULL;

    case D_JOB_LEASE:
        t = conf_time(v, 1000, 86400000, 0);
        if (t < 0) {
            return "expected a time from 1s to 1d";
        }
        jc->lease_ms = t;
        return NULL;

    case D_JOB_RETENTION: case D_DEAD_JOB_RETENTION:
        t = conf_time(v, 1000, OPTIONS_RETENTION_MAX_S * 1000LL, 1);
        if (t < 0) {
            return "expected a time from 1s to 3650d, or off";
        }
        *(id == D_JOB_RETENTION ? &o->job_retention
          : &o->dead_job_retention) = (long) (t / 1000);
        return NULL;

    case D_AI_CONCURRENCY: case D_JOBS:
        n = conf_num(v, id == D_JOBS ? 0 : 1, 100000);
        if (n < 0) {
            return id == D_JOBS ? "expected a number from 0 to 100000"
                                : "expected a number from 1 to 100000";
        }
        *(id == D_JOBS ? &jc->concurrency : &jc->ai_concurrency) = (int) n;
        return NULL;
    }
    return "unknown";
}


/*
 * Read the file of -c and take what ticketd needs: nginx's "user" (the
 * link peer allowed besides root and ticketd's own user; nginx's default
 * is "nobody") and the directives above, each once, in the http block.
 * 0, or -1 (reported on stderr as nginx reports, with file:line).
 */
int
options_conf(options_t *o)
{
    const conf_directive_t  *d;
    const char              *why, *bad;
    unsigned char            seen[NDIRECTIVES];
    int                      have_user = 0;
    size_t                   i, k;

    if (conf_init(&o->conf, NULL) != 0 || conf_load(&o->conf, o->conf_file)
        != 0)
    {
        fprintf(stderr, "ticketd: %s\n", o->conf.err[0] ? o->conf.err
                                                         : "out of memory");
        return -1;
    }
    memset(seen, 0, sizeof(seen));
    o->link_user = "nobody";
    for (i = 0; i < o->conf.n; i++) {
        d = &o->conf.d[i];
        if (d->context[0] == '\0' && strcmp(d->name, "user") == 0) {
            if (have_user++ || d->nargs < 1 || d->nargs > 2) {
                fprintf(stderr, "ticketd: %s \"user\" directive in %s:%u\n",
                        have_user > 1 ? "duplicate" : "invalid number of"
                        " arguments in", d->file, d->line);
                return -1;
            }
            o->link_user = d->args[0];
            o->link_user_explicit = 1;
            continue;
        }
        if (strcmp(d->context, "http") != 0
            || strncmp(d->name, "ticket_", 7) != 0)
        {
            continue;
        }
        for (k = 0; k < NDIRECTIVES; k++) {
            if (strcmp(d->name, directives[k].name) == 0) {
                break;
            }
        }
        if (k == NDIRECTIVES) {
            continue;                   /* nginx's alone */
        }
        if (seen[k]++) {
            fprintf(stderr, "ticketd: \"%s\" directive is duplicate in"
                    " %s:%u\n", d->name, d->file, d->line);
            return -1;
        }
        if (d->nargs == 0 || (d->nargs > 1 && !directives[k].multi)) {
            fprintf(stderr, "ticketd: invalid number of arguments in \"%s\""
                    " directive in %s:%u\n", d->name, d->file, d->line);
            return -1;
        }
        why = conf_apply(o, directives[k].id, d, &bad);
        if (why != NULL) {
            fprintf(stderr, "ticketd: invalid value \"%s\" in \"%s\" (%s)"
                    " in %s:%u\n", bad, d->name, why, d->file, d->line);
            return -1;
        }
    }
    if (o->socket_path == NULL) {
        fprintf(stderr, "ticketd: no \"ticket_daemon unix:PATH\" in the http"
                " block of %s: ticketd needs the socket the workers link"
                " to\n", o->conf_file);
        return -1;
    }
    if (o->store_uri == NULL) {
        fprintf(stderr, "ticketd: no \"ticket_store\" in the http block of"
                " %s\n", o->conf_file);
        return -1;
    }
    return 0;
}

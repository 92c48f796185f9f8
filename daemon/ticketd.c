/*
 * ticketd: entry point of the daemon.
 *
 * Owns the process lifecycle and the signals (the settings, from nginx.conf
 * and the command line, are options.c's):
 *
 *   start:  options -> log -> open the store off the loop -> job counts
 *           -> listen on the socket -> pidfile -> housekeeping timer
 *   stop:   (SIGTERM, SIGINT, or a startup failure) stop accepting and
 *           close links -> stop the timer -> let store work in flight
 *           finish and close the store -> close the signal handles, which
 *           ends uv_run -> remove the pidfile -> "stopped"
 *
 * The loop runs until no handle is left, so "every handle closed" is the
 * one condition for exit; nothing calls exit() once the loop runs.
 * SIGHUP reopens the log file.  SIGPIPE is ignored (a worker that went away
 * is a failed write on that link, nothing more).
 */

#define _GNU_SOURCE             /* asprintf */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "housekeeping.h"
#include "http_client.h"
#include "job_runner.h"
#include "link_server.h"
#include "log.h"
#include "metrics.h"
#include "options.h"
#include "presence.h"
#include "viewers.h"
#include "redis_bridge.h"
#include "store_pool.h"
#include "ts_cache.h"
#include "ts_wire.h"


static struct {
    uv_loop_t     loop;
    options_t     opt;
    uv_signal_t   signals[3];        /* SIGTERM, SIGINT, SIGHUP */
    int           nsignals;          /* initialised, to close at the end */
    int           stopping;
    int           exit_code;
    int           pidfile_written;

    /* Startup job counts: written by the pool thread, read in its done. */
    ts_rc_e          counts_rc;
    ts_job_counts_t  counts;
    char             counts_err[256];
} td;

static void daemon_stop(int exit_code);

/* --- pidfile ---------------------------------------------------------- */

static int
pidfile_write(const char *path)
{
    char  buf[32];
    int   fd, n, ok;

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        return -1;
    }
    n = snprintf(buf, sizeof(buf), "%ld\n", (long) getpid());
    ok = write(fd, buf, (size_t) n) == n;
    if (close(fd) != 0) {
        ok = 0;
    }
    return ok ? 0 : -1;
}

/* --- startup ---------------------------------------------------------- */

static void
daemon_listen(void)
{
    char  err[512];

    if (link_server_start(&td.loop, td.opt.socket_path, err, sizeof(err))
        != 0)
    {
        log_error("%s", err);
        daemon_stop(1);
        return;
    }
    log_info("listening on %s", td.opt.socket_path);

    if (td.opt.pidfile != NULL) {
        if (pidfile_write(td.opt.pidfile) != 0) {
            log_error("cannot write pidfile %s: %s", td.opt.pidfile,
                      strerror(errno));
            unlink(td.opt.pidfile);
            daemon_stop(1);
            return;
        }
        td.pidfile_written = 1;
    }

    if (housekeeping_start(&td.loop,
                           (uint64_t) td.opt.sweep_interval * 1000,
                           (int64_t) td.opt.job_retention * 1000,
                           (int64_t) td.opt.dead_job_retention * 1000) != 0)
    {
        log_error("cannot start the housekeeping timer");
        daemon_stop(1);
        return;
    }
    if (td.opt.redis_url != NULL
        && redis_bridge_start(&td.loop, options_redis_url(&td.opt),
                              td.opt.bridge_key) != 0)
    {
        daemon_stop(1);
        return;
    }
    if (presence_start(&td.loop, td.opt.presence_grace_ms) != 0) {
        log_error("cannot start the presence timer");
        daemon_stop(1);
        return;
    }
    if (metrics_start(&td.loop, METRICS_PUSH_MS) != 0) {
        log_error("cannot start the metrics timer");
        daemon_stop(1);
        return;
    }
    if (job_runner_start(&td.loop, &td.opt.jobs) != 0) {
        daemon_stop(1);
    }
}

static void
counts_work(ts_store_t *s, void *arg)
{
    td.counts_rc = ts_store_job_counts(s, &td.counts);
    if (td.counts_rc != TS_OK) {
        snprintf(td.counts_err, sizeof(td.counts_err), "%s",
                 ts_store_errmsg(s));
    }
}

static void
counts_done(void *arg, int status)
{
    if (status != 0) {
        log_warn("job counts did not run: %s", uv_strerror(status));
    } else if (td.counts_rc != TS_OK) {
        log_warn("job counts failed: %s", td.counts_err);
    } else {
        log_info("jobs pending=%" PRId64 " running=%" PRId64 " dead=%" PRId64,
                 td.counts.pending, td.counts.running, td.counts.dead);
    }
    if (!td.stopping) {
        daemon_listen();
    }
}

static void
store_opened(const char *err, void *arg)
{
    char  shown[512];

    if (err != NULL) {
        log_error("store open failed: %s", err);
        daemon_stop(1);
        return;
    }
    options_store_for_log(td.opt.store_uri, shown, sizeof(shown));
    log_info("store open: %s %s", store_pool_backend(), shown);

    if (td.stopping) {
        return;
    }
    if (store_pool_submit(counts_work, counts_done, NULL) != 0) {
        log_warn("cannot queue the job counts");
        daemon_listen();
    }
}

/* --- shutdown --------------------------------------------------------- */

static void
store_closed(void *arg)
{
    int  i;

    log_debug("store closed");
    for (i = 0; i < td.nsignals; i++) {
        uv_close((uv_handle_t *) &td.signals[i], NULL);
    }
}

static void
runner_stopped(void *arg)
{
    if (store_pool_close(store_closed, NULL) != 0) {
        store_closed(NULL);
    }
}


/* Begin an orderly stop; the loop ends when the last handle is closed. */
static void
daemon_stop(int exit_code)
{
    if (exit_code > td.exit_code) {
        td.exit_code = exit_code;
    }
    if (td.stopping) {
        return;
    }
    td.stopping = 1;

    link_server_stop();
    housekeeping_stop();
    presence_stop();
    viewers_stop();
    metrics_stop();
    redis_bridge_stop();
    /* jobs in flight finish their store step (or their lease expires)
     * before the store closes */
    job_runner_stop(runner_stopped, NULL);
}

static void
on_signal(uv_signal_t *h, int signum)
{
    if (signum == SIGHUP) {
        if (log_reopen() != 0) {
            log_error("cannot reopen the log file: %s", strerror(errno));
        } else {
            log_info("log reopened");
        }
        return;
    }
    if (td.stopping) {
        log_info("%s: already stopping", strsignal(signum));
        return;
    }
    log_info("%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    daemon_stop(0);
}

static int
signals_start(void)
{
    static const int  sig[] = { SIGTERM, SIGINT, SIGHUP };
    int               i, rc;

    for (i = 0; i < 3; i++) {
        rc = uv_signal_init(&td.loop, &td.signals[i]);
        if (rc != 0) {
            log_error("signal %d: %s", sig[i], uv_strerror(rc));
            return -1;
        }
        td.nsignals++;
        rc = uv_signal_start(&td.signals[i], on_signal, sig[i]);
        if (rc != 0) {
            log_error("signal %d: %s", sig[i], uv_strerror(rc));
            return -1;
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    int  rc;

    rc = options_parse(argc, argv, &td.opt);
    if (rc != OPTIONS_RUN) {
        options_free(&td.opt);
        return rc;
    }
    if (td.opt.have_secret) {
        link_server_expect(td.opt.fp_store, td.opt.fp_socket,
                           td.opt.fp_secret);
    }

    if (log_open(td.opt.log_path, td.opt.verbose ? LOG_DEBUG : LOG_INFO)
        != 0)
    {
        fprintf(stderr, "ticketd: cannot open log %s: %s\n",
                td.opt.log_path, strerror(errno));
        return 1;
    }

    signal(SIGPIPE, SIG_IGN);

    if (td.opt.conf_file != NULL) {
        log_info("configuration: %s", td.opt.conf_file);
    }
    if (!td.opt.have_secret) {
        log_warn("no JWT secret (ticket_jwt_secret_file): the workers'"
                 " store, socket and secret are not checked at hello");
    }

    /* before any thread exists: curl's global state is not thread-safe */
    if (http_client_global_init() != 0) {
        log_error("curl_global_init failed");
        log_close();
        return 1;
    }

    rc = uv_loop_init(&td.loop);
    if (rc != 0) {
        log_error("loop init: %s", uv_strerror(rc));
        log_close();
        return 1;
    }

    metrics_count_cache();

    /* A failure here still runs the loop, so handles made so far close. */
    if (signals_start() != 0
        || store_pool_open(&td.loop, td.opt.store_uri,
                           options_redis_url(&td.opt), td.opt.cache_key, 1,
                           store_opened, NULL)
           != 0)
    {
        log_error("cannot start");
        daemon_stop(1);
    }

    uv_run(&td.loop, UV_RUN_DEFAULT);

    if (td.pidfile_written && unlink(td.opt.pidfile) != 0) {
        log_warn("cannot remove %s: %s", td.opt.pidfile, strerror(errno));
    }
    rc = uv_loop_close(&td.loop);
    if (rc != 0) {
        log_warn("loop close: %s", uv_strerror(rc));
    }
    uv_library_shutdown();

    log_info("stopped");
    log_close();
    options_free(&td.opt);
    return td.exit_code;
}

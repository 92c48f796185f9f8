/*
 * log: formats and writes the daemon's log lines (see log.h).
 *
 * State is process-wide: one destination fd, its path (for SIGHUP reopen)
 * and the minimum level.  A mutex guards the fd swap in log_reopen()
 * against a thread-pool thread writing at the same moment; the write
 * itself is one write(2) on an O_APPEND fd, which is what keeps lines
 * whole when logrotate or another process appends too.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "ts_validate.h"

static struct {
    pthread_mutex_t  lock;
    int              fd;          /* -1: stderr */
    char            *path;        /* owned; NULL: stderr */
    log_level_e      min_level;
} logger = { PTHREAD_MUTEX_INITIALIZER, -1, NULL, LOG_INFO };

static const char *const level_names[] = { "debug", "info", "warn", "error" };

static int
log_open_file(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int
log_open(const char *path, log_level_e min_level)
{
    int  fd;

    logger.min_level = min_level;
    if (path == NULL) {
        return 0;
    }

    fd = log_open_file(path);
    if (fd == -1) {
        return -1;
    }

    pthread_mutex_lock(&logger.lock);
    logger.fd = fd;
    logger.path = strdup(path);
    pthread_mutex_unlock(&logger.lock);

    if (logger.path == NULL) {
        log_close();
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

int
log_reopen(void)
{
    int  fd, old;

    if (logger.path == NULL) {
        return 0;
    }
    fd = log_open_file(logger.path);
    if (fd == -1) {
        return -1;
    }

    pthread_mutex_lock(&logger.lock);
    old = logger.fd;
    logger.fd = fd;
    pthread_mutex_unlock(&logger.lock);

    if (old != -1) {
        close(old);
    }
    return 0;
}

void
log_close(void)
{
    pthread_mutex_lock(&logger.lock);
    if (logger.fd != -1) {
        close(logger.fd);
    }
    logger.fd = -1;
    free(logger.path);
    logger.path = NULL;
    pthread_mutex_unlock(&logger.lock);
}

int
log_enabled(log_level_e level)
{
    return level >= logger.min_level;
}

void
log_msg(log_level_e level, const char *fmt, ...)
{
    char             line[LOG_LINE_MAX];
    struct timespec  ts;
    struct tm        tm;
    va_list          ap;
    size_t           n, i, head;
    int              r;

    if (!log_enabled(level)) {
        return;
    }

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);

    r = snprintf(line, sizeof(line),
                 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ticketd[%ld] %s: ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                 (long) getpid(), level_names[level]);
    head = (size_t) r;

    va_start(ap, fmt);
    r = vsnprintf(line + head, sizeof(line) - head - 1, fmt, ap);
    va_end(ap);
    if (r < 0) {
        r = 0;
    }

    n = head + (size_t) r;
    if (n > sizeof(line) - 2) {
        /* Cut: keep room for "...\n", and never inside a character (a
         * long comment quoted in an event line is UTF-8 text). */
        n = head + ts_utf8_cut(line + head, sizeof(line) - 2 - head,
                               (size_t) -1, sizeof(line) - 5 - head);
        memcpy(line + n, "...", 3);
        n += 3;
    }

    /* One call, one line: a peer must not be able to forge log lines. */
    for (i = head; i < n; i++) {
        unsigned char c = (unsigned char) line[i];
        if (c < 0x20 || c == 0x7f) {
            line[i] = '?';
        }
    }
    line[n++] = '\n';

    pthread_mutex_lock(&logger.lock);
    if (write(logger.fd == -1 ? STDERR_FILENO : logger.fd, line, n) < 0) {
        /* Nowhere left to report it. */
    }
    pthread_mutex_unlock(&logger.lock);
}


int
log_limited(log_limit_t *lim, const char *what)
{
    struct timespec      ts;
    unsigned long long   now;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (unsigned long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (lim->start_ms == 0 || now - lim->start_ms >= LOG_LIMIT_PERIOD_MS) {
        if (lim->dropped > 0) {
            log_warn("%s: %u more like it in the last %d s not logged", what,
                     lim->dropped, LOG_LIMIT_PERIOD_MS / 1000);
        }
        lim->start_ms = now;
        lim->lines = 0;
        lim->dropped = 0;
    }
    if (lim->lines < LOG_LIMIT_BURST) {
        lim->lines++;
        return 1;
    }
    lim->dropped++;
    return 0;
}

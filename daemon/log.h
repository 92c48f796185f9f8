/*
 * log: the daemon's log sink.
 *
 * Owns the log destination (a file opened for append, or stderr) and the
 * line format:
 *
 *     2024-05-01T12:00:00.123Z ticketd[4242] info: message
 *
 * Every line is written with a single write(2), so lines from several
 * threads never interleave and nothing sits in a buffer when the process
 * dies.  Control characters in a message (a newline inside an event name
 * sent by a peer, say) are replaced by '?', so one call is one line.
 */

#ifndef TICKETD_LOG_H
#define TICKETD_LOG_H

typedef enum {
    LOG_DEBUG = 0,
    LOG_INFO,
    LOG_WARN,
    LOG_ERROR
} log_level_e;

/* Longest line written; longer messages are cut and end in "...". */
#define LOG_LINE_MAX  8192

/*
 * Send lines to path (append, created 0640) or to stderr when path is NULL;
 * lines below min_level are dropped.  0 on success, -1 with errno set when
 * the file cannot be opened (logging then goes to stderr).
 */
int log_open(const char *path, log_level_e min_level);

/* Reopen the log file (after rotation); 0 on success or when logging to
 * stderr, -1 with errno set when it fails (the old file stays in use). */
int log_reopen(void);

/* Close the log file; later lines go to stderr. */
void log_close(void);

/* 1 when a line of this level would be written. */
int log_enabled(log_level_e level);

/* Write one line at level; thread-safe. */
void log_msg(log_level_e level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * A budget for lines a peer can cause (refused connections, forged
 * messages): LOG_LIMIT_BURST lines per LOG_LIMIT_PERIOD_MS each, the rest
 * counted and reported as one line when the next period starts.  Zero it
 * to start; one thread per budget.
 */
#define LOG_LIMIT_BURST      10
#define LOG_LIMIT_PERIOD_MS  10000

typedef struct {
    unsigned long long  start_ms;      /* of the current period */
    unsigned            lines;         /* written in it */
    unsigned            dropped;       /* suppressed in it */
} log_limit_t;

/* 1 when the caller may write its line now (within the budget), else 0
 * (the line is counted as suppressed). */
int log_limited(log_limit_t *lim, const char *what);

#define log_debug(...)  log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)   log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)   log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...)  log_msg(LOG_ERROR, __VA_ARGS__)

#endif /* TICKETD_LOG_H */

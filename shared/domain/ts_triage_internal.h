/*
 * ts_triage_internal: what the triage files (ts_triage.c and its siblings
 * ts_triage_*.c in shared/domain/) share.  Not for callers outside them.
 */

#ifndef TS_TRIAGE_INTERNAL_H
#define TS_TRIAGE_INTERNAL_H

#include <stddef.h>

/* err = the printf-style text, cut to errlen (nothing if err is NULL). */
void tt_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* err = prefix + s (valid UTF-8), s cut and control characters blanked. */
void tt_err_text(char *err, size_t errlen, const char *prefix,
    const char *s);

#endif /* TS_TRIAGE_INTERNAL_H */

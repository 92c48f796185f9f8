/*
 * ts_prom: the Prometheus text format writer (see ts_prom.h).
 *
 * Escaping (the format's rules): in a label value a backslash is written
 * \\, a double quote \", a line feed \n; in HELP text a backslash \\ and
 * a line feed \n.  Nothing else needs escaping: the text is UTF-8 and the
 * values come from our own tables (route patterns, zone names, kinds).
 */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_prom.h"


void
ts_prom_init(ts_prom_t *p)
{
    memset(p, 0, sizeof(*p));
}


void
ts_prom_free(ts_prom_t *p)
{
    free(p->buf);
    memset(p, 0, sizeof(*p));
}


const char *
ts_prom_text(ts_prom_t *p, size_t *len)
{
    if (p->oom) {
        return NULL;
    }
    if (p->buf == NULL) {
        ts_prom_raw(p, "", 0);
        if (p->oom) {
            return NULL;
        }
    }
    *len = p->len;
    return p->buf;
}


/* Room for n more bytes and the NUL. */
static int
ts_prom_reserve(ts_prom_t *p, size_t n)
{
    size_t  cap;
    char   *nb;

    if (p->oom) {
        return -1;
    }
    if (p->len + n + 1 <= p->cap) {
        return 0;
    }
    cap = p->cap ? p->cap : 4096;
    while (cap < p->len + n + 1) {
        cap *= 2;
    }
    nb = realloc(p->buf, cap);
    if (nb == NULL) {
        p->oom = 1;
        return -1;
    }
    p->buf = nb;
    p->cap = cap;
    return 0;
}


void
ts_prom_raw(ts_prom_t *p, const char *s, size_t len)
{
    if (ts_prom_reserve(p, len) != 0) {
        return;
    }
    memcpy(p->buf + p->len, s, len);
    p->len += len;
    p->buf[p->len] = '\0';
}


static void
ts_prom_str(ts_prom_t *p, const char *s)
{
    ts_prom_raw(p, s, strlen(s));
}


static void
ts_prom_printf(ts_prom_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
ts_prom_printf(ts_prom_t *p, const char *fmt, ...)
{
    char     tmp[128];
    va_list  ap;
    int      n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t) n < sizeof(tmp)) {
        ts_prom_raw(p, tmp, (size_t) n);
    }
}


/* A label value, escaped, straight into the text. */
static void
ts_prom_value(ts_prom_t *p, const char *v)
{
    for (; *v; v++) {
        switch (*v) {
        case '\\': ts_prom_raw(p, "\\\\", 2); break;
        case '"':  ts_prom_raw(p, "\\\"", 2); break;
        case '\n': ts_prom_raw(p, "\\n", 2); break;
        default:   ts_prom_raw(p, v, 1);
        }
    }
}


void
ts_prom_family(ts_prom_t *p, const char *name, const char *type,
    const char *help)
{
    ts_prom_str(p, "# HELP ");
    ts_prom_str(p, name);
    ts_prom_raw(p, " ", 1);
    for (; *help; help++) {
        if (*help == '\\') {
            ts_prom_raw(p, "\\\\", 2);
        } else if (*help == '\n') {
            ts_prom_raw(p, "\\n", 2);
        } else {
            ts_prom_raw(p, help, 1);
        }
    }
    ts_prom_str(p, "\n# TYPE ");
    ts_prom_str(p, name);
    ts_prom_raw(p, " ", 1);
    ts_prom_str(p, type);
    ts_prom_raw(p, "\n", 1);
}


/* name{labels[,le="..."]} and a space */
static void
ts_prom_head(ts_prom_t *p, const char *name, const char *suffix,
    const char *const *labels, const char *le)
{
    int  first = 1;

    ts_prom_str(p, name);
    ts_prom_str(p, suffix);
    if ((labels == NULL || labels[0] == NULL) && le == NULL) {
        ts_prom_raw(p, " ", 1);
        return;
    }
    ts_prom_raw(p, "{", 1);
    for (; labels != NULL && labels[0] != NULL && labels[1] != NULL;
         labels += 2)
    {
        if (!first) {
            ts_prom_raw(p, ",", 1);
        }
        first = 0;
        ts_prom_str(p, labels[0]);
        ts_prom_raw(p, "=\"", 2);
        ts_prom_value(p, labels[1]);
        ts_prom_raw(p, "\"", 1);
    }
    if (le != NULL) {
        if (!first) {
            ts_prom_raw(p, ",", 1);
        }
        ts_prom_str(p, "le=\"");
        ts_prom_str(p, le);
        ts_prom_raw(p, "\"", 1);
    }
    ts_prom_raw(p, "} ", 2);
}


void
ts_prom_u64(ts_prom_t *p, const char *name, const char *const *labels,
    uint64_t v)
{
    ts_prom_head(p, name, "", labels, NULL);
    ts_prom_printf(p, "%llu\n", (unsigned long long) v);
}


static void
ts_prom_number(ts_prom_t *p, double v)
{
    if (isnan(v)) {
        ts_prom_str(p, "NaN");
    } else if (isinf(v)) {
        ts_prom_str(p, v > 0 ? "+Inf" : "-Inf");
    } else {
        ts_prom_printf(p, "%.17g", v);
    }
}


void
ts_prom_double(ts_prom_t *p, const char *name, const char *const *labels,
    double v)
{
    ts_prom_head(p, name, "", labels, NULL);
    ts_prom_number(p, v);
    ts_prom_raw(p, "\n", 1);
}


void
ts_prom_histogram(ts_prom_t *p, const char *name, const char *const *labels,
    const double *bounds, size_t nbounds, const uint64_t *counts, double sum)
{
    char      le[32];
    uint64_t  total = 0;
    size_t    i;

    for (i = 0; i <= nbounds; i++) {
        total += counts[i];
        if (i < nbounds) {
            snprintf(le, sizeof(le), "%g", bounds[i]);
        } else {
            snprintf(le, sizeof(le), "+Inf");
        }
        ts_prom_head(p, name, "_bucket", labels, le);
        ts_prom_printf(p, "%llu\n", (unsigned long long) total);
    }
    ts_prom_head(p, name, "_sum", labels, NULL);
    ts_prom_number(p, sum);
    ts_prom_raw(p, "\n", 1);
    ts_prom_head(p, name, "_count", labels, NULL);
    ts_prom_printf(p, "%llu\n", (unsigned long long) total);
}

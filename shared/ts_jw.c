/*
 * ts_jw: JSON text writer (see ts_jw.h).
 *
 * Strings are copied in runs: bytes that need no escaping are found with a
 * table lookup and memcpy'd together, so typical ticket text costs about a
 * memcpy.
 */

#include <stdlib.h>
#include <string.h>

#include "ts_jw.h"
#include "ts_model.h"
#include "ts_validate.h"

static int
ts_jw_reserve(ts_jw_t *w, size_t n)
{
    size_t  cap;
    char   *nb;

    if (w->err) {
        return -1;
    }
    if (w->len + n + 1 <= w->cap) {
        return 0;
    }
    cap = w->cap ? w->cap : 256;
    while (cap < w->len + n + 1) {
        cap *= 2;
    }
    nb = realloc(w->buf, cap);
    if (nb == NULL) {
        w->err = 1;
        return -1;
    }
    w->buf = nb;
    w->cap = cap;
    return 0;
}


void
ts_jw_init(ts_jw_t *w, size_t cap)
{
    memset(w, 0, sizeof(*w));
    (void) ts_jw_reserve(w, cap);
}


void
ts_jw_raw(ts_jw_t *w, const char *s, size_t n)
{
    if (ts_jw_reserve(w, n) == 0) {
        memcpy(w->buf + w->len, s, n);
        w->len += n;
    }
}


void
ts_jw_lit(ts_jw_t *w, const char *s)
{
    ts_jw_raw(w, s, strlen(s));
}


/* 1 for bytes that need an escape in a JSON string. */
static const unsigned char  ts_jw_special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,     /* '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,     /* '\\' */
};


void
ts_jw_str(ts_jw_t *w, const char *s, size_t n)
{
    static const char    hex[] = "0123456789abcdef";
    const unsigned char  *p = (const unsigned char *) s;
    size_t                i = 0, run;
    char                  esc[6];
    int                   utf8_ok;

    if (s == NULL) {
        ts_jw_raw(w, "null", 4);
        return;
    }
    utf8_ok = ts_valid_utf8(s, n);
    ts_jw_raw(w, "\"", 1);

    while (i < n) {
        run = i;
        while (run < n && !ts_jw_special[p[run]] && (utf8_ok || p[run] < 0x80))
        {
            run++;
        }
        ts_jw_raw(w, s + i, run - i);
        if (run == n) {
            break;
        }
        i = run;
        if (p[i] >= 0x80) {
            /* only when the text is not valid UTF-8: never emit it */
            ts_jw_raw(w, "\\ufffd", 6);
        } else if (p[i] == '"' || p[i] == '\\') {
            esc[0] = '\\';
            esc[1] = (char) p[i];
            ts_jw_raw(w, esc, 2);
        } else if (p[i] == '\n') {
            ts_jw_raw(w, "\\n", 2);
        } else if (p[i] == '\r') {
            ts_jw_raw(w, "\\r", 2);
        } else if (p[i] == '\t') {
            ts_jw_raw(w, "\\t", 2);
        } else {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[p[i] >> 4];
            esc[5] = hex[p[i] & 0xf];
            ts_jw_raw(w, esc, 6);
        }
        i++;
    }
    ts_jw_raw(w, "\"", 1);
}


void
ts_jw_int(ts_jw_t *w, int64_t v)
{
    char      buf[24], *p = buf + sizeof(buf);
    uint64_t  u = v < 0 ? (uint64_t) -(v + 1) + 1 : (uint64_t) v;

    do {
        *--p = (char) ('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) {
        *--p = '-';
    }
    ts_jw_raw(w, p, buf + sizeof(buf) - p);
}


void
ts_jw_time(ts_jw_t *w, int64_t ms)
{
    char  iso[32];

    if (ms <= 0) {
        ts_jw_raw(w, "null", 4);
        return;
    }
    ts_iso_time(ms, iso);
    ts_jw_raw(w, "\"", 1);
    ts_jw_raw(w, iso, strlen(iso));
    ts_jw_raw(w, "\"", 1);
}


char *
ts_jw_finish(ts_jw_t *w, size_t *len)
{
    char  *b;

    if (w->err || ts_jw_reserve(w, 0) != 0) {
        ts_jw_free(w);
        return NULL;
    }
    b = w->buf;
    b[w->len] = '\0';
    if (len) {
        *len = w->len;
    }
    memset(w, 0, sizeof(*w));
    return b;
}


void
ts_jw_free(ts_jw_t *w)
{
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

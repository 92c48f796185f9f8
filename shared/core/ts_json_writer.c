/*
 * ts_jw: JSON text writer (see ts_jw.h).
 *
 * Strings are escaped and checked for valid UTF-8 in one pass, into room
 * reserved once per string.
 */

#include <stdlib.h>
#include <string.h>

#include "ts_json_writer.h"
#include "ts_model.h"

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


/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t
ts_jw_utf8_len(const unsigned char *p, size_t n)
{
    unsigned int  cp;
    size_t        len, k;

    len = (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3
          : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || len > n) {
        return 0;
    }
    cp = p[0] & (0x7f >> len);
    for (k = 1; k < len; k++) {
        if ((p[k] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[k] & 0x3f);
    }
    /* overlong forms, surrogates, past U+10FFFF */
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800)
        || (len == 4 && cp < 0x10000) || cp > 0x10ffff
        || (cp >= 0xd800 && cp <= 0xdfff))
    {
        return 0;
    }
    return len;
}


void
ts_jw_str(ts_jw_t *w, const char *s, size_t n)
{
    static const char    hex[] = "0123456789abcdef";
    const unsigned char  *p = (const unsigned char *) s;
    unsigned char         c;
    size_t                i = 0, len;
    char                 *o;

    if (s == NULL) {
        ts_jw_raw(w, "null", 4);
        return;
    }
    /* worst case: every byte becomes a six-byte escape */
    if (ts_jw_reserve(w, 6 * n + 2) != 0) {
        return;
    }
    o = w->buf + w->len;
    *o++ = '"';

    while (i < n) {
        c = p[i];
        if (c < 0x80) {
            i++;
            if (!ts_jw_special[c]) {
                *o++ = (char) c;
            } else if (c == '"' || c == '\\') {
                *o++ = '\\';
                *o++ = (char) c;
            } else if (c == '\n') {
                *o++ = '\\';
                *o++ = 'n';
            } else {
                memcpy(o, "\\u00", 4);
                o[4] = hex[c >> 4];
                o[5] = hex[c & 0xf];
                o += 6;
            }
            continue;
        }
        len = ts_jw_utf8_len(p + i, n - i);
        if (len == 0) {
            /* never emit invalid UTF-8 */
            memcpy(o, "\\ufffd", 6);
            o += 6;
            i++;
            continue;
        }
        memcpy(o, p + i, len);
        o += len;
        i += len;
    }
    *o++ = '"';
    w->len = (size_t) (o - w->buf);
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

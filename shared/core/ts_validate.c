/*
 * ts_validate: field rules for request bodies.  Messages written into err
 * are shown to clients, so they name the field and the rule, nothing else.
 */

#define _GNU_SOURCE             /* memrchr */
#include <ctype.h>
#include <locale.h>
#include <pthread.h>
#include <wctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ts_model.h"
#include "ts_validate.h"

#define TS_SKILL_MAX_LEN  50
#define TS_SKILLS_MAX     50


int
ts_valid_utf8(const char *s, size_t len)
{
    const unsigned char  *p = (const unsigned char *) s;
    size_t                i = 0, n, k;
    unsigned int          cp;

    while (i < len) {
        unsigned char c = p[i];

        if (c == 0) {
            return 0;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            n = 1; cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2; cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3; cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + n >= len) {
            return 0;
        }
        for (k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        /* overlong forms, surrogates and values past U+10FFFF */
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800)
            || (n == 3 && cp < 0x10000) || cp > 0x10ffff
            || (cp >= 0xd800 && cp <= 0xdfff))
        {
            return 0;
        }
        i += n + 1;
    }
    return 1;
}


size_t
ts_utf8_len(const char *s, size_t len)
{
    size_t  i, n = 0;

    for (i = 0; i < len; i++) {
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            n++;
        }
    }
    return n;
}


size_t
ts_utf8_cut(const char *s, size_t len, size_t max_chars, size_t max_bytes)
{
    const unsigned char  *p = (const unsigned char *) s;
    size_t                i = 0, n, chars = 0;

    /*
     * Whole characters only: a lead byte says how long its sequence is,
     * and a sequence that would pass len or max_bytes is left out, so text
     * cut short by bytes elsewhere (snprintf) loses its partial tail too.
     */
    while (i < len && chars < max_chars) {
        n = p[i] < 0xc0 ? 1 : p[i] < 0xe0 ? 2 : p[i] < 0xf0 ? 3 : 4;
        if (n > max_bytes - i || n > len - i) {
            break;
        }
        i += n;
        chars++;
    }
    return i;
}


void
ts_utf8_trim_tail(char *s)
{
    s[ts_utf8_cut(s, strlen(s), (size_t) -1, (size_t) -1)] = '\0';
}


char *
ts_strndup_lower(const char *s, size_t len)
{
    char  *d = malloc(len + 1);

    if (d == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        d[i] = (char) tolower((unsigned char) s[i]);
    }
    d[len] = '\0';
    return d;
}


void
ts_trim(const char **s, size_t *len)
{
    while (*len && isspace((unsigned char) (*s)[0])) {
        (*s)++;
        (*len)--;
    }
    while (*len && isspace((unsigned char) (*s)[*len - 1])) {
        (*len)--;
    }
}


int
ts_get_user_id_or_null(json_t *obj, const char *field, const char **id,
    ts_errmsg_t err)
{
    json_t      *v = json_object_get(obj, field);
    const char  *s;

    *id = NULL;
    if (v == NULL) {
        snprintf(err, TS_ERRMSG_MAX, "%s is required (a user id or null)",
                 field);
        return -1;
    }
    if (json_is_null(v)) {
        return 1;
    }
    s = json_string_value(v);
    if (s == NULL || json_string_length(v) != 24 || !ts_oid_valid(s)) {
        snprintf(err, TS_ERRMSG_MAX, "%s must be a user id (24 hex digits) "
                 "or null", field);
        return -1;
    }
    *id = s;
    return 0;
}


int
ts_get_string_opt(json_t *obj, const char *field, size_t min, size_t max,
    int trim, const char **out, size_t *out_len, ts_errmsg_t err)
{
    json_t      *v = json_object_get(obj, field);
    const char  *s;
    size_t       len, chars;

    *out = NULL;
    *out_len = 0;
    if (v == NULL || json_is_null(v)) {
        return 1;
    }
    if (!json_is_string(v)) {
        snprintf(err, TS_ERRMSG_MAX, "%s must be a string", field);
        return -1;
    }
    s = json_string_value(v);
    len = json_string_length(v);
    if (!ts_valid_utf8(s, len)) {
        snprintf(err, TS_ERRMSG_MAX, "%s must be valid UTF-8 text", field);
        return -1;
    }
    if (trim) {
        ts_trim(&s, &len);
    }
    chars = ts_utf8_len(s, len);
    if (chars < min || chars > max) {
        if (min <= 1 && chars == 0) {
            snprintf(err, TS_ERRMSG_MAX, "%s is required", field);
        } else {
            snprintf(err, TS_ERRMSG_MAX,
                     "%s must be between %zu and %zu characters", field,
                     min, max);
        }
        return -1;
    }
    *out = s;
    *out_len = len;
    return 0;
}


int
ts_get_string(json_t *obj, const char *field, size_t min, size_t max,
    int trim, const char **out, size_t *out_len, ts_errmsg_t err)
{
    int  rc = ts_get_string_opt(obj, field, min, max, trim, out, out_len,
                                err);

    if (rc == 1) {
        snprintf(err, TS_ERRMSG_MAX, "%s is required", field);
        return -1;
    }
    return rc;
}


/* Add one skill (trimmed, lower-cased) to arr unless empty or already
 * present; an item breaking the rule fails (strict) or is skipped. */
static int
ts_skill_add(json_t *arr, const char *s, size_t len,
    const ts_skills_rule_t *rule, ts_errmsg_t err)
{
    char    *low;
    size_t   i;

    ts_trim(&s, &len);
    if (len == 0) {
        return 0;
    }
    if (!ts_valid_utf8(s, len) || ts_utf8_len(s, len) > rule->max_len) {
        if (!rule->strict) {
            return 0;
        }
        snprintf(err, TS_ERRMSG_MAX, "each skill must be 1 to %zu characters",
                 rule->max_len);
        return -1;
    }
    for (i = 0; rule->no_ctl && i < len; i++) {
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) {
            return 0;
        }
    }
    /* lower-cased beyond ASCII ("Русский" and "русский" are one skill) */
    low = ts_utf8_fold(s, len, &len);
    if (low == NULL) {
        snprintf(err, TS_ERRMSG_MAX, "out of memory");
        return -1;
    }
    for (i = 0; i < json_array_size(arr); i++) {
        if (strcmp(json_string_value(json_array_get(arr, i)), low) == 0) {
            free(low);
            return 0;
        }
    }
    if (json_array_size(arr) >= rule->max) {
        free(low);
        if (!rule->strict) {
            return 0;
        }
        snprintf(err, TS_ERRMSG_MAX, "at most %zu skills", rule->max);
        return -1;
    }
    i = json_array_append_new(arr, json_stringn(low, len));
    free(low);
    if (i != 0) {
        snprintf(err, TS_ERRMSG_MAX, "out of memory");
        return -1;
    }
    return 0;
}


int
ts_skills_from(json_t *v, const char *field, const ts_skills_rule_t *rule,
    json_t **out, ts_errmsg_t err)
{
    json_t      *item, *arr;
    const char  *s, *comma;
    size_t       i, len, n;

    *out = NULL;
    arr = json_array();
    if (arr == NULL) {
        snprintf(err, TS_ERRMSG_MAX, "out of memory");
        return -1;
    }

    if (json_is_string(v)) {
        s = json_string_value(v);
        len = json_string_length(v);
        while (len) {
            comma = memchr(s, ',', len);
            n = comma ? (size_t) (comma - s) : len;
            if (ts_skill_add(arr, s, n, rule, err) != 0) {
                goto fail;
            }
            s += n;
            len -= n;
            if (comma) {
                s++;
                len--;
            }
        }
    } else if (json_is_array(v)) {
        if (rule->strict && json_array_size(v) > 4 * rule->max) {
            snprintf(err, TS_ERRMSG_MAX, "at most %zu skills", rule->max);
            goto fail;
        }
        json_array_foreach(v, i, item) {
            if (!json_is_string(item)) {
                if (!rule->strict) {
                    continue;
                }
                snprintf(err, TS_ERRMSG_MAX, "%s must be strings", field);
                goto fail;
            }
            if (ts_skill_add(arr, json_string_value(item),
                             json_string_length(item), rule, err) != 0)
            {
                goto fail;
            }
        }
    } else if (rule->strict) {
        snprintf(err, TS_ERRMSG_MAX,
                 "%s must be an array of strings or a comma-separated string",
                 field);
        goto fail;
    }

    *out = arr;
    return 0;

fail:
    json_decref(arr);
    return -1;
}


int
ts_get_skills(json_t *obj, const char *field, json_t **out, ts_errmsg_t err)
{
    static const ts_skills_rule_t  rule = {
        TS_SKILLS_MAX, TS_SKILL_MAX_LEN, 1, 0
    };
    json_t  *v = json_object_get(obj, field);

    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return 1;
    }
    return ts_skills_from(v, field, &rule, out, err);
}


int
ts_valid_email(const char *s, size_t len)
{
    const char  *at, *dot;
    size_t       i;

    if (len < 3 || len > 254) {
        return 0;
    }
    at = memchr(s, '@', len);
    if (at == NULL || at == s || memchr(at + 1, '@', len - (at - s) - 1)) {
        return 0;
    }
    if (at - s > 64) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c <= ' ' || c >= 0x7f || strchr("()<>,;:\\\"[]", c)) {
            return 0;
        }
    }
    /* the domain needs a dot that is neither first nor last */
    dot = memrchr(at + 1, '.', len - (at - s) - 1);
    if (dot == NULL || dot == at + 1 || dot == s + len - 1) {
        return 0;
    }
    for (i = (size_t) (at - s); i + 1 < len; i++) {
        if (s[i] == '.' && s[i + 1] == '.') {
            return 0;
        }
    }
    return 1;
}


int
ts_valid_username(const char *s, size_t len)
{
    if (len < 3 || len > 32) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];
        if (!(isalnum(c) || c == '_' || c == '.' || c == '-') || c >= 0x80) {
            return 0;
        }
    }
    return 1;
}


/* 1 when a and b are the same text but for case (Unicode lower case). */
static int
ts_utf8_same(const char *a, const char *b)
{
    char  *fa = ts_utf8_fold(a, strlen(a), NULL);
    char  *fb = ts_utf8_fold(b, strlen(b), NULL);
    int    same = fa && fb ? strcmp(fa, fb) == 0 : strcasecmp(a, b) == 0;

    free(fa);
    free(fb);
    return same;
}


json_t *
ts_skills_merge(json_t *a, json_t *b)
{
    json_t  *out = json_array(), *v, *w;
    size_t   i, j;
    int      seen;

    json_array_foreach(a, i, v) {
        if (json_is_string(v)) {
            json_array_append(out, v);
        }
    }
    json_array_foreach(b, i, v) {
        if (!json_is_string(v)) {
            continue;
        }
        seen = 0;
        json_array_foreach(out, j, w) {
            if (ts_utf8_same(json_string_value(w), json_string_value(v))) {
                seen = 1;
                break;
            }
        }
        if (!seen) {
            json_array_append(out, v);
        }
    }
    return out;
}


static int
ts_hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = (char) tolower((unsigned char) c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}


/* Percent-decode s[0..n) into out; -1 when malformed or too long. */
static int
ts_unescape(const char *s, size_t n, char *out, size_t outlen)
{
    size_t  i, o = 0;
    int     hi, lo;
    char    ch;

    for (i = 0; i < n; i++) {
        ch = s[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%') {
            if (i + 2 >= n) {
                return -1;
            }
            hi = ts_hexval(s[i + 1]);
            lo = ts_hexval(s[i + 2]);
            if (hi < 0 || lo < 0) {
                return -1;
            }
            ch = (char) (hi * 16 + lo);
            i += 2;
        }
        if (ch == '\0' || o + 1 >= outlen) {
            return -1;
        }
        out[o++] = ch;
    }
    out[o] = '\0';
    return 0;
}


int
ts_query_get(const char *q, size_t len, const char *name, char *out,
    size_t outlen)
{
    size_t       nlen = strlen(name);
    const char  *p = q, *end = q + len, *amp, *eq;
    char         key[64];

    while (q != NULL && p < end) {
        amp = memchr(p, '&', end - p);
        if (amp == NULL) {
            amp = end;
        }
        eq = memchr(p, '=', amp - p);
        if (eq == NULL) {
            eq = amp;
        }
        if ((size_t) (eq - p) < sizeof(key)
            && ts_unescape(p, eq - p, key, sizeof(key)) == 0
            && strlen(key) == nlen && memcmp(key, name, nlen) == 0)
        {
            if (eq == amp) {
                out[0] = '\0';
                return 1;
            }
            return ts_unescape(eq + 1, amp - eq - 1, out, outlen) == 0
                   ? 1 : -1;
        }
        p = amp + 1;
    }
    return 0;
}


int
ts_query_int(const char *v, int64_t min, int64_t max, int64_t *out)
{
    int64_t  n = 0;

    if (*v == '\0' || strlen(v) > 10) {
        return -1;
    }
    for (; *v; v++) {
        if (*v < '0' || *v > '9') {
            return -1;
        }
        n = n * 10 + (*v - '0');
    }
    if (n < min || n > max) {
        return -1;
    }
    *out = n;
    return 0;
}


static locale_t        ts_utf8_locale;
static pthread_once_t  ts_utf8_once = PTHREAD_ONCE_INIT;

static void
ts_utf8_locale_init(void)
{
    /* glibc builds C.UTF-8 in: no locale files needed */
    ts_utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t) 0);
}


/* Decode one UTF-8 sequence at s (n bytes left); 0 when invalid. */
static size_t
ts_utf8_decode(const unsigned char *s, size_t n, unsigned int *cp)
{
    size_t  k, len;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    len = (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3
          : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || len > n) {
        return 0;
    }
    *cp = s[0] & (0x7f >> len);
    for (k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80) {
            return 0;
        }
        *cp = (*cp << 6) | (s[k] & 0x3f);
    }
    return len;
}


static size_t
ts_utf8_encode(unsigned int cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char) (0xc0 | (cp >> 6));
        o[1] = (char) (0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char) (0xe0 | (cp >> 12));
        o[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char) (0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char) (0xf0 | (cp >> 18));
    o[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char) (0x80 | (cp & 0x3f));
    return 4;
}


char *
ts_utf8_fold(const char *s, size_t len, size_t *outlen)
{
    const unsigned char  *p = (const unsigned char *) s;
    char                 *out, *o;
    unsigned int          cp, lc;
    size_t                i = 0, n;

    pthread_once(&ts_utf8_once, ts_utf8_locale_init);

    /* a lower-case form never needs more than 4 bytes per character */
    out = malloc(4 * len + 1);
    if (out == NULL) {
        return NULL;
    }
    o = out;
    while (i < len) {
        n = ts_utf8_decode(p + i, len - i, &cp);
        if (n == 0) {
            *o++ = (char) p[i++];
            continue;
        }
        lc = cp;
        if (cp < 0x80) {
            lc = (unsigned int) tolower((int) cp);
        } else if (ts_utf8_locale != (locale_t) 0) {
            lc = (unsigned int) towlower_l((wint_t) cp, ts_utf8_locale);
        }
        o += ts_utf8_encode(lc, o);
        i += n;
    }
    *o = '\0';
    if (outlen) {
        *outlen = (size_t) (o - out);
    }
    return out;
}


int
ts_valid_url(const char *s, const char *schemes)
{
    const char  *sep = strstr(s, "://"), *p, *host;
    size_t       n = sep ? (size_t) (sep - s) : 0;
    const char  *w = schemes;
    int          ok = 0;

    if (sep == NULL || n == 0) {
        return 0;
    }
    while (*w != '\0' && !ok) {
        size_t  k = strcspn(w, " ");

        ok = k == n && strncasecmp(w, s, n) == 0;
        w += k;
        while (*w == ' ') {
            w++;
        }
    }
    if (!ok) {
        return 0;
    }
    for (p = s; *p != '\0'; p++) {
        if ((unsigned char) *p <= 0x20 || *p == 0x7f) {
            return 0;
        }
    }
    host = sep + 3;
    if (*host == '[') {
        p = strchr(host, ']');
        return p != NULL && p > host + 1;
    }
    for (p = host; *p != '\0' && *p != '/' && *p != '?' && *p != '#'; p++)
    {
        if (!(isalnum((unsigned char) *p) || *p == '.' || *p == '-'
              || *p == '_' || *p == ':'))
        {
            return 0;
        }
    }
    return p > host;
}


int
ts_get_canned(json_t *obj, int partial, const char **title,
    size_t *title_len, const char **body, size_t *body_len, ts_errmsg_t err)
{
    int  rt, rb;

    *title = NULL;
    *body = NULL;
    *title_len = 0;
    *body_len = 0;
    if (partial) {
        rt = ts_get_string_opt(obj, "title", 1, TS_CANNED_TITLE_MAX, 1,
                               title, title_len, err);
        if (rt < 0) {
            return -1;
        }
        rb = ts_get_string_opt(obj, "body", 1, TS_CANNED_BODY_MAX, 1, body,
                               body_len, err);
        if (rb < 0) {
            return -1;
        }
        if (rt == 1 && rb == 1) {
            snprintf(err, TS_ERRMSG_MAX, "title or body is required");
            return -1;
        }
        return 0;
    }
    if (ts_get_string(obj, "title", 1, TS_CANNED_TITLE_MAX, 1, title,
                      title_len, err) != 0
        || ts_get_string(obj, "body", 1, TS_CANNED_BODY_MAX, 1, body,
                         body_len, err) != 0)
    {
        return -1;
    }
    return 0;
}


int
ts_get_bool_opt(json_t *obj, const char *field, int *out, ts_errmsg_t err)
{
    json_t  *v = json_object_get(obj, field);

    *out = 0;
    if (v == NULL || json_is_null(v)) {
        return 1;
    }
    if (!json_is_boolean(v)) {
        snprintf(err, TS_ERRMSG_MAX, "%s must be true or false", field);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}


/* "YYYY-MM-DDTHH:MM:SS[.mmm]Z" to ms; -1 when it is not that. */
static int64_t
ts_iso_parse(const char *s, size_t len)
{
    static const char  shape[] = "dddd-dd-ddTdd:dd:dd";
    struct tm          tm;
    int64_t            ms = 0, v[6] = { 0 };
    size_t             i, k = 0;
    time_t             t;

    if (len < sizeof(shape)) {
        return -1;
    }
    for (i = 0; i < sizeof(shape) - 1; i++) {
        if (shape[i] == 'd') {
            if (s[i] < '0' || s[i] > '9') {
                return -1;
            }
            v[k] = v[k] * 10 + (s[i] - '0');
        } else if (s[i] != shape[i]) {
            return -1;
        } else {
            k++;
        }
    }
    if (len == sizeof(shape) - 1 + 5 && s[i] == '.') {
        for (i++; i < len - 1; i++) {
            if (s[i] < '0' || s[i] > '9') {
                return -1;
            }
            ms = ms * 10 + (s[i] - '0');
        }
    } else if (len != sizeof(shape)) {
        return -1;
    }
    if (s[len - 1] != 'Z' || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31
        || v[3] > 23 || v[4] > 59 || v[5] > 60 || v[0] < 1970)
    {
        return -1;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = (int) v[0] - 1900;
    tm.tm_mon = (int) v[1] - 1;
    tm.tm_mday = (int) v[2];
    tm.tm_hour = (int) v[3];
    tm.tm_min = (int) v[4];
    tm.tm_sec = (int) v[5];
    t = timegm(&tm);
    return t < 0 ? -1 : (int64_t) t * 1000 + ms;
}


int
ts_get_time_opt(json_t *obj, const char *field, int64_t *ms, ts_errmsg_t err)
{
    json_t  *v = json_object_get(obj, field);

    *ms = 0;
    if (v == NULL || json_is_null(v)) {
        return 1;
    }
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *ms = json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        *ms = ts_iso_parse(json_string_value(v), json_string_length(v));
        if (*ms > 0) {
            return 0;
        }
    }
    *ms = 0;
    snprintf(err, TS_ERRMSG_MAX, "%s must be a date (ISO 8601, UTC) or "
             "milliseconds since 1970", field);
    return -1;
}

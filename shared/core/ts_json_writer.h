/*
 * ts_json_writer (functions ts_jw_*): a JSON text writer for hot paths (the ticket list), where
 * building a jansson tree only to print it costs more than the query.
 * Appends to one growing buffer; an allocation failure sticks in err and
 * makes ts_jw_finish() return NULL.  Callers write punctuation themselves.
 */

#ifndef TS_JSON_WRITER_H
#define TS_JSON_WRITER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char    *buf;
    size_t   len;
    size_t   cap;
    int      err;
} ts_jw_t;

/* Start an empty writer with room for cap bytes. */
void ts_jw_init(ts_jw_t *w, size_t cap);

/* Append n bytes as they are (punctuation, keys, trusted JSON). */
void ts_jw_raw(ts_jw_t *w, const char *s, size_t n);

/* Append a NUL-terminated string as it is. */
void ts_jw_lit(ts_jw_t *w, const char *s);

/* Append a string literal as it is (its length known at compile time). */
#define TS_JW_LIT(w, lit)  ts_jw_raw(w, lit, sizeof(lit) - 1)

/* Append s[0..n) as a JSON string: quoted, escaped; invalid UTF-8 bytes
 * become U+FFFD.  s == NULL appends null. */
void ts_jw_str(ts_jw_t *w, const char *s, size_t n);

/* Append a decimal integer. */
void ts_jw_int(ts_jw_t *w, int64_t v);

/* Append ms since the epoch as an ISO-8601 string, or null when ms <= 0. */
void ts_jw_time(ts_jw_t *w, int64_t ms);

/* Take the buffer (NUL-terminated, malloc'ed; *len its length) and reset
 * the writer; NULL after an allocation failure. */
char *ts_jw_finish(ts_jw_t *w, size_t *len);

/* Free the buffer without taking it. */
void ts_jw_free(ts_jw_t *w);

#endif /* TS_JSON_WRITER_H */

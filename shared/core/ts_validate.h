/*
 * ts_validate: typed access to JSON request bodies and the field rules of
 * the API (DESIGN.md section 3).  Each getter either yields a value or
 * writes a client-facing message into err and returns -1; missing optional
 * fields return 1.  No I/O.
 */

#ifndef TS_VALIDATE_H
#define TS_VALIDATE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define TS_ERRMSG_MAX  160

typedef char ts_errmsg_t[TS_ERRMSG_MAX];

/*
 * Required string field, trimmed if trim, length (in characters) within
 * [min, max].  0 and *out (points into the JSON) on success.
 */
int ts_get_string(json_t *obj, const char *field, size_t min, size_t max,
    int trim, const char **out, size_t *out_len, ts_errmsg_t err);

/*
 * A required field naming a user or nobody: a user id (24 lower-case hex
 * digits) gives 0 with *id pointing into the JSON; null gives 1 with
 * *id = NULL; missing, another type or a malformed id gives -1 and err.
 */
int ts_get_user_id_or_null(json_t *obj, const char *field, const char **id,
    ts_errmsg_t err);

/* Same, but a missing (or null) field returns 1 with *out = NULL. */
int ts_get_string_opt(json_t *obj, const char *field, size_t min, size_t max,
    int trim, const char **out, size_t *out_len, ts_errmsg_t err);

/* A canned response's limits, in code points after trimming. */
#define TS_CANNED_TITLE_MAX  100
#define TS_CANNED_BODY_MAX   5000

/*
 * A canned response's {title, body}: each trimmed, title 1..100 and body
 * 1..5000 code points.  Both required, or with partial (an edit) each
 * optional but at least one present.  0 with *title and *body pointing into
 * the JSON (NULL when absent), lengths in bytes; -1 with err.
 */
int ts_get_canned(json_t *obj, int partial, const char **title,
    size_t *title_len, const char **body, size_t *body_len, ts_errmsg_t err);

/*
 * Optional boolean field: 1 when missing or null (*out = 0), 0 with *out
 * when true or false, -1 with err for any other type.
 */
int ts_get_bool_opt(json_t *obj, const char *field, int *out,
    ts_errmsg_t err);

/*
 * Optional point in time: an ISO-8601 UTC string as the API writes dates
 * ("YYYY-MM-DDTHH:MM:SS[.mmm]Z") or a positive integer of milliseconds
 * since the epoch.  1 when missing or null (*ms = 0), 0 with *ms, -1 with
 * err otherwise.
 */
int ts_get_time_opt(json_t *obj, const char *field, int64_t *ms,
    ts_errmsg_t err);

/*
 * How a list of skills is read (ts_skills_from): at most max skills of 1
 * to max_len code points each.  strict: an item that breaks a rule fails
 * the list (user input); otherwise it is skipped (an AI provider's
 * answer), as are items holding control characters when no_ctl is set.
 */
typedef struct {
    size_t  max;
    size_t  max_len;
    int     strict;
    int     no_ctl;
} ts_skills_rule_t;

/*
 * The one normalisation of a skill list, shared by users' skills and
 * triage's relatedSkills so the two compare alike: v is an array of
 * strings or one comma-separated string; each item trimmed, lower-cased
 * (Unicode, ts_utf8_fold), empty and repeated ones dropped.  0 and a new
 * array in *out; -1 with err (naming field) when out of memory or, with
 * rule->strict, when v or an item breaks the rule.  A lenient rule reads
 * any other v as no skills.
 */
int ts_skills_from(json_t *v, const char *field, const ts_skills_rule_t *rule,
    json_t **out, ts_errmsg_t err);

/*
 * Skills: an array of strings or one comma-separated string; trimmed,
 * lower-cased (Unicode, ts_utf8_fold), empty items dropped, de-duplicated,
 * each 1..50 characters (code points), at most 50.  Missing field: 1 and *out = NULL; otherwise 0 and a new
 * array in *out.
 */
int ts_get_skills(json_t *obj, const char *field, json_t **out,
    ts_errmsg_t err);

/*
 * The first value of query parameter name in q[0..len), percent-decoded
 * ('+' is a space) into out: 1 found, 0 absent, -1 malformed (bad escape,
 * NUL byte, or longer than outlen - 1).
 */
int ts_query_get(const char *q, size_t len, const char *name, char *out,
    size_t outlen);

/*
 * A decoded query value as an integer within [min, max]: 1 to 10 ASCII
 * digits, nothing else (no sign, blank or exponent).  0 and *out, or -1.
 */
int ts_query_int(const char *v, int64_t min, int64_t max, int64_t *out);

/* A new array: a's skills, then b's not already there (case-insensitive,
 * beyond ASCII too). */
json_t *ts_skills_merge(json_t *a, json_t *b);

/* 1 when s is a plausible e-mail address (local@domain.tld, <= 254). */
int ts_valid_email(const char *s, size_t len);

/*
 * 1 when s is "<scheme>://<host>[...]" with a scheme of the
 * space-separated list schemes ("http https"), a host of letters, digits,
 * '.', '-', '_', ':' or a [v6] literal, and no blank or control
 * character anywhere; else 0.  For settings (ticket_*_url), not requests.
 */
int ts_valid_url(const char *s, const char *schemes);

/* 1 when s is 3..32 of [A-Za-z0-9_.-]. */
int ts_valid_username(const char *s, size_t len);

/* Narrow s[0..*len) to drop leading and trailing ASCII whitespace. */
void ts_trim(const char **s, size_t *len);

/* 1 when s is valid UTF-8 without NUL bytes. */
int ts_valid_utf8(const char *s, size_t len);

/* Number of UTF-8 characters in s (s must be valid UTF-8). */
size_t ts_utf8_len(const char *s, size_t len);

/*
 * The one way text is shortened: the byte length of the longest prefix of
 * s[0..len) holding at most max_chars code points and at most max_bytes
 * bytes that ends on a character boundary (a cut never splits a UTF-8
 * sequence, so valid text stays valid).  s may end inside a character
 * (text already cut by bytes, by snprintf say): that partial character is
 * left out too.
 */
size_t ts_utf8_cut(const char *s, size_t len, size_t max_chars,
    size_t max_bytes);

/* Drop a partial UTF-8 character at the end of the C string s (what a
 * byte-bounded snprintf into a fixed buffer may leave). */
void ts_utf8_trim_tail(char *s);

/*
 * Unicode lower-case copy (malloc'ed, NUL-terminated) of the UTF-8 text
 * s[0..len), for case-insensitive comparison beyond ASCII ("École" and
 * "école" fold alike); invalid sequences are copied as they are.  *outlen
 * (may be NULL) receives its length.
 */
char *ts_utf8_fold(const char *s, size_t len, size_t *outlen);

/* ASCII lower-case copy (malloc'ed) of s[0..len). */
char *ts_strndup_lower(const char *s, size_t len);

#endif /* TS_VALIDATE_H */

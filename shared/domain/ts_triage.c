/*
 * ts_triage: AI ticket triage as pure logic (see ts_triage.h).
 *
 * This file owns the result: clearing a ts_triage_t, the priority words,
 * the reply text parser -- model text -> first JSON object in it ->
 * validated, clamped ts_triage_t -- and the JSON form of a triage, plus
 * the err helpers its siblings share (ts_triage_internal.h).  Siblings:
 *   ts_triage_providers.c -- the prompt, the provider request bodies and
 *      the provider reply envelopes (Gemini, OpenAI-compatible);
 *   ts_triage_offline.c -- the offline triage, keyword tables all static
 *      const.
 *
 * Text written into err is short, ASCII or valid UTF-8 (provider strings
 * are cut on character boundaries, control characters blanked): it ends
 * up in job errors that the jobs API shows to admins as JSON.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* memmem */
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ts_triage.h"
#include "ts_triage_internal.h"
#include "ts_validate.h"

/* Start positions tried when looking for a JSON object in model text:
 * bounds the work on hostile text full of unbalanced braces. */
#define TT_OBJECT_TRIES  32

#define TT_ERR_QUOTE     100      /* longest provider text quoted in err */


void
ts_triage_clear(ts_triage_t *t)
{
    free(t->summary);
    free(t->helpful_notes);
    json_decref(t->related_skills);
    memset(t, 0, sizeof(*t));
}


/* ---- err helpers (ts_triage_internal.h) ----------------------------- */

void
tt_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}


/*
 * err = prefix + s (provider text, valid UTF-8), s cut to fit on a
 * character boundary with control characters as spaces.
 */
void
tt_err_text(char *err, size_t errlen, const char *prefix, const char *s)
{
    size_t  n, room, k, i;

    if (err == NULL || errlen == 0) {
        return;
    }
    n = strlen(prefix);
    if (n > errlen - 1) {
        n = errlen - 1;
    }
    memcpy(err, prefix, n);
    room = errlen - 1 - n;
    if (room > TT_ERR_QUOTE) {
        room = TT_ERR_QUOTE;
    }
    k = ts_utf8_cut(s, strlen(s), (size_t) -1, room);
    for (i = 0; i < k; i++) {
        unsigned char c = (unsigned char) s[i];
        err[n + i] = (char) ((c < 0x20 || c == 0x7f) ? ' ' : c);
    }
    err[n + k] = '\0';
}


/* ---- model text -> validated triage --------------------------------- */

const char *
ts_triage_priority(const char *s, size_t len)
{
    static const struct {
        const char  *word;
        const char  *priority;
    } map[] = {
        { "low", "Low" },
        { "medium", "Medium" },
        { "high", "High" },
        /* not in the schema, but what free-form models say instead */
        { "urgent", "High" },
        { "critical", "High" },
        { "normal", "Medium" },
    };
    size_t  i;

    if (s == NULL) {
        return NULL;
    }
    ts_trim(&s, &len);
    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strlen(map[i].word) == len
            && strncasecmp(s, map[i].word, len) == 0)
        {
            return map[i].priority;
        }
    }
    return NULL;
}


/* relatedSkills value v (may be NULL) into a new array in *out: the rule
 * of ts_get_skills() (so ticket and moderator skills compare alike), but
 * an item that breaks it -- empty, over 50 characters, control
 * characters, invalid UTF-8, already present, or past 20 -- is skipped,
 * not an error.  -1 only when v is no list or out of memory. */
static int
tt_skills(json_t *v, json_t **out, char *err, size_t errlen)
{
    static const ts_skills_rule_t  rule = {
        TS_TRIAGE_SKILLS_MAX, TS_TRIAGE_SKILL_LEN_MAX, 0, 1
    };
    ts_errmsg_t  why;

    *out = NULL;
    if (v != NULL && !json_is_null(v) && !json_is_array(v)
        && !json_is_string(v))
    {
        tt_err(err, errlen, "relatedSkills not an array");
        return -1;
    }
    if (ts_skills_from(v, "relatedSkills", &rule, out, why) != 0) {
        tt_err(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}


/* Member name, or its snake_case spelling alt; NULL when neither. */
static json_t *
tt_member(json_t *o, const char *name, const char *alt)
{
    json_t  *v = json_object_get(o, name);

    if (v == NULL && alt != NULL) {
        v = json_object_get(o, alt);
    }
    return v;
}


/*
 * A string member, trimmed and cut to max characters, copied into *out.
 * Missing or null: 1 (and *out untouched).  Not a string: -1.
 */
static int
tt_string(json_t *v, size_t max, char **out)
{
    const char  *s;
    size_t       len;

    if (v == NULL || json_is_null(v)) {
        return 1;
    }
    if (!json_is_string(v)) {
        return -1;
    }
    /* jansson strings are valid UTF-8 without NUL bytes (flags 0) */
    s = json_string_value(v);
    len = json_string_length(v);
    ts_trim(&s, &len);
    len = ts_utf8_cut(s, len, max, len);
    *out = strndup(s, len);
    return 0;
}


/* Validate and clamp the reply object o into *out. */
static int
tt_from_object(json_t *o, ts_triage_t *out, char *err, size_t errlen)
{
    ts_triage_t  t = { NULL, NULL, NULL, NULL };
    json_t      *v;
    int          rc;

    v = tt_member(o, "summary", NULL);
    rc = tt_string(v, TS_TRIAGE_SUMMARY_MAX, &t.summary);
    if (rc != 0) {
        tt_err(err, errlen, rc > 0 ? "missing summary"
                                   : "summary not a string");
        goto fail;
    }
    if (t.summary == NULL) {
        goto oom;
    }
    if (t.summary[0] == '\0') {
        tt_err(err, errlen, "empty summary");
        goto fail;
    }

    v = tt_member(o, "priority", NULL);
    if (v == NULL || json_is_null(v)) {
        tt_err(err, errlen, "missing priority");
        goto fail;
    }
    if (!json_is_string(v)) {
        tt_err(err, errlen, "priority not a string");
        goto fail;
    }
    t.priority = ts_triage_priority(json_string_value(v),
                                    json_string_length(v));
    if (t.priority == NULL) {
        tt_err_text(err, errlen, "bad priority: ", json_string_value(v));
        goto fail;
    }

    v = tt_member(o, "helpfulNotes", "helpful_notes");
    rc = tt_string(v, TS_TRIAGE_NOTES_MAX, &t.helpful_notes);
    if (rc < 0) {
        tt_err(err, errlen, "helpfulNotes not a string");
        goto fail;
    }
    if (rc > 0) {
        t.helpful_notes = strdup("");
    }
    if (t.helpful_notes == NULL) {
        goto oom;
    }

    v = tt_member(o, "relatedSkills", "related_skills");
    if (tt_skills(v, &t.related_skills, err, errlen) != 0) {
        goto fail;
    }

    *out = t;
    return 0;

oom:
    tt_err(err, errlen, "out of memory");
fail:
    ts_triage_clear(&t);
    return -1;
}


/*
 * Index of the '}' closing the '{' at s[i], braces inside JSON strings
 * not counted; 0 when it never closes.
 */
static size_t
tt_balanced_end(const char *s, size_t len, size_t i)
{
    size_t  depth = 0;
    int     in_str = 0;

    for ( /* void */ ; i < len; i++) {
        char c = s[i];

        if (in_str) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_str = 0;
            }
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{') {
            depth++;
        } else if (c == '}' && --depth == 0) {
            return i;
        }
    }
    return 0;
}


/*
 * The first balanced {...} of s that parses as a JSON object, trying at
 * most TT_OBJECT_TRIES opening braces (the inner ones of a candidate that
 * failed included).  New reference or NULL.
 */
static json_t *
tt_find_object(const char *s, size_t len)
{
    const char  *p;
    json_t      *j;
    size_t       i = 0, end;
    int          tries;

    for (tries = 0; tries < TT_OBJECT_TRIES && i < len; tries++) {
        p = memchr(s + i, '{', len - i);
        if (p == NULL) {
            break;
        }
        i = (size_t) (p - s);
        end = tt_balanced_end(s, len, i);
        if (end != 0) {
            j = json_loadb(s + i, end - i + 1, 0, NULL);
            if (json_is_object(j)) {
                return j;
            }
            json_decref(j);
        }
        i++;
    }
    return NULL;
}


int
ts_triage_parse_text(const char *text, size_t len, ts_triage_t *out,
    char *err, size_t errlen)
{
    const char  *s, *end;
    json_t      *o;
    size_t       n;
    int          rc;

    if (len > TS_TRIAGE_TEXT_MAX) {
        tt_err(err, errlen, "reply too large");
        return -1;
    }
    s = text;
    n = text ? len : 0;
    ts_trim(&s, &n);
    if (n == 0) {
        tt_err(err, errlen, "empty reply");
        return -1;
    }
    if (!ts_valid_utf8(text, len)) {
        tt_err(err, errlen, "invalid UTF-8");
        return -1;
    }

    /* reasoning models served by Ollama or llama.cpp think aloud first */
    if (n >= 7 && memcmp(s, "<think>", 7) == 0) {
        end = memmem(s, n, "</think>", 8);
        if (end != NULL) {
            n -= (size_t) (end + 8 - s);
            s = end + 8;
        }
    }

    o = tt_find_object(s, n);
    if (o == NULL) {
        tt_err(err, errlen, "not JSON");
        return -1;
    }
    rc = tt_from_object(o, out, err, errlen);
    json_decref(o);
    return rc;
}

json_t *
ts_triage_json(const ts_triage_t *t)
{
    json_t  *o = json_object();

    if (o == NULL) {
        return NULL;
    }
    /* json_object_set_new() takes the value even when it fails */
    if (json_object_set_new(o, "summary", t->summary
                            ? json_string(t->summary) : json_null()) != 0
        || json_object_set_new(o, "priority", t->priority
                               ? json_string(t->priority) : json_null())
           != 0
        || json_object_set_new(o, "helpfulNotes", t->helpful_notes
                               ? json_string(t->helpful_notes)
                               : json_null()) != 0
        || json_object_set_new(o, "relatedSkills", t->related_skills
                               ? json_deep_copy(t->related_skills)
                               : json_array()) != 0)
    {
        json_decref(o);
        return NULL;
    }
    return o;
}

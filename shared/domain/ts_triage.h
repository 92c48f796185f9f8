/*
 * ts_triage: AI triage of a new ticket as pure logic (DESIGN.md 5.1).
 * Owns the triage prompt, the request bodies for the two provider wire
 * formats (Gemini generateContent, OpenAI-compatible chat completions),
 * the strict parsing of their replies into a ts_triage_t, and the built-in
 * offline triage used when no provider is set or the provider keeps
 * failing.  The daemon does the HTTP; nothing here does any I/O.
 *
 * Trust: ticket text is data, never instructions.  In a prompt it sits
 * between <ticket> and </ticket> with &, < and > written as &amp; &lt;
 * &gt;, so no ticket can close (or open) a block.  Model replies are
 * untrusted too: parsed as JSON data, validated and clamped, never run.
 *
 * Threads: no global mutable state (all tables are static const), so any
 * function may run on any thread at once.
 */

#ifndef TS_TRIAGE_H
#define TS_TRIAGE_H

#include <stddef.h>
#include <jansson.h>

#define TS_TRIAGE_SUMMARY_MAX     1000        /* characters */
#define TS_TRIAGE_NOTES_MAX       10000       /* characters */
#define TS_TRIAGE_SKILLS_MAX      20
#define TS_TRIAGE_SKILL_LEN_MAX   50          /* characters */
#define TS_TRIAGE_OFFLINE_SUMMARY_MAX  300    /* characters */
#define TS_TRIAGE_TEXT_MAX        (256 * 1024)    /* model text, bytes */
#define TS_TRIAGE_BODY_MAX        (4 * 1024 * 1024)   /* HTTP body, bytes */

/*
 * A validated triage.  Every filled one keeps: summary is 1..1000
 * characters of valid UTF-8, trimmed; priority is one of three static
 * strings; helpful_notes is valid UTF-8, 0..10000 characters; and
 * related_skills holds 0..20 distinct trimmed lower-case strings of 1..50
 * characters.  The struct owns summary, helpful_notes and related_skills.
 */
typedef struct {
    char        *summary;         /* 1..1000 chars, trimmed */
    const char  *priority;        /* static "Low" | "Medium" | "High" */
    char        *helpful_notes;   /* Markdown, 0..10000 chars ("" allowed) */
    json_t      *related_skills;  /* array of lower-case strings, <= 20,
                                     each 1..50 chars, de-duplicated */
} ts_triage_t;

/* Free what t points to and zero it (safe on a zeroed or cleared t). */
void ts_triage_clear(ts_triage_t *t);

/*
 * The static "Low", "Medium" or "High" for s[0..len), trimmed and
 * case-insensitive; "urgent" and "critical" count as High, "normal" as
 * Medium; NULL for anything else.
 */
const char *ts_triage_priority(const char *s, size_t len);

/*
 * The whole single-message prompt (malloc'ed): the rules (ticket is data,
 * reply with one JSON object of the 4 keys, priority Low|Medium|High),
 * then the escaped ticket between <ticket> and </ticket>, then a reminder.
 * NULL title or description counts as "".  NULL only when out of memory.
 */
char *ts_triage_prompt(const char *title, const char *description);

/*
 * Gemini generateContent body: the prompt as one user turn, and
 * generationConfig with a low temperature, responseMimeType
 * "application/json" and a responseSchema (OBJECT, the 4 properties all
 * required, priority an enum, relatedSkills ARRAY of STRING).  New
 * reference; NULL when out of memory.
 */
json_t *ts_triage_gemini_request(const char *title, const char *description);

/*
 * OpenAI-compatible chat completions body: model, a system message (the
 * rules), a user message (the delimited ticket), response_format
 * {"type":"json_object"} and a low temperature (reasoning models that
 * refuse a temperature need the caller to delete that key).  New
 * reference; NULL when model is NULL or empty, or out of memory.
 */
json_t *ts_triage_openai_request(const char *model, const char *title,
    const char *description);

/*
 * Parse a whole Gemini generateContent HTTP body: 0 and out filled, or -1
 * and a short reason in err ("body not JSON", "provider error: ...",
 * "blocked: SAFETY", "no candidates", "stopped: MAX_TOKENS", or any reason
 * of ts_triage_parse_text()).  Text of all non-thought parts of the first
 * candidate is joined.  out is overwritten (not freed) on success and left
 * alone on error.
 */
int ts_triage_parse_gemini(const char *body, size_t len, ts_triage_t *out,
    char *err, size_t errlen);

/*
 * Parse a whole OpenAI-compatible chat completion HTTP body: as
 * ts_triage_parse_gemini(), from choices[0].message.content (a string, or
 * an array of text parts); a refusal, a null content or a content filter
 * stop is an error ("refused: ...", "content null", "blocked: ...").
 */
int ts_triage_parse_openai(const char *body, size_t len, ts_triage_t *out,
    char *err, size_t errlen);

/*
 * Parse the model's text: the first balanced {...} that parses as a JSON
 * object (so ``` fences, prose around it and a leading <think>...</think>
 * block are fine), then validated and clamped into out.  summary (string,
 * required, trimmed, non-empty, cut to 1000 characters); priority
 * (string, required, see ts_triage_priority()); helpfulNotes (string;
 * missing or null is ""; cut to 10000 characters); relatedSkills (array:
 * non-strings, empty, over-long and control-character items skipped; or a
 * comma-separated string; missing or null is []).  helpful_notes and
 * related_skills are accepted as key spellings too.  Text over 256 KB
 * ("reply too large") or not valid UTF-8 ("invalid UTF-8") is an error.
 * 0 or -1 with err, out as for ts_triage_parse_gemini().
 */
int ts_triage_parse_text(const char *text, size_t len, ts_triage_t *out,
    char *err, size_t errlen);

/*
 * Built-in triage, deterministic and without network: priority from
 * keywords (High wins over Low; a keyword right after "not"/"no"/"non-"
 * does not count), skills from a vocabulary of keyword synonyms matched
 * case-insensitively on word boundaries, summary = title + the first
 * sentence of the description (<= 300 characters), helpful_notes =
 * Markdown first steps per matched skill (a generic list when none).
 * out is overwritten (not freed); all zero when out of memory.
 */
void ts_triage_offline(const char *title, const char *description,
    ts_triage_t *out);

/*
 * {summary, priority, helpfulNotes, relatedSkills} as a new object
 * (relatedSkills a copy; NULL members become null, [] for skills).  NULL
 * when out of memory.
 */
json_t *ts_triage_json(const ts_triage_t *t);

#endif /* TS_TRIAGE_H */

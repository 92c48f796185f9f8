/*
 * ts_mail: the emails of DESIGN.md section 5.4 -- from a job's payload to
 * a subject and a plain-text body, and from there to the two wire forms
 * the daemon sends: an RFC 5322 message (SMTP, outbox files) and a
 * SendGrid v3 request body.  No I/O.
 *
 * Payloads hold addresses, names and ticket text, never a password or a
 * token; anything that reaches a header has CR and LF removed, so ticket
 * titles cannot inject headers.
 */

#ifndef TS_MAIL_H
#define TS_MAIL_H

#include <stddef.h>
#include <jansson.h>

typedef struct {
    char  *to;         /* one address */
    char  *subject;    /* one line */
    char  *text;       /* plain-text body, LF line ends */
} ts_mail_t;

/* Render a job payload ({template, to, ...}); 0, or -1 with err when the
 * template is unknown or "to" is missing/invalid. */
int ts_mail_render(json_t *payload, ts_mail_t *out, char *err, size_t errlen);

void ts_mail_clear(ts_mail_t *m);

/* The full message (headers, blank line, body; CRLF line ends) from
 * `from`; message_id is used for the Message-ID header.  malloc'ed. */
char *ts_mail_rfc5322(const ts_mail_t *m, const char *from,
    const char *message_id, long long date_s, size_t *len);

/* The SendGrid v3 /mail/send body for m from `from` ("Name <addr>" or
 * "addr"). */
json_t *ts_mail_sendgrid(const ts_mail_t *m, const char *from);

#endif /* TS_MAIL_H */

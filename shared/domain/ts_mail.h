/*
 * ts_mail: the emails of DESIGN.md section 5.4 -- from a job's payload to
 * a subject and a plain-text body, and from there to the two wire forms
 * the daemon sends: an RFC 5322 message (SMTP, outbox files) and a
 * SendGrid v3 request body.  No I/O.
 *
 * Payloads hold addresses, names and ticket text, never a password or a
 * session token (the one secret: a "password_reset" payload's resetToken,
 * which its mail must carry, see ts_jobs.h); anything that reaches a
 * header has CR and LF removed, so ticket titles cannot inject headers.
 *
 * Text is Unicode (DESIGN 7): subjects are cut by characters, never inside
 * one; the RFC 5322 form is 7-bit (encoded-words in headers, a
 * quoted-printable body), so it survives any relay and a strict server.
 */

#ifndef TS_MAIL_H
#define TS_MAIL_H

#include <stddef.h>
#include <jansson.h>

typedef struct {
    char  *to;         /* one address */
    char  *to_name;    /* the addressee's display name, UTF-8, or NULL */
    char  *subject;    /* one line of UTF-8 text */
    char  *text;       /* plain-text body, UTF-8, LF line ends */
} ts_mail_t;

/* A subject keeps at most this many characters (never a split one). */
#define TS_MAIL_SUBJECT_MAX  200

/* Render a job payload ({template, to, ...}); 0, or -1 with err when the
 * template is unknown or "to" is missing/invalid.  public_url (NULL or ""
 * for none: no link) is the site's address as users reach it
 * (ticket_public_url): a mail about a ticket links to
 * <public_url>/tickets/<id>, the others to <public_url>/. */
int ts_mail_render(json_t *payload, const char *public_url, ts_mail_t *out,
    char *err, size_t errlen);

/* 0 when s is an address a sender or Reply-To may be: "Name <addr>" or
 * "addr", addr a valid email address, no control character; else -1. */
int ts_mail_address_check(const char *s);

void ts_mail_clear(ts_mail_t *m);

/*
 * The full message (headers, blank line, body; CRLF line ends) from
 * `from` ("Name <addr>" or "addr"), a Reply-To header when reply_to is
 * not NULL (the same forms); message_id is used for the Message-ID
 * header.  7-bit clean whatever the text: a Subject or display name that
 * is not plain ASCII becomes RFC 2047 encoded-words (ts_mail_header), the
 * body is text/plain; charset=UTF-8 in quoted-printable (ts_mail_qp), so
 * every line is at most 76 characters and any SMTP server takes it.
 * malloc'ed; NULL when out of memory.
 */
char *ts_mail_rfc5322(const ts_mail_t *m, const char *from,
    const char *reply_to, const char *message_id, long long date_s,
    size_t *len);

/*
 * One header field, "Field: value\r\n", folded into lines of at most 76
 * characters where it has to be.  text (UTF-8, no control characters) is
 * the value; with addr it is the display name of that address ("Field:
 * name <addr>", or "Field: addr" when text is NULL or empty).  Plain ASCII
 * that fits stays as it is (a name with specials is quoted); anything else
 * becomes "=?UTF-8?B?...?=" encoded-words of at most 75 characters, split
 * only between characters, one per line (RFC 2047 sections 2, 5 and 8).
 * malloc'ed; NULL when out of memory.
 */
char *ts_mail_header(const char *field, const char *text, const char *addr);

/*
 * text[0..len) (UTF-8, LF or CRLF line ends) as a quoted-printable body
 * (RFC 2045 6.7): CRLF line ends, lines of at most 76 characters (soft
 * breaks "=" where a line is longer), '=', controls, bytes over 0x7e and
 * a space or tab ending a line written =XX.  malloc'ed, *outlen (may be
 * NULL) its length; NULL when out of memory.
 */
char *ts_mail_qp(const char *text, size_t len, size_t *outlen);

/* The SendGrid v3 /mail/send body for m from `from` ("Name <addr>" or
 * "addr"), with "reply_to" when reply_to is not NULL; JSON carries the
 * UTF-8 text as it is. */
json_t *ts_mail_sendgrid(const ts_mail_t *m, const char *from,
    const char *reply_to);

#endif /* TS_MAIL_H */

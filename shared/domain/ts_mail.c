/*
 * ts_mail: email templates and wire forms (see ts_mail.h).
 */

#define _GNU_SOURCE             /* vasprintf */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "ts_auth.h"
#include "ts_json_writer.h"
#include "ts_mail.h"
#include "ts_model.h"
#include "ts_validate.h"

#define TS_MAIL_LINE     76     /* longest line of encoded text (RFC 2045,
                                   RFC 2047 section 2) */
#define TS_MAIL_WORD     75     /* longest encoded-word */
#define TS_MAIL_EW_HEAD  "=?UTF-8?B?"
#define TS_MAIL_EW_TAIL  "?="

/* A payload string field, or def when absent. */
static const char *
ts_field(json_t *p, const char *key, const char *def)
{
    const char  *v = json_string_value(json_object_get(p, key));

    return v ? v : def;
}


/* A copy of s safe for a header: CR, LF and other controls become ' ',
 * at most max characters (never a split one). */
static char *
ts_header_safe(const char *s, size_t max)
{
    size_t  n = ts_utf8_cut(s, strlen(s), max, (size_t) -1), i;
    char   *d;

    d = malloc(n + 1);
    if (d == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        d[i] = ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) ? ' ' : s[i];
    }
    d[n] = '\0';
    return d;
}


static char *
ts_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
ts_sprintf(const char *fmt, ...)
{
    va_list  ap;
    char    *s = NULL;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) {
        s = NULL;
    }
    va_end(ap);
    return s;
}


/*
 * The "password_reset" body: the link <public_url>/reset?token=<token>
 * (the web app's reset page; a relative "/reset?token=..." without a
 * public URL, and the token on its own line, so it can be pasted).  The
 * token must be one ts_reset_token_new makes: nothing else reaches the
 * mail.  0, or -1 without a valid token.
 */
static int
ts_mail_reset_text(json_t *p, const char *public_url, const char *user,
    char **text)
{
    const char  *tok = ts_field(p, "resetToken", "");
    char         hash[TS_RESET_HASH_HEX + 1];
    size_t       u;

    *text = NULL;
    if (ts_reset_token_hash(tok, strlen(tok), hash) != 0) {
        return -1;
    }
    if (public_url == NULL) {
        public_url = "";
    }
    u = strlen(public_url);
    while (u > 0 && public_url[u - 1] == '/') {
        u--;
    }
    *text = ts_sprintf("Hi %s,\n\nsomeone (we hope you) asked to reset the "
                       "password of your account. Open this link within "
                       "one hour to choose a new one:\n\n%.*s/reset?token="
                       "%s\n\nThe link works once. If you did not ask, "
                       "ignore this mail: your password stays as it is.\n",
                       user, (int) u, public_url, tok);
    return *text != NULL ? 0 : -1;
}


int
ts_mail_render(json_t *p, const char *public_url, ts_mail_t *out, char *err,
    size_t errlen)
{
    const char  *tmpl = ts_field(p, "template", "");
    const char  *to = ts_field(p, "to", NULL);
    const char  *user = ts_field(p, "username", "there");
    const char  *title = ts_field(p, "ticketTitle", "your ticket");
    const char  *id = ts_field(p, "ticketId", "");
    const char  *author = ts_field(p, "author", "Someone");
    const char  *excerpt = ts_field(p, "excerpt", "");
    const char  *to_name = ts_field(p, "toName", NULL);
    char        *subject = NULL, *text = NULL, *skills = NULL;
    int          to_user = 1;   /* "username" is the addressee's name */
    int          linked_already = 0;

    memset(out, 0, sizeof(*out));
    if (to == NULL || !ts_valid_email(to, strlen(to))) {
        snprintf(err, errlen, "payload has no valid \"to\" address");
        return -1;
    }
    if (json_is_array(json_object_get(p, "skills"))) {
        skills = json_dumps(json_object_get(p, "skills"), JSON_COMPACT);
    }

    if (strcmp(tmpl, "welcome") == 0) {
        subject = ts_sprintf("Welcome to Ticket Assistant");
        text = ts_sprintf("Hi %s,\n\nyour account is ready. File a ticket "
                          "any time and our team will pick it up.\n", user);
    } else if (strcmp(tmpl, "assigned") == 0) {
        subject = ts_sprintf("Ticket Assigned: %s", title);
        text = ts_sprintf("Hi %s,\n\na new ticket was assigned to you:\n\n"
                          "  %s\n  (ticket %s)\n", user, title, id);
    } else if (strcmp(tmpl, "comment") == 0) {
        subject = ts_sprintf("New comment on \"%s\"", title);
        text = ts_sprintf("%s commented on \"%s\" (ticket %s):\n\n%s\n",
                          author, title, id, excerpt);
        to_user = 0;
    } else if (strcmp(tmpl, "sla_warning") == 0) {
        /* ts_job_mail_sla_warning: a target is about to be missed */
        const char  *target = ts_field(p, "target", "resolution");
        const char  *due = ts_field(p, "due", "");

        subject = ts_sprintf("SLA warning: \"%s\"", title);
        text = ts_sprintf("Ticket \"%s\" (ticket %s) is close to its %s "
                          "target: due %s.\n", title, id,
                          strcmp(target, "response") == 0
                          ? "first-response" : "resolution", due);
        to_user = 0;
    } else if (strcmp(tmpl, "modreq_submitted") == 0) {
        subject = ts_sprintf("Your moderator application was received");
        text = ts_sprintf("Hi %s,\n\nwe received your application to "
                          "become a moderator (skills: %s). An admin will "
                          "review it soon.\n", user, skills ? skills : "-");
    } else if (strcmp(tmpl, "modreq_new") == 0) {
        subject = ts_sprintf("New moderator application from %s", user);
        text = ts_sprintf("%s applied to become a moderator (skills: %s).\n"
                          "Review it under Moderator requests.\n", user,
                          skills ? skills : "-");
        to_user = 0;            /* the applicant's name, not the admin's */
    } else if (strcmp(tmpl, "modreq_accepted") == 0) {
        subject = ts_sprintf("You are now a moderator");
        text = ts_sprintf("Hi %s,\n\nyour application was accepted: you "
                          "are now a moderator.\n", user);
    } else if (strcmp(tmpl, "modreq_rejected") == 0) {
        subject = ts_sprintf("Your moderator application");
        text = ts_sprintf("Hi %s,\n\nyour application was not accepted "
                          "this time. You may apply again after 72 "
                          "hours.\n", user);
    } else if (strcmp(tmpl, "password_reset") == 0) {
        if (ts_mail_reset_text(p, public_url, user, &text) != 0) {
            free(skills);
            snprintf(err, errlen, "payload has no valid \"resetToken\"");
            return -1;
        }
        subject = ts_sprintf("Reset your password");
        linked_already = 1;
    } else if (strcmp(tmpl, "password_changed") == 0) {
        subject = ts_sprintf("Your password was changed");
        text = ts_sprintf("Hi %s,\n\nthe password of your account was %s "
                          "just now, and every other session of the "
                          "account was signed out.\n\nIf this was not you, "
                          "reset your password at once and tell an "
                          "admin.\n", user,
                          strcmp(ts_field(p, "how", ""), "reset") == 0
                          ? "reset through an emailed link" : "changed");
    } else {
        free(skills);
        snprintf(err, errlen, "unknown email template \"%.*s\"",
                 (int) ts_utf8_cut(tmpl, strlen(tmpl), 40, (size_t) -1),
                 tmpl);
        return -1;
    }
    free(skills);

    /* the link: to the ticket when the mail is about one */
    if (text != NULL && !linked_already && public_url != NULL
        && *public_url != '\0')
    {
        size_t  n = strlen(public_url);
        char   *linked;

        while (n > 0 && public_url[n - 1] == '/') {
            n--;
        }
        if (*id != '\0' && ts_oid_valid(id)) {
            linked = ts_sprintf("%s\nOpen it: %.*s/tickets/%s\n", text,
                                (int) n, public_url, id);
        } else {
            linked = ts_sprintf("%s\n%.*s/\n", text, (int) n, public_url);
        }
        free(text);
        text = linked;
    }

    if (to_name == NULL && to_user) {
        to_name = ts_field(p, "username", NULL);
    }
    out->to = strdup(to);
    out->to_name = to_name && *to_name ? ts_header_safe(to_name, 100) : NULL;
    out->subject = subject ? ts_header_safe(subject, TS_MAIL_SUBJECT_MAX)
                           : NULL;
    out->text = text;
    free(subject);
    if (out->to == NULL || out->subject == NULL || out->text == NULL
        || (to_name && *to_name && out->to_name == NULL))
    {
        ts_mail_clear(out);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}


void
ts_mail_clear(ts_mail_t *m)
{
    free(m->to);
    free(m->to_name);
    free(m->subject);
    free(m->text);
    memset(m, 0, sizeof(*m));
}


int
ts_mail_address_check(const char *s)
{
    const char  *p, *lt, *gt;

    for (p = s; *p != '\0'; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
            return -1;
        }
    }
    lt = strchr(s, '<');
    if (lt == NULL) {
        return ts_valid_email(s, strlen(s)) ? 0 : -1;
    }
    gt = strchr(lt, '>');
    if (gt == NULL || gt[1] != '\0' || strchr(lt + 1, '<') != NULL) {
        return -1;
    }
    return ts_valid_email(lt + 1, (size_t) (gt - lt - 1)) ? 0 : -1;
}


/*
 * Split "Name <addr>" (or a bare "addr") into a display name (trimmed,
 * header-safe, NULL when none) and an address; -1 when out of memory.
 */
static int
ts_mail_split(const char *from, char **name, char **addr)
{
    const char  *lt = strchr(from, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    const char  *n;
    size_t       nlen;
    char        *raw;

    *name = NULL;
    if (lt == NULL || gt == NULL) {
        *addr = strdup(from);
        return *addr ? 0 : -1;
    }
    *addr = strndup(lt + 1, (size_t) (gt - lt - 1));
    n = from;
    nlen = (size_t) (lt - from);
    ts_trim(&n, &nlen);
    if (nlen >= 2 && n[0] == '"' && n[nlen - 1] == '"') {
        n++;                    /* "Name" <addr>: the name inside */
        nlen -= 2;
    }
    if (nlen > 0) {
        raw = strndup(n, nlen);
        *name = raw ? ts_header_safe(raw, 100) : NULL;
        free(raw);
        if (*name == NULL) {
            free(*addr);
            *addr = NULL;
            return -1;
        }
    }
    return *addr ? 0 : -1;
}


/* 1 when s is printable ASCII with no "=?" (which a reader would take for
 * the start of an encoded-word). */
static int
ts_mail_plain(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char) *s < 0x20 || (unsigned char) *s > 0x7e
            || (s[0] == '=' && s[1] == '?'))
        {
            return 0;
        }
    }
    return 1;
}


/* 1 when every character of the display name s is an atext character or
 * a space (RFC 5322 3.2.3), so it may stand unquoted. */
static int
ts_mail_atoms(const char *s)
{
    static const char  atext[] = "!#$%&'*+-/=?^_`{|}~ ";

    for (; *s; s++) {
        if (!isalnum((unsigned char) *s) && strchr(atext, *s) == NULL) {
            return 0;
        }
    }
    return 1;
}


/*
 * Append s as encoded-words, the first starting at column col: each word
 * holds as many whole characters as fit its line (at most 76 columns, a
 * word at most 75), and the next word goes on a folded line (CRLF SP).
 * Readers drop the folding between two encoded-words, so the decoded text
 * is s exactly.
 */
static void
ts_mail_words(ts_jw_t *w, size_t col, const char *s, size_t len)
{
    unsigned char  b64[TS_MAIL_WORD];
    size_t         room, n;
    int            k;

    do {
        room = col < TS_MAIL_LINE ? TS_MAIL_LINE - col : 0;
        if (room > TS_MAIL_WORD) {
            room = TS_MAIL_WORD;
        }
        /* base64 of 3 bytes is 4 characters */
        room = room > sizeof(TS_MAIL_EW_HEAD TS_MAIL_EW_TAIL) - 1
               ? room - (sizeof(TS_MAIL_EW_HEAD TS_MAIL_EW_TAIL) - 1) : 0;
        n = ts_utf8_cut(s, len, (size_t) -1, room / 4 * 3);
        if (n == 0 && len > 0) {
            /* not one character fits after what the line holds */
            TS_JW_LIT(w, "\r\n ");
            col = 1;
            continue;
        }
        k = EVP_EncodeBlock(b64, (const unsigned char *) s, (int) n);
        TS_JW_LIT(w, TS_MAIL_EW_HEAD);
        ts_jw_raw(w, (const char *) b64, (size_t) k);
        TS_JW_LIT(w, TS_MAIL_EW_TAIL);
        s += n;
        len -= n;
        if (len > 0) {
            TS_JW_LIT(w, "\r\n ");
            col = 1;
        }
    } while (len > 0);
}


char *
ts_mail_header(const char *field, const char *text, const char *addr)
{
    ts_jw_t      w;
    size_t       col, i;
    const char  *t = text ? text : "";

    ts_jw_init(&w, 128);
    ts_jw_lit(&w, field);
    TS_JW_LIT(&w, ": ");
    col = strlen(field) + 2;

    if (addr != NULL && *t == '\0') {
        ts_jw_lit(&w, addr);
    } else if (addr != NULL && ts_mail_plain(t) && ts_mail_atoms(t)
               && col + strlen(t) <= TS_MAIL_LINE)
    {
        ts_jw_lit(&w, t);
    } else if (addr != NULL && ts_mail_plain(t)
               && col + strlen(t) + 2 <= TS_MAIL_LINE)
    {
        /* specials (a dot in "ann.lee", say): a quoted-string */
        TS_JW_LIT(&w, "\"");
        for (i = 0; t[i]; i++) {
            if (t[i] == '"' || t[i] == '\\') {
                TS_JW_LIT(&w, "\\");
            }
            ts_jw_raw(&w, t + i, 1);
        }
        TS_JW_LIT(&w, "\"");
    } else if (addr == NULL && ts_mail_plain(t)
               && col + strlen(t) <= TS_MAIL_LINE)
    {
        ts_jw_lit(&w, t);
    } else {
        ts_mail_words(&w, col, t, strlen(t));
    }

    if (addr != NULL && *t != '\0') {
        /* the address on a line of its own when it would not fit */
        i = w.len;
        while (i > 0 && w.buf[i - 1] != '\n') {
            i--;
        }
        if (w.len - i + strlen(addr) + 3 > TS_MAIL_LINE) {
            TS_JW_LIT(&w, "\r\n");
        }
        TS_JW_LIT(&w, " <");
        ts_jw_lit(&w, addr);
        TS_JW_LIT(&w, ">");
    }
    TS_JW_LIT(&w, "\r\n");
    return ts_jw_finish(&w, NULL);
}


char *
ts_mail_qp(const char *text, size_t len, size_t *outlen)
{
    static const char    hex[] = "0123456789ABCDEF";
    const unsigned char  *s = (const unsigned char *) text;
    ts_jw_t               w;
    size_t                i, end, col, k;
    char                  esc[3];
    int                   literal;

    ts_jw_init(&w, len + len / 8 + 16);
    i = 0;
    while (i < len) {
        /* one line: s[i..end), then its line break (if any) */
        for (end = i; end < len && s[end] != '\n'; end++) {
            /* find the end */
        }
        k = end;
        if (k > i && s[k - 1] == '\r') {
            k--;                /* CRLF in the text: one line break */
        }
        col = 0;
        for (; i < k; i++) {
            literal = (s[i] >= 33 && s[i] <= 126 && s[i] != '=')
                      || ((s[i] == ' ' || s[i] == '\t') && i + 1 < k);
            /* keep room for the '=' of a soft break unless it is the
             * line's last character */
            if (col + (literal ? 1 : 3) > TS_MAIL_LINE - (i + 1 < k)) {
                TS_JW_LIT(&w, "=\r\n");
                col = 0;
            }
            if (literal) {
                ts_jw_raw(&w, (const char *) s + i, 1);
                col++;
            } else {
                esc[0] = '=';
                esc[1] = hex[s[i] >> 4];
                esc[2] = hex[s[i] & 0x0f];
                ts_jw_raw(&w, esc, 3);
                col += 3;
            }
        }
        if (end < len) {
            TS_JW_LIT(&w, "\r\n");
        }
        i = end + 1;
    }
    return ts_jw_finish(&w, outlen);
}


char *
ts_mail_rfc5322(const ts_mail_t *m, const char *from, const char *reply_to,
    const char *message_id, long long date_s, size_t *len)
{
    char       date[64], *name = NULL, *addr = NULL, *body = NULL;
    char      *h_from = NULL, *h_to = NULL, *h_subject = NULL, *out = NULL;
    char      *h_reply = NULL;
    time_t     ts = (time_t) date_s;
    struct tm  tm;

    gmtime_r(&ts, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);

    if (ts_mail_split(from, &name, &addr) != 0) {
        return NULL;
    }
    h_from = ts_mail_header("From", name, addr);
    free(name);
    free(addr);
    name = addr = NULL;
    if (reply_to != NULL) {
        if (ts_mail_split(reply_to, &name, &addr) != 0) {
            free(h_from);
            return NULL;
        }
        h_reply = ts_mail_header("Reply-To", name, addr);
    }
    h_to = ts_mail_header("To", m->to_name, m->to);
    h_subject = ts_mail_header("Subject", m->subject, NULL);
    body = ts_mail_qp(m->text, strlen(m->text), NULL);
    if (h_from && h_to && h_subject && body
        && (reply_to == NULL || h_reply != NULL))
    {
        out = ts_sprintf("%s%s%s%sDate: %s\r\n"
                         "Message-ID: <%s@ticketd>\r\nMIME-Version: 1.0\r\n"
                         "Content-Type: text/plain; charset=UTF-8\r\n"
                         "Content-Transfer-Encoding: quoted-printable\r\n"
                         "\r\n%s", h_from, h_reply ? h_reply : "", h_to,
                         h_subject, date, message_id, body);
    }
    free(h_reply);
    free(name);
    free(addr);
    free(h_from);
    free(h_to);
    free(h_subject);
    free(body);
    if (out != NULL && len != NULL) {
        *len = strlen(out);
    }
    return out;
}


json_t *
ts_mail_sendgrid(const ts_mail_t *m, const char *from, const char *reply_to)
{
    json_t  *sender, *rcpt, *body, *reply = NULL;
    char    *name, *addr;

    if (reply_to != NULL) {
        if (ts_mail_split(reply_to, &name, &addr) != 0) {
            return NULL;
        }
        reply = name ? json_pack("{s:s, s:s}", "email", addr, "name", name)
                     : json_pack("{s:s}", "email", addr);
        free(addr);
        free(name);
        if (reply == NULL) {
            return NULL;
        }
    }

    if (ts_mail_split(from, &name, &addr) != 0) {
        return NULL;
    }
    sender = name ? json_pack("{s:s, s:s}", "email", addr, "name", name)
                  : json_pack("{s:s}", "email", addr);
    rcpt = m->to_name ? json_pack("{s:s, s:s}", "email", m->to, "name",
                                  m->to_name)
                      : json_pack("{s:s}", "email", m->to);
    free(addr);
    free(name);
    body = json_pack("{s:[{s:[o]}], s:o, s:s, s:[{s:s, s:s}]}",
                     "personalizations", "to", rcpt,
                     "from", sender,
                     "subject", m->subject,
                     "content", "type", "text/plain", "value", m->text);
    if (reply != NULL) {
        if (body == NULL) {
            json_decref(reply);
            return NULL;
        }
        /* set_new takes reply even when it fails */
        if (json_object_set_new(body, "reply_to", reply) != 0) {
            json_decref(body);
            return NULL;
        }
    }
    return body;
}

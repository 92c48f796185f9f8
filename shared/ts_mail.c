/*
 * ts_mail: email templates and wire forms (see ts_mail.h).
 */

#define _GNU_SOURCE             /* vasprintf */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ts_mail.h"
#include "ts_validate.h"

/* A payload string field, or def when absent. */
static const char *
ts_field(json_t *p, const char *key, const char *def)
{
    const char  *v = json_string_value(json_object_get(p, key));

    return v ? v : def;
}


/* A copy of s safe for a header: CR, LF and other controls become ' ',
 * at most max bytes (cut at a UTF-8 boundary). */
static char *
ts_header_safe(const char *s, size_t max)
{
    size_t  n = strlen(s), i;
    char   *d;

    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80) {
            n--;
        }
    }
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


int
ts_mail_render(json_t *p, ts_mail_t *out, char *err, size_t errlen)
{
    const char  *tmpl = ts_field(p, "template", "");
    const char  *to = ts_field(p, "to", NULL);
    const char  *user = ts_field(p, "username", "there");
    const char  *title = ts_field(p, "ticketTitle", "your ticket");
    const char  *id = ts_field(p, "ticketId", "");
    const char  *author = ts_field(p, "author", "Someone");
    const char  *excerpt = ts_field(p, "excerpt", "");
    char        *subject = NULL, *text = NULL, *skills = NULL;

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
    } else if (strcmp(tmpl, "modreq_accepted") == 0) {
        subject = ts_sprintf("You are now a moderator");
        text = ts_sprintf("Hi %s,\n\nyour application was accepted: you "
                          "are now a moderator.\n", user);
    } else if (strcmp(tmpl, "modreq_rejected") == 0) {
        subject = ts_sprintf("Your moderator application");
        text = ts_sprintf("Hi %s,\n\nyour application was not accepted "
                          "this time. You may apply again after 72 "
                          "hours.\n", user);
    } else {
        free(skills);
        snprintf(err, errlen, "unknown email template \"%.40s\"", tmpl);
        return -1;
    }
    free(skills);

    out->to = strdup(to);
    out->subject = subject ? ts_header_safe(subject, 200) : NULL;
    out->text = text;
    free(subject);
    if (out->to == NULL || out->subject == NULL || out->text == NULL) {
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
    free(m->subject);
    free(m->text);
    memset(m, 0, sizeof(*m));
}


char *
ts_mail_rfc5322(const ts_mail_t *m, const char *from, const char *message_id,
    long long date_s, size_t *len)
{
    char        date[64], *safe_from, *out, *body, *o;
    const char  *t;
    time_t      ts = (time_t) date_s;
    struct tm   tm;
    size_t      n, extra = 0;

    gmtime_r(&ts, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);

    /* body with CRLF line ends and SMTP dot-stuffing left to curl */
    for (t = m->text; *t; t++) {
        extra += (*t == '\n');
    }
    body = malloc(strlen(m->text) + extra + 1);
    safe_from = ts_header_safe(from, 200);
    if (body == NULL || safe_from == NULL) {
        free(body);
        free(safe_from);
        return NULL;
    }
    for (o = body, t = m->text; *t; t++) {
        if (*t == '\n' && (t == m->text || t[-1] != '\r')) {
            *o++ = '\r';
        }
        *o++ = *t;
    }
    *o = '\0';

    out = ts_sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
                     "Message-ID: <%s@ticketd>\r\nMIME-Version: 1.0\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Transfer-Encoding: 8bit\r\n\r\n%s",
                     safe_from, m->to, m->subject, date, message_id, body);
    free(body);
    free(safe_from);
    if (out != NULL && len != NULL) {
        n = strlen(out);
        *len = n;
    }
    return out;
}


json_t *
ts_mail_sendgrid(const ts_mail_t *m, const char *from)
{
    const char  *lt = strchr(from, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    json_t      *sender;
    char        *name = NULL, *addr;

    if (lt && gt && gt > lt) {
        addr = strndup(lt + 1, (size_t) (gt - lt - 1));
        name = strndup(from, (size_t) (lt - from));
        while (name && *name && name[strlen(name) - 1] == ' ') {
            name[strlen(name) - 1] = '\0';
        }
    } else {
        addr = strdup(from);
    }
    if (addr == NULL) {
        free(name);
        return NULL;
    }
    sender = (name && *name) ? json_pack("{s:s, s:s}", "email", addr,
                                         "name", name)
                             : json_pack("{s:s}", "email", addr);
    free(addr);
    free(name);
    return json_pack("{s:[{s:[{s:s}]}], s:o, s:s, s:[{s:s, s:s}]}",
                     "personalizations", "to", "email", m->to,
                     "from", sender,
                     "subject", m->subject,
                     "content", "type", "text/plain", "value", m->text);
}

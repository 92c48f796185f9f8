/*
 * job_mail: the "email" job kind (see job_runner.h).  Renders the job's
 * mail and sends it by the configured transport: the outbox folder (one
 * .eml per job, written off the loop in the libuv thread pool), SendGrid
 * (HTTP) or SMTP, both through http_client.  A refusal for good makes the
 * job dead at once.
 */

#define _GNU_SOURCE             /* asprintf */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_client.h"
#include "job_runner_internal.h"
#include "log.h"
#include "ts_mail.h"
#include "ts_store.h"

/* --- email ---------------------------------------------------------------- */

typedef struct {
    uv_work_t   req;
    job_t      *job;
    char       *path;
    char       *message;
    size_t      len;
    int         error;
} outbox_write_t;


static void
outbox_work(uv_work_t *req)
{
    outbox_write_t  *w = req->data;
    char             tmp[1100];
    int              fd;
    ssize_t          n;

    /* write then rename: a reader never sees half a message */
    snprintf(tmp, sizeof(tmp), "%s.tmp", w->path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        w->error = errno;
        return;
    }
    n = write(fd, w->message, w->len);
    if (n != (ssize_t) w->len || fsync(fd) != 0) {
        w->error = n < 0 ? errno : EIO;
        close(fd);
        unlink(tmp);
        return;
    }
    close(fd);
    if (rename(tmp, w->path) != 0) {
        w->error = errno;
        unlink(tmp);
    }
}


static void
outbox_after(uv_work_t *req, int status)
{
    outbox_write_t  *w = req->data;
    job_t           *j = w->job;

    if (status != 0 || w->error != 0) {
        snprintf(j->err, sizeof(j->err), "outbox %s: %s", w->path,
                 strerror(status != 0 ? ECANCELED : w->error));
        metrics_mail("outbox", 0);
        finish_fail(j);
    } else {
        log_info("mail %s written to %s", j->job.id, w->path);
        metrics_mail("outbox", 1);
        finish_ok(j);
    }
    free(w->path);
    free(w->message);
    free(w);
}


static void
mail_sent(const http_result_t *res, void *arg)
{
    job_t  *j = arg;
    int     smtp = strcmp(jr.cfg.mail_transport, "smtp") == 0;

    if (jr.stopping) {
        slot_free(j);
        return;
    }
    if (res->error == NULL
        && ((smtp && res->status == 250)
            || (!smtp && res->status >= 200 && res->status <= 299)))
    {
        log_info("mail %s sent via %s", j->job.id, jr.cfg.mail_transport);
        metrics_mail(jr.cfg.mail_transport, 1);
        finish_ok(j);
        return;
    }
    snprintf(j->err, sizeof(j->err), "%s: %s%s%ld",
             jr.cfg.mail_transport, res->error ? res->error : "",
             res->error ? " " : "status ", res->status);
    metrics_mail(jr.cfg.mail_transport, 0);
    /* refused for good (an SMTP 5xx reply, an HTTP 4xx but 429): dead at
     * once; the SMTP client reports a refusal as an error with its code */
    j->permanent = smtp ? res->status >= 500
                        : (res->error == NULL && res->status >= 400
                           && res->status < 500 && res->status != 429);
    finish_fail(j);
}


void
email_start(job_t *j)
{
    ts_mail_t        m;
    char             err[200], url[1024], auth[600];
    const char      *headers[3], *rcpt[2];
    char            *text, *body;
    size_t           len;
    json_t          *sg;
    outbox_write_t  *w;
    int              rc = -1;

    if (ts_mail_render(j->job.payload, jr.cfg.public_url, &m, err, sizeof(err)) != 0) {
        snprintf(j->err, sizeof(j->err), "%s", err);
        j->permanent = 1;
        finish_fail(j);
        return;
    }

    if (strcmp(jr.cfg.mail_transport, "sendgrid") == 0) {
        sg = ts_mail_sendgrid(&m, jr.cfg.mail_from, jr.cfg.mail_reply_to);
        body = sg ? json_dumps(sg, JSON_COMPACT) : NULL;
        json_decref(sg);
        snprintf(url, sizeof(url), "%s/v3/mail/send", jr.cfg.sendgrid_url);
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
                 jr.cfg.sendgrid_key ? jr.cfg.sendgrid_key : "");
        headers[0] = "Content-Type: application/json";
        headers[1] = auth;
        headers[2] = NULL;
        if (body) {
            rc = http_client_request(jr.http, "POST", url, headers, body,
                                     strlen(body), jr.cfg.mail_timeout_ms,
                                     mail_sent, j);
        }
        free(body);
        ts_mail_clear(&m);
        if (rc != 0) {
            snprintf(j->err, sizeof(j->err), "cannot start the SendGrid call");
            finish_fail(j);
        }
        return;
    }

    text = ts_mail_rfc5322(&m, jr.cfg.mail_from, jr.cfg.mail_reply_to,
                           j->job.id,
                           (long long) (ts_now_ms() / 1000), &len);
    if (text == NULL) {
        ts_mail_clear(&m);
        snprintf(j->err, sizeof(j->err), "out of memory");
        finish_fail(j);
        return;
    }

    if (strcmp(jr.cfg.mail_transport, "smtp") == 0) {
        const char  *from = strchr(jr.cfg.mail_from, '<');
        char         addr[256];

        snprintf(addr, sizeof(addr), "%s", from ? from : jr.cfg.mail_from);
        if (from) {
            char *gt = strchr(addr, '>');
            if (gt) {
                gt[1] = '\0';
            }
        }
        rcpt[0] = m.to;
        rcpt[1] = NULL;
        rc = http_client_smtp(jr.http, jr.cfg.smtp_url, jr.cfg.smtp_user,
                              jr.cfg.smtp_password, addr, rcpt, text, len,
                              jr.cfg.mail_timeout_ms, mail_sent, j);
        free(text);
        ts_mail_clear(&m);
        if (rc != 0) {
            snprintf(j->err, sizeof(j->err), "cannot start the SMTP send");
            finish_fail(j);
        }
        return;
    }

    /* outbox: one .eml file per job, named by the job id (idempotent) */
    ts_mail_clear(&m);
    w = calloc(1, sizeof(*w));
    if (w == NULL
        || asprintf(&w->path, "%s/%s.eml", jr.cfg.outbox_dir, j->job.id) < 0)
    {
        free(w);
        free(text);
        snprintf(j->err, sizeof(j->err), "out of memory");
        finish_fail(j);
        return;
    }
    w->req.data = w;
    w->job = j;
    w->message = text;
    w->len = len;
    if (uv_queue_work(jr.loop, &w->req, outbox_work, outbox_after) != 0) {
        free(w->path);
        free(w->message);
        free(w);
        snprintf(j->err, sizeof(j->err), "cannot queue the outbox write");
        finish_fail(j);
    }
}

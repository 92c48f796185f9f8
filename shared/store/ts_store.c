/*
 * ts_store: picks a backend from the URI and dispatches every operation
 * through the backend's table (ts_store_impl.h).  Argument checks that are
 * the same for every backend live here, once.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_store_impl.h"
#include "ts_validate.h"


ts_store_t *
ts_store_open(const char *uri, char *err, size_t errlen)
{
    if (uri == NULL || *uri == '\0') {
        snprintf(err, errlen, "empty store URI");
        return NULL;
    }
    if (strncmp(uri, "sqlite:", 7) == 0) {
        return ts_store_sqlite_open(uri + 7, err, errlen);
    }
    if (strncmp(uri, "mongodb://", 10) == 0
        || strncmp(uri, "mongodb+srv://", 14) == 0)
    {
        return ts_store_mongo_open(uri, err, errlen);
    }
    if (strstr(uri, "://") != NULL) {
        snprintf(err, errlen, "unknown store scheme in \"%s\"", uri);
        return NULL;
    }
    return ts_store_sqlite_open(uri, err, errlen);
}


int
ts_store_uri_check(const char *uri, char *err, size_t errlen)
{
    if (uri == NULL || *uri == '\0') {
        snprintf(err, errlen, "empty store URI");
        return -1;
    }
    if (strncmp(uri, "mongodb://", 10) == 0
        || strncmp(uri, "mongodb+srv://", 14) == 0)
    {
        return ts_store_mongo_uri_check(uri, err, errlen);
    }
    if (strncmp(uri, "sqlite:", 7) == 0) {
        if (uri[7] == '\0') {
            snprintf(err, errlen, "no file path after \"sqlite:\"");
            return -1;
        }
        return 0;
    }
    if (strstr(uri, "://") != NULL) {
        snprintf(err, errlen, "unknown store scheme in \"%s\"", uri);
        return -1;
    }
    return 0;
}


void
ts_store_close(ts_store_t *s)
{
    if (s) {
        ts_cache_free(s->cache);
        s->ops->close(s);
    }
}


const char *
ts_store_errmsg(ts_store_t *s)
{
    return s->errmsg;
}


const char *
ts_store_backend(ts_store_t *s)
{
    return s->ops->name;
}


#define TS_CACHE_TICKETS  (1u << TS_CACHE_V_TICKETS)
#define TS_CACHE_USERS    (1u << TS_CACHE_V_USERS)

/* After a writing operation: what it changed is no longer cached. */
static ts_rc_e
ts_store_wrote(ts_store_t *s, unsigned mask, ts_rc_e rc)
{
    if (rc == TS_OK) {
        ts_store_changed(s, mask);
    }
    return rc;
}


ts_rc_e
ts_store_fail(ts_store_t *s, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
    va_end(ap);
    return TS_ERR;
}


void
ts_job_counts_add(ts_job_counts_t *c, const char *kind, const char *state,
    int64_t n)
{
    int64_t  *total[] = { &c->pending, &c->running, &c->done, &c->dead };
    const char  *states[] = { "pending", "running", "done", "dead" };
    size_t       i;

    for (i = 0; state != NULL && i < 4; i++) {
        if (strcmp(state, states[i]) == 0) {
            *total[i] += n;
            c->by_kind[ts_job_kind_index(kind)][i] += n;
            return;
        }
    }
}


ts_rc_e
ts_store_analytics_doc(ts_store_t *s, ts_analytics_parts_t *p, int ok,
    json_t **out)
{
    json_t  *parts[] = { p->by_status, p->by_priority, p->providers,
                         p->daily, p->backlog, p->first_response,
                         p->resolution, p->moderators, p->sla };
    size_t   i;

    *out = NULL;
    for (i = 0; ok && i < sizeof(parts) / sizeof(parts[0]); i++) {
        ok = parts[i] != NULL;
    }
    if (!ok) {
        for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
            json_decref(parts[i]);
        }
        return TS_ERR;
    }
    *out = json_pack("{s:{s:I, s:o, s:o}, s:o, s:o, s:o, s:o, s:o,"
                     " s:{s:I, s:I, s:o, s:I},"
                     " s:{s:I, s:I, s:I, s:I}, s:o}",
                     "totals", "tickets", (json_int_t) p->tickets,
                     "byStatus", p->by_status,
                     "byPriority", p->by_priority,
                     "daily", p->daily,
                     "backlog", p->backlog,
                     "firstResponse", p->first_response,
                     "resolution", p->resolution,
                     "moderators", p->moderators,
                     "triage", "triaged", (json_int_t) p->triaged,
                     "pending", (json_int_t) (p->tickets - p->triaged),
                     "byProvider", p->providers,
                     "fallbacks", (json_int_t) p->fallbacks,
                     "jobs", "pending", (json_int_t) p->jobs.pending,
                     "running", (json_int_t) p->jobs.running,
                     "done", (json_int_t) p->jobs.done,
                     "dead", (json_int_t) p->jobs.dead,
                     "sla", p->sla);
    return *out ? TS_OK : ts_store_fail(s, "out of memory");
}


void
ts_store_read_begin(ts_store_t *s)
{
    if (s->ops->read_begin) {
        s->ops->read_begin(s);
    }
}


void
ts_store_read_end(ts_store_t *s)
{
    if (s->ops->read_end) {
        s->ops->read_end(s);
    }
}


void
ts_store_read_renew(ts_store_t *s)
{
    if (s->ops->read_renew) {
        s->ops->read_renew(s);
    }
}


ts_rc_e
ts_store_ping(ts_store_t *s)
{
    return s->ops->ping(s);
}


ts_rc_e
ts_store_user_signup(ts_store_t *s, ts_user_t *u, const ts_job_new_t *job,
    const char **which)
{
    return ts_store_wrote(s, TS_CACHE_USERS,
        s->ops->user_signup(s, u, job, which));
}


ts_rc_e
ts_store_user_by_id(ts_store_t *s, const char *id, ts_user_t *out)
{
    if (!ts_oid_valid(id)) {
        return TS_NOT_FOUND;
    }
    return s->ops->user_by_id(s, id, out);
}


ts_rc_e
ts_store_user_by_email(ts_store_t *s, const char *email, ts_user_t *out)
{
    return s->ops->user_by_email(s, email, out);
}


ts_rc_e
ts_store_user_by_login(ts_store_t *s, const char *identifier, ts_user_t *out)
{
    /* usernames cannot hold '@', so the identifier says which key it is */
    if (strchr(identifier, '@') != NULL) {
        return s->ops->user_by_email(s, identifier, out);
    }
    return s->ops->user_by_username(s, identifier, out);
}


ts_rc_e
ts_store_user_list(ts_store_t *s, json_t **out)
{
    return ts_store_cached_users(s, 1, TS_ROLE_USER, out);
}


ts_rc_e
ts_store_user_count_role(ts_store_t *s, ts_role_e role, int64_t *count)
{
    return s->ops->user_count_role(s, role, count);
}


ts_rc_e
ts_store_user_set_status(ts_store_t *s, const char *id, ts_presence_e status,
    int64_t last_seen, int chosen)
{
    if (!ts_oid_valid(id)) {
        return TS_NOT_FOUND;
    }
    return ts_store_wrote(s, TS_CACHE_TICKETS | TS_CACHE_USERS,
        s->ops->user_set_status(s, id, status, last_seen, chosen));
}


ts_rc_e
ts_store_user_update(ts_store_t *s, const char *id, ts_role_e role,
    json_t *skills)
{
    if (!ts_oid_valid(id)) {
        return TS_NOT_FOUND;
    }
    return ts_store_wrote(s, TS_CACHE_USERS,
        s->ops->user_update(s, id, role, skills));
}


/* A reset token hash as stored: 64 lower-case hex digits. */
static int
ts_store_reset_hash_valid(const char *h)
{
    size_t  i;

    for (i = 0; h != NULL && i < TS_RESET_HASH_HEX; i++) {
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f'))) {
            return 0;
        }
    }
    return h != NULL && h[TS_RESET_HASH_HEX] == '\0';
}


ts_rc_e
ts_store_user_set_password(ts_store_t *s, const char *id,
    const char *old_hash, const char *reset_hash, const char *new_hash,
    int64_t now, const ts_job_new_t *job, int64_t *epoch)
{
    if (!ts_oid_valid(id)
        || (reset_hash != NULL && !ts_store_reset_hash_valid(reset_hash)))
    {
        return TS_NOT_FOUND;
    }
    return ts_store_wrote(s, TS_CACHE_USERS,
        s->ops->user_set_password(s, id, old_hash, reset_hash, new_hash, now,
                                  job, epoch));
}


ts_rc_e
ts_store_user_reset_issue(ts_store_t *s, const char *id,
    const char *token_hash, int64_t expires_at, int64_t now,
    const ts_job_new_t *job)
{
    if (!ts_oid_valid(id)) {
        return TS_NOT_FOUND;
    }
    if (!ts_store_reset_hash_valid(token_hash)) {
        return ts_store_fail(s, "malformed reset token hash");
    }
    return s->ops->user_reset_issue(s, id, token_hash, expires_at, now, job);
}


ts_rc_e
ts_store_user_by_reset(ts_store_t *s, const char *token_hash, int64_t now,
    ts_user_t *out)
{
    if (!ts_store_reset_hash_valid(token_hash)) {
        return TS_NOT_FOUND;
    }
    return s->ops->user_by_reset(s, token_hash, now, out);
}


ts_rc_e
ts_store_token_revoke(ts_store_t *s, const char *sig, int64_t exp)
{
    return s->ops->token_revoke(s, sig, exp);
}


ts_rc_e
ts_store_token_revoked(ts_store_t *s, const char *sig)
{
    return s->ops->token_revoked(s, sig);
}


ts_rc_e
ts_store_login_get(ts_store_t *s, const char *ident, ts_login_attempts_t *out)
{
    return s->ops->login_get(s, ident, out);
}


ts_rc_e
ts_store_login_attempt(ts_store_t *s, const char *key, int64_t now_ms,
    int64_t window_ms, int max_failures, int64_t lock_ms,
    ts_login_attempts_t *out, int *allowed)
{
    return s->ops->login_attempt(s, key, now_ms, window_ms, max_failures,
                                 lock_ms, out, allowed);
}


ts_rc_e
ts_store_login_clear(ts_store_t *s, const char *ident)
{
    return s->ops->login_clear(s, ident);
}


ts_rc_e
ts_store_job_insert(ts_store_t *s, const ts_job_new_t *job, ts_oid_t out_id)
{
    return s->ops->job_insert(s, job, out_id);
}


ts_rc_e
ts_store_job_counts(ts_store_t *s, ts_job_counts_t *out)
{
    return s->ops->job_counts(s, out);
}


ts_rc_e
ts_store_purge_expired(ts_store_t *s, int64_t now_ms, int64_t *removed)
{
    return s->ops->purge_expired(s, now_ms, removed);
}


/*
 * Tickets, comments, moderator requests: a malformed id is simply a
 * document that does not exist, so it never reaches a backend.
 */

ts_rc_e
ts_store_ticket_create(ts_store_t *s, const char *id, const char *title,
    const char *description, const char *created_by, int64_t now,
    const ts_job_new_t *jobs, size_t njobs)
{
    return ts_store_wrote(s, TS_CACHE_TICKETS,
        s->ops->ticket_create(s, id, title, description, created_by, now,
                              jobs, njobs));
}


ts_rc_e
ts_store_ticket_get(ts_store_t *s, const char *id, int with_comments,
    json_t **doc, ts_ticket_keys_t *keys)
{
    if (!ts_oid_valid(id)) {
        return TS_NOT_FOUND;
    }
    return s->ops->ticket_get(s, id, with_comments, doc, keys);
}


ts_rc_e
ts_store_ticket_list(ts_store_t *s, const ts_ticket_query_t *q,
    ts_jw_t *tickets, int64_t *total)
{
    return ts_store_cached_ticket_list(s, q, tickets, total);
}


ts_rc_e
ts_store_ticket_set_status(ts_store_t *s, const char *id, const char *status,
    const char *actor, int64_t now, int64_t unmodified_since,
    const ts_job_new_t *jobs, size_t njobs)
{
    if (!ts_oid_valid(id)) {
        return TS_NOT_FOUND;
    }
    return ts_store_wrote(s, TS_CACHE_TICKETS,
        s->ops->ticket_set_status(s, id, status, actor, now,
                                  unmodified_since, jobs, njobs));
}


json_t *
ts_hist_note(const char *text)
{
    size_t   len = strlen(text);
    size_t   cut = ts_utf8_cut(text, len, TS_HIST_NOTE_CHARS, len);
    json_t  *v;
    char    *buf;

    if (cut == len) {
        return json_stringn(text, len);
    }
    buf = malloc(cut + sizeof("\xe2\x80\xa6"));
    if (buf == NULL) {
        return NULL;
    }
    memcpy(buf, text, cut);
    memcpy(buf + cut, "\xe2\x80\xa6", sizeof("\xe2\x80\xa6"));   /* … */
    v = json_string(buf);
    free(buf);
    return v;
}


ts_rc_e
ts_store_ticket_history(ts_store_t *s, const char *id, json_t **history)
{
    *history = NULL;
    if (!ts_oid_valid(id)) {
        return TS_NOT_FOUND;
    }
    return s->ops->ticket_history(s, id, history);
}


ts_rc_e
ts_store_canned_create(ts_store_t *s, const char *id, const char *owner,
    const char *title, const char *body, int64_t now)
{
    return s->ops->canned_create(s, id, owner, title, body, now);
}


ts_rc_e
ts_store_canned_list(ts_store_t *s, json_t **out)
{
    *out = NULL;
    return s->ops->canned_list(s, out);
}


ts_rc_e
ts_store_canned_get(ts_store_t *s, const char *id, json_t **doc,
    ts_oid_t owner)
{
    if (doc) {
        *doc = NULL;
    }
    if (!ts_oid_valid(id)) {
        return TS_NOT_FOUND;
    }
    return s->ops->canned_get(s, id, doc, owner);
}


ts_rc_e
ts_store_canned_update(ts_store_t *s, const char *id, const char *title,
    const char *body, int64_t now)
{
    if (!ts_oid_valid(id)) {
        return TS_NOT_FOUND;
    }
    return s->ops->canned_update(s, id, title, body, now);
}


ts_rc_e
ts_store_canned_delete(ts_store_t *s, const char *id)
{
    if (!ts_oid_valid(id)) {
        return TS_NOT_FOUND;
    }
    return s->ops->canned_delete(s, id);
}


ts_rc_e
ts_store_comment_add(ts_store_t *s, const char *ticket_id,
    const ts_comment_new_t *c, int64_t now, int64_t max_comments,
    const ts_job_new_t *jobs, size_t njobs)
{
    if (!ts_oid_valid(ticket_id)) {
        return TS_NOT_FOUND;
    }
    return ts_store_wrote(s, TS_CACHE_TICKETS,
        s->ops->comment_add(s, ticket_id, c, now, max_comments, jobs,
                            njobs));
}


ts_rc_e
ts_store_comment_list(ts_store_t *s, const char *ticket_id,
    int with_internal, ts_jw_t *out)
{
    if (!ts_oid_valid(ticket_id)) {
        return TS_NOT_FOUND;
    }
    return s->ops->comment_list(s, ticket_id, with_internal, out);
}


ts_rc_e
ts_store_user_list_role(ts_store_t *s, ts_role_e role, json_t **out)
{
    return ts_store_cached_users(s, 0, role, out);
}


ts_rc_e
ts_store_modreq_create(ts_store_t *s, const char *id, const char *applicant,
    const char *username, const char *email, json_t *skills, int64_t now,
    const ts_job_new_t *jobs, size_t njobs)
{
    return s->ops->modreq_create(s, id, applicant, username, email, skills,
                                 now, jobs, njobs);
}


ts_rc_e
ts_store_modreq_get(ts_store_t *s, const char *id, json_t **doc)
{
    if (!ts_oid_valid(id)) {
        return TS_NOT_FOUND;
    }
    return s->ops->modreq_get(s, id, doc);
}


ts_rc_e
ts_store_modreq_latest(ts_store_t *s, const char *applicant, json_t **doc)
{
    return s->ops->modreq_latest(s, applicant, doc);
}


ts_rc_e
ts_store_modreq_last_rejection(ts_store_t *s, const char *applicant,
    int64_t *rejected_at)
{
    return s->ops->modreq_last_rejection(s, applicant, rejected_at);
}


ts_rc_e
ts_store_modreq_pending(ts_store_t *s, json_t **requests)
{
    return s->ops->modreq_pending(s, requests);
}


ts_rc_e
ts_store_modreq_decide(ts_store_t *s, const char *id, int accept,
    const char *reviewer, int64_t now, const ts_job_new_t *jobs, size_t njobs)
{
    if (!ts_oid_valid(id)) {
        return TS_NOT_FOUND;
    }
    return ts_store_wrote(s, TS_CACHE_USERS,
        s->ops->modreq_decide(s, id, accept, reviewer, now, jobs, njobs));
}


ts_rc_e
ts_store_analytics(ts_store_t *s, int64_t now, json_t **out)
{
    return s->ops->analytics(s, now, out);
}


/* --- jobs and background work ---------------------------------------------- */

ts_rc_e
ts_store_job_claim(ts_store_t *s, int64_t now, int64_t lease_ms, int max,
    int max_triage, ts_job_t **jobs, size_t *n)
{
    *jobs = NULL;
    *n = 0;
    return s->ops->job_claim(s, now, lease_ms, max, max_triage, jobs, n);
}


void
ts_jobs_free(ts_job_t *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(jobs[i].payload);
    }
    free(jobs);
}


ts_rc_e
ts_store_job_extend(ts_store_t *s, const ts_job_t *jobs, size_t n,
    int64_t lease_until)
{
    return n ? s->ops->job_extend(s, jobs, n, lease_until) : TS_OK;
}


ts_rc_e
ts_store_job_done(ts_store_t *s, const char *id, int attempts, int64_t now)
{
    return s->ops->job_done(s, id, attempts, now);
}


ts_rc_e
ts_store_jobs_done(ts_store_t *s, const ts_job_t *jobs, size_t n,
    int64_t now, ts_rc_e *rcs)
{
    ts_rc_e  rc = TS_OK;
    size_t   i;

    if (n > 1 && s->ops->jobs_done != NULL) {
        rc = s->ops->jobs_done(s, jobs, n, now, rcs);
    } else {
        for (i = 0; i < n; i++) {
            rcs[i] = s->ops->job_done(s, jobs[i].id, jobs[i].attempts, now);
        }
    }
    if (rc == TS_ERR) {
        for (i = 0; i < n; i++) {
            rcs[i] = TS_ERR;
        }
    }
    return rc;
}


ts_rc_e
ts_store_job_fail(ts_store_t *s, const char *id, int attempts,
    const char *error, int dead, int64_t run_after, int64_t now)
{
    return s->ops->job_fail(s, id, attempts, error, dead, run_after, now);
}


ts_rc_e
ts_store_job_list(ts_store_t *s, const char *state, int64_t limit,
    json_t **out)
{
    return s->ops->job_list(s, state, limit, out);
}


ts_rc_e
ts_store_job_retry(ts_store_t *s, const char *id, int64_t now)
{
    if (!ts_oid_valid(id)) {
        return TS_NOT_FOUND;
    }
    return s->ops->job_retry(s, id, now);
}


ts_rc_e
ts_store_job_purge(ts_store_t *s, int64_t done_before, int64_t dead_before,
    int limit, int64_t *removed)
{
    *removed = 0;
    if (limit <= 0 || (done_before <= 0 && dead_before <= 0)) {
        return TS_OK;
    }
    return s->ops->job_purge(s, done_before, dead_before, limit, removed);
}


ts_rc_e
ts_store_ticket_text(ts_store_t *s, const char *id, char **title,
    char **description, int *triaged, int64_t *created_at)
{
    int64_t  unused;

    if (!ts_oid_valid(id)) {
        return TS_NOT_FOUND;
    }
    return s->ops->ticket_text(s, id, title, description, triaged,
                               created_at ? created_at : &unused);
}


ts_rc_e
ts_store_ticket_set_triage(ts_store_t *s, const char *id, json_t *triage,
    json_t *meta, const char *provider, int fallback,
    const ts_sla_due_t *due, int64_t now, const ts_job_new_t *jobs,
    size_t njobs)
{
    ts_sla_due_t  none;

    if (!ts_oid_valid(id)) {
        return TS_NOT_FOUND;
    }
    if (due == NULL) {
        memset(&none, 0, sizeof(none));
        due = &none;
    }
    return ts_store_wrote(s, TS_CACHE_TICKETS,
        s->ops->ticket_set_triage(s, id, triage, meta, provider, fallback,
                                  due, now, jobs, njobs));
}


ts_rc_e
ts_store_ticket_set_priority(ts_store_t *s, const char *id,
    const char *priority, const char *actor, const ts_sla_due_t *due,
    int64_t now, const ts_job_new_t *jobs, size_t njobs)
{
    if (!ts_oid_valid(id)) {
        return TS_NOT_FOUND;
    }
    return ts_store_wrote(s, TS_CACHE_TICKETS,
        s->ops->ticket_set_priority(s, id, priority, actor, due, now, jobs,
                                    njobs));
}


ts_rc_e
ts_store_ticket_sla_breach(ts_store_t *s, const char *id, const char *target,
    int64_t due, int64_t now)
{
    if (!ts_oid_valid(id)) {
        return TS_NOT_FOUND;
    }
    return ts_store_wrote(s, TS_CACHE_TICKETS,
        s->ops->ticket_sla_breach(s, id, target, due, now));
}


ts_rc_e
ts_store_ticket_assign(ts_store_t *s, const char *id, json_t *exclude,
    const ts_assign_cfg_t *cfg, ts_assigned_job_fn assigned_job, int64_t now,
    json_t **result)
{
    if (!ts_oid_valid(id)) {
        return TS_NOT_FOUND;
    }
    return ts_store_wrote(s, TS_CACHE_TICKETS | TS_CACHE_USERS,
        s->ops->ticket_assign(s, id, json_is_array(exclude) ? exclude : NULL,
                              cfg, assigned_job, now, result));
}


ts_rc_e
ts_store_ticket_set_assignee(ts_store_t *s, const char *id, const char *from,
    const char *to, const char *by, json_t *assignment, int64_t now,
    const ts_job_new_t *jobs, size_t njobs)
{
    if (!ts_oid_valid(id) || (to != NULL && !ts_oid_valid(to))) {
        return TS_NOT_FOUND;
    }
    return ts_store_wrote(s, TS_CACHE_TICKETS,
        s->ops->ticket_set_assignee(s, id, from ? from : "", to, by,
                                    assignment, now, jobs, njobs));
}


ts_rc_e
ts_store_user_handback(ts_store_t *s, const char *user_id, int demote,
    json_t *skills, int todo_only, const char *actor, json_t *why,
    ts_handback_job_fn job_fn, int64_t now, json_t **handed)
{
    *handed = NULL;
    if (!ts_oid_valid(user_id)) {
        return TS_NOT_FOUND;
    }
    return ts_store_wrote(s, TS_CACHE_TICKETS | TS_CACHE_USERS,
        s->ops->user_handback(s, user_id, demote, skills, todo_only, actor,
                              why, job_fn, now, handed));
}


ts_rc_e
ts_store_absent_assignees(ts_store_t *s, int64_t before, json_t **users)
{
    *users = NULL;
    return s->ops->absent_assignees(s, before, users);
}


ts_rc_e
ts_store_ticket_stats(ts_store_t *s, const char *id, const char *moderator_id,
    double hours, int *counted)
{
    *counted = 0;
    if (!ts_oid_valid(id)) {
        return TS_NOT_FOUND;
    }
    return ts_store_wrote(s, TS_CACHE_USERS,
        s->ops->ticket_stats(s, id, moderator_id, hours, counted));
}


/* --- history entries both backends write ---------------------------------- */

size_t
ts_triage_history(ts_hist_t h[2], json_t *old_prio, json_t *old_skills,
    json_t *triage)
{
    json_t  *prio = json_object_get(triage, "priority");
    json_t  *skills = json_object_get(triage, "relatedSkills");
    json_t  *none = json_array();
    size_t   n = 0;

    memset(h, 0, 2 * sizeof(ts_hist_t));
    prio = json_is_string(prio) ? prio : json_null();
    old_prio = old_prio ? old_prio : json_null();
    skills = json_is_array(skills) ? skills : none;
    old_skills = old_skills ? old_skills : none;
    if (!json_equal(old_prio, prio)) {
        h[n].action = TS_HIST_PRIORITY;
        h[n].from = json_incref(old_prio);
        h[n].to = json_incref(prio);
        n++;
    }
    if (!json_equal(old_skills, skills)) {
        h[n].action = TS_HIST_SKILLS;
        h[n].from = json_incref(old_skills);
        h[n].to = json_incref(skills);
        n++;
    }
    json_decref(none);
    return n;
}


size_t
ts_assign_history(ts_hist_t h[2], json_t *to, json_t *explanation,
    const char *old_status, const char *new_status)
{
    size_t  n = 0;

    memset(h, 0, 2 * sizeof(ts_hist_t));
    if (old_status && new_status && strcmp(old_status, new_status) != 0) {
        h[n].action = TS_HIST_STATUS;
        h[n].from = json_string(old_status);
        h[n].to = json_string(new_status);
        n++;
    }
    h[n].action = TS_HIST_ASSIGNEE;
    h[n].to = json_incref(to);
    h[n].explanation = json_incref(explanation);
    return n + 1;
}


size_t
ts_handback_history(ts_hist_t h[2], const char *actor, json_t *from,
    json_t *why, const char *old_status, const char *new_status)
{
    size_t  n = 1;

    memset(h, 0, 2 * sizeof(ts_hist_t));
    h[0].action = TS_HIST_ASSIGNEE;
    h[0].actor = actor;
    h[0].from = json_incref(from);
    h[0].explanation = json_incref(why);
    if (old_status && new_status && strcmp(old_status, new_status) != 0) {
        h[1].action = TS_HIST_STATUS;
        h[1].actor = actor;
        h[1].from = json_string(old_status);
        h[1].to = json_string(new_status);
        n++;
    }
    return n;
}


void
ts_hist_release(ts_hist_t *h, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        json_decref(h[i].from);
        json_decref(h[i].to);
        json_decref(h[i].explanation);
    }
}

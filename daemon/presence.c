/*
 * presence: live sessions per user and the online/offline transitions
 * (see presence.h).
 *
 * Sessions are counted per (link, user), so a closing link subtracts
 * exactly what it reported.  Tables are small arrays searched linearly:
 * entries exist only for users with sessions or waiting out the grace
 * period.
 */

#include <stdlib.h>
#include <string.h>

#include "hub.h"
#include "log.h"
#include "presence.h"
#include "store_pool.h"
#include "ts_event.h"
#include "ts_store.h"

typedef struct {
    uint64_t   link;
    ts_oid_t   user;
    int        count;
} presence_session_t;

typedef struct {
    ts_oid_t   user;
    int        count;          /* sessions over all links */
    int64_t    zero_since;     /* ms; 0 while sessions exist */
} presence_user_t;

static struct {
    uv_loop_t           *loop;
    uv_timer_t           timer;
    int                  started;
    uint64_t             grace_ms;
    presence_session_t  *sessions;
    size_t               nsessions, capsessions;
    presence_user_t     *users;
    size_t               nusers, capusers;
} pr;

typedef struct {
    ts_oid_t       user;
    ts_presence_e  want;
    int            changed;
    int64_t        when;
} presence_task_t;


static void
presence_work(ts_store_t *s, void *arg)
{
    presence_task_t  *t = arg;
    ts_user_t         u;

    memset(&u, 0, sizeof(u));
    if (ts_store_user_by_id(s, t->user, &u) != TS_OK) {
        return;
    }
    /* a chosen dnd or "appear offline" survives connecting; only an
     * online user goes offline */
    if ((t->want == TS_PRESENCE_ONLINE && u.status == TS_PRESENCE_OFFLINE
         && !u.status_chosen)
        || (t->want == TS_PRESENCE_OFFLINE && u.status == TS_PRESENCE_ONLINE))
    {
        t->when = ts_now_ms();
        t->changed = ts_store_user_set_status(s, t->user, t->want, t->when, 0)
                     == TS_OK;
    }
    ts_user_clear(&u);
}


static void
presence_done(void *arg, int status)
{
    presence_task_t  *t = arg;
    json_t           *frame;
    char             *text;

    if (status == 0 && t->changed) {
        frame = ts_event_frame("user_status_changed", NULL,
                               json_pack("{s:s, s:s, s:o}", "userId", t->user,
                                         "status", ts_presence_name(t->want),
                                         "lastSeen", ts_iso_json(t->when)));
        text = frame ? json_dumps(frame, JSON_COMPACT) : NULL;
        if (text) {
            hub_publish(text, strlen(text));
            log_info("presence: %s is %s", t->user,
                     ts_presence_name(t->want));
        }
        free(text);
        json_decref(frame);
    }
    free(t);
}


static void
presence_set(const char *user, ts_presence_e want)
{
    presence_task_t  *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        return;
    }
    memcpy(t->user, user, sizeof(ts_oid_t));
    t->want = want;
    if (store_pool_submit(presence_work, presence_done, t) != 0) {
        free(t);
    }
}


static presence_user_t *
presence_user(const char *user, int create)
{
    presence_user_t  *nu;
    size_t            i;

    for (i = 0; i < pr.nusers; i++) {
        if (strcmp(pr.users[i].user, user) == 0) {
            return &pr.users[i];
        }
    }
    if (!create) {
        return NULL;
    }
    if (pr.nusers == pr.capusers) {
        pr.capusers = pr.capusers ? pr.capusers * 2 : 64;
        nu = realloc(pr.users, pr.capusers * sizeof(*nu));
        if (nu == NULL) {
            return NULL;
        }
        pr.users = nu;
    }
    nu = &pr.users[pr.nusers++];
    memset(nu, 0, sizeof(*nu));
    memcpy(nu->user, user, sizeof(ts_oid_t));
    return nu;
}


/* Apply delta sessions to a user's total. */
static void
presence_total(const char *user, int delta)
{
    presence_user_t  *u = presence_user(user, delta > 0);

    if (u == NULL) {
        return;
    }
    u->count += delta;
    if (u->count < 0) {
        u->count = 0;
    }
    if (delta > 0 && u->count == delta) {
        if (u->zero_since == 0) {
            presence_set(user, TS_PRESENCE_ONLINE);   /* a first session */
        }
        u->zero_since = 0;
    } else if (u->count == 0 && u->zero_since == 0) {
        u->zero_since = ts_now_ms();                   /* the grace begins */
    }
}


void
presence_change(uint64_t link_id, const char *user_id, int delta)
{
    presence_session_t  *s = NULL, *ns;
    size_t               i;

    if (!pr.started || !ts_oid_valid(user_id) || (delta != 1 && delta != -1))
    {
        return;
    }
    for (i = 0; i < pr.nsessions; i++) {
        if (pr.sessions[i].link == link_id
            && strcmp(pr.sessions[i].user, user_id) == 0)
        {
            s = &pr.sessions[i];
            break;
        }
    }
    if (s == NULL) {
        if (delta < 0) {
            return;
        }
        if (pr.nsessions == pr.capsessions) {
            pr.capsessions = pr.capsessions ? pr.capsessions * 2 : 64;
            ns = realloc(pr.sessions, pr.capsessions * sizeof(*ns));
            if (ns == NULL) {
                return;
            }
            pr.sessions = ns;
        }
        s = &pr.sessions[pr.nsessions++];
        memset(s, 0, sizeof(*s));
        s->link = link_id;
        memcpy(s->user, user_id, sizeof(ts_oid_t));
    }
    if (delta < 0 && s->count == 0) {
        return;
    }
    s->count += delta;
    presence_total(s->user, delta);
    if (s->count == 0) {
        *s = pr.sessions[--pr.nsessions];
    }
}


void
presence_link_closed(uint64_t link_id)
{
    size_t  i = 0;

    if (!pr.started) {
        return;
    }
    while (i < pr.nsessions) {
        if (pr.sessions[i].link == link_id) {
            presence_total(pr.sessions[i].user, -pr.sessions[i].count);
            pr.sessions[i] = pr.sessions[--pr.nsessions];
            continue;
        }
        i++;
    }
}


static void
presence_tick(uv_timer_t *t)
{
    int64_t  now = ts_now_ms();
    size_t   i = 0;

    while (i < pr.nusers) {
        presence_user_t *u = &pr.users[i];

        if (u->count == 0 && u->zero_since != 0
            && now - u->zero_since >= (int64_t) pr.grace_ms)
        {
            presence_set(u->user, TS_PRESENCE_OFFLINE);
            pr.users[i] = pr.users[--pr.nusers];
            continue;
        }
        i++;
    }
}


int
presence_start(uv_loop_t *loop, uint64_t grace_ms)
{
    uint64_t  every = grace_ms / 4 ? grace_ms / 4 : 1;

    memset(&pr, 0, sizeof(pr));
    pr.loop = loop;
    pr.grace_ms = grace_ms;
    if (uv_timer_init(loop, &pr.timer) != 0
        || uv_timer_start(&pr.timer, presence_tick, every, every) != 0)
    {
        return -1;
    }
    pr.started = 1;
    return 0;
}


void
presence_stop(void)
{
    if (!pr.started) {
        return;
    }
    pr.started = 0;
    uv_timer_stop(&pr.timer);
    uv_close((uv_handle_t *) &pr.timer, NULL);
    free(pr.sessions);
    free(pr.users);
    pr.sessions = NULL;
    pr.users = NULL;
}

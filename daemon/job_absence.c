/*
 * job_absence: the absence rule (ticket_assign_absence, off by default).
 * A moderator or admin whose presence is dnd or offline for longer than
 * the configured time has their To-Do tickets handed back: each goes
 * through the assignment job again without them (ts_store_user_handback,
 * todo_only), and ticket_access_changed and ticket_updated go out for it.
 *
 * A timer sweeps every quarter of the time (at least every second, at
 * most every minute); one sweep at a time, off the loop through
 * store_pool.  A sweep runs two store calls (who is absent, then their
 * tickets); someone who comes back between them still loses their To-Do
 * tickets, which is what the rule asked a moment earlier.
 */

#include <stdio.h>

#include "job_runner_internal.h"
#include "log.h"
#include "store_pool.h"
#include "ts_jobs.h"

static struct {
    uv_timer_t  timer;
    int         started;
    int         sweeping;
    int64_t     absence_ms;

    /* written by the pool thread, read in sweep_done */
    ts_rc_e     rc;
    json_t     *handed;     /* [{ticketId, status}] */
    char        err[256];
} ab;


static void
absence_work(ts_store_t *s, void *arg)
{
    int64_t   now = ts_now_ms();
    json_t   *users = NULL, *v, *one, *why;
    char      reason[160];
    size_t    i;

    /* each ticket's history: handed back by ticketd (actor null), why */
    snprintf(reason, sizeof(reason), "Handed back by the absence rule "
             "(ticket_assign_absence): the assignee was away (dnd or "
             "offline) longer than %lld s", (long long) (ab.absence_ms / 1000));
    why = json_pack("{s:s, s:s, s:I, s:s}", "rule", "absence",
                    "directive", "ticket_assign_absence",
                    "absenceSeconds", (json_int_t) (ab.absence_ms / 1000),
                    "reason", reason);
    ab.handed = json_array();
    ab.rc = why ? ts_store_absent_assignees(s, now - ab.absence_ms, &users)
                : TS_ERR;
    json_array_foreach(users, i, v) {
        one = NULL;
        ab.rc = ts_store_user_handback(s, json_string_value(v), 0, NULL, 1,
                                       NULL, why, ts_job_reassign, now, &one);
        if (ab.rc != TS_OK) {
            break;
        }
        json_array_extend(ab.handed, one);
        json_decref(one);
    }
    json_decref(users);
    json_decref(why);
    if (ab.rc != TS_OK) {
        snprintf(ab.err, sizeof(ab.err), "%s", ts_store_errmsg(s));
    }
}


static void
absence_done(void *arg, int status)
{
    json_t  *v, *data;
    size_t   i;

    ab.sweeping = 0;
    if (status != 0) {
        log_warn("absence rule: sweep did not run: %s", uv_strerror(status));
    } else if (ab.rc != TS_OK) {
        log_warn("absence rule: sweep failed: %s", ab.err);
    }
    /* what was handed back before a failure is stored: announce it */
    json_array_foreach(ab.handed, i, v) {
        const char *id = json_string_value(json_object_get(v, "ticketId"));

        emit_ticket_access_changed(id);
        data = json_pack("{s:s, s:n, s:O}", "ticketId", id, "assignedTo",
                         "status", json_object_get(v, "status"));
        if (data != NULL) {
            emit_ticket_updated(id, data);
            json_decref(data);
        }
    }
    if (json_array_size(ab.handed) > 0) {
        log_info("absence rule: %zu ticket(s) handed back",
                 json_array_size(ab.handed));
        job_runner_wake();          /* their assignment jobs are due */
    }
    json_decref(ab.handed);
    ab.handed = NULL;
}


static void
absence_tick(uv_timer_t *t)
{
    if (ab.sweeping) {
        return;
    }
    if (store_pool_submit(absence_work, absence_done, NULL) != 0) {
        log_warn("absence rule: cannot queue a sweep");
        return;
    }
    ab.sweeping = 1;
}


int
absence_start(uv_loop_t *loop, int64_t absence_ms)
{
    uint64_t  every;

    if (ab.started || absence_ms <= 0) {
        return 0;
    }
    ab.absence_ms = absence_ms;
    every = (uint64_t) absence_ms / 4;
    every = every < 1000 ? 1000 : every > 60000 ? 60000 : every;
    if (uv_timer_init(loop, &ab.timer) != 0
        || uv_timer_start(&ab.timer, absence_tick, every, every) != 0)
    {
        return -1;
    }
    ab.started = 1;
    log_info("absence rule: To-Do tickets of staff away %lld s are handed "
             "back", (long long) (absence_ms / 1000));
    return 0;
}


void
absence_stop(void)
{
    if (ab.started) {
        uv_timer_stop(&ab.timer);
        uv_close((uv_handle_t *) &ab.timer, NULL);
        ab.started = 0;
    }
}

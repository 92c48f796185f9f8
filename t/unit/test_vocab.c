/*
 * test_vocab: the domain words spelt in one place -- job constructors
 * (shared/domain/ts_jobs.h) and ticket rooms and event frames
 * (shared/api/ts_event.h).
 *
 * Protects what ticketd, the stores and the mail templates read: each
 * kind's attempt budget, the dedupe key that makes a second triage,
 * assignment or statistics job of a ticket a no-op, the payload fields of
 * each email template, a room round-tripping through its builder and its
 * parser, and event frames passing ts_event_check.
 *
 * Linked into the single unit-test binary: the runner calls
 * test_vocab_run().
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ts_event.h"
#include "ts_jobs.h"

int test_vocab_run(void);

static const char  *oid = "0123456789abcdef01234567";


static const char *
field(const ts_job_new_t *job, const char *key)
{
    return json_string_value(json_object_get(job->payload, key));
}


static void
each_kind_has_its_attempts_and_unknown_kinds_none(void **state)
{
    (void) state;
    assert_int_equal(ts_job_max_attempts("triage"), 5);
    assert_int_equal(ts_job_max_attempts("assign"), 8);
    assert_int_equal(ts_job_max_attempts("stats"), 8);
    assert_int_equal(ts_job_max_attempts("email"), 8);
    assert_int_equal(ts_job_max_attempts("mail"), 0);
}


static void
ticket_jobs_are_deduplicated_per_ticket(void **state)
{
    ts_job_new_t  job;
    char          key[TS_JOB_KEY_LEN];

    (void) state;
    assert_int_equal(ts_job_triage(&job, key, oid), 0);
    assert_string_equal(job.kind, "triage");
    assert_string_equal(job.dedupe_key, "triage:0123456789abcdef01234567");
    assert_int_equal(job.max_attempts, 5);
    assert_string_equal(field(&job, "ticketId"), oid);
    json_decref(job.payload);

    assert_int_equal(ts_job_assign(&job, key, oid), 0);
    assert_string_equal(job.kind, "assign");
    assert_string_equal(job.dedupe_key, "assign:0123456789abcdef01234567");
    assert_int_equal(job.max_attempts, 8);
    json_decref(job.payload);

    assert_int_equal(ts_job_stats(&job, key, oid, "m1", 1.5), 0);
    assert_string_equal(job.kind, "stats");
    assert_string_equal(job.dedupe_key, "stats:0123456789abcdef01234567");
    assert_string_equal(field(&job, "moderatorId"), "m1");
    assert_true(json_real_value(json_object_get(job.payload, "hours"))
                == 1.5);
    json_decref(job.payload);
}


static void
emails_carry_their_template_fields_and_no_dedupe_key(void **state)
{
    ts_job_new_t  job;
    json_t       *to = json_string("a@example.com"), *name = json_string("a");
    json_t       *ticket = json_pack("{s:s, s:s}", "_id", oid, "title", "T");
    json_t       *user = json_pack("{s:s, s:s}", "email", "b@example.com",
                                   "username", "b");

    (void) state;
    assert_int_equal(ts_job_mail_welcome(&job, "a@example.com", "a"), 0);
    assert_string_equal(job.kind, "email");
    assert_null(job.dedupe_key);
    assert_int_equal(job.max_attempts, 8);
    assert_string_equal(field(&job, "template"), "welcome");
    json_decref(job.payload);

    assert_int_equal(ts_job_mail_assigned(&job, to, name, oid, NULL), 0);
    assert_string_equal(field(&job, "template"), "assigned");
    assert_string_equal(field(&job, "ticketTitle"), "");
    json_decref(job.payload);

    assert_int_equal(ts_job_mail_comment(&job, user, ticket, "c", "hi"), 0);
    assert_string_equal(field(&job, "template"), "comment");
    assert_string_equal(field(&job, "to"), "b@example.com");
    assert_string_equal(field(&job, "toName"), "b");
    assert_string_equal(field(&job, "ticketTitle"), "T");
    json_decref(job.payload);

    assert_int_equal(ts_job_mail_modreq(&job, "modreq_new", to, name, "u",
                                        NULL), 0);
    assert_string_equal(field(&job, "toName"), "a");
    assert_true(json_is_null(json_object_get(job.payload, "skills")));
    json_decref(job.payload);
    assert_int_equal(ts_job_mail_modreq(&job, "modreq_submitted", to, NULL,
                                        "u", NULL), 0);
    assert_null(json_object_get(job.payload, "toName"));
    json_decref(job.payload);

    /* a recipient without an address builds no job */
    json_object_del(user, "email");
    assert_int_equal(ts_job_mail_comment(&job, user, ticket, "c", "hi"), -1);
    assert_null(job.payload);

    json_decref(to);
    json_decref(name);
    json_decref(ticket);
    json_decref(user);
}


static void
room_round_trips_and_foreign_rooms_name_no_ticket(void **state)
{
    char  room[TS_ROOM_LEN];

    (void) state;
    assert_string_equal(ts_room_name(oid, room),
                        "ticket_0123456789abcdef01234567");
    assert_string_equal(ts_room_ticket(room), oid);
    assert_null(ts_room_ticket(NULL));
    assert_null(ts_room_ticket("ticket_"));
    assert_null(ts_room_ticket("ticket_0123456789ABCDEF01234567"));
    assert_null(ts_room_ticket("room_0123456789abcdef01234567"));
}


static void
built_frames_pass_the_event_schema(void **state)
{
    char    room[TS_ROOM_LEN], why[160];
    json_t *f;

    (void) state;
    f = ts_event_frame("status_updated", ts_room_name(oid, room),
                       json_pack("{s:s, s:s}", "ticketId", oid,
                                 "status", "Completed"));
    assert_non_null(f);
    assert_int_equal(ts_event_check(f, why, sizeof(why)), 0);
    json_decref(f);

    /* a room that is not the ticket's is refused */
    f = ts_event_frame("status_updated", "ticket_aaaaaaaaaaaaaaaaaaaaaaaa",
                       json_pack("{s:s, s:s}", "ticketId", oid,
                                 "status", "Completed"));
    assert_int_equal(ts_event_check(f, why, sizeof(why)), -1);
    json_decref(f);

    /* no room is null, as the schema wants it */
    f = ts_event_frame("user_status_changed", NULL,
                       json_pack("{s:s, s:s, s:s}", "userId", oid,
                                 "status", "online",
                                 "lastSeen", "2026-01-01T00:00:00.000Z"));
    assert_true(json_is_null(json_object_get(f, "room")));
    assert_int_equal(ts_event_check(f, why, sizeof(why)), 0);
    json_decref(f);
}


int
test_vocab_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_kind_has_its_attempts_and_unknown_kinds_none),
        cmocka_unit_test(ticket_jobs_are_deduplicated_per_ticket),
        cmocka_unit_test(emails_carry_their_template_fields_and_no_dedupe_key),
        cmocka_unit_test(room_round_trips_and_foreign_rooms_name_no_ticket),
        cmocka_unit_test(built_frames_pass_the_event_schema),
    };

    return cmocka_run_group_tests_name("vocab", tests, NULL, NULL);
}

/*
 * test_assign: assignment scoring (shared/domain/ts_assign.h).  The worked
 * examples carry their arithmetic in comments, done by hand from the
 * original formula
 *
 *     score = 0.5 skill + 0.3 availability + 0.2 performance
 *
 * so a change to the numbers shows up as a disagreement with the paper,
 * not only with the code.  Also: the tie rule, presence, the explanation
 * stored on the ticket, configurable weights.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ts_assign.h"

int test_assign_run(void);

#define ID_A  "aaaaaaaaaaaaaaaaaaaaaaa1"
#define ID_B  "bbbbbbbbbbbbbbbbbbbbbbb2"
#define ID_C  "ccccccccccccccccccccccc3"
#define ID_D  "ddddddddddddddddddddddd4"
#define ID_E  "eeeeeeeeeeeeeeeeeeeeeee5"

#define NEVER  0

#define assert_near(x, y)                                                   \
    do {                                                                    \
        double  x_ = (x), y_ = (y);                                         \
        if (!(fabs(x_ - y_) < 1e-9)) {                                      \
            fail_msg("%s = %.12f, expected %.12f", #x, x_, y_);             \
        }                                                                   \
    } while (0)


static json_t *
js(const char *text)
{
    json_t  *j = json_loads(text, 0, NULL);

    assert_non_null(j);
    return j;
}


/* A candidate; its skills array is new and freed by cands_free(). */
static ts_candidate_t
cand(const char *id, const char *username, const char *skills,
    int64_t active, int64_t resolved, double avg, int64_t last,
    ts_presence_e status)
{
    ts_candidate_t  c;

    memset(&c, 0, sizeof(c));
    c.id = id;
    c.username = username;
    c.skills = skills ? js(skills) : NULL;
    c.active = active;
    c.total_resolved = resolved;
    c.avg_resolution_hours = avg;
    c.last_assigned_at = last;
    c.status = status;
    return c;
}


static void
cands_free(ts_candidate_t *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(c[i].skills);
    }
}


static double
jnum(json_t *obj, const char *key)
{
    json_t  *v = json_object_get(obj, key);

    assert_true(json_is_number(v));
    return json_number_value(v);
}


static const char *
reason_of(json_t *e)
{
    const char  *r = json_string_value(json_object_get(e, "reason"));

    assert_non_null(r);
    assert_true(r[0] != '\0');
    return r;
}


/* The example every other test varies. */
static void
worked_example_fresh_full_match_beats_busy_half_match(void **state)
{
    ts_assign_cfg_t  cfg;
    json_t          *ticket = js("[\"react\", \"css\"]");
    ts_candidate_t   c[2];

    ts_assign_cfg_default(&cfg);

    /*
     * A: skills [React, node], 3 active, 5 resolved at 30 h average.
     *   skill        "react" matches React, "css" nothing: 1/2 = 0.5
     *   availability 1 - 3/10                             = 0.7
     *   performance  1 - 0.5 * (30 - 24) / 24 = 1 - 0.125  = 0.875
     *   score        0.5*0.5 + 0.3*0.7 + 0.2*0.875
     *              = 0.25 + 0.21 + 0.175                   = 0.635
     */
    c[0] = cand(ID_A, "alice", "[\"React\", \"node\"]", 3, 5, 30, NEVER,
                TS_PRESENCE_ONLINE);
    /*
     * B: skills [css, react], 8 active, never resolved (avg ignored).
     *   skill 2/2 = 1; availability 1 - 8/10 = 0.2; performance 0.7
     *   score 0.5*1 + 0.3*0.2 + 0.2*0.7 = 0.5 + 0.06 + 0.14  = 0.70
     * 0.70 - 0.635 = 0.065 > 0.05: no tie, B wins on score.
     */
    c[1] = cand(ID_B, "bob", "[\"css\", \"react\"]", 8, 0, 24, NEVER,
                TS_PRESENCE_ONLINE);

    assert_near(ts_assign_skill(ticket, c[0].skills), 0.5);
    assert_near(ts_assign_availability(&cfg, 3), 0.7);
    assert_near(ts_assign_performance(&cfg, 5, 30), 0.875);
    assert_near(ts_assign_score(&cfg, ticket, &c[0]), 0.635);

    assert_near(ts_assign_skill(ticket, c[1].skills), 1);
    assert_near(ts_assign_availability(&cfg, 8), 0.2);
    assert_near(ts_assign_performance(&cfg, 0, 24), 0.7);
    assert_near(ts_assign_score(&cfg, ticket, &c[1]), 0.70);

    assert_int_equal(ts_assign_choose(&cfg, ticket, c, 2, NULL), 1);

    cands_free(c, 2);
    json_decref(ticket);
}


static void
explanation_lists_every_candidate_with_terms_and_reason(void **state)
{
    ts_assign_cfg_t  cfg;
    json_t          *ticket = js("[\"react\", \"css\"]"), *e = NULL, *list,
                    *a, *b, *w;
    ts_candidate_t   c[2];

    ts_assign_cfg_default(&cfg);
    /* the worked example again: A 0.5/0.7/0.875 = 0.635, B 1/0.2/0.7 = 0.7 */
    c[0] = cand(ID_A, "alice", "[\"React\", \"node\"]", 3, 5, 30, NEVER,
                TS_PRESENCE_ONLINE);
    c[1] = cand(ID_B, "bob", "[\"css\", \"react\"]", 8, 0, 24, 1000,
                TS_PRESENCE_ONLINE);

    assert_int_equal(ts_assign_choose(&cfg, ticket, c, 2, &e), 1);
    assert_non_null(e);

    list = json_object_get(e, "candidates");
    assert_true(json_is_array(list));
    assert_int_equal(json_array_size(list), 2);

    a = json_array_get(list, 0);            /* input order kept */
    assert_string_equal(json_string_value(json_object_get(a, "_id")), ID_A);
    assert_string_equal(json_string_value(json_object_get(a, "username")),
                        "alice");
    assert_string_equal(json_string_value(json_object_get(a, "status")),
                        "online");
    assert_near(jnum(a, "skill"), 0.5);
    assert_near(jnum(a, "availability"), 0.7);
    assert_near(jnum(a, "performance"), 0.875);
    assert_near(jnum(a, "score"), 0.635);
    assert_true(json_is_true(json_object_get(a, "eligible")));
    assert_true(json_is_false(json_object_get(a, "tied")));
    assert_true(json_is_null(json_object_get(a, "lastAssignedAt")));

    b = json_array_get(list, 1);
    assert_string_equal(json_string_value(json_object_get(b, "_id")), ID_B);
    assert_near(jnum(b, "skill"), 1);
    assert_near(jnum(b, "availability"), 0.2);
    assert_near(jnum(b, "performance"), 0.7);
    assert_near(jnum(b, "score"), 0.7);
    assert_true(json_is_true(json_object_get(b, "tied")));
    assert_string_equal(
        json_string_value(json_object_get(b, "lastAssignedAt")),
        "1970-01-01T00:00:01.000Z");

    assert_string_equal(json_string_value(json_object_get(e, "chosen")),
                        ID_B);
    assert_string_equal(reason_of(e), "highest score 0.700");

    w = json_object_get(e, "weights");
    assert_near(jnum(w, "skill"), 0.5);
    assert_near(jnum(w, "availability"), 0.3);
    assert_near(jnum(w, "performance"), 0.2);
    assert_near(jnum(e, "capacity"), 10);
    assert_near(jnum(e, "targetHours"), 24);
    assert_near(jnum(e, "tieMargin"), 0.05);

    json_decref(e);
    cands_free(c, 2);
    json_decref(ticket);
}


static void
explanation_numbers_are_rounded_to_three_decimals(void **state)
{
    ts_assign_cfg_t  cfg;
    json_t          *ticket = js("[\"a\", \"b\", \"c\"]"), *e = NULL, *a;
    ts_candidate_t   c[1];

    ts_assign_cfg_default(&cfg);
    /*
     * skill 1/3 = 0.3333..; availability 1 - 1/10 = 0.9; never resolved 0.7
     * score 0.1666.. + 0.27 + 0.14 = 0.5766.. -> 0.577 (0.333 for skill)
     */
    c[0] = cand(ID_A, "alice", "[\"a\"]", 1, 0, 0, NEVER,
                TS_PRESENCE_ONLINE);
    assert_int_equal(ts_assign_choose(&cfg, ticket, c, 1, &e), 0);
    a = json_array_get(json_object_get(e, "candidates"), 0);
    assert_true(jnum(a, "skill") == 0.333);
    assert_true(jnum(a, "score") == 0.577);
    assert_string_equal(reason_of(e), "highest score 0.577");

    json_decref(e);
    cands_free(c, 1);
    json_decref(ticket);
}


static void
tie_within_margin_goes_to_least_recently_assigned(void **state)
{
    ts_assign_cfg_t  cfg;
    json_t          *ticket = js("[\"go\"]"), *e = NULL, *list;
    ts_candidate_t   c[2];
    const char      *r;

    ts_assign_cfg_default(&cfg);
    /*
     * C: skill 1, availability 1 - 2/10 = 0.8, 10 resolved at 20 h -> 1
     *    0.5 + 0.24 + 0.2 = 0.94, last assigned at t = 2000 ms
     * D: skill 1, availability 1 - 3/10 = 0.7, 10 resolved at 12 h -> 1
     *    0.5 + 0.21 + 0.2 = 0.91, last assigned at t = 1000 ms
     * 0.94 - 0.91 = 0.03 <= 0.05: tied; D waited longer and wins despite
     * the lower score.
     */
    c[0] = cand(ID_C, "carol", "[\"Go\"]", 2, 10, 20, 2000,
                TS_PRESENCE_ONLINE);
    c[1] = cand(ID_D, "dave", "[\"go\"]", 3, 10, 12, 1000,
                TS_PRESENCE_ONLINE);
    assert_near(ts_assign_score(&cfg, ticket, &c[0]), 0.94);
    assert_near(ts_assign_score(&cfg, ticket, &c[1]), 0.91);

    assert_int_equal(ts_assign_choose(&cfg, ticket, c, 2, &e), 1);
    assert_string_equal(json_string_value(json_object_get(e, "chosen")),
                        ID_D);
    r = reason_of(e);
    assert_string_equal(r, "score 0.910 tied within 0.05 with carol; "
                           "assigned least recently");
    list = json_object_get(e, "candidates");
    assert_true(json_is_true(json_object_get(json_array_get(list, 0),
                                             "tied")));
    assert_true(json_is_true(json_object_get(json_array_get(list, 1),
                                             "tied")));
    json_decref(e);

    /* the same pair with C assigned longer ago: C, the better, wins */
    c[0].last_assigned_at = 500;
    assert_int_equal(ts_assign_choose(&cfg, ticket, c, 2, NULL), 0);

    cands_free(c, 2);
    json_decref(ticket);
}


static void
never_assigned_beats_assigned_when_tied(void **state)
{
    ts_assign_cfg_t  cfg;
    json_t          *ticket = js("[\"go\"]"), *e = NULL;
    ts_candidate_t   c[2];

    ts_assign_cfg_default(&cfg);
    /* C 0.94 assigned at t = 1 ms; D 0.91 never assigned: tied, D first */
    c[0] = cand(ID_C, "carol", "[\"go\"]", 2, 10, 20, 1,
                TS_PRESENCE_ONLINE);
    c[1] = cand(ID_D, "dave", "[\"go\"]", 3, 10, 12, NEVER,
                TS_PRESENCE_ONLINE);
    assert_int_equal(ts_assign_choose(&cfg, ticket, c, 2, &e), 1);
    assert_string_equal(reason_of(e), "score 0.910 tied within 0.05 with "
                                      "carol; never assigned before");
    json_decref(e);
    cands_free(c, 2);
    json_decref(ticket);
}


static void
tie_margin_is_inclusive_and_no_wider(void **state)
{
    ts_assign_cfg_t  cfg;
    json_t          *ticket = js("[]"), *ticket2;
    ts_candidate_t   c[2];

    ts_assign_cfg_default(&cfg);
    /*
     * Ticket without skills: skill 0.5 for both; nobody active: avail 1.
     * G: 1 resolved at 24 h -> perf 1:     0.25 + 0.3 + 0.2  = 0.75
     * H: 1 resolved at 36 h -> 1 - 0.5 * 12/24 = 0.75:
     *                                      0.25 + 0.3 + 0.15 = 0.70
     * Exactly 0.05 apart on paper: tied, and H, assigned earlier, wins.
     */
    c[0] = cand(ID_A, "gina", NULL, 0, 1, 24, 2000, TS_PRESENCE_ONLINE);
    c[1] = cand(ID_B, "hank", NULL, 0, 1, 36, 1000, TS_PRESENCE_ONLINE);
    assert_near(ts_assign_score(&cfg, ticket, &c[0]), 0.75);
    assert_near(ts_assign_score(&cfg, ticket, &c[1]), 0.70);
    assert_int_equal(ts_assign_choose(&cfg, ticket, c, 2, NULL), 1);

    /*
     * Where binary rounding widens the gap: a ticket skill neither has
     * (skill 0), both 3 active (availability 0.7):
     *   G at 24 h: 0 + 0.21 + 0.2  = 0.41  (computed 0.41000000000000003)
     *   H at 36 h: 0 + 0.21 + 0.15 = 0.36
     * 0.05 apart on paper, a hair more in doubles: still tied, H wins.
     */
    ticket2 = js("[\"cobol\"]");
    c[0].skills = js("[\"go\"]");
    c[1].skills = js("[\"rust\"]");
    c[0].active = c[1].active = 3;
    assert_near(ts_assign_score(&cfg, ticket2, &c[0]), 0.41);
    assert_near(ts_assign_score(&cfg, ticket2, &c[1]), 0.36);
    assert_int_equal(ts_assign_choose(&cfg, ticket2, c, 2, NULL), 1);
    json_decref(ticket2);
    c[0].active = c[1].active = 0;

    /*
     * H at 36.5 h: perf 1 - 0.5 * 12.5/24 = 0.739583..; score 0.25 + 0.3
     * + 0.147916.. = 0.697916..; 0.052 apart: not tied, G wins on score.
     */
    c[1].avg_resolution_hours = 36.5;
    assert_near(ts_assign_score(&cfg, ticket, &c[1]),
                0.25 + 0.3 + 0.2 * (1 - 0.5 * 12.5 / 24));
    assert_int_equal(ts_assign_choose(&cfg, ticket, c, 2, NULL), 0);

    cands_free(c, 2);
    json_decref(ticket);
}


static void
equal_last_assignment_prefers_higher_score(void **state)
{
    ts_assign_cfg_t  cfg;
    json_t          *ticket = js("[\"go\"]"), *e = NULL;
    ts_candidate_t   c[2];

    ts_assign_cfg_default(&cfg);
    /* D 0.91 first in input, C 0.94 second, both never assigned: C */
    c[0] = cand(ID_D, "dave", "[\"go\"]", 3, 10, 12, NEVER,
                TS_PRESENCE_ONLINE);
    c[1] = cand(ID_C, "carol", "[\"go\"]", 2, 10, 20, NEVER,
                TS_PRESENCE_ONLINE);
    assert_int_equal(ts_assign_choose(&cfg, ticket, c, 2, &e), 1);
    assert_string_equal(reason_of(e), "score 0.940 tied within 0.05 with "
                        "dave; assigned least recently, then highest score");
    json_decref(e);
    cands_free(c, 2);
    json_decref(ticket);
}


static void
exact_equality_is_broken_by_lower_id_whatever_the_order(void **state)
{
    ts_assign_cfg_t  cfg;
    json_t          *ticket = js("[\"sql\"]"), *e = NULL;
    ts_candidate_t   c[2], t;

    ts_assign_cfg_default(&cfg);
    /* identical: skill 1, avail 0.5, never resolved 0.7:
     * 0.5 + 0.15 + 0.14 = 0.79 each, both assigned at t = 7 ms */
    c[0] = cand(ID_B, "bob", "[\"sql\"]", 5, 0, 24, 7, TS_PRESENCE_ONLINE);
    c[1] = cand(ID_A, "alice", "[\"SQL\"]", 5, 0, 24, 7, TS_PRESENCE_ONLINE);
    assert_near(ts_assign_score(&cfg, ticket, &c[0]), 0.79);

    assert_int_equal(ts_assign_choose(&cfg, ticket, c, 2, &e), 1);
    assert_string_equal(json_string_value(json_object_get(e, "chosen")),
                        ID_A);
    assert_string_equal(reason_of(e), "score 0.790 tied within 0.05 with "
                        "bob; same last assignment and score, then lowest id");
    json_decref(e);

    /* swapped: still alice */
    t = c[0];
    c[0] = c[1];
    c[1] = t;
    assert_int_equal(ts_assign_choose(&cfg, ticket, c, 2, NULL), 0);

    cands_free(c, 2);
    json_decref(ticket);
}


static void
many_tied_are_named_briefly(void **state)
{
    ts_assign_cfg_t  cfg;
    json_t          *e = NULL;
    ts_candidate_t   c[5];

    ts_assign_cfg_default(&cfg);
    /* no ticket skills, all idle, never resolved: 0.25 + 0.3 + 0.14 = 0.69
     * for everyone; eve was never assigned, the others were */
    c[0] = cand(ID_A, "alice", NULL, 0, 0, 0, 10, TS_PRESENCE_ONLINE);
    c[1] = cand(ID_B, "bob", NULL, 0, 0, 0, 20, TS_PRESENCE_ONLINE);
    c[2] = cand(ID_C, "carol", NULL, 0, 0, 0, 30, TS_PRESENCE_ONLINE);
    c[3] = cand(ID_D, "dave", NULL, 0, 0, 0, 40, TS_PRESENCE_ONLINE);
    c[4] = cand(ID_E, "eve", NULL, 0, 0, 0, NEVER, TS_PRESENCE_ONLINE);
    assert_int_equal(ts_assign_choose(&cfg, NULL, c, 5, &e), 4);
    assert_string_equal(reason_of(e), "score 0.690 tied within 0.05 with "
                        "alice, bob, carol and 1 more; never assigned before");
    json_decref(e);

    /* three rivals are all named */
    assert_int_equal(ts_assign_choose(&cfg, NULL, c + 1, 4, &e), 3);
    assert_string_equal(reason_of(e), "score 0.690 tied within 0.05 with "
                        "bob, carol and dave; never assigned before");
    json_decref(e);
    cands_free(c, 5);
}


static void
skills_match_ignoring_case(void **state)
{
    json_t  *t = js("[\"React\", \"CSS\", \"Node.JS\"]");
    json_t  *m = js("[\"react\", \"css\", \"node.js\"]");
    json_t  *u1 = js("[\"\\u00c9lixir\"]");          /* Élixir */
    json_t  *u2 = js("[\"\\u00e9LIXIR\", \"go\"]");  /* éLIXIR */

    assert_near(ts_assign_skill(t, m), 1);
    assert_near(ts_assign_skill(m, t), 1);
    /* beyond ASCII, as toLowerCase() */
    assert_near(ts_assign_skill(u1, u2), 1);
    /* 1 of 2 ticket skills ("go" matches, "elixir" without accent not) */
    json_decref(u1);
    u1 = js("[\"elixir\", \"GO\"]");
    assert_near(ts_assign_skill(u1, u2), 0.5);

    json_decref(t);
    json_decref(m);
    json_decref(u1);
    json_decref(u2);
}


static void
skills_count_ticket_entries_as_listed(void **state)
{
    json_t  *t = js("[\"go\", \"go\", \"rust\"]");
    json_t  *m = js("[\"GO\"]");
    json_t  *odd = js("[\"go\", 7, null, \"rust\"]");

    /* each ticket entry counts, duplicates too: 2 of 3 */
    assert_near(ts_assign_skill(t, m), 2.0 / 3.0);
    /* non-strings are not skills: 1 of 2 */
    assert_near(ts_assign_skill(odd, m), 0.5);
    json_decref(t);
    json_decref(m);
    json_decref(odd);
}


static void
ticket_without_skills_scores_half(void **state)
{
    json_t  *none = js("[]"), *some = js("[\"x\"]"), *notarr = js("{}");

    assert_near(ts_assign_skill(none, some), 0.5);
    assert_near(ts_assign_skill(NULL, some), 0.5);
    assert_near(ts_assign_skill(notarr, some), 0.5);
    /* "ticket has none" is checked first: 0.5 even for a moderator with
     * no skills */
    assert_near(ts_assign_skill(none, none), 0.5);
    assert_near(ts_assign_skill(NULL, NULL), 0.5);
    json_decref(none);
    json_decref(some);
    json_decref(notarr);
}


static void
moderator_without_skills_scores_zero(void **state)
{
    json_t  *t = js("[\"x\", \"y\"]"), *none = js("[]"), *other = js("[\"z\"]");

    assert_near(ts_assign_skill(t, none), 0);
    assert_near(ts_assign_skill(t, NULL), 0);
    assert_near(ts_assign_skill(t, other), 0);      /* skills, no match */
    json_decref(t);
    json_decref(none);
    json_decref(other);
}


static void
availability_falls_with_load_and_stops_at_zero(void **state)
{
    ts_assign_cfg_t  cfg;

    ts_assign_cfg_default(&cfg);
    assert_near(ts_assign_availability(&cfg, 0), 1);
    assert_near(ts_assign_availability(&cfg, 5), 0.5);     /* 1 - 5/10 */
    assert_near(ts_assign_availability(&cfg, 9), 0.1);     /* 1 - 9/10 */
    assert_near(ts_assign_availability(&cfg, 10), 0);      /* at capacity */
    assert_near(ts_assign_availability(&cfg, 25), 0);      /* not -1.5 */
    assert_near(ts_assign_availability(&cfg, -3), 1);      /* nonsense */

    cfg.capacity = 4;
    assert_near(ts_assign_availability(&cfg, 1), 0.75);    /* 1 - 1/4 */
    cfg.capacity = 0;
    assert_near(ts_assign_availability(&cfg, 0), 0);       /* no room */
}


static void
performance_degrades_past_target_and_stops_at_zero(void **state)
{
    ts_assign_cfg_t  cfg;

    ts_assign_cfg_default(&cfg);
    /* never resolved: 0.7 whatever the stored average says */
    assert_near(ts_assign_performance(&cfg, 0, 24), 0.7);
    assert_near(ts_assign_performance(&cfg, 0, 1000), 0.7);
    assert_near(ts_assign_performance(&cfg, 3, NAN), 0.7);
    /* on or under target */
    assert_near(ts_assign_performance(&cfg, 3, 10), 1);
    assert_near(ts_assign_performance(&cfg, 3, 24), 1);
    /* 48 h: 1 - 0.5 * 24/24 = 0.5;  72 h: 1 - 0.5 * 48/24 = 0 */
    assert_near(ts_assign_performance(&cfg, 3, 48), 0.5);
    assert_near(ts_assign_performance(&cfg, 3, 72), 0);
    /* 2400 h: 1 - 0.5 * 2376/24 = -48.5, clamped to 0 */
    assert_near(ts_assign_performance(&cfg, 3, 2400), 0);
    assert_near(ts_assign_performance(&cfg, 3, INFINITY), 0);

    /* target 12: 18 h gives 1 - 0.5 * 6/12 = 0.75 */
    cfg.target_hours = 12;
    assert_near(ts_assign_performance(&cfg, 1, 18), 0.75);
}


static void
offline_and_dnd_are_skipped_while_someone_is_online(void **state)
{
    ts_assign_cfg_t  cfg;
    json_t          *ticket = js("[\"go\"]"), *e = NULL, *list;
    ts_candidate_t   c[3];

    ts_assign_cfg_default(&cfg);
    /*
     * Q (offline) and R (dnd): skill 1, idle, 1 resolved at 24 h:
     *   0.5 + 0.3 + 0.2 = 1.0
     * P (online): no matching skill, 9 active, never resolved:
     *   0 + 0.3 * 0.1 + 0.2 * 0.7 = 0.03 + 0.14 = 0.17
     * P is the only one online, so P.
     */
    c[0] = cand(ID_A, "quinn", "[\"go\"]", 0, 1, 24, NEVER,
                TS_PRESENCE_OFFLINE);
    c[1] = cand(ID_B, "rita", "[\"go\"]", 0, 1, 24, NEVER, TS_PRESENCE_DND);
    c[2] = cand(ID_C, "pat", "[\"java\"]", 9, 0, 24, 99, TS_PRESENCE_ONLINE);
    assert_near(ts_assign_score(&cfg, ticket, &c[0]), 1.0);
    assert_near(ts_assign_score(&cfg, ticket, &c[2]), 0.17);

    assert_int_equal(ts_assign_choose(&cfg, ticket, c, 3, &e), 2);
    assert_string_equal(reason_of(e), "highest score 0.170 among 1 online");
    list = json_object_get(e, "candidates");
    assert_int_equal(json_array_size(list), 3);     /* skipped still listed */
    assert_true(json_is_false(json_object_get(json_array_get(list, 0),
                                              "eligible")));
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(list, 0), "status")), "offline");
    assert_true(json_is_false(json_object_get(json_array_get(list, 1),
                                              "eligible")));
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(list, 1), "status")), "dnd");
    assert_true(json_is_true(json_object_get(json_array_get(list, 2),
                                             "eligible")));
    json_decref(e);

    /* P goes offline too: nobody online, all considered, R (dnd) and Q
     * tie at 1.0, both never assigned, equal score: lower id, Q */
    c[2].status = TS_PRESENCE_OFFLINE;
    assert_int_equal(ts_assign_choose(&cfg, ticket, c, 3, &e), 0);
    assert_non_null(strstr(reason_of(e), "nobody online; chose among all: "));
    assert_true(json_is_true(json_object_get(
        json_array_get(json_object_get(e, "candidates"), 2), "eligible")));
    json_decref(e);

    /* nobody online and one clear best */
    c[0].active = 5;            /* Q: 0.5 + 0.15 + 0.2 = 0.85, not tied */
    assert_int_equal(ts_assign_choose(&cfg, ticket, c, 3, &e), 1);
    assert_string_equal(reason_of(e), "nobody online; chose among all: "
                                      "highest score 1.000");
    json_decref(e);

    cands_free(c, 3);
    json_decref(ticket);
}


static void
no_candidates_choose_nobody_and_say_so(void **state)
{
    ts_assign_cfg_t  cfg;
    json_t          *ticket = js("[\"go\"]"), *e = NULL;

    ts_assign_cfg_default(&cfg);
    assert_int_equal(ts_assign_choose(&cfg, ticket, NULL, 0, NULL), -1);
    assert_int_equal(ts_assign_choose(&cfg, ticket, NULL, 0, &e), -1);
    assert_non_null(e);
    assert_int_equal(json_array_size(json_object_get(e, "candidates")), 0);
    assert_true(json_is_null(json_object_get(e, "chosen")));
    assert_string_equal(reason_of(e), "no moderators");
    assert_near(jnum(e, "capacity"), 10);
    json_decref(e);
    json_decref(ticket);
}


static void
weights_setting_is_read_word_by_word(void **state)
{
    ts_assign_cfg_t  cfg;
    ts_errmsg_t      err;
    double           v;

    ts_assign_cfg_default(&cfg);
    assert_int_equal(ts_assign_cfg_weight(&cfg, "skill=0.7", err), 0);
    assert_int_equal(ts_assign_cfg_weight(&cfg, "availability=0", err), 0);
    assert_int_equal(ts_assign_cfg_weight(&cfg, "performance=.3", err), 0);
    assert_true(cfg.w_skill == 0.7 && cfg.w_avail == 0 && cfg.w_perf == 0.3);
    /* the rest of the defaults stay */
    assert_true(cfg.capacity == 10 && cfg.target_hours == 24
                && cfg.tie_margin == 0.05);
    assert_int_equal(ts_assign_cfg_check(&cfg, err), 0);

    assert_int_equal(ts_assign_cfg_weight(&cfg, "luck=1", err), -1);
    assert_non_null(strstr(err, "unknown weight"));
    assert_int_equal(ts_assign_cfg_weight(&cfg, "skill=-1", err), -1);
    assert_int_equal(ts_assign_cfg_weight(&cfg, "skill=1e3", err), -1);
    assert_int_equal(ts_assign_cfg_weight(&cfg, "skill=", err), -1);
    assert_int_equal(ts_assign_cfg_weight(&cfg, "skill=nan", err), -1);
    assert_true(cfg.w_skill == 0.7);              /* untouched by errors */

    ts_assign_cfg_weight(&cfg, "skill=0", err);
    ts_assign_cfg_weight(&cfg, "performance=0", err);
    assert_int_equal(ts_assign_cfg_check(&cfg, err), -1);   /* all 0 */

    assert_int_equal(ts_assign_number("0.05", &v), 0);
    assert_true(v == 0.05);
    assert_int_equal(ts_assign_number("1.2.3", &v), -1);
    assert_int_equal(ts_assign_number(".", &v), -1);
}


static void
configured_weights_change_the_winner(void **state)
{
    ts_assign_cfg_t  cfg;
    json_t          *ticket = js("[\"react\", \"css\"]"), *e = NULL;
    ts_candidate_t   c[2];
    ts_errmsg_t      err;

    /*
     * The worked example under weights 0.2 / 0.6 / 0.2 (availability
     * first):
     *   A: 0.2*0.5 + 0.6*0.7 + 0.2*0.875 = 0.1 + 0.42 + 0.175 = 0.695
     *   B: 0.2*1   + 0.6*0.2 + 0.2*0.7   = 0.2 + 0.12 + 0.14  = 0.46
     * A wins now (B won under the defaults).
     */
    ts_assign_cfg_default(&cfg);
    cfg.w_skill = 0.2;
    cfg.w_avail = 0.6;
    cfg.w_perf = 0.2;
    assert_int_equal(ts_assign_cfg_check(&cfg, err), 0);
    c[0] = cand(ID_A, "alice", "[\"React\", \"node\"]", 3, 5, 30, NEVER,
                TS_PRESENCE_ONLINE);
    c[1] = cand(ID_B, "bob", "[\"css\", \"react\"]", 8, 0, 24, NEVER,
                TS_PRESENCE_ONLINE);
    assert_near(ts_assign_score(&cfg, ticket, &c[0]), 0.695);
    assert_near(ts_assign_score(&cfg, ticket, &c[1]), 0.46);
    assert_int_equal(ts_assign_choose(&cfg, ticket, c, 2, &e), 0);
    assert_near(jnum(json_object_get(e, "weights"), "availability"), 0.6);
    json_decref(e);

    /* a capacity of 20 halves the load penalty: B 0.5 + 0.3*0.6 + 0.14
     * = 0.82, A 0.25 + 0.3*0.85 + 0.175 = 0.68; a margin of 0.2 ties
     * them, and A, never assigned while B was, wins */
    ts_assign_cfg_default(&cfg);
    cfg.capacity = 20;
    cfg.tie_margin = 0.2;
    c[1].last_assigned_at = 5;
    assert_near(ts_assign_score(&cfg, ticket, &c[1]), 0.82);
    assert_near(ts_assign_score(&cfg, ticket, &c[0]), 0.68);
    assert_int_equal(ts_assign_choose(&cfg, ticket, c, 2, &e), 0);
    assert_string_equal(reason_of(e), "score 0.680 tied within 0.2 with "
                                      "bob; never assigned before");
    json_decref(e);

    cands_free(c, 2);
    json_decref(ticket);
}


static void
config_check_names_the_bad_field(void **state)
{
    ts_assign_cfg_t  cfg;
    ts_errmsg_t      err;

    ts_assign_cfg_default(&cfg);
    assert_int_equal(ts_assign_cfg_check(&cfg, err), 0);

    cfg.capacity = 0;
    assert_int_equal(ts_assign_cfg_check(&cfg, err), -1);
    assert_string_equal(err, "capacity must be a number > 0");

    ts_assign_cfg_default(&cfg);
    cfg.w_perf = -1;
    assert_int_equal(ts_assign_cfg_check(&cfg, err), -1);
    assert_string_equal(err, "performance weight must be a number >= 0");

    ts_assign_cfg_default(&cfg);
    cfg.w_skill = cfg.w_avail = cfg.w_perf = 0;
    assert_int_equal(ts_assign_cfg_check(&cfg, err), -1);

    ts_assign_cfg_default(&cfg);
    cfg.target_hours = NAN;
    assert_int_equal(ts_assign_cfg_check(&cfg, err), -1);
    assert_string_equal(err, "target hours must be a number > 0");

    ts_assign_cfg_default(&cfg);
    cfg.tie_margin = -0.01;
    assert_int_equal(ts_assign_cfg_check(&cfg, err), -1);
}


static void
unprintable_names_do_not_break_the_explanation(void **state)
{
    ts_assign_cfg_t  cfg;
    json_t          *e = NULL, *a;
    ts_candidate_t   c[2];

    ts_assign_cfg_default(&cfg);
    /* equal scores (0.69), b assigned earlier; a's username is not UTF-8 */
    c[0] = cand(ID_A, "\xff\xfe", NULL, 0, 0, 0, 50, TS_PRESENCE_ONLINE);
    c[1] = cand(NULL, NULL, NULL, 0, 0, 0, 10, TS_PRESENCE_ONLINE);
    assert_int_equal(ts_assign_choose(&cfg, NULL, c, 2, &e), 1);
    assert_non_null(e);
    a = json_array_get(json_object_get(e, "candidates"), 0);
    assert_true(json_is_null(json_object_get(a, "username")));
    assert_true(json_is_null(json_object_get(e, "chosen")));
    /* the rival is named by id instead */
    assert_string_equal(reason_of(e), "score 0.690 tied within 0.05 with "
                        ID_A "; assigned least recently");
    json_decref(e);
    cands_free(c, 2);
}


int
test_assign_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(worked_example_fresh_full_match_beats_busy_half_match),
        cmocka_unit_test(explanation_lists_every_candidate_with_terms_and_reason),
        cmocka_unit_test(explanation_numbers_are_rounded_to_three_decimals),
        cmocka_unit_test(tie_within_margin_goes_to_least_recently_assigned),
        cmocka_unit_test(never_assigned_beats_assigned_when_tied),
        cmocka_unit_test(tie_margin_is_inclusive_and_no_wider),
        cmocka_unit_test(equal_last_assignment_prefers_higher_score),
        cmocka_unit_test(exact_equality_is_broken_by_lower_id_whatever_the_order),
        cmocka_unit_test(many_tied_are_named_briefly),
        cmocka_unit_test(skills_match_ignoring_case),
        cmocka_unit_test(skills_count_ticket_entries_as_listed),
        cmocka_unit_test(ticket_without_skills_scores_half),
        cmocka_unit_test(moderator_without_skills_scores_zero),
        cmocka_unit_test(availability_falls_with_load_and_stops_at_zero),
        cmocka_unit_test(performance_degrades_past_target_and_stops_at_zero),
        cmocka_unit_test(offline_and_dnd_are_skipped_while_someone_is_online),
        cmocka_unit_test(no_candidates_choose_nobody_and_say_so),
        cmocka_unit_test(weights_setting_is_read_word_by_word),
        cmocka_unit_test(configured_weights_change_the_winner),
        cmocka_unit_test(config_check_names_the_bad_field),
        cmocka_unit_test(unprintable_names_do_not_break_the_explanation),
    };
    return cmocka_run_group_tests_name("assign", tests, NULL, NULL);
}

/*
 * test_wire: what crosses Redis and the link is authenticated and
 * schema-checked (shared/proto/ts_wire.h, shared/api/ts_event.h).
 *
 * Protects: HMAC-SHA256 is HMAC-SHA256 (RFC 4231's vectors); the keys of
 * the bridge and of the cache are different and neither is the secret; a
 * bridge message or cached value with any byte changed, made with another
 * key, or (bridge) sent outside the replay window is refused; a cached
 * value is bound to its key and namespace; the event schema accepts the
 * frames this system sends and refuses unknown events, wrong rooms, wrong
 * data shapes and oversize frames.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ts_event.h"
#include "ts_wire.h"

int test_wire_run(void);

#define NOW     1700000000000LL
#define ORIGIN  "0123456789abcdef"
#define OTHER   "fedcba9876543210"
#define TID     "65a1b2c3d4e5f60718293a4b"
#define UID     "65a1b2c3d4e5f60718293a4c"

static const unsigned char  key_a[TS_WIRE_KEY_LEN] = { 1, 2, 3 };
static const unsigned char  key_b[TS_WIRE_KEY_LEN] = { 1, 2, 4 };


static void
hex_of(const unsigned char *b, size_t n, char *out)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        sprintf(out + 2 * i, "%02x", b[i]);
    }
}


static void
hmac_matches_rfc4231(void **state)
{
    unsigned char   k1[20], k6[131], mac[32];
    char            hex[65];
    ts_wire_part_t  p;
    static const char  m6[] =
        "Test Using Larger Than Block-Size Key - Hash Key First";

    memset(k1, 0x0b, sizeof(k1));
    p.data = "Hi There";
    p.len = 8;
    ts_wire_hmac(k1, sizeof(k1), &p, 1, mac);
    hex_of(mac, 32, hex);
    assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b"
                             "881dc200c9833da726e9376c2e32cff7");

    /* test case 2, the message in two parts */
    {
        ts_wire_part_t  two[2] = { { "what do ya want ", 16 },
                                   { "for nothing?", 12 } };

        ts_wire_hmac("Jefe", 4, two, 2, mac);
        hex_of(mac, 32, hex);
        assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c7"
                                 "5a003f089d2739839dec58b964ec3843");
    }

    /* test case 6: a key longer than a block is hashed first */
    memset(k6, 0xaa, sizeof(k6));
    p.data = m6;
    p.len = sizeof(m6) - 1;
    ts_wire_hmac(k6, sizeof(k6), &p, 1, mac);
    hex_of(mac, 32, hex);
    assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f"
                             "8e0bc6213728c5140546040f0ee37f54");
}


static void
derived_keys_differ_per_label_and_from_the_secret(void **state)
{
    static const char  secret[] = "0123456789abcdef0123456789abcdef-secret";
    unsigned char      bridge[32], cache[32], again[32], mac[32];
    ts_wire_part_t     p = { TS_WIRE_LABEL_BRIDGE,
                             strlen(TS_WIRE_LABEL_BRIDGE) };

    ts_wire_derive(secret, strlen(secret), TS_WIRE_LABEL_BRIDGE, bridge);
    ts_wire_derive(secret, strlen(secret), TS_WIRE_LABEL_CACHE, cache);
    ts_wire_derive(secret, strlen(secret), TS_WIRE_LABEL_BRIDGE, again);
    assert_memory_equal(bridge, again, 32);
    assert_memory_not_equal(bridge, cache, 32);
    assert_memory_not_equal(bridge, secret, 32);

    /* the derivation is HMAC(secret, label), as README documents */
    ts_wire_hmac(secret, strlen(secret), &p, 1, mac);
    assert_memory_equal(mac, bridge, 32);
}


static char *
seal(const unsigned char *key, const char *origin, int64_t at,
    const char *json, size_t *len)
{
    char  *m = ts_wire_bridge_seal(key, origin, at, json, strlen(json), len);

    assert_non_null(m);
    return m;
}


static void
bridge_message_round_trips(void **state)
{
    const char  *frame = "{\"type\":\"event\",\"x\":\"a|b\"}", *json;
    size_t       len, jlen;
    char        *m = seal(key_a, OTHER, NOW, frame, &len);

    assert_int_equal(ts_wire_bridge_open(key_a, ORIGIN, m, len, NOW, &json,
                                         &jlen), TS_WIRE_OK);
    assert_int_equal(jlen, strlen(frame));
    assert_memory_equal(json, frame, jlen);

    /* the layout README documents */
    assert_int_equal(m[64], '|');
    assert_memory_equal(m + 65, "1|" OTHER "|1700000000000|", 33);

    /* authentic but ours: the caller skips it */
    assert_int_equal(ts_wire_bridge_open(key_a, OTHER, m, len, NOW, &json,
                                         &jlen), TS_WIRE_OWN);
    free(m);
}


static void
bridge_refuses_any_changed_byte_and_other_keys(void **state)
{
    const char  *frame = "{\"type\":\"event\",\"event\":\"comment_added\"}";
    const char  *json;
    size_t       len, jlen, i;
    char        *m = seal(key_a, OTHER, NOW, frame, &len);
    char        *c = malloc(len);

    assert_non_null(c);
    for (i = 0; i < len; i++) {
        memcpy(c, m, len);
        c[i] ^= 0x01;
        if (ts_wire_bridge_open(key_a, ORIGIN, c, len, NOW, &json, &jlen)
            == TS_WIRE_OK)
        {
            fail_msg("byte %zu changed and still accepted", i);
        }
    }
    /* cut short, or a byte more */
    assert_int_not_equal(ts_wire_bridge_open(key_a, ORIGIN, m, len - 1, NOW,
                                             &json, &jlen), TS_WIRE_OK);
    assert_int_equal(ts_wire_bridge_open(key_b, ORIGIN, m, len, NOW, &json,
                                         &jlen), TS_WIRE_BAD_MAC);
    /* the old, unauthenticated wire */
    assert_int_equal(ts_wire_bridge_open(key_a, ORIGIN, OTHER "|{}", 19, NOW,
                                         &json, &jlen), TS_WIRE_MALFORMED);
    free(c);
    free(m);
}


static void
bridge_refuses_messages_outside_the_replay_window(void **state)
{
    const char  *json;
    size_t       len, jlen;
    char        *m = seal(key_a, OTHER, NOW, "{}", &len);

    assert_int_equal(ts_wire_bridge_open(key_a, ORIGIN, m, len,
                                         NOW + TS_WIRE_WINDOW_MS, &json,
                                         &jlen), TS_WIRE_OK);
    assert_int_equal(ts_wire_bridge_open(key_a, ORIGIN, m, len,
                                         NOW + TS_WIRE_WINDOW_MS + 1, &json,
                                         &jlen), TS_WIRE_STALE);
    assert_int_equal(ts_wire_bridge_open(key_a, ORIGIN, m, len,
                                         NOW - TS_WIRE_WINDOW_MS - 1, &json,
                                         &jlen), TS_WIRE_STALE);
    free(m);
}


static void
bridge_message_is_accepted_once(void **state)
{
    ts_wire_replay_t  *r = calloc(1, sizeof(*r));
    size_t             len, len2, i;
    char              *m = seal(key_a, OTHER, NOW, "{}", &len);
    char              *m2 = seal(key_a, OTHER, NOW, "{\"a\":1}", &len2);
    char              *many;

    assert_non_null(r);
    assert_int_equal(ts_wire_replay_seen(r, m, NOW), 0);
    assert_int_equal(ts_wire_replay_seen(r, m2, NOW), 0);
    assert_int_equal(ts_wire_replay_seen(r, m, NOW + 1000), 1);
    assert_int_equal(ts_wire_replay_seen(r, m2, NOW + TS_WIRE_WINDOW_MS), 1);

    /* a burst of other messages does not push a recent one out */
    for (i = 0; i < TS_WIRE_REPLAY_SLOTS / 2; i++) {
        char  frame[32];
        size_t  n;

        snprintf(frame, sizeof(frame), "{\"n\":%zu}", i);
        many = seal(key_a, OTHER, NOW, frame, &n);
        assert_int_equal(ts_wire_replay_seen(r, many, NOW + 2000), 0);
        free(many);
    }
    assert_int_equal(ts_wire_replay_seen(r, m, NOW + 3000), 1);
    free(m);
    free(m2);
    free(r);
}


static void
cache_value_is_bound_to_key_and_namespace(void **state)
{
    static const char  ns[] = "ticket:0123456789abcdef:";
    static const char  val[] = "7|3|[{\"title\":\"x\"}]";
    const char        *out;
    size_t             len, olen, i;
    char              *s, *c;

    s = ts_wire_cache_seal(key_a, ns, "list:u:a", 8, val, strlen(val), &len);
    assert_non_null(s);
    assert_int_equal(len, 64 + strlen(val));
    assert_int_equal(ts_wire_cache_open(key_a, ns, "list:u:a", 8, s, len,
                                        &out, &olen), TS_WIRE_OK);
    assert_int_equal(olen, strlen(val));
    assert_memory_equal(out, val, olen);

    /* another user's key, another run, another secret */
    assert_int_equal(ts_wire_cache_open(key_a, ns, "list:u:b", 8, s, len,
                                        &out, &olen), TS_WIRE_BAD_MAC);
    assert_int_equal(ts_wire_cache_open(key_a, "ticket:fedcba9876543210:",
                                        "list:u:a", 8, s, len, &out, &olen),
                     TS_WIRE_BAD_MAC);
    assert_int_equal(ts_wire_cache_open(key_b, ns, "list:u:a", 8, s, len,
                                        &out, &olen), TS_WIRE_BAD_MAC);
    /* the key/value split cannot be moved */
    assert_int_equal(ts_wire_cache_open(key_a, ns, "list:u:", 7, s, len,
                                        &out, &olen), TS_WIRE_BAD_MAC);

    c = malloc(len);
    assert_non_null(c);
    for (i = 0; i < len; i++) {
        memcpy(c, s, len);
        c[i] ^= 0x20;
        if (ts_wire_cache_open(key_a, ns, "list:u:a", 8, c, len, &out, &olen)
            == TS_WIRE_OK)
        {
            fail_msg("byte %zu changed and still accepted", i);
        }
    }
    /* a value as the old code stored it, without a MAC */
    assert_int_not_equal(ts_wire_cache_open(key_a, ns, "list:u:a", 8, val,
                                            strlen(val), &out, &olen),
                         TS_WIRE_OK);
    free(c);
    free(s);
}


/* --- the event schema ----------------------------------------------------- */

static int
check(const char *json)
{
    char  why[200];

    return ts_event_check_text(json, strlen(json), NULL, why, sizeof(why));
}

#define COMMENT_DATA(text) \
    "{\"ticketId\":\"" TID "\",\"comment\":{\"_id\":\"" UID "\"," \
    "\"author\":{\"_id\":\"" UID "\",\"email\":\"a@example.com\"," \
    "\"username\":\"ann\",\"status\":\"online\"},\"text\":" text "," \
    "\"role\":\"moderator\",\"createdAt\":\"2024-01-02T03:04:05.678Z\"}}"

static void
schema_accepts_every_event_this_system_sends(void **state)
{
    static const char *const  ok[] = {
        "{\"type\":\"event\",\"event\":\"comment_added\",\"room\":\"ticket_"
        TID "\",\"data\":" COMMENT_DATA("\"hello \\u00e9\"") "}",
        "{\"type\":\"event\",\"event\":\"status_updated\",\"room\":\"ticket_"
        TID "\",\"data\":{\"ticketId\":\"" TID "\",\"status\":\"In Progress\"}}",
        "{\"type\":\"event\",\"event\":\"ticket_updated\",\"room\":\"ticket_"
        TID "\",\"data\":{\"ticketId\":\"" TID "\",\"priority\":\"High\","
        "\"relatedSkills\":[\"a\"],\"triage\":{\"provider\":\"offline\"}}}",
        "{\"type\":\"event\",\"event\":\"user_status_changed\",\"room\":null,"
        "\"data\":{\"userId\":\"" UID "\",\"status\":\"dnd\","
        "\"lastSeen\":\"2024-01-02T03:04:05.678Z\"}}",
        "{\"type\":\"event\",\"event\":\"user_status_changed\","
        "\"data\":{\"userId\":\"" UID "\",\"status\":\"offline\","
        "\"lastSeen\":null}}",
        "{\"type\":\"event\",\"event\":\"session_revoked\",\"room\":null,"
        "\"data\":{\"userId\":\"" UID "\",\"sig\":\"aZ09_-\"}}",
        "{\"type\":\"event\",\"event\":\"user_changed\",\"room\":null,"
        "\"data\":{\"userId\":\"" UID "\"}}",
        "{\"type\":\"event\",\"event\":\"ticket_access_changed\",\"room\":null,"
        "\"data\":{\"ticketId\":\"" TID "\"}}",
    };
    size_t  i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (check(ok[i]) != 0) {
            fail_msg("refused frame %zu: %s", i, ok[i]);
        }
    }
}


#define ROOM  "\"room\":\"ticket_" TID "\""
#define STAFF "\"audience\":\"staff\""
#define PERSON "{\"_id\":\"" UID "\",\"username\":\"ann\"}"

/* Staff-only frames (issue 15): "audience":"staff" on a ticket's room
 * only; ticket_viewers and user_typing never without it. */
static void
schema_knows_staff_only_frames(void **state)
{
    static const char *const  ok[] = {
        "{\"type\":\"event\",\"event\":\"comment_added\"," ROOM ","
        STAFF ",\"data\":" COMMENT_DATA("\"note\"") "}",
        "{\"type\":\"event\",\"event\":\"ticket_updated\"," ROOM ","
        STAFF ",\"data\":{\"ticketId\":\"" TID "\",\"helpfulNotes\":\"x\"}}",
        "{\"type\":\"event\",\"event\":\"ticket_viewers\"," ROOM ","
        STAFF ",\"data\":{\"ticketId\":\"" TID "\",\"viewers\":[" PERSON
        "]}}",
        "{\"type\":\"event\",\"event\":\"ticket_viewers\"," ROOM ","
        STAFF ",\"data\":{\"ticketId\":\"" TID "\",\"viewers\":[]}}",
        "{\"type\":\"event\",\"event\":\"user_typing\"," ROOM ","
        STAFF ",\"data\":{\"ticketId\":\"" TID "\",\"user\":" PERSON
        ",\"typing\":true}}",
    };
    static const char *const  bad[] = {
        /* for staff only, so never without the audience */
        "{\"type\":\"event\",\"event\":\"ticket_viewers\"," ROOM ","
        "\"data\":{\"ticketId\":\"" TID "\",\"viewers\":[]}}",
        "{\"type\":\"event\",\"event\":\"user_typing\"," ROOM ","
        "\"data\":{\"ticketId\":\"" TID "\",\"user\":" PERSON
        ",\"typing\":true}}",
        /* an audience other than staff, or on an event to no room */
        "{\"type\":\"event\",\"event\":\"comment_added\"," ROOM ","
        "\"audience\":\"all\",\"data\":" COMMENT_DATA("\"x\"") "}",
        "{\"type\":\"event\",\"event\":\"user_status_changed\","
        "\"room\":null," STAFF ",\"data\":{\"userId\":\"" UID "\","
        "\"status\":\"dnd\",\"lastSeen\":null}}",
        /* a viewer or a typist is {_id, username}, typing a boolean */
        "{\"type\":\"event\",\"event\":\"ticket_viewers\"," ROOM ","
        STAFF ",\"data\":{\"ticketId\":\"" TID "\",\"viewers\":"
        "[{\"_id\":\"" UID "\"}]}}",
        "{\"type\":\"event\",\"event\":\"ticket_viewers\"," ROOM ","
        STAFF ",\"data\":{\"ticketId\":\"" TID "\",\"viewers\":"
        "[{\"_id\":\"" UID "\",\"username\":\"a\",\"email\":\"e\"}]}}",
        "{\"type\":\"event\",\"event\":\"user_typing\"," ROOM ","
        STAFF ",\"data\":{\"ticketId\":\"" TID "\",\"user\":" PERSON
        ",\"typing\":1}}",
        "{\"type\":\"event\",\"event\":\"user_typing\"," ROOM ","
        STAFF ",\"data\":{\"ticketId\":\"" TID "\",\"user\":" PERSON
        ",\"typing\":true,\"extra\":1}}",
    };
    json_t  *f;
    size_t   i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (check(ok[i]) != 0) {
            fail_msg("refused frame %zu: %s", i, ok[i]);
        }
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (check(bad[i]) == 0) {
            fail_msg("accepted frame %zu: %s", i, bad[i]);
        }
    }
    /* the constructor writes what the check and the workers read */
    f = ts_event_frame_staff("user_typing", "ticket_" TID,
                             json_pack("{s:s, s:{s:s, s:s}, s:b}", "ticketId",
                                       TID, "user", "_id", UID, "username",
                                       "ann", "typing", 0));
    assert_non_null(f);
    assert_true(ts_event_staff_only(f));
    assert_int_equal(ts_event_check(f, (char[80]) { 0 }, 80), 0);
    json_decref(f);
    f = ts_event_frame("status_updated", "ticket_" TID,
                       json_pack("{s:s, s:s}", "ticketId", TID, "status",
                                 "To-Do"));
    assert_false(ts_event_staff_only(f));
    json_decref(f);
}


static void
schema_refuses_forged_or_malformed_frames(void **state)
{
    static const char *const  bad[] = {
        "[]", "{}", "not json",
        /* unknown event, wrong type, extra top-level field */
        "{\"type\":\"event\",\"event\":\"evil\",\"room\":null,\"data\":{}}",
        "{\"type\":\"presence\",\"event\":\"user_changed\",\"room\":null,"
        "\"data\":{\"userId\":\"" UID "\"}}",
        "{\"type\":\"event\",\"event\":\"user_changed\",\"room\":null,"
        "\"data\":{\"userId\":\"" UID "\"},\"x\":1}",
        /* a ticket event to no room, another room, a room not its own */
        "{\"type\":\"event\",\"event\":\"status_updated\",\"room\":null,"
        "\"data\":{\"ticketId\":\"" TID "\",\"status\":\"Completed\"}}",
        "{\"type\":\"event\",\"event\":\"status_updated\",\"room\":\"lobby\","
        "\"data\":{\"ticketId\":\"" TID "\",\"status\":\"Completed\"}}",
        "{\"type\":\"event\",\"event\":\"status_updated\",\"room\":\"ticket_"
        UID "\",\"data\":{\"ticketId\":\"" TID "\",\"status\":\"Completed\"}}",
        /* a room-less event sent to a room */
        "{\"type\":\"event\",\"event\":\"user_changed\",\"room\":\"ticket_"
        TID "\",\"data\":{\"userId\":\"" UID "\"}}",
        /* bad data: enum, id, extra field, types */
        "{\"type\":\"event\",\"event\":\"status_updated\",\"room\":\"ticket_"
        TID "\",\"data\":{\"ticketId\":\"" TID "\",\"status\":\"Hacked\"}}",
        "{\"type\":\"event\",\"event\":\"user_changed\",\"room\":null,"
        "\"data\":{\"userId\":\"65A1B2C3D4E5F60718293A4C\"}}",
        "{\"type\":\"event\",\"event\":\"user_changed\",\"room\":null,"
        "\"data\":{\"userId\":\"" UID "\",\"role\":\"admin\"}}",
        "{\"type\":\"event\",\"event\":\"user_status_changed\",\"room\":null,"
        "\"data\":{\"userId\":\"" UID "\",\"status\":\"dnd\","
        "\"lastSeen\":\"<script>\"}}",
        "{\"type\":\"event\",\"event\":\"session_revoked\",\"room\":null,"
        "\"data\":{\"userId\":\"" UID "\",\"sig\":\"a.b\"}}",
        "{\"type\":\"event\",\"event\":\"session_revoked\",\"room\":null,"
        "\"data\":{\"userId\":\"" UID "\",\"sig\":\"\"}}",
        "{\"type\":\"event\",\"event\":\"comment_added\",\"room\":\"ticket_"
        TID "\",\"data\":" COMMENT_DATA("\"\"") "}",
        "{\"type\":\"event\",\"event\":\"comment_added\",\"room\":\"ticket_"
        TID "\",\"data\":" COMMENT_DATA("{\"html\":1}") "}",
        "{\"type\":\"event\",\"event\":\"comment_added\",\"room\":\"ticket_"
        TID "\",\"data\":{\"ticketId\":\"" TID "\",\"comment\":\"x\"}}",
        "{\"type\":\"event\",\"event\":\"ticket_updated\",\"room\":\"ticket_"
        TID "\",\"data\":[]}",
        /* duplicate keys: which one a reader takes is not defined */
        "{\"type\":\"event\",\"event\":\"user_changed\",\"event\":\"evil\","
        "\"room\":null,\"data\":{\"userId\":\"" UID "\"}}",
    };
    size_t   i, n;
    char    *big, sig[200];

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (check(bad[i]) == 0) {
            fail_msg("accepted frame %zu: %s", i, bad[i]);
        }
    }

    /* a sig over 128 characters */
    memset(sig, 'a', 129);
    sig[129] = '\0';
    big = malloc(400);
    assert_non_null(big);
    snprintf(big, 400, "{\"type\":\"event\",\"event\":\"session_revoked\","
             "\"room\":null,\"data\":{\"userId\":\"" UID "\",\"sig\":\"%s\"}}",
             sig);
    assert_int_not_equal(check(big), 0);
    free(big);

    /* a comment of 5001 characters, and a frame over the size bound */
    n = TS_EVENT_MAX + 100;
    big = malloc(n);
    assert_non_null(big);
    {
        char  *text = malloc(5004);

        assert_non_null(text);
        if (big == NULL || text == NULL) {
            return;                         /* (for gcc's -Wformat) */
        }
        text[0] = '"';
        memset(text + 1, 'x', 5001);
        text[5002] = '"';
        text[5003] = '\0';
        snprintf(big, n, "{\"type\":\"event\",\"event\":\"comment_added\","
                 "\"room\":\"ticket_" TID "\",\"data\":" COMMENT_DATA("%s")
                 "}", text);
        assert_int_not_equal(check(big), 0);
        text[5001] = '"';
        text[5002] = '\0';
        snprintf(big, n, "{\"type\":\"event\",\"event\":\"comment_added\","
                 "\"room\":\"ticket_" TID "\",\"data\":" COMMENT_DATA("%s")
                 "}", text);
        assert_int_equal(check(big), 0);
        free(text);
    }
    i = (size_t) snprintf(big, n, "{\"type\":\"event\",\"event\":"
                          "\"ticket_updated\",\"room\":\"ticket_" TID "\","
                          "\"data\":{\"ticketId\":\"" TID "\",\"x\":\"");
    memset(big + i, 'y', n - i - 4);
    memcpy(big + n - 4, "\"}}", 4);
    assert_int_not_equal(check(big), 0);
    free(big);
}


int
test_wire_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hmac_matches_rfc4231),
        cmocka_unit_test(derived_keys_differ_per_label_and_from_the_secret),
        cmocka_unit_test(bridge_message_round_trips),
        cmocka_unit_test(bridge_refuses_any_changed_byte_and_other_keys),
        cmocka_unit_test(bridge_refuses_messages_outside_the_replay_window),
        cmocka_unit_test(bridge_message_is_accepted_once),
        cmocka_unit_test(cache_value_is_bound_to_key_and_namespace),
        cmocka_unit_test(schema_accepts_every_event_this_system_sends),
        cmocka_unit_test(schema_refuses_forged_or_malformed_frames),
        cmocka_unit_test(schema_knows_staff_only_frames),
    };

    return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}

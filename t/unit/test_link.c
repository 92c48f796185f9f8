/*
 * test_link: the ts_link frame codec (shared/proto/ts_link.h).
 *
 * Protects the wire contract between the nginx workers and ticketd: frames
 * survive any split of the byte stream, several frames in one read come
 * out in order, a length of 0 or above TS_LINK_MAX_FRAME marks the stream
 * corrupt for good, and encode/decode round-trips byte for byte.
 *
 * Linked into the single unit-test binary: no main() here; the runner
 * calls test_link_run().
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ts_link.h"

int test_link_run(void);

/* Frame payload p with the codec under test; the caller frees. */
static unsigned char *
frame_of(const char *p, size_t *flen)
{
    unsigned char  *f = ts_link_frame(p, strlen(p), flen);

    assert_non_null(f);
    return f;
}

/* Assert that the next frame in d is exactly p. */
static void
assert_next_frame(ts_link_decoder_t *d, const char *p)
{
    const char  *payload = NULL;
    size_t       len = 0;

    assert_int_equal(ts_link_decoder_next(d, &payload, &len), 1);
    assert_int_equal(len, strlen(p));
    assert_memory_equal(payload, p, len);
}

static void
assert_needs_more(ts_link_decoder_t *d)
{
    const char  *payload;
    size_t       len;

    assert_int_equal(ts_link_decoder_next(d, &payload, &len), 0);
}

static void
assert_corrupt(ts_link_decoder_t *d)
{
    const char  *payload;
    size_t       len;

    assert_int_equal(ts_link_decoder_next(d, &payload, &len), -1);
}

static void
frame_fed_byte_by_byte_comes_out_whole_once_complete(void **state)
{
    const char         *p = "{\"type\":\"hello\",\"pid\":42,\"worker\":3}";
    ts_link_decoder_t   d;
    unsigned char      *f;
    size_t              flen, i;

    f = frame_of(p, &flen);
    ts_link_decoder_init(&d);

    for (i = 0; i < flen - 1; i++) {
        assert_int_equal(ts_link_decoder_feed(&d, f + i, 1), 0);
        assert_needs_more(&d);
    }
    assert_int_equal(ts_link_decoder_feed(&d, f + flen - 1, 1), 0);
    assert_next_frame(&d, p);
    assert_needs_more(&d);

    ts_link_decoder_free(&d);
    free(f);
}

static void
several_frames_in_one_feed_come_out_in_order(void **state)
{
    const char         *p[] = { "{\"type\":\"wake\"}",
                                "{\"type\":\"event\",\"event\":\"a\"}",
                                "{}" };
    ts_link_decoder_t   d;
    unsigned char      *f, *all;
    size_t              flen, n = 0, i;

    all = malloc(1024);
    assert_non_null(all);
    for (i = 0; i < 3; i++) {
        f = frame_of(p[i], &flen);
        memcpy(all + n, f, flen);
        n += flen;
        free(f);
    }

    ts_link_decoder_init(&d);
    assert_int_equal(ts_link_decoder_feed(&d, all, n), 0);
    for (i = 0; i < 3; i++) {
        assert_next_frame(&d, p[i]);
    }
    assert_needs_more(&d);

    ts_link_decoder_free(&d);
    free(all);
}

static void
frame_split_across_feeds_survives_buffer_compaction(void **state)
{
    const char         *p1 = "{\"type\":\"event\",\"event\":\"first\"}";
    const char         *p2 = "{\"type\":\"event\",\"event\":\"second\"}";
    ts_link_decoder_t   d;
    unsigned char      *f1, *f2;
    size_t              l1, l2, half;

    f1 = frame_of(p1, &l1);
    f2 = frame_of(p2, &l2);
    half = l2 / 2;

    ts_link_decoder_init(&d);
    assert_int_equal(ts_link_decoder_feed(&d, f1, l1), 0);
    assert_int_equal(ts_link_decoder_feed(&d, f2, half), 0);
    assert_next_frame(&d, p1);
    assert_needs_more(&d);

    /* This feed moves the unread half of frame 2 to the buffer's start. */
    assert_int_equal(ts_link_decoder_feed(&d, f2 + half, l2 - half), 0);
    assert_next_frame(&d, p2);
    assert_needs_more(&d);

    ts_link_decoder_free(&d);
    free(f1);
    free(f2);
}

static void
zero_length_frame_marks_the_stream_corrupt_for_good(void **state)
{
    static const unsigned char  zero[] = { 0, 0, 0, 0, '{', '}' };
    ts_link_decoder_t           d;
    unsigned char              *f;
    size_t                      flen;

    ts_link_decoder_init(&d);
    assert_int_equal(ts_link_decoder_feed(&d, zero, sizeof(zero)), 0);
    assert_corrupt(&d);

    /* A valid frame afterwards does not resynchronise the stream. */
    f = frame_of("{}", &flen);
    assert_int_equal(ts_link_decoder_feed(&d, f, flen), 0);
    assert_corrupt(&d);

    ts_link_decoder_free(&d);
    free(f);
}

static void
length_over_the_limit_is_corrupt_before_the_payload_arrives(void **state)
{
    uint32_t            n = TS_LINK_MAX_FRAME + 1;
    unsigned char       hdr[4];
    ts_link_decoder_t   d;

    hdr[0] = (unsigned char) (n >> 24);
    hdr[1] = (unsigned char) (n >> 16);
    hdr[2] = (unsigned char) (n >> 8);
    hdr[3] = (unsigned char) n;

    ts_link_decoder_init(&d);
    assert_int_equal(ts_link_decoder_feed(&d, hdr, sizeof(hdr)), 0);
    assert_corrupt(&d);
    ts_link_decoder_free(&d);

    /* All bits set: no overflow into a small length. */
    memset(hdr, 0xff, sizeof(hdr));
    ts_link_decoder_init(&d);
    assert_int_equal(ts_link_decoder_feed(&d, hdr, sizeof(hdr)), 0);
    assert_corrupt(&d);
    ts_link_decoder_free(&d);
}

static void
length_at_the_limit_is_accepted_and_waits_for_the_payload(void **state)
{
    uint32_t            n = TS_LINK_MAX_FRAME;
    unsigned char       hdr[4];
    ts_link_decoder_t   d;

    hdr[0] = (unsigned char) (n >> 24);
    hdr[1] = (unsigned char) (n >> 16);
    hdr[2] = (unsigned char) (n >> 8);
    hdr[3] = (unsigned char) n;

    ts_link_decoder_init(&d);
    assert_int_equal(ts_link_decoder_feed(&d, hdr, sizeof(hdr)), 0);
    assert_needs_more(&d);
    ts_link_decoder_free(&d);
}

static void
largest_frame_round_trips(void **state)
{
    ts_link_decoder_t   d;
    unsigned char      *f;
    char               *p;
    const char         *out;
    size_t              flen, len;

    p = malloc(TS_LINK_MAX_FRAME);
    assert_non_null(p);
    memset(p, 'x', TS_LINK_MAX_FRAME);

    f = ts_link_frame(p, TS_LINK_MAX_FRAME, &flen);
    assert_non_null(f);
    assert_int_equal(flen, TS_LINK_HDR + TS_LINK_MAX_FRAME);

    ts_link_decoder_init(&d);
    assert_int_equal(ts_link_decoder_feed(&d, f, flen), 0);
    assert_int_equal(ts_link_decoder_next(&d, &out, &len), 1);
    assert_int_equal(len, TS_LINK_MAX_FRAME);
    assert_memory_equal(out, p, len);

    ts_link_decoder_free(&d);
    free(f);
    free(p);
}

static void
encoded_frame_has_big_endian_length_and_round_trips(void **state)
{
    ts_link_decoder_t   d;
    unsigned char      *f;
    char                p[301];
    size_t              flen;

    /* 300 = 0x012c: both low bytes of the header are non-zero. */
    memset(p, ' ', 300);
    p[0] = '{';
    p[299] = '}';
    p[300] = '\0';

    f = frame_of(p, &flen);
    assert_int_equal(flen, TS_LINK_HDR + 300);
    assert_int_equal(f[0], 0x00);
    assert_int_equal(f[1], 0x00);
    assert_int_equal(f[2], 0x01);
    assert_int_equal(f[3], 0x2c);
    assert_memory_equal(f + TS_LINK_HDR, p, 300);

    ts_link_decoder_init(&d);
    assert_int_equal(ts_link_decoder_feed(&d, f, flen), 0);
    assert_next_frame(&d, p);
    assert_needs_more(&d);

    ts_link_decoder_free(&d);
    free(f);
}

static void
encoder_refuses_empty_and_oversized_payloads(void **state)
{
    size_t  flen = 12345;

    assert_null(ts_link_frame("{}", 0, &flen));
    assert_null(ts_link_frame("{}", (size_t) TS_LINK_MAX_FRAME + 1, &flen));
    assert_int_equal(flen, 12345);
}

static void
empty_decoder_needs_more_and_frees_cleanly(void **state)
{
    ts_link_decoder_t  d;

    ts_link_decoder_init(&d);
    assert_needs_more(&d);
    assert_int_equal(ts_link_decoder_feed(&d, "", 0), 0);
    assert_needs_more(&d);
    ts_link_decoder_free(&d);
    ts_link_decoder_free(&d);     /* idempotent: buffer reset to NULL */
}

int
test_link_run(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(frame_fed_byte_by_byte_comes_out_whole_once_complete),
        cmocka_unit_test(several_frames_in_one_feed_come_out_in_order),
        cmocka_unit_test(frame_split_across_feeds_survives_buffer_compaction),
        cmocka_unit_test(zero_length_frame_marks_the_stream_corrupt_for_good),
        cmocka_unit_test(
            length_over_the_limit_is_corrupt_before_the_payload_arrives),
        cmocka_unit_test(
            length_at_the_limit_is_accepted_and_waits_for_the_payload),
        cmocka_unit_test(largest_frame_round_trips),
        cmocka_unit_test(encoded_frame_has_big_endian_length_and_round_trips),
        cmocka_unit_test(encoder_refuses_empty_and_oversized_payloads),
        cmocka_unit_test(empty_decoder_needs_more_and_frees_cleanly),
    };

    return cmocka_run_group_tests_name("link", tests, NULL, NULL);
}

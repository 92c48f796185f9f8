/*
 * ts_link: framing of the link between nginx workers and ticketd.
 *
 * A link is a stream (Unix socket).  Every message is one frame:
 *
 *     4-byte big-endian length N (1 .. TS_LINK_MAX_FRAME) | N bytes of JSON
 *
 * The JSON is always an object with a "type" string.  Types in use:
 *
 *   worker -> daemon  {"type":"hello","pid":N,"worker":N,
 *                      "config":{"store":"<hex>","socket":"<hex>",
 *                                "secret":"<hex>"}}
 *                                          the fingerprint of its
 *                                          configuration (ts_wire.h)
 *                     {"type":"event","event":"<name>","room":"<room>"|null,
 *                      "data":{...}}       checked against ts_event.h
 *                     {"type":"wake"}          a job was stored, look now
 *                     {"type":"presence","userId":"<id>","delta":1|-1}
 *                                          a Socket.IO session of the
 *                                          user began / ended
 *   daemon -> worker  {"type":"refused","reason":"..."}   the hello's
 *                                          fingerprint is not ticketd's;
 *                                          the link is closed after it
 *                     {"type":"event", ...}   fan-out: events from any
 *                                          worker, the job runner,
 *                                          presence (user_status_changed)
 *                                          and other hosts (Redis bridge,
 *                                          including rights_resync)
 *                     {"type":"metrics","text":"<Prometheus text>"}
 *                                          ticketd's metrics, every 2 s
 *                                          and after a hello; the worker
 *                                          keeps the latest for
 *                                          ticket_metrics (at most 64 KB
 *                                          of printable ASCII lines)
 *
 * The decoder is incremental: feed it whatever bytes arrived, then pull
 * complete frames.  It owns no socket and does no I/O, so both the nginx
 * module and the daemon use it, and it is unit-tested byte by byte.
 */

#ifndef TS_LINK_H
#define TS_LINK_H

#include <stddef.h>
#include <stdint.h>

#define TS_LINK_MAX_FRAME  (1024 * 1024)
#define TS_LINK_HDR        4

typedef struct {
    unsigned char  *buf;      /* owned; holds unconsumed bytes */
    size_t          len;      /* bytes in buf */
    size_t          cap;
    size_t          pos;      /* start of the next unread frame */
    int             broken;   /* a frame had an invalid length */
} ts_link_decoder_t;

/* Initialise an empty decoder. */
void ts_link_decoder_init(ts_link_decoder_t *d);

/* Release the decoder's buffer. */
void ts_link_decoder_free(ts_link_decoder_t *d);

/* Append n received bytes; 0 on success, -1 on allocation failure. */
int ts_link_decoder_feed(ts_link_decoder_t *d, const void *data, size_t n);

/*
 * Take the next complete frame: 1 and *payload, *len point into the decoder
 * (valid until the next feed), 0 when more bytes are needed, -1 when the
 * stream is corrupt (length 0 or above TS_LINK_MAX_FRAME); the link must
 * then be closed.
 */
int ts_link_decoder_next(ts_link_decoder_t *d, const char **payload,
    size_t *len);

/*
 * Encode one frame into a malloc'ed buffer (header + payload); returns NULL
 * when the payload is empty, too large, or memory runs out.
 */
unsigned char *ts_link_frame(const char *payload, size_t len,
    size_t *frame_len);

#endif /* TS_LINK_H */

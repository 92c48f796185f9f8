/*
 * ts_ws: the RFC 6455 WebSocket codec, as pure logic (DESIGN.md section 6).
 *
 * Owns three things, none of which does any I/O or knows about nginx:
 *
 *   1. the opening handshake check: given the request's header values,
 *      either the Sec-WebSocket-Accept value or the HTTP status to answer;
 *   2. an incremental parser of client frames: bytes go in as they arrive
 *      (one at a time if need be), whole messages and control frames come
 *      out, protocol violations come out as the close code to send;
 *   3. encoders of server frames (unmasked, never fragmented).
 *
 * No extensions are negotiated, so every RSV bit is a protocol error.
 *
 * Memory: a parser owns one message buffer that grows to at most
 * max_message bytes and is reused from message to message (released once
 * a delivered message made it grow past TS_WS_KEEP_BUFFER, so idle
 * connections stay small; a declared but unsent payload allocates nothing).  Control frames go through a fixed 125-byte area inside the
 * parser.  ts_ws_parser_memory() is therefore always
 * <= sizeof(parser) + max_message, however many messages pass.
 *
 * Threads: no mutable global state; a parser belongs to one connection.
 * SHA-1 and base64 come from OpenSSL's libcrypto (link -lcrypto).
 */

#ifndef TS_WS_H
#define TS_WS_H

#include <stddef.h>
#include <stdint.h>

#define TS_WS_ACCEPT_LEN      28          /* base64 of a SHA-1, no NUL */
#define TS_WS_MAX_CONTROL     125         /* control frame payload bytes */
#define TS_WS_MAX_HEADER      10          /* server frame header bytes */
#define TS_WS_KEEP_BUFFER     (16 * 1024) /* message buffer kept for reuse */

/* Close codes (RFC 6455 section 7.4.1) this codec produces or handles. */
#define TS_WS_CLOSE_NORMAL    1000
#define TS_WS_CLOSE_GOING     1001
#define TS_WS_CLOSE_PROTOCOL  1002
#define TS_WS_CLOSE_NO_STATUS 1005        /* never on the wire */
#define TS_WS_CLOSE_BAD_DATA  1007
#define TS_WS_CLOSE_POLICY    1008
#define TS_WS_CLOSE_TOO_BIG   1009
#define TS_WS_CLOSE_INTERNAL  1011

/*
 * Handshake: validate request header values (NULL = header absent).
 * 0 and accept[29] = base64(SHA1(key + GUID)) NUL-terminated; otherwise
 * the HTTP status to answer (400 bad request, 426 version other than 13:
 * send "Sec-WebSocket-Version: 13") and *why (if why) a static reason.
 * Upgrade and Connection are comma-separated token lists, compared
 * case-insensitively; a missing Sec-WebSocket-Version is a 400.
 */
int ts_ws_handshake(const char *method, const char *http_version,
    const char *upgrade, const char *connection, const char *version,
    const char *key, char accept[29], const char **why);

typedef enum {
    TS_WS_TEXT = 1,
    TS_WS_BINARY = 2,
    TS_WS_CLOSE = 8,
    TS_WS_PING = 9,
    TS_WS_PONG = 10
} ts_ws_opcode_e;

/*
 * What ts_ws_parse delivers.  For TEXT and BINARY: the whole reassembled
 * message (TEXT is valid UTF-8).  For PING and PONG: the frame's payload
 * (<= 125 bytes; answer a PING with a PONG of the same bytes).  For CLOSE:
 * close_code, and data/len is the reason only (valid UTF-8, <= 123 bytes,
 * without the 2 code bytes); close_code is 1005 when the payload was
 * empty.  data is never NULL (it may point at zero bytes).
 */
typedef struct {
    ts_ws_opcode_e        opcode;
    const unsigned char  *data;     /* valid until the next ts_ws_parse */
    size_t                len;
    uint16_t              close_code;
} ts_ws_msg_t;

/* Opaque; one per connection, owned by whoever called ts_ws_parser_new. */
typedef struct ts_ws_parser_s ts_ws_parser_t;

/* A parser for messages of at most max_message bytes; NULL on OOM. */
ts_ws_parser_t *ts_ws_parser_new(size_t max_message);

/* Free the parser and its buffer (NULL is fine). */
void ts_ws_parser_free(ts_ws_parser_t *p);

/*
 * Feed in[0..n) (in may be NULL when n == 0).  *used = input bytes
 * consumed.  Returns:
 *    1  a message or control frame is in *msg; *used may be < n, so call
 *       again with the remaining bytes (or n == 0) to go on;
 *    0  more bytes are needed; all n were consumed;
 *   <0  minus the close code to send: -1002 protocol error, -1007 invalid
 *       UTF-8, -1009 message too big, -1011 out of memory.  The parser
 *       then stays in that error (every later call returns it, *used = 0).
 * After a CLOSE frame has been delivered, later bytes are consumed and
 * ignored (0): nothing may follow a close (RFC 6455 section 5.5.1).
 */
int ts_ws_parse(ts_ws_parser_t *p, const unsigned char *in, size_t n,
    size_t *used, ts_ws_msg_t *msg);

/* Bytes the parser currently holds: its struct plus its buffer. */
size_t ts_ws_parser_memory(const ts_ws_parser_t *p);

/*
 * Encode a server frame (FIN set, unmasked) of payload[0..len) into
 * out[0..cap): the frame length, or 0 when it does not fit (or a control
 * opcode is given more than 125 bytes).
 */
size_t ts_ws_frame(ts_ws_opcode_e opcode, const void *payload, size_t len,
    unsigned char *out, size_t cap);

/*
 * The header alone of that frame, for sending the payload from where it
 * is (writev-style): returns its length, 2, 4 or 10.  The caller keeps
 * control payloads <= 125 bytes.
 */
size_t ts_ws_frame_header(ts_ws_opcode_e opcode, size_t len,
    unsigned char hdr[10]);

/*
 * A close frame payload: the 2-byte code then reason (NULL = none) cut to
 * fit 125 bytes on a character boundary; returns its length.  A code a
 * peer must reject (< 1000, 1004, 1005, 1006, 1015..2999, >= 5000) gives
 * an empty payload (0), so echoing a received close_code -- 1005 for an
 * empty close -- is always safe.
 */
size_t ts_ws_close_payload(uint16_t code, const char *reason,
    unsigned char out[125]);

#endif /* TS_WS_H */

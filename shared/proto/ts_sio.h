/*
 * ts_sio: Engine.IO v4 / Socket.IO v5 packet codec (DESIGN.md section 6).
 *
 * Pure logic: no I/O, no nginx types, no mutable globals, so the nginx
 * module's workers can call it from any thread, and it is unit-tested and
 * fuzzed on its own.
 *
 * Transport.  Only the WebSocket transport is spoken (socket.io-client with
 * transports: ['websocket']): every Engine.IO packet travels alone in one
 * WebSocket text message, so there is no payload batching ("\x1e") and no
 * long-polling.  Binary attachments (BINARY_EVENT / BINARY_ACK and binary
 * WebSocket frames) are not supported: parsing them fails with "binary not
 * supported", and the module should close the connection.
 *
 * Engine.IO packet = one type digit + data:
 *
 *     0 open     server -> client  0{"sid":..,"upgrades":[],"pingInterval":..,
 *                                     "pingTimeout":..,"maxPayload":..}
 *     1 close    either way        "1"
 *     2 ping     server -> client  "2"   (v4: the SERVER pings ...
 *     3 pong     client -> server  "3"    ... and the client answers)
 *     4 message  either way        "4" + Socket.IO packet
 *     5 upgrade, 6 noop            "5", "6"
 *
 * Close, ping, pong and noop carry no data on this transport, so there is
 * no encoder for them: callers send the one-character strings "1", "2",
 * "3" and "6" as they are.  The parser rejects them with trailing data (the
 * "2probe"/"3probe" upgrade dance only follows a polling handshake).
 *
 * Socket.IO packet (after the "4") = type digit, then "/nsp," unless the
 * namespace is "/", then the ack id digits if any, then JSON:
 *
 *     40{"token":"abc"}                 client CONNECT with auth
 *     40{"sid":"<id>"}                  server CONNECT reply
 *     40/admin,{"token":"x"}            CONNECT to namespace /admin
 *     44{"message":"Invalid token"}     CONNECT_ERROR
 *     42["join_ticket","<id>"]          EVENT
 *     421["join_ticket","<id>"]         EVENT expecting ack 1
 *     431[{"ok":true}]                  ACK 1
 *     41  /  41/admin,                  DISCONNECT
 *
 * The server tells a client to leave a namespace by sending "41" (or
 * "41/nsp,") as it is; no encoder needed.
 *
 * Strictness.  The parser accepts what socket.io-parser 4.x accepts, minus
 * what this server never needs, so a hostile peer meets small, fixed limits:
 * text <= max_len bytes, JSON nesting <= TS_SIO_MAX_DEPTH, namespace <= 63
 * printable ASCII bytes without ',' (and the ',' is mandatory), ack id <= 15
 * digits (so it is exact in both int64 and a JavaScript number).  JSON is
 * jansson's: strings must be valid UTF-8, "\u0000" and lone surrogates are
 * rejected, integers must fit in 64 bits.  As in socket.io-parser, an EVENT
 * may not use a reserved name ("connect", "connect_error", "disconnect",
 * "disconnecting", "newListener", "removeListener").
 */

#ifndef TS_SIO_H
#define TS_SIO_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define TS_SIO_MAX_DEPTH   32                  /* JSON nesting levels */
#define TS_SIO_NSP_MAX     63                  /* namespace bytes */
#define TS_SIO_ACK_DIGITS  15
#define TS_SIO_ACK_MAX     INT64_C(999999999999999)
#define TS_SIO_SID_LEN     20

typedef enum {
    TS_EIO_OPEN = 0,
    TS_EIO_CLOSE,
    TS_EIO_PING,
    TS_EIO_PONG,
    TS_EIO_MESSAGE,
    TS_EIO_UPGRADE,
    TS_EIO_NOOP
} ts_eio_type_e;

typedef enum {
    TS_SIO_CONNECT = 0,
    TS_SIO_DISCONNECT,
    TS_SIO_EVENT,
    TS_SIO_ACK,
    TS_SIO_CONNECT_ERROR,
    TS_SIO_BINARY_EVENT,
    TS_SIO_BINARY_ACK
} ts_sio_type_e;

/*
 * One parsed packet.  The packet owns data and args (a reference each);
 * event points into data and lives as long as the packet.
 */
typedef struct {
    ts_eio_type_e  eio;            /* engine.io type */
    int            has_sio;        /* eio == MESSAGE and a socket.io packet
                                      parsed (always so after a successful
                                      parse of a MESSAGE) */
    ts_sio_type_e  sio;
    char           nsp[64];        /* "/" by default */
    int64_t        ack_id;         /* -1 when none; always set for ACK */
    json_t        *data;           /* parsed JSON payload or NULL (owned):
                                      OPEN: object or NULL; CONNECT: object
                                      or NULL; EVENT, ACK: array;
                                      CONNECT_ERROR: object or string;
                                      DISCONNECT: NULL */
    const char    *event;          /* for EVENT: the event name (points into
                                      data), else NULL */
    json_t        *args;           /* for EVENT: array of the arguments after
                                      the name (owned; may be empty); for
                                      ACK: the whole data array (owned
                                      reference); else NULL */
} ts_sio_packet_t;

/*
 * Parse one Engine.IO packet from the len bytes of a WebSocket text message
 * (need not be NUL-terminated); 0 ok, -1 malformed with a short reason in
 * err (err may be NULL).  *out is always initialised: after -1 it owns
 * nothing; after 0 release it with ts_sio_packet_clear().  Rules: limits
 * (whole text <= max_len, JSON depth <= 32, namespace <= 63 chars starting
 * with "/" and ended by ",", ack id <= 15 digits), CONNECT data absent or an
 * object, DISCONNECT no data, EVENT data a non-empty array whose first
 * element is a non-reserved string, ACK an ack id and an array,
 * CONNECT_ERROR an object or a string; ack ids only on EVENT and ACK;
 * binary types -> -1 ("binary not supported"), unknown types -> -1,
 * trailing garbage -> -1.
 */
int ts_sio_parse(const char *text, size_t len, size_t max_len,
    ts_sio_packet_t *out, char *err, size_t errlen);

/* Release what p owns and reset it to an empty packet; idempotent. */
void ts_sio_packet_clear(ts_sio_packet_t *p);

/*
 * Encoders.  Each returns a malloc'ed NUL-terminated string the caller
 * frees (its length in *len unless len is NULL), or NULL when an argument
 * is invalid (NULL string, string not UTF-8, nsp not a valid namespace,
 * args not an array, ack id outside 0..TS_SIO_ACK_MAX, reserved event
 * name) or memory runs out.  nsp NULL or "/" means the default namespace.
 * JSON is compact, keys in insertion order, strings escaped by jansson.
 */

/* 0{"sid":..,"upgrades":[],"pingInterval":..,"pingTimeout":..,
   "maxPayload":..}; negative numbers are invalid. */
char *ts_eio_open(const char *sid, int ping_interval_ms, int ping_timeout_ms,
    int max_payload, size_t *len);

/* 40{"sid":"<sid>"} or 40/nsp,{"sid":"<sid>"}. */
char *ts_sio_connect_ok(const char *nsp, const char *sid, size_t *len);

/* 44{"message":"<message>"} or 44/nsp,{...}. */
char *ts_sio_connect_error(const char *nsp, const char *message,
    size_t *len);

/* 42["<event>",args...]; args is a borrowed array, NULL for none. */
char *ts_sio_event(const char *nsp, const char *event, json_t *args,
    size_t *len);

/* 43<ack_id>[args...]; args is a borrowed array, NULL for []. */
char *ts_sio_ack(const char *nsp, int64_t ack_id, json_t *args, size_t *len);

/*
 * Fill out with a random 20-character session id and a NUL: url-safe
 * base64 (A-Z a-z 0-9 - _) of 15 bytes from getrandom(2), like engine.io's
 * base64id.  Never fails (falls back to /dev/urandom, then to a clock-and-
 * address mix, which only a kernel without getrandom and /dev/urandom
 * would reach; a sid is not a credential on the WebSocket-only transport).
 */
void ts_sio_sid(char out[21]);

#endif /* TS_SIO_H */

/*
 * ts_sio: Engine.IO v4 / Socket.IO v5 packet parser and encoders.  See
 * ts_sio.h for the wire format and the limits.
 *
 * The parser walks the text once, left to right: Engine.IO type digit,
 * Socket.IO type digit, optional "/nsp,", optional ack id digits, then the
 * rest is handed whole to jansson, whose EOF check turns any trailing
 * garbage into an error.  jansson recurses once per nesting level and
 * allows 2048 of them, so the JSON is pre-scanned for depth first; that scan
 * is exact for valid JSON and harmless for invalid JSON (jansson rejects it
 * anyway).
 *
 * Invariant: whenever ts_sio_parse() returns, *out either owns a fully
 * validated packet (0) or owns nothing at all (-1).
 *
 * Encoders build "<head><nsp,><id><json>" in a single allocation: jansson
 * is asked for the JSON size first, then dumps straight into the buffer.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#include "ts_sio.h"

#define TS_SIO_DUMP_FLAGS  (JSON_COMPACT | JSON_PRESERVE_ORDER \
                            | JSON_ENCODE_ANY)

/* Event names socket.io-parser refuses (its RESERVED_EVENTS). */
static const char *const reserved_events[] = {
    "connect", "connect_error", "disconnect", "disconnecting",
    "newListener", "removeListener", NULL
};


static void
set_err(char *err, size_t errlen, const char *msg)
{
    size_t  n;

    if (err == NULL || errlen == 0) {
        return;
    }
    n = strlen(msg);
    if (n >= errlen) {
        n = errlen - 1;
    }
    memcpy(err, msg, n);
    err[n] = '\0';
}

static void
packet_init(ts_sio_packet_t *p)
{
    memset(p, 0, sizeof(*p));
    p->eio = TS_EIO_NOOP;
    p->sio = TS_SIO_CONNECT;
    p->nsp[0] = '/';
    p->ack_id = -1;
}

void
ts_sio_packet_clear(ts_sio_packet_t *p)
{
    json_decref(p->data);
    json_decref(p->args);
    packet_init(p);
}

/* Clear out, report msg, return -1: the single failure exit of the parser. */
static int
fail(ts_sio_packet_t *out, char *err, size_t errlen, const char *msg)
{
    ts_sio_packet_clear(out);
    set_err(err, errlen, msg);
    return -1;
}

/*
 * A namespace as it may appear on the wire or be given to an encoder:
 * "/" then printable ASCII other than ',', at most TS_SIO_NSP_MAX bytes.
 * The charset keeps nsp[] a plain C string that prints safely in logs.
 */
static int
nsp_valid(const char *s, size_t n)
{
    size_t  i;

    if (n == 0 || n > TS_SIO_NSP_MAX || s[0] != '/') {
        return 0;
    }
    for (i = 1; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c <= 0x20 || c >= 0x7f || c == ',') {
            return 0;
        }
    }
    return 1;
}

static int
event_reserved(const char *name)
{
    const char *const  *r;

    for (r = reserved_events; *r; r++) {
        if (strcmp(*r, name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* 1 when no bracket in valid JSON s[0..n) nests deeper than max. */
static int
json_depth_ok(const char *s, size_t n, int max)
{
    size_t  i;
    int     depth = 0, in_str = 0;

    for (i = 0; i < n; i++) {
        char c = s[i];

        if (in_str) {
            if (c == '\\') {
                i++;                    /* skip the escaped character */
            } else if (c == '"') {
                in_str = 0;
            }
            continue;
        }
        switch (c) {
        case '"':
            in_str = 1;
            break;
        case '[':
        case '{':
            if (++depth > max) {
                return 0;
            }
            break;
        case ']':
        case '}':
            depth--;
            break;
        default:
            break;
        }
    }
    return 1;
}

/* Parse s[0..n) as one JSON value with nothing after it; NULL if invalid. */
static json_t *
load_json(const char *s, size_t n, const char **why)
{
    json_error_t  jerr;
    json_t       *j;

    if (!json_depth_ok(s, n, TS_SIO_MAX_DEPTH)) {
        *why = "JSON nested too deeply";
        return NULL;
    }
    j = json_loadb(s, n, JSON_DECODE_ANY, &jerr);
    if (j == NULL) {
        *why = "invalid JSON payload";
    }
    return j;
}

/* Check the payload against the packet type and fill event/args. */
static const char *
check_payload(ts_sio_packet_t *p)
{
    json_t  *d = p->data;
    json_t  *name;
    size_t   i, n;

    switch (p->sio) {
    case TS_SIO_CONNECT:
        if (d != NULL && !json_is_object(d)) {
            return "CONNECT payload must be an object";
        }
        return NULL;

    case TS_SIO_DISCONNECT:
        return d == NULL ? NULL : "DISCONNECT takes no payload";

    case TS_SIO_CONNECT_ERROR:
        if (!json_is_object(d) && !json_is_string(d)) {
            return "CONNECT_ERROR payload must be an object or a string";
        }
        return NULL;

    case TS_SIO_ACK:
        if (p->ack_id < 0) {
            return "ACK without an ack id";
        }
        if (!json_is_array(d)) {
            return "ACK payload must be an array";
        }
        p->args = json_incref(d);
        return NULL;

    case TS_SIO_EVENT:
        break;

    default:
        return "unknown socket.io packet type";
    }

    n = json_array_size(d);             /* 0 for a non-array or NULL */
    if (n == 0) {
        return "EVENT payload must be a non-empty array";
    }
    name = json_array_get(d, 0);
    if (!json_is_string(name)) {
        return "EVENT name must be a string";
    }
    if (event_reserved(json_string_value(name))) {
        return "reserved event name";
    }

    p->args = json_array();
    if (p->args == NULL) {
        return "out of memory";
    }
    for (i = 1; i < n; i++) {
        if (json_array_append(p->args, json_array_get(d, i)) != 0) {
            return "out of memory";
        }
    }
    p->event = json_string_value(name);
    return NULL;
}

/* The Socket.IO packet in s[0..n) (what follows the Engine.IO "4"). */
static int
parse_sio(const char *s, size_t n, ts_sio_packet_t *out, char *err,
    size_t errlen)
{
    const char  *why;
    size_t       i = 0, start;
    int64_t      id;

    if (n == 0) {
        return fail(out, err, errlen, "empty socket.io packet");
    }
    if (s[0] == '5' || s[0] == '6') {
        return fail(out, err, errlen, "binary not supported");
    }
    if (s[0] < '0' || s[0] > '4') {
        return fail(out, err, errlen, "unknown socket.io packet type");
    }
    out->sio = (ts_sio_type_e) (s[0] - '0');
    out->has_sio = 1;
    i = 1;

    /* "/nsp," -- the comma is mandatory, socket.io-client always sends it */
    if (i < n && s[i] == '/') {
        start = i;
        while (i < n && s[i] != ',' && i - start <= TS_SIO_NSP_MAX) {
            i++;
        }
        if (i - start > TS_SIO_NSP_MAX) {
            return fail(out, err, errlen, "namespace too long");
        }
        if (i == n) {
            return fail(out, err, errlen, "namespace without comma");
        }
        if (!nsp_valid(s + start, i - start)) {
            return fail(out, err, errlen, "invalid namespace");
        }
        memcpy(out->nsp, s + start, i - start);
        out->nsp[i - start] = '\0';
        i++;                            /* the comma */
    }

    if (i < n && s[i] >= '0' && s[i] <= '9') {
        if (out->sio != TS_SIO_EVENT && out->sio != TS_SIO_ACK) {
            return fail(out, err, errlen, "ack id on a packet without acks");
        }
        start = i;
        id = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (i - start == TS_SIO_ACK_DIGITS) {
                return fail(out, err, errlen, "ack id too long");
            }
            id = id * 10 + (s[i] - '0');
            i++;
        }
        out->ack_id = id;
    }

    if (i < n) {
        out->data = load_json(s + i, n - i, &why);
        if (out->data == NULL) {
            return fail(out, err, errlen, why);
        }
    }

    why = check_payload(out);
    if (why != NULL) {
        return fail(out, err, errlen, why);
    }
    return 0;
}

int
ts_sio_parse(const char *text, size_t len, size_t max_len,
    ts_sio_packet_t *out, char *err, size_t errlen)
{
    const char  *why;

    packet_init(out);
    set_err(err, errlen, "");

    if (text == NULL || len == 0) {
        return fail(out, err, errlen, "empty packet");
    }
    if (len > max_len) {
        return fail(out, err, errlen, "packet too long");
    }
    if (text[0] < '0' || text[0] > '6') {
        return fail(out, err, errlen, "unknown engine.io packet type");
    }
    out->eio = (ts_eio_type_e) (text[0] - '0');

    switch (out->eio) {
    case TS_EIO_MESSAGE:
        return parse_sio(text + 1, len - 1, out, err, errlen);

    case TS_EIO_OPEN:
        if (len == 1) {
            return 0;
        }
        out->data = load_json(text + 1, len - 1, &why);
        if (out->data == NULL) {
            return fail(out, err, errlen, why);
        }
        if (!json_is_object(out->data)) {
            return fail(out, err, errlen, "open payload must be an object");
        }
        return 0;

    default:
        if (len != 1) {
            return fail(out, err, errlen, "unexpected engine.io packet data");
        }
        return 0;
    }
}


/*
 * "<head>[<nsp>,][<id>]<json>" in one malloc'ed string.  nsp NULL or "/"
 * is omitted; id < 0 is omitted; json NULL is omitted.
 */
static char *
encode(const char *head, const char *nsp, int64_t id, const json_t *json,
    size_t *len)
{
    char    idbuf[24];
    char   *buf;
    size_t  hlen, nlen = 0, ilen = 0, jlen = 0, total;

    if (nsp != NULL && strcmp(nsp, "/") != 0) {
        nlen = strlen(nsp);
        if (!nsp_valid(nsp, nlen)) {
            return NULL;
        }
    }
    if (id >= 0) {
        ilen = (size_t) snprintf(idbuf, sizeof(idbuf), "%lld",
                                 (long long) id);
    }
    if (json != NULL) {
        jlen = json_dumpb(json, NULL, 0, TS_SIO_DUMP_FLAGS);
        if (jlen == 0) {
            return NULL;
        }
    }

    hlen = strlen(head);
    total = hlen + (nlen ? nlen + 1 : 0) + ilen + jlen;
    buf = malloc(total + 1);
    if (buf == NULL) {
        return NULL;
    }

    memcpy(buf, head, hlen);
    if (nlen) {
        memcpy(buf + hlen, nsp, nlen);
        buf[hlen + nlen] = ',';
        nlen++;
    }
    memcpy(buf + hlen + nlen, idbuf, ilen);
    if (jlen && json_dumpb(json, buf + hlen + nlen + ilen, jlen,
                           TS_SIO_DUMP_FLAGS) != jlen)
    {
        free(buf);
        return NULL;
    }
    buf[total] = '\0';

    if (len) {
        *len = total;
    }
    return buf;
}

char *
ts_eio_open(const char *sid, int ping_interval_ms, int ping_timeout_ms,
    int max_payload, size_t *len)
{
    json_t  *o;
    char    *s;

    if (sid == NULL || ping_interval_ms < 0 || ping_timeout_ms < 0
        || max_payload < 0)
    {
        return NULL;
    }
    o = json_pack("{s:s, s:[], s:i, s:i, s:i}", "sid", sid, "upgrades",
                  "pingInterval", ping_interval_ms,
                  "pingTimeout", ping_timeout_ms,
                  "maxPayload", max_payload);
    if (o == NULL) {
        return NULL;
    }
    s = encode("0", NULL, -1, o, len);
    json_decref(o);
    return s;
}

/* 4<type>[nsp,]{"<key>":"<value>"}: CONNECT and CONNECT_ERROR replies. */
static char *
encode_one_field(const char *head, const char *nsp, const char *key,
    const char *value, size_t *len)
{
    json_t  *o;
    char    *s;

    if (value == NULL) {
        return NULL;
    }
    o = json_pack("{s:s}", key, value);
    if (o == NULL) {
        return NULL;
    }
    s = encode(head, nsp, -1, o, len);
    json_decref(o);
    return s;
}

char *
ts_sio_connect_ok(const char *nsp, const char *sid, size_t *len)
{
    return encode_one_field("40", nsp, "sid", sid, len);
}

char *
ts_sio_connect_error(const char *nsp, const char *message, size_t *len)
{
    return encode_one_field("44", nsp, "message", message, len);
}

char *
ts_sio_event(const char *nsp, const char *event, json_t *args, size_t *len)
{
    json_t  *a;
    char    *s = NULL;

    if (event == NULL || event_reserved(event)
        || (args != NULL && !json_is_array(args)))
    {
        return NULL;
    }
    a = json_array();
    if (a == NULL) {
        return NULL;
    }
    /* json_string() refuses invalid UTF-8; append_new then fails */
    if (json_array_append_new(a, json_string(event)) == 0
        && (args == NULL || json_array_extend(a, args) == 0))
    {
        s = encode("42", nsp, -1, a, len);
    }
    json_decref(a);
    return s;
}

char *
ts_sio_ack(const char *nsp, int64_t ack_id, json_t *args, size_t *len)
{
    json_t  *empty;
    char    *s;

    if (ack_id < 0 || ack_id > TS_SIO_ACK_MAX) {
        return NULL;
    }
    if (args != NULL) {
        return json_is_array(args) ? encode("43", nsp, ack_id, args, len)
                                   : NULL;
    }
    empty = json_array();
    if (empty == NULL) {
        return NULL;
    }
    s = encode("43", nsp, ack_id, empty, len);
    json_decref(empty);
    return s;
}


/* Fill buf[0..n) with random bytes; 0 ok, -1 when no source worked. */
static int
random_bytes(unsigned char *buf, size_t n)
{
    size_t   got = 0;
    ssize_t  r;
    int      fd;

    while (got < n) {
        r = getrandom(buf + got, n - got, 0);
        if (r > 0) {
            got += (size_t) r;
        } else if (r == 0 || errno != EINTR) {
            break;
        }
    }
    if (got == n) {
        return 0;
    }

    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    got = 0;
    while (got < n) {
        r = read(fd, buf + got, n - got);
        if (r > 0) {
            got += (size_t) r;
        } else if (r == 0 || errno != EINTR) {
            break;
        }
    }
    close(fd);
    return got == n ? 0 : -1;
}

/* Last resort: unpredictable enough to keep ids distinct, not secret. */
static void
weak_bytes(unsigned char *buf, size_t n)
{
    struct timespec  ts;
    uint64_t         x;
    size_t           i;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    x = (uint64_t) ts.tv_sec * 1000000007u + (uint64_t) ts.tv_nsec;
    x ^= (uint64_t) (uintptr_t) buf ^ ((uint64_t) getpid() << 32);
    for (i = 0; i < n; i++) {
        x ^= x << 13;                   /* xorshift64 */
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (unsigned char) (x >> 24);
    }
}

void
ts_sio_sid(char out[21])
{
    static const char  b64url[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char      raw[15];
    size_t             i, o = 0;

    if (random_bytes(raw, sizeof(raw)) != 0) {
        weak_bytes(raw, sizeof(raw));
    }

    /* 15 bytes = 5 groups of 3 = 20 characters, no padding */
    for (i = 0; i < sizeof(raw); i += 3) {
        uint32_t v = ((uint32_t) raw[i] << 16) | ((uint32_t) raw[i + 1] << 8)
                     | raw[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
        out[o++] = b64url[v & 63];
    }
    out[o] = '\0';
}

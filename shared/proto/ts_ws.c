/*
 * ts_ws: RFC 6455 handshake check, incremental frame parser and frame
 * encoders (see ts_ws.h for the contracts).
 *
 * The parser is a two-state machine per frame -- HEADER (2..14 bytes
 * collected in hdr[]) then PAYLOAD (frame_len bytes unmasked straight into
 * their final place) -- plus what outlives a frame: the open fragmented
 * message (msg_op, buf[0..len)) and its UTF-8 decoder state.  Every check
 * is made as early as the bytes allow (reserved bits and opcodes on the
 * first byte, masking and control sizes on the second, message size once
 * the length is known, UTF-8 on each payload byte), so a hostile peer is
 * cut off before it can make us buffer anything it is not entitled to.
 *
 * Invariants kept here:
 *   - len <= cap <= max_message: a data frame is refused (1009) as soon
 *     as len + frame_len would pass max_message, before any byte of it
 *     is stored, and the buffer never grows past max_message;
 *   - a delivered message stays in buf untouched until the next
 *     ts_ws_parse call, which first forgets it (len = 0, buffer released
 *     if it grew past TS_WS_KEEP_BUFFER, kept for reuse otherwise);
 *   - control frames never touch buf, so one may arrive between the
 *     fragments of a message without disturbing it;
 *   - once state is WS_ERROR or WS_CLOSED it never changes again, and
 *     the buffer is already freed.
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "ts_ws.h"

#define WS_GUID      "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_LEN   24          /* base64 of 16 bytes: 22 chars + "==" */
#define WS_MIN_BUF   256         /* first allocation of the message buffer */

#define WS_FIN       0x80
#define WS_RSV       0x70
#define WS_MASKED    0x80

enum {
    WS_HEADER = 0,
    WS_PAYLOAD,
    WS_CLOSED,                   /* a close frame was delivered */
    WS_ERROR
};

/*
 * Incremental UTF-8 check (RFC 3629, as RFC 6455 requires): need is the
 * number of continuation bytes still expected, [lo, hi] the range the
 * next one must fall in.  The narrowed ranges after E0, ED, F0 and F4 are
 * what rule out overlong forms, surrogates and code points past U+10FFFF
 * without decoding the value.
 */
typedef struct {
    unsigned char  need;
    unsigned char  lo;
    unsigned char  hi;
} ws_utf8_t;

struct ts_ws_parser_s {
    size_t          max;              /* max_message */
    int             state;
    int             err;              /* negative close code in WS_ERROR */

    /* the frame being read */
    unsigned char   hdr[14];
    size_t          hdr_len;
    size_t          hdr_need;         /* 2 until the second byte is seen */
    unsigned        fin;
    unsigned        op;
    unsigned char   mask[4];
    uint64_t        frame_len;
    uint64_t        frame_got;

    /* the data message being assembled (msg_op 0: none open) */
    unsigned        msg_op;
    unsigned char  *buf;              /* owned; NULL or cap bytes */
    size_t          len;
    size_t          cap;
    ws_utf8_t       utf8;
    int             delivered;        /* buf holds a message handed out */

    /* the control frame being read: never fragmented, <= 125 bytes */
    unsigned char   ctl[TS_WS_MAX_CONTROL];
};


/* ---- UTF-8 ------------------------------------------------------------ */

static void
ws_utf8_reset(ws_utf8_t *u)
{
    u->need = 0;
    u->lo = 0x80;
    u->hi = 0xbf;
}


/* 0 while s[0..n) continues valid UTF-8, -1 at the first invalid byte. */
static int
ws_utf8_feed(ws_utf8_t *u, const unsigned char *s, size_t n)
{
    size_t         i;
    unsigned char  c, need = u->need, lo = u->lo, hi = u->hi;

    for (i = 0; i < n; i++) {
        c = s[i];

        if (need) {
            if (c < lo || c > hi) {
                return -1;
            }
            need--;
            lo = 0x80;
            hi = 0xbf;
            continue;
        }

        if (c < 0x80) {
            continue;
        }
        if (c < 0xc2) {                 /* stray continuation, C0/C1 */
            return -1;
        }
        if (c < 0xe0) {
            need = 1;
        } else if (c < 0xf0) {
            need = 2;
            lo = (c == 0xe0) ? 0xa0 : 0x80;     /* overlong */
            hi = (c == 0xed) ? 0x9f : 0xbf;     /* surrogates */
        } else if (c < 0xf5) {
            need = 3;
            lo = (c == 0xf0) ? 0x90 : 0x80;     /* overlong */
            hi = (c == 0xf4) ? 0x8f : 0xbf;     /* > U+10FFFF */
        } else {
            return -1;
        }
    }

    u->need = need;
    u->lo = lo;
    u->hi = hi;
    return 0;
}


/* 1 when code may appear in a close frame (RFC 6455 7.4, IANA registry). */
static int
ws_close_code_valid(unsigned code)
{
    if (code >= 3000 && code <= 4999) {
        return 1;               /* libraries and applications */
    }
    if (code >= 1000 && code <= 1014) {
        /* 1004 reserved; 1005 and 1006 are never sent */
        return code != 1004 && code != 1005 && code != 1006;
    }
    return 0;                   /* < 1000, 1015, 1016..2999, >= 5000 */
}


/* ---- handshake -------------------------------------------------------- */

static int
ws_is_ows(char c)
{
    return c == ' ' || c == '\t';
}


static char
ws_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char) (c - 'A' + 'a') : c;
}


/* s[0..len) with optional whitespace around it dropped. */
static const char *
ws_trim(const char *s, size_t *len)
{
    size_t  n = strlen(s);

    while (n && ws_is_ows(*s)) {
        s++;
        n--;
    }
    while (n && ws_is_ows(s[n - 1])) {
        n--;
    }
    *len = n;
    return s;
}


/* 1 when the comma-separated list holds token (ASCII case-insensitive). */
static int
ws_has_token(const char *list, const char *token)
{
    size_t       tlen = strlen(token), i, n;
    const char  *s = list, *e;

    while (*s) {
        while (*s == ',' || ws_is_ows(*s)) {
            s++;
        }
        for (e = s; *e && *e != ','; e++) {
            /* find the end of this element */
        }
        for (n = (size_t) (e - s); n && ws_is_ows(s[n - 1]); n--) {
            /* drop trailing whitespace */
        }
        if (n == tlen) {
            for (i = 0; i < n && ws_lower(s[i]) == ws_lower(token[i]); i++) {
                /* compare */
            }
            if (i == n) {
                return 1;
            }
        }
        s = e;
    }
    return 0;
}


static int
ws_is_base64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '+' || c == '/';
}


/*
 * 1 when key[0..len) is base64 of exactly 16 bytes: 22 alphabet characters
 * then "==".  Like common decoders, the 4 unused low bits of the 22nd
 * character are not required to be zero.
 */
static int
ws_key_valid(const char *key, size_t len)
{
    size_t  i;

    if (len != WS_KEY_LEN || key[22] != '=' || key[23] != '=') {
        return 0;
    }
    for (i = 0; i < 22; i++) {
        if (!ws_is_base64(key[i])) {
            return 0;
        }
    }
    return 1;
}


int
ts_ws_handshake(const char *method, const char *http_version,
    const char *upgrade, const char *connection, const char *version,
    const char *key, char accept[29], const char **why)
{
    const char     *reason, *k, *v;
    size_t          klen, vlen;
    int             status;
    unsigned char   in[WS_KEY_LEN + sizeof(WS_GUID) - 1];
    unsigned char   md[SHA_DIGEST_LENGTH];

    accept[0] = '\0';
    status = 400;

    if (method == NULL || strcmp(method, "GET") != 0) {
        reason = "method must be GET";
        goto fail;
    }
    if (http_version == NULL || strcmp(http_version, "HTTP/1.1") != 0) {
        reason = "HTTP/1.1 required";
        goto fail;
    }
    if (upgrade == NULL || !ws_has_token(upgrade, "websocket")) {
        reason = "Upgrade: websocket required";
        goto fail;
    }
    if (connection == NULL || !ws_has_token(connection, "upgrade")) {
        reason = "Connection: Upgrade required";
        goto fail;
    }
    if (version == NULL) {
        reason = "Sec-WebSocket-Version required";
        goto fail;
    }
    v = ws_trim(version, &vlen);
    if (vlen != 2 || v[0] != '1' || v[1] != '3') {
        /* RFC 6455 4.4: 426 and the versions we speak */
        status = 426;
        reason = "Sec-WebSocket-Version must be 13";
        goto fail;
    }
    if (key == NULL) {
        reason = "Sec-WebSocket-Key required";
        goto fail;
    }
    k = ws_trim(key, &klen);
    if (!ws_key_valid(k, klen)) {
        reason = "Sec-WebSocket-Key must be base64 of 16 bytes";
        goto fail;
    }

    memcpy(in, k, WS_KEY_LEN);
    memcpy(in + WS_KEY_LEN, WS_GUID, sizeof(WS_GUID) - 1);
    if (SHA1(in, sizeof(in), md) == NULL) {
        status = 500;
        reason = "SHA-1 failed";
        goto fail;
    }
    /* 20 bytes -> 28 characters and a NUL: exactly accept[29] */
    if (EVP_EncodeBlock((unsigned char *) accept, md, SHA_DIGEST_LENGTH)
        != TS_WS_ACCEPT_LEN)
    {
        accept[0] = '\0';
        status = 500;
        reason = "base64 failed";
        goto fail;
    }
    if (why) {
        *why = NULL;
    }
    return 0;

fail:
    if (why) {
        *why = reason;
    }
    return status;
}


/* ---- parser ----------------------------------------------------------- */

ts_ws_parser_t *
ts_ws_parser_new(size_t max_message)
{
    ts_ws_parser_t  *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        return NULL;
    }
    p->max = max_message;
    p->state = WS_HEADER;
    p->hdr_need = 2;
    ws_utf8_reset(&p->utf8);
    return p;
}


void
ts_ws_parser_free(ts_ws_parser_t *p)
{
    if (p == NULL) {
        return;
    }
    free(p->buf);
    free(p);
}


size_t
ts_ws_parser_memory(const ts_ws_parser_t *p)
{
    return sizeof(*p) + p->cap;
}


static void
ws_drop_buffer(ts_ws_parser_t *p)
{
    free(p->buf);
    p->buf = NULL;
    p->cap = 0;
    p->len = 0;
}


/* Enter a final state (WS_ERROR or WS_CLOSED); returns rc for chaining. */
static int
ws_stop(ts_ws_parser_t *p, int state, int rc)
{
    p->state = state;
    p->err = rc;
    p->msg_op = 0;
    ws_drop_buffer(p);
    return rc;
}


/* Checks on the first header byte: FIN, RSV, opcode vs the open message. */
static int
ws_check_byte0(ts_ws_parser_t *p, unsigned char c)
{
    unsigned  op = c & 0x0f;

    if (c & WS_RSV) {
        return -TS_WS_CLOSE_PROTOCOL;   /* no extension was negotiated */
    }
    p->fin = (c & WS_FIN) != 0;
    p->op = op;

    switch (op) {
    case 0:                             /* continuation */
        return p->msg_op ? 0 : -TS_WS_CLOSE_PROTOCOL;
    case TS_WS_TEXT:
    case TS_WS_BINARY:
        return p->msg_op ? -TS_WS_CLOSE_PROTOCOL : 0;
    case TS_WS_CLOSE:
    case TS_WS_PING:
    case TS_WS_PONG:
        return p->fin ? 0 : -TS_WS_CLOSE_PROTOCOL;
    default:                            /* 3-7, 0xB-0xF reserved */
        return -TS_WS_CLOSE_PROTOCOL;
    }
}


/* Checks on the second byte: masking, control size; sets hdr_need. */
static int
ws_check_byte1(ts_ws_parser_t *p, unsigned char c)
{
    unsigned  len7 = c & 0x7f;

    if (!(c & WS_MASKED)) {
        return -TS_WS_CLOSE_PROTOCOL;   /* clients must mask (5.1) */
    }
    if ((p->op & 0x08) && len7 > TS_WS_MAX_CONTROL) {
        return -TS_WS_CLOSE_PROTOCOL;
    }
    p->hdr_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
    return 0;
}


/* The header is complete: decode length and mask, check the size. */
static int
ws_begin_frame(ts_ws_parser_t *p)
{
    const unsigned char  *h = p->hdr;
    unsigned              len7 = h[1] & 0x7f, i;
    uint64_t              len;

    if (len7 == 126) {
        len = ((uint64_t) h[2] << 8) | h[3];
    } else if (len7 == 127) {
        if (h[2] & 0x80) {
            return -TS_WS_CLOSE_PROTOCOL;   /* MSB must be 0 (5.2) */
        }
        for (len = 0, i = 2; i < 10; i++) {
            len = (len << 8) | h[i];
        }
    } else {
        len = len7;
    }
    memcpy(p->mask, h + p->hdr_need - 4, 4);

    p->frame_len = len;
    p->frame_got = 0;

    if (p->op & 0x08) {
        return 0;                       /* <= 125, checked on byte 1 */
    }
    /* len <= max holds, so max - len cannot wrap */
    if (len > (uint64_t) (p->max - p->len)) {
        return -TS_WS_CLOSE_TOO_BIG;
    }
    if (p->op != 0) {
        p->msg_op = p->op;              /* a new message starts */
        ws_utf8_reset(&p->utf8);
    }
    return 0;
}


/* Make room for need bytes (need <= max): doubling, capped at max. */
static int
ws_reserve(ts_ws_parser_t *p, size_t need)
{
    size_t          cap;
    unsigned char  *nb;

    if (need <= p->cap) {
        return 0;
    }
    cap = p->cap ? p->cap : WS_MIN_BUF;
    while (cap < need) {
        cap = (cap > p->max / 2) ? p->max : cap * 2;
    }
    if (cap > p->max) {
        cap = p->max;
    }
    nb = realloc(p->buf, cap);
    if (nb == NULL) {
        return -TS_WS_CLOSE_INTERNAL;
    }
    p->buf = nb;
    p->cap = cap;
    return 0;
}


static void
ws_unmask(unsigned char *dst, const unsigned char *src, size_t n,
    const unsigned char mask[4], uint64_t offset)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        dst[i] = src[i] ^ mask[(offset + i) & 3];
    }
}


/* Take in[0..n) of the current frame's payload (n <= bytes left). */
static int
ws_take_payload(ts_ws_parser_t *p, const unsigned char *in, size_t n)
{
    int             rc;
    unsigned char  *dst;

    if (p->op & 0x08) {
        ws_unmask(p->ctl + p->frame_got, in, n, p->mask, p->frame_got);
        p->frame_got += n;
        return 0;
    }

    rc = ws_reserve(p, p->len + n);
    if (rc != 0) {
        return rc;
    }
    dst = p->buf + p->len;
    ws_unmask(dst, in, n, p->mask, p->frame_got);
    p->frame_got += n;
    p->len += n;

    /* checked as it arrives: a bad byte fails at once (fail fast) */
    if (p->msg_op == TS_WS_TEXT && ws_utf8_feed(&p->utf8, dst, n) != 0) {
        return -TS_WS_CLOSE_BAD_DATA;
    }
    return 0;
}


/* A close frame's payload: code (1005 if none) and a UTF-8 reason. */
static int
ws_end_close(ts_ws_parser_t *p, ts_ws_msg_t *msg)
{
    size_t     n = (size_t) p->frame_len;
    unsigned   code;
    ws_utf8_t  u;

    msg->opcode = TS_WS_CLOSE;
    msg->data = p->ctl;
    msg->len = 0;
    msg->close_code = TS_WS_CLOSE_NO_STATUS;

    if (n == 0) {
        return 1;
    }
    if (n == 1) {
        return -TS_WS_CLOSE_PROTOCOL;   /* half a status code */
    }
    code = ((unsigned) p->ctl[0] << 8) | p->ctl[1];
    if (!ws_close_code_valid(code)) {
        return -TS_WS_CLOSE_PROTOCOL;
    }
    ws_utf8_reset(&u);
    if (ws_utf8_feed(&u, p->ctl + 2, n - 2) != 0 || u.need) {
        return -TS_WS_CLOSE_BAD_DATA;
    }
    msg->data = p->ctl + 2;
    msg->len = n - 2;
    msg->close_code = (uint16_t) code;
    return 1;
}


/* The current frame is complete: 1 with *msg, 0 to go on, or an error. */
static int
ws_end_frame(ts_ws_parser_t *p, ts_ws_msg_t *msg)
{
    p->state = WS_HEADER;
    p->hdr_len = 0;
    p->hdr_need = 2;

    if (p->op == TS_WS_CLOSE) {
        return ws_end_close(p, msg);
    }
    if (p->op & 0x08) {
        msg->opcode = (ts_ws_opcode_e) p->op;
        msg->data = p->ctl;
        msg->len = (size_t) p->frame_len;
        msg->close_code = 0;
        return 1;
    }
    if (!p->fin) {
        return 0;
    }
    if (p->msg_op == TS_WS_TEXT && p->utf8.need) {
        return -TS_WS_CLOSE_BAD_DATA;   /* message ends mid-character */
    }

    msg->opcode = (ts_ws_opcode_e) p->msg_op;
    msg->data = p->buf ? p->buf : p->ctl;
    msg->len = p->len;
    msg->close_code = 0;
    p->msg_op = 0;
    p->delivered = 1;
    return 1;
}


int
ts_ws_parse(ts_ws_parser_t *p, const unsigned char *in, size_t n,
    size_t *used, ts_ws_msg_t *msg)
{
    size_t  i = 0, k;
    int     rc;

    if (p->state == WS_ERROR) {
        *used = 0;
        return p->err;
    }
    if (p->state == WS_CLOSED) {
        *used = n;
        return 0;
    }

    if (p->delivered) {
        /* the caller is done with the last message: reuse or release */
        p->delivered = 0;
        p->len = 0;
        if (p->cap > TS_WS_KEEP_BUFFER) {
            ws_drop_buffer(p);
        }
    }

    while (i < n) {
        if (p->state == WS_HEADER) {
            p->hdr[p->hdr_len++] = in[i++];
            if (p->hdr_len == 1) {
                rc = ws_check_byte0(p, p->hdr[0]);
            } else if (p->hdr_len == 2) {
                rc = ws_check_byte1(p, p->hdr[1]);
            } else {
                rc = 0;
            }
            if (rc == 0 && p->hdr_len == p->hdr_need) {
                rc = ws_begin_frame(p);
                p->state = WS_PAYLOAD;
            }
            if (rc != 0) {
                *used = i;
                return ws_stop(p, WS_ERROR, rc);
            }
            if (p->state == WS_HEADER || p->frame_len > 0) {
                continue;
            }
            /* an empty payload: the frame ends with its header */

        } else {
            k = n - i;
            if ((uint64_t) k > p->frame_len - p->frame_got) {
                k = (size_t) (p->frame_len - p->frame_got);
            }
            rc = ws_take_payload(p, in + i, k);
            i += k;
            if (rc != 0) {
                *used = i;
                return ws_stop(p, WS_ERROR, rc);
            }
            if (p->frame_got < p->frame_len) {
                continue;
            }
        }

        rc = ws_end_frame(p, msg);
        if (rc == 0) {
            continue;
        }
        *used = i;
        if (rc < 0) {
            return ws_stop(p, WS_ERROR, rc);
        }
        if (msg->opcode == TS_WS_CLOSE) {
            /* the reason lives in ctl, so the buffer can go now */
            ws_stop(p, WS_CLOSED, 0);
        }
        return 1;
    }

    *used = n;
    return 0;
}


/* ---- encoders --------------------------------------------------------- */

size_t
ts_ws_frame_header(ts_ws_opcode_e opcode, size_t len, unsigned char hdr[10])
{
    uint64_t  l = len;
    int       i;

    hdr[0] = (unsigned char) (WS_FIN | ((unsigned) opcode & 0x0f));
    if (len <= 125) {
        hdr[1] = (unsigned char) len;
        return 2;
    }
    if (len <= 0xffff) {
        hdr[1] = 126;
        hdr[2] = (unsigned char) (len >> 8);
        hdr[3] = (unsigned char) len;
        return 4;
    }
    hdr[1] = 127;
    for (i = 0; i < 8; i++) {
        hdr[2 + i] = (unsigned char) (l >> (56 - 8 * i));
    }
    return 10;
}


size_t
ts_ws_frame(ts_ws_opcode_e opcode, const void *payload, size_t len,
    unsigned char *out, size_t cap)
{
    unsigned char  hdr[TS_WS_MAX_HEADER];
    size_t         h;

    if (((unsigned) opcode & 0x08) && len > TS_WS_MAX_CONTROL) {
        return 0;
    }
    h = ts_ws_frame_header(opcode, len, hdr);
    if (cap < h || cap - h < len) {
        return 0;
    }
    memcpy(out, hdr, h);
    if (len) {
        memcpy(out + h, payload, len);
    }
    return h + len;
}


size_t
ts_ws_close_payload(uint16_t code, const char *reason, unsigned char out[125])
{
    size_t  n = 0;

    if (!ws_close_code_valid(code)) {
        return 0;
    }
    out[0] = (unsigned char) (code >> 8);
    out[1] = (unsigned char) code;

    if (reason) {
        while (n < TS_WS_MAX_CONTROL - 2 && reason[n]) {
            n++;
        }
        if (reason[n]) {
            /* cut: do not split a character (its tail starts 10xxxxxx) */
            while (n && ((unsigned char) reason[n] & 0xc0) == 0x80) {
                n--;
            }
        }
        memcpy(out + 2, reason, n);
    }
    return 2 + n;
}

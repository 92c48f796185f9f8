/*
 * ts_link: incremental frame decoder and encoder for the worker <-> ticketd
 * link.  See ts_link.h for the wire format.
 *
 * Invariant: buf[pos .. len) holds the bytes not yet returned as frames.
 * Consumed bytes are compacted away on the next feed, so the buffer never
 * grows beyond one partial frame plus what a single read delivered.
 */

#include <stdlib.h>
#include <string.h>

#include "ts_link.h"

void
ts_link_decoder_init(ts_link_decoder_t *d)
{
    memset(d, 0, sizeof(*d));
}

void
ts_link_decoder_free(ts_link_decoder_t *d)
{
    free(d->buf);
    memset(d, 0, sizeof(*d));
}

int
ts_link_decoder_feed(ts_link_decoder_t *d, const void *data, size_t n)
{
    size_t          need;
    unsigned char  *nb;

    if (d->pos > 0) {
        memmove(d->buf, d->buf + d->pos, d->len - d->pos);
        d->len -= d->pos;
        d->pos = 0;
    }

    need = d->len + n;
    if (need > d->cap) {
        size_t cap = d->cap ? d->cap : 4096;
        while (cap < need) {
            cap *= 2;
        }
        nb = realloc(d->buf, cap);
        if (nb == NULL) {
            return -1;
        }
        d->buf = nb;
        d->cap = cap;
    }

    if (n) {
        memcpy(d->buf + d->len, data, n);
        d->len += n;
    }
    return 0;
}

int
ts_link_decoder_next(ts_link_decoder_t *d, const char **payload, size_t *len)
{
    const unsigned char  *p;
    uint32_t              flen;

    if (d->broken) {
        return -1;
    }
    if (d->len - d->pos < TS_LINK_HDR) {
        return 0;
    }

    p = d->buf + d->pos;
    flen = ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
           | ((uint32_t) p[2] << 8) | (uint32_t) p[3];

    if (flen == 0 || flen > TS_LINK_MAX_FRAME) {
        d->broken = 1;
        return -1;
    }
    if (d->len - d->pos - TS_LINK_HDR < flen) {
        return 0;
    }

    *payload = (const char *) p + TS_LINK_HDR;
    *len = flen;
    d->pos += TS_LINK_HDR + flen;
    return 1;
}

unsigned char *
ts_link_frame(const char *payload, size_t len, size_t *frame_len)
{
    unsigned char  *f;

    if (len == 0 || len > TS_LINK_MAX_FRAME) {
        return NULL;
    }
    f = malloc(TS_LINK_HDR + len);
    if (f == NULL) {
        return NULL;
    }
    f[0] = (unsigned char) (len >> 24);
    f[1] = (unsigned char) (len >> 16);
    f[2] = (unsigned char) (len >> 8);
    f[3] = (unsigned char) len;
    memcpy(f + TS_LINK_HDR, payload, len);
    *frame_len = TS_LINK_HDR + len;
    return f;
}

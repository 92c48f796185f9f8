/*
 * redis_bridge: carries events between ticketd instances on different
 * hosts through Redis pub/sub (optional: --redis redis://host:port/db).
 *
 * Every event a worker hands to this daemon is published on one channel
 * with this daemon's random origin id, sealed with a MAC and a send time
 * (ts_wire.h); messages from other origins that pass the MAC, the replay
 * window and the event schema are fanned out to this daemon's worker
 * links, every other message is dropped.  Two connections (Redis wants
 * a subscriber connection to do nothing else); both reconnect with backoff
 * when Redis goes away, and events meanwhile stay local (they are
 * ephemeral: the store holds the truth).
 */

#ifndef TICKETD_REDIS_BRIDGE_H
#define TICKETD_REDIS_BRIDGE_H

#include <stddef.h>
#include <uv.h>

#include "ts_wire.h"

/* Start bridging through the Redis at url, messages sealed and checked
 * with key (ts_wire_derive(secret, TS_WIRE_LABEL_BRIDGE)); 0, or -1 on a
 * bad URL. */
int redis_bridge_start(uv_loop_t *loop, const char *url,
    const unsigned char key[TS_WIRE_KEY_LEN]);

/* Publish an event frame (JSON text, already schema-checked) from a local
 * worker or this daemon, sealed for the other hosts. */
void redis_bridge_publish(const char *json, size_t len);

void redis_bridge_stop(void);

#endif /* TICKETD_REDIS_BRIDGE_H */

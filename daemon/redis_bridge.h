/*
 * redis_bridge: carries events between ticketd instances on different
 * hosts through Redis pub/sub (optional: --redis redis://host:port/db).
 *
 * Every event a worker hands to this daemon is published on one channel
 * with this daemon's random origin id; messages from other origins are
 * fanned out to this daemon's worker links.  Two connections (Redis wants
 * a subscriber connection to do nothing else); both reconnect with backoff
 * when Redis goes away, and events meanwhile stay local (they are
 * ephemeral: the store holds the truth).
 */

#ifndef TICKETD_REDIS_BRIDGE_H
#define TICKETD_REDIS_BRIDGE_H

#include <stddef.h>
#include <uv.h>

/* Start bridging through the Redis at url; 0, or -1 on a bad URL. */
int redis_bridge_start(uv_loop_t *loop, const char *url);

/* Publish an event frame (JSON text) from a local worker. */
void redis_bridge_publish(const char *json, size_t len);

void redis_bridge_stop(void);

#endif /* TICKETD_REDIS_BRIDGE_H */

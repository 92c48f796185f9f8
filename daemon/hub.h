/*
 * hub: where an event goes out of ticketd.  Every event -- from a worker
 * over the link, or made by ticketd itself (jobs, presence) -- reaches
 * every local worker (which delivers it to its sockets in the room) and,
 * through the Redis bridge, every other host.  Frames arriving from
 * another host go to the local workers only (redis_bridge.c), never back
 * out, so an event crosses the bridge once.
 */

#ifndef TICKETD_HUB_H
#define TICKETD_HUB_H

#include <stddef.h>

/* Send an event frame (JSON text, already schema-checked) to every worker
 * link and every other host. */
void hub_publish(const char *json, size_t len);

#endif /* TICKETD_HUB_H */

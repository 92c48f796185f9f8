/*
 * hub: one publish for every event ticketd sends out (see hub.h).
 */

#include "hub.h"
#include "link_server.h"
#include "redis_bridge.h"

void
hub_publish(const char *json, size_t len)
{
    link_server_broadcast(json, len);      /* this host's workers */
    redis_bridge_publish(json, len);       /* other hosts */
}

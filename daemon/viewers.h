/*
 * viewers: who of the staff has a ticket open, across every nginx worker
 * and every host -- the collision awareness of the ticket page.
 *
 * Workers report each socket of a staff member in a ticket's room
 * ({"type":"view","ticketId","userId","username","delta":+1|-1}); a link
 * that closes takes its reports with it.  When the set of users viewing a
 * ticket changes, the room's staff get ticket_viewers {ticketId, viewers:
 * [{_id, username}]} ("audience":"staff": a requester never sees it).
 *
 * Across hosts: each ticketd publishes its own viewers through the Redis
 * bridge and keeps the other hosts' last lists (by the bridge's origin);
 * what its workers get is the union.  A host that dies without a last
 * word keeps its viewers listed until the ticket's next change there.
 */

#ifndef TICKETD_VIEWERS_H
#define TICKETD_VIEWERS_H

#include <stddef.h>
#include <stdint.h>

/* A worker link reported delta (+1/-1) sockets of user viewing ticket. */
void viewers_change(uint64_t link_id, const char *ticket, const char *user,
    const char *username, int delta);

/* A worker link closed: its viewers are gone. */
void viewers_link_closed(uint64_t link_id);

/* A checked ticket_viewers frame (json) from another host (origin, 16
 * hex digits): its viewers replace that host's, and the union goes to the
 * local workers.  0 when it was one, -1 when the frame is another event
 * (deliver it as it is). */
int viewers_bridged(const char *origin, const char *json, size_t len);

void viewers_stop(void);

#endif /* TICKETD_VIEWERS_H */

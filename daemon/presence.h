/*
 * presence: who has a live socket, across every nginx worker.
 *
 * Workers report socket.io sessions per user ({"type":"presence",
 * "userId", "delta": +1|-1}); a link that closes takes its sessions with
 * it (the worker died or reloaded).  A user going from no session to one
 * becomes online (a chosen "dnd" is kept); one whose last session closed
 * becomes offline after the grace period unless a session came back.
 * Each change is stored (status, lastSeen) and sent to every worker as
 * user_status_changed.
 */

#ifndef TICKETD_PRESENCE_H
#define TICKETD_PRESENCE_H

#include <stdint.h>
#include <uv.h>

/* Start the grace timer; grace_ms after the last session closes. */
int presence_start(uv_loop_t *loop, uint64_t grace_ms);

/* A worker link reported delta (+1/-1) sessions of user_id. */
void presence_change(uint64_t link_id, const char *user_id, int delta);

/* A worker link closed: its sessions are gone. */
void presence_link_closed(uint64_t link_id);

void presence_stop(void);

#endif /* TICKETD_PRESENCE_H */

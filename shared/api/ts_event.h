/*
 * ts_event: the one schema of the event frames that cross the link and the
 * Redis bridge (DESIGN.md section 6; the internal rights events of
 * briefs/events.md).  ticketd checks every frame with ts_event_check
 * before it fans it out to the workers or publishes it, whoever sent it: a
 * worker over the link, or another host through Redis.
 *
 * A frame is {"type":"event","event":NAME,"room":ROOM,"data":{...}} (room
 * may be absent, meaning null), at most TS_EVENT_MAX bytes as JSON text,
 * with NAME one of the known events, ROOM what that event requires
 * ("ticket_<24 hex>" with data.ticketId the same id, or null), and the
 * data fields that event's consumers read present with their types and
 * bounds.  Fields beyond those are tolerated in comment_added's comment
 * and in ticket_updated (which carries whichever fields changed); every
 * other event's data has exactly its fields.
 *
 * A frame to a ticket's room may carry "audience":"staff": it is for the
 * staff on the ticket only (ts_ticket_staff: admins, the assigned
 * moderator), and a worker delivers it to no other member of the room --
 * internal notes, the triage's notes for staff, who is viewing and
 * typing.  ticket_viewers and user_typing are always staff-only.
 */

#ifndef TS_EVENT_H
#define TS_EVENT_H

#include <stddef.h>

#include <jansson.h>

#include "ts_model.h"

#define TS_EVENT_MAX  (256 * 1024)      /* a frame as JSON text, bytes */

/* To the sockets of data.userId only (not a room): a ticket was assigned
 * to them, {ticketId, userId}, so their ticket list can follow. */
#define TS_EV_TICKET_ASSIGNED  "ticket_assigned"

/* A ticket's room name, "ticket_<id>", and its terminating NUL. */
#define TS_ROOM_LEN   (sizeof("ticket_") + TS_OID_LEN)

/* Write the room of ticket ticket_id ("ticket_<id>", cut to TS_ROOM_LEN)
 * into buf; returns buf. */
char *ts_room_name(const char *ticket_id, char buf[TS_ROOM_LEN]);

/* The ticket id inside room when room is "ticket_<24 hex>" (a pointer
 * into room), else NULL. */
const char *ts_room_ticket(const char *room);

/* A new event frame {"type":"event","event":event,"room":room or null,
 * "data":data}; takes data's reference (also on failure); NULL when out
 * of memory. */
json_t *ts_event_frame(const char *event, const char *room, json_t *data);

/* The same, for the staff on the ticket only ("audience":"staff"). */
json_t *ts_event_frame_staff(const char *event, const char *room,
    json_t *data);

/* 1 when a (checked) frame is for staff only. */
int ts_event_staff_only(json_t *frame);

/*
 * 0 when frame is a well-formed event frame (see above); -1 with a short
 * reason in why (whylen bytes, for a log line) otherwise.
 */
int ts_event_check(json_t *frame, char *why, size_t whylen);

/* The same for the frame's JSON text json[0..len); on 0, *frame (when
 * frame is not NULL) receives the parsed frame, which the caller owns. */
int ts_event_check_text(const char *json, size_t len, json_t **frame,
    char *why, size_t whylen);

#endif /* TS_EVENT_H */

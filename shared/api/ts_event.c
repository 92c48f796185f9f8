/*
 * ts_event: the event frame schema check (see ts_event.h).
 *
 * One table, one row per event: the room it goes to, whether its data may
 * carry fields beyond the checked ones, and the function checking the
 * data.  Adding an event means adding a row here; an event without a row
 * never leaves ticketd.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ts_event.h"
#include "ts_model.h"
#include "ts_session.h"
#include "ts_validate.h"

#define TS_EVENT_TEXT_MAX   5000        /* a comment, code points */
#define TS_EVENT_NAME_MAX   256         /* usernames, emails: bytes */

typedef enum {
    TS_ROOM_TICKET,             /* "ticket_<data.ticketId>" */
    TS_ROOM_NONE                /* null (or absent) */
} ts_event_room_e;

typedef struct {
    const char       *name;
    ts_event_room_e   room;
    int               open;     /* data may hold unchecked extra fields */
    const char *const *fields;  /* the data's fields (closed events) */
    int             (*check)(json_t *data, char *why, size_t whylen);
    int               staff;    /* only with "audience":"staff" */
} ts_event_spec_t;


static int
ts_event_fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -1;
}


/* 24 lowercase hex digits, as every id this system makes. */
static int
ts_event_oid(json_t *v)
{
    const char  *s = json_string_value(v);
    size_t       i;

    if (s == NULL || json_string_length(v) != TS_OID_LEN) {
        return 0;
    }
    for (i = 0; i < TS_OID_LEN; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}


/* A string of valid UTF-8, no NUL, 1..max bytes (0..max when empty_ok). */
static int
ts_event_str(json_t *v, size_t max, int empty_ok)
{
    const char  *s = json_string_value(v);
    size_t       n = json_string_length(v);

    return s != NULL && (n > 0 || empty_ok) && n <= max
           && memchr(s, '\0', n) == NULL && ts_valid_utf8(s, n);
}


/* "YYYY-MM-DDTHH:MM:SS.mmmZ", as ts_iso_time writes it. */
static int
ts_event_iso(json_t *v)
{
    static const char  shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    const char        *s = json_string_value(v);
    size_t             i;

    if (s == NULL || json_string_length(v) != sizeof(shape) - 1) {
        return 0;
    }
    for (i = 0; i < sizeof(shape) - 1; i++) {
        if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
        {
            return 0;
        }
    }
    return 1;
}


static int
ts_event_ticket_status(json_t *v)
{
    static const char *const  statuses[] = { "To-Do", "In Progress",
                                             "Completed" };
    const char               *s = json_string_value(v);
    size_t                    i;

    for (i = 0; s != NULL && i < sizeof(statuses) / sizeof(statuses[0]);
         i++)
    {
        if (strcmp(s, statuses[i]) == 0) {
            return 1;
        }
    }
    return 0;
}


static int
ts_event_presence(json_t *v)
{
    ts_presence_e  p;

    return json_is_string(v) && ts_presence_parse(json_string_value(v), &p)
                                == 0;
}


/* --- the events' data ----------------------------------------------------- */

static int
ts_event_check_comment(json_t *data, char *why, size_t whylen)
{
    json_t       *c = json_object_get(data, "comment");
    json_t       *author = json_object_get(c, "author");
    json_t       *text = json_object_get(c, "text");
    json_t       *status;
    ts_role_e     role;
    const char   *r;

    if (!json_is_object(c)) {
        return ts_event_fail(why, whylen, "comment is not an object");
    }
    if (!ts_event_oid(json_object_get(c, "_id"))) {
        return ts_event_fail(why, whylen, "comment._id is not an id");
    }
    if (!json_is_object(author)
        || !ts_event_oid(json_object_get(author, "_id"))
        || !ts_event_str(json_object_get(author, "email"),
                         TS_EVENT_NAME_MAX, 0)
        || !ts_event_str(json_object_get(author, "username"),
                         TS_EVENT_NAME_MAX, 0))
    {
        return ts_event_fail(why, whylen, "comment.author is not a person");
    }
    status = json_object_get(author, "status");
    if (status != NULL && !ts_event_presence(status)) {
        return ts_event_fail(why, whylen, "comment.author.status is bad");
    }
    if (!ts_event_str(text, 4 * TS_EVENT_TEXT_MAX, 0)
        || ts_utf8_len(json_string_value(text), json_string_length(text))
           > TS_EVENT_TEXT_MAX)
    {
        return ts_event_fail(why, whylen, "comment.text is not 1-%d"
                             " characters", TS_EVENT_TEXT_MAX);
    }
    r = json_string_value(json_object_get(c, "role"));
    if (r == NULL || ts_role_parse(r, &role) != 0) {
        return ts_event_fail(why, whylen, "comment.role is not a role");
    }
    if (!ts_event_iso(json_object_get(c, "createdAt"))) {
        return ts_event_fail(why, whylen, "comment.createdAt is not a date");
    }
    return 0;
}


static int
ts_event_check_status(json_t *data, char *why, size_t whylen)
{
    if (!ts_event_ticket_status(json_object_get(data, "status"))) {
        return ts_event_fail(why, whylen, "status is not a ticket status");
    }
    return 0;
}


static int
ts_event_check_assigned(json_t *data, char *why, size_t whylen)
{
    if (!ts_event_oid(json_object_get(data, "ticketId"))
        || !ts_event_oid(json_object_get(data, "userId")))
    {
        return ts_event_fail(why, whylen, "ticketId and userId are not ids");
    }
    return 0;
}


static int
ts_event_check_presence(json_t *data, char *why, size_t whylen)
{
    json_t  *seen = json_object_get(data, "lastSeen");

    if (!ts_event_oid(json_object_get(data, "userId"))) {
        return ts_event_fail(why, whylen, "userId is not an id");
    }
    if (!ts_event_presence(json_object_get(data, "status"))) {
        return ts_event_fail(why, whylen, "status is not a presence");
    }
    if (!json_is_null(seen) && !ts_event_iso(seen)) {
        return ts_event_fail(why, whylen, "lastSeen is not a date");
    }
    return 0;
}


/* The rights events: ts_rights_parse (ts_session.c), the schema the
 * workers apply them by, is the one check. */
static int
ts_event_check_rights(const char *name, json_t *data, char *why,
    size_t whylen)
{
    ts_rights_t  rt;

    if (ts_rights_parse(name, data, &rt) != 0) {
        return ts_event_fail(why, whylen, "%s data is not its ids (24 hex)"
                             " and sig (1-%d base64url characters)", name,
                             TS_TOKEN_SIG_MAX);
    }
    return 0;
}


static int
ts_event_check_revoked(json_t *data, char *why, size_t whylen)
{
    return ts_event_check_rights(TS_EV_SESSION_REVOKED, data, why, whylen);
}


static int
ts_event_check_user(json_t *data, char *why, size_t whylen)
{
    return ts_event_check_rights(TS_EV_USER_CHANGED, data, why, whylen);
}


static int
ts_event_check_resync(json_t *data, char *why, size_t whylen)
{
    return ts_event_check_rights(TS_EV_RIGHTS_RESYNC, data, why, whylen);
}


static int
ts_event_check_ticket(json_t *data, char *why, size_t whylen)
{
    return ts_event_check_rights(TS_EV_TICKET_ACCESS_CHANGED, data, why,
                                 whylen);
}


/* {_id, username} of a person on a staff-only presence event. */
static int
ts_event_person(json_t *p)
{
    return json_is_object(p) && json_object_size(p) == 2
           && ts_event_oid(json_object_get(p, "_id"))
           && ts_event_str(json_object_get(p, "username"),
                           TS_EVENT_NAME_MAX, 0);
}


static int
ts_event_check_viewers(json_t *data, char *why, size_t whylen)
{
    json_t  *v = json_object_get(data, "viewers"), *p;
    size_t   i;

    if (!json_is_array(v) || json_array_size(v) > 1000) {
        return ts_event_fail(why, whylen, "viewers is not an array");
    }
    json_array_foreach(v, i, p) {
        if (!ts_event_person(p)) {
            return ts_event_fail(why, whylen, "viewers[%zu] is not"
                                 " {_id, username}", i);
        }
    }
    return 0;
}


static int
ts_event_check_typing(json_t *data, char *why, size_t whylen)
{
    if (!ts_event_person(json_object_get(data, "user"))) {
        return ts_event_fail(why, whylen, "user is not {_id, username}");
    }
    if (!json_is_boolean(json_object_get(data, "typing"))) {
        return ts_event_fail(why, whylen, "typing is not a boolean");
    }
    return 0;
}


static const char *const  ts_event_f_comment[] = { "ticketId", "comment",
                                                   NULL };
static const char *const  ts_event_f_status[] = { "ticketId", "status",
                                                  NULL };
static const char *const  ts_event_f_presence[] = { "userId", "status",
                                                    "lastSeen", NULL };
static const char *const  ts_event_f_revoked[] = { "userId", "sig", NULL };
static const char *const  ts_event_f_user[] = { "userId", NULL };
static const char *const  ts_event_f_ticket[] = { "ticketId", NULL };
static const char *const  ts_event_f_none[] = { NULL };
static const char *const  ts_event_f_viewers[] = { "ticketId", "viewers",
                                                   NULL };
static const char *const  ts_event_f_typing[] = { "ticketId", "user",
                                                  "typing", NULL };
static const char *const  ts_event_f_assigned[] = { "ticketId", "userId",
                                                    NULL };

static const ts_event_spec_t  ts_event_specs[] = {
    /* to the sockets (DESIGN.md section 6) */
    { "comment_added", TS_ROOM_TICKET, 0, ts_event_f_comment,
      ts_event_check_comment, 0 },
    { "status_updated", TS_ROOM_TICKET, 0, ts_event_f_status,
      ts_event_check_status, 0 },
    { "ticket_updated", TS_ROOM_TICKET, 1, NULL, ts_event_check_ticket, 0 },
    { "user_status_changed", TS_ROOM_NONE, 0, ts_event_f_presence,
      ts_event_check_presence, 0 },
    /* to the staff in ticket_<id> only ("audience":"staff") */
    { "ticket_viewers", TS_ROOM_TICKET, 0, ts_event_f_viewers,
      ts_event_check_viewers, 1 },
    { "user_typing", TS_ROOM_TICKET, 0, ts_event_f_typing,
      ts_event_check_typing, 1 },
    { TS_EV_TICKET_ASSIGNED, TS_ROOM_NONE, 0, ts_event_f_assigned,
      ts_event_check_assigned, 0 },
    /* internal rights events (applied by the workers, never forwarded) */
    { TS_EV_SESSION_REVOKED, TS_ROOM_NONE, 0, ts_event_f_revoked,
      ts_event_check_revoked, 0 },
    { TS_EV_USER_CHANGED, TS_ROOM_NONE, 0, ts_event_f_user,
      ts_event_check_user, 0 },
    { TS_EV_TICKET_ACCESS_CHANGED, TS_ROOM_NONE, 0, ts_event_f_ticket,
      ts_event_check_ticket, 0 },
    { TS_EV_RIGHTS_RESYNC, TS_ROOM_NONE, 0, ts_event_f_none,
      ts_event_check_resync, 0 },
};


/* Every key of obj is in fields (NULL-terminated); else the first that
 * is not, in *extra. */
static int
ts_event_only(json_t *obj, const char *const *fields, const char **extra)
{
    const char  *key;
    json_t      *v;
    size_t       i;

    json_object_foreach(obj, key, v) {
        for (i = 0; fields[i] != NULL && strcmp(fields[i], key) != 0; i++) {
            /* look on */
        }
        if (fields[i] == NULL) {
            *extra = key;
            return 0;
        }
    }
    return 1;
}


char *
ts_room_name(const char *ticket_id, char buf[TS_ROOM_LEN])
{
    snprintf(buf, TS_ROOM_LEN, "ticket_%s", ticket_id);
    return buf;
}


const char *
ts_room_ticket(const char *room)
{
    if (room == NULL || strncmp(room, "ticket_", 7) != 0
        || !ts_oid_valid(room + 7))
    {
        return NULL;
    }
    return room + 7;
}


json_t *
ts_event_frame(const char *event, const char *room, json_t *data)
{
    return json_pack("{s:s, s:s, s:o?, s:o}", "type", "event",
                     "event", event,
                     "room", room ? json_string(room) : json_null(),
                     "data", data);
}


json_t *
ts_event_frame_staff(const char *event, const char *room, json_t *data)
{
    json_t  *f = ts_event_frame(event, room, data);

    if (f != NULL && json_object_set_new(f, "audience",
                                         json_string("staff")) != 0)
    {
        json_decref(f);
        f = NULL;
    }
    return f;
}


int
ts_event_staff_only(json_t *frame)
{
    const char  *a = json_string_value(json_object_get(frame, "audience"));

    return a != NULL && strcmp(a, "staff") == 0;
}


int
ts_event_check(json_t *frame, char *why, size_t whylen)
{
    static const char *const  frame_fields[] = { "type", "event", "room",
                                                 "data", "audience", NULL };
    const ts_event_spec_t    *spec = NULL;
    const char               *type, *name, *room, *extra, *ticket;
    json_t                   *data, *room_v, *audience;
    size_t                    i, size;

    if (!json_is_object(frame)) {
        return ts_event_fail(why, whylen, "not an object");
    }
    if (!ts_event_only(frame, frame_fields, &extra)) {
        return ts_event_fail(why, whylen, "unknown field \"%.40s\"", extra);
    }
    size = json_dumpb(frame, NULL, 0, JSON_COMPACT);
    if (size == 0 || size > TS_EVENT_MAX) {
        return ts_event_fail(why, whylen, "over %d bytes", TS_EVENT_MAX);
    }
    type = json_string_value(json_object_get(frame, "type"));
    if (type == NULL || strcmp(type, "event") != 0) {
        return ts_event_fail(why, whylen, "type is not \"event\"");
    }
    name = json_string_value(json_object_get(frame, "event"));
    for (i = 0; name != NULL
                && i < sizeof(ts_event_specs) / sizeof(ts_event_specs[0]);
         i++)
    {
        if (strcmp(name, ts_event_specs[i].name) == 0) {
            spec = &ts_event_specs[i];
            break;
        }
    }
    if (spec == NULL) {
        return ts_event_fail(why, whylen, "unknown event");
    }

    data = json_object_get(frame, "data");
    if (!json_is_object(data)) {
        return ts_event_fail(why, whylen, "%s: data is not an object",
                             spec->name);
    }
    if (!spec->open && !ts_event_only(data, spec->fields, &extra)) {
        return ts_event_fail(why, whylen, "%s: unknown data field"
                             " \"%.40s\"", spec->name, extra);
    }

    audience = json_object_get(frame, "audience");
    if (audience != NULL
        && (!ts_event_staff_only(frame) || spec->room != TS_ROOM_TICKET))
    {
        return ts_event_fail(why, whylen, "%s: audience is not \"staff\""
                             " of a ticket's room", spec->name);
    }
    if (audience == NULL && spec->staff) {
        return ts_event_fail(why, whylen, "%s: for staff only, without"
                             " \"audience\":\"staff\"", spec->name);
    }

    room_v = json_object_get(frame, "room");
    room = json_string_value(room_v);
    if (spec->room == TS_ROOM_NONE) {
        if (room_v != NULL && !json_is_null(room_v)) {
            return ts_event_fail(why, whylen, "%s: room must be null",
                                 spec->name);
        }
    } else {
        if (!ts_event_oid(json_object_get(data, "ticketId"))) {
            return ts_event_fail(why, whylen, "%s: ticketId is not an id",
                                 spec->name);
        }
        ticket = ts_room_ticket(room);
        if (ticket == NULL || json_string_length(room_v) != strlen(room)
            || strcmp(ticket,
                      json_string_value(json_object_get(data, "ticketId")))
               != 0)
        {
            return ts_event_fail(why, whylen, "%s: room is not the ticket's",
                                 spec->name);
        }
    }
    if (spec->check(data, why, whylen) != 0) {
        /* prefix the event's name to the reason */
        char  reason[160];

        snprintf(reason, sizeof(reason), "%s", why);
        return ts_event_fail(why, whylen, "%s: %s", spec->name, reason);
    }
    return 0;
}


int
ts_event_check_text(const char *json, size_t len, json_t **frame, char *why,
    size_t whylen)
{
    json_error_t   jerr;
    json_t        *f;

    if (frame != NULL) {
        *frame = NULL;
    }
    if (len > TS_EVENT_MAX) {
        return ts_event_fail(why, whylen, "over %d bytes", TS_EVENT_MAX);
    }
    f = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (f == NULL) {
        return ts_event_fail(why, whylen, "invalid JSON (%s)", jerr.text);
    }
    if (ts_event_check(f, why, whylen) != 0) {
        json_decref(f);
        return -1;
    }
    if (frame != NULL) {
        *frame = f;
    } else {
        json_decref(f);
    }
    return 0;
}

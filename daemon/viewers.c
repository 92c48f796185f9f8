/*
 * viewers: the staff viewing each ticket (see viewers.h).
 *
 * Tables are small arrays searched linearly: an entry exists per (link,
 * ticket, user) with open sockets, and per (host, ticket, user) another
 * host announced; a page of staff on a few tickets, not every socket.
 */

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "link_server.h"
#include "log.h"
#include "redis_bridge.h"
#include "ts_event.h"
#include "ts_model.h"
#include "viewers.h"

#define VIEWERS_NAME_MAX  64
#define VIEWERS_ORIGIN    17           /* 16 hex digits and a NUL */

typedef struct {
    uint64_t   link;                   /* 0: another host's (origin) */
    char       origin[VIEWERS_ORIGIN];
    ts_oid_t   ticket;
    ts_oid_t   user;
    char       username[VIEWERS_NAME_MAX];
    int        count;                  /* a link's sockets */
} viewer_t;

static struct {
    viewer_t  *v;
    size_t     n, cap;
} vw;


/* The viewers of ticket as {_id, username} objects, each user once; with
 * local_only, this host's only. */
static json_t *
viewers_list(const char *ticket, int local_only)
{
    json_t  *arr = json_array(), *p;
    size_t   i, j;
    int      seen;

    for (i = 0; arr != NULL && i < vw.n; i++) {
        if (strcmp(vw.v[i].ticket, ticket) != 0
            || (local_only && vw.v[i].link == 0))
        {
            continue;
        }
        seen = 0;
        json_array_foreach(arr, j, p) {
            if (strcmp(json_string_value(json_object_get(p, "_id")),
                       vw.v[i].user) == 0)
            {
                seen = 1;
                break;
            }
        }
        if (!seen) {
            json_array_append_new(arr, json_pack("{s:s, s:s}",
                                  "_id", vw.v[i].user,
                                  "username", vw.v[i].username));
        }
    }
    return arr;
}


/* A ticket_viewers frame as JSON text (malloc'ed), or NULL. */
static char *
viewers_frame(const char *ticket, int local_only)
{
    char     room[TS_ROOM_LEN], *text;
    json_t  *frame;

    frame = ts_event_frame_staff("ticket_viewers",
                                 ts_room_name(ticket, room),
                                 json_pack("{s:s, s:o}", "ticketId", ticket,
                                           "viewers",
                                           viewers_list(ticket, local_only)));
    text = frame ? json_dumps(frame, JSON_COMPACT) : NULL;
    json_decref(frame);
    return text;
}


/* The ticket's viewers changed: the union to this host's workers, and,
 * when this host's own changed, those to the other hosts. */
static void
viewers_announce(const char *ticket, int local)
{
    char  *text;

    text = viewers_frame(ticket, 0);
    if (text != NULL) {
        link_server_broadcast(text, strlen(text));
        free(text);
    }
    if (local) {
        text = viewers_frame(ticket, 1);
        if (text != NULL) {
            redis_bridge_publish(text, strlen(text));
            free(text);
        }
    }
}


/* 1 when ticket has a viewer user (on any link or host). */
static int
viewers_has(const char *ticket, const char *user)
{
    size_t  i;

    for (i = 0; i < vw.n; i++) {
        if (strcmp(vw.v[i].ticket, ticket) == 0
            && strcmp(vw.v[i].user, user) == 0)
        {
            return 1;
        }
    }
    return 0;
}


static void
viewers_remove(size_t i)
{
    vw.v[i] = vw.v[--vw.n];
}


void
viewers_change(uint64_t link_id, const char *ticket, const char *user,
    const char *username, int delta)
{
    viewer_t  *e = NULL, *nv;
    size_t     i;
    int        before;

    before = viewers_has(ticket, user);
    for (i = 0; i < vw.n; i++) {
        if (vw.v[i].link == link_id && strcmp(vw.v[i].ticket, ticket) == 0
            && strcmp(vw.v[i].user, user) == 0)
        {
            e = &vw.v[i];
            break;
        }
    }
    if (e == NULL) {
        if (delta < 0) {
            return;                     /* nothing reported: ignored */
        }
        if (vw.n == vw.cap) {
            nv = realloc(vw.v, (vw.cap ? vw.cap * 2 : 16) * sizeof(*nv));
            if (nv == NULL) {
                log_error("viewers: out of memory");
                return;
            }
            vw.v = nv;
            vw.cap = vw.cap ? vw.cap * 2 : 16;
        }
        e = &vw.v[vw.n++];
        memset(e, 0, sizeof(*e));
        e->link = link_id;
        memcpy(e->ticket, ticket, sizeof(ts_oid_t));
        memcpy(e->user, user, sizeof(ts_oid_t));
    }
    /* the name as the latest report has it */
    snprintf(e->username, sizeof(e->username), "%s", username);
    e->count += delta;
    if (e->count <= 0) {
        viewers_remove((size_t) (e - vw.v));
    }
    if (viewers_has(ticket, user) != before) {
        viewers_announce(ticket, 1);
    } else {
        /* the local list may differ though the union does not: the other
         * hosts are told */
        char  *text = viewers_frame(ticket, 1);

        if (text != NULL) {
            redis_bridge_publish(text, strlen(text));
            free(text);
        }
    }
}


void
viewers_link_closed(uint64_t link_id)
{
    ts_oid_t  tickets[64];
    size_t    i, j, nt = 0;

    for (i = 0; i < vw.n; ) {
        if (vw.v[i].link != link_id || link_id == 0) {
            i++;
            continue;
        }
        for (j = 0; j < nt && strcmp(tickets[j], vw.v[i].ticket) != 0; j++) {
            /* look on */
        }
        if (j == nt && nt < sizeof(tickets) / sizeof(tickets[0])) {
            memcpy(tickets[nt++], vw.v[i].ticket, sizeof(ts_oid_t));
        }
        viewers_remove(i);
    }
    for (j = 0; j < nt; j++) {
        viewers_announce(tickets[j], 1);
    }
}


int
viewers_bridged(const char *from, const char *json, size_t len)
{
    json_t      *frame, *data, *list, *p;
    const char  *ticket, *name;
    size_t       i, k;
    viewer_t    *nv;
    char         origin[VIEWERS_ORIGIN];

    snprintf(origin, sizeof(origin), "%.16s", from);
    frame = json_loadb(json, len, 0, NULL);
    name = json_string_value(json_object_get(frame, "event"));
    if (name == NULL || strcmp(name, "ticket_viewers") != 0) {
        json_decref(frame);
        return -1;
    }
    data = json_object_get(frame, "data");
    ticket = json_string_value(json_object_get(data, "ticketId"));
    list = json_object_get(data, "viewers");

    /* that host's list for the ticket is replaced (checked: ids, names) */
    for (i = 0; i < vw.n; ) {
        if (vw.v[i].link == 0 && strcmp(vw.v[i].origin, origin) == 0
            && strcmp(vw.v[i].ticket, ticket) == 0)
        {
            viewers_remove(i);
        } else {
            i++;
        }
    }
    json_array_foreach(list, k, p) {
        if (vw.n == vw.cap) {
            nv = realloc(vw.v, (vw.cap ? vw.cap * 2 : 16) * sizeof(*nv));
            if (nv == NULL) {
                break;
            }
            vw.v = nv;
            vw.cap = vw.cap ? vw.cap * 2 : 16;
        }
        nv = &vw.v[vw.n++];
        memset(nv, 0, sizeof(*nv));
        memcpy(nv->origin, origin, sizeof(origin));
        snprintf(nv->ticket, sizeof(nv->ticket), "%s", ticket);
        snprintf(nv->user, sizeof(nv->user), "%s",
                 json_string_value(json_object_get(p, "_id")));
        snprintf(nv->username, sizeof(nv->username), "%s",
                 json_string_value(json_object_get(p, "username")));
        nv->count = 1;
    }
    viewers_announce(ticket, 0);
    json_decref(frame);
    return 0;
}


void
viewers_stop(void)
{
    free(vw.v);
    memset(&vw, 0, sizeof(vw));
}

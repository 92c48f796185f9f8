/*
 * link_server: the Unix socket the nginx workers connect to, and the links.
 *
 * Each nginx worker keeps one persistent link (DESIGN.md section 1).  The
 * server accepts any number of them, decodes ts_link frames from each
 * (shared/proto/ts_link.h), dispatches them by "type" (hello, event, wake), and
 * can send a frame to every link at once (the event hub's fan-out).
 *
 * Every link has a bounded outgoing queue: a peer that stops reading is
 * closed once LINK_OUT_MAX bytes wait for it, so a stuck worker costs at
 * most that much memory.  A link sending a corrupt stream is closed; a
 * single bad frame (invalid JSON, unknown type) is logged and skipped.
 *
 * Loop thread only.
 */

#ifndef TICKETD_LINK_SERVER_H
#define TICKETD_LINK_SERVER_H

#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

/* Bytes that may wait in one link's outgoing queue. */
#define LINK_OUT_MAX  (8u * 1024 * 1024)

/*
 * Listen on the Unix socket at path (mode 0660).  An existing socket file
 * is removed only when nothing answers on it.  0 on success; -1 with the
 * reason in err (errlen bytes), e.g. when a live daemon already listens.
 */
int link_server_start(uv_loop_t *loop, const char *path, char *err,
    size_t errlen);

/* Also let peers running as uid link (the nginx workers' user); root and
 * ticketd's own uid always may, every other peer is refused.  Call before
 * link_server_start. */
void link_server_allow_uid(uid_t uid);

/*
 * The configuration fingerprint every worker's hello must carry
 * ({"config":{"store","socket","secret"}}, ts_wire_fingerprint): a worker
 * whose nginx.conf names another store, socket or JWT secret is told why
 * ({"type":"refused","reason":...}), logged at error level, and its link
 * closed.  Without this call (ticketd has no secret) hellos are not
 * checked.  The strings are copied.
 */
void link_server_expect(const char *store, const char *socket,
    const char *secret);

/* Stop accepting, close every link and remove the socket file; the
 * handles finish closing on the loop.  Safe to call when not started. */
void link_server_stop(void);

/*
 * Frame the JSON object text json[0..len) once and queue it on every open
 * link; links whose queue would overflow are closed.  Returns how many
 * links it was queued on, or -1 when the frame cannot be built (empty,
 * over TS_LINK_MAX_FRAME, out of memory).
 */
int link_server_broadcast(const char *json, size_t len);

/* Links open now (for the metrics). */
int link_server_links(void);

#endif /* TICKETD_LINK_SERVER_H */

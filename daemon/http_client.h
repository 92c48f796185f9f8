/*
 * http_client: outgoing HTTP(S) requests and SMTP(S) mail, driven by the
 * daemon's libuv loop.
 *
 * The job runner calls AI providers (Gemini, OpenAI-compatible APIs) and
 * mail services (SendGrid over HTTPS, plain SMTP) many at a time.  Every
 * transfer runs inside libcurl's multi interface, whose sockets and timer
 * are watched by the loop, so nothing here ever blocks the loop thread and
 * no thread is started for a transfer (name lookups may use libcurl's
 * resolver thread, which never calls back into this module).
 *
 * A client owns one curl multi handle, hence one connection cache: calls
 * to the same host reuse kept-alive connections (and multiplex over HTTP/2
 * where the server offers it).  At most HTTP_CLIENT_MAX_CONNS connections
 * are open at once by default; requests beyond that wait in libcurl's
 * queue, and their timeout runs while they wait.
 *
 * Outcomes are values: a request that started always ends in exactly one
 * callback carrying an http_result_t; an HTTP error status (404, 429,
 * 500...) is a successful transfer with that status.  Redirects are not
 * followed (a 3xx is the result).  Requests speak http/https only, mail
 * smtp/smtps only, whatever the URL says.
 *
 * Call http_client_global_init() once from main before any thread starts
 * (libcurl's global state is not thread-safe to set up).  A client is used
 * from its loop's thread only.
 */

#ifndef TICKETD_HTTP_CLIENT_H
#define TICKETD_HTTP_CLIENT_H

#include <stddef.h>
#include <uv.h>

/* Connections a new client may have open at once (all hosts together). */
#define HTTP_CLIENT_MAX_CONNS       64

/* Upper bound of the connect phase, whatever the request's timeout. */
#define HTTP_CLIENT_CONNECT_MAX_MS  10000

typedef struct http_client_s  http_client_t;

typedef struct {
    long         status;     /* HTTP status, or the SMTP code of the final
                                response; 0 when an HTTP transfer failed */
    const char  *body;       /* response body, NUL-terminated ("" for
                                mail); valid only during the callback */
    size_t       body_len;
    const char  *error;      /* NULL on success, else a short text:
                                "timeout", "connect failed: ...",
                                "response too large", "cancelled", or
                                libcurl's message */
    int          timed_out;  /* 1 when it failed by its timeout */
} http_result_t;

/* Runs once per started request, on the loop thread, never before the
 * call that started it has returned.  res lives for the call only. */
typedef void (*http_done_cb)(const http_result_t *res, void *arg);

/*
 * Set up libcurl for the process; call once from main before any thread
 * exists.  0 on success, -1 when libcurl cannot start or is older than
 * 7.85 (no CURLOPT_PROTOCOLS_STR).  http_client_new() fails until it ran.
 */
int http_client_global_init(void);

/*
 * Create a client on loop.  Responses longer than max_body bytes fail
 * with "response too large" (the transfer is aborted, nothing is kept).
 * NULL when out of memory or http_client_global_init() has not run.
 */
http_client_t *http_client_new(uv_loop_t *loop, size_t max_body);

/*
 * Start an HTTP(S) request.  method is "GET" (no body) or "POST" (or
 * another upper-case verb, sent with the body); headers is a
 * NULL-terminated array of "Name: value" strings, or NULL; body[0..
 * body_len) may be NULL when body_len is 0.  Everything is copied.
 * timeout_ms (> 0) bounds the whole transfer, queueing included.  0 when
 * started (cb will run exactly once, also on failure and on
 * http_client_close with "cancelled"); -1 when it could not start (bad
 * arguments, a header containing CR or LF, client closing, out of
 * memory), and then cb is never called.
 */
int http_client_request(http_client_t *c, const char *method,
    const char *url, const char *const *headers, const char *body,
    size_t body_len, long timeout_ms, http_done_cb cb, void *arg);

/*
 * Send one mail over SMTP: url is smtp://host:port (STARTTLS used when the
 * server offers it, else plain text, password included) or
 * smtps://host:port (TLS from the start); user and password may be NULL
 * (no AUTH); from is the envelope sender; rcpt a NULL-terminated, non-empty
 * list of recipients; message[0..message_len) the full RFC 5322 message
 * (headers, blank line, body; CRLF line ends).  Everything is copied.
 * Same return value and callback contract as http_client_request(); on
 * success status is 250; a rejection (a refused recipient, a 4xx/5xx at
 * the end of DATA, failed AUTH) reports the server's code in status and
 * an error text.  Any refused recipient fails the whole mail.
 */
int http_client_smtp(http_client_t *c, const char *url, const char *user,
    const char *password, const char *from, const char *const *rcpt,
    const char *message, size_t message_len, long timeout_ms,
    http_done_cb cb, void *arg);

/*
 * Cancel every transfer in flight (each callback runs with "cancelled"
 * before this returns; new requests are refused from then on), close the
 * connections and the loop handles, free the client, then call
 * done_cb(arg) (may be NULL) from the loop once its last handle is closed.
 * Safe from inside a request callback.  Call once; c is gone afterwards.
 */
void http_client_close(http_client_t *c, void (*done_cb)(void *arg),
    void *arg);

#endif /* TICKETD_HTTP_CLIENT_H */

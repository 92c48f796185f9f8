/*
 * Request/response helpers shared by the module's handlers: JSON
 * responses (the one place that sets the content type and writes a body),
 * response headers, and request-header lookups.  Used by the API, the
 * rate limiter and CORS.
 */

#ifndef NGX_HTTP_TICKET_REPLY_H
#define NGX_HTTP_TICKET_REPLY_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

/*
 * Send status + body (copied into r->pool) as application/json; returns
 * what ngx_http_output_filter returned, for ngx_http_finalize_request().
 */
ngx_int_t ngx_http_ticket_send_json(ngx_http_request_t *r, ngx_uint_t status,
    const u_char *body, size_t len);

/* Send {"error": msg, "message": msg}; msg must not need JSON escaping. */
ngx_int_t ngx_http_ticket_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *msg);

/* Add a response header (key and value copied into r->pool). */
ngx_int_t ngx_http_ticket_add_header(ngx_http_request_t *r,
    const char *key, ngx_str_t *value);

/* The first request header called name (case-insensitive), or NULL. */
ngx_table_elt_t *ngx_http_ticket_find_header(ngx_http_request_t *r,
    const char *name);

/* 1 for a CORS preflight: OPTIONS with Origin and
 * Access-Control-Request-Method. */
ngx_uint_t ngx_http_ticket_is_preflight(ngx_http_request_t *r);

#endif /* NGX_HTTP_TICKET_REPLY_H */

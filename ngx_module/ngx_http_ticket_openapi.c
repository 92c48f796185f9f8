/*
 * GET /api/openapi.json: the API's OpenAPI 3.1 document, answered on the
 * event loop from the module's own memory.
 *
 * shared/api/openapi.json is assembled into this object file (.incbin);
 * `config` writes its absolute path into ngx_http_ticket_openapi_file.h
 * in the build directory and lists the document among the module's
 * dependencies, so editing it rebuilds this file.  The ETag is the
 * document's SHA-1, computed once per process; nginx's not_modified filter
 * answers If-None-Match with 304.
 */

#include "ngx_http_ticket_module.h"

#include <openssl/sha.h>

#include "ngx_http_ticket_openapi_file.h"

__asm__ (
    "    .pushsection .rodata\n"
    "    .balign 16\n"
    "    .hidden ngx_http_ticket_openapi_start\n"
    "    .hidden ngx_http_ticket_openapi_end\n"
    "ngx_http_ticket_openapi_start:\n"
    "    .incbin \"" NGX_HTTP_TICKET_OPENAPI_FILE "\"\n"
    "ngx_http_ticket_openapi_end:\n"
    "    .byte 0\n"
    "    .popsection\n"
);

extern const u_char  ngx_http_ticket_openapi_start[]
    __attribute__((visibility("hidden")));
extern const u_char  ngx_http_ticket_openapi_end[]
    __attribute__((visibility("hidden")));

static ngx_str_t  ngx_http_ticket_openapi_type =
    ngx_string("application/json; charset=utf-8");

/* "<40 hex digits>", quotes included; set on first use */
static u_char     ngx_http_ticket_openapi_etag[SHA_DIGEST_LENGTH * 2 + 2];


ngx_int_t
ngx_http_ticket_openapi_send(ngx_http_request_t *r)
{
    size_t            len;
    u_char            digest[SHA_DIGEST_LENGTH];
    ngx_int_t         rc;
    ngx_buf_t        *b;
    ngx_chain_t       out;
    ngx_table_elt_t  *h;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    len = ngx_http_ticket_openapi_end - ngx_http_ticket_openapi_start;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ticket api: OpenAPI document, %uz bytes", len);

    if (ngx_http_ticket_openapi_etag[0] == '\0') {
        SHA1(ngx_http_ticket_openapi_start, len, digest);
        ngx_http_ticket_openapi_etag[0] = '"';
        ngx_hex_dump(ngx_http_ticket_openapi_etag + 1, digest,
                     SHA_DIGEST_LENGTH);
        ngx_http_ticket_openapi_etag[sizeof(ngx_http_ticket_openapi_etag) - 1]
            = '"';
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    h->hash = 1;
    ngx_str_set(&h->key, "ETag");
    h->value.data = ngx_http_ticket_openapi_etag;
    h->value.len = sizeof(ngx_http_ticket_openapi_etag);
    r->headers_out.etag = h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "public, max-age=300");

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type = ngx_http_ticket_openapi_type;
    r->headers_out.content_type_len = ngx_http_ticket_openapi_type.len;
    r->headers_out.content_length_n = len;
    ngx_http_clear_last_modified(r);

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    b->pos = (u_char *) ngx_http_ticket_openapi_start;
    b->last = b->pos + len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;
    return ngx_http_output_filter(r, &out);
}

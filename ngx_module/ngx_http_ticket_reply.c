/*
 * Request/response helpers for the module's handlers (see
 * ngx_http_ticket_json.h).
 */

#include "ngx_http_ticket_reply.h"

static ngx_str_t  ngx_http_ticket_json_type =
    ngx_string("application/json; charset=utf-8");


ngx_int_t
ngx_http_ticket_send_json(ngx_http_request_t *r, ngx_uint_t status,
    const u_char *body, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_type = ngx_http_ticket_json_type;
    r->headers_out.content_type_len = ngx_http_ticket_json_type.len;
    r->headers_out.content_length_n = len;
    ngx_http_clear_last_modified(r);
    ngx_http_clear_etag(r);

    if (r->method == NGX_HTTP_HEAD || len == 0) {
        r->header_only = 1;
        return ngx_http_send_header(r);
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_ERROR;
    }
    b->last = ngx_cpymem(b->pos, body, len);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;
    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_ticket_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *msg)
{
    u_char  *body, *p;
    size_t   mlen, len;

    mlen = ngx_strlen(msg);
    len = sizeof("{\"error\":\"\",\"message\":\"\"}") - 1 + 2 * mlen;
    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_ERROR;
    }
    p = ngx_sprintf(body, "{\"error\":\"%s\",\"message\":\"%s\"}", msg, msg);
    return ngx_http_ticket_send_json(r, status, body, p - body);
}


ngx_int_t
ngx_http_ticket_add_header(ngx_http_request_t *r, const char *key,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }
    h->hash = 1;
    h->key.len = ngx_strlen(key);
    h->key.data = (u_char *) key;
    h->value.len = value->len;
    h->value.data = ngx_pnalloc(r->pool, value->len);
    if (h->value.data == NULL) {
        h->hash = 0;
        return NGX_ERROR;
    }
    ngx_memcpy(h->value.data, value->data, value->len);
    return NGX_OK;
}


ngx_table_elt_t *
ngx_http_ticket_find_header(ngx_http_request_t *r, const char *name)
{
    size_t            len = ngx_strlen(name);
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }
            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


ngx_uint_t
ngx_http_ticket_is_preflight(ngx_http_request_t *r)
{
    return r->method == NGX_HTTP_OPTIONS
           && ngx_http_ticket_find_header(r, "Origin") != NULL
           && ngx_http_ticket_find_header(r, "Access-Control-Request-Method")
              != NULL;
}

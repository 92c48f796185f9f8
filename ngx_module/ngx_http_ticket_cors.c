/*
 * CORS for the API: "ticket_cors_origins <origin>... | * | off".
 *
 * A header filter adds Access-Control-Allow-Origin to every response of a
 * location with allowed origins -- errors and 429s included, so browsers
 * can read them.  Preflight requests (OPTIONS with Origin and
 * Access-Control-Request-Method) are answered by the API handler through
 * ngx_http_ticket_cors_preflight(); the rate limiter does not count them.
 */

#include "ngx_http_ticket_module.h"
#include "ngx_http_ticket_reply.h"

static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


char *
ngx_http_ticket_cors_origins(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ticket_loc_conf_t  *tlcf = conf;

    ngx_str_t   *value, *o;
    ngx_uint_t   i;

    if (tlcf->cors_origins != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }
    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        tlcf->cors_origins = NULL;
        tlcf->cors_any = 0;
        return NGX_CONF_OK;
    }

    tlcf->cors_origins = ngx_array_create(cf->pool, cf->args->nelts,
                                          sizeof(ngx_str_t));
    if (tlcf->cors_origins == NULL) {
        return NGX_CONF_ERROR;
    }
    tlcf->cors_any = 0;

    for (i = 1; i < cf->args->nelts; i++) {
        if (value[i].len == 1 && value[i].data[0] == '*') {
            tlcf->cors_any = 1;
            continue;
        }
        /* an origin is scheme://host[:port], without path or slash */
        if ((ngx_strncmp(value[i].data, "http://", 7) != 0
             && ngx_strncmp(value[i].data, "https://", 8) != 0)
            || ngx_strlchr(value[i].data + 8, value[i].data + value[i].len,
                           '/') != NULL)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid origin \"%V\" in "
                               "\"ticket_cors_origins\": expected "
                               "\"https://host[:port]\", \"*\" or \"off\"",
                               &value[i]);
            return NGX_CONF_ERROR;
        }
        o = ngx_array_push(tlcf->cors_origins);
        if (o == NULL) {
            return NGX_CONF_ERROR;
        }
        *o = value[i];
    }
    return NGX_CONF_OK;
}


/* The request's Origin when the location allows it, else NULL. */
static ngx_str_t *
ngx_http_ticket_cors_allowed(ngx_http_request_t *r,
    ngx_http_ticket_loc_conf_t *tlcf)
{
    ngx_table_elt_t  *origin;
    ngx_str_t        *o;
    ngx_uint_t        i;

    origin = ngx_http_ticket_find_header(r, "Origin");
    if (origin == NULL || origin->value.len == 0) {
        return NULL;
    }
    if (tlcf->cors_any) {
        return &origin->value;
    }
    o = tlcf->cors_origins->elts;
    for (i = 0; i < tlcf->cors_origins->nelts; i++) {
        if (o[i].len == origin->value.len
            && ngx_strncasecmp(o[i].data, origin->value.data, o[i].len) == 0)
        {
            return &origin->value;
        }
    }
    return NULL;
}


static ngx_int_t
ngx_http_ticket_cors_header_filter(ngx_http_request_t *r)
{
    ngx_http_ticket_loc_conf_t  *tlcf;
    ngx_str_t                   *origin, vary = ngx_string("Origin");
    ngx_str_t                    expose = ngx_string(
        "RateLimit-Policy, RateLimit-Limit, RateLimit-Remaining, "
        "RateLimit-Reset, Retry-After");

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_ticket_module);
    if (r != r->main || tlcf == NULL || tlcf->cors_origins == NULL) {
        return ngx_http_next_header_filter(r);
    }

    origin = ngx_http_ticket_cors_allowed(r, tlcf);
    if (origin != NULL) {
        if (ngx_http_ticket_add_header(r, "Access-Control-Allow-Origin",
                                       origin) != NGX_OK
            || ngx_http_ticket_add_header(r, "Access-Control-Expose-Headers",
                                          &expose) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }
    /* the answer depends on Origin, so caches must key on it */
    if (ngx_http_ticket_add_header(r, "Vary", &vary) != NGX_OK) {
        return NGX_ERROR;
    }
    return ngx_http_next_header_filter(r);
}


ngx_int_t
ngx_http_ticket_cors_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_ticket_cors_header_filter;
    return NGX_OK;
}


ngx_int_t
ngx_http_ticket_cors_preflight(ngx_http_request_t *r)
{
    ngx_http_ticket_loc_conf_t  *tlcf;
    ngx_str_t                    methods = ngx_string(
                                     "GET, POST, PATCH, PUT, DELETE, OPTIONS");
    ngx_str_t                    headers = ngx_string(
                                     "Authorization, Content-Type");
    ngx_str_t                    max_age = ngx_string("600");

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_ticket_module);
    if (tlcf->cors_origins == NULL
        || ngx_http_ticket_cors_allowed(r, tlcf) == NULL)
    {
        return ngx_http_ticket_send_error(r, NGX_HTTP_FORBIDDEN,
                                          "Origin not allowed");
    }

    if (ngx_http_ticket_add_header(r, "Access-Control-Allow-Methods",
                                   &methods) != NGX_OK
        || ngx_http_ticket_add_header(r, "Access-Control-Allow-Headers",
                                      &headers) != NGX_OK
        || ngx_http_ticket_add_header(r, "Access-Control-Max-Age", &max_age)
           != NGX_OK)
    {
        return NGX_ERROR;
    }
    return ngx_http_ticket_send_json(r, NGX_HTTP_NO_CONTENT, NULL, 0);
}

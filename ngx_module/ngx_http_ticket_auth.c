/*
 * Bearer tokens on the event loop, and the $ticket_user_id /
 * $ticket_user_role variables.
 *
 * Signature and expiry checks are cheap (one HMAC), so they run here: a
 * request without a valid token is refused without a thread-pool hop.
 * Revocation and the current role need the store; the API task checks
 * them and records the outcome in the request ctx.  So the variables
 * are, by phase:
 *
 *   before the content phase (rewrite, access, map, limit_req keys), and
 *   in every location without ticket_api: the token's claims, signature
 *   and expiry checked -- a revoked token or a deleted user still shows,
 *   with the role the token was issued with (asking the store here would
 *   block the event loop);
 *
 *   after a ticket_api request ran (the log phase): the session the store
 *   confirmed -- its user and current role, or the user a signup/login
 *   just authenticated -- or nothing when the store refused the token.
 */

#include "ngx_http_ticket_module.h"

/*
 * Verified tokens, per worker: a client sends the same bearer token on
 * every request, and checking an HS256 signature means base64, two JSON
 * parses and an HMAC.  An entry holds the whole token (a hash match alone
 * must never grant an identity) and its claims; "exp" is checked again on
 * every hit.  Revocation is not cached: the API task asks the store.
 */
#define NGX_HTTP_TICKET_TOKEN_CACHE  1024

typedef struct {
    u_char       *token;          /* malloc'ed copy, NULL = empty slot */
    size_t        len;
    ts_claims_t   claims;
} ngx_http_ticket_token_entry_t;

static ngx_http_ticket_token_entry_t
    ngx_http_ticket_tokens[NGX_HTTP_TICKET_TOKEN_CACHE];


static ngx_http_ticket_token_entry_t *
ngx_http_ticket_token_slot(u_char *token, size_t len)
{
    return &ngx_http_ticket_tokens[ngx_hash_key(token, len)
                                   % NGX_HTTP_TICKET_TOKEN_CACHE];
}


ngx_int_t
ngx_http_ticket_verify(ngx_http_ticket_main_conf_t *tmcf, u_char *token,
    size_t len, ts_claims_t *claims)
{
    ngx_http_ticket_token_entry_t  *e = ngx_http_ticket_token_slot(token,
                                                                   len);
    u_char                         *copy;

    if (e->token && e->len == len && ngx_memcmp(e->token, token, len) == 0) {
        if (e->claims.exp <= ngx_time()) {
            return NGX_DECLINED;
        }
        *claims = e->claims;
        return NGX_OK;
    }

    if (ts_token_verify(tmcf->jwt_secret.data, tmcf->jwt_secret.len,
                        (const char *) token, len, ngx_time(), claims)
        != 0)
    {
        return NGX_DECLINED;
    }

    /* only valid tokens are cached: garbage cannot evict good entries */
    copy = malloc(len);
    if (copy != NULL) {
        free(e->token);
        ngx_memcpy(copy, token, len);
        e->token = copy;
        e->len = len;
        e->claims = *claims;
    }
    return NGX_OK;
}


static ngx_int_t ngx_http_ticket_variable_user_id(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ticket_variable_user_role(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static ngx_http_variable_t  ngx_http_ticket_vars[] = {

    { ngx_string("ticket_user_id"), NULL,
      ngx_http_ticket_variable_user_id, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ticket_user_role"), NULL,
      ngx_http_ticket_variable_user_role, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_http_ticket_ctx_t *
ngx_http_ticket_auth(ngx_http_request_t *r)
{
    ngx_http_ticket_ctx_t        *ctx;
    ngx_http_ticket_main_conf_t  *tmcf;
    ngx_table_elt_t              *h;
    u_char                       *p, *last;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ticket_module);
    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ticket_ctx_t));
        if (ctx == NULL) {
            return NULL;
        }
        ngx_http_set_ctx(r, ctx, ngx_http_ticket_module);
    }
    if (ctx->token_done) {
        return ctx;
    }
    ctx->token_done = 1;

    h = r->headers_in.authorization;
    if (h == NULL) {
        return ctx;
    }

    p = h->value.data;
    last = p + h->value.len;
    if (h->value.len < 7 || ngx_strncasecmp(p, (u_char *) "Bearer ", 7) != 0)
    {
        return ctx;
    }
    p += 7;
    while (p < last && *p == ' ') {
        p++;
    }
    while (last > p && last[-1] == ' ') {
        last--;
    }
    if (p == last) {
        return ctx;
    }
    ctx->token_present = 1;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_ticket_module);
    if (tmcf->jwt_secret.len == 0) {
        return ctx;
    }

    if (ngx_http_ticket_verify(tmcf, p, last - p, &ctx->claims) == NGX_OK) {
        ctx->token_valid = 1;
    }
    return ctx;
}


ngx_int_t
ngx_http_ticket_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_ticket_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }
        var->get_handler = v->get_handler;
        var->data = v->data;
    }
    return NGX_OK;
}


static ngx_int_t
ngx_http_ticket_variable_user_id(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ticket_ctx_t  *ctx = ngx_http_ticket_auth(r);

    if (ctx == NULL || ctx->session_refused
        || (!ctx->token_valid && !ctx->role_known))
    {
        v->not_found = 1;
        return NGX_OK;
    }
    v->data = (u_char *) (ctx->role_known ? ctx->user_id
                                          : ctx->claims.user_id);
    v->len = TS_OID_LEN;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    return NGX_OK;
}


static ngx_int_t
ngx_http_ticket_variable_user_role(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ticket_ctx_t  *ctx = ngx_http_ticket_auth(r);
    const char             *role;

    if (ctx == NULL || ctx->session_refused
        || (!ctx->token_valid && !ctx->role_known))
    {
        v->not_found = 1;
        return NGX_OK;
    }
    role = ctx->role_known ? ts_role_name(ctx->role) : ctx->claims.role;
    v->data = (u_char *) role;
    v->len = ngx_strlen(role);
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    return NGX_OK;
}

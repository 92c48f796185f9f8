/*
 * Sockets per user across the node's workers ("ticket_socketio_user_sockets").
 *
 * A shared-memory zone, the shape of ngx_http_limit_conn_module: a
 * red-black tree keyed by the CRC32 of the user id, one node per user with
 * at least one authenticated socket, holding how many.  A worker takes a
 * place when a CONNECT succeeds and gives it back when that session ends
 * (close, or the client's DISCONNECT); a node goes when its count reaches
 * zero, so the zone holds the users connected now, not every user seen.
 *
 * Departures from limit_conn: the count is taken after the session is
 * checked (a refused token never takes a place), and a full zone refuses
 * the CONNECT ("Internal server error", logged) rather than letting a
 * socket in uncounted.  The zone survives a reload (same name, size and
 * tag): the old workers' sockets give their places back as they close.
 * Like limit_conn, a worker that crashes leaves its places taken.
 */

#include "ngx_http_ticket_module.h"

#define NGX_HTTP_TICKET_WS_USERS_ZONE  "ticket_socketio_users"

typedef struct {
    ngx_rbtree_t       rbtree;
    ngx_rbtree_node_t  sentinel;
} ngx_http_ticket_ws_users_sh_t;

typedef struct {
    ngx_http_ticket_ws_users_sh_t  *sh;
    ngx_slab_pool_t                *shpool;
} ngx_http_ticket_ws_users_ctx_t;

/* follows its ngx_rbtree_node_t in the same slab allocation */
typedef struct {
    ngx_uint_t  count;
    u_char      id[TS_OID_LEN];
} ngx_http_ticket_ws_user_t;

#define ngx_http_ticket_ws_user(node)                                        \
    ((ngx_http_ticket_ws_user_t *) ((ngx_rbtree_node_t *) (node) + 1))


static void
ngx_http_ticket_ws_users_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t  **p;

    for ( ;; ) {
        if (node->key < temp->key) {
            p = &temp->left;
        } else if (node->key > temp->key) {
            p = &temp->right;
        } else {
            p = (ngx_memcmp(ngx_http_ticket_ws_user(node)->id,
                            ngx_http_ticket_ws_user(temp)->id, TS_OID_LEN)
                 < 0) ? &temp->left : &temp->right;
        }
        if (*p == sentinel) {
            break;
        }
        temp = *p;
    }
    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_rbtree_node_t *
ngx_http_ticket_ws_users_lookup(ngx_http_ticket_ws_users_sh_t *sh,
    const u_char *id, uint32_t hash)
{
    ngx_rbtree_node_t  *node = sh->rbtree.root;
    ngx_rbtree_node_t  *sentinel = sh->rbtree.sentinel;
    ngx_int_t           rc;

    while (node != sentinel) {
        if (hash < node->key) {
            node = node->left;
            continue;
        }
        if (hash > node->key) {
            node = node->right;
            continue;
        }
        rc = ngx_memcmp(id, ngx_http_ticket_ws_user(node)->id, TS_OID_LEN);
        if (rc == 0) {
            return node;
        }
        node = (rc < 0) ? node->left : node->right;
    }
    return NULL;
}


static ngx_int_t
ngx_http_ticket_ws_users_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ticket_ws_users_ctx_t  *octx = data;
    ngx_http_ticket_ws_users_ctx_t  *ctx = shm_zone->data;
    size_t                           len;

    if (octx) {
        /* a reload: the counts of the sockets still open stay */
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_alloc(ctx->shpool,
                             sizeof(ngx_http_ticket_ws_users_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }
    ctx->shpool->data = ctx->sh;
    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_http_ticket_ws_users_insert);

    len = sizeof(" in ticket_socketio_user_sockets zone \"\"")
          + shm_zone->shm.name.len;
    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }
    ngx_sprintf(ctx->shpool->log_ctx,
                " in ticket_socketio_user_sockets zone \"%V\"%Z",
                &shm_zone->shm.name);
    ctx->shpool->log_nomem = 0;
    return NGX_OK;
}


char *
ngx_http_ticket_ws_users_conf(ngx_conf_t *cf,
    ngx_http_ticket_main_conf_t *tmcf)
{
    ngx_str_t                        name = ngx_string(
                                                NGX_HTTP_TICKET_WS_USERS_ZONE);
    ngx_http_ticket_ws_users_ctx_t  *ctx;

    ngx_conf_init_uint_value(tmcf->ws_user_sockets, 32);
    ngx_conf_init_size_value(tmcf->ws_users_size, 1024 * 1024);

    if (!tmcf->socketio_used || tmcf->ws_user_sockets == 0) {
        return NGX_CONF_OK;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_ticket_ws_users_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }
    tmcf->ws_users = ngx_shared_memory_add(cf, &name, tmcf->ws_users_size,
                                           &ngx_http_ticket_module);
    if (tmcf->ws_users == NULL) {
        return NGX_CONF_ERROR;
    }
    tmcf->ws_users->init = ngx_http_ticket_ws_users_init_zone;
    tmcf->ws_users->data = ctx;
    return NGX_CONF_OK;
}


char *
ngx_http_ticket_ws_user_sockets(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ticket_main_conf_t  *tmcf = conf;
    ngx_str_t                    *value = cf->args->elts, s;
    ngx_int_t                     n;
    ssize_t                       size;

    if (tmcf->ws_user_sockets != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }
    n = ngx_atoi(value[1].data, value[1].len);
    if (n == NGX_ERROR || n > 65535) {
        return "wants a number of sockets from 0 (no limit) to 65535";
    }
    tmcf->ws_user_sockets = (ngx_uint_t) n;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "zone=", 5) != 0) {
            return "wants \"zone=size\" after the number";
        }
        s.data = value[2].data + 5;
        s.len = value[2].len - 5;
        size = ngx_parse_size(&s);
        if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
            return "wants a zone of at least 32k";
        }
        tmcf->ws_users_size = (size_t) size;
    }
    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_ticket_ws_users_acquire(ngx_http_ticket_main_conf_t *tmcf,
    const char *user_id)
{
    ngx_http_ticket_ws_users_ctx_t  *ctx;
    ngx_rbtree_node_t               *node;
    ngx_http_ticket_ws_user_t       *u;
    uint32_t                         hash;
    ngx_int_t                        rc = NGX_OK;

    if (tmcf->ws_users == NULL) {
        return NGX_OK;                          /* no limit */
    }
    ctx = tmcf->ws_users->data;
    hash = ngx_crc32_short((u_char *) user_id, TS_OID_LEN);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    node = ngx_http_ticket_ws_users_lookup(ctx->sh, (u_char *) user_id,
                                           hash);
    if (node != NULL) {
        u = ngx_http_ticket_ws_user(node);
        if (u->count >= tmcf->ws_user_sockets) {
            rc = NGX_DECLINED;
        } else {
            u->count++;
        }

    } else {
        node = ngx_slab_alloc_locked(ctx->shpool, sizeof(ngx_rbtree_node_t)
                                     + sizeof(ngx_http_ticket_ws_user_t));
        if (node == NULL) {
            rc = NGX_ERROR;
        } else {
            node->key = hash;
            u = ngx_http_ticket_ws_user(node);
            u->count = 1;
            ngx_memcpy(u->id, user_id, TS_OID_LEN);
            ngx_rbtree_insert(&ctx->sh->rbtree, node);
        }
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "socket.io: zone \"%V\" is full, refusing a CONNECT; "
                      "raise ticket_socketio_user_sockets zone=",
                      &tmcf->ws_users->shm.name);
    }
    return rc;
}


void
ngx_http_ticket_ws_users_release(ngx_http_ticket_main_conf_t *tmcf,
    const char *user_id)
{
    ngx_http_ticket_ws_users_ctx_t  *ctx;
    ngx_rbtree_node_t               *node;
    ngx_http_ticket_ws_user_t       *u;
    uint32_t                         hash;

    if (tmcf->ws_users == NULL) {
        return;
    }
    ctx = tmcf->ws_users->data;
    hash = ngx_crc32_short((u_char *) user_id, TS_OID_LEN);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    node = ngx_http_ticket_ws_users_lookup(ctx->sh, (u_char *) user_id,
                                           hash);
    if (node != NULL) {
        u = ngx_http_ticket_ws_user(node);
        if (--u->count == 0) {
            ngx_rbtree_delete(&ctx->sh->rbtree, node);
            ngx_slab_free_locked(ctx->shpool, node);
        }
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}

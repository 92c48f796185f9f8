/*
 * ngx_http_ticket_metrics: the "ticket_metrics" directive, the counters
 * the module's files add to, and the daemon's block of metrics.  See the
 * top of ngx_http_ticket_metrics.c.
 *
 * Every hook is a no-op when no location has ticket_metrics (no zone).
 */

#ifndef NGX_HTTP_TICKET_METRICS_H
#define NGX_HTTP_TICKET_METRICS_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

/* "ticket_metrics": the content handler, and the zone on first use. */
char *ngx_http_ticket_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* Postconfiguration: the log-phase counter of API requests. */
ngx_int_t ngx_http_ticket_metrics_init(ngx_conf_t *cf);

/* A worker starts: find the zone, claim this worker's link slot. */
void ngx_http_ticket_metrics_init_process(ngx_cycle_t *cycle);

/* Socket.IO sockets and rooms of this worker come and go (gauges). */
void ngx_http_ticket_metrics_sockets(ngx_int_t delta);
void ngx_http_ticket_metrics_rooms(ngx_int_t delta);

/* An event from ticketd was queued on a socket. */
void ngx_http_ticket_metrics_delivered(void);

/* This worker's link to ticketd went up (1) or down (0). */
void ngx_http_ticket_metrics_link(ngx_uint_t up);

/*
 * A frame from ticketd: NGX_DECLINED when it is not a metrics frame (the
 * caller handles it), else NGX_OK -- its text kept for the handler when
 * it passes the checks, dropped (and logged) when it does not.
 */
ngx_int_t ngx_http_ticket_metrics_daemon(const char *payload, size_t len);

/* ngx_http_ticket_limit.c: each(zone name, requests it refused, arg) for
 * every ticket_limit_zone of the running configuration. */
typedef void (*ngx_http_ticket_limit_each_pt)(ngx_str_t *zone,
    ngx_atomic_uint_t rejected, void *arg);
void ngx_http_ticket_limit_each(ngx_cycle_t *cycle,
    ngx_http_ticket_limit_each_pt each, void *arg);

#endif /* NGX_HTTP_TICKET_METRICS_H */

/*
 * ngx_http_ticket_daemon_module: the directives of ticketd's own work.
 *
 * nginx.conf is the one configuration (DESIGN.md section 7): ticketd
 * reads the same file (ticketd -c, daemon/options.c) and takes these
 * directives from the http block.  The workers do not use them; they are
 * declared here so nginx accepts them, and checked here the way ticketd
 * checks them (the same ranges, the same shared parsers), so `nginx -t`
 * rejects a bad value as `ticketd -t` does.  A module of its own keeps
 * them apart from the directives the workers run on.
 *
 * Secrets are files (ticket_*_file): nginx checks that they can be read,
 * ticketd reads them.
 */

#include "ts_assign.h"
#include "ts_mail.h"
#include "ts_validate.h"
#include "ngx_http_ticket_module.h"

typedef struct {
    ngx_conf_post_handler_pt  post_handler;
    ngx_msec_t                low, high;
    const char               *range;
} ngx_http_ticket_msec_bounds_t;

typedef struct {
    ngx_uint_t          ai_provider;
    ngx_str_t           ai_url;
    ngx_str_t           ai_model;
    ngx_str_t           ai_key_file;
    ngx_msec_t          ai_timeout;
    ngx_int_t           ai_concurrency;
    ngx_uint_t          mail_transport;
    ngx_str_t           mail_from;
    ngx_str_t           mail_reply_to;
    ngx_str_t           sendgrid_key_file;
    ngx_str_t           sendgrid_url;
    ngx_str_t           smtp_url;
    ngx_str_t           smtp_user;
    ngx_str_t           smtp_password_file;
    ngx_str_t           outbox;
    ngx_str_t           public_url;
    ngx_flag_t          assign_weights;   /* set: the words were checked */
    ngx_int_t           assign_capacity;
    ngx_msec_t          assign_target;
    ngx_flag_t          assign_tie_window;
    ngx_msec_t          presence_grace;
    ngx_int_t           jobs;
    ngx_msec_t          job_lease;
    ngx_int_t           job_retention;        /* seconds; 0 = off */
    ngx_int_t           assign_absence;       /* seconds; 0 = off */
    ngx_int_t           dead_job_retention;
    ngx_str_t           daemon_log;
    ngx_str_t           daemon_pidfile;
} ngx_http_ticket_daemon_conf_t;

static void *ngx_http_ticket_daemon_create_conf(ngx_conf_t *cf);
static char *ngx_http_ticket_daemon_url(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ticket_daemon_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ticket_daemon_address(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ticket_daemon_weights(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ticket_daemon_tie_window(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ticket_daemon_retention(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ticket_daemon_msec_bounds(ngx_conf_t *cf, void *post,
    void *data);


static ngx_conf_enum_t  ngx_http_ticket_ai_providers[] = {
    { ngx_string("offline"), 0 },
    { ngx_string("gemini"), 1 },
    { ngx_string("openai"), 2 },
    { ngx_null_string, 0 }
};

static ngx_conf_enum_t  ngx_http_ticket_mail_transports[] = {
    { ngx_string("outbox"), 0 },
    { ngx_string("sendgrid"), 1 },
    { ngx_string("smtp"), 2 },
    { ngx_null_string, 0 }
};

/* the ranges ticketd's reader (daemon/options.c) holds too */
static ngx_conf_num_bounds_t  ngx_http_ticket_concurrency_bounds = {
    ngx_http_ticket_num_bounds, 1, 100000
};
static ngx_conf_num_bounds_t  ngx_http_ticket_jobs_bounds = {
    ngx_http_ticket_num_bounds, 0, 100000
};
static ngx_conf_num_bounds_t  ngx_http_ticket_capacity_bounds = {
    ngx_http_ticket_num_bounds, 1, 100000
};
static ngx_http_ticket_msec_bounds_t  ngx_http_ticket_ai_timeout_bounds = {
    ngx_http_ticket_daemon_msec_bounds, 1000, 3600000, "1s and 1h"
};
static ngx_http_ticket_msec_bounds_t  ngx_http_ticket_grace_bounds = {
    ngx_http_ticket_daemon_msec_bounds, 0, 3600000, "0 and 1h"
};
static ngx_http_ticket_msec_bounds_t  ngx_http_ticket_lease_bounds = {
    ngx_http_ticket_daemon_msec_bounds, 1000, 86400000, "1s and 1d"
};
static ngx_http_ticket_msec_bounds_t  ngx_http_ticket_target_bounds = {
    ngx_http_ticket_daemon_msec_bounds, 60000, 365ULL * 86400000, "1m and 1y"
};


#define NGX_HTTP_TICKET_DAEMON_CMD(name, type, set, field, post)            \
    { ngx_string(name), NGX_HTTP_MAIN_CONF|type, set,                       \
      NGX_HTTP_MAIN_CONF_OFFSET,                                            \
      offsetof(ngx_http_ticket_daemon_conf_t, field), post }

static ngx_command_t  ngx_http_ticket_daemon_commands[] = {

    NGX_HTTP_TICKET_DAEMON_CMD("ticket_ai_provider", NGX_CONF_TAKE1,
        ngx_conf_set_enum_slot, ai_provider, &ngx_http_ticket_ai_providers),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_ai_url", NGX_CONF_TAKE1,
        ngx_http_ticket_daemon_url, ai_url, "http https"),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_ai_model", NGX_CONF_TAKE1,
        ngx_conf_set_str_slot, ai_model, NULL),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_ai_key_file", NGX_CONF_TAKE1,
        ngx_http_ticket_daemon_file, ai_key_file, NULL),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_ai_timeout", NGX_CONF_TAKE1,
        ngx_conf_set_msec_slot, ai_timeout,
        &ngx_http_ticket_ai_timeout_bounds),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_ai_concurrency", NGX_CONF_TAKE1,
        ngx_conf_set_num_slot, ai_concurrency,
        &ngx_http_ticket_concurrency_bounds),

    NGX_HTTP_TICKET_DAEMON_CMD("ticket_mail_transport", NGX_CONF_TAKE1,
        ngx_conf_set_enum_slot, mail_transport,
        &ngx_http_ticket_mail_transports),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_mail_from", NGX_CONF_TAKE1,
        ngx_http_ticket_daemon_address, mail_from, NULL),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_mail_reply_to", NGX_CONF_TAKE1,
        ngx_http_ticket_daemon_address, mail_reply_to, NULL),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_sendgrid_key_file", NGX_CONF_TAKE1,
        ngx_http_ticket_daemon_file, sendgrid_key_file, NULL),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_sendgrid_url", NGX_CONF_TAKE1,
        ngx_http_ticket_daemon_url, sendgrid_url, "http https"),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_smtp_url", NGX_CONF_TAKE1,
        ngx_http_ticket_daemon_url, smtp_url, "smtp smtps"),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_smtp_user", NGX_CONF_TAKE1,
        ngx_conf_set_str_slot, smtp_user, NULL),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_smtp_password_file", NGX_CONF_TAKE1,
        ngx_http_ticket_daemon_file, smtp_password_file, NULL),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_outbox", NGX_CONF_TAKE1,
        ngx_conf_set_str_slot, outbox, NULL),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_public_url", NGX_CONF_TAKE1,
        ngx_http_ticket_daemon_url, public_url, "http https"),

    NGX_HTTP_TICKET_DAEMON_CMD("ticket_assign_weights", NGX_CONF_1MORE,
        ngx_http_ticket_daemon_weights, assign_weights, NULL),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_assign_capacity", NGX_CONF_TAKE1,
        ngx_conf_set_num_slot, assign_capacity,
        &ngx_http_ticket_capacity_bounds),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_assign_target", NGX_CONF_TAKE1,
        ngx_conf_set_msec_slot, assign_target,
        &ngx_http_ticket_target_bounds),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_assign_tie_window", NGX_CONF_TAKE1,
        ngx_http_ticket_daemon_tie_window, assign_tie_window, NULL),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_assign_absence", NGX_CONF_TAKE1,
        ngx_http_ticket_daemon_retention, assign_absence, NULL),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_presence_grace", NGX_CONF_TAKE1,
        ngx_conf_set_msec_slot, presence_grace,
        &ngx_http_ticket_grace_bounds),

    NGX_HTTP_TICKET_DAEMON_CMD("ticket_jobs", NGX_CONF_TAKE1,
        ngx_conf_set_num_slot, jobs, &ngx_http_ticket_jobs_bounds),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_job_lease", NGX_CONF_TAKE1,
        ngx_conf_set_msec_slot, job_lease, &ngx_http_ticket_lease_bounds),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_job_retention", NGX_CONF_TAKE1,
        ngx_http_ticket_daemon_retention, job_retention, NULL),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_dead_job_retention", NGX_CONF_TAKE1,
        ngx_http_ticket_daemon_retention, dead_job_retention, NULL),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_daemon_log", NGX_CONF_TAKE1,
        ngx_conf_set_str_slot, daemon_log, NULL),
    NGX_HTTP_TICKET_DAEMON_CMD("ticket_daemon_pidfile", NGX_CONF_TAKE1,
        ngx_conf_set_str_slot, daemon_pidfile, NULL),

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ticket_daemon_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_ticket_daemon_create_conf,    /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_ticket_daemon_module = {
    NGX_MODULE_V1,
    &ngx_http_ticket_daemon_module_ctx,    /* module context */
    ngx_http_ticket_daemon_commands,       /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_ticket_daemon_create_conf(ngx_conf_t *cf)
{
    ngx_http_ticket_daemon_conf_t  *dcf;

    dcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ticket_daemon_conf_t));
    if (dcf == NULL) {
        return NULL;
    }

    /* set by ngx_pcalloc(): every ngx_str_t = { 0, NULL } */

    dcf->ai_provider = NGX_CONF_UNSET_UINT;
    dcf->ai_timeout = NGX_CONF_UNSET_MSEC;
    dcf->ai_concurrency = NGX_CONF_UNSET;
    dcf->mail_transport = NGX_CONF_UNSET_UINT;
    dcf->assign_weights = NGX_CONF_UNSET;
    dcf->assign_capacity = NGX_CONF_UNSET;
    dcf->assign_target = NGX_CONF_UNSET_MSEC;
    dcf->assign_tie_window = NGX_CONF_UNSET;
    dcf->presence_grace = NGX_CONF_UNSET_MSEC;
    dcf->jobs = NGX_CONF_UNSET;
    dcf->job_lease = NGX_CONF_UNSET_MSEC;
    dcf->job_retention = NGX_CONF_UNSET;
    dcf->assign_absence = NGX_CONF_UNSET;
    dcf->dead_job_retention = NGX_CONF_UNSET;

    return dcf;
}


/* A URL of one of the schemes in cmd->post ("http https"). */
static char *
ngx_http_ticket_daemon_url(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t  *field = (ngx_str_t *) ((u_char *) conf + cmd->offset);
    ngx_str_t  *value;

    if (field->data != NULL) {
        return "is duplicate";
    }
    value = cf->args->elts;
    /* value[1] is NUL-terminated: ngx_conf_file adds one to every word */
    if (!ts_valid_url((const char *) value[1].data, cmd->post)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid URL \"%V\" in \"%V\": expected %s://"
                           "host[:port][/path]", &value[1], &cmd->name,
                           (char *) cmd->post);
        return NGX_CONF_ERROR;
    }
    *field = value[1];
    return NGX_CONF_OK;
}


/* A secret file ticketd will read: it must exist and be readable now. */
static char *
ngx_http_ticket_daemon_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t  *field = (ngx_str_t *) ((u_char *) conf + cmd->offset);
    ngx_str_t  *value, name;
    ngx_fd_t    fd;

    if (field->data != NULL) {
        return "is duplicate";
    }
    value = cf->args->elts;
    name = value[1];
    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }
    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%s\" failed", name.data);
        return NGX_CONF_ERROR;
    }
    ngx_close_file(fd);
    *field = name;
    return NGX_CONF_OK;
}


/* ticket_mail_from, ticket_mail_reply_to: "Name <addr>" or "addr". */
static char *
ngx_http_ticket_daemon_address(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_str_t  *field = (ngx_str_t *) ((u_char *) conf + cmd->offset);
    ngx_str_t  *value;

    if (field->data != NULL) {
        return "is duplicate";
    }
    value = cf->args->elts;
    if (ts_mail_address_check((const char *) value[1].data) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid address \"%V\" in \"%V\": expected "
                           "\"Name <address@domain>\" or \"address@domain\"",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }
    *field = value[1];
    return NGX_CONF_OK;
}


/* ticket_assign_weights skill=0.5 availability=0.3 performance=0.2 */
static char *
ngx_http_ticket_daemon_weights(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ticket_daemon_conf_t  *dcf = conf;

    ngx_str_t        *value;
    ngx_uint_t        i;
    ts_assign_cfg_t   acfg;
    ts_errmsg_t       err;

    if (dcf->assign_weights != NGX_CONF_UNSET) {
        return "is duplicate";
    }
    value = cf->args->elts;
    ts_assign_cfg_default(&acfg);
    for (i = 1; i < cf->args->nelts; i++) {
        if (ts_assign_cfg_weight(&acfg, (const char *) value[i].data, err)
            != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"ticket_assign_weights\": %s", err);
            return NGX_CONF_ERROR;
        }
    }
    if (ts_assign_cfg_check(&acfg, err) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"ticket_assign_weights\": %s", err);
        return NGX_CONF_ERROR;
    }
    dcf->assign_weights = 1;
    return NGX_CONF_OK;
}


/* ticket_assign_tie_window 0.05: a score difference from 0 to 1 */
static char *
ngx_http_ticket_daemon_tie_window(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ticket_daemon_conf_t  *dcf = conf;

    ngx_str_t  *value;
    double      x;

    if (dcf->assign_tie_window != NGX_CONF_UNSET) {
        return "is duplicate";
    }
    value = cf->args->elts;
    if (ts_assign_number((const char *) value[1].data, &x) != 0 || x > 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in "
                           "\"ticket_assign_tie_window\": expected a decimal "
                           "number from 0 to 1, such as 0.05", &value[1]);
        return NGX_CONF_ERROR;
    }
    dcf->assign_tie_window = 1;
    return NGX_CONF_OK;
}


/* ticket_job_retention 7d | off, ticket_assign_absence 2h | off */
static char *
ngx_http_ticket_daemon_retention(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_int_t  *field = (ngx_int_t *) ((u_char *) conf + cmd->offset);
    ngx_str_t  *value;
    time_t      t;

    if (*field != NGX_CONF_UNSET) {
        return "is duplicate";
    }
    value = cf->args->elts;
    if (ngx_strcmp(value[1].data, "off") == 0) {
        *field = 0;
        return NGX_CONF_OK;
    }
    t = ngx_parse_time(&value[1], 1);
    if (t == (time_t) NGX_ERROR || t < 1 || t > 3650L * 86400) {
        return "wants a time from 1s to 3650d, or \"off\"";
    }
    *field = t;
    return NGX_CONF_OK;
}


/* The post handler of a time directive: within [low, high]. */
static char *
ngx_http_ticket_daemon_msec_bounds(ngx_conf_t *cf, void *post, void *data)
{
    ngx_http_ticket_msec_bounds_t  *b = post;
    ngx_msec_t                     *mp = data;

    u_char  *msg;

    if (*mp >= b->low && *mp <= b->high) {
        return NGX_CONF_OK;
    }
    msg = ngx_pnalloc(cf->pool, sizeof("must be between ") + 32);
    if (msg == NULL) {
        return NGX_CONF_ERROR;
    }
    ngx_sprintf(msg, "must be between %s%Z", b->range);
    return (char *) msg;
}

/*
 * options: ticketd's settings, from nginx.conf (-c FILE: the ticket_*
 * directives of its http block and the main "user"), then the
 * command-line flags as overrides for development, then the checks that
 * need the files (secrets, keys).  -t checks and prints them, secrets
 * masked, and stops.
 */

#ifndef TICKETD_OPTIONS_H
#define TICKETD_OPTIONS_H

#include <stdint.h>

#include "conf.h"
#include "job_runner.h"
#include "ts_wire.h"

#define OPTIONS_RUN   -1            /* options_parse: go on and run */
#define OPTIONS_RETENTION_MAX_S  (3650L * 24 * 3600)

typedef struct {
    const char        *conf_file;          /* -c */
    int                test_only;          /* -t */
    const char        *socket_path;
    const char        *store_uri;
    const char        *log_path;
    const char        *pidfile;
    unsigned           sweep_interval;     /* seconds */
    long               job_retention;      /* seconds, 0 = keep */
    long               dead_job_retention; /* seconds, 0 = keep */
    int                verbose;
    job_runner_cfg_t   jobs;
    const char        *ai_key_file;
    const char        *sendgrid_key_file;
    const char        *smtp_password_file;
    const char        *redis_password_file;
    const char        *secret_path;        /* ticket_jwt_secret_file */
    const char        *link_user;          /* nginx's "user" */
    int                link_user_explicit; /* given, not nginx's default */
    const char        *mail_transport;     /* NULL: from the keys */
    char              *ai_key;             /* read from a file or env */
    char              *sendgrid_key;
    char              *smtp_password;
    uint64_t           presence_grace_ms;
    const char        *redis_url;          /* events between hosts */
    char              *redis_url_auth;     /* redis_url with the password
                                              of --redis-password-file */
    int                have_secret;        /* --jwt-secret-file read */
    size_t             secret_len;         /* for -t only */
    unsigned char      bridge_key[TS_WIRE_KEY_LEN];
    unsigned char      cache_key[TS_WIRE_KEY_LEN];
    /* what workers must send in hello (ts_wire_fingerprint); "" when
     * there is no secret to key them with */
    char               fp_store[TS_WIRE_FP_HEX + 1];
    char               fp_socket[TS_WIRE_FP_HEX + 1];
    char               fp_secret[TS_WIRE_FP_HEX + 1];
    conf_t             conf;               /* owns the strings of -c */
} options_t;

/*
 * Fill o from the file of -c (if any) and the flags; OPTIONS_RUN to run,
 * else the exit status (0 after --help or a successful -t; 1 for a bad
 * configuration, 2 for bad usage), the reason printed on stderr.
 */
int options_parse(int argc, char **argv, options_t *o);

/*
 * Read o->conf_file into o->conf and take nginx's "user" and the
 * ticket_* directives of its http block into o (options_conf.c).  0, or
 * -1 with the reason, file:line as nginx gives it, on stderr.
 */
int options_conf(options_t *o);

/* Release what options_parse allocated, secrets wiped. */
void options_free(options_t *o);

/* The Redis URL to connect with (the password inside when one was given
 * in a file), or NULL for none. */
const char *options_redis_url(const options_t *o);

/* The store URI as it may appear in a log: the "sqlite:" prefix dropped,
 * and any user:password@ in a network URI masked. */
void options_store_for_log(const char *uri, char *buf, size_t size);

#endif /* TICKETD_OPTIONS_H */

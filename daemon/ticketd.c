/*
 * ticketd: entry point of the daemon.
 *
 * Owns the command line, the process lifecycle and the signals:
 *
 *   start:  options -> log -> open the store off the loop -> job counts
 *           -> listen on the socket -> pidfile -> housekeeping timer
 *   stop:   (SIGTERM, SIGINT, or a startup failure) stop accepting and
 *           close links -> stop the timer -> let store work in flight
 *           finish and close the store -> close the signal handles, which
 *           ends uv_run -> remove the pidfile -> "stopped"
 *
 * The loop runs until no handle is left, so "every handle closed" is the
 * one condition for exit; nothing calls exit() once the loop runs.
 * SIGHUP reopens the log file.  SIGPIPE is ignored (a worker that went away
 * is a failed write on that link, nothing more).
 */

#define _GNU_SOURCE             /* asprintf */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "housekeeping.h"
#include "http_client.h"
#include "job_runner.h"
#include "link_server.h"
#include "log.h"
#include "metrics.h"
#include "presence.h"
#include "redis_bridge.h"
#include "store_pool.h"
#include "ts_cache.h"
#include "ts_wire.h"

#define SWEEP_DEFAULT_S   600
#define SWEEP_MAX_S       (7 * 24 * 3600)
#define JOB_RETENTION_S        (7 * 24 * 3600)     /* done jobs */
#define DEAD_JOB_RETENTION_S   (30 * 24 * 3600)    /* dead jobs */
#define RETENTION_MAX_S        (3650L * 24 * 3600)
#define EXIT_USAGE        2
#define SECRET_MIN        32       /* as ticket_jwt_secret_file */
#define SECRET_MAX        4096

typedef struct {
    const char        *socket_path;
    const char        *store_uri;
    const char        *log_path;
    const char        *pidfile;
    unsigned           sweep_interval;     /* seconds */
    long               job_retention;      /* seconds, 0 = keep */
    long               dead_job_retention; /* seconds, 0 = keep */
    int                verbose;
    job_runner_cfg_t   jobs;
    char              *ai_key;             /* read from a file or env */
    char              *sendgrid_key;
    char              *smtp_password;
    uint64_t           presence_grace_ms;
    const char        *redis_url;          /* events between hosts */
    char              *redis_url_auth;     /* redis_url with the password
                                              of --redis-password-file */
    int                have_secret;        /* --jwt-secret-file read */
    unsigned char      bridge_key[TS_WIRE_KEY_LEN];
    unsigned char      cache_key[TS_WIRE_KEY_LEN];
} options_t;

static struct {
    uv_loop_t     loop;
    options_t     opt;
    uv_signal_t   signals[3];        /* SIGTERM, SIGINT, SIGHUP */
    int           nsignals;          /* initialised, to close at the end */
    int           stopping;
    int           exit_code;
    int           pidfile_written;

    /* Startup job counts: written by the pool thread, read in its done. */
    ts_rc_e          counts_rc;
    ts_job_counts_t  counts;
    char             counts_err[256];
} td;

static void daemon_stop(int exit_code);

/* --- options ---------------------------------------------------------- */

static void
usage(FILE *f)
{
    fprintf(f,
        "usage: ticketd --socket PATH --store URI [--log FILE]"
        " [--pidfile FILE]\n"
        "               [--sweep-interval SECONDS] [--verbose] [-h]\n"
        "\n"
        "  --socket PATH            Unix socket the nginx workers connect"
        " to\n"
        "                           (default: $TICKETD_SOCKET)\n"
        "  --store URI              sqlite:/path/to/file.db or"
        " mongodb://host/db\n"
        "                           (default: $TICKETD_STORE)\n"
        "  --log FILE               append log lines to FILE, reopened on"
        " SIGHUP\n"
        "                           (default: stderr)\n"
        "  --pidfile FILE           write the process id to FILE\n"
        "  --sweep-interval SECONDS purge expired rows every SECONDS"
        " (default %d)\n"
        "  --job-retention SECONDS  delete done jobs this long after they"
        " finished\n"
        "                           (default %d, 7 days; 0: keep them)\n"
        "  --dead-job-retention SECONDS  delete dead jobs this long after"
        " they died\n"
        "                           (default %d, 30 days; 0: keep them)\n"
        "  -v, --verbose            log debug lines too\n"
        "  -h, --help               show this help\n"
        "\n"
        "background jobs:\n"
        "  --jobs N                 jobs in flight (default 64; 0: run"
        " none)\n"
        "  --lease SECONDS          a claimed job's lease (default 60)\n"
        "  --retry-base-ms MS       first retry delay, doubling (default"
        " 2000)\n"
        "  --poll-ms MS             sweep for due jobs (default 1000)\n"
        "  --triage-provider NAME   offline | gemini | openai (default"
        " offline;\n"
        "                           without a key: offline)\n"
        "  --ai-url URL             provider base URL (gemini: Google's,\n"
        "                           openai: https://api.openai.com)\n"
        "  --ai-model NAME          gemini-2.0-flash / gpt-4o-mini\n"
        "  --ai-key-file FILE       API key (default: $GEMINI_API_KEY or\n"
        "                           $OPENAI_API_KEY)\n"
        "  --ai-timeout-ms MS       per call (default 30000)\n"
        "  --ai-concurrency N       provider calls in flight (default 16)\n"
        "  --mail-transport NAME    outbox | sendgrid | smtp (default:"
        " sendgrid\n"
        "                           when a SendGrid key is set, else"
        " outbox)\n"
        "  --outbox DIR             outbox folder (default ./outbox)\n"
        "  --sendgrid-url URL       default https://api.sendgrid.com\n"
        "  --sendgrid-key-file FILE default: $SENDGRID_API_KEY\n"
        "  --smtp-url URL           smtp://host:port or smtps://...\n"
        "  --smtp-user NAME\n"
        "  --smtp-password-file FILE  default: $SMTP_PASSWORD\n"
        "  --redis URL              redis://host[:port][/db]: events to"
        " and from\n"
        "                           other hosts' ticketd (pub/sub), and"
        " what the\n"
        "                           jobs write invalidates nginx's cache;"
        " needs\n"
        "                           --jwt-secret-file\n"
        "  --redis-password-file FILE  Redis AUTH password (never in the"
        " URL:\n"
        "                           a command line is public)\n"
        "  --jwt-secret-file FILE   the file of ticket_jwt_secret_file: the"
        " keys that\n"
        "                           sign bridge messages and cached pages"
        " derive\n"
        "                           from it\n"
        "  --link-user NAME         also let this user's processes (nginx's"
        " \"user\",\n"
        "                           e.g. www-data) link; root and ticketd's"
        " own\n"
        "                           user always may, others are refused\n"
        "  --presence-grace-ms MS   offline this long after the last socket"
        " closes\n"
        "                           (default 5000)\n"
        "  --mail-from ADDRESS      default \"Ticket Assistant"
        " <no-reply@example.com>\"\n",
        SWEEP_DEFAULT_S, JOB_RETENTION_S, DEAD_JOB_RETENTION_S);
}

static const char *
env_default(const char *name)
{
    const char  *v = getenv(name);

    return v != NULL && *v != '\0' ? v : NULL;
}

/* A secret from a file (first line, trimmed); NULL and errno on failure. */
static char *
secret_file(const char *path)
{
    FILE    *f = fopen(path, "r");
    char     buf[1024];
    size_t   n;

    if (f == NULL) {
        return NULL;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    return strdup(buf);
}


/*
 * The wire keys from the JWT secret file, read as nginx reads
 * ticket_jwt_secret_file (the whole file, trailing CR/LF dropped, 32 to
 * 4096 bytes), so both derive the same keys.  0, or -1 (reported).
 */
static int
options_secret(options_t *o, const char *path)
{
    unsigned char  buf[SECRET_MAX + 3];     /* + "\r\n", + 1 too many */
    size_t         n;
    FILE          *f = fopen(path, "r");

    if (f == NULL) {
        fprintf(stderr, "ticketd: cannot read %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    while (n > 0 && n < sizeof(buf)
           && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    {
        n--;
    }
    if (n > SECRET_MAX) {
        fprintf(stderr, "ticketd: the secret in %s is larger than %d bytes"
                "\n", path, SECRET_MAX);
        OPENSSL_cleanse(buf, sizeof(buf));
        return -1;
    }
    if (n < SECRET_MIN) {
        fprintf(stderr, "ticketd: the secret in %s is shorter than %d bytes"
                "\n", path, SECRET_MIN);
        OPENSSL_cleanse(buf, sizeof(buf));
        return -1;
    }
    ts_wire_derive(buf, n, TS_WIRE_LABEL_BRIDGE, o->bridge_key);
    ts_wire_derive(buf, n, TS_WIRE_LABEL_CACHE, o->cache_key);
    OPENSSL_cleanse(buf, sizeof(buf));
    o->have_secret = 1;
    return 0;
}


/*
 * --redis, --redis-password-file: a password is refused in the URL (argv
 * is readable by every local user in /proc/<pid>/cmdline) and taken from
 * the file instead; the URL used inside carries it.  0, or -1 (reported).
 */
static int
options_redis(options_t *o, const char *pw_file)
{
    ts_redis_url_t   url;
    char             err[128], *pw;
    size_t           n;

    if (o->redis_url == NULL) {
        if (pw_file != NULL) {
            fprintf(stderr, "ticketd: --redis-password-file needs --redis"
                    "\n");
            return -1;
        }
        return 0;
    }
    if (ts_redis_url_parse(o->redis_url, &url, err, sizeof(err)) != 0) {
        fprintf(stderr, "ticketd: --redis: %s\n", err);
        return -1;
    }
    if (url.password[0] != '\0') {
        OPENSSL_cleanse(&url, sizeof(url));
        fprintf(stderr, "ticketd: --redis: no password in the URL (every"
                " local user can read a command line); put it in a file"
                " readable only by ticketd and pass --redis-password-file"
                " FILE\n");
        return -1;
    }
    if (!o->have_secret) {
        fprintf(stderr, "ticketd: --redis needs --jwt-secret-file FILE (the"
                " file of ticket_jwt_secret_file): bridge messages and"
                " cached pages are signed with keys derived from it\n");
        return -1;
    }
    if (pw_file == NULL) {
        return 0;
    }
    pw = secret_file(pw_file);
    if (pw == NULL) {
        fprintf(stderr, "ticketd: cannot read %s: %s\n", pw_file,
                strerror(errno));
        return -1;
    }
    n = strlen(pw);
    if (n == 0 || n >= sizeof(url.password)) {
        fprintf(stderr, "ticketd: the password in %s must be 1 to %zu"
                " bytes\n", pw_file, sizeof(url.password) - 1);
        OPENSSL_cleanse(pw, n);
        free(pw);
        return -1;
    }
    /* ts_redis_url_parse takes the password up to the last '@' */
    if (asprintf(&o->redis_url_auth, "redis://:%s@%s", pw,
                 o->redis_url + 8) < 0)
    {
        o->redis_url_auth = NULL;
    }
    OPENSSL_cleanse(pw, n);
    free(pw);
    if (o->redis_url_auth == NULL) {
        fprintf(stderr, "ticketd: out of memory\n");
        return -1;
    }
    return 0;
}


/* --link-user NAME: 0, or -1 (reported). */
static int
options_link_user(const char *name)
{
    struct passwd  *pw;

    errno = 0;
    pw = getpwnam(name);
    if (pw == NULL) {
        fprintf(stderr, "ticketd: --link-user: no user \"%s\"%s%s\n", name,
                errno ? ": " : "", errno ? strerror(errno) : "");
        return -1;
    }
    link_server_allow_uid(pw->pw_uid);
    return 0;
}


/* A positive integer option value within [min, max], or -1. */
static long
option_num(const char *name, const char *v, long min, long max)
{
    char  *end;
    long   n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < min || n > max) {
        fprintf(stderr, "ticketd: --%s wants a number from %ld to %ld, not"
                " \"%s\"\n", name, min, max, v);
        return -1;
    }
    return n;
}


/* Keys, provider defaults and the mail transport; 0 or -1 (reported). */
static int
options_jobs(options_t *o, const char *ai_key_file, const char *sg_key_file,
    const char *smtp_pw_file, const char *transport)
{
    job_runner_cfg_t  *jc = &o->jobs;
    int                gemini = strcmp(jc->provider, "gemini") == 0;
    const char        *env;

    if (ai_key_file) {
        o->ai_key = secret_file(ai_key_file);
        if (o->ai_key == NULL) {
            fprintf(stderr, "ticketd: cannot read %s: %s\n", ai_key_file,
                    strerror(errno));
            return -1;
        }
    } else if (strcmp(jc->provider, "offline") != 0) {
        env = env_default(gemini ? "GEMINI_API_KEY" : "OPENAI_API_KEY");
        o->ai_key = env ? strdup(env) : NULL;
    }
    if (o->ai_key != NULL && *o->ai_key == '\0') {
        free(o->ai_key);
        o->ai_key = NULL;
    }
    jc->ai_key = o->ai_key;
    if (jc->ai_url == NULL) {
        jc->ai_url = gemini ? "https://generativelanguage.googleapis.com"
                            : "https://api.openai.com";
    }
    if (jc->ai_model == NULL) {
        jc->ai_model = gemini ? "gemini-2.0-flash" : "gpt-4o-mini";
    }

    if (sg_key_file) {
        o->sendgrid_key = secret_file(sg_key_file);
        if (o->sendgrid_key == NULL) {
            fprintf(stderr, "ticketd: cannot read %s: %s\n", sg_key_file,
                    strerror(errno));
            return -1;
        }
    } else if ((env = env_default("SENDGRID_API_KEY")) != NULL) {
        o->sendgrid_key = strdup(env);
    }
    jc->sendgrid_key = o->sendgrid_key;
    if (jc->sendgrid_url == NULL) {
        jc->sendgrid_url = "https://api.sendgrid.com";
    }
    if (smtp_pw_file) {
        o->smtp_password = secret_file(smtp_pw_file);
        if (o->smtp_password == NULL) {
            fprintf(stderr, "ticketd: cannot read %s: %s\n", smtp_pw_file,
                    strerror(errno));
            return -1;
        }
    } else if ((env = env_default("SMTP_PASSWORD")) != NULL) {
        o->smtp_password = strdup(env);
    }
    jc->smtp_password = o->smtp_password;

    jc->mail_transport = transport ? transport
                         : jc->sendgrid_key ? "sendgrid" : "outbox";
    if (strcmp(jc->mail_transport, "smtp") == 0 && jc->smtp_url == NULL) {
        fprintf(stderr, "ticketd: --mail-transport smtp needs --smtp-url\n");
        return -1;
    }
    if (strcmp(jc->mail_transport, "sendgrid") == 0
        && jc->sendgrid_key == NULL)
    {
        fprintf(stderr, "ticketd: --mail-transport sendgrid needs a key"
                " (--sendgrid-key-file or $SENDGRID_API_KEY)\n");
        return -1;
    }
    return 0;
}


/* 0: run; 1: help was printed; -1: bad usage (reported on stderr). */
static int
options_parse(int argc, char **argv, options_t *o)
{
    static const struct option  longopts[] = {
        { "socket",         required_argument, NULL, 's' },
        { "store",          required_argument, NULL, 'S' },
        { "log",            required_argument, NULL, 'l' },
        { "pidfile",        required_argument, NULL, 'p' },
        { "sweep-interval", required_argument, NULL, 'i' },
        { "verbose",        no_argument,       NULL, 'v' },
        { "help",           no_argument,       NULL, 'h' },
        { "jobs",           required_argument, NULL, 1000 },
        { "lease",          required_argument, NULL, 1001 },
        { "retry-base-ms",  required_argument, NULL, 1002 },
        { "poll-ms",        required_argument, NULL, 1003 },
        { "triage-provider", required_argument, NULL, 1004 },
        { "ai-url",         required_argument, NULL, 1005 },
        { "ai-model",       required_argument, NULL, 1006 },
        { "ai-key-file",    required_argument, NULL, 1007 },
        { "ai-timeout-ms",  required_argument, NULL, 1008 },
        { "ai-concurrency", required_argument, NULL, 1009 },
        { "mail-transport", required_argument, NULL, 1010 },
        { "outbox",         required_argument, NULL, 1011 },
        { "sendgrid-url",   required_argument, NULL, 1012 },
        { "sendgrid-key-file", required_argument, NULL, 1013 },
        { "smtp-url",       required_argument, NULL, 1014 },
        { "smtp-user",      required_argument, NULL, 1015 },
        { "smtp-password-file", required_argument, NULL, 1016 },
        { "mail-from",      required_argument, NULL, 1017 },
        { "presence-grace-ms", required_argument, NULL, 1018 },
        { "redis",          required_argument, NULL, 1019 },
        { "job-retention",  required_argument, NULL, 1020 },
        { "dead-job-retention", required_argument, NULL, 1021 },
        { "redis-password-file", required_argument, NULL, 1022 },
        { "jwt-secret-file", required_argument, NULL, 1023 },
        { "link-user",      required_argument, NULL, 1024 },
        { NULL, 0, NULL, 0 }
    };
    job_runner_cfg_t  *jc = &o->jobs;
    const char        *ai_key_file = NULL, *sg_key_file = NULL;
    const char        *smtp_pw_file = NULL, *transport = NULL;
    const char        *redis_pw_file = NULL, *secret_path = NULL;
    const char        *link_user = NULL;
    long               v;
    char           *end;
    unsigned long   n;
    int             c, li = 0;

    memset(o, 0, sizeof(*o));
    job_runner_cfg_default(jc);
    o->socket_path = env_default("TICKETD_SOCKET");
    o->store_uri = env_default("TICKETD_STORE");
    o->sweep_interval = SWEEP_DEFAULT_S;
    o->job_retention = JOB_RETENTION_S;
    o->dead_job_retention = DEAD_JOB_RETENTION_S;
    o->presence_grace_ms = 5000;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hv", longopts, &li)) != -1) {
        switch (c) {
        case 's': o->socket_path = optarg; break;
        case 'S': o->store_uri = optarg; break;
        case 'l': o->log_path = optarg; break;
        case 'p': o->pidfile = optarg; break;
        case 'v': o->verbose = 1; break;
        case 'h': usage(stdout); return 1;

        case 'i':
            errno = 0;
            n = strtoul(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0'
                || optarg[0] == '-' || n < 1 || n > SWEEP_MAX_S)
            {
                fprintf(stderr, "ticketd: --sweep-interval wants whole"
                        " seconds from 1 to %d, not \"%s\"\n", SWEEP_MAX_S,
                        optarg);
                return -1;
            }
            o->sweep_interval = (unsigned) n;
            break;

        case 1000: case 1001: case 1002: case 1003: case 1008: case 1009:
            /* --jobs 0: no job runner (a hub-only daemon, or tests) */
            v = option_num(longopts[li].name, optarg, c == 1000 ? 0 : 1,
                           c == 1002 || c == 1003 || c == 1008
                           ? 3600000 : 100000);
            if (v < 0) {
                return -1;
            }
            if (c == 1000) {
                jc->concurrency = (int) v;
            } else if (c == 1001) {
                jc->lease_ms = (int64_t) v * 1000;
            } else if (c == 1002) {
                jc->retry_base_ms = v;
            } else if (c == 1003) {
                jc->poll_ms = (int) v;
            } else if (c == 1008) {
                jc->ai_timeout_ms = v;
            } else {
                jc->ai_concurrency = (int) v;
            }
            break;

        case 1004:
            if (strcmp(optarg, "offline") != 0 && strcmp(optarg, "gemini") != 0
                && strcmp(optarg, "openai") != 0)
            {
                fprintf(stderr, "ticketd: --triage-provider is offline,"
                        " gemini or openai, not \"%s\"\n", optarg);
                return -1;
            }
            jc->provider = optarg;
            break;
        case 1005: jc->ai_url = optarg; break;
        case 1006: jc->ai_model = optarg; break;
        case 1007: ai_key_file = optarg; break;
        case 1010:
            if (strcmp(optarg, "outbox") != 0 && strcmp(optarg, "sendgrid") != 0
                && strcmp(optarg, "smtp") != 0)
            {
                fprintf(stderr, "ticketd: --mail-transport is outbox,"
                        " sendgrid or smtp, not \"%s\"\n", optarg);
                return -1;
            }
            transport = optarg;
            break;
        case 1011: jc->outbox_dir = optarg; break;
        case 1012: jc->sendgrid_url = optarg; break;
        case 1013: sg_key_file = optarg; break;
        case 1014: jc->smtp_url = optarg; break;
        case 1015: jc->smtp_user = optarg; break;
        case 1016: smtp_pw_file = optarg; break;
        case 1017: jc->mail_from = optarg; break;
        case 1018:
            v = option_num(longopts[li].name, optarg, 0, 3600000);
            if (v < 0) {
                return -1;
            }
            o->presence_grace_ms = (uint64_t) v;
            break;
        case 1019: o->redis_url = optarg; break;
        case 1020: case 1021:
            v = option_num(longopts[li].name, optarg, 0, RETENTION_MAX_S);
            if (v < 0) {
                return -1;
            }
            if (c == 1020) {
                o->job_retention = v;
            } else {
                o->dead_job_retention = v;
            }
            break;
        case 1022: redis_pw_file = optarg; break;
        case 1023: secret_path = optarg; break;
        case 1024: link_user = optarg; break;

        case ':':
            fprintf(stderr, "ticketd: %s needs a value\n", argv[optind - 1]);
            usage(stderr);
            return -1;

        default:
            fprintf(stderr, "ticketd: unknown option %s\n",
                    argv[optind - 1]);
            usage(stderr);
            return -1;
        }
    }

    if (optind < argc) {
        fprintf(stderr, "ticketd: unexpected argument \"%s\"\n",
                argv[optind]);
        usage(stderr);
        return -1;
    }
    if (o->socket_path == NULL || *o->socket_path == '\0') {
        fprintf(stderr, "ticketd: --socket PATH (or TICKETD_SOCKET) is"
                " required\n");
        return -1;
    }
    if (strlen(o->socket_path) >= sizeof(((struct sockaddr_un *) 0)->sun_path))
    {
        fprintf(stderr, "ticketd: socket path is longer than %zu bytes: %s\n",
                sizeof(((struct sockaddr_un *) 0)->sun_path) - 1,
                o->socket_path);
        return -1;
    }
    if (o->store_uri == NULL || *o->store_uri == '\0') {
        fprintf(stderr, "ticketd: --store URI (or TICKETD_STORE) is"
                " required\n");
        return -1;
    }
    if ((o->log_path != NULL && *o->log_path == '\0')
        || (o->pidfile != NULL && *o->pidfile == '\0'))
    {
        fprintf(stderr, "ticketd: --log and --pidfile want a file name\n");
        return -1;
    }
    if ((secret_path != NULL && options_secret(o, secret_path) != 0)
        || options_redis(o, redis_pw_file) != 0
        || (link_user != NULL && options_link_user(link_user) != 0))
    {
        return -1;
    }
    return options_jobs(o, ai_key_file, sg_key_file, smtp_pw_file,
                        transport);
}


/* The Redis URL to connect with (the password inside when one was given
 * in a file), or NULL for none. */
static const char *
options_redis_url(const options_t *o)
{
    return o->redis_url_auth != NULL ? o->redis_url_auth : o->redis_url;
}

/*
 * The store URI as it may appear in a log: the "sqlite:" prefix dropped,
 * and any user:password@ in a network URI masked.
 */
static void
store_uri_for_log(const char *uri, char *buf, size_t size)
{
    const char  *auth, *at, *slash;

    if (strncmp(uri, "sqlite:", 7) == 0) {
        snprintf(buf, size, "%s", uri + 7);
        return;
    }
    auth = strstr(uri, "://");
    if (auth != NULL) {
        auth += 3;
        at = strchr(auth, '@');
        slash = strchr(auth, '/');
        if (at != NULL && (slash == NULL || at < slash)) {
            snprintf(buf, size, "%.*s***%s", (int) (auth - uri), uri, at);
            return;
        }
    }
    snprintf(buf, size, "%s", uri);
}

/* --- pidfile ---------------------------------------------------------- */

static int
pidfile_write(const char *path)
{
    char  buf[32];
    int   fd, n, ok;

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        return -1;
    }
    n = snprintf(buf, sizeof(buf), "%ld\n", (long) getpid());
    ok = write(fd, buf, (size_t) n) == n;
    if (close(fd) != 0) {
        ok = 0;
    }
    return ok ? 0 : -1;
}

/* --- startup ---------------------------------------------------------- */

static void
daemon_listen(void)
{
    char  err[512];

    if (link_server_start(&td.loop, td.opt.socket_path, err, sizeof(err))
        != 0)
    {
        log_error("%s", err);
        daemon_stop(1);
        return;
    }
    log_info("listening on %s", td.opt.socket_path);

    if (td.opt.pidfile != NULL) {
        if (pidfile_write(td.opt.pidfile) != 0) {
            log_error("cannot write pidfile %s: %s", td.opt.pidfile,
                      strerror(errno));
            unlink(td.opt.pidfile);
            daemon_stop(1);
            return;
        }
        td.pidfile_written = 1;
    }

    if (housekeeping_start(&td.loop,
                           (uint64_t) td.opt.sweep_interval * 1000,
                           (int64_t) td.opt.job_retention * 1000,
                           (int64_t) td.opt.dead_job_retention * 1000) != 0)
    {
        log_error("cannot start the housekeeping timer");
        daemon_stop(1);
        return;
    }
    if (td.opt.redis_url != NULL
        && redis_bridge_start(&td.loop, options_redis_url(&td.opt),
                              td.opt.bridge_key) != 0)
    {
        daemon_stop(1);
        return;
    }
    if (presence_start(&td.loop, td.opt.presence_grace_ms) != 0) {
        log_error("cannot start the presence timer");
        daemon_stop(1);
        return;
    }
    if (metrics_start(&td.loop, METRICS_PUSH_MS) != 0) {
        log_error("cannot start the metrics timer");
        daemon_stop(1);
        return;
    }
    if (job_runner_start(&td.loop, &td.opt.jobs) != 0) {
        daemon_stop(1);
    }
}

static void
counts_work(ts_store_t *s, void *arg)
{
    td.counts_rc = ts_store_job_counts(s, &td.counts);
    if (td.counts_rc != TS_OK) {
        snprintf(td.counts_err, sizeof(td.counts_err), "%s",
                 ts_store_errmsg(s));
    }
}

static void
counts_done(void *arg, int status)
{
    if (status != 0) {
        log_warn("job counts did not run: %s", uv_strerror(status));
    } else if (td.counts_rc != TS_OK) {
        log_warn("job counts failed: %s", td.counts_err);
    } else {
        log_info("jobs pending=%" PRId64 " running=%" PRId64 " dead=%" PRId64,
                 td.counts.pending, td.counts.running, td.counts.dead);
    }
    if (!td.stopping) {
        daemon_listen();
    }
}

static void
store_opened(const char *err, void *arg)
{
    char  shown[512];

    if (err != NULL) {
        log_error("store open failed: %s", err);
        daemon_stop(1);
        return;
    }
    store_uri_for_log(td.opt.store_uri, shown, sizeof(shown));
    log_info("store open: %s %s", store_pool_backend(), shown);

    if (td.stopping) {
        return;
    }
    if (store_pool_submit(counts_work, counts_done, NULL) != 0) {
        log_warn("cannot queue the job counts");
        daemon_listen();
    }
}

/* --- shutdown --------------------------------------------------------- */

static void
store_closed(void *arg)
{
    int  i;

    log_debug("store closed");
    for (i = 0; i < td.nsignals; i++) {
        uv_close((uv_handle_t *) &td.signals[i], NULL);
    }
}

static void
runner_stopped(void *arg)
{
    if (store_pool_close(store_closed, NULL) != 0) {
        store_closed(NULL);
    }
}


/* Begin an orderly stop; the loop ends when the last handle is closed. */
static void
daemon_stop(int exit_code)
{
    if (exit_code > td.exit_code) {
        td.exit_code = exit_code;
    }
    if (td.stopping) {
        return;
    }
    td.stopping = 1;

    link_server_stop();
    housekeeping_stop();
    presence_stop();
    metrics_stop();
    redis_bridge_stop();
    /* jobs in flight finish their store step (or their lease expires)
     * before the store closes */
    job_runner_stop(runner_stopped, NULL);
}

static void
on_signal(uv_signal_t *h, int signum)
{
    if (signum == SIGHUP) {
        if (log_reopen() != 0) {
            log_error("cannot reopen the log file: %s", strerror(errno));
        } else {
            log_info("log reopened");
        }
        return;
    }
    if (td.stopping) {
        log_info("%s: already stopping", strsignal(signum));
        return;
    }
    log_info("%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    daemon_stop(0);
}

static int
signals_start(void)
{
    static const int  sig[] = { SIGTERM, SIGINT, SIGHUP };
    int               i, rc;

    for (i = 0; i < 3; i++) {
        rc = uv_signal_init(&td.loop, &td.signals[i]);
        if (rc != 0) {
            log_error("signal %d: %s", sig[i], uv_strerror(rc));
            return -1;
        }
        td.nsignals++;
        rc = uv_signal_start(&td.signals[i], on_signal, sig[i]);
        if (rc != 0) {
            log_error("signal %d: %s", sig[i], uv_strerror(rc));
            return -1;
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    int  rc;

    rc = options_parse(argc, argv, &td.opt);
    if (rc != 0) {
        return rc > 0 ? 0 : EXIT_USAGE;
    }

    if (log_open(td.opt.log_path, td.opt.verbose ? LOG_DEBUG : LOG_INFO)
        != 0)
    {
        fprintf(stderr, "ticketd: cannot open log %s: %s\n",
                td.opt.log_path, strerror(errno));
        return 1;
    }

    signal(SIGPIPE, SIG_IGN);

    /* before any thread exists: curl's global state is not thread-safe */
    if (http_client_global_init() != 0) {
        log_error("curl_global_init failed");
        log_close();
        return 1;
    }

    rc = uv_loop_init(&td.loop);
    if (rc != 0) {
        log_error("loop init: %s", uv_strerror(rc));
        log_close();
        return 1;
    }

    metrics_count_cache();

    /* A failure here still runs the loop, so handles made so far close. */
    if (signals_start() != 0
        || store_pool_open(&td.loop, td.opt.store_uri,
                           options_redis_url(&td.opt), td.opt.cache_key, 1,
                           store_opened, NULL)
           != 0)
    {
        log_error("cannot start");
        daemon_stop(1);
    }

    uv_run(&td.loop, UV_RUN_DEFAULT);

    if (td.pidfile_written && unlink(td.opt.pidfile) != 0) {
        log_warn("cannot remove %s: %s", td.opt.pidfile, strerror(errno));
    }
    rc = uv_loop_close(&td.loop);
    if (rc != 0) {
        log_warn("loop close: %s", uv_strerror(rc));
    }
    uv_library_shutdown();

    log_info("stopped");
    log_close();
    free(td.opt.ai_key);
    free(td.opt.sendgrid_key);
    free(td.opt.smtp_password);
    if (td.opt.redis_url_auth != NULL) {
        OPENSSL_cleanse(td.opt.redis_url_auth, strlen(td.opt.redis_url_auth));
        free(td.opt.redis_url_auth);
    }
    OPENSSL_cleanse(td.opt.bridge_key, sizeof(td.opt.bridge_key));
    OPENSSL_cleanse(td.opt.cache_key, sizeof(td.opt.cache_key));
    return td.exit_code;
}

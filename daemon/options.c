/*
 * options: ticketd's settings (see options.h).
 *
 * Order, each later one overriding: built-in defaults, the environment
 * (TICKETD_SOCKET, TICKETD_STORE), the file of -c, the flags.  Then the
 * checks that read files: the JWT secret (and the keys derived from it),
 * the Redis password, the link user, the provider and mail keys.  With
 * -t every error is followed by "configuration file X test failed" and
 * nothing starts.
 *
 * The ticket_* directives read here are the ones nginx's module declares
 * and checks too (ngx_http_ticket_daemon.c); each is parsed as nginx
 * parses it (times as ngx_parse_time, relative paths from the main file's
 * folder), so a file nginx -t accepts is one ticketd -t accepts.
 */

#define _GNU_SOURCE             /* asprintf */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "link_server.h"
#include "options.h"
#include "redis_bridge.h"
#include "ts_assign.h"
#include "ts_cache.h"
#include "ts_mail.h"
#include "ts_store.h"
#include "ts_validate.h"
#include "ts_wire.h"

#define SWEEP_DEFAULT_S   600
#define SWEEP_MAX_S       (7 * 24 * 3600)
#define JOB_RETENTION_S        (7 * 24 * 3600)     /* done jobs */
#define DEAD_JOB_RETENTION_S   (30 * 24 * 3600)    /* dead jobs */
#define RETENTION_MAX_S        OPTIONS_RETENTION_MAX_S
#define EXIT_USAGE        2
#define EXIT_CONFIG       1
#define SECRET_MIN        32       /* as ticket_jwt_secret_file */
#define SECRET_MAX        4096


/* --- fingerprint, -t ---------------------------------------------------- */

/* An absolute form of a path given on the command line (nginx makes
 * every path absolute), for the fingerprint only; owned by o->conf. */
static const char *
options_absolute(options_t *o, const char *path)
{
    char   cwd[4096], *s;

    if (path[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL
        || asprintf(&s, "%s/%s", cwd, path) < 0)
    {
        return path;
    }
    return conf_keep(&o->conf, s) ? s : path;
}


/*
 * The parts of the configuration a worker's hello must match
 * (ts_wire_fingerprint), from the secret's config key: the store URI and
 * the socket path as nginx resolves them (absolute).
 */
static void
options_fingerprint(options_t *o, const unsigned char key[TS_WIRE_KEY_LEN])
{
    const char  *store = o->store_uri;
    char        *s;

    if (strncmp(store, "sqlite:", 7) == 0 && store[7] != '/') {
        if (asprintf(&s, "sqlite:%s", options_absolute(o, store + 7)) >= 0
            && conf_keep(&o->conf, s) != NULL)
        {
            store = s;
        }
    }
    ts_wire_fingerprint(key, "store", store, o->fp_store);
    ts_wire_fingerprint(key, "socket", options_absolute(o, o->socket_path),
                        o->fp_socket);
    ts_wire_fingerprint(key, "secret", "", o->fp_secret);
}


static const char *
shown(const char *v)
{
    return v != NULL ? v : "(none)";
}


/* -t: every resolved setting, secrets as "(set, N bytes)". */
static void
options_print(const options_t *o)
{
    const job_runner_cfg_t  *jc = &o->jobs;
    char                     store[1024];

#define SECRET(s)  ((s) != NULL ? (int) strlen(s) : -1)
#define SHOW_SECRET(name, s)                                                \
    do {                                                                    \
        if ((s) != NULL) {                                                  \
            printf("  %-26s (set, %d bytes)\n", name, SECRET(s));           \
        } else {                                                            \
            printf("  %-26s (none)\n", name);                               \
        }                                                                   \
    } while (0)

    options_store_for_log(o->store_uri, store, sizeof(store));
    printf("ticketd settings%s%s:\n", o->conf_file ? " from " : "",
           o->conf_file ? o->conf_file : "");
    printf("  %-26s %s\n", "store", store);
    printf("  %-26s %s\n", "socket", o->socket_path);
    printf("  %-26s %s\n", "link user", o->link_user ? o->link_user
                                                      : "(root and own)");
    if (o->have_secret) {
        printf("  %-26s (set, %zu bytes)\n", "jwt secret", o->secret_len);
    } else {
        printf("  %-26s (none)\n", "jwt secret");
    }
    printf("  %-26s %s\n", "redis", shown(o->redis_url));
    printf("  %-26s %s\n", "redis password",
           o->redis_url_auth != NULL ? "(set, from a file)" : "(none)");
    printf("  %-26s %s\n", "log", o->log_path ? o->log_path : "(stderr)");
    printf("  %-26s %s\n", "pidfile", shown(o->pidfile));
    printf("  %-26s %d\n", "jobs", jc->concurrency);
    printf("  %-26s %" PRId64 " ms\n", "job lease", jc->lease_ms);
    printf("  %-26s %ld s\n", "job retention", o->job_retention);
    printf("  %-26s %ld s\n", "dead job retention", o->dead_job_retention);
    printf("  %-26s %u s\n", "sweep interval", o->sweep_interval);
    printf("  %-26s %" PRIu64 " ms\n", "presence grace",
           o->presence_grace_ms);
    printf("  %-26s %s\n", "ai provider", jc->provider);
    printf("  %-26s %s\n", "ai url", jc->ai_url);
    printf("  %-26s %s\n", "ai model", jc->ai_model);
    SHOW_SECRET("ai key", jc->ai_key);
    printf("  %-26s %ld ms\n", "ai timeout", jc->ai_timeout_ms);
    printf("  %-26s %d\n", "ai concurrency", jc->ai_concurrency);
    printf("  %-26s %s\n", "mail transport", jc->mail_transport);
    printf("  %-26s %s\n", "mail from", jc->mail_from);
    printf("  %-26s %s\n", "mail reply-to", shown(jc->mail_reply_to));
    printf("  %-26s %s\n", "public url", shown(jc->public_url));
    printf("  %-26s %s\n", "outbox", jc->outbox_dir);
    printf("  %-26s %s\n", "sendgrid url", jc->sendgrid_url);
    SHOW_SECRET("sendgrid key", jc->sendgrid_key);
    printf("  %-26s %s\n", "smtp url", shown(jc->smtp_url));
    printf("  %-26s %s\n", "smtp user", shown(jc->smtp_user));
    SHOW_SECRET("smtp password", jc->smtp_password);
    printf("  %-26s skill=%g availability=%g performance=%g\n",
           "assign weights", jc->assign.w_skill, jc->assign.w_avail,
           jc->assign.w_perf);
    printf("  %-26s %g\n", "assign capacity", jc->assign.capacity);
    printf("  %-26s %g h\n", "assign target", jc->assign.target_hours);
    printf("  %-26s %g\n", "assign tie window", jc->assign.tie_margin);
    for (int p = TS_SLA_PRIORITIES - 1; p >= 0; p--) {
        printf("  %-26s %lld s / %lld s\n",
               p == 2 ? "sla High" : p == 1 ? "sla Medium" : "sla Low",
               (long long) jc->sla.response_ms[p] / 1000,
               (long long) jc->sla.resolution_ms[p] / 1000);
    }
    if (jc->sla.warn_percent > 0) {
        printf("  %-26s %d%%\n", "sla warning", jc->sla.warn_percent);
    } else {
        printf("  %-26s %lld s before\n", "sla warning",
               (long long) jc->sla.warn_ms / 1000);
    }
    printf("  %-26s %lld ms\n", "assign absence",
           (long long) jc->assign_absence_ms);

#undef SHOW_SECRET
#undef SECRET
}


/* --- options ---------------------------------------------------------- */

static void
usage(FILE *f)
{
    fprintf(f,
        "usage: ticketd -c /etc/nginx/nginx.conf [-t] [flags]\n"
        "       ticketd --socket PATH --store URI [flags]\n"
        "\n"
        "  -c FILE                  nginx.conf: take the ticket_* directives"
        " of its\n"
        "                           http block (following includes) and"
        " nginx's\n"
        "                           \"user\" (allowed to link); the flags"
        " below\n"
        "                           override it (for development)\n"
        "  -t                       check the settings (reading the secret"
        " files),\n"
        "                           print them with secrets masked, and"
        " exit:\n"
        "                           0 when good, 1 with the reason when"
        " not\n"
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
    unsigned char  config_key[TS_WIRE_KEY_LEN];
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
    ts_wire_derive(buf, n, TS_WIRE_LABEL_CONFIG, config_key);
    OPENSSL_cleanse(buf, sizeof(buf));
    o->have_secret = 1;
    o->secret_len = n;
    options_fingerprint(o, config_key);
    OPENSSL_cleanse(config_key, sizeof(config_key));
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


/* --link-user NAME, or nginx's "user": 0, or -1 (reported).  nginx's
 * default user ("nobody", no "user" directive) may not exist: then none. */
static int
options_link_user(options_t *o)
{
    const char     *name = o->link_user;
    struct passwd  *pw;

    errno = 0;
    pw = getpwnam(name);
    if (pw == NULL && !o->link_user_explicit) {
        o->link_user = NULL;
        return 0;
    }
    if (pw == NULL) {
        fprintf(stderr, "ticketd: link user: no user \"%s\"%s%s\n", name,
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



static int options_check(options_t *o);


/*
 * Defaults, the environment, the file of -c, then the flags; then the
 * checks.  OPTIONS_RUN, or the exit status (reason on stderr).
 */
static int
options_read(int argc, char **argv, options_t *o)
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
        { "conf",           required_argument, NULL, 'c' },
        { "test",           no_argument,       NULL, 't' },
        { NULL, 0, NULL, 0 }
    };
    job_runner_cfg_t  *jc = &o->jobs;
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
    if (conf_init(&o->conf, NULL) != 0) {
        fprintf(stderr, "ticketd: out of memory\n");
        return EXIT_CONFIG;
    }

    /* first -c and -t, so the file comes before the flags that override
     * it; the other flags are read (and reported when bad) below */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hvc:t", longopts, &li)) != -1) {
        if (c == 'c') {
            o->conf_file = optarg;
        } else if (c == 't') {
            o->test_only = 1;
        }
    }
    if (o->conf_file != NULL) {
        conf_free(&o->conf);
        if (options_conf(o) != 0) {
            return EXIT_CONFIG;
        }
    }

    optind = 0;
    while ((c = getopt_long(argc, argv, ":hvc:t", longopts, &li)) != -1) {
        switch (c) {
        case 'c': case 't': break;
        case 's': o->socket_path = optarg; break;
        case 'S': o->store_uri = optarg; break;
        case 'l': o->log_path = optarg; break;
        case 'p': o->pidfile = optarg; break;
        case 'v': o->verbose = 1; break;
        case 'h': usage(stdout); return 0;

        case 'i':
            errno = 0;
            n = strtoul(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0'
                || optarg[0] == '-' || n < 1 || n > SWEEP_MAX_S)
            {
                fprintf(stderr, "ticketd: --sweep-interval wants whole"
                        " seconds from 1 to %d, not \"%s\"\n", SWEEP_MAX_S,
                        optarg);
                return EXIT_USAGE;
            }
            o->sweep_interval = (unsigned) n;
            break;

        case 1000: case 1001: case 1002: case 1003: case 1008: case 1009:
            /* --jobs 0: no job runner (a hub-only daemon, or tests) */
            v = option_num(longopts[li].name, optarg, c == 1000 ? 0 : 1,
                           c == 1002 || c == 1003 || c == 1008
                           ? 3600000 : 100000);
            if (v < 0) {
                return EXIT_USAGE;
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
                return EXIT_USAGE;
            }
            jc->provider = optarg;
            break;
        case 1005: jc->ai_url = optarg; break;
        case 1006: jc->ai_model = optarg; break;
        case 1007: o->ai_key_file = optarg; break;
        case 1010:
            if (strcmp(optarg, "outbox") != 0 && strcmp(optarg, "sendgrid") != 0
                && strcmp(optarg, "smtp") != 0)
            {
                fprintf(stderr, "ticketd: --mail-transport is outbox,"
                        " sendgrid or smtp, not \"%s\"\n", optarg);
                return EXIT_USAGE;
            }
            o->mail_transport = optarg;
            break;
        case 1011: jc->outbox_dir = optarg; break;
        case 1012: jc->sendgrid_url = optarg; break;
        case 1013: o->sendgrid_key_file = optarg; break;
        case 1014: jc->smtp_url = optarg; break;
        case 1015: jc->smtp_user = optarg; break;
        case 1016: o->smtp_password_file = optarg; break;
        case 1017: jc->mail_from = optarg; break;
        case 1018:
            v = option_num(longopts[li].name, optarg, 0, 3600000);
            if (v < 0) {
                return EXIT_USAGE;
            }
            o->presence_grace_ms = (uint64_t) v;
            break;
        case 1019: o->redis_url = optarg; break;
        case 1020: case 1021:
            v = option_num(longopts[li].name, optarg, 0, RETENTION_MAX_S);
            if (v < 0) {
                return EXIT_USAGE;
            }
            if (c == 1020) {
                o->job_retention = v;
            } else {
                o->dead_job_retention = v;
            }
            break;
        case 1022: o->redis_password_file = optarg; break;
        case 1023: o->secret_path = optarg; break;
        case 1024:
            o->link_user = optarg;
            o->link_user_explicit = 1;
            break;

        case ':':
            fprintf(stderr, "ticketd: %s needs a value\n", argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;

        default:
            fprintf(stderr, "ticketd: unknown option %s\n",
                    argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }

    if (optind < argc) {
        fprintf(stderr, "ticketd: unexpected argument \"%s\"\n",
                argv[optind]);
        usage(stderr);
        return EXIT_USAGE;
    }
    /* a command line alone is usage (2); a file is a configuration (1) */
    if (options_check(o) != 0) {
        return o->conf_file != NULL ? EXIT_CONFIG : EXIT_USAGE;
    }
    return OPTIONS_RUN;
}

/* The checks that need files and the environment, after every setting is
 * known; 0 or -1 (reported). */
static int
options_check(options_t *o)
{
    ts_errmsg_t  err;

    if (o->socket_path == NULL || *o->socket_path == '\0') {
        fprintf(stderr, "ticketd: --socket PATH (or TICKETD_SOCKET, or -c"
                " nginx.conf with ticket_daemon) is required\n");
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
        fprintf(stderr, "ticketd: --store URI (or TICKETD_STORE, or -c"
                " nginx.conf with ticket_store) is required\n");
        return -1;
    }
    if ((o->log_path != NULL && *o->log_path == '\0')
        || (o->pidfile != NULL && *o->pidfile == '\0'))
    {
        fprintf(stderr, "ticketd: --log and --pidfile want a file name\n");
        return -1;
    }
    if (ts_assign_cfg_check(&o->jobs.assign, err) != 0) {
        fprintf(stderr, "ticketd: assignment settings: %s\n", err);
        return -1;
    }
    if ((o->secret_path != NULL && options_secret(o, o->secret_path) != 0)
        || options_redis(o, o->redis_password_file) != 0
        || (o->link_user != NULL && options_link_user(o) != 0))
    {
        return -1;
    }
    return options_jobs(o, o->ai_key_file, o->sendgrid_key_file,
                        o->smtp_password_file, o->mail_transport);
}


int
options_parse(int argc, char **argv, options_t *o)
{
    int  rc;

    rc = options_read(argc, argv, o);
    if (o->test_only) {
        if (rc == OPTIONS_RUN) {
            options_print(o);
            fprintf(stderr, "ticketd: configuration file %s test is"
                    " successful\n", o->conf_file ? o->conf_file
                                                  : "(command line)");
            return 0;
        }
        if (rc != 0) {
            fprintf(stderr, "ticketd: configuration file %s test failed\n",
                    o->conf_file ? o->conf_file : "(command line)");
            return 1;
        }
    }
    return rc;
}


/* The Redis URL to connect with (the password inside when one was given
 * in a file), or NULL for none. */
const char *
options_redis_url(const options_t *o)
{
    return o->redis_url_auth != NULL ? o->redis_url_auth : o->redis_url;
}

void
options_store_for_log(const char *uri, char *buf, size_t size)
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


void
options_free(options_t *o)
{
    free(o->ai_key);
    free(o->sendgrid_key);
    if (o->smtp_password != NULL) {
        OPENSSL_cleanse(o->smtp_password, strlen(o->smtp_password));
        free(o->smtp_password);
    }
    if (o->redis_url_auth != NULL) {
        OPENSSL_cleanse(o->redis_url_auth, strlen(o->redis_url_auth));
        free(o->redis_url_auth);
    }
    OPENSSL_cleanse(o->bridge_key, sizeof(o->bridge_key));
    OPENSSL_cleanse(o->cache_key, sizeof(o->cache_key));
    conf_free(&o->conf);
}

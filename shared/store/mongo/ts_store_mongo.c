/*
 * ts_store_mongo: the MongoDB backend of ts_store, through mongo-c-driver.
 *
 * Connections: one mongoc_client_pool_t per process and URI, created on
 * first open in the process that uses it -- nginx workers and ticketd
 * open stores after fork, so no pool (and no socket) crosses a fork; a
 * pool inherited from a parent (other pid) is never used.  Each store
 * handle pops one client and pushes it back on close, so a handle still
 * belongs to one thread at a time, like a SQLite connection.
 * mongoc_init() runs once per process (pthread_once).  The first open in
 * a process also back-fills lookup keys, creates the indexes and runs the
 * sweep (below).
 *
 * No multi-document transactions (a standalone mongod refuses them), so
 * every operation is a sequence of single-document atomic writes, ordered
 * so that a crash between any two of them loses nothing and duplicates
 * nothing:
 *
 *  - A ticket is one document (comments embedded, as in the original
 *    app), so creating or changing it is one atomic write; its _id is
 *    chosen by the caller before the insert, so a retried insert fails on
 *    the _id instead of making a second ticket.
 *  - Jobs ride an outbox.  A write that stores jobs (signup, ticket
 *    create/status/comment, triage, assignment, request create/decide)
 *    puts the complete job documents, with their final _id, into the
 *    written document's "pendingJobs" array in the same update that makes
 *    the change -- atomic with it.  Then each job is inserted into "jobs"
 *    and the copies are pulled out ($pullAll of the exact documents).  A
 *    job's _id is fixed before the first write (derived from its dedupe
 *    key by SHA-1 when it has one, a fresh ObjectId otherwise), so a
 *    repeated insert fails on the _id and changes nothing.  If the writer
 *    dies between the steps, the sweep -- at the first open in a process
 *    and at most every 2 s from job_claim -- finds documents
 *    whose pendingJobs is not empty and does the same two steps: a job is
 *    never lost (it is in the owner until it is in "jobs") and never
 *    doubled (one _id).  Jobs with a dedupe key also have a unique index
 *    on dedupeKey (enforced by mongod).
 *  - History entries ride a second outbox on the ticket,
 *    "pendingHistory", the same way: the entry is pushed in the very
 *    update that makes the change, then inserted into "tickethistory"
 *    and pulled (ts_store_mongo_history.c).  A change without its entry
 *    cannot exist, and a failed change has none.
 *  - Claims are findAndModify on one job (atomic per document); attempts,
 *    incremented by the claim, is the fencing token every later write
 *    compares.
 *  - Assignment and stats: see ts_store_mongo_jobs.c.  One pending
 *    moderator request per user: see ts_store_mongo_modreqs.c.
 *  - The first user becomes admin: a signup that sees no user inserts a
 *    marker document with a fixed _id into "loginattempts" (of two
 *    inserts of one _id exactly one wins), see user_signup.
 *
 * Unique indexes (email, username, dedupe key, one pending request) are
 * relied on only where mongod enforces them; CongoDB does not, and the
 * code checks before inserting so sequential duplicates are refused there
 * too (concurrent duplicate signups are tested against a real mongod
 * only; one pending request per user holds on any server, see
 * ts_store_mongo_modreqs.c).
 *
 * The BSON and JSON helpers the backend's files share are in
 * ts_store_mongo_bson.c.
 */

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/sha.h>

#include "ts_store_mongo.h"
#include "ts_validate.h"

#define TS_MG_DEFAULT_DB   "tickets"
#define TS_MG_SWEEP_MS     2000

static const ts_store_ops_t  ts_mongo_ops;


/* --- the process's pools ---------------------------------------------- */

typedef struct ts_mg_pool_s  ts_mg_pool_t;

struct ts_mg_pool_s {
    char                  *uri;
    char                  *dbname;
    pid_t                  pid;
    mongoc_client_pool_t  *pool;
    int                    out;          /* clients popped, not pushed */
    int                    ready;        /* indexes made, sweep run */
    ts_mg_pool_t          *next;
};

static pthread_once_t   ts_mg_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t  ts_mg_lock = PTHREAD_MUTEX_INITIALIZER;
static ts_mg_pool_t    *ts_mg_pools;
static int64_t          ts_mg_last_sweep;     /* under ts_mg_lock */


/*
 * mongoc_init once; and pin libmongoc/libbson in memory.  A pool runs
 * monitoring threads of its own, and nginx dlclose()s its modules when a
 * worker exits, which would unmap the library under those threads (a
 * SIGSEGV at every worker exit): RTLD_NODELETE keeps it mapped until the
 * process is gone.
 */
/*
 * At exit (or when nginx unloads the module): pools of this process whose
 * clients are all back are destroyed, which stops their threads; a pool
 * with clients still out (thread-local handles nobody closes) is left to
 * the process's end -- the library stays mapped (above).
 */
static void
ts_mg_atexit(void)
{
    ts_mg_pool_t  *p, *next, *keep = NULL;
    int            all = 1;

    pthread_mutex_lock(&ts_mg_lock);
    for (p = ts_mg_pools; p; p = next) {
        next = p->next;
        if (p->pid == getpid() && p->out == 0) {
            mongoc_client_pool_destroy(p->pool);
            free(p->uri);
            free(p->dbname);
            free(p);
        } else {
            all = 0;
            p->next = keep;
            keep = p;
        }
    }
    ts_mg_pools = keep;
    pthread_mutex_unlock(&ts_mg_lock);
    if (all) {
        mongoc_cleanup();
    }
}


/* The driver's log: warnings and worse to stderr (nginx's error log, or
 * ticketd's), its debug chatter (a line per failed monitor check while
 * the server is down) dropped. */
static void
ts_mg_log(mongoc_log_level_t level, const char *domain, const char *message,
    void *data)
{
    if (level <= MONGOC_LOG_LEVEL_WARNING) {
        fprintf(stderr, "mongoc %s: %s: %s\n",
                mongoc_log_level_str(level), domain, message);
    }
}


static void
ts_mg_init(void)
{
    (void) dlopen("libmongoc-1.0.so.0", RTLD_LAZY | RTLD_NOLOAD
                                        | RTLD_NODELETE);
    (void) dlopen("libbson-1.0.so.0", RTLD_LAZY | RTLD_NOLOAD
                                      | RTLD_NODELETE);
    mongoc_log_set_handler(ts_mg_log, NULL);
    mongoc_init();
    atexit(ts_mg_atexit);
}


static ts_rc_e ts_mg_indexes(ts_mongo_t *m);


/* The pool for uri in this process, created on first use; *fresh is set
 * when this call created it (the caller then sets the database up). */
static ts_mg_pool_t *
ts_mg_pool_get(const char *uri_text, int *fresh, char *err, size_t errlen)
{
    ts_mg_pool_t  *p;
    mongoc_uri_t  *uri;
    bson_error_t   e;
    const char    *db;
    pid_t          pid = getpid();

    *fresh = 0;
    pthread_mutex_lock(&ts_mg_lock);
    for (p = ts_mg_pools; p; p = p->next) {
        if (p->pid == pid && strcmp(p->uri, uri_text) == 0) {
            pthread_mutex_unlock(&ts_mg_lock);
            return p;
        }
    }

    uri = mongoc_uri_new_with_error(uri_text, &e);
    if (uri == NULL) {
        pthread_mutex_unlock(&ts_mg_lock);
        snprintf(err, errlen, "invalid MongoDB URI: %s", e.message);
        return NULL;
    }
    /* a store that is down answers in seconds, not the default 30 s */
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS)) {
        mongoc_uri_set_option_as_int32(uri,
                                       MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                       5000);
    }
    if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS)) {
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS,
                                       3000);
    }
    db = mongoc_uri_get_database(uri);

    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        mongoc_uri_destroy(uri);
        pthread_mutex_unlock(&ts_mg_lock);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->uri = strdup(uri_text);
    p->dbname = strdup(db && *db ? db : TS_MG_DEFAULT_DB);
    p->pid = pid;
    p->pool = mongoc_client_pool_new(uri);
    mongoc_uri_destroy(uri);
    if (p->pool == NULL || p->uri == NULL || p->dbname == NULL) {
        if (p->pool) {
            mongoc_client_pool_destroy(p->pool);
        }
        free(p->uri);
        free(p->dbname);
        free(p);
        pthread_mutex_unlock(&ts_mg_lock);
        snprintf(err, errlen, "cannot create a MongoDB client pool");
        return NULL;
    }
    mongoc_client_pool_set_error_api(p->pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_set_appname(p->pool, "ticket-assistant");
    p->next = ts_mg_pools;
    ts_mg_pools = p;
    *fresh = 1;
    pthread_mutex_unlock(&ts_mg_lock);
    return p;
}


int
ts_store_mongo_uri_check(const char *uri, char *err, size_t errlen)
{
    mongoc_uri_t  *u;
    bson_error_t   e;

    u = mongoc_uri_new_with_error(uri, &e);
    if (u == NULL) {
        snprintf(err, errlen, "%s", e.message);
        return -1;
    }
    mongoc_uri_destroy(u);
    return 0;
}


ts_store_t *
ts_store_mongo_open(const char *uri, char *err, size_t errlen)
{
    ts_mg_pool_t  *p;
    ts_mongo_t    *m;
    bson_error_t   e;
    bson_t         ping = BSON_INITIALIZER;
    int            fresh;

    pthread_once(&ts_mg_once, ts_mg_init);
    p = ts_mg_pool_get(uri, &fresh, err, errlen);
    if (p == NULL) {
        return NULL;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->base.ops = &ts_mongo_ops;
    m->pool = p->pool;
    m->client = mongoc_client_pool_pop(p->pool);
    pthread_mutex_lock(&ts_mg_lock);
    p->out++;
    m->owner = p;
    pthread_mutex_unlock(&ts_mg_lock);
    m->users = mongoc_client_get_collection(m->client, p->dbname, "users");
    m->tickets = mongoc_client_get_collection(m->client, p->dbname,
                                              "tickets");
    m->modreqs = mongoc_client_get_collection(m->client, p->dbname,
                                              "moderatorrequests");
    m->jobs = mongoc_client_get_collection(m->client, p->dbname, "jobs");
    m->tokens = mongoc_client_get_collection(m->client, p->dbname,
                                             "revokedtokens");
    m->logins = mongoc_client_get_collection(m->client, p->dbname,
                                             "loginattempts");
    m->history = mongoc_client_get_collection(m->client, p->dbname,
                                              "tickethistory");
    m->canned = mongoc_client_get_collection(m->client, p->dbname,
                                             "cannedresponses");

    BSON_APPEND_INT32(&ping, "ping", 1);
    if (!mongoc_client_command_simple(m->client, "admin", &ping, NULL, NULL,
                                      &e))
    {
        bson_destroy(&ping);
        snprintf(err, errlen, "cannot reach MongoDB: %s", e.message);
        m->base.ops->close(&m->base);
        return NULL;
    }
    bson_destroy(&ping);

    pthread_mutex_lock(&ts_mg_lock);
    fresh = !p->ready;
    pthread_mutex_unlock(&ts_mg_lock);
    if (fresh) {
        /* once per process (until it succeeds; concurrent first opens may
         * both do it, all of it is idempotent): keys, indexes, then
         * anything a crash left behind */
        if (ts_mg_backfill_keys(m) != TS_OK || ts_mg_indexes(m) != TS_OK) {
            snprintf(err, errlen, "MongoDB setup: %s", m->base.errmsg);
            m->base.ops->close(&m->base);
            return NULL;
        }
        ts_mg_sweep(m, 1);
        pthread_mutex_lock(&ts_mg_lock);
        p->ready = 1;
        pthread_mutex_unlock(&ts_mg_lock);
    }
    return &m->base;
}


static void
ts_mg_close(ts_store_t *s)
{
    ts_mongo_t  *m = TS_MG(s);

    mongoc_collection_destroy(m->users);
    mongoc_collection_destroy(m->tickets);
    mongoc_collection_destroy(m->modreqs);
    mongoc_collection_destroy(m->jobs);
    mongoc_collection_destroy(m->tokens);
    mongoc_collection_destroy(m->logins);
    mongoc_collection_destroy(m->history);
    mongoc_collection_destroy(m->canned);
    if (m->client) {
        mongoc_client_pool_push(m->pool, m->client);
        pthread_mutex_lock(&ts_mg_lock);
        ((ts_mg_pool_t *) m->owner)->out--;
        pthread_mutex_unlock(&ts_mg_lock);
    }
    free(m);
}


/*
 * Indexes for every query, created once per process (createIndexes is
 * idempotent).  A unique index mongod cannot build -- an imported
 * database with duplicate emails, say -- is reported and skipped rather
 * than making the store unusable; the checks before inserts still hold.
 */
typedef struct {
    mongoc_collection_t  **coll;
    const char            *name;
    const char            *keys;         /* extended JSON */
    int                    unique;
    const char            *partial;      /* extended JSON or NULL */
} ts_mg_index_t;


/* The sweep's questions are the partial indexes' filters, so each one
 * reads only the few documents with work left, never a whole collection
 * (it runs every TS_MG_SWEEP_MS). */
#define TS_MG_HAS_PENDING_JOBS  "{\"pendingJobs._id\": {\"$exists\": true}}"

static ts_rc_e
ts_mg_indexes(ts_mongo_t *m)
{
    const ts_mg_index_t  idx[] = {
        /* partial: users another writer adds lack the keys until the
         * back-fill, and must not collide on a missing value */
        { &m->users, "email_lower", "{\"emailLower\": 1}", 1,
          "{\"emailLower\": {\"$type\": \"string\"}}" },
        { &m->users, "username_lower", "{\"usernameLower\": 1}", 1,
          "{\"usernameLower\": {\"$type\": \"string\"}}" },
        { &m->users, "role", "{\"role\": 1, \"createdAt\": 1}", 0, NULL },
        { &m->users, "outbox", "{\"pendingJobs._id\": 1}", 0,
          TS_MG_HAS_PENDING_JOBS },
        { &m->users, "reset", "{\"passwordReset.tokenHash\": 1}", 0,
          "{\"passwordReset.tokenHash\": {\"$exists\": true}}" },
        { &m->tickets, "updated", "{\"updatedAt\": -1, \"_id\": 1}", 0,
          NULL },
        { &m->tickets, "created_by",
          "{\"createdBy\": 1, \"updatedAt\": -1, \"_id\": 1}", 0, NULL },
        { &m->tickets, "assigned",
          "{\"assignedTo\": 1, \"updatedAt\": -1, \"_id\": 1}", 0, NULL },
        { &m->tickets, "assigned_status",
          "{\"assignedTo\": 1, \"status\": 1}", 0, NULL },
        { &m->tickets, "status",
          "{\"status\": 1, \"updatedAt\": -1, \"_id\": 1}", 0, NULL },
        { &m->tickets, "priority",
          "{\"priority\": 1, \"updatedAt\": -1, \"_id\": 1}", 0, NULL },
        { &m->tickets, "created", "{\"createdAt\": 1}", 0, NULL },
        { &m->tickets, "completed", "{\"completedAt\": 1}", 0, NULL },
        { &m->tickets, "provider", "{\"triageProvider\": 1}", 0, NULL },
        /* the SLA filters (ts_store_mongo_sla.c) */
        { &m->tickets, "sla_response", "{\"firstResponseDue\": 1}", 0,
          NULL },
        { &m->tickets, "sla_resolution", "{\"deadline\": 1}", 0, NULL },
        { &m->tickets, "sla_breached", "{\"slaBreachedAt\": 1}", 0, NULL },
        { &m->tickets, "outbox", "{\"pendingJobs._id\": 1}", 0,
          TS_MG_HAS_PENDING_JOBS },
        { &m->tickets, "stats_pending", "{\"statsPending.moderator\": 1}",
          0, "{\"statsPending.moderator\": {\"$exists\": true}}" },
        { &m->modreqs, "applicant",
          "{\"applicant\": 1, \"createdAt\": -1}", 0, NULL },
        { &m->modreqs, "status", "{\"status\": 1, \"createdAt\": -1}", 0,
          NULL },
        { &m->modreqs, "one_pending", "{\"applicant\": 1}", 1,
          "{\"status\": \"pending\"}" },
        { &m->modreqs, "outbox", "{\"pendingJobs._id\": 1}", 0,
          TS_MG_HAS_PENDING_JOBS },
        { &m->modreqs, "unpromoted", "{\"promoted\": 1}", 0, NULL },
        { &m->jobs, "due", "{\"state\": 1, \"kind\": 1, \"runAfter\": 1}", 0,
          NULL },
        { &m->jobs, "lease", "{\"state\": 1, \"leaseUntil\": 1}", 0, NULL },
        { &m->jobs, "created", "{\"createdAt\": -1, \"_id\": -1}", 0, NULL },
        { &m->jobs, "state_created",
          "{\"state\": 1, \"createdAt\": -1, \"_id\": -1}", 0, NULL },
        { &m->jobs, "dedupe", "{\"dedupeKey\": 1}", 1,
          "{\"dedupeKey\": {\"$type\": \"string\"}}" },
        { &m->tokens, "sig", "{\"sig\": 1}", 1, NULL },
        { &m->tokens, "expires", "{\"expiresAt\": 1}", 0, NULL },
        { &m->logins, "identifier", "{\"identifier\": 1}", 1, NULL },
        { &m->logins, "window", "{\"lockedUntil\": 1, \"windowStart\": 1}",
          0, NULL },
        { &m->tickets, "history_outbox", "{\"pendingHistory._id\": 1}", 0,
          "{\"pendingHistory._id\": {\"$exists\": true}}" },
        { &m->history, "ticket", "{\"ticket\": 1, \"at\": 1, \"_id\": 1}",
          0, NULL },
        { &m->canned, "title", "{\"title\": 1, \"_id\": 1}", 0, NULL },
    };
    bson_t         *keys, *partial, cmd, arr, one;
    bson_error_t    e;
    const char     *cname;
    char            k[16];
    size_t          i;

    for (i = 0; i < sizeof(idx) / sizeof(idx[0]); i++) {
        keys = bson_new_from_json((const uint8_t *) idx[i].keys, -1, &e);
        if (keys == NULL) {
            return ts_store_fail(&m->base, "index %s: %s", idx[i].name,
                                 e.message);
        }
        cname = mongoc_collection_get_name(*idx[i].coll);
        bson_init(&cmd);
        BSON_APPEND_UTF8(&cmd, "createIndexes", cname);
        BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
        snprintf(k, sizeof(k), "0");
        BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &one);
        BSON_APPEND_DOCUMENT(&one, "key", keys);
        BSON_APPEND_UTF8(&one, "name", idx[i].name);
        if (idx[i].unique) {
            BSON_APPEND_BOOL(&one, "unique", true);
        }
        if (idx[i].partial) {
            partial = bson_new_from_json((const uint8_t *) idx[i].partial,
                                         -1, &e);
            if (partial) {
                BSON_APPEND_DOCUMENT(&one, "partialFilterExpression",
                                     partial);
                bson_destroy(partial);
            }
        }
        bson_append_document_end(&arr, &one);
        bson_append_array_end(&cmd, &arr);
        if (!mongoc_collection_write_command_with_opts(*idx[i].coll, &cmd,
                                                       NULL, NULL, &e))
        {
            /* a server without this index kind, or duplicates already
             * stored: the store still works (see above) */
            fprintf(stderr, "ticket store: MongoDB index %s.%s not "
                    "created: %s\n", cname, idx[i].name, e.message);
        }
        bson_destroy(&cmd);
        bson_destroy(keys);
    }
    return TS_OK;
}


/* --- the job outbox ------------------------------------------------------ */

/* A job's _id: derived from its dedupe key (so the same key always names
 * the same document), else fresh. */
static void
ts_mg_job_id(const ts_job_new_t *job, bson_oid_t *oid)
{
    unsigned char  d[SHA_DIGEST_LENGTH];
    char           buf[512];
    int            n;

    if (job->dedupe_key == NULL) {
        ts_mg_oid_new(oid);
        return;
    }
    n = snprintf(buf, sizeof(buf), "ticket-job:%s", job->dedupe_key);
    SHA1((const unsigned char *) buf,
         (size_t) (n < (int) sizeof(buf) ? n : (int) sizeof(buf) - 1), d);
    bson_oid_init_from_data(oid, d);
}


void
ts_mg_jobs_array(bson_t *arr, const ts_job_new_t *jobs, size_t njobs,
    int64_t now)
{
    bson_t      doc;
    bson_oid_t  oid;
    char        k[24];
    size_t      i;

    for (i = 0; i < njobs; i++) {
        ts_mg_job_id(&jobs[i], &oid);
        snprintf(k, sizeof(k), "%zu", i);
        BSON_APPEND_DOCUMENT_BEGIN(arr, k, &doc);
        BSON_APPEND_OID(&doc, "_id", &oid);
        BSON_APPEND_UTF8(&doc, "kind", jobs[i].kind);
        if (jobs[i].payload) {
            ts_mg_append_json(&doc, "payload", jobs[i].payload);
        } else {
            bson_t p = BSON_INITIALIZER;
            BSON_APPEND_DOCUMENT(&doc, "payload", &p);
            bson_destroy(&p);
        }
        BSON_APPEND_UTF8(&doc, "state", "pending");
        BSON_APPEND_INT32(&doc, "attempts", 0);
        BSON_APPEND_INT32(&doc, "maxAttempts",
                          jobs[i].max_attempts > 0 ? jobs[i].max_attempts
                                                   : 5);
        BSON_APPEND_DATE_TIME(&doc, "runAfter",
                              jobs[i].run_after > 0 ? jobs[i].run_after
                                                    : now);
        BSON_APPEND_NULL(&doc, "leaseUntil");
        BSON_APPEND_NULL(&doc, "lastError");
        if (jobs[i].dedupe_key) {
            BSON_APPEND_UTF8(&doc, "dedupeKey", jobs[i].dedupe_key);
        } else {
            BSON_APPEND_NULL(&doc, "dedupeKey");
        }
        BSON_APPEND_DATE_TIME(&doc, "createdAt", now);
        BSON_APPEND_DATE_TIME(&doc, "updatedAt", now);
        bson_append_document_end(arr, &doc);
    }
}


/* Insert one outbox document into its collection; a duplicate _id (or
 * dedupe key) is success. */
static ts_rc_e
ts_mg_outbox_put(ts_mongo_t *m, mongoc_collection_t *to, const bson_t *doc)
{
    bson_error_t  e;

    if (mongoc_collection_insert_one(to, doc, NULL, NULL, &e)
        || ts_mg_dup(&e))
    {
        return TS_OK;
    }
    return ts_mg_fail(m, "outbox insert", &e);
}


void
ts_mg_outbox_flush(ts_mongo_t *m, mongoc_collection_t *owner,
    const bson_oid_t *owner_id, const bson_t *arr)
{
    ts_mg_outbox_flush_to(m, owner, owner_id, "pendingJobs", m->jobs, arr);
}


void
ts_mg_outbox_flush_to(ts_mongo_t *m, mongoc_collection_t *owner,
    const bson_oid_t *owner_id, const char *field, mongoc_collection_t *to,
    const bson_t *arr)
{
    bson_iter_t   it;
    bson_t        job, filter = BSON_INITIALIZER, upd = BSON_INITIALIZER;
    bson_t        pull;
    const uint8_t *data;
    uint32_t      len;
    int           any = 0;

    if (!bson_iter_init(&it, arr)) {
        return;
    }
    while (bson_iter_next(&it)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
            continue;
        }
        bson_iter_document(&it, &len, &data);
        if (!bson_init_static(&job, data, len)
            || ts_mg_outbox_put(m, to, &job) != TS_OK)
        {
            return;                    /* left for the sweep */
        }
        any = 1;
    }
    if (!any) {
        return;
    }
    /* $pullAll compares whole documents: arr holds them exactly */
    BSON_APPEND_OID(&filter, "_id", owner_id);
    BSON_APPEND_DOCUMENT_BEGIN(&upd, "$pullAll", &pull);
    BSON_APPEND_ARRAY(&pull, field, arr);
    bson_append_document_end(&upd, &pull);
    (void) ts_mg_update(m, owner, &filter, &upd, 0, NULL);
    bson_destroy(&filter);
    bson_destroy(&upd);
}


/* Flush every outbox (field, into to) of one collection left non-empty;
 * one_id: only that document's. */
void
ts_mg_sweep_outbox(ts_mongo_t *m, mongoc_collection_t *c, const char *field,
    mongoc_collection_t *to, const bson_oid_t *one_id)
{
    mongoc_cursor_t  *cur;
    const bson_t     *doc;
    bson_t           *filter, *opts, arr, ex;
    bson_iter_t       it;
    const uint8_t    *data;
    uint32_t          len;
    char              key[64];

    snprintf(key, sizeof(key), "%s._id", field);
    filter = bson_new();
    if (one_id) {
        BSON_APPEND_OID(filter, "_id", one_id);
    }
    BSON_APPEND_DOCUMENT_BEGIN(filter, key, &ex);
    BSON_APPEND_BOOL(&ex, "$exists", true);
    bson_append_document_end(filter, &ex);
    opts = BCON_NEW("projection", "{", field, BCON_INT32(1), "}",
                    "limit", BCON_INT64(500));
    cur = mongoc_collection_find_with_opts(c, filter, opts, NULL);
    while (mongoc_cursor_next(cur, &doc)) {
        if (bson_iter_init_find(&it, doc, field)
            && BSON_ITER_HOLDS_ARRAY(&it))
        {
            bson_iter_array(&it, &len, &data);
            if (bson_init_static(&arr, data, len)
                && bson_iter_init_find(&it, doc, "_id")
                && BSON_ITER_HOLDS_OID(&it))
            {
                ts_mg_outbox_flush_to(m, c, bson_iter_oid(&it), field, to,
                                      &arr);
            }
        }
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    bson_destroy(opts);
}


/* Accepted requests whose promotion a crash interrupted. */
static void
ts_mg_sweep_promotions(ts_mongo_t *m)
{
    mongoc_cursor_t  *cur;
    const bson_t     *doc;
    bson_t           *filter;

    filter = BCON_NEW("promoted", BCON_BOOL(false),
                      "status", BCON_UTF8("accepted"));
    cur = mongoc_collection_find_with_opts(m->modreqs, filter, NULL, NULL);
    while (mongoc_cursor_next(cur, &doc)) {
        (void) ts_mg_modreq_promote(m, doc, ts_now_ms());
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
}


/* Completed tickets whose stats a crash left half-applied. */
static void
ts_mg_sweep_stats(ts_mongo_t *m)
{
    mongoc_cursor_t  *cur;
    const bson_t     *doc;
    bson_t           *filter, pending;
    bson_iter_t       it;
    const uint8_t    *data;
    uint32_t          len;

    filter = BCON_NEW("statsPending.moderator", "{", "$exists",
                      BCON_BOOL(true), "}");
    cur = mongoc_collection_find_with_opts(m->tickets, filter, NULL, NULL);
    while (mongoc_cursor_next(cur, &doc)) {
        if (bson_iter_init_find(&it, doc, "statsPending")
            && BSON_ITER_HOLDS_DOCUMENT(&it))
        {
            bson_iter_document(&it, &len, &data);
            if (bson_init_static(&pending, data, len)
                && bson_iter_init_find(&it, doc, "_id")
                && BSON_ITER_HOLDS_OID(&it))
            {
                (void) ts_mg_stats_apply(m, bson_iter_oid(&it), &pending);
            }
        }
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
}


void
ts_mg_sweep(ts_mongo_t *m, int force)
{
    int64_t  now = ts_now_ms();

    pthread_mutex_lock(&ts_mg_lock);
    if (!force && now - ts_mg_last_sweep < TS_MG_SWEEP_MS) {
        pthread_mutex_unlock(&ts_mg_lock);
        return;
    }
    ts_mg_last_sweep = now;
    pthread_mutex_unlock(&ts_mg_lock);

    /* only writers that started before this sweep can have left work: a
     * live writer racing with it is harmless (same _ids, exact pulls) */
    ts_mg_sweep_outbox(m, m->users, "pendingJobs", m->jobs, NULL);
    ts_mg_sweep_outbox(m, m->tickets, "pendingJobs", m->jobs, NULL);
    ts_mg_sweep_outbox(m, m->modreqs, "pendingJobs", m->jobs, NULL);
    ts_mg_sweep_outbox(m, m->tickets, "pendingHistory", m->history, NULL);
    ts_mg_sweep_promotions(m);
    ts_mg_sweep_stats(m);
    (void) ts_mg_backfill_keys(m);
}


/* --- jobs and housekeeping ------------------------------------------------ */

static ts_rc_e
ts_mg_job_insert(ts_store_t *s, const ts_job_new_t *job, ts_oid_t out_id)
{
    ts_mongo_t   *m = TS_MG(s);
    bson_t        arr = BSON_INITIALIZER, doc;
    bson_iter_t   it, id;
    const uint8_t *data;
    uint32_t      len;
    ts_rc_e       rc = TS_ERR;

    ts_mg_jobs_array(&arr, job, 1, ts_now_ms());
    if (bson_iter_init_find(&it, &arr, "0")) {
        bson_iter_document(&it, &len, &data);
        if (bson_init_static(&doc, data, len)) {
            rc = ts_mg_outbox_put(m, m->jobs, &doc);
            if (rc == TS_OK && out_id
                && bson_iter_init_find(&id, &doc, "_id"))
            {
                bson_oid_to_string(bson_iter_oid(&id), out_id);
            }
        }
    }
    bson_destroy(&arr);
    return rc;
}


static ts_rc_e
ts_mg_purge_expired(ts_store_t *s, int64_t now_ms, int64_t *removed)
{
    ts_mongo_t    *m = TS_MG(s);
    bson_t        *f, reply;
    bson_error_t   e;
    int64_t        n = 0;
    bool           ok;

    f = BCON_NEW("expiresAt", "{", "$lt", BCON_DATE_TIME(now_ms), "}");
    ok = mongoc_collection_delete_many(m->tokens, f, NULL, &reply, &e);
    bson_destroy(f);
    if (ok) {
        n += ts_mg_get_int(&reply, "deletedCount", 0);
    }
    bson_destroy(&reply);
    if (!ok) {
        return ts_mg_fail(m, "purge", &e);
    }

    /* attempts older than a day and not locked carry no information */
    f = BCON_NEW("lockedUntil", "{", "$lt", BCON_DATE_TIME(now_ms), "}",
                 "windowStart", "{", "$lt",
                 BCON_DATE_TIME(now_ms - 24 * 3600 * 1000LL), "}");
    ok = mongoc_collection_delete_many(m->logins, f, NULL, &reply, &e);
    bson_destroy(f);
    if (ok) {
        n += ts_mg_get_int(&reply, "deletedCount", 0);
    }
    bson_destroy(&reply);
    if (!ok) {
        return ts_mg_fail(m, "purge", &e);
    }
    if (removed) {
        *removed = n;
    }
    return TS_OK;
}


static ts_rc_e
ts_mg_ping(ts_store_t *s)
{
    ts_mongo_t    *m = TS_MG(s);
    bson_t        *cmd = BCON_NEW("ping", BCON_INT32(1));
    bson_error_t   e;
    bool           ok;

    ok = mongoc_client_command_simple(m->client, "admin", cmd, NULL, NULL,
                                      &e);
    bson_destroy(cmd);
    return ok ? TS_OK : ts_mg_fail(m, "ping", &e);
}


static const ts_store_ops_t  ts_mongo_ops = {
    .name = "mongodb",
    .close = ts_mg_close,
    .ping = ts_mg_ping,
    .read_begin = NULL,
    .read_end = NULL,
    .user_signup = ts_mg_user_signup,
    .user_by_id = ts_mg_user_by_id,
    .user_by_email = ts_mg_user_by_email,
    .user_by_username = ts_mg_user_by_username,
    .user_list = ts_mg_user_list,
    .user_count_role = ts_mg_user_count_role,
    .user_set_status = ts_mg_user_set_status,
    .user_update = ts_mg_user_update,
    .user_set_password = ts_mg_user_set_password,
    .user_reset_issue = ts_mg_user_reset_issue,
    .user_by_reset = ts_mg_user_by_reset,
    .token_revoke = ts_mg_token_revoke,
    .token_revoked = ts_mg_token_revoked,
    .login_get = ts_mg_login_get,
    .login_attempt = ts_mg_login_attempt,
    .login_clear = ts_mg_login_clear,
    .job_insert = ts_mg_job_insert,
    .job_counts = ts_mg_job_counts,
    .purge_expired = ts_mg_purge_expired,
    .ticket_create = ts_mg_ticket_create,
    .ticket_get = ts_mg_ticket_get,
    .ticket_list = ts_mg_ticket_list,
    .ticket_set_status = ts_mg_ticket_set_status,
    .ticket_history = ts_mg_ticket_history,
    .canned_create = ts_mg_canned_create,
    .canned_list = ts_mg_canned_list,
    .canned_get = ts_mg_canned_get,
    .canned_update = ts_mg_canned_update,
    .canned_delete = ts_mg_canned_delete,
    .comment_add = ts_mg_comment_add,
    .comment_list = ts_mg_comment_list,
    .user_list_role = ts_mg_user_list_role,
    .modreq_create = ts_mg_modreq_create,
    .modreq_get = ts_mg_modreq_get,
    .modreq_latest = ts_mg_modreq_latest,
    .modreq_last_rejection = ts_mg_modreq_last_rejection,
    .modreq_pending = ts_mg_modreq_pending,
    .modreq_decide = ts_mg_modreq_decide,
    .analytics = ts_mg_analytics,
    .job_claim = ts_mg_job_claim,
    .job_done = ts_mg_job_done,
    .job_extend = ts_mg_job_extend,
    .job_fail = ts_mg_job_fail,
    .job_list = ts_mg_job_list,
    .job_retry = ts_mg_job_retry,
    .job_purge = ts_mg_job_purge,
    .ticket_text = ts_mg_ticket_text,
    .ticket_set_triage = ts_mg_ticket_set_triage,
    .ticket_set_priority = ts_mg_ticket_set_priority,
    .ticket_sla_breach = ts_mg_ticket_sla_breach,
    .ticket_assign = ts_mg_ticket_assign,
    .ticket_stats = ts_mg_ticket_stats,
    .ticket_set_assignee = ts_mg_ticket_set_assignee,
    .user_handback = ts_mg_user_handback,
    .absent_assignees = ts_mg_absent_assignees,
};

/*
 * ts_model: user documents, enums, ObjectIds and time formatting.
 *
 * ObjectIds follow MongoDB's layout so both backends hand out ids the
 * original app's clients accept: 4-byte big-endian seconds, 5 random bytes
 * chosen once per process (re-chosen after fork, detected by pid), and a
 * 3-byte counter starting at a random value.
 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "ts_model.h"

static const char *ts_role_names[] = { "user", "moderator", "admin" };
static const char *ts_presence_names[] = { "offline", "online", "dnd" };


void
ts_user_clear(ts_user_t *u)
{
    free(u->username);
    free(u->email);
    if (u->password) {
        /* the hash is not secret, but there is no reason to leave it */
        memset(u->password, 0, strlen(u->password));
        free(u->password);
    }
    json_decref(u->skills);
    memset(u, 0, sizeof(*u));
}


json_t *
ts_user_json(const ts_user_t *u)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:I,"
                     " s:f, s:o}",
                     "_id", u->id,
                     "username", u->username ? u->username : "",
                     "email", u->email ? u->email : "",
                     "role", ts_role_name(u->role),
                     "skills", u->skills ? json_incref(u->skills) : json_array(),
                     "status", ts_presence_name(u->status),
                     "lastSeen", ts_iso_json(u->last_seen),
                     "createdAt", ts_iso_json(u->created_at),
                     "updatedAt", ts_iso_json(u->updated_at),
                     "totalTicketsResolved", (json_int_t) u->total_resolved,
                     "averageResolutionTimeHours", u->avg_resolution_hours,
                     "lastAssignedAt", ts_iso_json(u->last_assigned_at));
}


json_t *
ts_user_ref_json(const ts_user_t *u)
{
    return json_pack("{s:s, s:s, s:s, s:s}",
                     "_id", u->id,
                     "email", u->email ? u->email : "",
                     "username", u->username ? u->username : "",
                     "status", ts_presence_name(u->status));
}


const char *
ts_role_name(ts_role_e role)
{
    return (unsigned) role < 3 ? ts_role_names[role] : "user";
}


int
ts_role_parse(const char *s, ts_role_e *role)
{
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, ts_role_names[i]) == 0) {
            *role = (ts_role_e) i;
            return 0;
        }
    }
    return -1;
}


const char *
ts_presence_name(ts_presence_e p)
{
    return (unsigned) p < 3 ? ts_presence_names[p] : "offline";
}


int
ts_presence_parse(const char *s, ts_presence_e *p)
{
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, ts_presence_names[i]) == 0) {
            *p = (ts_presence_e) i;
            return 0;
        }
    }
    return -1;
}


static pthread_mutex_t  ts_oid_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t            ts_oid_pid;
static unsigned char    ts_oid_random[5];
static uint32_t         ts_oid_counter;

static void
ts_random_bytes(void *buf, size_t n)
{
    unsigned char  *p = buf;
    ssize_t         got;

    while (n > 0) {
        got = getrandom(p, n, 0);
        if (got <= 0) {
            /* getrandom cannot fail after boot; keep ids unique anyway */
            for (size_t i = 0; i < n; i++) {
                p[i] = (unsigned char) (rand() ^ (int) getpid());
            }
            return;
        }
        p += got;
        n -= (size_t) got;
    }
}


void
ts_oid_new(ts_oid_t oid)
{
    static const char  hex[] = "0123456789abcdef";
    unsigned char      raw[12];
    uint32_t           t, c;
    pid_t              pid;

    t = (uint32_t) time(NULL);
    pid = getpid();

    pthread_mutex_lock(&ts_oid_lock);
    if (pid != ts_oid_pid) {
        ts_random_bytes(ts_oid_random, sizeof(ts_oid_random));
        ts_random_bytes(&ts_oid_counter, sizeof(ts_oid_counter));
        ts_oid_pid = pid;
    }
    c = ts_oid_counter++ & 0xffffff;
    memcpy(raw + 4, ts_oid_random, 5);
    pthread_mutex_unlock(&ts_oid_lock);

    raw[0] = (unsigned char) (t >> 24);
    raw[1] = (unsigned char) (t >> 16);
    raw[2] = (unsigned char) (t >> 8);
    raw[3] = (unsigned char) t;
    raw[9] = (unsigned char) (c >> 16);
    raw[10] = (unsigned char) (c >> 8);
    raw[11] = (unsigned char) c;

    for (int i = 0; i < 12; i++) {
        oid[2 * i] = hex[raw[i] >> 4];
        oid[2 * i + 1] = hex[raw[i] & 0xf];
    }
    oid[TS_OID_LEN] = '\0';
}


int
ts_oid_valid(const char *s)
{
    size_t  i;

    if (s == NULL) {
        return 0;
    }
    for (i = 0; i < TS_OID_LEN; i++) {
        char c = s[i];
        /* lower case only: the one spelling both backends store, so an
         * id (or a token's "_id") in upper case names nothing on MongoDB
         * either, where the driver would read it as the same ObjectId */
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }
    return s[i] == '\0';
}


int64_t
ts_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


void
ts_iso_time(int64_t ms, char buf[32])
{
    time_t     sec = (time_t) (ms / 1000);
    struct tm  tm;
    int        v[7], i;
    char      *p = buf;

    /* hand-formatted: this runs for every date of every listed ticket */
    gmtime_r(&sec, &tm);
    v[0] = tm.tm_year + 1900;
    v[1] = tm.tm_mon + 1;
    v[2] = tm.tm_mday;
    v[3] = tm.tm_hour;
    v[4] = tm.tm_min;
    v[5] = tm.tm_sec;
    v[6] = (int) (ms % 1000);
    if (v[0] < 0 || v[0] > 9999) {
        v[0] = 0;
    }

    *p++ = (char) ('0' + v[0] / 1000);
    *p++ = (char) ('0' + v[0] / 100 % 10);
    *p++ = (char) ('0' + v[0] / 10 % 10);
    *p++ = (char) ('0' + v[0] % 10);
    for (i = 1; i < 6; i++) {
        *p++ = "--T::."[i - 1];
        *p++ = (char) ('0' + v[i] / 10 % 10);
        *p++ = (char) ('0' + v[i] % 10);
    }
    *p++ = '.';
    *p++ = (char) ('0' + v[6] / 100 % 10);
    *p++ = (char) ('0' + v[6] / 10 % 10);
    *p++ = (char) ('0' + v[6] % 10);
    *p++ = 'Z';
    *p = '\0';
}


json_t *
ts_iso_json(int64_t ms)
{
    char  buf[32];

    if (ms <= 0) {
        return json_null();
    }
    ts_iso_time(ms, buf);
    return json_string(buf);
}


double
ts_percentile(const double *sorted, size_t n, double p)
{
    double  pos, frac;
    size_t  lo;

    if (n == 0) {
        return 0;
    }
    pos = p * (double) (n - 1);
    lo = (size_t) pos;
    frac = pos - (double) lo;
    if (lo + 1 >= n) {
        return sorted[n - 1];
    }
    return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

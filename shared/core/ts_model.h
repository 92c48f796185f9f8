/*
 * ts_model: the documents the store holds, as plain C structs, and their
 * public JSON form.  Field names follow the original MongoDB schema
 * (DESIGN.md section 4).  Times are milliseconds since the epoch in memory
 * and ISO-8601 UTC strings on the wire.
 *
 * A struct owns every string it points to; ts_*_clear() frees them.
 */

#ifndef TS_MODEL_H
#define TS_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define TS_OID_LEN  24            /* hex characters of an ObjectId */

typedef char ts_oid_t[TS_OID_LEN + 1];

typedef enum {
    TS_ROLE_USER = 0,
    TS_ROLE_MODERATOR,
    TS_ROLE_ADMIN
} ts_role_e;

typedef enum {
    TS_PRESENCE_OFFLINE = 0,
    TS_PRESENCE_ONLINE,
    TS_PRESENCE_DND
} ts_presence_e;

typedef struct {
    ts_oid_t       id;
    char          *username;
    char          *email;          /* stored lower-case */
    char          *password;       /* bcrypt hash; never serialised */
    ts_role_e      role;
    json_t        *skills;         /* array of strings, owned */
    ts_presence_e  status;
    int64_t        last_seen;      /* ms, 0 = never */
    int64_t        created_at;
    int64_t        updated_at;
    int64_t        total_resolved;
    double         avg_resolution_hours;
    int64_t        last_assigned_at;  /* ms, 0 = never */
    int            status_chosen;  /* dnd/offline picked by the user */
    int64_t        session_epoch;  /* tokens carry it ("sv"); a password
                                      change or reset adds one, which ends
                                      every session issued before */
} ts_user_t;

/* Free what the user points to and zero it. */
void ts_user_clear(ts_user_t *u);

/* Public JSON of a user: every field but the password hash. */
json_t *ts_user_json(const ts_user_t *u);

/* Short public form used for populated references. */
json_t *ts_user_ref_json(const ts_user_t *u);

const char *ts_role_name(ts_role_e role);
int ts_role_parse(const char *s, ts_role_e *role);      /* 0 ok, -1 bad */
const char *ts_presence_name(ts_presence_e p);
int ts_presence_parse(const char *s, ts_presence_e *p); /* 0 ok, -1 bad */

/* Fill oid with a new ObjectId (4-byte time, 5-byte process random,
 * 3-byte counter), thread-safe and fork-safe. */
void ts_oid_new(ts_oid_t oid);

/* 1 when s is exactly 24 lower-case hex digits (an id as stored). */
int ts_oid_valid(const char *s);

/* Current wall-clock time in milliseconds. */
int64_t ts_now_ms(void);

/* Format ms since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf[32]. */
void ts_iso_time(int64_t ms, char buf[32]);

/* The p-quantile (0..1) of n sorted values, linearly interpolated. */
double ts_percentile(const double *sorted, size_t n, double p);

/* JSON string of an ISO time, or JSON null when ms is 0. */
json_t *ts_iso_json(int64_t ms);

#endif /* TS_MODEL_H */

/*
 * test_api: the routes of shared/api/ts_api.h run against a real SQLite file,
 * without nginx.  Protects: routing (404/405 + Allow, trailing slash,
 * HEAD), body parsing (invalid JSON, non-objects, duplicate keys, wrong
 * types), signup/login/logout semantics, lockout, admin-only routes, the
 * role re-read from the store, and that no password hash ever appears in
 * a response or event; the one session-and-visibility rule (ts_session.h)
 * and the rights events the routes emit for the sockets.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "ts_api.h"
#include "ts_session.h"

int test_api_run(void);

static const unsigned char  secret[] = "unit-test-secret-unit-test-secret-0123";

typedef struct {
    char          dir[64];
    ts_store_t   *s;
    ts_config_t   cfg;
} fixture_t;


static int
setup(void **state)
{
    fixture_t  *f = calloc(1, sizeof(*f));
    char        err[256], uri[128];

    strcpy(f->dir, "/tmp/ts-api-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(uri, sizeof(uri), "sqlite:%s/t.db", f->dir);
    f->s = ts_store_open(uri, err, sizeof(err));
    assert_non_null(f->s);
    f->cfg.jwt_secret = secret;
    f->cfg.jwt_secret_len = sizeof(secret) - 1;
    f->cfg.token_lifetime_s = 3600;
    f->cfg.bcrypt_cost = 4;
    f->cfg.lockout_failures = 3;
    f->cfg.lockout_window_ms = 60000;
    f->cfg.lockout_ms = 60000;
    *state = f;
    return 0;
}


static int
teardown(void **state)
{
    fixture_t  *f = *state;
    char        cmd[128];

    ts_store_close(f->s);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}


/*
 * Route and call like the module does; returns the status and the parsed
 * body in *out (caller frees).  token may be NULL.
 */
static int
call(fixture_t *f, ts_method_e m, const char *path, const char *body,
    const char *token, json_t **out, json_t **events)
{
    ts_request_t   req;
    ts_response_t  resp;
    ts_claims_t    cl;
    int            st;

    memset(&req, 0, sizeof(req));
    req.method = m;
    st = ts_api_match(m, path, strlen(path), &req.match, NULL, 0);
    if (st != 200) {
        *out = NULL;
        return st;
    }
    if (token && ts_token_verify(f->cfg.jwt_secret, f->cfg.jwt_secret_len,
                                 token, strlen(token), time(NULL), &cl) == 0)
    {
        req.claims = &cl;
    }
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    req.daemon_state = "disconnected";

    ts_api_call(&f->cfg, f->s, &req, &resp);
    assert_non_null(resp.body);
    /* the one rule that must hold for every answer */
    assert_null(strstr(resp.body, "$2b$"));
    assert_null(strstr(resp.body, "\"password\":"));
    *out = json_loadb(resp.body, resp.body_len, 0, NULL);
    assert_non_null(*out);
    if (events) {
        *events = json_incref(resp.events);
    }
    st = resp.status;
    ts_response_free(&resp);
    return st;
}


/* Sign up and return the token (malloc'ed); *role receives the role. */
static char *
signup(fixture_t *f, const char *name, char *id_out)
{
    char     body[256];
    json_t  *out, *ev;
    char    *tok;

    snprintf(body, sizeof(body), "{\"username\":\"%s\",\"email\":\"%s@x.io\","
             "\"password\":\"password-%s\",\"role\":\"admin\"}",
             name, name, name);
    assert_int_equal(call(f, TS_POST, "/api/auth/signup", body, NULL, &out,
                          &ev), 200);
    tok = strdup(json_string_value(json_object_get(out, "token")));
    if (id_out) {
        strcpy(id_out, json_string_value(
                   json_object_get(json_object_get(out, "user"), "_id")));
    }
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(ev, 0), "event")),
                        "user_status_changed");
    json_decref(ev);
    json_decref(out);
    return tok;
}


static const char *
error_of(json_t *out)
{
    const char *e = json_string_value(json_object_get(out, "error"));
    /* both keys carry the same text */
    assert_string_equal(e, json_string_value(json_object_get(out,
                                                             "message")));
    return e;
}


static void
routing_answers_404_405_and_ignores_trailing_slash(void **state)
{
    ts_match_t  m;
    char        allow[64];

    assert_int_equal(ts_api_match(TS_GET, "/api/health/", 12, &m, allow,
                                  sizeof(allow)), 200);
    assert_int_equal(ts_api_match(TS_HEAD, "/api/health", 11, &m, allow,
                                  sizeof(allow)), 200);
    assert_int_equal(ts_api_match(TS_GET, "/api/nope", 9, &m, allow,
                                  sizeof(allow)), 404);
    assert_int_equal(ts_api_match(TS_GET, "/api/auth/login", 15, &m, allow,
                                  sizeof(allow)), 405);
    assert_string_equal(allow, "POST");
    assert_int_equal(ts_api_match(TS_GET, "/api/healthz", 12, &m, NULL, 0),
                     404);
    assert_int_equal(ts_api_match(TS_GET, "/api", 4, &m, NULL, 0), 404);
    assert_int_equal(ts_api_access(&m), TS_ACCESS_ANYONE);
}


static void
the_openapi_document_is_a_route_the_host_answers(void **state)
{
    fixture_t  *f = *state;
    ts_match_t  m;
    char        allow[64];
    json_t     *out;

    assert_int_equal(ts_api_match(TS_HEAD, "/api/openapi.json/", 18, &m,
                                  allow, sizeof(allow)), 200);
    assert_true(ts_api_document(&m));
    assert_int_equal(ts_api_access(&m), TS_ACCESS_ANYONE);
    assert_int_equal(ts_api_match(TS_POST, "/api/openapi.json", 17, &m,
                                  allow, sizeof(allow)), 405);
    assert_string_equal(allow, "GET");
    assert_int_equal(ts_api_match(TS_GET, "/api/health", 11, &m, NULL, 0),
                     200);
    assert_false(ts_api_document(&m));

    /* it has no service: a host that calls it anyway gets a 404 */
    assert_int_equal(call(f, TS_GET, "/api/openapi.json", NULL, NULL, &out,
                          NULL), 404);
    json_decref(out);
}


static void
bodies_must_be_json_objects_with_typed_fields(void **state)
{
    fixture_t  *f = *state;
    json_t     *out;

    assert_int_equal(call(f, TS_POST, "/api/auth/signup", "{nope", NULL,
                          &out, NULL), 400);
    assert_string_equal(error_of(out), "Invalid JSON body");
    json_decref(out);
    assert_int_equal(call(f, TS_POST, "/api/auth/signup", "[1]", NULL, &out,
                          NULL), 400);
    json_decref(out);
    assert_int_equal(call(f, TS_POST, "/api/auth/signup", NULL, NULL, &out,
                          NULL), 400);
    json_decref(out);
    assert_int_equal(call(f, TS_POST, "/api/auth/login",
                          "{\"identifier\":\"a\",\"identifier\":\"b\","
                          "\"password\":\"x\"}", NULL, &out, NULL), 400);
    json_decref(out);
    assert_int_equal(call(f, TS_POST, "/api/auth/signup",
                          "{\"username\":{\"$gt\":\"\"},\"email\":\"a@b.co\","
                          "\"password\":\"12345678\"}", NULL, &out, NULL),
                     400);
    assert_string_equal(error_of(out), "username must be a string");
    json_decref(out);
    assert_int_equal(call(f, TS_POST, "/api/auth/signup",
                          "{\"username\":\"abc\",\"email\":\"a@b.co\","
                          "\"password\":\"short\"}", NULL, &out, NULL), 400);
    json_decref(out);
}


static void
first_signup_is_admin_and_role_in_body_is_ignored(void **state)
{
    fixture_t  *f = *state;
    json_t     *out;
    char       *t1 = signup(f, "alice", NULL);
    char       *t2 = signup(f, "bob", NULL);

    assert_int_equal(call(f, TS_GET, "/api/users", NULL, t1, &out, NULL),
                     200);
    assert_int_equal(json_array_size(out), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(out, 0), "role")), "admin");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(out, 1), "role")), "user");
    json_decref(out);

    assert_int_equal(call(f, TS_GET, "/api/auth/users", NULL, t2, &out,
                          NULL), 403);
    json_decref(out);
    assert_int_equal(call(f, TS_GET, "/api/auth/users", NULL, NULL, &out,
                          NULL), 401);
    assert_string_equal(error_of(out), "Access Denied. No token found.");
    json_decref(out);

    assert_int_equal(call(f, TS_POST, "/api/auth/signup",
                          "{\"username\":\"ALICE\",\"email\":\"z@x.io\","
                          "\"password\":\"12345678\"}", NULL, &out, NULL),
                     409);
    assert_string_equal(error_of(out), "Username already taken");
    json_decref(out);
    free(t1);
    free(t2);
}


static void
login_is_uniform_and_locks_out_per_identifier(void **state)
{
    fixture_t  *f = *state;
    json_t     *out;
    char       *t = signup(f, "carol", NULL);

    assert_int_equal(call(f, TS_POST, "/api/auth/login",
                          "{\"identifier\":\"CAROL@x.io\","
                          "\"password\":\"password-carol\"}", NULL, &out,
                          NULL), 200);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(out, "user"), "status")),
                        "online");
    json_decref(out);

    /* the original app's body shape */
    assert_int_equal(call(f, TS_POST, "/api/auth/login",
                          "{\"email\":\"carol@x.io\","
                          "\"password\":\"password-carol\"}", NULL, &out,
                          NULL), 200);
    json_decref(out);

    for (int i = 0; i < 3; i++) {
        assert_int_equal(call(f, TS_POST, "/api/auth/login",
                              "{\"identifier\":\"carol\",\"password\":\"no\"}",
                              NULL, &out, NULL), 401);
        assert_string_equal(error_of(out), "Invalid credentials");
        json_decref(out);
        assert_int_equal(call(f, TS_POST, "/api/auth/login",
                              "{\"identifier\":\"ghost\",\"password\":\"no\"}",
                              NULL, &out, NULL), 401);
        assert_string_equal(error_of(out), "Invalid credentials");
        json_decref(out);
    }
    /* locked: even the right password, and unknown names alike */
    assert_int_equal(call(f, TS_POST, "/api/auth/login",
                          "{\"identifier\":\"carol\","
                          "\"password\":\"password-carol\"}", NULL, &out,
                          NULL), 429);
    json_decref(out);
    assert_int_equal(call(f, TS_POST, "/api/auth/login",
                          "{\"identifier\":\"ghost\",\"password\":\"no\"}",
                          NULL, &out, NULL), 429);
    json_decref(out);
    free(t);
}


static void
logout_revokes_only_that_token(void **state)
{
    fixture_t  *f = *state;
    json_t     *out;
    char       *t1 = signup(f, "dave", NULL);
    char       *t2;

    sleep(1);   /* a different iat, as well as a different jti */
    assert_int_equal(call(f, TS_POST, "/api/auth/login",
                          "{\"identifier\":\"dave\","
                          "\"password\":\"password-dave\"}", NULL, &out,
                          NULL), 200);
    t2 = strdup(json_string_value(json_object_get(out, "token")));
    json_decref(out);

    assert_int_equal(call(f, TS_POST, "/api/auth/logout", NULL, t1, &out,
                          NULL), 200);
    assert_string_equal(json_string_value(json_object_get(out, "message")),
                        "Logout successfully");
    json_decref(out);
    assert_int_equal(call(f, TS_PATCH, "/api/auth/status",
                          "{\"status\":\"dnd\"}", t1, &out, NULL), 401);
    assert_string_equal(error_of(out), "Invalid token");
    json_decref(out);
    assert_int_equal(call(f, TS_PATCH, "/api/auth/status",
                          "{\"status\":\"dnd\"}", t2, &out, NULL), 200);
    assert_string_equal(json_string_value(json_object_get(out, "status")),
                        "dnd");
    json_decref(out);
    assert_int_equal(call(f, TS_PATCH, "/api/auth/status",
                          "{\"status\":\"away\"}", t2, &out, NULL), 400);
    json_decref(out);
    free(t1);
    free(t2);
}


static void
update_user_changes_role_at_once_and_keeps_one_admin(void **state)
{
    fixture_t  *f = *state;
    json_t     *out;
    char       *admin = signup(f, "erin", NULL);
    char       *user = signup(f, "frank", NULL);

    assert_int_equal(call(f, TS_POST, "/api/auth/update-user",
                          "{\"email\":\"erin@x.io\",\"role\":\"user\"}",
                          admin, &out, NULL), 400);
    json_decref(out);
    assert_int_equal(call(f, TS_POST, "/api/auth/update-user",
                          "{\"email\":\"frank@x.io\",\"role\":\"root\"}",
                          admin, &out, NULL), 400);
    json_decref(out);
    assert_int_equal(call(f, TS_POST, "/api/auth/update-user",
                          "{\"email\":\"nobody@x.io\",\"role\":\"user\"}",
                          admin, &out, NULL), 404);
    json_decref(out);

    /* promote frank: his existing token gains admin rights at once */
    assert_int_equal(call(f, TS_POST, "/api/auth/update-user",
                          "{\"email\":\"FRANK@x.io\",\"role\":\"admin\","
                          "\"skills\":\"Go, go, SQL\"}", admin, &out, NULL),
                     200);
    json_decref(out);
    assert_int_equal(call(f, TS_GET, "/api/users", NULL, user, &out, NULL),
                     200);
    assert_int_equal(json_array_size(json_object_get(
                         json_array_get(out, 1), "skills")), 2);
    json_decref(out);

    /* and demoting him takes it away at once */
    assert_int_equal(call(f, TS_POST, "/api/auth/update-user",
                          "{\"email\":\"frank@x.io\",\"role\":\"user\","
                          "\"skills\":[]}", admin, &out, NULL), 200);
    json_decref(out);
    assert_int_equal(call(f, TS_GET, "/api/users", NULL, user, &out, NULL),
                     403);
    json_decref(out);
    free(admin);
    free(user);
}


/* The events of a response named name (a new reference), else NULL. */
static json_t *
event_named(json_t *events, const char *name)
{
    size_t   i;
    json_t  *ev;

    json_array_foreach(events, i, ev) {
        if (strcmp(json_string_value(json_object_get(ev, "event")), name)
            == 0)
        {
            return json_incref(ev);
        }
    }
    return NULL;
}


static void
rights_events_follow_logout_and_role_changes(void **state)
{
    fixture_t    *f = *state;
    json_t       *out, *events, *ev;
    char          admin_id[32], user_id[32], body[256];
    char         *ta = signup(f, "erin", admin_id);
    char         *tu = signup(f, "frank", user_id);
    ts_claims_t   cl;
    ts_rights_t   rt;

    /* logout: session_revoked {userId, sig of that token}, room null */
    assert_int_equal(ts_token_verify(f->cfg.jwt_secret,
                                     f->cfg.jwt_secret_len, tu, strlen(tu),
                                     time(NULL), &cl), 0);
    assert_int_equal(call(f, TS_POST, "/api/auth/logout", NULL, tu, &out,
                          &events), 200);
    ev = event_named(events, "session_revoked");
    assert_non_null(ev);
    assert_true(json_is_null(json_object_get(ev, "room"))
                || json_object_get(ev, "room") == NULL);
    assert_int_equal(ts_rights_parse("session_revoked",
                                     json_object_get(ev, "data"), &rt), 0);
    assert_string_equal(rt.user_id, user_id);
    assert_string_equal(rt.sig, cl.sig);
    json_decref(ev);
    json_decref(events);
    json_decref(out);

    /* update-user: user_changed {userId} */
    snprintf(body, sizeof(body), "{\"email\":\"frank@x.io\","
             "\"role\":\"moderator\"}");
    assert_int_equal(call(f, TS_POST, "/api/auth/update-user", body, ta,
                          &out, &events), 200);
    ev = event_named(events, "user_changed");
    assert_non_null(ev);
    assert_int_equal(ts_rights_parse("user_changed",
                                     json_object_get(ev, "data"), &rt), 0);
    assert_string_equal(rt.user_id, user_id);
    json_decref(ev);
    json_decref(events);
    json_decref(out);

    /* a refused update changes nothing and says nothing */
    assert_int_equal(call(f, TS_POST, "/api/auth/update-user",
                          "{\"email\":\"frank@x.io\",\"role\":\"king\"}",
                          ta, &out, &events), 400);
    assert_null(event_named(events, "user_changed"));
    json_decref(events);
    json_decref(out);
    free(ta);
    free(tu);
}


static void
rights_events_are_schema_checked(void **state)
{
    ts_rights_t  rt;
    json_t      *d;
    const char  *oid = "0123456789abcdef01234567";

    assert_false(ts_rights_internal("comment_added"));
    assert_false(ts_rights_internal(NULL));
    assert_true(ts_rights_internal("ticket_access_changed"));

    d = ts_rights_session_revoked(oid, "abc_DEF-123");
    assert_int_equal(ts_rights_parse("session_revoked", d, &rt), 0);
    assert_int_equal(rt.kind, TS_RIGHTS_SESSION_REVOKED);
    assert_string_equal(rt.sig, "abc_DEF-123");
    /* a user_changed body is no session_revoked without its sig */
    json_object_del(d, "sig");
    assert_int_equal(ts_rights_parse("session_revoked", d, &rt), -1);
    json_decref(d);

    d = json_pack("{s:s, s:s}", "userId", oid, "sig", "a.b");  /* '.' */
    assert_int_equal(ts_rights_parse("session_revoked", d, &rt), -1);
    json_decref(d);
    d = json_pack("{s:s}", "userId", "0123456789ABCDEF01234567");
    assert_int_equal(ts_rights_parse("user_changed", d, &rt), -1);
    json_decref(d);
    d = json_pack("{s:i}", "ticketId", 7);
    assert_int_equal(ts_rights_parse("ticket_access_changed", d, &rt), -1);
    json_decref(d);
    d = ts_rights_ticket_access_changed(oid);
    assert_int_equal(ts_rights_parse("ticket_access_changed", d, &rt), 0);
    assert_string_equal(rt.ticket_id, oid);
    assert_int_equal(ts_rights_parse("comment_added", d, &rt), -1);
    json_decref(d);
    assert_int_equal(ts_rights_parse("user_changed", NULL, &rt), -1);
}


static void
visibility_is_admin_creator_or_assignee(void **state)
{
    ts_user_t         u;
    ts_ticket_keys_t  k;

    memset(&u, 0, sizeof(u));
    memset(&k, 0, sizeof(k));
    strcpy(u.id, "aaaaaaaaaaaaaaaaaaaaaaaa");
    strcpy(k.created_by, "bbbbbbbbbbbbbbbbbbbbbbbb");
    u.role = TS_ROLE_MODERATOR;
    assert_false(ts_ticket_visible(&u, &k));      /* unassigned */
    strcpy(k.assigned_to, u.id);
    assert_true(ts_ticket_visible(&u, &k));
    k.assigned_to[0] = '\0';
    u.role = TS_ROLE_ADMIN;
    assert_true(ts_ticket_visible(&u, &k));
    u.role = TS_ROLE_USER;
    strcpy(k.created_by, u.id);
    assert_true(ts_ticket_visible(&u, &k));
}


static void
session_load_tells_invalid_from_store_errors(void **state)
{
    fixture_t     *f = *state;
    char           id[32];
    char          *t = signup(f, "gina", id);
    ts_claims_t    cl;
    ts_user_t      u;

    assert_int_equal(ts_token_verify(f->cfg.jwt_secret,
                                     f->cfg.jwt_secret_len, t, strlen(t),
                                     time(NULL), &cl), 0);
    assert_int_equal(ts_session_load(f->s, &cl, &u), TS_SESSION_OK);
    assert_string_equal(u.id, id);
    assert_int_equal(u.role, TS_ROLE_ADMIN);
    ts_user_clear(&u);

    /* an unknown user is invalid, not an error */
    strcpy(cl.user_id, "0123456789abcdef01234567");
    assert_int_equal(ts_session_load(f->s, &cl, &u), TS_SESSION_INVALID);
    assert_null(u.username);

    /* a revoked token is invalid */
    assert_int_equal(ts_token_verify(f->cfg.jwt_secret,
                                     f->cfg.jwt_secret_len, t, strlen(t),
                                     time(NULL), &cl), 0);
    assert_int_equal(ts_store_token_revoke(f->s, cl.sig,
                                           (cl.exp + 60) * 1000), TS_OK);
    assert_int_equal(ts_session_load(f->s, &cl, &u), TS_SESSION_INVALID);
    free(t);
}


static void
session_load_refuses_tokens_of_an_older_session_epoch(void **state)
{
    fixture_t     *f = *state;
    char           id[32], hash[TS_HASH_MAX];
    char          *t = signup(f, "hugo", id), *t2;
    ts_claims_t    cl, cl2;
    ts_user_t      u;
    int64_t        epoch = 0;

    assert_int_equal(ts_token_verify(f->cfg.jwt_secret,
                                     f->cfg.jwt_secret_len, t, strlen(t),
                                     time(NULL), &cl), 0);
    assert_int_equal(cl.epoch, 0);
    assert_int_equal(ts_password_hash("another-password", 4, hash), 0);
    assert_int_equal(ts_store_user_set_password(f->s, id, NULL, NULL, hash,
                                                ts_now_ms(), NULL, &epoch),
                     TS_OK);
    assert_int_equal(epoch, 1);
    /* the token issued before is refused; one of the new epoch passes */
    assert_int_equal(ts_session_load(f->s, &cl, &u), TS_SESSION_INVALID);
    assert_null(u.username);
    t2 = ts_token_issue(f->cfg.jwt_secret, f->cfg.jwt_secret_len, id, "user",
                        epoch, time(NULL), 3600);
    assert_non_null(t2);
    assert_int_equal(ts_token_verify(f->cfg.jwt_secret,
                                     f->cfg.jwt_secret_len, t2, strlen(t2),
                                     time(NULL), &cl2), 0);
    assert_int_equal(ts_session_load(f->s, &cl2, &u), TS_SESSION_OK);
    assert_int_equal(u.session_epoch, 1);
    ts_user_clear(&u);
    free(t);
    free(t2);
}


static void
health_reports_store_and_daemon(void **state)
{
    fixture_t  *f = *state;
    json_t     *out;

    assert_int_equal(call(f, TS_GET, "/api/health", NULL, NULL, &out, NULL),
                     200);
    assert_string_equal(json_string_value(json_object_get(out, "status")),
                        "ok");
    assert_string_equal(json_string_value(json_object_get(out, "store")),
                        "ok");
    assert_string_equal(json_string_value(json_object_get(out, "daemon")),
                        "disconnected");
    json_decref(out);
}


int
test_api_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(routing_answers_404_405_and_ignores_trailing_slash),
        cmocka_unit_test_setup_teardown(
            the_openapi_document_is_a_route_the_host_answers, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            bodies_must_be_json_objects_with_typed_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(
            first_signup_is_admin_and_role_in_body_is_ignored, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            login_is_uniform_and_locks_out_per_identifier, setup, teardown),
        cmocka_unit_test_setup_teardown(
            logout_revokes_only_that_token, setup, teardown),
        cmocka_unit_test_setup_teardown(
            update_user_changes_role_at_once_and_keeps_one_admin, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            rights_events_follow_logout_and_role_changes, setup, teardown),
        cmocka_unit_test(rights_events_are_schema_checked),
        cmocka_unit_test(visibility_is_admin_creator_or_assignee),
        cmocka_unit_test_setup_teardown(
            session_load_tells_invalid_from_store_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(
            session_load_refuses_tokens_of_an_older_session_epoch, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            health_reports_store_and_daemon, setup, teardown),
    };
    return cmocka_run_group_tests_name("api", tests, NULL, NULL);
}

"""The optional Redis cache (ticket_redis + ticketd --redis) against a real
redis-server: list pages and user lists are served from Redis until a write
(a REST request or a background job, on any node) invalidates them; no
password hash is ever stored there; and Redis stopping never fails a
request, caching resuming when it returns."""
import subprocess
import threading
import time

from conftest import TICKETD, Stack, _finish, nginx_test, poll, unique_name
from redis_util import RedisServer, redis_server, require_redis  # noqa: F401


def cached_stack(make_stack, redis, outbox=None, workers="2"):
    """A stack with the cache; with an outbox folder, ticketd runs jobs
    (offline triage, mail into that folder)."""
    args = "--redis %s %s" % (redis.url, "--triage-provider offline "
                              "--mail-transport outbox --outbox %s" % outbox
                              if outbox else "--jobs 0")
    st = make_stack(REDIS=redis.url, TICKETD_ARGS=args, WORKERS=workers)
    st.admin, st.admin_token = st.signup(username=unique_name("admin"))
    assert st.admin["role"] == "admin"
    return st


def list_page(st, token, query=""):
    r = st.get("/api/tickets" + query, token=token)
    assert r.status_code == 200, r.text
    return r


def test_health_reports_redis_ok_then_unavailable(make_stack, redis_server):
    st = cached_stack(make_stack, redis_server)
    assert st.health()["redis"] == "ok"
    redis_server.kill()
    assert poll(lambda: st.health()["redis"] == "unavailable", 5)


def test_list_page_is_served_from_redis_until_a_write_invalidates_it(
        make_stack, redis_server):
    st = cached_stack(make_stack, redis_server)
    user, token = st.signup()
    t = st.create_ticket(token, title="printer jams")

    first = list_page(st, token)
    assert redis_server.command("KEYS", "ticket:*:list:*"), "nothing cached"

    # change the store behind the cache's back: the cached page still
    # answers, which is how we know the store was not read
    assert st.probe.set_fields("tickets", t["_id"], title="renamed") == 1
    for _ in range(6):                 # any worker, any thread
        again = list_page(st, token)
        assert again.content == first.content
        assert again.json()["tickets"][0]["title"] == "printer jams"

    # a write through the API invalidates every page at once
    st.create_ticket(token, title="second one")
    titles = [x["title"] for x in list_page(st, token).json()["tickets"]]
    assert titles == ["second one", "renamed"]
    assert list_page(st, st.admin_token).json()["pagination"]["total"] == 2


def test_cached_page_is_byte_identical_and_dates_survive(make_stack,
                                                         redis_server):
    st = cached_stack(make_stack, redis_server)
    _, token = st.signup()
    for i in range(3):
        st.create_ticket(token, title="ticket %d" % i)
    query = "?page=1&limit=2&search=TICKET"
    miss = list_page(st, token, query)
    hit = list_page(st, token, query)
    assert hit.content == miss.content
    body = hit.json()
    assert body["pagination"] == {"total": 3, "page": 1, "pages": 2,
                                  "limit": 2}
    created = body["tickets"][0]["createdAt"]
    assert created.endswith("Z") and "T" in created
    # other queries are other pages, not the same entry
    other = list_page(st, token, "?page=2&limit=2&search=TICKET").json()
    assert [x["title"] for x in other["tickets"]] == ["ticket 0"]


def test_password_from_a_file_and_database_of_the_url_are_used(
        make_stack, tmp_path):
    """The Redis password reaches nginx and ticketd through files
    (ticket_redis_password_file, --redis-password-file), never a command
    line: ticketd's /proc/<pid>/cmdline does not hold it while the cache
    and the bridge work against a requirepass redis-server."""
    require_redis()
    server = RedisServer(tmp_path, password="s3cr:et@/x")
    pw_file = tmp_path / "redis.pw"
    pw_file.write_text(server.password + "\n")
    pw_file.chmod(0o600)
    try:
        url = "redis://127.0.0.1:%d/3" % server.port
        st = make_stack(REDIS=url, REDIS_PASSWORD_FILE=str(pw_file),
                        TICKETD_ARGS="--redis %s --redis-password-file %s "
                        "--jobs 0" % (url, pw_file))
        cmdline = open("/proc/%d/cmdline" % st.daemon_proc.pid,
                       "rb").read()
        assert b"--redis-password-file" in cmdline
        assert server.password.encode() not in cmdline, cmdline
        assert b"s3cr" not in cmdline, cmdline
        assert poll(lambda: "subscribed" in st.daemon_log(), 5), \
            st.daemon_log()[-2000:]
        _, token = st.signup()
        st.create_ticket(token, title="in db 3")
        assert st.health()["redis"] == "ok"
        first = list_page(st, token)
        # the page went to database 3 (AUTH and SELECT took), not 0
        assert server.command("KEYS", "ticket:*:list:*", db=3), \
            "nothing cached in db 3"
        assert server.command("KEYS", "*") == []
        assert list_page(st, token).content == first.content

        # a wrong password: nothing is cached, every request still answers
        bad_file = tmp_path / "wrong.pw"
        bad_file.write_text("wrong")
        st2 = make_stack(REDIS=url, REDIS_PASSWORD_FILE=str(bad_file),
                         TICKETD_ARGS="--redis %s --redis-password-file %s "
                         "--jobs 0" % (url, bad_file))
        _, token2 = st2.signup()
        st2.create_ticket(token2, title="no cache")
        assert st2.health()["redis"] == "unavailable"
        assert list_page(st2, token2).json()["pagination"]["total"] == 1
    finally:
        server.close()


def test_a_password_on_a_command_line_or_in_the_url_is_refused(
        tmp_path, stack):
    """ticketd refuses --redis with a password in the URL (every local user
    reads argv), and so does nginx -t for ticket_redis: the clear error
    names the file option instead."""
    r = subprocess.run(
        [str(TICKETD), "--socket", str(tmp_path / "s.sock"), "--store",
         "sqlite:%s" % (tmp_path / "x.db"), "--jwt-secret-file",
         str(stack.secret_file), "--redis", "redis://:hunter2@127.0.0.1"],
        capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "--redis-password-file" in r.stderr, r.stderr
    assert "hunter2" not in r.stderr

    # and the wire keys need the secret
    r = subprocess.run(
        [str(TICKETD), "--socket", str(tmp_path / "s.sock"), "--store",
         "sqlite:%s" % (tmp_path / "x.db"), "--redis", "redis://127.0.0.1"],
        capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "--jwt-secret-file" in r.stderr, r.stderr

    conf = tmp_path / "nginx.conf"
    text = stack.conf.read_text().replace(
        "ticket_redis off;", "ticket_redis redis://:hunter2@127.0.0.1;")
    assert "hunter2" in text
    conf.write_text(text)
    r = nginx_test(stack.prefix, conf)
    assert r.returncode != 0
    assert "ticket_redis_password_file" in r.stderr, r.stderr


def cached_page_key(redis, scope_user=None):
    keys = redis.command("KEYS", "ticket:*:list:*")
    assert keys, "nothing cached"
    if scope_user is not None:
        keys = [k for k in keys if scope_user in k]
    assert len(keys) == 1, keys
    return keys[0]


def test_tampered_cached_page_is_not_served_and_is_overwritten(
        make_stack, redis_server):
    """Whoever can write to Redis cannot change what GET /api/tickets
    answers: a cached page whose bytes were changed, or that was made by
    someone without the secret, fails its MAC, is a miss served from the
    store, and is overwritten with an authentic page."""
    st = cached_stack(make_stack, redis_server)
    user, token = st.signup()
    st.create_ticket(token, title="printer jams")
    first = list_page(st, token)
    key = cached_page_key(redis_server, user["_id"])
    value = redis_server.command("GET", key)
    assert "printer jams" in value

    tampered = value.replace("printer jams", "pay to this IBAN")
    assert redis_server.command("SET", key, tampered) == "OK"
    for _ in range(6):                 # any worker, any thread
        again = list_page(st, token)
        assert again.content == first.content, again.text
    assert redis_server.command("GET", key) == value   # overwritten

    # a page as the old code wrote it, "<version>|<total>|<json>": forged
    # by someone who read the version counter
    version = redis_server.command("GET", key.split(":list:")[0]
                                   + ":v:tickets") or "0"
    forged = '%s|1|[{"_id":"%s","title":"forged"}]' % (version, "f" * 24)
    assert redis_server.command("SET", key, forged) == "OK"
    again = list_page(st, token)
    assert again.content == first.content, again.text
    assert "forged" not in again.text


def test_a_page_copied_to_another_users_key_is_not_served(make_stack,
                                                          redis_server):
    """A cached value is bound to its key: the admin's page (every ticket)
    copied under a user's key is not served to that user."""
    st = cached_stack(make_stack, redis_server)
    a, a_token = st.signup()
    b, b_token = st.signup()
    st.create_ticket(a_token, title="a's secret ticket")
    assert list_page(st, b_token).json()["pagination"]["total"] == 0
    assert list_page(st, a_token).json()["pagination"]["total"] == 1
    a_key = cached_page_key(redis_server, a["_id"])
    b_key = cached_page_key(redis_server, b["_id"])
    assert redis_server.command("SET", b_key,
                                redis_server.command("GET", a_key)) == "OK"
    page = list_page(st, b_token)
    assert page.json()["pagination"]["total"] == 0, page.text
    assert "secret ticket" not in page.text


def test_a_version_counter_set_back_does_not_revive_an_old_page(
        make_stack, redis_server):
    """The MAC binds a page to the version it was read under, and a counter
    that goes back is refused: setting v:tickets to an old value does not
    make the page from before a write current again."""
    st = cached_stack(make_stack, redis_server, workers="1")
    user, token = st.signup()
    st.create_ticket(token, title="old")
    for _ in range(10):                # every thread of the one worker
        list_page(st, token)
    key = cached_page_key(redis_server, user["_id"])
    old_value = redis_server.command("GET", key)
    vkey = key.split(":list:")[0] + ":v:tickets"
    old_version = redis_server.command("GET", vkey)

    st.create_ticket(token, title="new")
    for _ in range(10):
        assert titles(st, token)[0] == "new"

    # roll the counter and the page back to before the write
    assert redis_server.command("SET", vkey, old_version) == "OK"
    assert redis_server.command("SET", key, old_value) == "OK"
    for _ in range(10):
        assert titles(st, token)[0] == "new"


def test_scopes_never_share_a_page(make_stack, redis_server):
    st = cached_stack(make_stack, redis_server)
    _, a = st.signup()
    _, b = st.signup()
    st.create_ticket(a, title="only a's")
    assert list_page(st, a).json()["pagination"]["total"] == 1
    assert list_page(st, b).json()["pagination"]["total"] == 0
    assert list_page(st, st.admin_token).json()["pagination"]["total"] == 1


def test_presence_change_invalidates_people_shown_in_lists(make_stack,
                                                           redis_server):
    st = cached_stack(make_stack, redis_server)
    _, token = st.signup()
    mod, mod_token = st.make_user("moderator")
    t = st.create_ticket(token)
    st.probe.assign(t["_id"], mod["_id"])
    st.create_ticket(token)                # bumps past the hand edit
    assert st.patch("/api/auth/status", token=mod_token,
                    json={"status": "online"}).status_code == 200

    def assignee_status():
        tickets = list_page(st, token).json()["tickets"]
        return [x["assignedTo"]["status"] for x in tickets
                if x.get("assignedTo")]
    assert assignee_status() == ["online"]
    assert assignee_status() == ["online"]            # now cached
    assert st.patch("/api/auth/status", token=mod_token,
                    json={"status": "dnd"}).status_code == 200
    assert assignee_status() == ["dnd"]


def test_user_lists_are_cached_and_role_changes_invalidate_them(
        make_stack, redis_server):
    st = cached_stack(make_stack, redis_server)
    user, _ = st.signup()

    def roles():
        r = st.get("/api/users", token=st.admin_token)
        assert r.status_code == 200
        return {u["_id"]: u["role"] for u in r.json()}
    assert roles()[user["_id"]] == "user"
    assert redis_server.command("KEYS", "ticket:*:users:*")
    assert roles()[user["_id"]] == "user"
    r = st.post("/api/auth/update-user", token=st.admin_token,
                json={"email": user["email"], "role": "moderator"})
    assert r.status_code == 200
    assert roles()[user["_id"]] == "moderator"


def test_background_jobs_invalidate_what_nginx_cached(make_stack,
                                                      redis_server, tmp_path):
    """Triage and assignment run in ticketd; their writes reach the
    version counters nginx reads, so no one waits 180 s for them."""
    st = cached_stack(make_stack, redis_server, outbox=tmp_path / "outbox")
    mod, _ = st.make_user("moderator", skills=["printers", "networking"])
    _, token = st.signup()
    t = st.create_ticket(token, title="Printer offline",
                         description="The office printer is offline and "
                                     "will not print over the network.")
    first = list_page(st, token).json()["tickets"][0]
    assert first["_id"] == t["_id"]

    def triaged_and_assigned():
        row = list_page(st, token).json()["tickets"][0]
        return row if row.get("priority") and row.get("assignedTo") else None
    row = poll(triaged_and_assigned, 15, 0.1)
    assert row, "the list never showed the job's writes"
    assert row["assignedTo"]["_id"] == mod["_id"]


def test_no_password_hash_or_secret_is_ever_cached(make_stack, redis_server):
    st = cached_stack(make_stack, redis_server)
    mod, _ = st.make_user("moderator")
    _, token = st.signup()
    t = st.create_ticket(token)
    st.probe.assign(t["_id"], mod["_id"])
    st.create_ticket(token)
    list_page(st, token)
    list_page(st, st.admin_token)
    assert st.get("/api/users", token=st.admin_token).status_code == 200
    values = redis_server.values("ticket:*")
    assert any(":list:" in k for k in values)
    assert any(":users:" in k for k in values)
    for key, value in values.items():
        text = value if isinstance(value, str) else value.decode("latin-1")
        assert "$2b$" not in text and "$2a$" not in text, key
        assert '"password"' not in text, key
        assert st.secret.decode() not in text, key


def test_redis_killed_mid_run_no_request_fails_and_caching_resumes(
        make_stack, redis_server):
    st = cached_stack(make_stack, redis_server)
    _, token = st.signup()
    st.create_ticket(token, title="before")
    list_page(st, token)
    assert redis_server.command("KEYS", "ticket:*:list:*")

    redis_server.kill()
    for i in range(20):
        st.create_ticket(token, title="during %d" % i)
        body = list_page(st, token, "?limit=100").json()
        assert body["pagination"]["total"] == i + 2
        assert st.get("/api/users", token=st.admin_token).status_code == 200

    redis_server.start()                       # empty: no dump was saved
    assert poll(lambda: list_page(st, token).status_code == 200 and
                redis_server.command("KEYS", "ticket:*:list:*"), 10, 0.2), \
        "caching did not resume"
    assert list_page(st, token, "?limit=100").json()["pagination"]["total"] \
        == 21


def test_pages_saved_before_an_outage_are_not_served_after_it(
        make_stack, redis_server):
    """Redis stops saving its data; a write happens while it is away (its
    invalidation cannot reach Redis); Redis comes back from its dump with
    the old pages and counters, but under the old run id, which no one
    reads any more: the old page is never served."""
    st = cached_stack(make_stack, redis_server)
    _, token = st.signup()
    st.create_ticket(token, title="old")
    for _ in range(8):
        list_page(st, token)
    redis_server.shutdown_saving()

    st.create_ticket(token, title="made while redis was away")
    redis_server.start()                       # loads dump.rdb
    assert redis_server.command("KEYS", "ticket:*:list:*"), "dump not loaded"
    for _ in range(30):
        titles = [x["title"] for x in list_page(st, token).json()["tickets"]]
        assert titles[0] == "made while redis was away", titles
        time.sleep(0.05)


def test_two_nodes_sharing_store_and_redis_see_each_others_writes(
        make_stack, tmp_path_factory, redis_server):
    """The multi-host topology without Docker: two nginx+ticketd pairs over
    one store, one JWT secret and one Redis.  A token from one node works
    on the other, and a write on one node invalidates the pages the other
    cached."""
    a = cached_stack(make_stack, redis_server)
    b = Stack(tmp_path_factory.mktemp("node-b"),
              dict(REDIS=redis_server.url,
                   TICKETD_ARGS="--jobs 0 --redis %s" % redis_server.url))
    b.store, b.secret, b.secret_file = a.store, a.secret, a.secret_file
    try:
        b.start()
        _, token = a.signup()
        a.create_ticket(token, title="from node a")
        assert titles(b, token) == ["from node a"]
        assert titles(a, token) == ["from node a"]       # cached on both
        b.create_ticket(token, title="from node b")
        assert titles(a, token) == ["from node b", "from node a"]
        assert titles(b, token) == ["from node b", "from node a"]
    finally:
        _finish(b)


def titles(st, token):
    return [x["title"] for x in list_page(st, token).json()["tickets"]]


def test_redis_killed_during_a_concurrent_load_run_fails_no_request(
        make_stack, redis_server):
    """8 clients list and create tickets as fast as they can while Redis is
    killed under them and started again: every answer is a success."""
    st = cached_stack(make_stack, redis_server)
    users = [st.signup() for _ in range(4)]
    for _, token in users:
        st.create_ticket(token)
    statuses, stop = [], threading.Event()

    def client(i):
        token = users[i % len(users)][1]
        n = 0
        while not stop.is_set():
            if n % 5 == 4:
                r = st.post("/api/tickets", token=token,
                            json={"title": "load %d/%d" % (i, n),
                                  "description": "during the outage"})
            else:
                r = st.get("/api/tickets?limit=5&page=%d" % (1 + n % 3),
                           token=token)
            statuses.append(r.status_code)
            n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        redis_server.kill()
        time.sleep(2.0)
        redis_server.start()
        time.sleep(2.0)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert len(statuses) > 200, "the load run did too little to mean much"
    bad = [s for s in statuses if s not in (200, 201)]
    assert not bad, "%d of %d requests failed: %s" % (
        len(bad), len(statuses), sorted(set(bad)))
    assert redis_server.command("KEYS", "ticket:*:list:*"), \
        "caching did not resume"

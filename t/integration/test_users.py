"""Admin user management: listing users, updating role and skills, and
demotions that take effect at once."""


import pytest

from conftest import assert_error, contains_key, unique_name


def role_in_store(stack, user_id):
    return stack.probe.user(user_id)["role"]


def update_user(stack, token, **body):
    return stack.post("/api/auth/update-user", token=token, json=body)


def test_first_signup_on_a_fresh_store_is_admin(make_stack):
    st = make_stack()
    first, _ = st.signup(role="user")
    second, _ = st.signup(role="admin")
    assert first["role"] == "admin"
    assert second["role"] == "user"
    assert role_in_store(st, first["_id"]) == "admin"
    assert role_in_store(st, second["_id"]) == "user"


@pytest.mark.parametrize("path", ["/api/auth/users", "/api/users"])
def test_admin_lists_users_without_passwords(stack, admin, path):
    _, admin_token = admin
    user, _ = stack.signup(skills=["Linux"])
    r = stack.get(path, token=admin_token)
    assert r.status_code == 200, r.text
    users = r.json()
    assert isinstance(users, list)
    by_id = {u["_id"]: u for u in users}
    assert stack.admin["_id"] in by_id
    assert by_id[user["_id"]]["username"] == user["username"]
    assert by_id[user["_id"]]["skills"] == ["linux"]
    assert len(users) == stack.probe.count("users")
    assert not contains_key(users, "password"), r.text[:500]
    assert "$2b$" not in r.text and "$2a$" not in r.text
    for u in users:
        assert {"_id", "username", "email", "role", "skills", "status",
                "totalTicketsResolved",
                "averageResolutionTimeHours"} <= set(u), u


@pytest.mark.parametrize("path", ["/api/auth/users", "/api/users"])
def test_user_list_is_403_for_a_plain_user(stack, path):
    _, token = stack.signup()
    assert_error(stack.get(path, token=token), 403)


@pytest.mark.parametrize("path", ["/api/auth/users", "/api/users"])
def test_user_list_is_401_without_token(stack, path):
    assert_error(stack.get(path), 401, "Access Denied. No token found.")


def test_update_user_sets_role(stack, admin):
    _, admin_token = admin
    user, token = stack.signup()
    r = update_user(stack, admin_token, email=user["email"],
                    role="moderator")
    assert r.status_code == 200, r.text
    assert isinstance(r.json().get("message"), str)
    assert role_in_store(stack, user["_id"]) == "moderator"
    listed = {u["_id"]: u for u in
              stack.get("/api/users", token=admin_token).json()}
    assert listed[user["_id"]]["role"] == "moderator"


def test_update_user_finds_email_in_any_case(stack, admin):
    _, admin_token = admin
    user, _ = stack.signup()
    r = update_user(stack, admin_token, email=user["email"].upper(),
                    role="moderator")
    assert r.status_code == 200, r.text
    assert role_in_store(stack, user["_id"]) == "moderator"


@pytest.mark.parametrize("role", ["superuser", "ADMIN", "", 5, True,
                                  ["admin"], {"$ne": "user"}])
def test_update_user_rejects_invalid_role(stack, admin, role):
    _, admin_token = admin
    user, _ = stack.signup()
    r = update_user(stack, admin_token, email=user["email"], role=role)
    assert_error(r, 400)
    assert role_in_store(stack, user["_id"]) == "user"


def test_update_user_with_null_role_leaves_role_unchanged(stack, admin):
    """null may be refused or read as "no role given"; it never becomes a
    role."""
    _, admin_token = admin
    user, _ = stack.signup()
    r = update_user(stack, admin_token, email=user["email"], role=None)
    assert r.status_code in (200, 400), r.text
    assert role_in_store(stack, user["_id"]) == "user"


@pytest.mark.parametrize("body", [
    {}, {"role": "moderator"}, {"email": 5, "role": "moderator"},
    {"email": {"$ne": ""}, "role": "moderator"},
])
def test_update_user_without_valid_email_is_400(stack, admin, body):
    _, admin_token = admin
    assert_error(stack.post("/api/auth/update-user", token=admin_token,
                            json=body), 400)


def test_update_user_unknown_email_is_404(stack, admin):
    _, admin_token = admin
    r = update_user(stack, admin_token,
                    email="%s@example.com" % unique_name("nobody"),
                    role="moderator")
    assert_error(r, 404, "User not found")


def test_update_user_normalises_and_clears_skills(stack, admin):
    _, admin_token = admin
    user, _ = stack.signup(skills=["c"])

    def stored():
        return stack.probe.user(user["_id"])["skills"]

    r = update_user(stack, admin_token, email=user["email"],
                    skills=[" Java ", "JAVA", "Go", "go "])
    assert r.status_code == 200, r.text
    assert stored() == ["java", "go"]
    assert role_in_store(stack, user["_id"]) == "user"   # role untouched

    r = update_user(stack, admin_token, email=user["email"],
                    skills="Rust, SQL ,rust")
    assert r.status_code == 200, r.text
    assert stored() == ["rust", "sql"]

    r = update_user(stack, admin_token, email=user["email"], skills=[])
    assert r.status_code == 200, r.text
    assert stored() == []


@pytest.mark.parametrize("skills", [5, {"a": 1}, [1, "go"]])
def test_update_user_rejects_wrong_skills_type(stack, admin, skills):
    _, admin_token = admin
    user, _ = stack.signup(skills=["keep"])
    r = update_user(stack, admin_token, email=user["email"], skills=skills)
    assert_error(r, 400)
    assert stack.probe.user(user["_id"])["skills"] == ["keep"]


def test_update_user_is_403_for_plain_user_and_moderator(stack, admin):
    _, admin_token = admin
    mod, mod_token = stack.signup()
    assert update_user(stack, admin_token, email=mod["email"],
                       role="moderator").status_code == 200
    victim, token = stack.signup()
    for t in (token, mod_token):
        r = update_user(stack, t, email=victim["email"], role="admin")
        assert_error(r, 403)
    assert role_in_store(stack, victim["_id"]) == "user"


def test_demoting_the_only_admin_is_400(make_stack):
    st = make_stack()
    boss, boss_token = st.signup()
    assert boss["role"] == "admin"
    st.signup()
    r = update_user(st, boss_token, email=boss["email"], role="user")
    assert_error(r, 400)
    assert role_in_store(st, boss["_id"]) == "admin"
    assert st.get("/api/users", token=boss_token).status_code == 200


def test_promotion_and_demotion_take_effect_on_existing_tokens(stack, admin):
    _, admin_token = admin
    second, second_token = stack.signup()
    assert_error(stack.get("/api/users", token=second_token), 403)

    r = update_user(stack, admin_token, email=second["email"], role="admin")
    assert r.status_code == 200, r.text
    # the token still says "user"; the store says admin
    for _ in range(4):                  # whichever worker answers
        assert stack.get("/api/users", token=second_token).status_code == 200

    r = update_user(stack, admin_token, email=second["email"], role="user")
    assert r.status_code == 200, r.text
    assert role_in_store(stack, second["_id"]) == "user"
    for _ in range(4):
        assert_error(stack.get("/api/users", token=second_token), 403)
        assert_error(stack.get("/api/auth/users", token=second_token), 403)


def test_admin_can_demote_another_admin_but_not_the_last(stack, admin):
    admin_user, admin_token = admin
    other, other_token = stack.signup()
    assert update_user(stack, admin_token, email=other["email"],
                       role="admin").status_code == 200
    # two admins: the new one may demote the first ...
    r = update_user(stack, other_token, email=admin_user["email"],
                    role="moderator")
    assert r.status_code == 200, r.text
    try:
        assert_error(stack.get("/api/users", token=admin_token), 403)
        # ... and is now the only admin, so cannot demote itself
        r = update_user(stack, other_token, email=other["email"],
                        role="user")
        assert_error(r, 400)
        assert role_in_store(stack, other["_id"]) == "admin"
    finally:
        # restore the module's admin for the tests that follow
        r = update_user(stack, other_token, email=admin_user["email"],
                        role="admin")
        assert r.status_code == 200, r.text
    assert stack.get("/api/users", token=admin_token).status_code == 200

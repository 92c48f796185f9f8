"""JWT handling: missing, forged, expired, wrong-algorithm and revoked
tokens; the role comes from the store, not from the token."""

import secrets
import time

import pytest

from conftest import assert_error, b64url, jwt_claims, make_jwt

NO_TOKEN = "Access Denied. No token found."
INVALID = "Invalid token"

# A route that needs a token and answers 200 for any user.
PROBE = ("PATCH", "/api/auth/status", {"status": "online"})


def probe(stack, token=None, headers=None):
    method, path, body = PROBE
    return stack.request(method, path, token=token, headers=headers,
                         json=body)


def assert_401(r, message):
    assert_error(r, 401, message)
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), \
        r.headers


@pytest.fixture
def user(stack):
    """(user, token) of a fresh plain user."""
    return stack.signup()


def test_valid_token_is_accepted(stack, user):
    _, token = user
    assert probe(stack, token).status_code == 200


def test_token_claims_are_id_role_iat_exp_with_hs256(stack, user):
    u, token = user
    claims = jwt_claims(token)
    assert claims["_id"] == u["_id"]
    assert claims["role"] == "user"
    # default lifetime: 7 days
    assert claims["exp"] - claims["iat"] == 7 * 24 * 3600
    assert abs(claims["iat"] - time.time()) < 120
    header = jwt_claims("x." + token.split(".")[0] + ".y")
    assert header["alg"] == "HS256"


@pytest.mark.parametrize("route", [
    ("PATCH", "/api/auth/status"),
    ("POST", "/api/auth/logout"),
    ("GET", "/api/users"),
    ("GET", "/api/auth/users"),
    ("POST", "/api/auth/update-user"),
])
def test_missing_token_is_401_no_token_found(stack, route):
    method, path = route
    r = stack.request(method, path, json={"status": "online"})
    assert_401(r, NO_TOKEN)


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer "])
def test_authorization_without_bearer_token_is_401(stack, value):
    r = probe(stack, headers={"Authorization": value})
    assert r.status_code == 401, r.text
    assert_401(r, r.json()["error"])
    assert r.json()["error"] in (NO_TOKEN, INVALID)


@pytest.mark.parametrize("garbage", [
    "garbage",
    "a.b.c",
    "....",
    "eyJhbGciOiJIUzI1NiJ9.eyJfaWQiOiIxIn0",
    "x" * 5000,
    "\u00e9t\u00e9.\u00e9t\u00e9.\u00e9t\u00e9",
])
def test_garbage_token_is_401_invalid(stack, garbage):
    r = probe(stack, headers={"Authorization":
                              ("Bearer %s" % garbage).encode("utf-8")})
    assert_401(r, INVALID)


def test_token_crafted_with_the_secret_is_accepted(stack, user):
    """Control for the forgery tests below: our signer matches the
    module's, so their 401s are about the claim or algorithm changed."""
    _, token = user
    claims = jwt_claims(token)
    claims["exp"] = int(time.time()) + 3600
    crafted = stack.make_token(claims)
    assert crafted != token
    assert probe(stack, crafted).status_code == 200


def test_token_signed_with_another_secret_is_401(stack, user):
    _, token = user
    forged = stack.make_token(jwt_claims(token),
                              key=secrets.token_hex(32).encode())
    assert_401(probe(stack, forged), INVALID)


def test_token_with_tampered_signature_is_401(stack, user):
    _, token = user
    head, body, sig = token.split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    assert_401(probe(stack, "%s.%s.%s" % (head, body, flipped)), INVALID)
    assert_401(probe(stack, "%s.%s." % (head, body)), INVALID)


def test_alg_none_token_is_401(stack, user):
    _, token = user
    claims = jwt_claims(token)
    for alg in ("none", "None", "NONE"):
        assert_401(probe(stack, make_jwt(claims, b"", alg=alg)), INVALID)
    # "none" header with the original signature kept
    head = b64url('{"alg":"none","typ":"JWT"}')
    _, body, sig = token.split(".")
    assert_401(probe(stack, "%s.%s.%s" % (head, body, sig)), INVALID)


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithm_with_right_secret_is_401(stack, user, alg):
    _, token = user
    assert_401(probe(stack, stack.make_token(jwt_claims(token), alg=alg)),
               INVALID)


def test_expired_token_is_401(stack, user):
    _, token = user
    claims = jwt_claims(token)
    now = int(time.time())
    claims.update(iat=now - 3600, exp=now - 60)
    assert_401(probe(stack, stack.make_token(claims)), INVALID)


def test_token_without_exp_is_401(stack, user):
    _, token = user
    claims = jwt_claims(token)
    del claims["exp"]
    assert_401(probe(stack, stack.make_token(claims)), INVALID)


def test_token_for_unknown_user_id_is_401(stack, user):
    _, token = user
    claims = jwt_claims(token)
    claims["_id"] = secrets.token_hex(12)
    assert_401(probe(stack, stack.make_token(claims)), INVALID)


@pytest.mark.parametrize("bad_id", ["not-an-id", "", 12345, None,
                                    "' OR 1=1 --", {"$ne": ""}])
def test_token_with_malformed_user_id_is_401(stack, user, bad_id):
    _, token = user
    claims = jwt_claims(token)
    claims["_id"] = bad_id
    assert_401(probe(stack, stack.make_token(claims)), INVALID)


def test_token_role_claim_is_not_trusted(stack, user):
    """A validly signed token claiming admin for a plain user is still a
    plain user: the role is read from the store."""
    _, token = user
    claims = jwt_claims(token)
    claims["role"] = "admin"
    r = stack.get("/api/users", token=stack.make_token(claims))
    assert_error(r, 403)


def test_logout_revokes_only_that_token(stack, user):
    u, token = user
    _, second = stack.login(u["username"])
    assert second != token
    r = stack.post("/api/auth/logout", token=token)
    assert r.status_code == 200, r.text
    assert r.json() == {"message": "Logout successfully"}
    assert_401(probe(stack, token), INVALID)
    assert_401(stack.post("/api/auth/logout", token=token), INVALID)
    assert probe(stack, second).status_code == 200


def test_logout_revocation_holds_on_every_worker(stack, user):
    """Revocation is stored, not kept in one worker's memory."""
    _, token = user
    assert stack.post("/api/auth/logout", token=token).status_code == 200
    for _ in range(6):      # every worker
        assert_401(probe(stack, token), INVALID)

import time

import jwt
import pytest
from django.conf import settings

from core.auth import ACCESS, REFRESH, encode_token
from core.models import User
from tests.conftest import assert_error
from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_register_creates_user(anon):
    response = anon.post("/auth/register", {"username": "carol", "password": "a-long-secret-9"})
    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], "username": "carol"}
    assert User.objects.get(pk=body["id"]).check_password("a-long-secret-9")


def test_register_taken_username_is_409(anon, user):
    response = anon.post("/auth/register", {"username": user.username, "password": "a-long-secret-9"})
    assert_error(response, 409, "username_taken")
    response = anon.post("/auth/register", {"username": user.username.upper(), "password": "a-long-secret-9"})
    assert_error(response, 409, "username_taken")


@pytest.mark.parametrize(
    "body",
    [
        {"username": "dave"},
        {"password": "a-long-secret-9"},
        {"username": "", "password": "a-long-secret-9"},
        {"username": "has space", "password": "a-long-secret-9"},
        {"username": "x" * 151, "password": "a-long-secret-9"},
        {"username": 12, "password": "a-long-secret-9"},
        {"username": "dave", "password": "short"},
        {"username": "dave", "password": "12345678901"},
        [],
        '"just a string"',
    ],
)
def test_register_rejects_bad_input(anon, body):
    response = anon.post("/auth/register", body)
    assert_error(response, 422, "validation_error")
    assert not User.objects.filter(username="dave").exists()


def test_malformed_json_is_400_envelope(anon):
    response = anon.post("/auth/register", '{"username": "dave",')
    assert_error(response, 400, "invalid_json")


def test_token_pair_for_valid_credentials(anon, user):
    response = anon.post("/auth/token", {"username": user.username, "password": TEST_PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 15 * 60
    access = jwt.decode(body["access"], settings.SECRET_KEY, algorithms=["HS256"])
    refresh = jwt.decode(body["refresh"], settings.SECRET_KEY, algorithms=["HS256"])
    assert (access["type"], refresh["type"]) == ("access", "refresh")
    assert access["sub"] == str(user.pk)
    assert access["exp"] - access["iat"] == 15 * 60
    assert refresh["exp"] - refresh["iat"] == 7 * 24 * 3600


@pytest.mark.parametrize("password", ["wrong-password", ""])
def test_token_wrong_password_is_401(anon, user, password):
    response = anon.post("/auth/token", {"username": user.username, "password": password})
    assert response.status_code in (401, 422)
    if password:
        assert_error(response, 401, "invalid_credentials")


def test_token_unknown_user_is_401(anon):
    assert_error(anon.post("/auth/token", {"username": "nobody", "password": "whatever-1"}), 401, "invalid_credentials")


def test_token_inactive_user_is_401(anon):
    user = UserFactory(is_active=False)
    response = anon.post("/auth/token", {"username": user.username, "password": TEST_PASSWORD})
    assert_error(response, 401, "invalid_credentials")


def log_in(client, user) -> dict:
    return client.post("/auth/token", {"username": user.username, "password": TEST_PASSWORD}).json()


def test_refresh_gives_a_new_working_pair(anon, client_for, user):
    refresh = log_in(anon, user)["refresh"]
    response = anon.post("/auth/refresh", {"refresh": refresh})
    assert response.status_code == 200
    access = response.json()["access"]
    assert anon.get("/cart", headers={"Authorization": f"Bearer {access}"}).status_code == 200


def _forged(user, **overrides) -> str:
    now = int(time.time())
    claims = {"sub": str(user.pk), "type": ACCESS, "iat": now, "exp": now + 60, "ver": 0, **overrides}
    return jwt.encode(claims, settings.SECRET_KEY, algorithm="HS256")


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda u: encode_token(user=u, token_type=REFRESH), id="refresh-as-access"),
        pytest.param(lambda u: _forged(u, exp=int(time.time()) - 1), id="expired"),
        pytest.param(lambda u: encode_token(user=u, token_type=ACCESS)[:-3] + "abc", id="tampered"),
        pytest.param(
            lambda u: jwt.encode({"sub": str(u.pk), "type": "access", "exp": 9e9, "iat": 0}, "x" * 32), id="wrong-key"
        ),
        pytest.param(lambda u: "not.a.jwt", id="malformed"),
        pytest.param(lambda u: _forged(u, sub="999999999"), id="unknown-user"),
        pytest.param(lambda u: _forged(u, sub="abc"), id="non-numeric-sub"),
        pytest.param(lambda u: _forged(u, sub="9" * 20), id="sub-beyond-bigint"),
        pytest.param(lambda u: _forged(u, sub="\u00b2"), id="non-ascii-digit-sub"),
        pytest.param(lambda u: _forged(u, type="admin"), id="wrong-type"),
        pytest.param(lambda u: _forged(u, ver=1), id="older-token-version"),
        pytest.param(lambda u: _forged(u, ver="0"), id="token-version-not-a-number"),
        pytest.param(lambda u: _forged(u, ver=True), id="token-version-a-boolean"),
        pytest.param(lambda u: _forged(u, ver=2**40), id="token-version-out-of-range"),
        pytest.param(
            lambda u: jwt.encode({"sub": str(u.pk), "type": "access", "exp": 9e9, "iat": 0}, settings.SECRET_KEY),
            id="missing-token-version",
        ),
        pytest.param(
            lambda u: jwt.encode({"sub": str(u.pk), "type": "access", "exp": 9e9}, settings.SECRET_KEY),
            id="missing-iat",
        ),
    ],
)
def test_bad_access_tokens_are_401(anon, user, make_token):
    response = anon.get("/cart", headers={"Authorization": f"Bearer {make_token(user)}"})
    assert_error(response, 401, "invalid_token")


def test_access_token_of_a_deactivated_user_is_401(anon, user):
    token = encode_token(user=user, token_type=ACCESS)
    assert anon.get("/cart", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert_error(anon.get("/cart", headers={"Authorization": f"Bearer {token}"}), 401, "invalid_token")


def test_alg_none_token_is_401(anon, user):
    token = jwt.encode({"sub": str(user.pk), "type": "access", "exp": 9e9, "iat": 0}, None, algorithm="none")
    assert_error(anon.get("/cart", headers={"Authorization": f"Bearer {token}"}), 401, "invalid_token")


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Token abc"])
def test_missing_or_foreign_auth_header_is_401(anon, header):
    headers = {} if header is None else {"Authorization": header}
    response = anon.get("/cart", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] in {"not_authenticated", "invalid_token"}


@pytest.mark.parametrize("token_type", [ACCESS, "garbage"])
def test_refresh_rejects_non_refresh_tokens(anon, user, token_type):
    token = encode_token(user=user, token_type=ACCESS) if token_type == ACCESS else "garbage"
    assert_error(anon.post("/auth/refresh", {"refresh": token}), 401, "invalid_token")


def test_a_forged_token_is_good_for_its_test(anon, user):
    # The cases above fail for the reason they name, not for a claim _forged() forgot.
    assert anon.get("/cart", headers={"Authorization": f"Bearer {_forged(user)}"}).status_code == 200


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda u: encode_token(user=u, token_type=REFRESH), id="refresh-token-without-family"),
        pytest.param(
            lambda u: encode_token(user=u, token_type=REFRESH, family_id="not-a-uuid"), id="family-id-not-a-uuid"
        ),
        pytest.param(
            lambda u: encode_token(user=u, token_type=REFRESH, family_id="0" * 32), id="family-that-does-not-exist"
        ),
    ],
)
def test_refresh_tokens_outside_a_live_family_are_401(anon, user, make_token):
    assert_error(anon.post("/auth/refresh", {"refresh": make_token(user)}), 401, "invalid_token")


def test_refresh_for_deactivated_user_is_401(anon, user):
    refresh = log_in(anon, user)["refresh"]
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert_error(anon.post("/auth/refresh", {"refresh": refresh}), 401, "invalid_token")


def test_me_answers_who_the_token_is_for(api, user, anon):
    assert api.get("/me").json() == {"id": user.pk, "username": user.username}
    assert_error(anon.get("/me"), 401, "not_authenticated")

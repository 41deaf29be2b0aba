"""Sessions: refresh tokens rotate and are used once, a reused one ends its whole family, a
password change or deactivation ends every session, and POST /auth/logout ends one."""

import jwt
import pytest
from django.conf import settings

from core.models import User
from tests.conftest import ApiClient, assert_error, run_together
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db


def log_in(user) -> dict:
    response = ApiClient().post("/auth/token", {"username": user.username, "password": TEST_PASSWORD})
    assert response.status_code == 200, response.content
    return response.json()


def refresh(token: str):
    return ApiClient().post("/auth/refresh", {"refresh": token})


def works(access: str) -> bool:
    status = ApiClient().get("/cart", headers={"Authorization": f"Bearer {access}"}).status_code
    assert status in (200, 401)
    return status == 200


def test_refresh_rotates_and_each_refresh_token_works_once(user):
    first = log_in(user)
    second = refresh(first["refresh"]).json()
    assert second["refresh"] != first["refresh"]
    assert works(second["access"])
    third = refresh(second["refresh"])
    assert third.status_code == 200
    # Both tokens of one family carry its id and a fresh jti.
    claims = [jwt.decode(t, settings.SECRET_KEY, algorithms=["HS256"]) for t in (first["refresh"], second["refresh"])]
    assert claims[0]["fam"] == claims[1]["fam"] and claims[0]["jti"] != claims[1]["jti"]


def test_a_reused_refresh_token_ends_the_whole_family(user):
    first = log_in(user)
    stolen = first["refresh"]
    rotated = refresh(stolen).json()
    # The thief (or the owner, whoever is second) presents the retired token:
    assert_error(refresh(stolen), 401, "invalid_token")
    # ...and now the other party's current token is dead too.
    assert_error(refresh(rotated["refresh"]), 401, "invalid_token")
    # Other sessions of the same user (another device) are untouched.
    other_device = log_in(user)
    assert refresh(other_device["refresh"]).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_two_refreshes_with_one_token_at_once_cannot_both_win(user):
    token = log_in(user)["refresh"]
    statuses = run_together([lambda: refresh(token).status_code] * 2)
    assert sorted(statuses) == [200, 401], statuses


def test_logout_ends_the_family(user):
    pair = log_in(user)
    response = ApiClient().post("/auth/logout", {"refresh": pair["refresh"]})
    assert response.status_code == 204
    assert response.content == b""
    assert_error(refresh(pair["refresh"]), 401, "invalid_token")
    # Logging out twice is fine; a token that is not ours is not.
    assert ApiClient().post("/auth/logout", {"refresh": pair["refresh"]}).status_code == 204
    assert_error(ApiClient().post("/auth/logout", {"refresh": "not.a.token"}), 401, "invalid_token")
    assert_error(ApiClient().post("/auth/logout", {"refresh": pair["access"]}), 401, "invalid_token")


def test_logout_leaves_other_sessions_alone(user):
    laptop, phone = log_in(user), log_in(user)
    assert ApiClient().post("/auth/logout", {"refresh": laptop["refresh"]}).status_code == 204
    assert refresh(phone["refresh"]).status_code == 200


def test_a_password_change_ends_every_session(user):
    pair = log_in(user)
    assert works(pair["access"])
    user = User.objects.get(pk=user.pk)
    user.set_password("a-brand-new-secret-7")
    user.save()
    assert not works(pair["access"])
    assert_error(refresh(pair["refresh"]), 401, "invalid_token")
    # Logging in with the new password starts a session that works.
    fresh = ApiClient().post("/auth/token", {"username": user.username, "password": "a-brand-new-secret-7"}).json()
    assert works(fresh["access"])


def test_a_password_made_unusable_ends_every_session(user):
    pair = log_in(user)
    user = User.objects.get(pk=user.pk)
    user.set_unusable_password()
    user.save(update_fields=["password"])
    assert not works(pair["access"])
    assert_error(refresh(pair["refresh"]), 401, "invalid_token")
    version = User.objects.get(pk=user.pk).token_version
    user.save()  # a later save changes nothing more
    assert User.objects.get(pk=user.pk).token_version == version


def test_deactivation_ends_every_session_for_good(user):
    pair = log_in(user)
    user = User.objects.get(pk=user.pk)
    user.is_active = False
    user.save()
    assert not works(pair["access"])
    user.is_active = True
    user.save()
    # Reactivated, the account needs a new login: the old tokens stay dead.
    assert not works(pair["access"])
    assert_error(refresh(pair["refresh"]), 401, "invalid_token")
    assert works(log_in(user)["access"])


def test_logging_in_does_not_end_other_sessions_or_touch_the_version(user):
    first = log_in(user)
    log_in(user)
    assert works(first["access"])
    assert User.objects.get(pk=user.pk).token_version == 0

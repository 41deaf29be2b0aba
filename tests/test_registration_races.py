"""Sign-ups racing each other, with real threads against Postgres: usernames are unique whatever
their case (README "Decisions the contract leaves open"), so simultaneous sign-ups of one name in
different cases must make one user. The check-then-insert of registration cannot promise that on
its own; the database's unique index on the normalised name must."""

import unicodedata
from collections import Counter

import pytest

from core.models import User
from tests.conftest import ApiClient, run_together

pytestmark = pytest.mark.django_db(transaction=True)
VARIANTS = ["carol", "Carol", "CAROL", "cArol", "\uff43arol", "CaRoL"]  # the fifth starts with a fullwidth c
ROUNDS = 5


def same_name(username: str) -> bool:
    return unicodedata.normalize("NFKC", username).casefold() == "carol"


def sign_up(username: str):
    def job():
        response = ApiClient().post("/auth/register", {"username": username, "password": "a-long-secret-9"})
        return response.status_code, response.json().get("code")

    return job


def test_case_variant_sign_ups_of_one_name_at_once_make_one_user():
    for _ in range(ROUNDS):
        results = run_together([sign_up(name) for name in VARIANTS])
        carols = [user.username for user in User.objects.all() if same_name(user.username)]
        assert len(carols) == 1, (carols, results)
        assert Counter(results) == {(201, None): 1, (409, "username_taken"): 5}, results
        User.objects.all().delete()

"""Usernames are unique after NFKC and case-folding, backed by a unique index on that form."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from core.models import User
from tests.conftest import ApiClient, assert_error, run_together
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-secret-9"


def register(username: str):
    return ApiClient().post("/auth/register", {"username": username, "password": PASSWORD})


@pytest.mark.parametrize(
    ("existing", "newcomer"),
    [
        ("probe", "Ｐrobe"),  # fullwidth P
        ("Ｐrobe", "probe"),
        ("probe", "PROBE"),
        ("strasse", "Straße"),  # case-folding, not just lower-casing
        ("ﬁsh", "FISH"),  # the ligature is two letters after NFKC
    ],
)
def test_usernames_that_normalise_alike_are_taken(existing, newcomer):
    assert register(existing).status_code == 201
    assert_error(register(newcomer), 409, "username_taken")
    assert User.objects.count() == 1


def test_the_stored_username_is_nfkc_and_logs_in_as_typed_after_nfkc():
    body = register("Ｐrobe").json()
    assert body["username"] == "Probe"
    login = ApiClient().post("/auth/token", {"username": "Probe", "password": PASSWORD})
    assert login.status_code == 200


def test_a_username_that_grows_past_the_limit_under_nfkc_is_refused():
    # U+FDFA is one character that NFKC spells out in eighteen.
    assert_error(register("\ufdfa" * 10), 422, "validation_error")
    assert not User.objects.exists()


def test_the_unique_index_holds_whoever_writes():
    UserFactory(username="Indexed")
    with pytest.raises(IntegrityError), transaction.atomic():
        UserFactory(username="ＩNDEXED")


def test_the_admin_refuses_a_lookalike_instead_of_failing():
    UserFactory(username="strasse-made")
    browser = Client()
    browser.force_login(User.objects.create_superuser(username="boss", password=PASSWORD))
    form = {"username": "Straße-made", "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"}
    response = browser.post("/admin/core/user/add/", form)
    assert response.status_code == 200  # the form again, not a redirect and not a 500
    assert "looks the same" in response.content.decode()
    assert User.objects.count() == 2


def test_createsuperuser_refuses_a_lookalike_instead_of_failing(monkeypatch):
    UserFactory(username="strasse-boss")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    with pytest.raises(CommandError, match="looks the same"):
        call_command("createsuperuser", "--noinput", username="STRAẞE-boss", email="")
    assert User.objects.count() == 1

    call_command("createsuperuser", "--noinput", username="another-boss", email="", stdout=StringIO())
    assert User.objects.get(username="another-boss").is_superuser


@pytest.mark.django_db(transaction=True)
def test_case_variants_signing_up_at_once_make_one_user():
    variants = ["Racer", "racer", "RACER", "rAcEr", "Ｒacer", "ｒａｃｅｒ", "RaceR", "racER"]
    statuses = run_together([lambda name=name: register(name).status_code for name in variants])
    assert sorted(statuses) == [201] + [409] * (len(variants) - 1), statuses
    assert User.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_migration_keys_existing_users_and_keeps_lookalikes_apart():
    executor = MigrationExecutor(connection)
    executor.migrate([("core", "0003_sessions")])
    try:
        apps = executor.loader.project_state([("core", "0003_sessions")]).apps
        OldUser = apps.get_model("core", "User")
        # Possible before: the old unique index was on the username as typed.
        first = OldUser.objects.create(username="probe")
        second = OldUser.objects.create(username="Probe")
        third = OldUser.objects.create(username="alice")
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate([("core", "0004_username_key")])
        keys = dict(User.objects.values_list("pk", "username_key"))
        assert keys[first.pk] == "probe"
        assert keys[third.pk] == "alice"
        # The newer lookalike keeps its login but cannot take the name from the older one.
        assert keys[second.pk] != "probe" and keys[second.pk].startswith("probe")
        assert_error(register("PROBE"), 409, "username_taken")
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_admin_still_refuses_what_its_own_form_refuses():
    UserFactory(username="admin-made")
    browser = Client()
    browser.force_login(User.objects.create_superuser(username="boss", password=PASSWORD))
    form = {"username": "ＡDMIN-made", "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"}
    assert browser.post("/admin/core/user/add/", form).status_code == 200
    assert User.objects.count() == 2

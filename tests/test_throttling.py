"""The per-IP limits on /auth/* and the admin login: atomic counts in the shared cache (Redis in
the tests, as in production), a bucket for logins and sign-ups and a larger one for refreshes,
and the client address as seen through NUM_PROXIES trusted proxies."""

import pytest
from django.core.cache import cache
from django.test import Client

from core import throttling
from tests.conftest import ApiClient, assert_error, run_together

pytestmark = pytest.mark.django_db

WRONG = {"username": "nobody", "password": "wrong-password"}


@pytest.fixture(autouse=True)
def one_window(monkeypatch):
    # One fixed instant: a test that crossed a minute boundary would see two windows.
    cache.clear()
    monkeypatch.setattr(throttling, "clock", lambda: 1_699_999_990.0)
    yield
    cache.clear()


def test_forty_concurrent_logins_over_a_limit_of_twenty_let_exactly_twenty_through(settings):
    settings.AUTH_RATE_LIMIT = 20
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")

    def attempt() -> int:
        return ApiClient().post("/auth/token", WRONG).status_code

    statuses = run_together([attempt] * 40)
    assert sorted(statuses) == [401] * 20 + [429] * 20, statuses


def test_the_limiter_counts_atomically_under_threads(settings):
    settings.AUTH_RATE_LIMIT = 20
    allowed = run_together([lambda: throttling.take(bucket=throttling.LOGIN, ident="10.9.8.7")] * 40)
    assert allowed.count(True) == 20 and allowed.count(False) == 20, allowed


def test_retry_after_is_the_rest_of_the_window(settings):
    settings.AUTH_RATE_LIMIT = 1
    client = ApiClient()
    client.post("/auth/token", WRONG)
    response = client.post("/auth/token", WRONG)
    assert_error(response, 429, "rate_limited")
    # 1_699_999_990 is 10 s into its minute.
    assert response["Retry-After"] == "50"


def test_refresh_has_its_own_larger_bucket(settings):
    settings.AUTH_RATE_LIMIT = 2
    settings.AUTH_REFRESH_RATE_LIMIT = 5
    client = ApiClient()
    for _ in range(5):
        assert_error(client.post("/auth/refresh", {"refresh": "not-a-token"}), 401, "invalid_token")
    assert_error(client.post("/auth/refresh", {"refresh": "not-a-token"}), 429, "rate_limited")
    # Refreshing used none of the login budget...
    for _ in range(2):
        assert_error(client.post("/auth/token", WRONG), 401, "invalid_credentials")
    assert_error(client.post("/auth/token", WRONG), 429, "rate_limited")
    # ...and logins none of the refresh budget of another address.
    other = {"REMOTE_ADDR": "10.0.0.9"}
    assert_error(client.post("/auth/refresh", {"refresh": "x"}, **other), 401, "invalid_token")


def test_buckets_are_keyed_by_the_client_address_behind_trusted_proxies(settings):
    settings.AUTH_RATE_LIMIT = 2
    settings.NUM_PROXIES = 1
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    client = ApiClient()

    def login(forwarded_for: str):
        return client.post("/auth/token", WRONG, headers={"X-Forwarded-For": forwarded_for}, **proxy)

    for _ in range(2):
        assert login("203.0.113.7").status_code == 401
    assert_error(login("203.0.113.7"), 429, "rate_limited")
    # A client cannot pick its own bucket by sending the header itself: the proxy appends the
    # address it saw, and that last entry is the one trusted.
    assert_error(login("198.51.100.1, 203.0.113.7"), 429, "rate_limited")
    # Another buyer behind the same proxy has a budget of their own.
    assert login("203.0.113.8").status_code == 401


def test_admin_login_is_throttled_like_auth_token(settings):
    settings.AUTH_RATE_LIMIT = 3
    browser = Client()
    form = {"username": "admin", "password": "guess", "next": "/admin/"}
    for _ in range(3):
        assert browser.post("/admin/login/", form).status_code == 200  # the form again, with an error
    refused = browser.post("/admin/login/", form)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    # Showing the form is free; the guesses share the budget of /auth/token.
    assert browser.get("/admin/login/").status_code == 200
    assert_error(ApiClient().post("/auth/token", WRONG), 429, "rate_limited")
    assert Client().post("/admin/login/", form, REMOTE_ADDR="10.0.0.2").status_code == 200

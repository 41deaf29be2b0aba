"""Rate limits on /auth/*, the body size limit, and the request log (no secrets in it)."""

import json
import logging

import pytest
from django.core.cache import cache

from tests.conftest import ApiClient, assert_error
from tests.factories import TEST_PASSWORD, fill_cart

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clean_cache():
    cache.clear()
    yield
    cache.clear()


def test_auth_endpoints_are_rate_limited_per_ip(settings, user):
    settings.AUTH_RATE_LIMIT = 3
    client = ApiClient()
    body = {"username": user.username, "password": "wrong-password"}
    for _ in range(3):
        assert client.post("/auth/token", body).status_code == 401
    response = client.post("/auth/token", body)
    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) > 0
    # The right password is refused too while limited: that is the point against guessing.
    assert client.post("/auth/token", {**body, "password": TEST_PASSWORD}).status_code == 429
    # Another client address has its own budget.
    other = client.post("/auth/token", {**body, "password": TEST_PASSWORD}, REMOTE_ADDR="10.0.0.2")
    assert other.status_code == 200


def test_forwarded_for_header_cannot_dodge_the_limit(settings, user):
    settings.AUTH_RATE_LIMIT = 2
    client = ApiClient()
    body = {"username": "x", "password": "y-password"}
    for n in range(2):
        client.post("/auth/register", body, headers={"X-Forwarded-For": f"1.2.3.{n}"})
    response = client.post("/auth/register", body, headers={"X-Forwarded-For": "9.9.9.9"})
    assert_error(response, 429, "rate_limited")


def test_rate_limit_zero_turns_it_off(settings, user):
    settings.AUTH_RATE_LIMIT = 0
    client = ApiClient()
    for _ in range(30):
        assert client.post("/auth/token", {"username": user.username, "password": "nope-nope"}).status_code == 401


def test_other_endpoints_are_not_auth_limited(settings, api):
    settings.AUTH_RATE_LIMIT = 1
    for _ in range(5):
        assert api.get("/cart").status_code == 200


def test_oversized_body_is_413(settings, api):
    settings.MAX_REQUEST_BODY_BYTES = 1024
    response = api.post("/cart/items", {"course_id": 1, "padding": "x" * 2000})
    assert_error(response, 413, "payload_too_large")
    assert response.json()["details"] == {"limit": 1024}


def test_request_log_is_one_json_line_without_secrets(api, user, caplog):
    fill_cart(user, "10.00")
    with caplog.at_level(logging.INFO, logger="shop.requests"):
        response = api.post("/orders", {"points": 0}, headers={"Idempotency-Key": "secret-key-123"})
        ApiClient().post("/auth/token", {"username": user.username, "password": TEST_PASSWORD})
        ApiClient().get("/payments/alipay/return?out_trade_no=1&sign=SIGNATURE-VALUE")
    order_no = response.json()["order_no"]
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "shop.requests"]
    assert lines[0] == {
        "event": "request",
        "method": "POST",
        "path": "/api/v1/orders",
        "status": 201,
        "duration_ms": lines[0]["duration_ms"],
        "user_id": user.pk,
        "order_no": order_no,
    }
    assert lines[1]["path"] == "/api/v1/auth/token" and lines[1]["user_id"] is None
    everything = " ".join(r.getMessage() for r in caplog.records)
    for secret in [TEST_PASSWORD, api.headers["Authorization"].split()[1], "SIGNATURE-VALUE", "secret-key-123"]:
        assert secret not in everything


def test_cors_allows_only_configured_origins(settings, anon):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example.com"]
    preflight = anon.client.options(
        "/api/v1/orders",
        headers={
            "Origin": "https://shop.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, idempotency-key, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "idempotency-key" in preflight["Access-Control-Allow-Headers"]
    response = anon.get("/courses", headers={"Origin": "https://shop.example.com"})
    assert "Idempotent-Replayed" in response["Access-Control-Expose-Headers"]
    foreign = anon.get("/courses", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in foreign

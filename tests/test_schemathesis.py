"""Schemathesis against our own OpenAPI schema, through the real WSGI stack, authenticated:
no input may produce a 5xx, and every documented response must match its schema."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from core.auth import ACCESS, encode_token
from core.wsgi import application
from tests.factories import CouponFactory, fill_cart, give_coupon, give_points

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


def not_a_server_error(ctx, response, case) -> None:
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}"


@pytest.fixture
def keep_test_connection():
    # Raw WSGI calls fire request_finished, which would close the test's DB connection (and its
    # transaction); Django's own test Client disconnects the same handler for that reason.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(db, user, keep_test_connection) -> str:
    fill_cart(user, "100.00", "59.90")
    give_coupon(user, threshold="0.00")
    give_points(user, 500)
    CouponFactory()
    return encode_token(user=user, token_type=ACCESS)


@schema.parametrize()
@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_errors_and_matches_its_schema(case, token):
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

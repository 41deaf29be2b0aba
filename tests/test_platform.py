"""Health, the OpenAPI schema, Swagger UI from local files, the admin, demo data."""

import pytest
from django.core.management import call_command
from django.test import Client

from core.models import Course, User

pytestmark = pytest.mark.django_db


def test_health_ok(anon, settings):
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    assert anon.get("/health").json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_health_503_when_broker_unreachable(anon, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = anon.get("/health")
    assert response.status_code == 503
    assert response.json()["details"] == {"database": "ok", "broker": "down"}


def test_openapi_schema_lists_the_contract(anon):
    schema = anon.get("/openapi.json").json()
    for path in ["/api/v1/auth/register", "/api/v1/auth/token", "/api/v1/cart", "/api/v1/cart/items/{item_id}"]:
        assert path in schema["paths"]
    assert schema["components"]["securitySchemes"]["JWTAuth"]["scheme"] == "bearer"


def test_swagger_ui_uses_local_static_files():
    client = Client()
    html = client.get("/api/v1/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    static = client.get("/static/ninja/swagger-ui-bundle.js")
    assert static.status_code == 200


def test_admin_lists_courses():
    admin = User.objects.create_superuser("root", password="root-pass-123")
    client = Client()
    client.force_login(admin)
    for url in ["/admin/core/course/", "/admin/core/user/", "/admin/orders/cartitem/", "/admin/core/enrollment/"]:
        assert client.get(url).status_code == 200, url


def test_seed_demo_is_idempotent():
    call_command("seed_demo")
    call_command("seed_demo")
    assert Course.objects.count() >= 6
    alice = User.objects.get(username="alice")
    assert alice.check_password("demo-pass-123")
    assert User.objects.filter(username__in=["alice", "bob"]).count() == 2


def test_database_connections_bound_lock_waits():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "5s"

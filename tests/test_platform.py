"""Health, the OpenAPI schema, Swagger UI from local files, the admin, demo data."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.forms.models import model_to_dict
from django.test import Client
from django.utils import timezone

from billing.models import Coupon, PointsAccount, UserCoupon
from core.models import Course, User
from orders.models import Order
from tests.conftest import ApiClient
from tests.factories import CouponFactory, UserFactory, fill_cart, give_coupon, give_points

pytestmark = pytest.mark.django_db


def test_health_ok(anon, settings):
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    assert anon.get("/health").json() == {
        "status": "ok",
        "database": "ok",
        "database_kind": "postgres",
        "broker": "ok",
    }


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


def test_openapi_declares_401_exactly_where_a_token_is_required(anon):
    schema = anon.get("/openapi.json").json()
    error_out = {"$ref": "#/components/schemas/ErrorOut"}
    protected = public = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if operation.get("security"):
                protected += 1
                answer = operation["responses"].get("401")
                assert answer, f"{method.upper()} {path} needs a token but does not declare 401"
                assert answer["content"]["application/json"]["schema"] == error_out
            # The public auth endpoints answer 401 for a bad password or token in the body.
            elif path not in ("/api/v1/auth/token", "/api/v1/auth/refresh", "/api/v1/auth/logout"):
                public += 1
                assert "401" not in operation["responses"], f"{method.upper()} {path} is public"
    assert protected >= 10 and public >= 4
    answered = anon.get("/cart")
    assert answered.status_code == 401 and set(answered.json()) == {"code", "message", "details"}


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
    for username in ["alice", "bob"]:
        account = PointsAccount.objects.get(user__username=username)
        assert account.balance == 5000
        assert list(account.entries.values_list("delta", "reason")) == [(5000, "grant")]  # not granted twice
    coupons = {
        c.name: (c.kind, c.threshold, c.amount_off, c.percent_off, c.total_quantity - c.issued_count)
        for c in Coupon.objects.all()
    }
    assert coupons == {
        "满100减20": ("fixed", Decimal("100.00"), Decimal("20.00"), None, 1000),
        "8折": ("percent", Decimal("0.00"), None, 20, 1000),
        "秒杀券": ("fixed", Decimal("0.00"), Decimal("50.00"), None, 10),
    }
    now = timezone.now()
    assert all(c.starts_at <= now < c.ends_at for c in Coupon.objects.all())  # claimable right away


@pytest.fixture
def admin_client():
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="root-pass-123"))
    return client


def test_admin_shows_money_records_and_keeps_them(admin_client, user):
    fill_cart(user, "30.00")
    coupon = give_coupon(user, threshold="0.00", amount_off="5.00")
    give_points(user, 100)
    response = ApiClient(user).post(
        "/orders", {"user_coupon_id": coupon.pk, "points": 10}, headers={"Idempotency-Key": "admin"}
    )
    order = Order.objects.get(order_no=response.json()["order_no"])
    account = PointsAccount.objects.get(user=user)
    pages = {
        "/admin/billing/coupon/": None,
        f"/admin/billing/coupon/{coupon.coupon_id}/change/": None,
        "/admin/billing/usercoupon/": None,
        f"/admin/billing/usercoupon/{coupon.pk}/change/": None,
        "/admin/billing/pointsaccount/": None,
        f"/admin/billing/pointsaccount/{account.pk}/change/": None,
        "/admin/billing/pointsentry/": None,
        "/admin/billing/paymentnotification/": None,
        "/admin/orders/order/": None,
        f"/admin/orders/order/{order.pk}/change/": "24.00",  # pay_amount, read-only, with its lines
    }
    for url, expected in pages.items():
        page = admin_client.get(url)
        assert page.status_code == 200, url
        if expected:
            assert expected in page.content.decode() and order.lines.get().name in page.content.decode()
    for url in [
        f"/admin/orders/order/{order.pk}/delete/",
        f"/admin/billing/usercoupon/{coupon.pk}/delete/",
        f"/admin/billing/pointsaccount/{account.pk}/delete/",
        "/admin/orders/order/add/",
        "/admin/billing/pointsentry/add/",
    ]:
        assert admin_client.get(url).status_code == 403, url
        assert admin_client.post(url, {"post": "yes"}).status_code == 403, url
    assert Order.objects.filter(pk=order.pk).exists() and UserCoupon.objects.get(pk=coupon.pk).status == "locked"


def test_admin_refuses_a_coupon_total_below_what_is_claimed(admin_client):
    coupon = CouponFactory(threshold=0, amount_off=50, total_quantity=10, issued_count=7)
    url = f"/admin/billing/coupon/{coupon.pk}/change/"
    form = {
        "name": coupon.name,
        "kind": "fixed",
        "threshold": "0",
        "amount_off": "50",
        "percent_off": "",
        "total_quantity": "5",
        "starts_at_0": coupon.starts_at.strftime("%Y-%m-%d"),
        "starts_at_1": coupon.starts_at.strftime("%H:%M:%S"),
        "ends_at_0": coupon.ends_at.strftime("%Y-%m-%d"),
        "ends_at_1": coupon.ends_at.strftime("%H:%M:%S"),
    }
    response = admin_client.post(url, form)
    assert response.status_code == 200 and "7 are already claimed" in response.content.decode()
    coupon.refresh_from_db()
    assert coupon.total_quantity == 10
    response = admin_client.post(url, {**form, "total_quantity": "7"})
    assert response.status_code == 302
    coupon.refresh_from_db()
    assert (coupon.total_quantity, coupon.issued_count) == (7, 7)


def test_admin_edits_never_write_back_a_stale_issued_count(admin_client, rf):
    from django.contrib.admin.sites import site

    from billing.admin import CouponForm

    coupon = CouponFactory(total_quantity=10)
    stale = Coupon.objects.get(pk=coupon.pk)  # what the change page read
    for _ in range(3):  # claims made while the admin was editing
        give_coupon(UserFactory(), coupon)
    form = CouponForm(instance=stale, data={**model_to_dict(stale), "name": "renamed", "total_quantity": 12})
    assert form.is_valid(), form.errors
    site._registry[Coupon].save_model(rf.post("/"), form.save(commit=False), form, change=True)
    coupon.refresh_from_db()
    assert (coupon.name, coupon.total_quantity, coupon.issued_count) == ("renamed", 12, 3)


def test_database_connections_bound_lock_waits():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "5s"

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Coupon, UserCoupon
from tests.conftest import ApiClient, assert_error
from tests.factories import CouponFactory, give_coupon, percent_coupon

pytestmark = pytest.mark.django_db


def test_claimable_lists_coupons_in_their_window(api, user):
    live = CouponFactory(total_quantity=10, issued_count=3)
    CouponFactory(starts_at=timezone.now() + timedelta(days=1))
    CouponFactory(ends_at=timezone.now() - timedelta(seconds=1), starts_at=timezone.now() - timedelta(days=2))
    claimed = percent_coupon()
    give_coupon(user, claimed)
    body = api.get("/coupons").json()
    assert body["count"] == 2
    by_id = {c["id"]: c for c in body["items"]}
    assert by_id[live.pk]["remaining"] == 7 and by_id[live.pk]["claimed"] is False
    assert by_id[live.pk]["amount_off"] == "20.00" and by_id[live.pk]["percent_off"] is None
    assert by_id[claimed.pk]["claimed"] is True and by_id[claimed.pk]["percent_off"] == "20.00"


def test_claim_returns_the_user_coupon_with_snapshot(api, user):
    coupon = CouponFactory(name="满100减20", threshold="100.00", amount_off="20.00")
    response = api.post(f"/coupons/{coupon.pk}/claim")
    assert response.status_code == 201
    body = response.json()
    assert body["coupon_id"] == coupon.pk and body["status"] == "unused"
    assert (body["name"], body["kind"], body["threshold"], body["amount_off"]) == (
        "满100减20",
        "fixed",
        "100.00",
        "20.00",
    )
    # Later edits of the coupon do not change what the user holds.
    Coupon.objects.filter(pk=coupon.pk).update(amount_off="5.00")
    mine = api.get("/me/coupons").json()
    assert mine["count"] == 1 and mine["items"][0]["amount_off"] == "20.00"
    coupon.refresh_from_db()
    assert coupon.issued_count == 1


def test_claim_twice_is_409(api, user):
    coupon = CouponFactory()
    api.post(f"/coupons/{coupon.pk}/claim")
    assert_error(api.post(f"/coupons/{coupon.pk}/claim"), 409, "coupon_already_claimed")
    coupon.refresh_from_db()
    assert coupon.issued_count == 1


def test_claim_sold_out_is_409(api):
    coupon = CouponFactory(total_quantity=1, issued_count=1)
    assert_error(api.post(f"/coupons/{coupon.pk}/claim"), 409, "coupon_sold_out")
    assert not UserCoupon.objects.exists()  # the claim row went in first, and went back out


def test_the_last_coupon_claimed_again_by_its_holder_says_already_claimed(api):
    coupon = CouponFactory(total_quantity=1)
    assert api.post(f"/coupons/{coupon.pk}/claim").status_code == 201
    assert_error(api.post(f"/coupons/{coupon.pk}/claim"), 409, "coupon_already_claimed")
    coupon.refresh_from_db()
    assert coupon.issued_count == 1 and UserCoupon.objects.count() == 1


def test_a_claim_is_the_token_user_read_and_one_statement(api, django_assert_num_queries):
    coupon = CouponFactory()
    api.get("/me/coupons")  # the connection's set-up queries, outside the count
    # The user, then the claim; inside the test's own transaction the claim runs in a SAVEPOINT
    # (and its RELEASE), so that a refused claim does not abort the caller's transaction.
    with django_assert_num_queries(4):
        assert api.post(f"/coupons/{coupon.pk}/claim").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_in_autocommit_a_claim_is_one_statement_with_no_transaction_around_it(user):
    coupon = CouponFactory()
    client = ApiClient(user)
    client.get("/me/coupons")
    with CaptureQueriesContext(connection) as queries:
        assert client.post(f"/coupons/{coupon.pk}/claim").status_code == 201
    sent = [q["sql"] for q in queries.captured_queries]
    claims = [sql for sql in sent if "UPDATE billing_coupon" in sql]
    assert len(claims) == 1 and "INSERT INTO billing_usercoupon" in claims[0]
    assert not any(sql.split()[0].upper() in ("BEGIN", "SAVEPOINT", "COMMIT") for sql in sent), sent
    assert len(sent) <= 3, sent  # the connection check, the token's user, the claim


@pytest.mark.parametrize("days", [1, -10])
def test_claim_outside_window_is_422(api, days):
    start = timezone.now() + timedelta(days=days)
    coupon = CouponFactory(starts_at=start, ends_at=start + timedelta(days=5))
    assert_error(api.post(f"/coupons/{coupon.pk}/claim"), 422, "coupon_not_active")
    assert not UserCoupon.objects.exists()


def test_claim_unknown_coupon_is_404(api):
    assert_error(api.post("/coupons/987654/claim"), 404, "coupon_not_found")


def test_my_coupons_filter_by_status_and_isolated_per_user(api, user, other_user):
    give_coupon(user)
    give_coupon(other_user)
    give_coupon(user)
    assert api.get("/me/coupons").json()["count"] == 2
    assert api.get("/me/coupons?status=unused").json()["count"] == 2
    assert api.get("/me/coupons?status=used").json()["count"] == 0
    assert_error(api.get("/me/coupons?status=bogus"), 422, "validation_error")


def test_coupons_require_auth(anon):
    assert_error(anon.get("/coupons"), 401, "not_authenticated")
    assert_error(anon.post("/coupons/1/claim"), 401, "not_authenticated")
    assert_error(anon.get("/me/coupons"), 401, "not_authenticated")

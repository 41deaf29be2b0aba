"""Races with real threads against Postgres; each test asserts the invariants that money needs."""

import random
from collections import Counter

import pytest
from django.db.models import Sum

from billing.models import Coupon, PointsAccount, PointsEntry, UserCoupon
from orders.models import Order, OrderLine
from tests.conftest import ApiClient, assert_ledger_consistent, run_together
from tests.factories import CourseFactory, UserFactory, fill_cart, give_coupon, give_points

pytestmark = pytest.mark.django_db(transaction=True)


def post_order(user, key: str, **body):
    def job():
        response = ApiClient(user).post("/orders", {"points": 0, **body}, headers={"Idempotency-Key": key})
        return response.status_code, response.json(), response.get("Idempotent-Replayed")

    return job


def test_24_simultaneous_submits_with_one_key_make_one_order():
    user = UserFactory()
    fill_cart(user, "99.00", "1.00")
    coupon = give_coupon(user, threshold="0.00")
    give_points(user, 100)
    results = run_together([post_order(user, "one-key", user_coupon_id=coupon.pk, points=50)] * 24)
    assert all(isinstance(r, tuple) for r in results), results
    assert {status for status, _, _ in results} == {201}
    bodies = {repr(body) for _, body, _ in results}
    assert len(bodies) == 1  # 24 identical answers
    assert sorted(replayed or "false" for _, _, replayed in results).count("false") == 1
    assert Order.objects.count() == 1
    assert OrderLine.objects.count() == 2
    assert PointsEntry.objects.filter(reason="order_debit").count() == 1
    assert PointsAccount.objects.get(user=user).balance == 50
    assert UserCoupon.objects.get(pk=coupon.pk).status == "locked"
    assert_ledger_consistent()


def test_racing_orders_from_one_cart_make_one_order_and_one_debit():
    user = UserFactory()
    fill_cart(user, "30.00", "20.00")
    give_points(user, 100)
    results = run_together([post_order(user, f"key-{n}", points=100) for n in range(12)])
    statuses = Counter(r[0] for r in results)
    assert statuses[201] == 1, results
    codes = Counter(r[1]["code"] for r in results if r[0] != 201)
    assert set(codes) <= {"cart_empty", "insufficient_points"}, codes
    assert Order.objects.count() == 1
    assert PointsEntry.objects.filter(reason="order_debit").count() == 1
    assert PointsAccount.objects.get(user=user).balance == 0
    assert_ledger_consistent()


def test_interleaved_cart_adds_and_checkouts_never_overspend():
    """Each thread adds a course and checks out with 60 of 100 points and the single coupon;
    whatever interleaving happens, nothing is spent twice."""
    user = UserFactory()
    give_points(user, 100)
    coupon = give_coupon(user, threshold="0.00", amount_off="1.00")
    courses = CourseFactory.create_batch(10, price="50.00")

    def job(n: int):
        def run():
            client = ApiClient(user)
            client.post("/cart/items", {"course_id": courses[n].pk})
            body = {"points": 60, "user_coupon_id": coupon.pk if n % 2 else None}
            response = client.post("/orders", body, headers={"Idempotency-Key": f"k{n}"})
            return response.status_code, response.json()

        return run

    results = run_together([job(n) for n in range(10)])
    assert all(isinstance(r, tuple) and r[0] in (201, 422) for r in results), results
    assert sum(r[0] == 201 for r in results) == 1  # 60 of 100 points fits once
    debited = -(PointsEntry.objects.filter(reason="order_debit").aggregate(s=Sum("delta"))["s"] or 0)
    assert debited == Order.objects.aggregate(s=Sum("points_used"))["s"] == 60
    assert Order.objects.filter(user_coupon=coupon).count() <= 1
    assert OrderLine.objects.values("course").distinct().count() == OrderLine.objects.count()
    assert_ledger_consistent()


def test_50_users_claiming_10_coupons_get_exactly_10():
    coupon = Coupon.objects.create(
        name="秒杀券",
        kind="fixed",
        threshold=0,
        amount_off=50,
        total_quantity=10,
        starts_at="2000-01-01T00:00:00Z",
        ends_at="2999-01-01T00:00:00Z",
    )
    users = UserFactory.create_batch(50)

    def claim(user):
        def run():
            response = ApiClient(user).post(f"/coupons/{coupon.pk}/claim")
            return response.status_code, response.json().get("code")

        return run

    results = run_together([claim(u) for u in users])
    assert Counter(results) == {(201, None): 10, (409, "coupon_sold_out"): 40}, Counter(results)
    coupon.refresh_from_db()
    assert coupon.issued_count == 10 == UserCoupon.objects.filter(coupon=coupon).count()


def test_one_user_double_claiming_gets_one_coupon():
    coupon = Coupon.objects.create(
        name="8折",
        kind="percent",
        percent_off=20,
        total_quantity=100,
        starts_at="2000-01-01T00:00:00Z",
        ends_at="2999-01-01T00:00:00Z",
    )
    user = UserFactory()

    def claim():
        response = ApiClient(user).post(f"/coupons/{coupon.pk}/claim")
        return response.status_code, response.json().get("code")

    results = run_together([claim] * 10)
    assert Counter(results) == {(201, None): 1, (409, "coupon_already_claimed"): 9}, Counter(results)
    coupon.refresh_from_db()
    assert coupon.issued_count == 1


def test_cancel_and_checkout_race_keeps_the_ledger_straight():
    user = UserFactory()
    give_points(user, 1000)
    rounds = 8
    for n in range(rounds):
        fill_cart(user, "10.00")
        status, order, _ = post_order(user, f"r{n}", points=random.choice([10, 50, 99]))()
        assert status == 201, order
        cancel = lambda no=order["order_no"]: ApiClient(user).post(f"/orders/{no}/cancel").status_code  # noqa: E731
        results = run_together([cancel] * 4)
        assert Counter(results) == {200: 1, 409: 3}
    assert PointsAccount.objects.get(user=user).balance == 1000
    assert PointsEntry.objects.filter(reason="order_refund").count() == rounds
    assert_ledger_consistent()


def test_a_duplicate_that_cannot_get_the_key_in_time_answers_409():
    """The first request holds the key (its insert not yet committed) longer than lock_timeout."""
    import threading

    from django.db import connection, transaction
    from django.utils import timezone

    from orders.services.checkout import request_fingerprint

    user = UserFactory()
    fill_cart(user, "10.00")
    holding, release = threading.Event(), threading.Event()

    def first_request_still_running():
        try:
            with transaction.atomic():
                Order.objects.create(
                    order_no="1",
                    user=user,
                    idempotency_key="slow",
                    expires_at=timezone.now(),
                    request_fingerprint=request_fingerprint(pay_type="alipay", user_coupon_id=None, points=0),
                )
                holding.set()
                release.wait(10)
                raise RuntimeError("the first request fails after all")
        except RuntimeError:
            return "rolled back"

    def duplicate():
        holding.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '300ms'")  # this session only; the thread's connection closes after
        try:
            return post_order(user, "slow")()
        finally:
            release.set()

    first, (status, body, _) = run_together([first_request_still_running, duplicate])
    assert first == "rolled back"
    assert (status, body["code"]) == (409, "idempotency_key_in_use")
    assert not Order.objects.exists()
    # and once the key is free, the same key places the order
    assert post_order(user, "slow")()[0] == 201

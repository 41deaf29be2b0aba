"""Races with real threads against Postgres; each test asserts the invariants that money needs."""

import random
import threading
import time
from collections import Counter

import pytest
from django.db import transaction
from django.db.models import Sum

from billing.models import Coupon, PointsAccount, PointsEntry, UserCoupon
from orders.models import CartItem, Order, OrderLine
from orders.services import cancellation, checkout_sql
from tests.conftest import (
    ApiClient,
    assert_error,
    assert_ledger_consistent,
    backend_pid,
    hold_after,
    run_together,
    someone_waits_for,
    wait_for,
)
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
    # The losers wait for the cart's row locks and find it empty: none gets as far as the points.
    codes = Counter(r[1]["code"] for r in results if r[0] != 201)
    assert codes == {"cart_empty": 11}, codes
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


def test_simultaneous_cancels_of_one_order_cancel_it_once():
    """Four cancels of one pending order at once: one cancels it and refunds its points, the others
    answer 409."""
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


def test_one_cart_checked_out_at_once_without_points_or_coupon_makes_one_order():
    """No points and no coupon: nothing but the cart's own row locks stands between 8 checkouts
    of one cart (the tests above all spend points, whose lock alone would serialise them)."""
    for round_no in range(4):
        user = UserFactory()
        fill_cart(user, "30.00", "20.00")
        results = run_together([post_order(user, f"cart-{round_no}-{n}") for n in range(8)])
        assert all(isinstance(r, tuple) for r in results), results
        outcomes = Counter((status, body.get("code")) for status, body, _ in results)
        assert outcomes == {(201, None): 1, (422, "cart_empty"): 7}, outcomes
        assert Order.objects.filter(user=user).count() == 1
        assert OrderLine.objects.filter(order__user=user).count() == 2
        assert not CartItem.objects.filter(user=user).exists()


def test_a_checkout_waiting_past_lock_timeout_for_its_cart_answers_409_checkout_busy(monkeypatch, session_settings):
    """The first checkout holds the cart's row locks (kept open right after taking them) while a
    second one, with another key, waits for them past lock_timeout: 409 checkout_busy, nothing
    stored; the first then completes as if nothing happened."""
    session_settings(lock_timeout=300)
    user = UserFactory()
    fill_cart(user, "30.00", "20.00")
    second_done = threading.Event()
    held = hold_after(monkeypatch, checkout_sql, "lock_rows", until=lambda pid: second_done.is_set())

    def second():
        assert held.wait(10), "the first checkout never took the cart"
        started = time.monotonic()
        try:
            return *post_order(user, "second")(), time.monotonic() - started
        finally:
            second_done.set()

    first, (status, body, _, waited) = run_together([post_order(user, "first"), second])
    assert (status, body["code"]) == (409, "checkout_busy"), body
    assert 0.3 <= waited < 4, waited  # its own lock_timeout, not the 5 s default
    assert first[0] == 201, first
    assert list(Order.objects.values_list("idempotency_key", flat=True)) == ["first"]
    assert not CartItem.objects.filter(user=user).exists()


def test_a_deadlock_answers_503_with_retry_after_and_the_retry_places_the_order():
    """Another transaction takes the points account and then the cart, the reverse of the
    checkout's lock order, while the checkout holds the cart and waits for the account: Postgres
    breaks the cycle by aborting the checkout (40P01), which answers 503 service_unavailable with
    Retry-After, stores nothing, and goes through when sent again with the same key."""
    user = UserFactory()
    fill_cart(user, "30.00")
    give_points(user, 100)
    account_taken, checkout_done = threading.Event(), threading.Event()

    def reverse_order():
        with transaction.atomic():
            list(PointsAccount.objects.select_for_update().filter(user=user))
            pid = backend_pid()
            account_taken.set()
            # The checkout holds the cart and waits for the account: now take the cart.
            assert wait_for(lambda: checkout_done.is_set() or someone_waits_for(pid), timeout=10)
            list(CartItem.objects.select_for_update().filter(user=user))
        return "committed"

    def checkout():
        assert account_taken.wait(10)
        try:
            return ApiClient(user).post("/orders", {"points": 50}, headers={"Idempotency-Key": "dl"})
        finally:
            checkout_done.set()

    other, response = run_together([reverse_order, checkout])
    assert other == "committed", other
    assert_error(response, 503, "service_unavailable")
    assert response["Retry-After"] == "1"
    assert not Order.objects.exists()
    assert PointsAccount.objects.get(user=user).balance == 100
    retry = ApiClient(user).post("/orders", {"points": 50}, headers={"Idempotency-Key": "dl"})
    assert retry.status_code == 201, retry.content
    assert_ledger_consistent()


def order_holding(user, key: str, **body) -> str:
    """A pending order of one 50.00 course, holding whatever `body` spends (a coupon, points)."""
    fill_cart(user, "50.00")
    status, order, _ = post_order(user, key, **body)()
    assert status == 201, order
    return order["order_no"]


def cancel_job(user, order_no: str):
    return lambda: ApiClient(user).post(f"/orders/{order_no}/cancel").status_code


def test_a_cancel_racing_a_checkout_that_wants_what_it_gives_back():
    """The user cancels an order holding a coupon and all 100 points while checking out the rest
    of the cart with that coupon and those points. The checkout sees the cancel whole or not at
    all: 201 holding both, or coupon_invalid with both still held by the cancelled order until
    it gave them back; never a mix (the coupon free but the points not, insufficient_points).
    Rounds run until each side has happened."""
    outcomes: Counter[str] = Counter()
    for round_no in range(30):
        if round_no >= 4 and len(outcomes) == 2:
            break
        user = UserFactory()
        give_points(user, 100)
        coupon = give_coupon(user, threshold="0.00")
        held_no = order_holding(user, f"held-{round_no}", user_coupon_id=coupon.pk, points=100)
        fill_cart(user, "60.00")

        cancelled, placed = run_together(
            [cancel_job(user, held_no), post_order(user, f"new-{round_no}", user_coupon_id=coupon.pk, points=100)],
            spread=0.05,
        )

        assert cancelled == 200, cancelled
        status, body, _ = placed
        coupon.refresh_from_db()
        balance = PointsAccount.objects.get(user=user).balance
        if status == 201:
            assert (coupon.status, coupon.order.order_no) == ("locked", body["order_no"])
            assert (body["points_used"], balance) == (100, 0)
            outcomes["checkout after the cancel"] += 1
        else:
            assert (status, body["code"]) == (422, "coupon_invalid"), body
            assert (coupon.status, coupon.order_id, balance) == ("unused", None, 100)
            assert CartItem.objects.filter(user=user).count() == 1
            outcomes["checkout before the cancel"] += 1
        assert Order.objects.get(order_no=held_no).status == "cancelled"
    assert_ledger_consistent()
    print("SPLIT", outcomes)
    assert len(outcomes) == 2, f"one side never happened: {outcomes}"


@pytest.mark.parametrize("given_back", ["points", "coupon"])
def test_a_checkout_waits_for_a_cancel_giving_back_what_it_wants(monkeypatch, given_back):
    """Forced: the cancel has given the points (or the coupon) back but not yet committed when the
    checkout asks for them. The checkout must wait for the account's (the coupon's) row lock and
    then use them, not decide on what it read before the cancel committed."""
    user = UserFactory()
    give_points(user, 100)
    coupon = give_coupon(user, threshold="0.00")
    spend = {"points": 100} if given_back == "points" else {"user_coupon_id": coupon.pk}
    held_no = order_holding(user, "held", **spend)
    fill_cart(user, "60.00")
    checkout_done = threading.Event()
    cancel_holds = hold_after(
        monkeypatch,
        cancellation,
        "cancel_locked_orders",
        until=lambda pid: checkout_done.is_set() or someone_waits_for(pid),
    )

    def checkout():
        assert cancel_holds.wait(10), "the cancel never got that far"
        try:
            return post_order(user, "new", **spend)()
        finally:
            checkout_done.set()

    cancelled, (status, body, _) = run_together([cancel_job(user, held_no), checkout])

    assert cancelled == 200
    assert status == 201, body
    order = Order.objects.get(order_no=body["order_no"])
    if given_back == "points":
        assert order.points_used == 100 and PointsAccount.objects.get(user=user).balance == 0
    else:
        assert UserCoupon.objects.get(pk=coupon.pk).order == order
    assert_ledger_consistent()

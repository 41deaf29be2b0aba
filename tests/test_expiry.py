"""Expiry with a real Redis broker and a real Dramatiq worker thread, on a one-second timeout."""

import threading
from collections import Counter

import dramatiq
import pytest
from django.core.management import call_command
from django.utils import timezone
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker

from billing.models import PointsAccount, PointsEntry, UserCoupon
from orders import services
from orders.models import Order, PaymentAttempt
from tests.conftest import ApiClient, assert_error, assert_ledger_consistent, run_together, wait_for
from tests.factories import UserFactory, fill_cart, give_coupon, give_points
from workers import actors

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker():
    broker = dramatiq.get_broker()
    assert isinstance(broker, RedisBroker), "tests run against the real Redis broker"
    broker.flush_all()
    yield broker
    broker.flush_all()


@pytest.fixture
def worker(broker):
    worker = Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def one_second_timeout(settings):
    settings.ORDER_PAYMENT_TIMEOUT_SECONDS = 1


def place_with_holds(user, key="k", points=30):
    fill_cart(user, "100.00")
    coupon = give_coupon(user, threshold="0.00")
    give_points(user, 100)
    response = ApiClient(user).post(
        "/orders", {"user_coupon_id": coupon.pk, "points": points}, headers={"Idempotency-Key": key}
    )
    assert response.status_code == 201, response.content
    return response.json()["order_no"], coupon


def paid_through_a_closed_attempt(order_no: str, trade_no: str) -> str:
    """The payment a notify applies, on an attempt closed because Alipay had no trade for it yet
    (the buyer opened the signed URL only later): the expiry takes its batch path meanwhile."""
    order = Order.objects.get(order_no=order_no)
    if not order.payment_attempts.exists():
        PaymentAttempt.objects.create(
            order=order,
            provider="alipay",
            channel="page",
            out_trade_no=order_no,
            amount=order.pay_amount,
            status="closed",
        )
    return services.settle_payment(
        provider="alipay", out_trade_no=order_no, provider_trade_no=trade_no, amount=order.pay_amount
    ).verdict


def status_of(order_no: str) -> str:
    return Order.objects.get(order_no=order_no).status


def test_order_is_cancelled_after_its_deadline_and_holds_return(worker, one_second_timeout):
    user = UserFactory()
    order_no, coupon = place_with_holds(user)
    assert status_of(order_no) == "pending"
    assert wait_for(lambda: status_of(order_no) == "cancelled"), "expiry message did not cancel the order"
    order = Order.objects.get(order_no=order_no)
    assert order.cancel_reason == "expired" and order.cancelled_at >= order.expires_at
    coupon.refresh_from_db()
    assert (coupon.status, coupon.order_id) == ("unused", None)
    assert PointsAccount.objects.get(user=user).balance == 100
    assert_ledger_consistent()


def test_a_message_delivered_twice_changes_nothing_the_second_time(broker, worker, one_second_timeout):
    user = UserFactory()
    order_no, _ = place_with_holds(user)
    assert wait_for(lambda: status_of(order_no) == "cancelled")
    cancelled_at = Order.objects.get(order_no=order_no).cancelled_at
    actors.cancel_expired_order.send(order_no)
    actors.cancel_expired_order.send(order_no)
    broker.join(actors.EXPIRY_QUEUE, timeout=10_000)
    worker.join()
    assert Order.objects.get(order_no=order_no).cancelled_at == cancelled_at
    assert PointsEntry.objects.filter(reason="order_refund").count() == 1
    assert_ledger_consistent()


def test_a_lost_message_is_caught_by_the_sweeper(broker, settings):
    settings.ORDER_PAYMENT_TIMEOUT_SECONDS = 0  # due at once
    user = UserFactory()
    order_no, coupon = place_with_holds(user)
    broker.flush_all()  # the expiry message is gone, as after a Redis loss
    assert status_of(order_no) == "pending"
    call_command("sweep_overdue_orders")
    assert status_of(order_no) == "cancelled"
    coupon.refresh_from_db()
    assert coupon.status == "unused"
    assert_ledger_consistent()


def test_sweeper_leaves_orders_before_their_deadline(settings):
    settings.ORDER_PAYMENT_TIMEOUT_SECONDS = 600
    order_no, _ = place_with_holds(UserFactory())
    report = services.sweep_overdue_orders()
    assert report.outcomes == {}
    assert status_of(order_no) == "pending"


def test_sweeper_works_in_batches(settings, broker):
    settings.ORDER_PAYMENT_TIMEOUT_SECONDS = 0  # due at once
    users = UserFactory.create_batch(5)
    numbers = [place_with_holds(u, key=f"k{i}")[0] for i, u in enumerate(users)]
    broker.flush_all()
    report = services.sweep_overdue_orders(batch_size=2)
    assert report.outcomes == {"cancelled": 5}
    assert {status_of(n) for n in numbers} == {"cancelled"}


def test_an_order_paid_just_before_its_deadline_is_never_cancelled(broker, worker, one_second_timeout):
    user = UserFactory()
    order_no, coupon = place_with_holds(user)
    assert paid_through_a_closed_attempt(order_no, "T1") == "paid"
    order = Order.objects.get(order_no=order_no)
    # The deadline passes: the order's own message (due in a second) and a resent one both find it due.
    Order.objects.filter(order_no=order_no).update(expires_at=timezone.now())
    actors.cancel_expired_order.send(order_no)
    broker.join(actors.EXPIRY_QUEUE, timeout=10_000)
    worker.join()
    order.refresh_from_db()
    assert (order.status, order.cancelled_at) == ("paid", None)
    coupon.refresh_from_db()
    assert coupon.status == "used"


def test_pay_and_expiry_racing_never_both(settings, broker):
    """Rounds of a payment (as the notify applies it) racing the expiry at the deadline, until each
    has won at least once."""
    settings.ORDER_PAYMENT_TIMEOUT_SECONDS = 0
    outcomes = Counter()
    for n in range(40):
        if n >= 10 and len(outcomes) == 2:  # at least 10 rounds, then on until each side has won
            break
        user = UserFactory()
        order_no, _ = place_with_holds(user, key=f"race{n}")
        order = Order.objects.get(order_no=order_no)
        PaymentAttempt.objects.create(
            order=order,
            provider="alipay",
            channel="page",
            out_trade_no=order_no,
            amount=order.pay_amount,
            status="closed",
        )
        pay, expire = run_together(
            [
                lambda: paid_through_a_closed_attempt(order_no, f"T{n}"),  # noqa: B023
                lambda: services.cancel_expired_order(order_no=order_no),  # noqa: B023
            ]
        )
        results = {"pay": pay, "expire": expire}
        order = Order.objects.get(order_no=order_no)
        assert not (order.paid_at and order.cancelled_at)
        if order.status == "paid":
            assert results == {"pay": "paid", "expire": "skipped"}
            assert UserCoupon.objects.get(order=order).status == "used"
        else:
            assert order.status == "cancelled"
            assert results == {"pay": "refund_required", "expire": "cancelled"}
            # The trade number is kept, so the money can be refunded.
            attempt = order.payment_attempts.get()
            assert (attempt.status, attempt.provider_trade_no) == ("refund_required", f"T{n}")
        outcomes[order.status] += 1
    assert_ledger_consistent()
    assert set(outcomes) == {"paid", "cancelled"}, f"one side never won: {outcomes}"


def test_orders_still_succeed_when_redis_is_down(settings, monkeypatch):
    dead = RedisBroker(url="redis://127.0.0.1:1/0", socket_connect_timeout=1)
    monkeypatch.setattr(actors.cancel_expired_order, "broker", dead)
    user = UserFactory()
    order_no, _ = place_with_holds(user)
    assert status_of(order_no) == "pending"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    body = assert_error(ApiClient().get("/health"), 503, "service_unavailable")
    assert body["details"]["broker"] == "down"


def test_batch_cancel_returns_every_hold_in_a_fixed_number_of_queries(settings, django_assert_max_num_queries):
    settings.ORDER_PAYMENT_TIMEOUT_SECONDS = 0
    users = UserFactory.create_batch(3)
    numbers = []
    for n, user in enumerate(users):
        for k in range(2):  # two orders of one user in the same batch: running balances
            numbers.append(place_with_holds(user, key=f"{n}-{k}", points=10)[0])
    locked = {uc.pk for uc in UserCoupon.objects.filter(status="locked")}
    # BEGIN, 9 statements whatever the batch size (a SAVEPOINT and its RELEASE among them, and the
    # re-check for payment attempts opened just before the lock), COMMIT
    with django_assert_max_num_queries(11):
        cancelled = services.cancellation.cancel_overdue_orders_without_trade(limit=100)
    assert sorted(cancelled) == sorted(numbers)
    assert UserCoupon.objects.filter(pk__in=locked, status="unused", order=None).count() == len(locked)
    for user in users:
        # each user: 2 grants of 100, 2 debits of 10, 2 refunds of 10
        assert PointsAccount.objects.get(user=user).balance == 200
    assert PointsEntry.objects.filter(reason="order_refund").count() == 6
    assert_ledger_consistent()


def test_batch_cancel_skips_orders_someone_else_holds(settings):
    settings.ORDER_PAYMENT_TIMEOUT_SECONDS = 0
    held_no, _ = place_with_holds(UserFactory(), key="held")
    free_no, _ = place_with_holds(UserFactory(), key="free")
    holding = threading.Event()
    release = threading.Event()

    def hold():
        from django.db import transaction

        with transaction.atomic():
            Order.objects.select_for_update().get(order_no=held_no)
            holding.set()
            release.wait(10)

    def cancel_batch():
        holding.wait(10)
        try:
            return services.cancellation.cancel_overdue_orders_without_trade(limit=10)
        finally:
            release.set()

    _, cancelled = run_together([hold, cancel_batch])
    assert cancelled == [free_no]
    assert status_of(held_no) == "pending"
    assert services.cancel_expired_order(order_no=held_no) == "cancelled"


def test_one_expiry_message_drains_every_due_order(settings, broker):
    settings.ORDER_PAYMENT_TIMEOUT_SECONDS = 0
    settings.SWEEP_BATCH_SIZE = 2
    numbers = [place_with_holds(u, key=f"d{i}")[0] for i, u in enumerate(UserFactory.create_batch(5))]
    assert services.cancel_expired_order(order_no=numbers[-1]) == "cancelled"
    assert {status_of(n) for n in numbers} == {"cancelled"}  # 3 batches of 2, one message
    assert_ledger_consistent()

"""Races around payment, with real threads against Postgres: Alipay's notify against the user's
cancel, and duplicate notifies against each other. Refunds of money paid for an order that lost
the race run on a real Redis broker and worker, against the dev gateway on live_server."""

import threading
from collections import Counter
from decimal import Decimal
from functools import partial

import pytest
from django.utils import timezone

from billing.dev_gateway.notify import signed_notify_params
from billing.dev_gateway.trades import new_trade_no
from billing.models import DevGatewayTrade, PaymentNotification, PointsAccount, PointsEntry, UserCoupon
from core.models import Enrollment
from orders import events
from orders.models import Order, PaymentAttempt
from orders.services import cancellation, payment
from tests.conftest import ApiClient, assert_ledger_consistent, hold_after, run_together, someone_waits_for
from tests.factories import UserFactory, fill_cart, give_coupon, give_points
from tests.payment_support import (
    DEAD_BASE_URL,
    http,
    key_dir,
    notify_answer,
    open_alipay_attempt,
    pay_form_action,
    place_order,
    point_gateway_at,
    post_notify,
    refund_worker,
    use_dev_gateway,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)
# The free race runs at least ROUNDS rounds, then on until each side has won once, up to MAX_ROUNDS.
ROUNDS = 10
MAX_ROUNDS = 40
PAY_AMOUNT = Decimal("77.00")


@pytest.fixture
def gateway(settings, live_server, tmp_path_factory):
    use_dev_gateway(settings, base_url=live_server.url, dev_key_dir=key_dir(tmp_path_factory))
    return live_server


@pytest.fixture
def worker(monkeypatch):
    with refund_worker(monkeypatch) as broker:
        yield broker


def order_with_holds(user, key: str) -> tuple[str, UserCoupon]:
    """Pending, holding a coupon (20.00 off) and 30 of 100 points (3.00 off): pays 77.00."""
    fill_cart(user, "100.00")
    coupon = give_coupon(user, threshold="0.00")
    give_points(user, 100)
    order = place_order(user, key, user_coupon_id=coupon.pk, points=30)
    assert order["pay_amount"] == "77.00"
    return order["order_no"], coupon


def notify_job(params: dict[str, str]) -> tuple[int, str]:
    response = post_notify(params)
    return response.status_code, notify_answer(response)


def cancel_job(user, order_no: str) -> tuple[int, dict]:
    response = ApiClient(user).post(f"/orders/{order_no}/cancel")
    return response.status_code, response.json()


def assert_paid_once(user, order: Order, coupon: UserCoupon) -> None:
    assert order.paid_at is not None and order.cancelled_at is None
    coupon.refresh_from_db()
    assert (coupon.status, coupon.order_id) == ("used", order.pk)
    assert Enrollment.objects.filter(user=user, order=order).count() == 1
    assert PointsEntry.objects.filter(order=order, reason="order_earned").count() == 1
    assert PointsAccount.objects.get(user=user).balance == 100 - 30 + 77


def closed_attempt(order_no: str) -> PaymentAttempt:
    """The order's only attempt, closed: Alipay had no trade when we asked (the buyer opened the
    signed URL only later), so a cancel does not ask Alipay first."""
    return PaymentAttempt.objects.create(
        order=Order.objects.get(order_no=order_no),
        provider="alipay",
        channel="page",
        out_trade_no=order_no,
        amount=PAY_AMOUNT,
        status="closed",
    )


def test_notify_and_user_cancel_racing_never_both_win(gateway, worker):
    """The buyer paid (the trade is paid at the gateway) while the user presses Cancel on an
    order whose only attempt is closed: whoever takes the order's row lock first wins, the other
    must see it. A lost payment is refunded. Rounds run until each side has won at least once."""
    outcomes = Counter()
    refunds_owed: list[str] = []
    for n in range(MAX_ROUNDS):
        if n >= ROUNDS and len(outcomes) == 2:
            break
        user = UserFactory()
        order_no, coupon = order_with_holds(user, f"race-{n}")
        closed_attempt(order_no)
        trade = DevGatewayTrade.objects.create(
            out_trade_no=order_no,
            trade_no=new_trade_no(),
            total_amount=PAY_AMOUNT,
            subject="race",
            status=DevGatewayTrade.Status.TRADE_SUCCESS,
            paid_at=timezone.now(),
        )
        params = signed_notify_params(trade)

        notified, cancelled = run_together([partial(notify_job, params), partial(cancel_job, user, order_no)])

        assert isinstance(notified, tuple) and isinstance(cancelled, tuple), (notified, cancelled)
        order = Order.objects.get(order_no=order_no)
        [notification] = PaymentNotification.objects.filter(out_trade_no=order_no)
        assert not (order.paid_at and order.cancelled_at)
        assert notified == (200, "success")  # either way Alipay may stop: we hold the outcome
        attempt = PaymentAttempt.objects.get(order=order)
        assert attempt.provider_trade_no == trade.trade_no
        if order.status == "paid":
            assert notification.verdict == "paid"
            assert cancelled[0] == 409 and cancelled[1]["code"] == "order_not_cancellable", cancelled
            assert_paid_once(user, order, coupon)
        else:
            assert order.status == "cancelled", order.status
            assert cancelled[0] == 200 and cancelled[1]["status"] == "cancelled", cancelled
            assert notification.verdict == "refund_required"
            # The refund worker may already have given the money back: checked for all rounds below.
            assert attempt.status in ("refund_required", "refunded"), attempt.status
            coupon.refresh_from_db()
            assert (coupon.status, coupon.order_id) == ("unused", None)
            assert PointsAccount.objects.get(user=user).balance == 100
            assert not Enrollment.objects.filter(user=user).exists()
            assert not PointsEntry.objects.filter(order=order, reason="order_earned").exists()
            refunds_owed.append(order_no)
        outcomes[order.status] += 1
    assert_ledger_consistent()
    assert set(outcomes) == {"paid", "cancelled"}, f"one side never won: {outcomes}"

    # Every refund the notifies started is carried out at the gateway by the worker, once.
    def all_refunded() -> bool:
        return PaymentAttempt.objects.filter(out_trade_no__in=refunds_owed).exclude(status="refunded").count() == 0

    assert wait_for(all_refunded, timeout=20), "a payment for a cancelled order was never refunded"
    for trade in DevGatewayTrade.objects.all():
        owed = trade.out_trade_no in refunds_owed
        assert trade.refunded_amount == (PAY_AMOUNT if owed else Decimal("0.00")), trade.out_trade_no
        assert trade.status == ("TRADE_CLOSED" if owed else "TRADE_SUCCESS")
    assert Order.objects.filter(status="paid", refunded_at__isnull=False).count() == 0
    assert PaymentAttempt.objects.filter(status="refunded").count() == len(refunds_owed)


@pytest.mark.parametrize("first", ["cancel", "notify"])
def test_notify_and_user_cancel_forced_in_either_order_never_both_win(settings, tmp_path_factory, monkeypatch, first):
    """The race above with its interleaving forced: the first side holds the order's row lock (its
    transaction kept open once its work is done) until the second side queues behind it. A
    cancel first: the payment finds a cancelled order and is marked for refund. A notify first:
    the cancel finds a paid order and answers 409."""
    use_dev_gateway(settings, base_url=DEAD_BASE_URL, dev_key_dir=key_dir(tmp_path_factory))
    monkeypatch.setattr(events, "_refund_needed", [])  # the refund itself is the test above's
    user = UserFactory()
    order_no, coupon = order_with_holds(user, "forced")
    closed_attempt(order_no)
    params = signed_notify_params({"out_trade_no": order_no, "total_amount": PAY_AMOUNT})
    second_done = threading.Event()
    owner, name = (cancellation, "cancel_locked_orders") if first == "cancel" else (payment, "settle_paid_order")
    held = hold_after(monkeypatch, owner, name, until=lambda pid: second_done.is_set() or someone_waits_for(pid))
    jobs = {"notify": partial(notify_job, params), "cancel": partial(cancel_job, user, order_no)}
    second = "notify" if first == "cancel" else "cancel"

    def second_job():
        assert held.wait(10), f"the {first} never took the order"
        try:
            return jobs[second]()
        finally:
            second_done.set()

    results = dict(zip([first, second], run_together([jobs[first], second_job]), strict=True))

    order = Order.objects.get(order_no=order_no)
    assert not (order.paid_at and order.cancelled_at), (order.paid_at, order.cancelled_at)
    assert results["notify"] == (200, "success")
    notification = PaymentNotification.objects.get(out_trade_no=order_no)
    if first == "cancel":
        assert results["cancel"][0] == 200, results
        assert (order.status, notification.verdict) == ("cancelled", "refund_required")
        assert PaymentAttempt.objects.get(order=order).status == "refund_required"
        assert PointsAccount.objects.get(user=user).balance == 100
    else:
        assert results["cancel"][0] == 409 and results["cancel"][1]["code"] == "order_not_cancellable", results
        assert (order.status, notification.verdict) == ("paid", "paid")
        assert_paid_once(user, order, coupon)
    assert_ledger_consistent()


def test_resent_notify_and_cancel_after_a_real_payment_always_settle_paid(gateway, settings):
    """The pay URL was signed and the buyer paid at the gateway, but the notify was lost; Alipay
    resends it just as the user presses Cancel. Cancel asks Alipay first, learns the trade is
    paid and settles it, so the order ends paid exactly once and the cancel answers 409."""
    point_gateway_at(settings, gateway.url, notify_base_url=DEAD_BASE_URL)  # the first notify is lost
    for n in range(5):
        user = UserFactory()
        order_no, coupon = order_with_holds(user, f"paid-race-{n}")
        pay_url = ApiClient(user).post(f"/orders/{order_no}/pay").json()["pay_url"]
        action = pay_form_action(http("GET", pay_url).text)
        assert http("POST", gateway.url + action).status_code == 302
        trade = DevGatewayTrade.objects.get(out_trade_no=order_no)
        assert trade.status == "TRADE_SUCCESS"
        assert Order.objects.get(order_no=order_no).status == "pending"

        notified, cancelled = run_together(
            [partial(notify_job, signed_notify_params(trade)), partial(cancel_job, user, order_no)]
        )

        assert notified == (200, "success"), notified
        assert cancelled[0] == 409 and cancelled[1]["code"] == "order_not_cancellable", cancelled
        order = Order.objects.get(order_no=order_no)
        assert order.status == "paid"
        assert PaymentAttempt.objects.get(order=order).provider_trade_no == trade.trade_no
        assert PaymentNotification.objects.get(out_trade_no=order_no).verdict in ("paid", "duplicate")
        assert_paid_once(user, order, coupon)
        trade.refresh_from_db()
        assert (trade.status, trade.refunded_amount) == ("TRADE_SUCCESS", Decimal("0.00"))
    assert_ledger_consistent()


def test_simultaneous_duplicate_notifies_pay_once(settings, tmp_path_factory):
    use_dev_gateway(settings, base_url=DEAD_BASE_URL, dev_key_dir=key_dir(tmp_path_factory))
    user = UserFactory()
    order_no, coupon = order_with_holds(user, "dup")
    open_alipay_attempt(user, order_no)
    params = signed_notify_params({"out_trade_no": order_no, "total_amount": PAY_AMOUNT})

    results = run_together([partial(notify_job, params)] * 8)

    assert results == [(200, "success")] * 8, results
    verdicts = Counter(PaymentNotification.objects.values_list("verdict", flat=True))
    assert verdicts == {"paid": 1, "duplicate": 7}
    order = Order.objects.get(order_no=order_no)
    assert order.status == "paid"
    assert PaymentAttempt.objects.get(order=order).provider_trade_no == params["trade_no"]
    assert_paid_once(user, order, coupon)
    assert_ledger_consistent()

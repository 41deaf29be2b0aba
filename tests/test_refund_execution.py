"""Refunds sent through the provider that was paid, end to end over real HTTP: our API, the Alipay
and WeChat Pay dev gateways on live_server (their records play the providers' books), the
`send_refund` actor on a real Redis broker and worker, WeChat Pay's REFUND.* notify or a query.
Every test ends with the points ledger consistent and the refund invariants holding."""

from decimal import Decimal
from functools import partial

import pytest
from django.test import Client

from billing.alipay.client import get_alipay_client
from billing.dev_gateway import trades as alipay_trades
from billing.models import DevGatewayTrade, PaymentNotification, PointsAccount, WechatPayDevRefund, WechatPayDevTrade
from billing.wechatpay_dev_gateway import trades as wechat_trades
from billing.wechatpay_dev_gateway.notify import wait_for_deliveries
from core.models import Enrollment, User
from orders import events, services
from orders.models import Order, Refund
from orders.services import providers
from orders.services.providers import ProviderError
from tests.conftest import ApiClient, assert_ledger_consistent
from tests.factories import UserFactory
from tests.payment_support import refund_worker, use_both_dev_gateways, wait_for
from tests.refund_support import (
    ask_refund,
    assert_refunds_within_pay_amount,
    line_ids,
    order_with_discounts,
    pay_at_gateway,
)
from workers import actors

pytestmark = pytest.mark.django_db(transaction=True)
DEAD_NOTIFY_URL = "http://127.0.0.1:9/api/v1/payments/wechat/notify"


@pytest.fixture
def gateways(settings, live_server, tmp_path_factory):
    """Both dev gateways on live_server, and both notify URLs pointing back at it."""
    use_both_dev_gateways(settings, base_url=live_server.url, tmp_path_factory=tmp_path_factory)
    settings.REFUND_AUTO_APPROVE = True
    yield live_server.url
    wait_for_deliveries()
    assert_ledger_consistent()


@pytest.fixture
def worker(monkeypatch):
    # Retries come quickly here: the actor's own backoff starts at 5 s.
    monkeypatch.setitem(actors.send_refund.options, "min_backoff", 200)
    monkeypatch.setitem(actors.send_refund.options, "max_backoff", 1_000)
    with refund_worker(monkeypatch) as broker:
        yield broker


def paid_order(base_url: str, user, provider: str, key: str = "k") -> Order:
    """100.00 + 57.99 with a 20.00 coupon and 30 of 1000 points: pays 134.99 at the provider."""
    order = order_with_discounts(user, "100.00", "57.99", key=key)
    return pay_at_gateway(base_url, user, order["order_no"], provider)


def refund_status(refund_id: int) -> str:
    return Refund.objects.get(pk=refund_id).status


def balance(user) -> int:
    return PointsAccount.objects.get(user=user).balance


def provider_refunds(order: Order) -> list[tuple[str, Decimal]]:
    """What the provider's books say was refunded on the order's paid trade: (request id, amount)."""
    attempt = order.payment_attempts.get(status="paid")
    if attempt.provider == "alipay":
        trade = DevGatewayTrade.objects.get(out_trade_no=attempt.out_trade_no)
        return [(no, None) for no in trade.refund_request_nos] + [("total", trade.refunded_amount)]
    refunds = WechatPayDevRefund.objects.filter(trade__out_trade_no=attempt.out_trade_no).order_by("id")
    trade = WechatPayDevTrade.objects.get(out_trade_no=attempt.out_trade_no)
    return [(r.out_refund_no, None) for r in refunds] + [("total", Decimal(trade.refunded) / 100)]


@pytest.mark.parametrize("provider", ["alipay", "wechat"])
def test_refund_one_line_then_the_other_through_the_provider_that_was_paid(gateways, worker, provider):
    user = UserFactory()
    order = paid_order(gateways, user, provider)
    first, second = line_ids(order.order_no)
    assert balance(user) == 1000 - 30 + 134

    asked = ask_refund(user, order.order_no, [second], reason="不想学了")
    assert (asked.status_code, asked.json()["status"], asked.json()["amount"]) == (201, "approved", "49.55")
    assert wait_for(lambda: refund_status(asked.json()["id"]) == "succeeded"), Refund.objects.get().__dict__

    refund = Refund.objects.get()
    assert provider_refunds(order) == [(refund.request_no, None), ("total", Decimal("49.55"))]
    order.refresh_from_db()
    assert order.status == "partially_refunded"
    assert list(Enrollment.objects.filter(user=user).values_list("course_id", flat=True)) == [
        order.lines.get(pk=first).course_id
    ]
    # The 11 points spent on the line back, the 49 it earned (floor of 49.55) taken back.
    assert (refund.points_returned, refund.points_taken_back, refund.points_not_taken_back) == (11, 49, 0)
    assert balance(user) == 1104 + 11 - 49
    shown = ApiClient(user).get(f"/orders/{order.order_no}").json()
    assert (shown["status"], [line["refund_status"] for line in shown["lines"]]) == (
        "partially_refunded",
        [None, "succeeded"],
    )
    assert shown["refunds"][0]["completed_at"] and shown["refunds"][0]["provider"] == provider

    asked = ask_refund(user, order.order_no, [first])
    assert wait_for(lambda: refund_status(asked.json()["id"]) == "succeeded")

    order.refresh_from_db()
    assert (order.status, order.refunded_at is not None) == ("refunded", True)
    assert provider_refunds(order)[-1] == ("total", order.pay_amount)
    assert len(provider_refunds(order)) == 3  # two request ids, one each
    assert not Enrollment.objects.filter(user=user).exists()
    assert balance(user) == 1000  # every point spent back, every point earned taken back
    assert order.user_coupon.status == "unused"  # whole order refunded, coupon inside its window
    if provider == "wechat":
        notified = PaymentNotification.objects.filter(provider="wechat", trade_status="SUCCESS").exclude(verdict="paid")
        assert wait_for(lambda: notified.count() == 2)
    assert_refunds_within_pay_amount(order.order_no)


def test_a_wechat_refund_whose_notify_is_lost_is_settled_by_a_query(gateways, settings, monkeypatch):
    user = UserFactory()
    order = paid_order(gateways, user, "wechat")
    settings.WECHATPAY_NOTIFY_URL = DEAD_NOTIFY_URL
    sent: list[str] = []
    monkeypatch.setattr(events, "_refund_approved", [sent.append])  # no worker: run by hand below

    refund = Refund.objects.get(pk=ask_refund(user, order.order_no, line_ids(order.order_no)).json()["id"])
    assert sent == [refund.request_no]
    with pytest.raises(services.RefundPending):
        services.send_refund(request_no=refund.request_no)  # WeChat Pay answers PROCESSING
    assert refund_status(refund.pk) == "processing"
    # The sweeper asks again about a refund left processing: a query, not a second refund.
    settings.REFUND_RECHECK_SECONDS = 0
    report = services.sweep_overdue_orders()
    assert report.outcomes.get("refund_succeeded") == 1, report

    refund.refresh_from_db()
    assert (refund.status, refund.send_count, refund.provider_refund_id != "") == ("succeeded", 2, True)
    assert [r.out_refund_no for r in WechatPayDevRefund.objects.all()] == [refund.request_no]
    assert Order.objects.get(pk=order.pk).status == "refunded"
    assert services.sweep_overdue_orders().outcomes == {}


@pytest.mark.parametrize("provider", ["alipay", "wechat"])
def test_a_provider_refusal_leaves_the_refund_failed_and_the_courses_owned(gateways, worker, provider):
    user = UserFactory()
    order = paid_order(gateways, user, provider)
    attempt = order.payment_attempts.get(status="paid")
    # Most of the trade was refunded outside the shop: the provider refuses anything more.
    if provider == "alipay":
        alipay_trades.refund_trade(
            out_trade_no=attempt.out_trade_no, refund_amount=Decimal("100.00"), out_request_no="elsewhere"
        )
    else:
        wechat_trades.refund_trade(
            mchid="1900000109",
            out_trade_no=attempt.out_trade_no,
            out_refund_no="elsewhere",
            refund=10000,
            total=13499,
            reason="",
            notify_url="",
        )
    before = balance(user)

    asked = ask_refund(user, order.order_no, line_ids(order.order_no)[:1])
    assert wait_for(lambda: refund_status(asked.json()["id"]) == "failed")

    refund = Refund.objects.get()
    assert refund.failure_message.startswith(provider), refund.failure_message
    assert (
        ("REFUND_AMT" in refund.failure_message)
        if provider == "alipay"
        else "INVALID_REQUEST" in refund.failure_message
    )
    order.refresh_from_db()
    assert order.status == "paid"
    assert Enrollment.objects.filter(user=user).count() == 2
    assert balance(user) == before
    assert ApiClient(user).get(f"/orders/{order.order_no}").json()["lines"][0]["refund_status"] == "failed"
    assert_refunds_within_pay_amount(order.order_no)
    # Staff see the provider's words, and can send it again (same request id) or reject it.
    admin = Client()
    operator = User.objects.create_superuser("operator", password="operator-pass-123")
    admin.force_login(operator)
    page = admin.get("/admin/orders/refund/").content.decode()
    assert refund.request_no in page and refund.failure_message[:40] in page
    services.retry_refund(refund_id=refund.pk, decided_by=operator)
    assert wait_for(lambda: refund_status(refund.pk) == "failed" and Refund.objects.get().send_count == 2)
    services.reject_refund(refund_id=refund.pk, decided_by=operator, reason="refunded by bank transfer")
    assert ask_refund(user, order.order_no, line_ids(order.order_no)[:1]).status_code == 201  # asked again
    assert Enrollment.objects.filter(user=user).count() == 2


@pytest.mark.parametrize("provider", ["alipay", "wechat"])
def test_a_retried_actor_never_sends_a_second_refund_request_id(gateways, worker, settings, monkeypatch, provider):
    """The provider makes the refund but its answer is lost on the way back (and WeChat Pay's
    notify too): the actor is retried, asks (WeChat Pay) or sends again (Alipay) with the same
    request id, and the provider's books show one refund."""
    user = UserFactory()
    order = paid_order(gateways, user, provider)
    settings.WECHATPAY_NOTIFY_URL = DEAD_NOTIFY_URL
    adapter = providers.PROVIDERS[provider]
    real_refund = adapter.refund
    calls: list[str] = []

    def answer_lost_once(**kwargs):
        result = real_refund(**kwargs)
        calls.append(kwargs["refund_request_no"])
        if len(calls) == 1:
            raise ProviderError(f"{provider}: read timed out")
        return result

    monkeypatch.setattr(adapter, "refund", answer_lost_once)

    asked = ask_refund(user, order.order_no, line_ids(order.order_no))
    assert wait_for(lambda: refund_status(asked.json()["id"]) == "succeeded")

    refund = Refund.objects.get()
    assert refund.send_count >= 2
    assert set(calls) == {refund.request_no}
    assert provider_refunds(order) == [(refund.request_no, None), ("total", order.pay_amount)]
    assert Order.objects.get(pk=order.pk).status == "refunded"
    assert not Enrollment.objects.filter(user=user).exists()


def test_an_alipay_answer_that_moved_no_money_counts_only_when_the_refund_query_finds_the_refund(gateways, monkeypatch):
    """Alipay's `fund_change: N` means no money moved with that answer: a repeat of a refund it
    made (its refund query finds it), or not (the query finds nothing: not refunded yet)."""
    order = paid_order(gateways, UserFactory(), "alipay")
    attempt = order.payment_attempts.get(status="paid")
    alipay = providers.PROVIDERS["alipay"]
    send = partial(alipay.refund, out_trade_no=attempt.out_trade_no, amount=Decimal("10.00"), total=attempt.amount)

    assert send(refund_request_no="R-made").state == "succeeded"
    assert send(refund_request_no="R-made").state == "succeeded"  # fund_change N, found by the query
    assert alipay.refund_state(out_trade_no=attempt.out_trade_no, refund_request_no="R-made").state == "succeeded"
    assert alipay.refund_state(out_trade_no=attempt.out_trade_no, refund_request_no="R-never") is None

    # Alipay answers N to a request number it has no refund under (here: the wire carries the
    # number of the refund made above): not a refund of this one.
    client = get_alipay_client()
    refund_trade = client.refund_trade
    monkeypatch.setattr(client, "refund_trade", lambda **sent: refund_trade(**(sent | {"out_request_no": "R-made"})))
    assert send(refund_request_no="R-other").state == "processing"
    trade = DevGatewayTrade.objects.get(out_trade_no=attempt.out_trade_no)
    assert (trade.refunded_amount, trade.refund_amounts) == (Decimal("10.00"), {"R-made": "10.00"})

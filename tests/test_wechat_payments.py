"""Paying with WeChat Pay, and with both providers on one order, end to end over real HTTP: our
API, the WeChat Pay and Alipay dev gateways on live_server (signing and encrypting with their
own keys exactly as the providers do), notifies delivered to our endpoints."""

import time
from datetime import timedelta
from decimal import Decimal
from functools import partial

import pytest
from django.test import Client
from django.utils import timezone

from billing.dev_gateway.notify import signed_notify_params
from billing.models import DevGatewayTrade, PaymentNotification, PointsEntry, WechatPayDevTrade
from billing.wechatpay.configured import get_wechatpay_client
from billing.wechatpay.keys import load_private_key
from billing.wechatpay_dev_gateway.notify import signed_notify, wait_for_deliveries
from core.models import Enrollment
from orders import services
from orders.models import Order, PaymentAttempt
from tests.conftest import ApiClient, assert_ledger_consistent, run_together
from tests.factories import UserFactory, fill_cart, give_coupon, give_points
from tests.payment_support import (
    WECHAT_NOTIFY_PATH,
    attempts_of,
    http,
    notify_answer,
    order_snapshot,
    pay_form_action,
    point_gateway_at,
    post_notify,
    reach_deadline,
    refund_worker,
    use_both_dev_gateways,
    wait_for,
)
from tests.test_wechatpay_signing import fixture_text

pytestmark = pytest.mark.django_db(transaction=True)
PAY_AMOUNT = Decimal("77.00")


@pytest.fixture
def gateways(settings, live_server, tmp_path_factory):
    """Both dev gateways on live_server, and both notify URLs pointing back at it."""
    use_both_dev_gateways(settings, base_url=live_server.url, tmp_path_factory=tmp_path_factory)
    yield live_server
    wait_for_deliveries()


def order_with_holds(user, key: str = "k", pay_type: str = "wechat") -> str:
    """Pending, holding a coupon (20.00 off) and 30 of 100 points (3.00 off): pays 77.00."""
    fill_cart(user, "100.00")
    coupon = give_coupon(user, threshold="0.00")
    give_points(user, 100)
    response = ApiClient(user).post(
        "/orders", {"pay_type": pay_type, "user_coupon_id": coupon.pk, "points": 30}, headers={"Idempotency-Key": key}
    )
    assert response.status_code == 201, response.content
    order = response.json()
    assert (order["pay_amount"], order["pay_type"]) == ("77.00", pay_type)
    return order["order_no"]


def pay(user, order_no: str, provider: str, channel: str) -> dict:
    response = ApiClient(user).post(f"/orders/{order_no}/pay", {"provider": provider, "channel": channel})
    assert response.status_code == 200, response.content
    return response.json()


def press_pay(base_url: str, page_url: str) -> None:
    """The buyer opens the provider's page (the scanned QR, the H5 page, the cashier) and pays."""
    page = http("GET", page_url)
    assert page.status_code == 200, page.text
    action = pay_form_action(page.text)
    assert action, page.text
    assert http("POST", base_url + action).status_code in (200, 302)


def assert_paid_once(user, order_no: str) -> Order:
    order = Order.objects.get(order_no=order_no)
    assert (order.status, order.cancelled_at) == ("paid", None)
    assert Enrollment.objects.filter(user=user, order=order).count() == 1
    assert PointsEntry.objects.filter(order=order, reason="order_earned").count() == 1
    assert PaymentAttempt.objects.filter(order=order, status="paid").count() == 1
    assert_ledger_consistent()
    return order


def test_native_qr_code_paid_by_the_phone_pays_the_order(gateways, settings, monkeypatch):
    client = get_wechatpay_client()
    asked: list[str] = []

    def create_native_order(**trade):  # WeChat Pay is asked, and the question counted
        asked.append(trade["out_trade_no"])
        return create(**trade)

    create = client.create_native_order
    monkeypatch.setattr(client, "create_native_order", create_native_order)
    user = UserFactory()
    order_no = order_with_holds(user)
    started = pay(user, order_no, "wechat", "native")
    assert (started["provider"], started["channel"], started["pay_url"], started["h5_url"]) == (
        "wechat",
        "native",
        None,
        None,
    )
    assert started["code_url"].startswith(gateways.url + "/dev/wechatpay/scanned/")
    # Asking again reuses the attempt, its trade and the link WeChat Pay gave it, without asking
    # WeChat Pay again; a link near the end of its 2 hours is asked for anew.
    assert pay(user, order_no, "wechat", "native")["code_url"] == started["code_url"]
    out_trade_no = f"{order_no}_1"
    assert asked == [out_trade_no]
    PaymentAttempt.objects.filter(out_trade_no=out_trade_no).update(
        code_url_at=timezone.now() - timedelta(hours=1, minutes=51)
    )
    assert pay(user, order_no, "wechat", "native")["code_url"] == started["code_url"]
    assert asked == [out_trade_no, out_trade_no]
    assert timezone.now() - PaymentAttempt.objects.get(out_trade_no=out_trade_no).code_url_at < timedelta(minutes=1)
    assert attempts_of(order_no) == [(out_trade_no, "wechat", "native", "open", "")]
    trade = WechatPayDevTrade.objects.get(out_trade_no=out_trade_no)
    assert (trade.total, trade.trade_type) == (7700, "NATIVE")
    # WeChat Pay's clock stops at the order's deadline (RFC 3339 has whole seconds: never later).
    assert trade.time_expire == Order.objects.get(order_no=order_no).expires_at.replace(microsecond=0)

    press_pay(gateways.url, started["code_url"])

    assert wait_for(lambda: Order.objects.get(order_no=order_no).status == "paid"), "the notify never paid it"
    assert_paid_once(user, order_no)
    trade.refresh_from_db()
    assert attempts_of(order_no) == [(out_trade_no, "wechat", "native", "paid", trade.transaction_id)]
    notification = PaymentNotification.objects.get(provider="wechat")
    assert (notification.verdict, notification.out_trade_no, notification.total_amount) == (
        "paid",
        out_trade_no,
        "77.00",
    )
    shown = ApiClient(user).get(f"/orders/{order_no}").json()
    assert [(a["provider"], a["channel"], a["status"]) for a in shown["payment_attempts"]] == [
        ("wechat", "native", "paid")
    ]


def test_h5_in_a_phone_browser_pays_and_comes_back_to_the_order(gateways, settings):
    user = UserFactory()
    order_no = order_with_holds(user)
    started = pay(user, order_no, "wechat", "h5")
    assert started["code_url"] is None and started["h5_url"]
    # WeChat Pay sends the buyer back to the order's page in the shop.
    assert "redirect_url=" in started["h5_url"] and order_no in started["h5_url"]
    assert WechatPayDevTrade.objects.get(out_trade_no=f"{order_no}_1").trade_type == "MWEB"
    press_pay(gateways.url, started["h5_url"])
    assert wait_for(lambda: Order.objects.get(order_no=order_no).status == "paid")
    assert_paid_once(user, order_no)


def test_wechat_notify_that_does_not_verify_is_refused_summarised_and_changes_nothing(gateways):
    user = UserFactory()
    order_no = order_with_holds(user)
    pay(user, order_no, "wechat", "native")
    trade = WechatPayDevTrade.objects.get(out_trade_no=f"{order_no}_1")
    before = order_snapshot(order_no)
    foreign = load_private_key(fixture_text("test_only_other_private_pkcs8.pem"))
    bad = [
        signed_notify(trade, transaction_id="4200000000000000000000000001", private_key=foreign),
        signed_notify(trade, transaction_id="4200000000000000000000000001", apiv3_key=b"k" * 32),
        signed_notify(trade, transaction_id="4200000000000000000000000001", timestamp=int(time.time()) - 400),
        signed_notify(trade, transaction_id="4200000000000000000000000001", mchid="1900000999"),
    ]
    for notify in bad:
        response = Client().post(WECHAT_NOTIFY_PATH, data=notify.body, content_type="application/json", **_meta(notify))
        assert response.status_code == 400, response.content
        assert response.json()["code"] == "FAIL"
    rejected = PaymentNotification.objects.filter(provider="wechat")
    assert [n.verdict for n in rejected] == ["rejected"] * 4
    for notification in rejected:
        assert len(notification.raw.get("body", "")) <= 200
    # Validly signed and encrypted, but one fen short, or about an attempt we never opened.
    for overrides in ({"amount": {"total": 7699, "payer_total": 7699, "currency": "CNY", "payer_currency": "CNY"}},):
        notify = signed_notify(trade, transaction_id="4200000000000000000000000002", **overrides)
        response = Client().post(WECHAT_NOTIFY_PATH, data=notify.body, content_type="application/json", **_meta(notify))
        assert (response.status_code, response.json()["code"]) == (400, "FAIL")
    assert order_snapshot(order_no) == before
    assert PaymentNotification.objects.filter(provider="wechat").count() == 5
    # The genuine one still pays.
    notify = signed_notify(trade, transaction_id="4200000000000000000000000003")
    response = Client().post(WECHAT_NOTIFY_PATH, data=notify.body, content_type="application/json", **_meta(notify))
    assert response.status_code == 204
    assert_paid_once(user, order_no)


def _meta(notify) -> dict[str, str]:
    return {"HTTP_" + name.upper().replace("-", "_"): value for name, value in notify.headers.items()}


def test_paid_on_two_attempts_ends_with_one_paid_and_the_other_refunded_once(gateways, monkeypatch):
    """The buyer scanned the WeChat QR code and also paid in Alipay's cashier: the first payment
    pays the order, the second is refunded exactly once at its provider."""
    user = UserFactory()
    order_no = order_with_holds(user)
    wechat = pay(user, order_no, "wechat", "native")
    alipay = pay(user, order_no, "alipay", "page")
    with refund_worker(monkeypatch):
        press_pay(gateways.url, wechat["code_url"])
        assert wait_for(lambda: Order.objects.get(order_no=order_no).status == "paid")
        press_pay(gateways.url, alipay["pay_url"])
        assert wait_for(lambda: PaymentAttempt.objects.get(out_trade_no=order_no).status == "refunded"), attempts_of(
            order_no
        )
    assert_paid_once(user, order_no)
    alipay_trade = DevGatewayTrade.objects.get(out_trade_no=order_no)
    assert alipay_trade.refunded_amount == PAY_AMOUNT
    assert alipay_trade.refund_request_nos == [f"{order_no}-cancelled"]
    # The sweeper and a resent notify change nothing more.
    assert services.sweep_overdue_orders().refunded == 0
    assert notify_answer(post_notify(signed_notify_params(alipay_trade))) == "success"
    alipay_trade.refresh_from_db()
    assert alipay_trade.refunded_amount == PAY_AMOUNT
    assert [a[1:4] for a in attempts_of(order_no)] == [("wechat", "native", "paid"), ("alipay", "page", "refunded")]


def test_other_open_attempts_are_closed_once_one_pays(gateways, settings):
    user = UserFactory()
    order_no = order_with_holds(user)
    wechat = pay(user, order_no, "wechat", "native")
    pay(user, order_no, "wechat", "h5")
    alipay = pay(user, order_no, "alipay", "page")
    assert http("GET", alipay["pay_url"]).status_code == 200  # the buyer opened Alipay's cashier too
    press_pay(gateways.url, wechat["code_url"])
    assert wait_for(lambda: Order.objects.get(order_no=order_no).status == "paid")
    # The worker's job, run here: every other attempt is asked about and closed.
    assert services.close_open_attempts(order_no=order_no) == 2
    assert [a[1:4] for a in attempts_of(order_no)] == [
        ("wechat", "native", "paid"),
        ("wechat", "h5", "closed"),
        ("alipay", "page", "closed"),
    ]
    assert WechatPayDevTrade.objects.get(out_trade_no=f"{order_no}_2").trade_state == "CLOSED"
    assert DevGatewayTrade.objects.get(out_trade_no=order_no).status == "TRADE_CLOSED"


def test_expiry_with_an_open_wechat_trade_paid_at_the_gateway_marks_the_order_paid(gateways, settings):
    """The buyer paid, but the notify was lost: the expiry asks WeChat Pay before cancelling."""
    settings.WECHATPAY_NOTIFY_URL = "http://127.0.0.1:9" + WECHAT_NOTIFY_PATH  # nothing listens: lost
    user = UserFactory()
    order_no = order_with_holds(user)
    started = pay(user, order_no, "wechat", "native")
    press_pay(gateways.url, started["code_url"])
    assert Order.objects.get(order_no=order_no).status == "pending"
    reach_deadline(order_no)
    assert services.cancel_expired_order(order_no=order_no) == "paid"
    order = assert_paid_once(user, order_no)
    assert order.payment_attempts.get().provider_trade_no.startswith("42")


def test_expiry_closes_an_unpaid_wechat_trade_and_cancels(gateways, settings):
    user = UserFactory()
    order_no = order_with_holds(user)
    started = pay(user, order_no, "wechat", "native")
    assert services.cancel_expired_order(order_no=order_no) == "not_due"
    reach_deadline(order_no)
    assert services.cancel_expired_order(order_no=order_no) == "cancelled"
    assert attempts_of(order_no)[0][3] == "closed"
    assert WechatPayDevTrade.objects.get(out_trade_no=f"{order_no}_1").trade_state == "CLOSED"
    # The phone can no longer pay it: the page offers no Pay button, and pressing it anyway is refused.
    assert pay_form_action(http("GET", started["code_url"]).text) is None
    trade = WechatPayDevTrade.objects.get(out_trade_no=f"{order_no}_1")
    assert http("POST", f"{gateways.url}/dev/wechatpay/pay/{trade.prepay_id}").status_code == 400


def test_alipay_and_wechat_notifies_for_one_order_at_once_pay_it_once_and_refund_once(gateways, settings, monkeypatch):
    """Both providers report a payment of the same order at the same instant (threads): one pays
    it, the other attempt's money goes back once."""
    point_gateway_at(settings, gateways.url, notify_base_url="http://127.0.0.1:9")  # we post the notifies
    settings.WECHATPAY_NOTIFY_URL = "http://127.0.0.1:9" + WECHAT_NOTIFY_PATH
    outcomes = []
    for n in range(6):
        user = UserFactory()
        order_no = order_with_holds(user, key=f"both-{n}")
        wechat = pay(user, order_no, "wechat", "native")
        alipay = pay(user, order_no, "alipay", "page")
        press_pay(gateways.url, wechat["code_url"])
        press_pay(gateways.url, alipay["pay_url"])
        wechat_notify = signed_notify(WechatPayDevTrade.objects.get(out_trade_no=f"{order_no}_1"))
        alipay_notify = signed_notify_params(DevGatewayTrade.objects.get(out_trade_no=order_no))

        def post_wechat(notify=wechat_notify):
            response = Client().post(
                WECHAT_NOTIFY_PATH, data=notify.body, content_type="application/json", **_meta(notify)
            )
            return response.status_code

        results = run_together([post_wechat, partial(lambda p: notify_answer(post_notify(p)), alipay_notify)])
        assert results == [204, "success"], results
        assert_paid_once(user, order_no)
        statuses = sorted(a[3] for a in attempts_of(order_no))
        assert statuses == ["paid", "refund_required"], statuses
        outcomes.append(next(a[1] for a in attempts_of(order_no) if a[3] == "paid"))
    report = services.sweep_overdue_orders()
    assert report.refunded == 6 and report.failed == 0
    assert PaymentAttempt.objects.filter(status="refunded").count() == 6
    for trade in DevGatewayTrade.objects.all():
        paid_here = PaymentAttempt.objects.get(out_trade_no=trade.out_trade_no).status == "paid"
        assert trade.refunded_amount == (Decimal("0.00") if paid_here else PAY_AMOUNT)
    for trade in WechatPayDevTrade.objects.all():
        paid_here = PaymentAttempt.objects.get(out_trade_no=trade.out_trade_no).status == "paid"
        assert trade.refunded == (0 if paid_here else 7700)
    assert set(outcomes) <= {"wechat", "alipay"}

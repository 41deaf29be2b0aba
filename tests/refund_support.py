"""Shared pieces of the refund tests (test_refund_requests, test_refund_execution, test_refund)."""

from decimal import Decimal

from django.db.models import Q, Sum

from billing.dev_gateway.notify import signed_notify_params
from orders import events
from orders.models import Order, Refund, RefundLine
from tests.conftest import ApiClient
from tests.factories import fill_cart, give_coupon, give_points
from tests.payment_support import (
    DEAD_BASE_URL,
    http,
    key_dir,
    notify_answer,
    open_alipay_attempt,
    pay_form_action,
    place_order,
    post_notify,
    use_dev_gateway,
    wait_for,
)

CHANNEL = {"alipay": "page", "wechat": "native"}


def decide_refunds_here(settings, tmp_path_factory, monkeypatch) -> None:
    """For tests that ask for refunds and decide on them, never sending one: Alipay's dev gateway
    where nothing listens, refunds waiting for staff, nothing handed to the worker."""
    use_dev_gateway(settings, base_url=DEAD_BASE_URL, dev_key_dir=key_dir(tmp_path_factory))
    settings.REFUND_AUTO_APPROVE = False
    monkeypatch.setattr(events, "_refund_approved", [])


def order_with_discounts(user, *prices: str, key: str = "k", amount_off: str = "20.00", points: int = 30) -> dict:
    """A pending order of courses at `prices`, with a coupon (`amount_off`, no threshold) and
    `points` of the user's 1000 points."""
    fill_cart(user, *(prices or ("100.00", "57.99")))
    coupon = give_coupon(user, threshold="0.00", amount_off=amount_off) if amount_off else None
    give_points(user, 1000)
    return place_order(user, key, user_coupon_id=coupon.pk if coupon else None, points=points)


def pay_by_alipay_notify(user, order: dict) -> Order:
    """Pays a pending order through its Alipay attempt and a signed notify (no gateway needed)."""
    open_alipay_attempt(user, order["order_no"])
    params = signed_notify_params({"out_trade_no": order["order_no"], "total_amount": order["pay_amount"]})
    assert notify_answer(post_notify(params)) == "success"
    paid = Order.objects.get(order_no=order["order_no"])
    assert paid.status == "paid"
    return paid


def ask_refund(user, order_no: str, line_ids: list[int], reason: str = ""):
    return ApiClient(user).post(f"/orders/{order_no}/refunds", {"order_line_ids": line_ids, "reason": reason})


def line_ids(order_no: str) -> list[int]:
    return list(Order.objects.get(order_no=order_no).lines.order_by("id").values_list("id", flat=True))


def assert_refunds_within_pay_amount(order_no: str) -> None:
    """The money invariants of refunds: non-rejected refunds add up to at most pay_amount, a line
    is in one live refund at most, and every refund is the sum of its lines."""
    order = Order.objects.get(order_no=order_no)
    held = order.refunds.exclude(status="rejected").aggregate(total=Sum("amount"))["total"] or Decimal("0.00")
    assert held <= order.pay_amount, (held, order.pay_amount)
    live = RefundLine.objects.filter(order_line__order=order, active=True)
    assert live.count() == live.values("order_line").distinct().count()
    assert not live.filter(refund__status="rejected").exists()
    assert not RefundLine.objects.filter(Q(active=False) & ~Q(refund__status="rejected"), refund__order=order).exists()
    for refund in Refund.objects.filter(order=order):
        assert refund.amount == sum((line.amount for line in refund.lines.all()), Decimal("0.00"))


def pay_at_gateway(base_url: str, user, order_no: str, provider: str) -> Order:
    """The buyer pays on the provider's page (the dev gateway on live_server): Alipay's cashier,
    or the phone that scanned WeChat Pay's QR code. The provider's notify pays the order."""
    started = ApiClient(user).post(f"/orders/{order_no}/pay", {"provider": provider, "channel": CHANNEL[provider]})
    assert started.status_code == 200, started.content
    page = http("GET", started.json()["pay_url"] or started.json()["code_url"])
    assert page.status_code == 200, page.text
    assert http("POST", base_url + pay_form_action(page.text)).status_code in (200, 302)
    assert wait_for(lambda: Order.objects.get(order_no=order_no).status == "paid"), "the notify never paid it"
    return Order.objects.get(order_no=order_no)

"""Payment through the dev gateway running on live_server, over real HTTP: the cashier page, the
Pay button (which notifies our endpoint and sends the browser back), the return, refunds of money
paid for a cancelled order (by the `refund_payment` actor on a real Redis broker and worker), and
the expiry that asks Alipay before it cancels."""

from contextlib import nullcontext
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.utils import timezone
from dramatiq.brokers.redis import RedisBroker

from billing.dev_gateway.notify import signed_notify_params, signed_return_params
from billing.models import DevGatewayTrade, PaymentNotification, PointsAccount, PointsEntry, UserCoupon
from core.models import Enrollment, User
from orders import events, services
from orders.models import Order, PaymentAttempt
from tests.conftest import ApiClient, assert_error, assert_ledger_consistent
from tests.factories import CouponFactory, CourseFactory, UserFactory, fill_cart, give_coupon, give_points
from tests.payment_support import (
    DEAD_BASE_URL,
    FRONTEND_URL,
    NOTIFY_PATH,
    RETURN_PATH,
    http,
    key_dir,
    pay_form_action,
    place_order,
    point_gateway_at,
    reach_deadline,
    refund_worker,
    use_dev_gateway,
    wait_for,
)
from workers import actors

# live_server needs committed data.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gateway(settings, live_server, tmp_path_factory):
    """The dev gateway on live_server; our notify and return URLs on it too."""
    use_dev_gateway(settings, base_url=live_server.url, dev_key_dir=key_dir(tmp_path_factory))
    return live_server


def order_with_holds(user, key: str = "k") -> tuple[dict, UserCoupon]:
    """A pending order holding a coupon (20.00 off) and 30 points (3.00 off): pays 77.00."""
    fill_cart(user, "100.00")
    coupon = give_coupon(user, threshold="0.00")
    give_points(user, 100)
    order = place_order(user, key, user_coupon_id=coupon.pk, points=30)
    assert (order["status"], order["pay_amount"]) == ("pending", "77.00")
    return order, coupon


def open_cashier(user, order_no: str) -> str:
    """The buyer asks for the pay URL and opens it: the trade now exists at the gateway.
    Returns the Pay form's action."""
    response = ApiClient(user).post(f"/orders/{order_no}/pay")
    assert response.status_code == 200, response.content
    page = http("GET", response.json()["pay_url"])
    assert page.status_code == 200, page.text
    action = pay_form_action(page.text)
    assert action == f"/dev/alipay/pay/{order_no}", page.text
    assert DevGatewayTrade.objects.get(out_trade_no=order_no).status == "WAIT_BUYER_PAY"
    return action


def click_pay(base_url: str, action: str) -> requests.Response:
    response = http("POST", base_url + action)
    assert response.status_code == 302, response.text
    return response


def attempt_status(out_trade_no: str) -> str:
    return PaymentAttempt.objects.get(out_trade_no=out_trade_no).status


def balance(user) -> int:
    return PointsAccount.objects.get(user=user).balance


def assert_paid(user, order_no: str, coupon: UserCoupon, trade: DevGatewayTrade) -> None:
    order = Order.objects.get(order_no=order_no)
    assert (order.status, order.cancelled_at) == ("paid", None)
    assert order.payment_attempts.get(status="paid").provider_trade_no == trade.trade_no
    assert order.paid_at is not None
    assert set(Enrollment.objects.filter(user=user).values_list("order_id", flat=True)) == {order.pk}
    coupon.refresh_from_db()
    assert coupon.status == "used"
    assert PointsEntry.objects.filter(order=order, reason="order_earned").count() == 1
    assert balance(user) == 100 - 30 + 77
    assert_ledger_consistent()


def assert_cancelled_with_holds_back(user, order_no: str, coupon: UserCoupon, reason: str) -> Order:
    order = Order.objects.get(order_no=order_no)
    assert (order.status, order.cancel_reason, order.paid_at) == ("cancelled", reason, None)
    coupon.refresh_from_db()
    assert (coupon.status, coupon.order_id) == ("unused", None)
    assert balance(user) == 100
    assert not Enrollment.objects.filter(user=user).exists()
    assert_ledger_consistent()
    return order


# The whole purchase ----------------------------------------------------------------------------


class Shopper:
    """The shop's web front end speaking to our JSON API over HTTP, as one logged-in user."""

    def __init__(self, base_url: str) -> None:
        self.api = base_url + "/api/v1"
        self.headers: dict[str, str] = {}

    def get(self, path: str) -> requests.Response:
        return http("GET", self.api + path, headers=self.headers)

    def post(self, path: str, body: dict | None = None, headers: dict[str, str] | None = None) -> requests.Response:
        return http("POST", self.api + path, json=body, headers={**self.headers, **(headers or {})})


def test_buy_a_course_end_to_end_through_the_dev_gateway(gateway):
    base = gateway.url
    course = CourseFactory(name="Django 实战 + DRF a=b&c", price=Decimal("199.00"))
    coupon = CouponFactory(threshold="100.00", amount_off="20.00")
    shop = Shopper(base)

    credentials = {"username": "buyer", "password": "s3cret-pass-9"}
    registered = shop.post("/auth/register", credentials)
    assert registered.status_code == 201, registered.text
    token = shop.post("/auth/token", credentials)
    assert token.status_code == 200, token.text
    shop.headers["Authorization"] = f"Bearer {token.json()['access']}"
    buyer = User.objects.get(username="buyer")
    give_points(buyer, 500)

    assert shop.post("/cart/items", {"course_id": course.pk}).status_code == 201
    claimed = shop.post(f"/coupons/{coupon.pk}/claim")
    assert claimed.status_code == 201, claimed.text
    body = {"pay_type": "alipay", "user_coupon_id": claimed.json()["id"], "points": 90}
    placed = shop.post("/orders", body, headers={"Idempotency-Key": "e2e-1"})
    assert placed.status_code == 201, placed.text
    order = placed.json()
    order_no = order["order_no"]
    assert (order["status"], order["pay_amount"]) == ("pending", "170.00")  # 199 - 20 - 9.00
    replay = shop.post("/orders", body, headers={"Idempotency-Key": "e2e-1"})
    assert (replay.status_code, replay.headers.get("Idempotent-Replayed")) == (201, "true")
    assert replay.json()["order_no"] == order_no

    pay = shop.post(f"/orders/{order_no}/pay")
    assert pay.status_code == 200, pay.text
    pay_url = pay.json()["pay_url"]
    assert pay_url.startswith(base + "/dev/alipay/gateway.do?")

    cashier = http("GET", pay_url)
    assert cashier.status_code == 200
    assert '<span id="amount">170.00</span>' in cashier.text
    assert order_no in cashier.text
    assert "Django 实战 + DRF a b c" in cashier.text  # Alipay forbids `=` and `&` in subject
    action = pay_form_action(cashier.text)
    assert action == f"/dev/alipay/pay/{order_no}"

    paid = http("POST", base + action)
    assert paid.status_code == 302
    return_url = paid.headers["Location"]
    assert return_url.startswith(base + RETURN_PATH + "?")
    # The gateway's notify reached our endpoint over HTTP before it sent the buyer back.
    notification = PaymentNotification.objects.get()
    assert (notification.verdict, notification.out_trade_no) == ("paid", order_no)
    assert notification.raw["subject"] == "Django 实战 + DRF a b c"

    back = http("GET", return_url)
    assert back.status_code == 302
    assert back.headers["Location"] == f"{FRONTEND_URL}/orders/{order_no}?payment=paid"

    shown = shop.get(f"/orders/{order_no}").json()
    assert shown["status"] == "paid" and shown["paid_at"] and shown["cancelled_at"] is None
    trade = DevGatewayTrade.objects.get(out_trade_no=order_no)
    assert (trade.status, trade.total_amount) == ("TRADE_SUCCESS", Decimal("170.00"))
    assert Order.objects.get(order_no=order_no).payment_attempts.get().provider_trade_no == trade.trade_no
    assert Enrollment.objects.filter(user=buyer, course=course).exists()
    again = shop.post("/cart/items", {"course_id": course.pk})
    assert (again.status_code, again.json()["code"]) == (409, "already_purchased")
    assert shop.get("/me/points").json()["balance"] == 500 - 90 + 170
    assert [c["status"] for c in shop.get("/me/coupons").json()["items"]] == ["used"]
    assert shop.post(f"/orders/{order_no}/pay").json()["code"] == "order_not_payable"
    assert_ledger_consistent()


# Money that arrives for a cancelled order -------------------------------------------------------


@pytest.mark.parametrize("refunder", ["worker", "no-worker", "broker-down"])
def test_payment_for_a_cancelled_order_is_refunded_at_the_gateway(gateway, settings, monkeypatch, refunder):
    """The user cancels while Alipay is unreachable (cancelled anyway), then pays in the cashier
    tab still open: the notify finds a cancelled order, and the money goes back.

    worker: the `refund_payment` actor runs on a real Redis broker and worker (workers.apps
    subscribes it to refund_needed). no-worker: nothing is subscribed; the sweeper refunds.
    broker-down: the refund message cannot be enqueued; the sweeper refunds instead."""
    user = UserFactory()
    order, coupon = order_with_holds(user)
    order_no = order["order_no"]
    action = open_cashier(user, order_no)

    point_gateway_at(settings, DEAD_BASE_URL)
    assert ApiClient(user).post(f"/orders/{order_no}/cancel").status_code == 200
    point_gateway_at(settings, gateway.url)
    assert_cancelled_with_holds_back(user, order_no, coupon, "user")
    assert DevGatewayTrade.objects.get(out_trade_no=order_no).status == "WAIT_BUYER_PAY"

    if refunder == "no-worker":
        monkeypatch.setattr(events, "_refund_needed", [])
    if refunder == "broker-down":
        dead = RedisBroker(url="redis://127.0.0.1:1/0", socket_connect_timeout=1)
        monkeypatch.setattr(actors.refund_payment, "broker", dead)
    with refund_worker(monkeypatch) if refunder == "worker" else nullcontext():
        click_pay(gateway.url, action)
        notification = PaymentNotification.objects.get()
        assert (notification.verdict, notification.out_trade_no) == ("refund_required", order_no)
        if refunder != "worker":
            # No refund message was sent; the sweeper finds the money still owed.
            assert attempt_status(order_no) == "refund_required"
            assert services.sweep_overdue_orders().refunded == 1
        assert wait_for(lambda: attempt_status(order_no) == "refunded"), "never refunded"

    trade = DevGatewayTrade.objects.get(out_trade_no=order_no)
    assert trade.refunded_amount == Decimal("77.00")
    assert trade.refund_request_nos == [f"{order_no}-cancelled"]
    assert trade.status == "TRADE_CLOSED"  # refunded in full
    stored = assert_cancelled_with_holds_back(user, order_no, coupon, "user")
    attempt = stored.payment_attempts.get()
    assert (attempt.provider_trade_no, attempt.status) == (trade.trade_no, "refunded")
    assert attempt.refunded_at is not None and stored.refunded_at is None
    assert not PointsEntry.objects.filter(reason="order_earned").exists()

    # Alipay resends the payment's notify: already refunded, so nothing more happens.
    resent = signed_notify_params(trade, trade_status="TRADE_SUCCESS")
    answer = http("POST", gateway.url + NOTIFY_PATH, data=resent)
    assert (answer.status_code, answer.text) == (200, "success")
    assert PaymentNotification.objects.order_by("-id").first().verdict == "duplicate"
    assert services.sweep_overdue_orders().refunded == 0
    trade.refresh_from_db()
    assert trade.refunded_amount == Decimal("77.00")

    back = http("GET", gateway.url + RETURN_PATH, params=signed_return_params(trade))
    assert back.headers["Location"] == f"{FRONTEND_URL}/orders/{order_no}?payment=cancelled"


# The return ------------------------------------------------------------------------------------


def test_return_settles_a_payment_whose_notify_was_lost(gateway, settings):
    point_gateway_at(settings, gateway.url, notify_base_url=DEAD_BASE_URL)  # every notify is lost
    user = UserFactory()
    order, coupon = order_with_holds(user)
    order_no = order["order_no"]
    paid = click_pay(gateway.url, open_cashier(user, order_no))
    assert Order.objects.get(order_no=order_no).status == "pending"
    assert not PaymentNotification.objects.exists()

    back = http("GET", paid.headers["Location"])

    assert back.status_code == 302
    assert back.headers["Location"] == f"{FRONTEND_URL}/orders/{order_no}?payment=paid"
    trade = DevGatewayTrade.objects.get(out_trade_no=order_no)
    assert_paid(user, order_no, coupon, trade)

    # The lost notify finally arrives: a duplicate, nothing earned twice.
    late = http("POST", gateway.url + NOTIFY_PATH, data=signed_notify_params(trade))
    assert (late.status_code, late.text) == (200, "success")
    assert PaymentNotification.objects.get().verdict == "duplicate"
    # The buyer reloads the return page: still paid, nothing more.
    again = http("GET", paid.headers["Location"])
    assert again.headers["Location"] == f"{FRONTEND_URL}/orders/{order_no}?payment=paid"
    assert_paid(user, order_no, coupon, trade)


def test_return_for_an_unpaid_trade_leaves_the_order_pending(gateway):
    user = UserFactory()
    order, coupon = order_with_holds(user)
    order_no = order["order_no"]
    open_cashier(user, order_no)
    trade = DevGatewayTrade.objects.get(out_trade_no=order_no)

    # A validly signed return although nothing was paid (the trade query says WAIT_BUYER_PAY).
    back = http("GET", gateway.url + RETURN_PATH, params=signed_return_params(trade))
    assert back.status_code == 302
    assert back.headers["Location"] == f"{FRONTEND_URL}/orders/{order_no}?payment=pending"
    stored = Order.objects.get(order_no=order_no)
    assert (stored.status, stored.paid_at) == ("pending", None)
    assert [(a.status, a.provider_trade_no) for a in stored.payment_attempts.all()] == [("open", "")]
    assert DevGatewayTrade.objects.get(out_trade_no=order_no).status == "WAIT_BUYER_PAY"
    coupon.refresh_from_db()
    assert coupon.status == "locked"

    # The cashier's Cancel link goes back to the return URL with no parameters at all.
    cashier = http("GET", ApiClient(user).post(f"/orders/{order_no}/pay").json()["pay_url"])
    assert f'href="{gateway.url}{RETURN_PATH}"' in cashier.text
    cancel = http("GET", gateway.url + RETURN_PATH)
    assert cancel.headers["Location"] == f"{FRONTEND_URL}/orders?payment=invalid_signature"

    # A signed return naming an order we never opened a trade for: no attempt of ours has that
    # number, so it is unknown (Alipay only returns from URLs we signed); the order stays pending.
    other = UserFactory()
    never_opened, _ = order_with_holds(other)
    ghost = DevGatewayTrade(out_trade_no=never_opened["order_no"], trade_no="", total_amount=Decimal("77.00"))
    back = http("GET", gateway.url + RETURN_PATH, params=signed_return_params(ghost))
    assert back.headers["Location"] == f"{FRONTEND_URL}/orders?payment=unknown_order"
    assert Order.objects.get(order_no=never_opened["order_no"]).status == "pending"
    assert not PaymentNotification.objects.exists()


# Expiry and cancellation with an Alipay trade ---------------------------------------------------


def test_expiry_at_the_deadline_closes_the_opened_trade_and_cancels(gateway):
    user = UserFactory()
    order, coupon = order_with_holds(user)
    order_no = order["order_no"]
    action = open_cashier(user, order_no)
    assert services.cancel_expired_order(order_no=order_no) == "not_due"

    reach_deadline(order_no)
    assert services.cancel_expired_order(order_no=order_no) == "cancelled"

    assert DevGatewayTrade.objects.get(out_trade_no=order_no).status == "TRADE_CLOSED"
    stored = assert_cancelled_with_holds_back(user, order_no, coupon, "expired")
    assert stored.cancelled_at >= stored.expires_at
    assert [(a.status, a.provider_trade_no) for a in stored.payment_attempts.all()] == [("closed", "")]
    refused = http("POST", gateway.url + action)
    assert refused.status_code == 400
    assert not PaymentNotification.objects.exists()
    assert services.cancel_expired_order(order_no=order_no) == "skipped"


def test_expiry_closes_a_trade_still_open_at_the_gateway(gateway):
    """The order's deadline passed while Alipay still waits for the buyer (clocks differ, or a
    time_expire was not honoured): expiry must close the trade itself before cancelling."""
    user = UserFactory()
    order, coupon = order_with_holds(user)
    order_no = order["order_no"]
    action = open_cashier(user, order_no)
    Order.objects.filter(order_no=order_no).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert services.cancel_expired_order(order_no=order_no) == "cancelled"

    trade = DevGatewayTrade.objects.get(out_trade_no=order_no)
    assert trade.status == "TRADE_CLOSED" and trade.time_expire > timezone.now()  # closed by us
    assert_cancelled_with_holds_back(user, order_no, coupon, "expired")
    assert http("POST", gateway.url + action).status_code == 400
    assert not PaymentNotification.objects.exists()


def test_user_cancel_closes_the_opened_trade(gateway):
    user = UserFactory()
    order, coupon = order_with_holds(user)
    order_no = order["order_no"]
    action = open_cashier(user, order_no)

    assert ApiClient(user).post(f"/orders/{order_no}/cancel").status_code == 200

    assert DevGatewayTrade.objects.get(out_trade_no=order_no).status == "TRADE_CLOSED"
    assert_cancelled_with_holds_back(user, order_no, coupon, "user")
    assert http("POST", gateway.url + action).status_code == 400


def test_expiry_settles_an_order_paid_at_the_gateway_whose_notify_was_lost(gateway, settings):
    point_gateway_at(settings, gateway.url, notify_base_url=DEAD_BASE_URL)  # every notify is lost
    user = UserFactory()
    order, coupon = order_with_holds(user)
    order_no = order["order_no"]
    click_pay(gateway.url, open_cashier(user, order_no))
    assert Order.objects.get(order_no=order_no).status == "pending"
    Order.objects.filter(order_no=order_no).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert services.cancel_expired_order(order_no=order_no) == "paid"

    trade = DevGatewayTrade.objects.get(out_trade_no=order_no)
    assert (trade.status, trade.refunded_amount) == ("TRADE_SUCCESS", Decimal("0.00"))
    assert_paid(user, order_no, coupon, trade)
    assert services.cancel_expired_order(order_no=order_no) == "skipped"
    assert services.sweep_overdue_orders().outcomes == {}


def test_user_cancel_of_an_order_paid_at_the_gateway_settles_it_instead(gateway, settings):
    point_gateway_at(settings, gateway.url, notify_base_url=DEAD_BASE_URL)  # every notify is lost
    user = UserFactory()
    order, coupon = order_with_holds(user)
    order_no = order["order_no"]
    click_pay(gateway.url, open_cashier(user, order_no))

    body = assert_error(ApiClient(user).post(f"/orders/{order_no}/cancel"), 409, "order_not_cancellable")

    assert body["details"] == {"status": "paid"}
    assert_paid(user, order_no, coupon, DevGatewayTrade.objects.get(out_trade_no=order_no))

"""The operator's refund (the admin's "approve a refund of every line") of a paid order, sent
through the Alipay dev gateway over real HTTP: paid -> refunded."""

from decimal import Decimal

import pytest
from django.test import Client

from billing.models import DevGatewayTrade, PointsAccount, PointsEntry
from core.models import Enrollment, User
from orders import events, services
from orders.models import Order, Refund
from tests.conftest import ApiClient, assert_ledger_consistent
from tests.factories import UserFactory, fill_cart, give_points
from tests.payment_support import key_dir, use_dev_gateway
from tests.refund_support import pay_at_gateway

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gateway(live_server, settings, tmp_path_factory, monkeypatch):
    use_dev_gateway(settings, base_url=live_server.url, dev_key_dir=key_dir(tmp_path_factory))
    sent: list[str] = []
    monkeypatch.setattr(events, "_refund_approved", [sent.append])  # the worker's queue, run by hand
    yield live_server.url, sent
    assert_ledger_consistent()


def test_operator_refund_returns_money_revokes_enrolments_and_reverses_points(gateway):
    base_url, sent = gateway
    user = UserFactory()
    (item,) = fill_cart(user, "100.00")
    give_points(user, 100)
    order_no = ApiClient(user).post("/orders", {"points": 50}, headers={"Idempotency-Key": "k"}).json()["order_no"]
    pay_at_gateway(base_url, user, order_no, "alipay")
    assert Enrollment.objects.filter(user=user, course=item.course).exists()
    assert PointsAccount.objects.get(user=user).balance == 100 - 50 + 95
    admin = Client()
    admin.force_login(User.objects.create_superuser("operator", password="operator-pass-123"))
    order = Order.objects.get(order_no=order_no)

    response = admin.post("/admin/orders/order/", {"action": "refund_every_line", "_selected_action": [order.pk]})

    assert response.status_code == 302
    refund = Refund.objects.get()
    assert (refund.status, refund.amount, sent) == ("approved", Decimal("95.00"), [refund.request_no])
    assert services.send_refund(request_no=refund.request_no) == "succeeded"  # what the worker runs
    order.refresh_from_db()
    assert (order.status, order.refunded_at is not None) == ("refunded", True)
    trade = DevGatewayTrade.objects.get(out_trade_no=order_no)
    assert (trade.refunded_amount, trade.refund_request_nos) == (Decimal("95.00"), [refund.request_no])
    assert not Enrollment.objects.filter(user=user).exists()
    assert PointsAccount.objects.get(user=user).balance == 100  # spent 50 back, earned 95 taken back
    refund.refresh_from_db()
    assert (refund.points_returned, refund.points_taken_back, refund.points_not_taken_back) == (50, 95, 0)
    assert [e.reason for e in PointsEntry.objects.filter(order=order).order_by("id")][-2:] == [
        "refund_return",
        "earned_reversal",
    ]
    # Sent again (a duplicate message): nothing more moves.
    assert services.send_refund(request_no=refund.request_no) == "succeeded"
    assert DevGatewayTrade.objects.get(out_trade_no=order_no).refunded_amount == Decimal("95.00")
    # Nothing is left to refund.
    admin.post("/admin/orders/order/", {"action": "refund_every_line", "_selected_action": [order.pk]})
    assert Refund.objects.count() == 1


def test_earned_points_already_spent_are_taken_back_as_far_as_the_balance_allows(gateway):
    base_url, _ = gateway
    user = UserFactory()
    fill_cart(user, "100.00")
    order_no = ApiClient(user).post("/orders", {}, headers={"Idempotency-Key": "k"}).json()["order_no"]
    pay_at_gateway(base_url, user, order_no, "alipay")
    # The buyer spends 60 of the 100 points the order earned on another order.
    fill_cart(user, "10.00")
    assert ApiClient(user).post("/orders", {"points": 60}, headers={"Idempotency-Key": "k2"}).status_code == 201
    operator = User.objects.create_superuser("operator", password="operator-pass-123")

    refund = services.refund_every_line(order_no=order_no, operator=operator)
    services.send_refund(request_no=refund.request_no)

    refund.refresh_from_db()
    assert (refund.status, refund.points_taken_back, refund.points_not_taken_back) == ("succeeded", 40, 60)
    assert PointsAccount.objects.get(user=user).balance == 0

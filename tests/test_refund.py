"""Operator refund of a paid order (paid -> refunded) through the dev gateway over real HTTP."""

import pytest
import requests

from billing.models import DevGatewayTrade, PointsAccount
from core.errors import DomainError
from core.models import Enrollment
from orders import services
from orders.models import Order
from tests.conftest import ApiClient, assert_ledger_consistent
from tests.factories import UserFactory, fill_cart, give_points

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gateway(live_server, settings, tmp_path):
    settings.ALIPAY_DEV_GATEWAY = True
    settings.ALIPAY_DEV_KEY_DIR = tmp_path
    settings.PUBLIC_BASE_URL = settings.DEV_GATEWAY_BASE_URL = live_server.url
    settings.ALIPAY_NOTIFY_URL = live_server.url + "/api/v1/payments/alipay/notify"
    settings.ALIPAY_RETURN_URL = live_server.url + "/api/v1/payments/alipay/return"
    return live_server.url


def pay_at_gateway(base_url: str, client: ApiClient, order_no: str) -> None:
    pay_url = client.post(f"/orders/{order_no}/pay").json()["pay_url"]
    assert requests.get(pay_url, timeout=10).status_code == 200
    paid = requests.post(f"{base_url}/dev/alipay/pay/{order_no}", allow_redirects=False, timeout=30)
    assert paid.status_code == 302


def test_refund_returns_money_revokes_enrolments_and_reverses_points(gateway):
    user = UserFactory()
    (item,) = fill_cart(user, "100.00")
    give_points(user, 100)
    client = ApiClient(user)
    order_no = client.post("/orders", {"points": 50}, headers={"Idempotency-Key": "k"}).json()["order_no"]
    pay_at_gateway(gateway, client, order_no)
    assert Order.objects.get(order_no=order_no).status == "paid"
    assert Enrollment.objects.filter(user=user, course=item.course).exists()
    assert PointsAccount.objects.get(user=user).balance == 100 - 50 + 95

    order = services.refund_paid_order(order_no=order_no)

    assert (order.status, order.refunded_at is not None) == ("refunded", True)
    assert DevGatewayTrade.objects.get(out_trade_no=order_no).refunded_amount == order.pay_amount
    assert not Enrollment.objects.filter(user=user).exists()
    assert PointsAccount.objects.get(user=user).balance == 100  # spent 50 back, earned 95 taken back
    assert_ledger_consistent()
    with pytest.raises(DomainError) as error:
        services.refund_paid_order(order_no=order_no)
    assert error.value.code == "order_not_refundable"
    assert DevGatewayTrade.objects.get(out_trade_no=order_no).refunded_amount == order.pay_amount


def test_refund_of_a_pending_order_is_refused(gateway):
    user = UserFactory()
    fill_cart(user, "10.00")
    order_no = ApiClient(user).post("/orders", {}, headers={"Idempotency-Key": "k"}).json()["order_no"]
    with pytest.raises(DomainError):
        services.refund_paid_order(order_no=order_no)
    assert Order.objects.get(order_no=order_no).status == "pending"

"""Public-key certificate mode end to end: the dev gateway with its own CA and certificates
(ALIPAY_DEV_GATEWAY_CERT_MODE) on live_server, the app's client built from the three certificate
files it wrote, over real HTTP: pay an order (POST /orders/{no}/pay, cashier, notify, paid),
query, close and refund, every request carrying the SNs and every answer naming the certificate."""

from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from billing.alipay import client as client_module
from billing.alipay.certs import load_certificate_mode
from billing.alipay.client import get_alipay_client
from billing.alipay.errors import AlipaySignatureError
from billing.dev_gateway import certs as dev_certs
from billing.dev_gateway.notify import signed_notify_params
from billing.models import DevGatewayTrade, PaymentNotification
from orders import services
from orders.models import Order
from tests.conftest import ApiClient, assert_ledger_consistent
from tests.factories import UserFactory, fill_cart
from tests.payment_support import (
    FRONTEND_URL,
    NOTIFY_PATH,
    http,
    key_dir,
    open_alipay_attempt,
    order_snapshot,
    pay_form_action,
    place_order,
    use_dev_gateway,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gateway(settings, live_server, tmp_path_factory):
    use_dev_gateway(settings, base_url=live_server.url, dev_key_dir=key_dir(tmp_path_factory))
    settings.ALIPAY_DEV_GATEWAY_CERT_MODE = True
    return live_server


@pytest.fixture
def calls(monkeypatch) -> list[tuple[dict[str, str], str]]:
    """Every server-to-server call the app makes: its query parameters and the answer's text."""
    made: list[tuple[dict[str, str], str]] = []
    real_post = client_module.requests.post

    def recording_post(url, *args, **kwargs):
        response = real_post(url, *args, **kwargs)
        # requests.post is the dev gateway's too (its notifies): keep the calls to the gateway only.
        if urlsplit(url).path.endswith("/gateway.do"):
            made.append(({k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}, response.text))
        return response

    monkeypatch.setattr(client_module.requests, "post", recording_post)
    return made


def expected_sns():
    return load_certificate_mode(**dev_certs.certificate_files()).sns


def test_pay_query_and_refund_an_order_in_certificate_mode(gateway, calls):
    sns = expected_sns()
    client = get_alipay_client()
    assert client.cert_sns == sns and client.alipay_public_key.n == dev_certs.gateway_public_key().n
    user = UserFactory()
    fill_cart(user, "88.00")
    order_no = place_order(user)["order_no"]

    pay_url = open_alipay_attempt(user, order_no)["pay_url"]
    signed = {k: v[0] for k, v in parse_qs(urlsplit(pay_url).query).items()}
    assert (signed["app_cert_sn"], signed["alipay_root_cert_sn"]) == (sns.app_cert_sn, sns.alipay_root_cert_sn)
    cashier = http("GET", pay_url)
    assert cashier.status_code == 200, cashier.text
    paid = http("POST", gateway.url + pay_form_action(cashier.text))
    assert paid.status_code == 302
    returned = {k: v[0] for k, v in parse_qs(urlsplit(paid.headers["Location"]).query).items()}
    assert returned["alipay_cert_sn"] == sns.alipay_cert_sn

    # The notify named the gateway's certificate, was verified with its key, and paid the order.
    notification = PaymentNotification.objects.get()
    assert (notification.verdict, notification.out_trade_no) == ("paid", order_no)
    assert notification.raw["alipay_cert_sn"] == sns.alipay_cert_sn
    assert Order.objects.get(order_no=order_no).status == "paid"
    assert http("GET", paid.headers["Location"]).headers["Location"] == f"{FRONTEND_URL}/orders/{order_no}?payment=paid"

    query = client.query_trade(out_trade_no=order_no)
    assert (query.trade_status, query.total_amount) == ("TRADE_SUCCESS", Decimal("88.00"))
    # The operator refunds every line; the refund goes back through Alipay in certificate mode.
    refund = services.refund_every_line(order_no=order_no, operator=UserFactory(is_staff=True))
    assert services.send_refund(request_no=refund.request_no) == "succeeded"
    assert Order.objects.get(order_no=order_no).status == "refunded"
    trade = DevGatewayTrade.objects.get(out_trade_no=order_no)
    assert (trade.refunded_amount, trade.status) == (Decimal("88.00"), "TRADE_CLOSED")

    assert {params["method"] for params, _ in calls} >= {"alipay.trade.query", "alipay.trade.refund"}
    for params, answer in calls:
        assert (params["app_cert_sn"], params["alipay_root_cert_sn"]) == (sns.app_cert_sn, sns.alipay_root_cert_sn)
        assert f'"alipay_cert_sn":"{sns.alipay_cert_sn}"' in answer
    assert_ledger_consistent()


def test_cancel_queries_and_closes_the_trade_in_certificate_mode(gateway, calls):
    user = UserFactory()
    fill_cart(user, "12.30")
    order_no = place_order(user)["order_no"]
    cashier = http("GET", open_alipay_attempt(user, order_no)["pay_url"])
    assert cashier.status_code == 200, cashier.text

    assert ApiClient(user).post(f"/orders/{order_no}/cancel").status_code == 200

    assert DevGatewayTrade.objects.get(out_trade_no=order_no).status == "TRADE_CLOSED"
    assert Order.objects.get(order_no=order_no).status == "cancelled"
    assert [params["method"] for params, _ in calls] == ["alipay.trade.query", "alipay.trade.close"]
    assert http("POST", gateway.url + pay_form_action(cashier.text)).status_code == 400


def test_an_answer_or_notify_naming_another_certificate_is_refused(gateway, monkeypatch):
    sns = expected_sns()
    user = UserFactory()
    fill_cart(user, "20.00")
    order_no = place_order(user)["order_no"]
    assert http("GET", open_alipay_attempt(user, order_no)["pay_url"]).status_code == 200
    before = order_snapshot(order_no)

    # Validly signed by the gateway's key, but under another certificate SN (Alipay re-issued its
    # certificate): refused, the order untouched.
    trade = DevGatewayTrade.objects.get(out_trade_no=order_no)
    stale = signed_notify_params({"out_trade_no": order_no, "total_amount": "20.00"}, alipay_cert_sn="0" * 32)
    answer = http("POST", gateway.url + NOTIFY_PATH, data=stale)
    assert answer.text == "failure"
    assert order_snapshot(order_no) == before

    real_post = client_module.requests.post

    def reissued(url, *args, **kwargs):
        response = real_post(url, *args, **kwargs)
        response._content = response.content.replace(sns.alipay_cert_sn.encode(), b"1" * 32)
        return response

    monkeypatch.setattr(client_module.requests, "post", reissued)
    with pytest.raises(AlipaySignatureError, match="download Alipay's new public-key certificate"):
        get_alipay_client().query_trade(out_trade_no=trade.out_trade_no)

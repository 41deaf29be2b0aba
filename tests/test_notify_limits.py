"""What the public notify endpoints keep of what anyone can send them: a notify that does not
verify is stored as a short summary, never whole; a body over 16 KB is refused before it is
parsed; a genuine notify with an empty field verifies (Alipay signs empty values too)."""

from urllib.parse import urlencode

import pytest
from django.test import Client

from billing.alipay.signing import sign_message
from billing.dev_gateway.keys import gateway_private_key
from billing.dev_gateway.notify import notify_fields
from billing.models import PaymentNotification
from orders.models import Order
from tests.factories import fill_cart
from tests.payment_support import (
    DEAD_BASE_URL,
    NOTIFY_PATH,
    key_dir,
    notify_answer,
    open_alipay_attempt,
    place_order,
    post_notify,
    use_dev_gateway,
)

pytestmark = pytest.mark.django_db
WECHAT_NOTIFY_PATH = "/api/v1/payments/wechat/notify"
LIMIT = 16 * 1024


@pytest.fixture(autouse=True)
def alipay_settings(settings, tmp_path_factory):
    use_dev_gateway(settings, base_url=DEAD_BASE_URL, dev_key_dir=key_dir(tmp_path_factory))


def unsigned_notify(size: int) -> bytes:
    fields = {"notify_id": "n-123", "out_trade_no": "20990101000000000000001234", "sign": "forged"}
    body = urlencode(fields)
    return (body + "&padding=" + "x" * (size - len(body) - 9)).encode()


def test_a_notify_that_does_not_verify_is_kept_as_a_short_summary():
    body = unsigned_notify(LIMIT)
    assert len(body) == LIMIT
    response = Client().post(
        NOTIFY_PATH, data=body, content_type="application/x-www-form-urlencoded", REMOTE_ADDR="198.51.100.4"
    )
    assert notify_answer(response) == "failure"
    notification = PaymentNotification.objects.get()
    assert (notification.provider, notification.verdict, notification.reason) == ("alipay", "rejected", "bad signature")
    assert (notification.notify_id, notification.out_trade_no) == ("n-123", "20990101000000000000001234")
    assert set(notification.raw) == {"notify_id", "out_trade_no", "body", "remote_addr"}
    assert notification.raw["body"] == body[:200].decode()
    assert notification.raw["remote_addr"] == "198.51.100.4"


def test_the_summary_names_the_client_behind_trusted_proxies(settings):
    settings.NUM_PROXIES = 1
    Client().post(
        NOTIFY_PATH,
        data=unsigned_notify(500),
        content_type="application/x-www-form-urlencoded",
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )
    assert PaymentNotification.objects.get().raw["remote_addr"] == "203.0.113.9"


@pytest.mark.parametrize("path", [NOTIFY_PATH, WECHAT_NOTIFY_PATH])
def test_a_notify_over_16_kb_is_refused_before_parsing(path):
    response = Client().post(path, data=unsigned_notify(LIMIT + 1), content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert not PaymentNotification.objects.exists()


def test_a_wechat_notify_summary_names_the_client_behind_trusted_proxies(settings):
    settings.NUM_PROXIES = 1
    response = Client().post(
        WECHAT_NOTIFY_PATH,
        data=b'{"id": "x"}',
        content_type="application/json",
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )
    assert response.status_code == 400
    assert PaymentNotification.objects.get().raw["remote_addr"] == "203.0.113.9"


def alipay_signature(params: dict[str, str]) -> str:
    """Alipay's rule for a notify, written out here rather than taken from billing.alipay: every
    parameter but sign and sign_type, empty ones included, sorted, k=v joined with &."""
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in ("sign", "sign_type"))
    return sign_message(message, gateway_private_key())


def test_a_genuine_notify_with_an_empty_field_pays(user):
    fill_cart(user, "30.00")
    order = place_order(user)
    open_alipay_attempt(user, order["order_no"])
    params = notify_fields({"out_trade_no": order["order_no"], "total_amount": order["pay_amount"]})
    params["body"] = ""  # Alipay sends the fields the order had, empty or not
    params["passback_params"] = ""
    params["sign"] = alipay_signature(params)
    assert notify_answer(post_notify(params)) == "success"
    assert Order.objects.get(order_no=order["order_no"]).status == "paid"

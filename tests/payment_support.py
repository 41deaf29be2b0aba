"""Shared pieces of the payment tests (test_payments, test_payment_races, test_payment_e2e).

Nothing here mocks Alipay: notifies are signed with the dev gateway's own "Alipay" key (or with a
foreign key, to be refused), and the tests that need Alipay to answer run the dev gateway on
pytest-django's live_server over real HTTP.
"""

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from django.conf import settings
from django.test import Client
from django.utils import timezone
from django_dramatiq.middleware import DbConnectionsMiddleware
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker

from billing.alipay.keys import RsaKey, load_private_key
from billing.models import DevGatewayTrade, PaymentNotification, WechatPayDevTrade
from orders.models import Order, PaymentAttempt
from tests.conftest import ApiClient, wait_for  # noqa: F401  (re-exported for the payment tests)
from tests.test_alipay_signing import fixture_text
from workers import actors

APP_ID = "2021000000000000"
FOREIGN_APP_ID = "2021009999999999"
FRONTEND_URL = "https://shop.example.test"
# Nothing listens on the discard port: a gateway there is "Alipay unreachable", at once.
DEAD_BASE_URL = "http://127.0.0.1:9"
NOTIFY_PATH = "/api/v1/payments/alipay/notify"
RETURN_PATH = "/api/v1/payments/alipay/return"


def key_dir(tmp_path_factory) -> Path:
    """One directory of dev gateway keys for the whole session (generated once, on first use)."""
    path = tmp_path_factory.getbasetemp() / "payments-alipay-dev-keys"
    path.mkdir(exist_ok=True)
    return path


def use_dev_gateway(settings_fixture, *, base_url: str, dev_key_dir: Path) -> None:
    """Point get_alipay_client() (gateway, notify_url, return_url) at `base_url`.

    ALIPAY_NOTIFY_URL / ALIPAY_RETURN_URL / DEV_GATEWAY_BASE_URL are derived from PUBLIC_BASE_URL
    when settings load, so they are set here too; every change of them clears the cached client.
    """
    settings_fixture.ALIPAY_DEV_GATEWAY = True
    settings_fixture.ALIPAY_DEV_KEY_DIR = dev_key_dir
    settings_fixture.ALIPAY_APP_ID = APP_ID
    settings_fixture.ALIPAY_SELLER_ID = ""
    settings_fixture.FRONTEND_URL = FRONTEND_URL
    point_gateway_at(settings_fixture, base_url)


WECHAT_NOTIFY_PATH = "/api/v1/payments/wechat/notify"


def use_both_dev_gateways(settings_fixture, *, base_url: str, tmp_path_factory) -> None:
    """The Alipay and WeChat Pay dev gateways at `base_url` (a live_server), both providers'
    notifies pointing back at it, each with its keys made once for the session."""
    use_dev_gateway(settings_fixture, base_url=base_url, dev_key_dir=key_dir(tmp_path_factory))
    settings_fixture.WECHATPAY_DEV_GATEWAY = True
    settings_fixture.WECHATPAY_ENABLED = True
    settings_fixture.WECHATPAY_DEV_KEY_DIR = tmp_path_factory.getbasetemp() / "payments-wechat-dev-keys"
    settings_fixture.WECHATPAY_MCHID = "1900000109"
    settings_fixture.WECHATPAY_APPID = "wxd678efh567hg6787"
    settings_fixture.WECHATPAY_NOTIFY_URL = base_url + WECHAT_NOTIFY_PATH


def point_gateway_at(settings_fixture, base_url: str, *, notify_base_url: str | None = None) -> None:
    settings_fixture.PUBLIC_BASE_URL = base_url
    settings_fixture.DEV_GATEWAY_BASE_URL = base_url
    settings_fixture.ALIPAY_NOTIFY_URL = (notify_base_url or base_url) + NOTIFY_PATH
    settings_fixture.ALIPAY_RETURN_URL = base_url + RETURN_PATH


def other_private_key() -> RsaKey:
    return load_private_key(fixture_text("test_only_other_private_pkcs1.pem"))


def place_order(user, key: str = "k", *, user_coupon_id: int | None = None, points: int = 0) -> dict:
    response = ApiClient(user).post(
        "/orders", {"user_coupon_id": user_coupon_id, "points": points}, headers={"Idempotency-Key": key}
    )
    assert response.status_code == 201, response.content
    return response.json()


def post_notify(params: dict[str, str] | bytes | str, client: Client | None = None):
    """POST a notify form-encoded, as Alipay does, through the real URL stack."""
    body = params if isinstance(params, (bytes, str)) else urlencode(params)
    return (client or Client()).post(
        NOTIFY_PATH, data=body, content_type="application/x-www-form-urlencoded; charset=utf-8"
    )


def notify_answer(response) -> str:
    """The notify endpoint's answer: exactly `success` or `failure`, as plain text, HTTP 200."""
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain"), response["Content-Type"]
    text = response.content.decode()
    assert text in ("success", "failure"), text
    return text


def query_params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def http(method: str, url: str, *, headers: dict[str, str] | None = None, **kwargs) -> requests.Response:
    """One real HTTP request (to live_server), redirects not followed, on a connection that closes
    with it: a kept-alive socket would keep a live_server thread, and its database session, open
    past the test (and block dropping the test database)."""
    kwargs.setdefault("timeout", 10)
    kwargs.setdefault("allow_redirects", False)
    with requests.Session() as session:
        response = session.request(method, url, headers={"Connection": "close", **(headers or {})}, **kwargs)
        response.close()
    return response


def pay_form_action(html: str) -> str | None:
    match = re.search(r'<form method="post" action="([^"]+)"', html)
    return match.group(1) if match else None


def order_snapshot(order_no: str) -> dict:
    """What a rejected notify must leave untouched."""
    order = Order.objects.get(order_no=order_no)
    return {
        "status": order.status,
        "paid_at": order.paid_at,
        "cancelled_at": order.cancelled_at,
        "refunded_at": order.refunded_at,
        "attempts": attempts_of(order_no),
    }


def attempts_of(order_no: str) -> list[tuple]:
    """The order's payment attempts: (out_trade_no, provider, channel, status, provider trade id)."""
    return list(
        PaymentAttempt.objects.filter(order__order_no=order_no)
        .order_by("id")
        .values_list("out_trade_no", "provider", "channel", "status", "provider_trade_no")
    )


def open_alipay_attempt(user, order_no: str, channel: str = "page") -> dict:
    """POST /orders/{no}/pay for Alipay: the attempt a real notify needs (Alipay only ever notifies
    about a trade opened from a URL we signed)."""
    response = ApiClient(user).post(f"/orders/{order_no}/pay", {"provider": "alipay", "channel": channel})
    assert response.status_code == 200, response.content
    return response.json()


def reach_deadline(order_no: str) -> None:
    """The order's payment deadline arrives now, as when the clock gets there: the order and every
    trade opened for it at the dev gateways (whose time_expire is that deadline) expire at this
    instant. Not a timeout of a few seconds and a sleep: the set-up before the deadline (the dev
    gateways generate their keys on first use) can take longer than that."""
    now = timezone.now()
    Order.objects.filter(order_no=order_no).update(expires_at=now)
    DevGatewayTrade.objects.filter(out_trade_no__startswith=order_no).update(time_expire=now)
    WechatPayDevTrade.objects.filter(out_trade_no__startswith=order_no).update(time_expire=now)


def last_notification() -> PaymentNotification:
    return PaymentNotification.objects.order_by("-id").first()


@contextmanager
def refund_worker(monkeypatch) -> Iterator[RedisBroker]:
    """A real Redis broker and a real Dramatiq worker thread for the refund queue's actors
    (`refund_payment`, for money that arrived where it was not wanted, and `send_refund`).

    The broker has a namespace of its own in the test Redis database: other test runs on the same
    Redis (tests/test_expiry.py flushes and consumes the shared "dramatiq" namespace) can neither
    eat nor flush these refund messages, and this worker never runs theirs.
    """
    broker = RedisBroker(
        url=settings.REDIS_URL, namespace=f"payments-tests-{uuid.uuid4().hex}", socket_connect_timeout=2
    )
    broker.add_middleware(DbConnectionsMiddleware())
    for actor in (actors.refund_payment, actors.send_refund):
        broker.declare_actor(actor)
        # The hooks workers registers (`refund_needed`, `refund_approved`) enqueue through the
        # actor's broker.
        monkeypatch.setattr(actor, "broker", broker)
    worker = Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        yield broker
    finally:
        worker.stop()
        broker.flush_all()
        leftovers = broker.client.keys(f"{broker.namespace}:*")
        if leftovers:
            broker.client.delete(*leftovers)
        broker.close()

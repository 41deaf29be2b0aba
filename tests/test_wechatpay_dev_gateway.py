"""The WeChat Pay dev gateway, driven over real HTTP by the real client (live_server), with the
notifies caught by a small HTTP server standing in for our notify endpoint and parsed by the
client as the endpoint will."""

import json
import os
import re
import stat
import threading
import time
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings
from django.test import Client
from django.utils import timezone

from billing.models import WechatPayDevRefund, WechatPayDevTrade
from billing.wechatpay import client as client_module
from billing.wechatpay.client import WechatPayClient
from billing.wechatpay.configured import get_wechatpay_client
from billing.wechatpay.errors import Reason, WechatPayError
from billing.wechatpay.formats import compact_json
from billing.wechatpay.keys import load_private_key
from billing.wechatpay.results import RefundNotification, TransactionNotification
from billing.wechatpay.signing import authorization, signed_headers, verify_signed
from billing.wechatpay_dev_gateway import keys as dev_keys
from billing.wechatpay_dev_gateway.notify import (
    notify_envelope,
    sign_notify,
    signed_notify,
    transaction_resource,
    wait_for_deliveries,
)
from tests.test_wechatpay_signing import fixture_text

# live_server needs committed data; the tests without it take the faster, rolled-back kind.
pytestmark = pytest.mark.django_db(transaction=True)
NO_LIVE_SERVER = pytest.mark.django_db

MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
DESCRIPTION = "Python 入门 + 进阶 <b>a=b&c</b>"
FOREIGN_KEY = load_private_key(fixture_text("test_only_other_private_pkcs8.pem"))


@pytest.fixture(scope="session")
def dev_key_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("wechatpay-dev-keys")


@pytest.fixture
def dev_gateway(settings, dev_key_dir):
    settings.WECHATPAY_DEV_GATEWAY = True
    settings.WECHATPAY_ENABLED = True
    settings.WECHATPAY_DEV_KEY_DIR = dev_key_dir
    settings.WECHATPAY_MCHID = MCHID
    settings.WECHATPAY_APPID = APPID
    yield settings
    # Refund notifies go out from threads of their own; none may outlive its test's data.
    wait_for_deliveries()


class NotifyReceiver:
    """Our notify endpoint's stand-in: records every POST, answers 204 (or the statuses queued
    in `failures` first)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.failures: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((self.path, dict(self.headers.items()), body))
                self.send_response(receiver.failures.pop(0) if receiver.failures else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/v1/payments/wechat/notify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def parsed(self, client: WechatPayClient) -> list[TransactionNotification | RefundNotification]:
        return [client.parse_notification(headers=headers, body=body) for _, headers, body in self.received]


@pytest.fixture
def notify_receiver():
    receiver = NotifyReceiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def make_client(base_url: str, notify_url: str, **changes) -> WechatPayClient:
    arguments = {
        "mchid": MCHID,
        "appid": APPID,
        "merchant_private_key": dev_keys.merchant_private_key(),
        "merchant_serial_no": dev_keys.merchant_serial_no(),
        "apiv3_key": dev_keys.apiv3_key(),
        "wechatpay_public_key": dev_keys.platform_public_key(),
        "wechatpay_public_key_id": dev_keys.public_key_id(),
        "notify_url": notify_url,
        "api_base": base_url + "/dev/wechatpay",
        "timeout": 10,
    }
    return WechatPayClient(**{**arguments, **changes})


@pytest.fixture
def wechat(live_server, dev_gateway, notify_receiver) -> WechatPayClient:
    return make_client(live_server.url, notify_receiver.url)


def native(wechat: WechatPayClient, out_trade_no: str, amount: str = "199.00", *, expires_in=timedelta(minutes=30)):
    return wechat.create_native_order(
        out_trade_no=out_trade_no,
        description=DESCRIPTION,
        total_amount=Decimal(amount),
        time_expire=timezone.now() + expires_in,
    )


def pay_form_action(html: str) -> str | None:
    match = re.search(r'<form method="post" action="([^"]+)"', html)
    return match.group(1) if match else None


def scan_and_pay(wechat: WechatPayClient, live_server, out_trade_no: str, amount: str = "199.00"):
    page = requests.get(native(wechat, out_trade_no, amount).code_url, timeout=10)
    assert page.status_code == 200, page.text
    action = pay_form_action(page.text)
    assert action and action.startswith("/dev/wechatpay/pay/wx")
    return requests.post(live_server.url + action, allow_redirects=False, timeout=10)


def refusal(call) -> WechatPayError:
    with pytest.raises(WechatPayError) as caught:
        call()
    return caught.value


# Native: order, the scanned page, paying, the notify ------------------------------------------------


def test_native_order_answers_a_code_url_whose_page_shows_the_trade(wechat, live_server):
    order = native(wechat, "20260101000000000001")
    assert order.out_trade_no == "20260101000000000001"
    assert order.code_url.startswith(live_server.url + "/dev/wechatpay/scanned/wx")
    page = requests.get(order.code_url, timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<span id="amount">199.00</span>' in page.text
    assert "Python 入门 + 进阶 &lt;b&gt;a=b&amp;c&lt;/b&gt;" in page.text  # escaped, `+` intact
    assert "(Beijing time)" in page.text and pay_form_action(page.text)
    trade = WechatPayDevTrade.objects.get()
    assert (trade.trade_state, trade.total, trade.trade_type, trade.description) == (
        "NOTPAY",
        19900,
        "NATIVE",
        DESCRIPTION,
    )
    assert (trade.mchid, trade.appid, trade.notify_url) == (MCHID, APPID, wechat.notify_url)
    # The same order again answers the same code_url, as WeChat Pay does.
    assert native(wechat, "20260101000000000001").code_url == order.code_url


def test_scan_pay_notify_round_trip(wechat, live_server, notify_receiver):
    response = scan_and_pay(wechat, live_server, "20260101000000000002", "0.01")
    assert response.status_code == 200 and 'id="paid"' in response.text

    [(path, headers, body)] = notify_receiver.received
    assert path == "/api/v1/payments/wechat/notify" and headers["Content-Type"] == "application/json"
    assert headers["Wechatpay-Serial"] == dev_keys.public_key_id()
    assert headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    envelope = json.loads(body)
    assert (envelope["event_type"], envelope["resource_type"]) == ("TRANSACTION.SUCCESS", "encrypt-resource")
    assert "20260101000000000002" not in body.decode()  # the resource is encrypted
    [notify] = notify_receiver.parsed(wechat)
    assert isinstance(notify, TransactionNotification) and notify.is_paid
    assert (notify.out_trade_no, notify.total_fen, notify.total_amount) == ("20260101000000000002", 1, Decimal("0.01"))
    assert re.fullmatch(r"4200000\d{21}", notify.transaction_id)

    query = wechat.query_trade(out_trade_no="20260101000000000002")
    assert (query.trade_state, query.total_fen, query.transaction_id) == ("SUCCESS", 1, notify.transaction_id)
    assert query.is_paid and query.success_time is not None

    # A second press neither pays nor notifies again.
    trade = WechatPayDevTrade.objects.get()
    assert requests.post(f"{live_server.url}/dev/wechatpay/pay/{trade.prepay_id}", timeout=10).status_code == 200
    assert len(notify_receiver.received) == 1


def test_a_failed_notify_is_retried(wechat, live_server, notify_receiver):
    notify_receiver.failures = [500, 503]
    scan_and_pay(wechat, live_server, "20260101000000000003")
    assert len(notify_receiver.received) == 3
    assert {n.out_trade_no for n in notify_receiver.parsed(wechat)} == {"20260101000000000003"}


# H5 -----------------------------------------------------------------------------------------------


def test_h5_order_pays_and_returns_to_the_redirect_url(wechat, live_server, notify_receiver):
    order = wechat.create_h5_order(
        out_trade_no="20260101000000000010",
        description=DESCRIPTION,
        total_amount=Decimal("88.80"),
        time_expire=timezone.now() + timedelta(minutes=30),
        payer_client_ip="203.0.113.7",
    )
    assert urlsplit(order.h5_url).path == "/dev/wechatpay/h5/checkmweb"
    back = "https://shop.example.com/orders/20260101000000000010?from=wechat"
    page = requests.get(order.url_returning_to(back), timeout=10)
    assert page.status_code == 200 and "88.80" in page.text and "H5 (phone browser)" in page.text
    assert f'name="redirect_url" value="{back.replace("&", "&amp;")}"' in page.text
    response = requests.post(
        live_server.url + pay_form_action(page.text), data={"redirect_url": back}, allow_redirects=False, timeout=10
    )
    assert response.status_code == 302 and response.headers["Location"] == back
    [notify] = notify_receiver.parsed(wechat)
    assert (notify.out_trade_no, notify.total_fen) == ("20260101000000000010", 8880)
    trade = WechatPayDevTrade.objects.get()
    assert (trade.trade_type, trade.payer_client_ip) == ("MWEB", "203.0.113.7")
    assert wechat.query_trade(out_trade_no="20260101000000000010").is_paid


def test_h5_redirect_url_must_be_a_web_address(wechat, live_server):
    order = wechat.create_h5_order(
        out_trade_no="20260101000000000011",
        description="x",
        total_amount=Decimal("1.00"),
        time_expire=timezone.now() + timedelta(minutes=30),
        payer_client_ip="203.0.113.7",
    )
    page = requests.get(order.url_returning_to("javascript:alert(1)"), timeout=10)
    assert page.status_code == 200 and "redirect_url" not in page.text


def test_a_native_code_url_is_not_an_h5_page_and_vice_versa(wechat, live_server):
    code_url = native(wechat, "20260101000000000012").code_url
    prepay_id = code_url.rsplit("/", 1)[1]
    assert (
        requests.get(f"{live_server.url}/dev/wechatpay/h5/checkmweb?prepay_id={prepay_id}", timeout=10).status_code
        == 404
    )
    assert requests.get(f"{live_server.url}/dev/wechatpay/scanned/wx0000", timeout=10).status_code == 404


# Orders refused ----------------------------------------------------------------------------------


def test_the_same_out_trade_no_with_other_terms_is_refused(wechat):
    native(wechat, "20260101000000000020", "10.00")
    error = refusal(lambda: native(wechat, "20260101000000000020", "9.99"))
    assert (error.reason, error.code, error.http_status) == (Reason.REFUSED, "OUT_TRADE_NO_USED", 403)
    assert WechatPayDevTrade.objects.get().total == 1000


def test_a_paid_or_closed_trade_cannot_be_ordered_again(wechat, live_server):
    scan_and_pay(wechat, live_server, "20260101000000000021")
    assert refusal(lambda: native(wechat, "20260101000000000021")).code == "ORDERPAID"
    native(wechat, "20260101000000000022")
    wechat.close_trade(out_trade_no="20260101000000000022")
    assert refusal(lambda: native(wechat, "20260101000000000022")).code == "ORDER_CLOSED"


def test_the_client_refuses_what_wechat_pay_would(wechat):
    for amount in ["0.00", "1.001", "-1.00"]:
        with pytest.raises(ValueError):
            native(wechat, "20260101000000000023", amount)
    for out_trade_no in ["12345", "x" * 33, "2026/01/01", "订单20260101"]:
        with pytest.raises(ValueError):
            native(wechat, out_trade_no)
    with pytest.raises(ValueError):
        wechat.create_native_order(
            out_trade_no="20260101000000000023",
            description="x" * 128,
            total_amount=Decimal("1"),
            time_expire=timezone.now(),
        )
    assert not WechatPayDevTrade.objects.exists()


# Query and close --------------------------------------------------------------------------------


def test_query_of_an_unknown_trade_is_none_only_from_a_signed_answer(wechat, monkeypatch):
    assert wechat.query_trade(out_trade_no="20260101000000009999") is None

    real_request = requests.request

    def unsigned(*args, **kwargs):
        response = real_request(*args, **kwargs)
        assert response.status_code == 404 and "Wechatpay-Signature" in response.headers
        for name in ("Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial"):
            del response.headers[name]
        return response

    monkeypatch.setattr(client_module.requests, "request", unsigned)
    error = refusal(lambda: wechat.query_trade(out_trade_no="20260101000000009999"))
    assert (error.reason, error.code, error.http_status) == (Reason.UNSIGNED, "", 404)


def test_query_of_a_waiting_trade(wechat):
    native(wechat, "20260101000000000030", "0.01")
    query = wechat.query_trade(out_trade_no="20260101000000000030")
    assert (query.trade_state, query.total_fen, query.transaction_id, query.is_paid) == ("NOTPAY", 1, "", False)


def test_close_before_pay_and_the_trade_cannot_be_paid(wechat, live_server, notify_receiver):
    code_url = native(wechat, "20260101000000000031").code_url
    wechat.close_trade(out_trade_no="20260101000000000031")
    wechat.close_trade(out_trade_no="20260101000000000031")  # closing twice answers 204 again
    assert wechat.query_trade(out_trade_no="20260101000000000031").trade_state == "CLOSED"
    page = requests.get(code_url, timeout=10)
    assert "closed" in page.text and pay_form_action(page.text) is None
    prepay_id = code_url.rsplit("/", 1)[1]
    assert requests.post(f"{live_server.url}/dev/wechatpay/pay/{prepay_id}", timeout=10).status_code == 400
    assert notify_receiver.received == []


def test_close_of_an_unknown_trade_answers_204_as_wechat_pay_does(wechat):
    wechat.close_trade(out_trade_no="20260101000000009998")


def test_close_after_pay_is_refused(wechat, live_server):
    scan_and_pay(wechat, live_server, "20260101000000000032")
    error = refusal(lambda: wechat.close_trade(out_trade_no="20260101000000000032"))
    assert (error.reason, error.code, error.http_status) == (Reason.REFUSED, "ORDERPAID", 400)
    assert wechat.query_trade(out_trade_no="20260101000000000032").trade_state == "SUCCESS"


def test_an_expired_trade_cannot_be_paid(wechat, live_server, notify_receiver):
    code_url = native(wechat, "20260101000000000033", expires_in=timedelta(seconds=-1)).code_url
    page = requests.get(code_url, timeout=10)
    assert page.status_code == 200 and "expired" in page.text and pay_form_action(page.text) is None
    prepay_id = code_url.rsplit("/", 1)[1]
    assert requests.post(f"{live_server.url}/dev/wechatpay/pay/{prepay_id}", timeout=10).status_code == 400
    assert wechat.query_trade(out_trade_no="20260101000000000033").trade_state == "CLOSED"
    assert notify_receiver.received == []


# Refunds ----------------------------------------------------------------------------------------


def refund_notifies(receiver: NotifyReceiver, client: WechatPayClient) -> list[RefundNotification]:
    return [n for n in receiver.parsed(client) if isinstance(n, RefundNotification)]


def test_refund_answers_processing_then_notifies_success(wechat, live_server, notify_receiver):
    scan_and_pay(wechat, live_server, "20260101000000000040")
    no = "20260101000000000040"

    first = wechat.refund_trade(
        out_trade_no=no, out_refund_no="R1-" + no, refund_amount=Decimal("50.00"), total_amount=Decimal("199.00")
    )
    assert (first.status, first.refund_fen, first.total_fen, first.out_trade_no) == ("PROCESSING", 5000, 19900, no)
    wait_for_deliveries()
    [notify] = refund_notifies(notify_receiver, wechat)
    assert (notify.event_type, notify.refund_status, notify.out_refund_no) == ("REFUND.SUCCESS", "SUCCESS", "R1-" + no)
    assert (notify.refund_fen, notify.total_fen, notify.refund_id) == (5000, 19900, first.refund_id)
    assert wechat.query_refund(out_refund_no="R1-" + no).status == "SUCCESS"

    # The same out_refund_no again: the same refund, no money moved, no second notify.
    repeat = wechat.refund_trade(
        out_trade_no=no, out_refund_no="R1-" + no, refund_amount=Decimal("50.00"), total_amount=Decimal("199.00")
    )
    assert (repeat.refund_id, repeat.status) == (first.refund_id, "SUCCESS")
    error = refusal(
        lambda: wechat.refund_trade(
            out_trade_no=no, out_refund_no="R1-" + no, refund_amount=Decimal("50.01"), total_amount=Decimal("199.00")
        )
    )
    assert (error.code, error.http_status) == ("INVALID_REQUEST", 400)
    error = refusal(
        lambda: wechat.refund_trade(
            out_trade_no=no, out_refund_no="R2-" + no, refund_amount=Decimal("149.01"), total_amount=Decimal("199.00")
        )
    )
    assert error.code == "INVALID_REQUEST"
    error = refusal(
        lambda: wechat.refund_trade(
            out_trade_no=no, out_refund_no="R3-" + no, refund_amount=Decimal("1.00"), total_amount=Decimal("199.01")
        )
    )
    assert error.code == "PARAM_ERROR"
    rest = wechat.refund_trade(
        out_trade_no=no, out_refund_no="R4-" + no, refund_amount=Decimal("149.00"), total_amount=Decimal("199.00")
    )
    assert rest.refund_fen == 14900
    wait_for_deliveries()
    assert [n.out_refund_no for n in refund_notifies(notify_receiver, wechat)] == ["R1-" + no, "R4-" + no]
    trade = WechatPayDevTrade.objects.get()
    assert (trade.refunded, trade.trade_state, WechatPayDevRefund.objects.count()) == (19900, "REFUND", 2)
    # A refunded trade was still paid: the money arrived.
    query = wechat.query_trade(out_trade_no=no)
    assert (query.trade_state, query.is_paid) == ("REFUND", True)


def test_refund_of_an_unpaid_or_unknown_trade_is_refused(wechat):
    native(wechat, "20260101000000000041")
    error = refusal(
        lambda: wechat.refund_trade(
            out_trade_no="20260101000000000041",
            out_refund_no="R-41",
            refund_amount=Decimal("1.00"),
            total_amount=Decimal("199.00"),
        )
    )
    assert (error.code, error.http_status) == ("INVALID_REQUEST", 400)
    error = refusal(
        lambda: wechat.refund_trade(
            out_trade_no="20260101000000009997",
            out_refund_no="R-97",
            refund_amount=Decimal("1.00"),
            total_amount=Decimal("1.00"),
        )
    )
    assert (error.code, error.http_status) == ("RESOURCE_NOT_EXISTS", 404)
    assert wechat.query_refund(out_refund_no="R-97") is None
    with pytest.raises(ValueError):
        wechat.refund_trade(
            out_trade_no="20260101000000000041",
            out_refund_no="R-41",
            refund_amount=Decimal("2.00"),
            total_amount=Decimal("1.00"),
        )


def test_a_refund_answer_with_other_amounts_is_refused(wechat, live_server, monkeypatch):
    scan_and_pay(wechat, live_server, "20260101000000000042")
    real_request = requests.request

    def off_by_one_fen(*args, **kwargs):
        # What a signed answer for another amount looks like: WeChat Pay's key, our request.
        response = real_request(*args, **kwargs)
        answer = json.loads(response.content)
        answer["amount"]["refund"] += 1
        response._content = compact_json(answer).encode()
        response.headers.update(
            signed_headers(
                body=response._content,
                private_key=dev_keys.platform_private_key(),
                public_key_id=dev_keys.public_key_id(),
            )
        )
        return response

    monkeypatch.setattr(client_module.requests, "request", off_by_one_fen)
    error = refusal(
        lambda: wechat.refund_trade(
            out_trade_no="20260101000000000042",
            out_refund_no="R-42",
            refund_amount=Decimal("1.00"),
            total_amount=Decimal("199.00"),
        )
    )
    assert error.reason == Reason.MALFORMED and "101/19900" in str(error)


# The gateway checks our requests as WeChat Pay does -------------------------------------------------


def test_a_request_signed_with_another_key_gets_an_unsigned_401(wechat, live_server):
    forger = make_client(live_server.url, wechat.notify_url, merchant_private_key=FOREIGN_KEY)
    error = refusal(lambda: native(forger, "20260101000000000050"))
    assert (error.reason, error.code, error.http_status) == (Reason.UNSIGNED, "", 401)
    assert error.request_id
    assert not WechatPayDevTrade.objects.exists()


def test_a_request_for_a_foreign_mchid_or_serial_gets_401(wechat, live_server):
    for changes in ({"mchid": "1900000110"}, {"merchant_serial_no": "0" * 40}):
        stranger = make_client(live_server.url, wechat.notify_url, **changes)
        assert refusal(lambda c=stranger: native(c, "20260101000000000051")).http_status == 401
    assert not WechatPayDevTrade.objects.exists()


def raw_request(live_server, *, path: str, body: bytes = b"", method: str = "POST", **auth_changes):
    url = "/dev/wechatpay" + path
    auth = {
        "mchid": MCHID,
        "serial_no": dev_keys.merchant_serial_no(),
        "private_key": dev_keys.merchant_private_key(),
        "method": method,
        "url": url,
        "body": body,
    }
    headers = {"Authorization": authorization(**{**auth, **auth_changes}), "Accept": "application/json"}
    if body:
        headers["Content-Type"] = "application/json"
    return requests.request(method, live_server.url + url, data=body or None, headers=headers, timeout=10)


def test_sign_errors_say_so_in_an_unsigned_body(wechat, live_server):
    query = "/v3/pay/transactions/out-trade-no/20260101000000000052?mchid=" + MCHID
    assert raw_request(live_server, path=query, method="GET").status_code == 404  # signed ORDER_NOT_EXIST
    cases = [
        {"timestamp": int(time.time()) - 301},
        {"timestamp": int(time.time()) + 301},
        {"private_key": FOREIGN_KEY},
        {"mchid": "1900000110"},
        {"url": "/dev/wechatpay/v3/pay/transactions/out-trade-no/20260101000000000053?mchid=" + MCHID},
    ]
    for changes in cases:
        response = raw_request(live_server, path=query, method="GET", **changes)
        assert response.status_code == 401, changes
        assert response.json()["code"] == "SIGN_ERROR"
        assert "Wechatpay-Signature" not in response.headers
    response = requests.get(live_server.url + "/dev/wechatpay" + query, timeout=10)  # no Authorization at all
    assert response.status_code == 401


def test_a_body_changed_after_signing_is_refused(wechat, live_server):
    body = compact_json({"mchid": MCHID}).encode()
    path = "/v3/pay/transactions/out-trade-no/20260101000000000054/close"
    signed = raw_request(live_server, path=path, body=body)
    assert signed.status_code == 204 and signed.content == b""
    url = "/dev/wechatpay" + path
    header = authorization(
        mchid=MCHID,
        serial_no=dev_keys.merchant_serial_no(),
        private_key=dev_keys.merchant_private_key(),
        method="POST",
        url=url,
        body=body,
    )
    tampered = requests.post(
        live_server.url + url,
        data=compact_json({"mchid": "1900000110"}).encode(),
        headers={"Authorization": header, "Content-Type": "application/json"},
        timeout=10,
    )
    assert tampered.status_code == 401


def test_answers_carry_wechat_pays_headers_and_verify(wechat, live_server):
    response = raw_request(
        live_server, path="/v3/pay/transactions/out-trade-no/20260101000000000055?mchid=" + MCHID, method="GET"
    )
    assert response.status_code == 404 and response.json() == {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
    assert response.headers["Wechatpay-Serial"] == dev_keys.public_key_id()
    assert response.headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    assert re.fullmatch(r"[0-9a-f-]{36}", response.headers["Request-ID"])
    verify_signed(
        headers=response.headers,
        body=response.content,
        public_key=dev_keys.platform_public_key(),
        public_key_id=dev_keys.public_key_id(),
    )


def test_a_request_naming_another_wechatpay_key_is_refused(wechat, live_server):
    query = "/v3/pay/transactions/out-trade-no/20260101000000000056?mchid=" + MCHID
    url = "/dev/wechatpay" + query
    header = authorization(
        mchid=MCHID,
        serial_no=dev_keys.merchant_serial_no(),
        private_key=dev_keys.merchant_private_key(),
        method="GET",
        url=url,
        body=b"",
    )
    response = requests.get(
        live_server.url + url, headers={"Authorization": header, "Wechatpay-Serial": "PUB_KEY_ID_0000"}, timeout=10
    )
    assert response.status_code == 400 and response.json()["code"] == "PARAM_ERROR"
    assert response.headers["Wechatpay-Serial"] == dev_keys.public_key_id()  # answered, signed, with its real key
    confused = make_client(live_server.url, wechat.notify_url, wechatpay_public_key_id="PUB_KEY_ID_0000")
    assert refusal(lambda: native(confused, "20260101000000000056")).reason == Reason.WRONG_SERIAL


# Answers tampered with on the way ----------------------------------------------------------------------


def tampering(monkeypatch, change):
    real_request = requests.request

    def request(*args, **kwargs):
        response = real_request(*args, **kwargs)
        change(response)
        return response

    monkeypatch.setattr(client_module.requests, "request", request)


def test_a_tampered_answer_fails_verification(wechat, live_server, monkeypatch):
    scan_and_pay(wechat, live_server, "20260101000000000060")

    def cheaper(response):
        assert b'"total":19900' in response.content
        response._content = response.content.replace(b'"total":19900', b'"total":1')

    tampering(monkeypatch, cheaper)
    assert refusal(lambda: wechat.query_trade(out_trade_no="20260101000000000060")).reason == Reason.BAD_SIGNATURE


def test_an_answer_with_another_serial_or_a_stale_timestamp_is_refused(wechat, live_server, monkeypatch):
    native(wechat, "20260101000000000061")

    def other_serial(response):
        response.headers["Wechatpay-Serial"] = "PUB_KEY_ID_0119000001092026010100000000000001"

    tampering(monkeypatch, other_serial)
    assert refusal(lambda: wechat.query_trade(out_trade_no="20260101000000000061")).reason == Reason.WRONG_SERIAL

    def replayed(response):
        # Validly signed by WeChat Pay's key, six minutes ago.
        response.headers.update(
            signed_headers(
                body=response.content,
                private_key=dev_keys.platform_private_key(),
                public_key_id=dev_keys.public_key_id(),
                timestamp=int(time.time()) - 360,
            )
        )

    tampering(monkeypatch, replayed)
    assert refusal(lambda: wechat.query_trade(out_trade_no="20260101000000000061")).reason == Reason.STALE_TIMESTAMP


def test_an_answer_about_another_trade_is_not_ours(wechat, monkeypatch):
    native(wechat, "20260101000000000062")
    native(wechat, "20260101000000000063")
    real_request = requests.request
    answers = []

    def record(*args, **kwargs):
        answers.append(real_request(*args, **kwargs))
        return answers[-1]

    monkeypatch.setattr(client_module.requests, "request", record)
    wechat.query_trade(out_trade_no="20260101000000000063")
    # WeChat Pay's genuine, signed answer about trade ...63, replayed for a question about ...62.
    monkeypatch.setattr(client_module.requests, "request", lambda *args, **kwargs: answers[0])
    assert refusal(lambda: wechat.query_trade(out_trade_no="20260101000000000062")).reason == Reason.NOT_OURS


def test_an_answer_checked_with_the_wrong_public_key_fails(wechat, live_server):
    confused = make_client(live_server.url, wechat.notify_url, wechatpay_public_key=dev_keys.merchant_public_key())
    assert refusal(lambda: confused.query_trade(out_trade_no="20260101000000009996")).reason == Reason.BAD_SIGNATURE


@NO_LIVE_SERVER
def test_an_unreachable_gateway_is_a_wechatpay_error(dev_gateway):
    dead = make_client("http://127.0.0.1:9", "http://127.0.0.1:9/notify", timeout=2)
    assert refusal(lambda: dead.query_trade(out_trade_no="20260101000000009995")).reason == Reason.UNREACHABLE


# Helpers for other tests, keys, settings --------------------------------------------------------------


@NO_LIVE_SERVER
def test_signed_notify_helpers_craft_any_notify(dev_gateway):
    client = make_client("http://127.0.0.1:9", "http://127.0.0.1:9/notify")
    fields = {"out_trade_no": "20260101000000000070", "transaction_id": "4200000000202601010000000070", "total": 100}

    def sealed(**changes) -> dict:
        return notify_envelope(transaction_resource(fields, **changes), event_type="TRANSACTION.SUCCESS")

    def parse(notify):
        return client.parse_notification(headers=notify.headers, body=notify.body)

    assert parse(sign_notify(sealed())).total_fen == 100
    assert parse(sign_notify(sealed(amount={"total": 101}))).total_fen == 101
    moved = sealed()
    moved["resource"]["associated_data"] = "refund"  # sealed as "transaction"
    other_key = notify_envelope(transaction_resource(fields), event_type="TRANSACTION.SUCCESS", apiv3_key=b"k" * 32)
    cases = [
        (sign_notify(sealed(), private_key=FOREIGN_KEY), Reason.BAD_SIGNATURE),
        (sign_notify(sealed(), timestamp=int(time.time()) - 301), Reason.STALE_TIMESTAMP),
        (sign_notify(sealed(), public_key_id="PUB_KEY_ID_1"), Reason.WRONG_SERIAL),
        (sign_notify(other_key), Reason.UNDECRYPTABLE),
        (sign_notify(moved), Reason.UNDECRYPTABLE),
        (sign_notify(sealed(mchid="1900000110")), Reason.NOT_OURS),
        (sign_notify(sealed(appid=None)), Reason.NOT_OURS),
    ]
    for index, (notify, reason) in enumerate(cases):
        assert refusal(lambda n=notify: parse(n)).reason == reason, index


@NO_LIVE_SERVER
def test_signed_notify_from_a_trade_and_a_refund(dev_gateway):
    client = make_client("http://127.0.0.1:9", "http://127.0.0.1:9/notify")
    trade = WechatPayDevTrade.objects.create(
        out_trade_no="20260101000000000071",
        appid=APPID,
        mchid=MCHID,
        trade_type="NATIVE",
        description=DESCRIPTION,
        total=12300,
        notify_url="http://127.0.0.1:9/notify",
        prepay_id="wx0000000000000000000000000071",
        transaction_id="4200000000202601010000000071",
        trade_state="SUCCESS",
        success_time=timezone.now(),
    )
    notify = client.parse_notification(**vars(signed_notify(trade)))
    assert (notify.out_trade_no, notify.transaction_id, notify.total_fen) == (
        trade.out_trade_no,
        trade.transaction_id,
        12300,
    )
    assert client.parse_notification(**vars(signed_notify(trade, amount={"total": 12299}))).total_fen == 12299
    refund = WechatPayDevRefund.objects.create(
        trade=trade, out_refund_no="R-71", refund_id="50000202601010000000000000071", refund=300, total=12300
    )
    notify = client.parse_notification(**vars(signed_notify(refund, refund_status="ABNORMAL")))
    assert (notify.event_type, notify.refund_status, notify.refund_fen) == ("REFUND.ABNORMAL", "ABNORMAL", 300)


@NO_LIVE_SERVER
def test_dev_secrets_are_created_once_even_when_processes_race(tmp_path):
    path = tmp_path / "keys" / "apiv3_key.txt"
    barrier = threading.Barrier(4)

    def start_up(content: bytes) -> None:
        barrier.wait()
        dev_keys.create_file_once(path, content)

    threads = [threading.Thread(target=start_up, args=(bytes([65 + i]) * 32,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(path.read_bytes())) == 1 and len(path.read_bytes()) == 32
    assert os.listdir(path.parent) == ["apiv3_key.txt"]  # no temporary files left
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@NO_LIVE_SERVER
def test_dev_keys_are_distinct_and_stable(dev_gateway, dev_key_dir):
    assert dev_keys.merchant_private_key().n != dev_keys.platform_private_key().n
    assert len(dev_keys.apiv3_key()) == 32 and dev_keys.apiv3_key() == dev_keys.apiv3_key()
    assert re.fullmatch(r"[0-9A-F]{40}", dev_keys.merchant_serial_no())
    assert re.fullmatch(r"PUB_KEY_ID_\d+", dev_keys.public_key_id())
    assert sorted(os.listdir(dev_key_dir)) == ["apiv3_key.txt", "merchant_private_key.pem", "wechatpay_private_key.pem"]


@NO_LIVE_SERVER
def test_get_wechatpay_client_uses_the_dev_gateway_and_its_keys(dev_gateway):
    dev_gateway.DEV_GATEWAY_BASE_URL = "http://127.0.0.1:8123"
    client = get_wechatpay_client()
    assert client is get_wechatpay_client()
    assert client.api_base == "http://127.0.0.1:8123/dev/wechatpay"
    dev_gateway.DEV_GATEWAY_BASE_URL = "http://127.0.0.1:9000"  # a second process serving it
    assert get_wechatpay_client().api_base == "http://127.0.0.1:9000/dev/wechatpay"
    client = get_wechatpay_client()
    assert (client.mchid, client.appid, client.notify_url) == (MCHID, APPID, settings.WECHATPAY_NOTIFY_URL)
    assert client.merchant_private_key.n == dev_keys.merchant_private_key().n
    assert client.wechatpay_public_key.n == dev_keys.platform_public_key().n
    assert (client.wechatpay_public_key_id, client.apiv3_key) == (dev_keys.public_key_id(), dev_keys.apiv3_key())
    dev_gateway.WECHATPAY_NOTIFY_URL = "https://shop.example.com/api/v1/payments/wechat/notify"
    assert get_wechatpay_client().notify_url == "https://shop.example.com/api/v1/payments/wechat/notify"


@NO_LIVE_SERVER
def test_get_wechatpay_client_reads_a_real_merchants_key_files(settings, tmp_path):
    (tmp_path / "apiclient_key.pem").write_text(fixture_text("test_only_merchant_private_pkcs8.pem"))
    (tmp_path / "pub_key.pem").write_text(fixture_text("test_only_platform_public.pem"))
    settings.WECHATPAY_DEV_GATEWAY = False
    settings.WECHATPAY_ENABLED = True
    settings.WECHATPAY_PRIVATE_KEY_PATH = str(tmp_path / "apiclient_key.pem")
    settings.WECHATPAY_PUBLIC_KEY_PATH = str(tmp_path / "pub_key.pem")
    settings.WECHATPAY_CERT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
    settings.WECHATPAY_APIV3_KEY = "sQ5uNzQ8a2xL7vR3tW9yB4cE6gH1jK0m"
    settings.WECHATPAY_PUBLIC_KEY_ID = "PUB_KEY_ID_0119000001092026010100000000000001"
    settings.WECHATPAY_API_BASE = "https://api.mch.weixin.qq.com"
    client = get_wechatpay_client()
    assert client.api_base == "https://api.mch.weixin.qq.com" and client.merchant_serial_no.startswith("5157")
    settings.WECHATPAY_PUBLIC_KEY_PATH = str(tmp_path / "apiclient_key.pem")  # the merchant's own key, by mistake
    assert refusal(get_wechatpay_client).reason == Reason.MISCONFIGURED
    settings.WECHATPAY_PUBLIC_KEY_PATH = str(tmp_path / "missing.pem")
    assert refusal(get_wechatpay_client).reason == Reason.MISCONFIGURED


@NO_LIVE_SERVER
def test_the_dev_gateway_is_404_and_the_client_off_when_not_enabled(settings):
    settings.WECHATPAY_DEV_GATEWAY = False
    settings.WECHATPAY_ENABLED = False
    client = Client()
    for path in [
        "/dev/wechatpay/",
        "/dev/wechatpay/v3/pay/transactions/out-trade-no/20260101000000000001?mchid=1900000109",
        "/dev/wechatpay/scanned/wx1",
        "/dev/wechatpay/h5/checkmweb?prepay_id=wx1",
    ]:
        assert client.get(path).status_code == 404, path
    for path in ["/dev/wechatpay/v3/pay/transactions/native", "/dev/wechatpay/v3/refund/domestic/refunds"]:
        assert client.post(path, data="{}", content_type="application/json").status_code == 404, path
    assert client.post("/dev/wechatpay/pay/wx1").status_code == 404
    assert refusal(get_wechatpay_client).reason == Reason.MISCONFIGURED

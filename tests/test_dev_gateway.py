"""The Alipay dev gateway, driven over real HTTP by the real client (live_server), with the
notify caught by a small HTTP server standing in for our notify endpoint."""

import html
import json
import os
import re
import stat
import threading
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.conf import settings
from django.http import QueryDict
from django.test import Client
from django.utils import timezone

from billing.alipay import client as client_module
from billing.alipay.certs import load_certificate_mode, load_certificates
from billing.alipay.client import AlipayClient, get_alipay_client
from billing.alipay.errors import AlipayError, AlipaySignatureError
from billing.alipay.keys import load_private_key
from billing.alipay.signing import sign, verify_message, verify_notification, verify_request
from billing.dev_gateway import certs as dev_certs
from billing.dev_gateway import keys as dev_keys
from billing.dev_gateway.notify import send_notify, signed_notify_params, signed_return_params
from billing.models import DevGatewayTrade
from tests.test_alipay_signing import fixture_text

# live_server needs committed data; the tests without it take the faster, rolled-back kind.
pytestmark = pytest.mark.django_db(transaction=True)
NO_LIVE_SERVER = pytest.mark.django_db

APP_ID = "2021000000000000"
RETURN_URL = "https://shop.example.com/api/v1/payments/alipay/return"
SUBJECT = "Python 入门 + 进阶 <b>a=b&c</b>"


@pytest.fixture(scope="session")
def dev_key_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("alipay-dev-keys")


@pytest.fixture
def dev_gateway(settings, dev_key_dir):
    settings.ALIPAY_DEV_GATEWAY = True
    settings.ALIPAY_DEV_KEY_DIR = dev_key_dir
    settings.ALIPAY_APP_ID = APP_ID
    settings.ALIPAY_SELLER_ID = ""
    return settings


class NotifyReceiver:
    """Our notify endpoint's stand-in: records every POST and answers `success`."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((self.path, self.headers["Content-Type"], body))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"success")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/v1/payments/alipay/notify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def notifies(self) -> list[dict[str, str]]:
        return [QueryDict(body.decode("utf-8")).dict() for _, _, body in self.received]


@pytest.fixture
def notify_receiver():
    receiver = NotifyReceiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def alipay(live_server, dev_gateway, notify_receiver) -> AlipayClient:
    return AlipayClient(
        app_id=APP_ID,
        app_private_key=dev_keys.app_private_key(),
        alipay_public_key=dev_keys.gateway_public_key(),
        gateway_url=live_server.url + "/dev/alipay/gateway.do",
        notify_url=notify_receiver.url,
        return_url=RETURN_URL,
        timeout=10,
    )


def cashier_url(
    alipay: AlipayClient, out_trade_no: str, amount: str = "199.00", *, expires_in: timedelta = timedelta(minutes=30)
) -> str:
    return alipay.page_pay_url(
        out_trade_no=out_trade_no,
        total_amount=Decimal(amount),
        subject=SUBJECT,
        time_expire=timezone.now() + expires_in,
    )


def pay_form_action(html: str) -> str | None:
    match = re.search(r'<form method="post" action="([^"]+)"', html)
    return match.group(1) if match else None


def open_and_pay(alipay: AlipayClient, live_server, out_trade_no: str, amount: str = "199.00") -> requests.Response:
    page = requests.get(cashier_url(alipay, out_trade_no, amount), timeout=10)
    assert page.status_code == 200, page.text
    action = pay_form_action(page.text)
    assert action == f"/dev/alipay/pay/{out_trade_no}"
    return requests.post(live_server.url + action, allow_redirects=False, timeout=10)


# The cashier page ------------------------------------------------------------------------------


def test_page_pay_url_opens_the_cashier_with_the_amount(alipay):
    response = requests.get(cashier_url(alipay, "20260101000000000001"), timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "199.00" in response.text
    assert "20260101000000000001" in response.text
    assert "Python 入门 + 进阶 &lt;b&gt;a=b&amp;c&lt;/b&gt;" in response.text  # escaped, `+` intact
    assert "(Beijing time)" in response.text
    assert pay_form_action(response.text)
    assert f'href="{RETURN_URL}"' in response.text  # Cancel goes back without paying
    trade = DevGatewayTrade.objects.get(out_trade_no="20260101000000000001")
    assert (trade.status, trade.total_amount, trade.subject) == ("WAIT_BUYER_PAY", Decimal("199.00"), SUBJECT)


def test_wap_pay_opens_a_phone_sized_cashier_whose_back_link_is_the_quit_url(alipay, live_server, notify_receiver):
    quit_url = "https://shop.example.com/orders/20260101000000000007?from=alipay&x=1"
    url = alipay.wap_pay_url(
        out_trade_no="20260101000000000007",
        total_amount=Decimal("19.90"),
        subject=SUBJECT,
        time_expire=timezone.now() + timedelta(minutes=30),
        quit_url=quit_url,
    )
    page = requests.get(url, timeout=10)

    assert page.status_code == 200
    assert '<body class="phone">' in page.text and 'name="viewport" content="width=device-width' in page.text
    assert "19.90" in page.text and pay_form_action(page.text) == "/dev/alipay/pay/20260101000000000007"
    back = re.search(r'<a class="cancel" id="cancel" href="([^"]+)"', page.text)
    assert back and html.unescape(back.group(1)) == quit_url  # not the return URL
    trade = DevGatewayTrade.objects.get(out_trade_no="20260101000000000007")
    assert (trade.product_code, trade.quit_url, trade.return_url) == ("QUICK_WAP_WAY", quit_url, RETURN_URL)

    # Paying still ends at the return URL, after the notify, as page pay does.
    paid = requests.post(live_server.url + "/dev/alipay/pay/20260101000000000007", allow_redirects=False, timeout=10)
    assert paid.status_code == 302 and paid.headers["Location"].startswith(RETURN_URL + "?")
    assert len(notify_receiver.received) == 1

    # Page pay keeps the computer's page, whose Cancel goes back to the return URL.
    desktop = requests.get(cashier_url(alipay, "20260101000000000008"), timeout=10)
    assert '<body class="phone">' not in desktop.text and f'href="{RETURN_URL}"' in desktop.text
    assert DevGatewayTrade.objects.get(out_trade_no="20260101000000000008").quit_url == ""


def test_page_pay_also_takes_a_form_post(alipay):
    # Alipay's SDKs can render page pay as an auto-submitting form instead of a URL.
    url = urlsplit(cashier_url(alipay, "20260101000000000006", "1.50"))
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    response = requests.post(alipay.gateway_url, data=params, timeout=10)
    assert response.status_code == 200 and "1.50" in response.text


def test_out_trade_no_must_follow_alipays_rule(alipay):
    response = requests.get(cashier_url(alipay, "2026/01"), timeout=10)
    assert response.status_code == 400 and "out_trade_no" in response.text


def tampered(url: str, **biz_changes) -> str:
    parts = urlsplit(url)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    params["biz_content"] = json.dumps({**json.loads(params["biz_content"]), **biz_changes}, separators=(",", ":"))
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(params)}"


def test_tampered_page_pay_url_is_refused(alipay):
    url = cashier_url(alipay, "20260101000000000002")
    response = requests.get(tampered(url, total_amount="0.01"), timeout=10)
    assert response.status_code == 400
    assert "isv.invalid-signature" in response.text
    assert not DevGatewayTrade.objects.exists()


def test_page_pay_signed_with_another_key_or_for_another_app_is_refused(alipay):
    foreign_key = load_private_key(fixture_text("test_only_other_private_pkcs1.pem"))
    forger = AlipayClient(APP_ID, foreign_key, alipay.alipay_public_key, alipay.gateway_url, "http://n", RETURN_URL)
    assert requests.get(cashier_url(forger, "20260101000000000003"), timeout=10).status_code == 400
    stranger = AlipayClient(
        "2021009999999999", alipay.app_private_key, alipay.alipay_public_key, alipay.gateway_url, "http://n", RETURN_URL
    )
    response = requests.get(cashier_url(stranger, "20260101000000000003"), timeout=10)
    assert response.status_code == 400 and "isv.invalid-app-id" in response.text
    assert not DevGatewayTrade.objects.exists()


def test_second_page_pay_with_another_amount_is_refused(alipay):
    assert requests.get(cashier_url(alipay, "20260101000000000004", "10.00"), timeout=10).status_code == 200
    assert requests.get(cashier_url(alipay, "20260101000000000004", "10.00"), timeout=10).status_code == 200
    response = requests.get(cashier_url(alipay, "20260101000000000004", "9.00"), timeout=10)
    assert response.status_code == 400 and "ACQ.CONTEXT_INCONSISTENT" in response.text
    assert DevGatewayTrade.objects.get().total_amount == Decimal("10.00")


def test_expired_trade_cannot_be_paid(alipay, live_server, notify_receiver):
    url = cashier_url(alipay, "20260101000000000005", expires_in=timedelta(seconds=-1))
    page = requests.get(url, timeout=10)
    assert page.status_code == 200
    assert "expired" in page.text and pay_form_action(page.text) is None
    response = requests.post(live_server.url + "/dev/alipay/pay/20260101000000000005", timeout=10)
    assert response.status_code == 400
    assert alipay.query_trade(out_trade_no="20260101000000000005").trade_status == "TRADE_CLOSED"
    assert notify_receiver.received == []


# Paying -------------------------------------------------------------------------------------------


def test_pay_sends_a_verifiable_notify_and_a_signed_return(alipay, live_server, notify_receiver):
    response = open_and_pay(alipay, live_server, "20260101000000000010")

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == RETURN_URL
    returned = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert returned["method"] == "alipay.trade.page.pay.return"
    assert returned["total_amount"] == "199.00" and returned["out_trade_no"] == "20260101000000000010"
    assert alipay.verify_notification(returned) and alipay.is_ours(returned)

    [(path, content_type, _)] = notify_receiver.received
    assert path == "/api/v1/payments/alipay/notify"
    assert content_type.startswith("application/x-www-form-urlencoded")
    [notify] = notify_receiver.notifies()
    assert verify_notification(notify, dev_keys.gateway_public_key())
    assert not verify_notification(notify, dev_keys.app_public_key())
    assert alipay.is_ours(notify)
    assert notify["trade_status"] == "TRADE_SUCCESS" and notify["notify_type"] == "trade_status_sync"
    assert notify["total_amount"] == notify["receipt_amount"] == notify["buyer_pay_amount"] == "199.00"
    assert notify["out_trade_no"] == "20260101000000000010" and notify["subject"] == SUBJECT
    assert re.fullmatch(r"\d{28}", notify["trade_no"]) and notify["trade_no"] == returned["trade_no"]

    query = alipay.query_trade(out_trade_no="20260101000000000010")
    assert (query.trade_status, query.total_amount, query.trade_no) == (
        "TRADE_SUCCESS",
        Decimal("199.00"),
        notify["trade_no"],
    )
    assert query.is_paid

    # A second click on Pay neither pays nor notifies again.
    again = requests.post(live_server.url + "/dev/alipay/pay/20260101000000000010", allow_redirects=False, timeout=10)
    assert again.status_code == 302
    assert len(notify_receiver.received) == 1


def alipay_rule_string(params: dict[str, str]) -> str:
    """Alipay's rule for a notify, written out here rather than taken from billing.alipay.signing:
    every parameter but sign and sign_type, empty values included, sorted, k=v joined by &."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in ("sign", "sign_type"))


def test_a_notify_with_an_empty_field_is_signed_over_it(alipay, live_server, notify_receiver):
    open_and_pay(alipay, live_server, "20260101000000000012")
    trade = DevGatewayTrade.objects.get(out_trade_no="20260101000000000012")

    assert send_notify(trade, passback_params="", body="")

    [_, (_, _, body)] = notify_receiver.received
    assert b"&passback_params=&" in b"&" + body + b"&" and b"&body=&" in b"&" + body + b"&"
    notify = QueryDict(body.decode("utf-8")).dict()
    assert notify["passback_params"] == notify["body"] == ""
    assert verify_message(alipay_rule_string(notify), notify["sign"], dev_keys.gateway_public_key())
    assert alipay.verify_notification(notify) and alipay.is_ours(notify)
    # Dropping the empty field, or filling it, breaks the signature.
    assert not alipay.verify_notification({k: v for k, v in notify.items() if k != "passback_params"})
    assert not alipay.verify_notification({**notify, "passback_params": "x"})


def test_query_of_an_unknown_trade_is_none(alipay):
    assert alipay.query_trade(out_trade_no="20260101000000009999") is None


def test_query_of_a_waiting_trade(alipay):
    requests.get(cashier_url(alipay, "20260101000000000011", "0.01"), timeout=10)
    query = alipay.query_trade(out_trade_no="20260101000000000011")
    assert (query.trade_status, query.total_amount, query.is_paid) == ("WAIT_BUYER_PAY", Decimal("0.01"), False)


# Closing --------------------------------------------------------------------------------------


def test_close_before_pay_closes_and_the_trade_cannot_be_paid(alipay, live_server, notify_receiver):
    url = cashier_url(alipay, "20260101000000000020")
    assert requests.get(url, timeout=10).status_code == 200
    assert alipay.close_trade(out_trade_no="20260101000000000020") is True
    # As at Alipay, only a waiting trade can be closed: a second close is refused like a paid one.
    with pytest.raises(AlipayError) as caught:
        alipay.close_trade(out_trade_no="20260101000000000020")
    assert caught.value.sub_code == "ACQ.TRADE_STATUS_ERROR"
    assert alipay.query_trade(out_trade_no="20260101000000000020").trade_status == "TRADE_CLOSED"
    assert requests.post(live_server.url + "/dev/alipay/pay/20260101000000000020", timeout=10).status_code == 400
    page = requests.get(url, timeout=10)
    assert "closed" in page.text and pay_form_action(page.text) is None
    assert notify_receiver.received == []


def test_close_of_an_unknown_trade_is_false(alipay):
    assert alipay.close_trade(out_trade_no="20260101000000009998") is False


def test_close_after_pay_is_an_error(alipay, live_server):
    open_and_pay(alipay, live_server, "20260101000000000021")
    with pytest.raises(AlipayError) as caught:
        alipay.close_trade(out_trade_no="20260101000000000021")
    assert (caught.value.code, caught.value.sub_code) == ("40004", "ACQ.TRADE_STATUS_ERROR")
    assert alipay.query_trade(out_trade_no="20260101000000000021").trade_status == "TRADE_SUCCESS"


# Refunds --------------------------------------------------------------------------------------


def test_refund_is_idempotent_by_request_no_and_never_exceeds_the_total(alipay, live_server):
    open_and_pay(alipay, live_server, "20260101000000000030")
    no = "20260101000000000030"

    first = alipay.refund_trade(out_trade_no=no, refund_amount=Decimal("50.00"), out_request_no="R1")
    assert (first.fund_change, first.refund_fee, first.out_trade_no) == (True, Decimal("50.00"), no)
    repeat = alipay.refund_trade(out_trade_no=no, refund_amount=Decimal("50.00"), out_request_no="R1")
    assert (repeat.fund_change, repeat.refund_fee) == (False, Decimal("50.00"))
    assert DevGatewayTrade.objects.get().refunded_amount == Decimal("50.00")

    with pytest.raises(AlipayError) as caught:
        alipay.refund_trade(out_trade_no=no, refund_amount=Decimal("149.01"), out_request_no="R2")
    assert caught.value.sub_code == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"

    rest = alipay.refund_trade(out_trade_no=no, refund_amount=Decimal("149.00"), out_request_no="R3")
    assert (rest.fund_change, rest.refund_fee) == (True, Decimal("199.00"))
    trade = DevGatewayTrade.objects.get()
    assert (trade.refunded_amount, trade.refund_request_nos) == (Decimal("199.00"), ["R1", "R3"])
    # Refunded in full, the trade is closed, as at Alipay.
    assert alipay.query_trade(out_trade_no=no).trade_status == "TRADE_CLOSED"


def test_a_refund_query_finds_the_refunds_made_and_no_other(alipay, live_server):
    no = "20260101000000000031"
    open_and_pay(alipay, live_server, no)
    alipay.refund_trade(out_trade_no=no, refund_amount=Decimal("50.00"), out_request_no="R1")

    found = alipay.query_refund(out_trade_no=no, out_request_no="R1")
    assert (found.out_request_no, found.refund_amount, found.refunded) == ("R1", Decimal("50.00"), True)
    # A refund never made, or on a trade Alipay never had, is not found: it may be sent again.
    assert alipay.query_refund(out_trade_no=no, out_request_no="R2") is None
    assert alipay.query_refund(out_trade_no="20260101000000000099", out_request_no="R1") is None


def test_calls_put_common_parameters_in_the_query_and_a_non_ascii_body_verifies(alipay, live_server, monkeypatch):
    open_and_pay(alipay, live_server, "20260101000000000032")
    sent: list[tuple[str, bytes, dict]] = []
    real_post = requests.post

    def recording_post(url, data=None, headers=None, **kwargs):
        sent.append((url, data, headers))
        return real_post(url, data=data, headers=headers, **kwargs)

    monkeypatch.setattr(client_module.requests, "post", recording_post)
    reason = "部分退款：Python 入门 + 进阶 a=b&c"

    refund = alipay.refund_trade(
        out_trade_no="20260101000000000032", refund_amount=Decimal("9.90"), out_request_no="R1", refund_reason=reason
    )

    assert (refund.fund_change, refund.refund_fee) == (True, Decimal("9.90"))  # the gateway verified it
    [(url, body, headers)] = sent
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == alipay.gateway_url
    query = {k: v[0] for k, v in parse_qs(parts.query, strict_parsing=True).items()}
    assert set(query) == {"app_id", "method", "format", "charset", "sign_type", "timestamp", "version", "sign"}
    assert (query["charset"], query["method"]) == ("utf-8", "alipay.trade.refund")
    assert headers["Content-Type"] == "application/x-www-form-urlencoded;charset=utf-8"
    form = parse_qs(body.decode("ascii"), strict_parsing=True)
    assert set(form) == {"biz_content"}
    assert json.loads(form["biz_content"][0])["refund_reason"] == reason
    # One signature over both halves: moving biz_content into the query changes nothing it covers.
    assert verify_request({**query, "biz_content": form["biz_content"][0]}, dev_keys.app_public_key())


def test_refund_of_an_unpaid_or_unknown_trade_is_an_error(alipay):
    requests.get(cashier_url(alipay, "20260101000000000031"), timeout=10)
    with pytest.raises(AlipayError) as caught:
        alipay.refund_trade(out_trade_no="20260101000000000031", refund_amount=Decimal("1.00"), out_request_no="R1")
    assert caught.value.sub_code == "ACQ.TRADE_STATUS_ERROR"
    with pytest.raises(AlipayError) as caught:
        alipay.refund_trade(out_trade_no="20260101000000009997", refund_amount=Decimal("1.00"), out_request_no="R1")
    assert caught.value.sub_code == "ACQ.TRADE_NOT_EXIST"


# Signatures on the server-to-server calls ----------------------------------------------------


def test_a_tampered_answer_fails_verification(alipay, live_server, monkeypatch):
    open_and_pay(alipay, live_server, "20260101000000000040")
    real_post = requests.post

    def tampering_post(*args, **kwargs):
        response = real_post(*args, **kwargs)
        assert b'"total_amount":"199.00"' in response.content
        response._content = response.content.replace(b'"total_amount":"199.00"', b'"total_amount":"0.01"')
        return response

    monkeypatch.setattr(client_module.requests, "post", tampering_post)
    with pytest.raises(AlipaySignatureError):
        alipay.query_trade(out_trade_no="20260101000000000040")


def test_an_answer_checked_with_the_wrong_public_key_fails(alipay):
    confused = AlipayClient(
        APP_ID, alipay.app_private_key, dev_keys.app_public_key(), alipay.gateway_url, "http://n", RETURN_URL
    )
    with pytest.raises(AlipaySignatureError):
        confused.query_trade(out_trade_no="20260101000000009996")


def test_a_request_with_a_bad_signature_gets_a_signed_refusal(alipay):
    foreign_key = load_private_key(fixture_text("test_only_other_private_pkcs1.pem"))
    forger = AlipayClient(APP_ID, foreign_key, alipay.alipay_public_key, alipay.gateway_url, "http://n", RETURN_URL)
    with pytest.raises(AlipayError) as caught:
        forger.query_trade(out_trade_no="20260101000000009995")
    assert not isinstance(caught.value, AlipaySignatureError)
    assert (caught.value.code, caught.value.sub_code) == ("40002", "isv.invalid-signature")


def test_answers_have_alipays_shape(alipay):
    params = {"app_id": APP_ID, "method": "alipay.trade.query", "charset": "utf-8", "sign_type": "RSA2"}
    params.update({"timestamp": "2026-01-01 00:00:00", "version": "1.0", "biz_content": '{"out_trade_no":"x"}'})
    params["sign"] = sign(params, alipay.app_private_key)
    body = requests.post(alipay.gateway_url, data=params, timeout=10).text
    answer = json.loads(body)
    assert set(answer) == {"alipay_trade_query_response", "sign"}
    assert answer["alipay_trade_query_response"]["code"] == "40004"
    assert answer["alipay_trade_query_response"]["msg"] == "Business Failed"
    assert answer["alipay_trade_query_response"]["sub_code"] == "ACQ.TRADE_NOT_EXIST"


@NO_LIVE_SERVER
def test_unreachable_gateway_is_an_alipay_error(dev_gateway):
    dead = AlipayClient(
        APP_ID,
        dev_keys.app_private_key(),
        dev_keys.gateway_public_key(),
        "http://127.0.0.1:9/gateway.do",
        "",
        "",
        timeout=2,
    )
    with pytest.raises(AlipayError, match="could not reach"):
        dead.query_trade(out_trade_no="1")


# Helpers for other tests, keys, settings ------------------------------------------------------


@NO_LIVE_SERVER
def test_signed_notify_params_helper(dev_gateway):
    params = signed_notify_params(
        {"out_trade_no": "20260101000000000050", "total_amount": Decimal("9.90")}, subject="a+b 中文 x=y&z"
    )
    public_key = dev_keys.gateway_public_key()
    assert verify_notification(QueryDict(urlencode(params)).dict(), public_key)
    assert params["total_amount"] == "9.90" and params["app_id"] == APP_ID and params["trade_status"] == "TRADE_SUCCESS"

    waiting = signed_notify_params(
        {"out_trade_no": "1", "total_amount": "1.00"}, trade_status="WAIT_BUYER_PAY", gmt_payment=None
    )
    assert verify_notification(waiting, public_key) and "gmt_payment" not in waiting
    foreign = signed_notify_params({"out_trade_no": "1", "total_amount": "1.00"}, app_id="2021009999999999")
    assert verify_notification(foreign, public_key) and foreign["app_id"] == "2021009999999999"
    forged = signed_notify_params(
        {"out_trade_no": "1", "total_amount": "1.00"},
        private_key=load_private_key(fixture_text("test_only_other_private_pkcs1.pem")),
    )
    assert not verify_notification(forged, public_key)


@NO_LIVE_SERVER
def test_signed_params_from_a_trade(dev_gateway):
    trade = DevGatewayTrade.objects.create(
        out_trade_no="20260101000000000051",
        trade_no="2026010122001400000000000001",
        total_amount=Decimal("12.30"),
        subject=SUBJECT,
        status="TRADE_SUCCESS",
        paid_at=timezone.now(),
    )
    public_key = dev_keys.gateway_public_key()
    notify = signed_notify_params(trade)
    assert verify_notification(notify, public_key)
    assert (notify["trade_no"], notify["total_amount"], notify["subject"]) == (trade.trade_no, "12.30", SUBJECT)
    returned = signed_return_params(trade)
    assert verify_notification(returned, public_key) and returned["total_amount"] == "12.30"


@NO_LIVE_SERVER
def test_dev_keys_are_created_once_even_when_processes_race(tmp_path):
    path = tmp_path / "keys" / "alipay_private_key.pem"
    barrier = threading.Barrier(4)
    seen: list[int] = []

    def start_up() -> None:
        barrier.wait()
        dev_keys._create_key_file(path)
        seen.append(load_private_key(path.read_text()).n)

    threads = [threading.Thread(target=start_up) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1
    assert os.listdir(path.parent) == ["alipay_private_key.pem"]  # no temporary files left
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@NO_LIVE_SERVER
def test_dev_key_pairs_are_two_and_stable(dev_gateway, dev_key_dir):
    assert dev_keys.app_private_key().n != dev_keys.gateway_private_key().n
    assert dev_keys.app_public_key().n == dev_keys.app_private_key().n
    dev_keys.load_or_create_key.cache_clear()
    assert dev_keys.gateway_public_key().n == load_private_key((dev_key_dir / "alipay_private_key.pem").read_text()).n


@NO_LIVE_SERVER
def test_get_alipay_client_uses_the_dev_gateway_and_its_keys(dev_gateway):
    dev_gateway.DEV_GATEWAY_BASE_URL = "http://127.0.0.1:8123"
    client = get_alipay_client()
    assert client is get_alipay_client()
    assert client.gateway_url == "http://127.0.0.1:8123/dev/alipay/gateway.do"
    dev_gateway.DEV_GATEWAY_BASE_URL = "http://127.0.0.1:9000"  # a second process serving it
    assert get_alipay_client().gateway_url == "http://127.0.0.1:9000/dev/alipay/gateway.do"
    assert client.app_id == APP_ID and client.notify_url == settings.ALIPAY_NOTIFY_URL
    assert client.app_private_key.n == dev_keys.app_private_key().n
    assert client.alipay_public_key.n == dev_keys.gateway_public_key().n
    dev_gateway.ALIPAY_APP_ID = "2021000000000777"
    assert get_alipay_client().app_id == "2021000000000777"


@NO_LIVE_SERVER
def test_dev_gateway_is_off_when_a_real_gateway_is_configured(dev_gateway):
    dev_gateway.ALIPAY_DEV_GATEWAY = False
    assert Client().get("/dev/alipay/gateway.do?method=alipay.trade.page.pay").status_code == 404
    assert Client().post("/dev/alipay/pay/1").status_code == 404


# Certificate mode ------------------------------------------------------------------------------


@pytest.fixture
def cert_mode(dev_gateway):
    dev_gateway.ALIPAY_DEV_GATEWAY_CERT_MODE = True
    return load_certificate_mode(**dev_certs.certificate_files())


def client_like(alipay: AlipayClient, **changes) -> AlipayClient:
    fields = {
        "app_id": APP_ID,
        "app_private_key": alipay.app_private_key,
        "alipay_public_key": alipay.alipay_public_key,
        "gateway_url": alipay.gateway_url,
        "notify_url": alipay.notify_url,
        "return_url": RETURN_URL,
    }
    return AlipayClient(**{**fields, **changes})


@NO_LIVE_SERVER
def test_dev_certificates_are_alipay_shaped_and_certify_the_dev_keys(cert_mode, dev_key_dir):
    assert {p.name for p in dev_key_dir.iterdir()} >= {
        "appCertPublicKey_dev.crt",
        "alipayCertPublicKey_RSA2.crt",
        "alipayRootCert.crt",
    }
    roots = load_certificates((dev_key_dir / "alipayRootCert.crt").read_text())
    assert len(roots) == 2 and "_" not in cert_mode.sns.alipay_root_cert_sn  # the ECC root is left out
    assert len(load_certificates((dev_key_dir / "alipayCertPublicKey_RSA2.crt").read_text())) == 2
    assert cert_mode.alipay_public_key.n == dev_keys.gateway_public_key().n
    assert cert_mode.app_public_key.n == dev_keys.app_public_key().n
    assert dev_certs.certificate_sns() == cert_mode.sns
    client = get_alipay_client()
    assert client.cert_sns == cert_mode.sns


def test_certificate_mode_gateway_checks_the_sns_and_names_its_certificate(
    alipay, cert_mode, live_server, notify_receiver
):
    sns = cert_mode.sns
    alipay = client_like(alipay, alipay_public_key=cert_mode.alipay_public_key, cert_sns=sns)
    response = open_and_pay(alipay, live_server, "20260101000000000060")
    assert response.status_code == 302
    [notify] = notify_receiver.notifies()
    assert notify["alipay_cert_sn"] == sns.alipay_cert_sn
    assert verify_message(alipay_rule_string(notify), notify["sign"], cert_mode.alipay_public_key)
    assert alipay.verify_notification(notify)
    assert not alipay.verify_notification({**notify, "alipay_cert_sn": "0" * 32})
    assert alipay.query_trade(out_trade_no="20260101000000000060").is_paid

    # A client in public-key mode sends no SNs; a wrong root SN is refused too; both signed answers.
    plain = client_like(alipay)
    with pytest.raises(AlipayError) as caught:
        plain.query_trade(out_trade_no="20260101000000000060")
    assert (caught.value.code, caught.value.sub_code) == ("40002", "isv.app-cert-not-exist")
    stale_root = client_like(alipay, cert_sns=replace(sns, alipay_root_cert_sn="0" * 32))
    with pytest.raises(AlipayError) as caught:
        stale_root.close_trade(out_trade_no="20260101000000000060")
    assert caught.value.sub_code == "isv.invalid-alipay-root-cert-sn"
    other_app = client_like(alipay, cert_sns=replace(sns, app_cert_sn="1" * 32))
    page = requests.get(cashier_url(other_app, "20260101000000000061"), timeout=10)
    assert page.status_code == 400 and "isv.app-cert-not-exist" in page.text
    assert not DevGatewayTrade.objects.filter(out_trade_no="20260101000000000061").exists()

"""WECHATPAY2-SHA256-RSA2048 and AEAD_AES_256_GCM as WeChat Pay does them, pinned by known answers
computed with the wechatpayv3 SDK's own code over the test-only keys in tests/fixtures/wechatpay/
(see its README), and every field of a notify tampered with."""

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from billing.wechatpay import crypto
from billing.wechatpay.errors import Reason, WechatPayError
from billing.wechatpay.formats import compact_json, parse_rfc3339, rfc3339, to_fen, to_yuan
from billing.wechatpay.keys import load_apiv3_key, load_private_key, load_public_key
from billing.wechatpay.notify import parse_notification
from billing.wechatpay.results import H5Order, RefundNotification, TransactionNotification
from billing.wechatpay.signing import (
    answer_message,
    authorization,
    parse_authorization,
    request_message,
    sign_message,
    signed_headers,
    verify_message,
    verify_signed,
)

FIXTURES = Path(__file__).parent / "fixtures" / "wechatpay"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


MERCHANT_KEY = load_private_key(fixture_text("test_only_merchant_private_pkcs8.pem"))
MERCHANT_PUBLIC = load_public_key(fixture_text("test_only_merchant_public.pem"))
PLATFORM_KEY = load_private_key(fixture_text("test_only_platform_private_pkcs8.pem"))
PLATFORM_PUBLIC = load_public_key(fixture_text("test_only_platform_public.pem"))
OTHER_KEY = load_private_key(fixture_text("test_only_other_private_pkcs8.pem"))

MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
PUBLIC_KEY_ID = "PUB_KEY_ID_0119000001092026010100000000000001"
APIV3_KEY = b"sQ5uNzQ8a2xL7vR3tW9yB4cE6gH1jK0m"

# Known answers from wechatpayv3 (tests/fixtures/wechatpay/README.md) ---------------------------

REQUEST_BODY = (
    '{"appid":"wxd678efh567hg6787","mchid":"1900000109","description":"Python 入门 + 进阶",'
    '"out_trade_no":"20260101080000123456","time_expire":"2026-01-01T08:30:00+08:00",'
    '"notify_url":"https://shop.example.com/api/v1/payments/wechat/notify","amount":{"total":19900,"currency":"CNY"}}'
)
AUTHORIZATION = (
    'WECHATPAY2-SHA256-RSA2048 mchid="1900000109",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",'
    'signature="hq3MLjCafEWWXBQZebB/wbhbN/BCP2gHmM24MNcJq3Bs+bXT4Kbe40/af8IIDOPf0d2AW1Z2iEvyI0t+nOaafe3+66RtsOHoN'
    "habw60+ZTr5f4tCXwdpZwTUsQZ9aGIM2eUU0wIGubZKpkg2E9Hy47bVppMlTfcX8DxRhDqRNREg/SkS8UCqgMGdpbfIqD66mJlCXT8Ws4km"
    "IKoaD1FYibjkmy9Jb3tsvPU3YOtRGRKnq2G3a72FhdB3NP2orjtDpLjjxkaWVRJFbbj6Q13YggoRkvIm40gHlbjWQXBdzn92rP0Zwlu4+zY"
    'DekztF+7X6DG8WS4ORFq9iS8mIoDUHA==",timestamp="1767225600",serial_no="5157F09EFDC096DE15EBE81A47057A7232F1B8E1"'
)
AUTHORIZATION_GET = (
    'WECHATPAY2-SHA256-RSA2048 mchid="1900000109",nonce_str="2A2B2C2D2E2F30313233343536373839",'
    'signature="W5sYPFZ+XEcTihwDQCdZJCZrVhHGQS+N+UBEvnRxUk7w6tbEE9ivpDSZnVbBv7acXv3U2ppys5z+I7ZgtUCOV7jQnUxUQAAar'
    "EP12hiZVhVejUlw2Pz3BXA9egHnbu/SK0O7WueNVHHBBRsbj5NgW6ClrnW9fwPV8gY+enwFHjH+4nIahKgPx18C5lI27cHmuyQZh9+tZVCF"
    "O6TXhesfYkGPoJ7LDsailEhVRdVLOUY01u7VXZC0hkg/qrJ2JiGlhqeG+X9JujZpaHemog67QwgvUuAAqkCHHXBXVcja8wuI8FJP0MtDGYQ"
    'WMcW3BsqPsNZWpT7191MqPQEligaAng==",timestamp="1767225600",serial_no="5157F09EFDC096DE15EBE81A47057A7232F1B8E1"'
)
ANSWER_BODY = b'{"code_url":"weixin://wxpay/bizpayurl?pr=p4lpSuKzz"}'
ANSWER_SIGNATURE = (
    "n1k/2TDIK6/eEsclaLXWbinyII7iC9ay/nhp9a36uGSe7WQCiIgI1HQOuFL3fw8aggVIovBJjZMNHnHY3Wz8NAmAY3HpsgCgpzgFKpwdB1uH"
    "YxfEEbYZ3cfnaPdU9yOaJ7sxK8n20ITAbhY7IziNCJBE/pDRsgenFt2ICll0iI8u0f5fR5zPm3YGt0zu5FR/HaTcKHWjBXTjoJEBLyxL/dYQs"
    "eafhzAay/nQnLx0O+OBmbDdca7Oa5aAokGiMgd3pjlJ/oR9fmgi+iPTqeJjvDObYrlKj1JpRTJ142ANzQHg54Z4X+j4Dl6SHA3XLtzgXRJ1p"
    "FEMIEHnsoSe5mfBag=="
)
EMPTY_ANSWER_SIGNATURE = (
    "TzpYbNs+Qm6oY4+begijb9+D5kPAlmxCv5TJ1tlg2Gv4jcNKDjPjb8cOlGx8CrNeflmCrxfEa2z6bwrj5MwY6gfDncfvrOKyiSFMMRB1FSlY"
    "23j6FKct2fls/LQvCh6Fnzcu7ErOibPF3sFQocZ7colvP94lWaHuBm4DJSn0JEkR9c3uHA6BRMkK/+gOM6PWXa+fwXLla9S7nCzuei/gb4N3"
    "nv1swxMVWCpX9+dt9u2pznJt5iknhF18T2P/T0YeflbhAUw59eOQkXO0Lh01y5zX5k0jR8wZsld5Yndd4s9SsGi6J/zCcu7huJlWmgdpSSrb"
    "EpxuBmNYmYkmxHYY2A=="
)
TRANSACTION_PLAINTEXT = (
    '{"mchid":"1900000109","appid":"wxd678efh567hg6787","out_trade_no":"20260101080000123456",'
    '"transaction_id":"4200000000202601010000000001","trade_type":"NATIVE","trade_state":"SUCCESS",'
    '"trade_state_desc":"支付成功","bank_type":"OTHERS","attach":"","success_time":"2026-01-01T08:05:00+08:00",'
    '"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},'
    '"amount":{"total":19900,"payer_total":19900,"currency":"CNY","payer_currency":"CNY"}}'
)
TRANSACTION_CIPHERTEXT = (
    "G+qUEdlivgCKCErkc1wvSYnut1s3eeZ0jUzIefYfhpeAkj0KoI4qFocnZZkssV3aWOvNjp1hHStlMszq2sKEl7SSAcYyqg1CSXNqiVn0AdUC"
    "L2GLPffAUELpZWHbKA/qPo/U1AC/UK1sCeSVfqqBEv72Fjh06TjZQMwCybqmewvRmuDP7n3mvA2HOHtJMjjOpo8lwWklxQJFhXZOd6TcBDqX"
    "6afn2/jas5KiXodKMXj8B+RWpLEWjJPll5lOu91jl6/ygYKwat6YzATvrH8Ikd9h8muzeH8kJxwoQy7ZBSo+tr8RMUlRVZCwQmicNDmnbrTH"
    "P7j9VNIeGFGGxtyFI7xonupEOTrpaXUBuyNxMio+Nc0wZANth7LHv+V1oKouoHV+tVkKeGTegmTp8593q5kozKGBBoMUIHQ8+yxMMIyssKaC"
    "4Av+o/uofG7ghpB/Zrh2NuQpT4eI9OXRaRroSnpQvLfsDrbAm9HxO1Jw/CaJRnnesoJmlSZioTpz5HRc/GQ9WZNTS0C/iqe+6UB0NB2/ObMt"
    "DmAmEjD3i3exfX/xKm3SgkqPXr9tjQC2MiNqIsCtdPLyOl/svLgs"
)
NOTIFY_BODY = (
    '{"id":"EV-2026010108050000001","create_time":"2026-01-01T08:05:01+08:00","resource_type":"encrypt-resource",'
    '"event_type":"TRANSACTION.SUCCESS","summary":"支付成功","resource":{"original_type":"transaction",'
    f'"algorithm":"AEAD_AES_256_GCM","ciphertext":"{TRANSACTION_CIPHERTEXT}","associated_data":"transaction",'
    '"nonce":"3a5b8c1d9e0f"}}'
).encode()
NOTIFY_TIMESTAMP = 1767225901
NOTIFY_HEADERS = {
    "Wechatpay-Signature": (
        "KPYCg68fBYntm+uI5i9Y+aCQ+wlamWISBsiiGNSfxs6vim8Pf2MNssbmuO4j3b9aH33QOBnhelz5lyI4rttAuTreE7AtXeZBbAWi7M1UDW"
        "BVm1Q6tJV/KKkF0fNvJjBXwlwiz1qC7nFruyeyAFC90XFeKnOMSG3fzmm0FcGAjXgaPpflOmuE+yTWJhChSeBzbh2/X+svYJAV1isgbedX"
        "/eWc0EXkvkg0MIBrRsv4jeKfaoP6GChASHGIH/Jc0mb8URVkBxomKKiF5BOZ38KEsHU+nUg5UaP7QvOC6qSq7xz+xIBSqslsqlXqeBHowT"
        "6KIZBsrYqgYy/E5HeEsOTdqQ=="
    ),
    "Wechatpay-Timestamp": str(NOTIFY_TIMESTAMP),
    "Wechatpay-Nonce": "7A6B5C4D3E2F10011223344556677889",
    "Wechatpay-Serial": PUBLIC_KEY_ID,
    "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
}


def parse(headers: dict[str, str], body: bytes, *, now: float = NOTIFY_TIMESTAMP, apiv3_key: bytes = APIV3_KEY):
    return parse_notification(
        headers=headers,
        body=body,
        mchid=MCHID,
        appid=APPID,
        apiv3_key=apiv3_key,
        public_key=PLATFORM_PUBLIC,
        public_key_id=PUBLIC_KEY_ID,
        now=now,
    )


def refused(reason: Reason, headers: dict[str, str], body: bytes, **kwargs) -> None:
    with pytest.raises(WechatPayError) as caught:
        parse(headers, body, **kwargs)
    assert caught.value.reason == reason, caught.value


def changed(text: str, index: int) -> str:
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


def envelope(plaintext: dict, *, event_type: str = "TRANSACTION.SUCCESS", associated_data: str = "transaction") -> dict:
    """A notify body as WeChat Pay builds it, encrypted with the test APIv3 key."""
    return {
        "id": "EV-2026010108050000002",
        "create_time": "2026-01-01T08:05:01+08:00",
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "支付成功",
        "resource": {
            "original_type": associated_data,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": crypto.encrypt(
                apiv3_key=APIV3_KEY,
                nonce="0a1b2c3d4e5f",
                associated_data=associated_data,
                plaintext=compact_json(plaintext).encode(),
            ),
            "associated_data": associated_data,
            "nonce": "0a1b2c3d4e5f",
        },
    }


def signed(body: dict | bytes, *, timestamp: int = NOTIFY_TIMESTAMP, key=PLATFORM_KEY) -> tuple[dict[str, str], bytes]:
    raw = body if isinstance(body, bytes) else compact_json(body).encode()
    return signed_headers(body=raw, private_key=key, public_key_id=PUBLIC_KEY_ID, timestamp=timestamp), raw


def transaction(**changes) -> dict:
    return {**json.loads(TRANSACTION_PLAINTEXT), **changes}


# Requests --------------------------------------------------------------------------------------


def test_request_authorization_matches_the_sdk():
    header = authorization(
        mchid=MCHID,
        serial_no=SERIAL,
        private_key=MERCHANT_KEY,
        method="POST",
        url="/v3/pay/transactions/native",
        body=REQUEST_BODY.encode("utf-8"),
        timestamp=1767225600,
        nonce="593BEC0C930BF1AFEB40B4A08C8FB242",
    )
    assert header == AUTHORIZATION


def test_get_authorization_signs_the_query_and_an_empty_body():
    url = "/v3/pay/transactions/out-trade-no/20260101080000123456?mchid=1900000109"
    header = authorization(
        mchid=MCHID,
        serial_no=SERIAL,
        private_key=MERCHANT_KEY,
        method="GET",
        url=url,
        body=b"",
        timestamp=1767225600,
        nonce="2A2B2C2D2E2F30313233343536373839",
    )
    assert header == AUTHORIZATION_GET
    fields = parse_authorization(header)
    message = request_message(method="GET", url=url, timestamp="1767225600", nonce=fields["nonce_str"], body=b"")
    assert message.endswith(b"2A2B2C2D2E2F30313233343536373839\n\n")
    assert verify_message(message, fields["signature"], MERCHANT_PUBLIC)
    assert not verify_message(message.replace(b"?mchid=1900000109", b""), fields["signature"], MERCHANT_PUBLIC)


def test_parse_authorization_reads_the_five_fields():
    fields = parse_authorization(AUTHORIZATION)
    assert fields["mchid"] == MCHID and fields["serial_no"] == SERIAL and fields["timestamp"] == "1767225600"
    assert verify_message(
        request_message(
            method="POST",
            url="/v3/pay/transactions/native",
            timestamp=fields["timestamp"],
            nonce=fields["nonce_str"],
            body=REQUEST_BODY.encode(),
        ),
        fields["signature"],
        MERCHANT_PUBLIC,
    )


@pytest.mark.parametrize(
    "header",
    [
        "",
        AUTHORIZATION.replace("WECHATPAY2-SHA256-RSA2048", "WECHATPAY2-SM2-WITH-SM3"),
        AUTHORIZATION.replace(',serial_no="5157F09EFDC096DE15EBE81A47057A7232F1B8E1"', ""),
        AUTHORIZATION + ',mchid="1900000110"',
        AUTHORIZATION + ",",
        AUTHORIZATION.replace('",', '", '),
        AUTHORIZATION.replace('mchid="1900000109"', 'mchid=""'),
        AUTHORIZATION + ',extra="x"',
    ],
)
def test_parse_authorization_refuses_anything_else(header):
    with pytest.raises(ValueError):
        parse_authorization(header)


# Answers ---------------------------------------------------------------------------------------


def answer_headers(signature: str, timestamp: str, nonce: str) -> dict[str, str]:
    return {
        "Wechatpay-Signature": signature,
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Serial": PUBLIC_KEY_ID,
    }


def test_answer_signatures_match_the_sdk():
    nonce = "c5ac7061fccab6bf3e254dcf98995b8c"
    message = answer_message(timestamp="1767225601", nonce=nonce, body=ANSWER_BODY)
    assert sign_message(message, PLATFORM_KEY) == ANSWER_SIGNATURE
    verify_signed(
        headers=answer_headers(ANSWER_SIGNATURE, "1767225601", nonce),
        body=ANSWER_BODY,
        public_key=PLATFORM_PUBLIC,
        public_key_id=PUBLIC_KEY_ID,
        now=1767225601,
    )


def test_an_empty_answer_signs_an_empty_last_line():
    nonce = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    assert answer_message(timestamp="1767225602", nonce=nonce, body=b"") == f"1767225602\n{nonce}\n\n".encode()
    assert sign_message(answer_message(timestamp="1767225602", nonce=nonce, body=b""), PLATFORM_KEY) == (
        EMPTY_ANSWER_SIGNATURE
    )
    verify_signed(
        headers=answer_headers(EMPTY_ANSWER_SIGNATURE, "1767225602", nonce),
        body=b"",
        public_key=PLATFORM_PUBLIC,
        public_key_id=PUBLIC_KEY_ID,
        now=1767225700,
    )


def test_headers_are_found_in_any_case():
    headers = {k.lower(): v for k, v in NOTIFY_HEADERS.items()}
    assert isinstance(parse(headers, NOTIFY_BODY), TransactionNotification)


# AES-GCM ---------------------------------------------------------------------------------------


def test_decryption_matches_the_sdk():
    plaintext = crypto.decrypt(
        apiv3_key=APIV3_KEY, nonce="3a5b8c1d9e0f", associated_data="transaction", ciphertext=TRANSACTION_CIPHERTEXT
    )
    assert plaintext.decode("utf-8") == TRANSACTION_PLAINTEXT
    assert (
        crypto.encrypt(
            apiv3_key=APIV3_KEY,
            nonce="3a5b8c1d9e0f",
            associated_data="transaction",
            plaintext=TRANSACTION_PLAINTEXT.encode("utf-8"),
        )
        == TRANSACTION_CIPHERTEXT
    )


def test_any_changed_character_of_the_ciphertext_fails():
    for index in range(len(TRANSACTION_CIPHERTEXT)):
        with pytest.raises(WechatPayError) as caught:
            crypto.decrypt(
                apiv3_key=APIV3_KEY,
                nonce="3a5b8c1d9e0f",
                associated_data="transaction",
                ciphertext=changed(TRANSACTION_CIPHERTEXT, index),
            )
        assert caught.value.reason == Reason.UNDECRYPTABLE, index


@pytest.mark.parametrize(
    "change",
    [
        {"nonce": "3a5b8c1d9e0e"},
        {"associated_data": "refund"},
        {"associated_data": ""},
        {"apiv3_key": b"sQ5uNzQ8a2xL7vR3tW9yB4cE6gH1jK0n"},
        {"ciphertext": base64.b64encode(base64.b64decode(TRANSACTION_CIPHERTEXT)[:-1] + b"\x00").decode()},
        {"ciphertext": base64.b64encode(base64.b64decode(TRANSACTION_CIPHERTEXT)[:-16]).decode()},
        {"ciphertext": base64.b64encode(b"\x00" * 16).decode()},
        {"ciphertext": ""},
        {"ciphertext": None},
        {"nonce": None},
    ],
)
def test_every_other_input_of_the_decryption_matters(change):
    inputs = {
        "apiv3_key": APIV3_KEY,
        "nonce": "3a5b8c1d9e0f",
        "associated_data": "transaction",
        "ciphertext": TRANSACTION_CIPHERTEXT,
    }
    with pytest.raises(WechatPayError) as caught:
        crypto.decrypt(**{**inputs, **change})
    assert caught.value.reason == Reason.UNDECRYPTABLE


# A whole notify --------------------------------------------------------------------------------


def test_the_sdk_built_notify_parses():
    notify = parse(NOTIFY_HEADERS, NOTIFY_BODY)
    assert notify == TransactionNotification(
        event_id="EV-2026010108050000001",
        event_type="TRANSACTION.SUCCESS",
        out_trade_no="20260101080000123456",
        transaction_id="4200000000202601010000000001",
        trade_state="SUCCESS",
        total_fen=19900,
        success_time=datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
    )
    assert notify.is_paid and notify.total_amount == Decimal("199.00")


def test_any_changed_character_of_the_signature_fails():
    signature = NOTIFY_HEADERS["Wechatpay-Signature"]
    for index in range(len(signature)):
        refused(Reason.BAD_SIGNATURE, {**NOTIFY_HEADERS, "Wechatpay-Signature": changed(signature, index)}, NOTIFY_BODY)


def test_any_changed_byte_of_the_body_fails():
    for index in range(len(NOTIFY_BODY)):
        body = NOTIFY_BODY[:index] + bytes([NOTIFY_BODY[index] ^ 0x01]) + NOTIFY_BODY[index + 1 :]
        refused(Reason.BAD_SIGNATURE, NOTIFY_HEADERS, body)
    refused(Reason.BAD_SIGNATURE, NOTIFY_HEADERS, NOTIFY_BODY + b" ")
    refused(Reason.BAD_SIGNATURE, NOTIFY_HEADERS, json.dumps(json.loads(NOTIFY_BODY)).encode())


def test_a_changed_nonce_or_timestamp_header_fails():
    refused(
        Reason.BAD_SIGNATURE, {**NOTIFY_HEADERS, "Wechatpay-Nonce": "7A6B5C4D3E2F10011223344556677880"}, NOTIFY_BODY
    )
    refused(Reason.BAD_SIGNATURE, {**NOTIFY_HEADERS, "Wechatpay-Timestamp": str(NOTIFY_TIMESTAMP + 1)}, NOTIFY_BODY)


def test_another_serial_is_refused_before_the_signature_is_checked():
    refused(Reason.WRONG_SERIAL, {**NOTIFY_HEADERS, "Wechatpay-Serial": PUBLIC_KEY_ID + "0"}, NOTIFY_BODY)
    # The serial is not signed: a certificate-mode serial on our notify is still the wrong key.
    refused(Reason.WRONG_SERIAL, {**NOTIFY_HEADERS, "Wechatpay-Serial": SERIAL}, NOTIFY_BODY)


@pytest.mark.parametrize("name", list(NOTIFY_HEADERS)[:4])
def test_a_missing_or_empty_signature_header_is_unsigned(name):
    refused(Reason.UNSIGNED, {k: v for k, v in NOTIFY_HEADERS.items() if k != name}, NOTIFY_BODY)
    refused(Reason.UNSIGNED, {**NOTIFY_HEADERS, name: ""}, NOTIFY_BODY)


def test_another_signature_type_is_refused():
    refused(
        Reason.BAD_SIGNATURE, {**NOTIFY_HEADERS, "Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"}, NOTIFY_BODY
    )


@pytest.mark.parametrize("offset", [-301, 301, -86400, 86400])
def test_a_timestamp_more_than_five_minutes_off_is_refused(offset):
    headers, body = signed(NOTIFY_BODY, timestamp=NOTIFY_TIMESTAMP + offset)
    refused(Reason.STALE_TIMESTAMP, headers, body)


@pytest.mark.parametrize("offset", [-300, -299, 299, 300])
def test_a_timestamp_within_five_minutes_is_accepted(offset):
    headers, body = signed(NOTIFY_BODY, timestamp=NOTIFY_TIMESTAMP + offset)
    assert parse(headers, body).out_trade_no == "20260101080000123456"


@pytest.mark.parametrize("timestamp", ["", "abc", "1767225901.5", "-1767225901", " 1767225901", "１７６７２２５９０１"])
def test_a_timestamp_that_is_no_number_is_refused(timestamp):
    with pytest.raises(WechatPayError) as caught:
        parse({**NOTIFY_HEADERS, "Wechatpay-Timestamp": timestamp}, NOTIFY_BODY)
    assert caught.value.reason in {Reason.UNSIGNED, Reason.STALE_TIMESTAMP}


def test_a_notify_signed_with_another_key_fails():
    headers, body = signed(NOTIFY_BODY, key=OTHER_KEY)
    refused(Reason.BAD_SIGNATURE, headers, body)
    headers, body = signed(NOTIFY_BODY, key=MERCHANT_KEY)  # our own key is not WeChat Pay's
    refused(Reason.BAD_SIGNATURE, headers, body)


def test_a_validly_signed_notify_with_a_tampered_ciphertext_or_tag_is_undecryptable():
    raw = base64.b64decode(TRANSACTION_CIPHERTEXT)
    for sealed in (bytes([raw[0] ^ 1]) + raw[1:], raw[:-1] + bytes([raw[-1] ^ 1]), raw[:-16] + raw[-15:] + b"\0"):
        body = json.loads(NOTIFY_BODY)
        body["resource"]["ciphertext"] = base64.b64encode(sealed).decode()
        refused(Reason.UNDECRYPTABLE, *signed(body))


@pytest.mark.parametrize(
    "change",
    [
        {"associated_data": "refund"},
        {"associated_data": ""},
        {"nonce": "3a5b8c1d9e0e"},
        {"nonce": ""},
        {"ciphertext": 1},
    ],
)
def test_a_validly_signed_notify_with_other_resource_inputs_is_undecryptable(change):
    body = json.loads(NOTIFY_BODY)
    body["resource"].update(change)
    refused(Reason.UNDECRYPTABLE, *signed(body))


def test_a_notify_under_another_apiv3_key_is_undecryptable():
    refused(Reason.UNDECRYPTABLE, NOTIFY_HEADERS, NOTIFY_BODY, apiv3_key=b"0" * 32)


def test_an_unknown_algorithm_or_a_plain_resource_is_refused():
    body = json.loads(NOTIFY_BODY)
    body["resource"]["algorithm"] = "AEAD_SM4_GCM"
    refused(Reason.UNDECRYPTABLE, *signed(body))
    body = json.loads(NOTIFY_BODY)
    body["resource_type"] = "plain"
    refused(Reason.MALFORMED, *signed(body))


@pytest.mark.parametrize("change", [{"mchid": "1900000110"}, {"appid": "wx0000000000000000"}, {"mchid": None}])
def test_a_notify_for_another_merchant_or_app_is_not_ours(change):
    refused(Reason.NOT_OURS, *signed(envelope(transaction(**change))))


@pytest.mark.parametrize("total", [19899, 19901])
def test_amounts_come_out_exact_to_the_fen(total):
    notify = parse(*signed(envelope(transaction(amount={"total": total, "currency": "CNY"}))))
    assert notify.total_fen == total
    assert notify.total_amount != Decimal("199.00")
    assert abs(notify.total_amount - Decimal("199.00")) == Decimal("0.01")


@pytest.mark.parametrize(
    "amount",
    [{"total": "19900"}, {"total": 199.0}, {"total": True}, {"total": -1}, {}, {"total": 1, "currency": "USD"}],
)
def test_an_amount_that_is_no_whole_fen_in_cny_is_malformed(amount):
    refused(Reason.MALFORMED, *signed(envelope(transaction(amount=amount))))


def test_an_unpaid_trade_state_is_reported_not_paid():
    notify = parse(*signed(envelope(transaction(trade_state="PAYERROR"))))
    assert not notify.is_paid and notify.trade_state == "PAYERROR"


def refund_resource(**changes) -> dict:
    return {
        "mchid": MCHID,
        "out_trade_no": "20260101080000123456",
        "transaction_id": "4200000000202601010000000001",
        "out_refund_no": "R20260101080000123456",
        "refund_id": "50000000382019052709732678859",
        "refund_status": "SUCCESS",
        "success_time": "2026-01-02T10:00:00+08:00",
        "user_received_account": "支付用户零钱",
        "amount": {"total": 19900, "refund": 5000, "payer_total": 19900, "payer_refund": 5000},
        **changes,
    }


@pytest.mark.parametrize("status", ["SUCCESS", "ABNORMAL", "CLOSED"])
def test_refund_notifies_parse(status):
    body = envelope(refund_resource(refund_status=status), event_type=f"REFUND.{status}", associated_data="refund")
    notify = parse(*signed(body))
    assert isinstance(notify, RefundNotification)
    assert (notify.event_type, notify.refund_status, notify.out_refund_no) == (
        f"REFUND.{status}",
        status,
        "R20260101080000123456",
    )
    assert (notify.refund_fen, notify.total_fen, notify.refund_amount) == (5000, 19900, Decimal("50.00"))


def test_a_refund_notify_for_another_merchant_is_not_ours():
    body = envelope(refund_resource(mchid="1900000110"), event_type="REFUND.SUCCESS", associated_data="refund")
    refused(Reason.NOT_OURS, *signed(body))


def test_an_unknown_event_type_is_malformed():
    refused(Reason.MALFORMED, *signed(envelope(transaction(), event_type="TRANSACTION.CLOSED")))


@pytest.mark.parametrize("body", [b"", b"[]", b"not json", b"\xff\xfe", b'{"event_type":"TRANSACTION.SUCCESS"}'])
def test_validly_signed_garbage_is_malformed(body):
    refused(Reason.MALFORMED, *signed(body))


# Formats ---------------------------------------------------------------------------------------


def test_yuan_to_fen_is_exact_and_refuses_sub_fen_amounts():
    assert to_fen(Decimal("199.00")) == 19900
    assert to_fen(Decimal("0.01")) == 1
    assert to_fen(Decimal("199")) == 19900
    assert to_fen(Decimal("1.10")) == 110 and to_fen(Decimal("1.1")) == 110
    assert to_fen(Decimal("12345678.99")) == 1234567899
    for amount in [Decimal("1.005"), Decimal("0.001"), Decimal("-0.01"), Decimal("NaN"), Decimal("Infinity")]:
        with pytest.raises(ValueError):
            to_fen(amount)
    for amount in [1.5, 199, "199.00", None]:
        with pytest.raises(ValueError):
            to_fen(amount)  # type: ignore[arg-type]


def test_fen_to_yuan_is_exact():
    assert to_yuan(19901) == Decimal("199.01") and str(to_yuan(19901)) == "199.01"
    assert to_yuan(1) == Decimal("0.01") and str(to_yuan(0)) == "0.00"
    for fen in [-1, 1.0, "1", True, None]:
        with pytest.raises(ValueError):
            to_yuan(fen)  # type: ignore[arg-type]


def test_times_are_rfc3339_in_beijing_time():
    assert rfc3339(datetime(2026, 1, 1, 0, 30, tzinfo=UTC)) == "2026-01-01T08:30:00+08:00"
    assert rfc3339(datetime(2026, 1, 1, 16, 30, 59, 999999, tzinfo=UTC)) == "2026-01-02T00:30:59+08:00"
    with pytest.raises(ValueError):
        rfc3339(datetime(2026, 1, 1, 0, 30))
    assert parse_rfc3339("2026-01-01T08:30:00+08:00") == datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    for text in ["2026-01-01T08:30:00", "tomorrow", None, 1767225600]:
        with pytest.raises(ValueError):
            parse_rfc3339(text)


def test_h5_url_returning_to_appends_the_encoded_redirect_url():
    order = H5Order(out_trade_no="x", h5_url="https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx1")
    assert order.url_returning_to("https://shop.example.com/orders/1?paid=1") == (
        "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx1"
        "&redirect_url=https%3A%2F%2Fshop.example.com%2Forders%2F1%3Fpaid%3D1"
    )


# Keys ------------------------------------------------------------------------------------------


def test_keys_load_in_the_forms_the_merchant_platform_hands_out():
    pem = fixture_text("test_only_merchant_private_pkcs8.pem")
    bare = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    assert load_private_key(bare).n == MERCHANT_KEY.n  # the bare base64 some consoles show
    assert load_private_key(MERCHANT_KEY.export_key(format="PEM", pkcs=1).decode()).n == MERCHANT_KEY.n
    assert load_public_key(fixture_text("test_only_platform_public.pem")).n == PLATFORM_KEY.n


@pytest.mark.parametrize(
    "load, text",
    [
        (load_private_key, fixture_text("test_only_merchant_public.pem")),
        (load_public_key, fixture_text("test_only_platform_private_pkcs8.pem")),
        (load_private_key, ""),
        (load_public_key, "not a key"),
        (load_apiv3_key, "short"),
        (load_apiv3_key, "x" * 33),
        (load_apiv3_key, "密钥" * 8),  # 16 characters, 48 bytes
    ],
)
def test_wrong_keys_are_a_configuration_error(load, text):
    with pytest.raises(WechatPayError) as caught:
        load(text)
    assert caught.value.reason == Reason.MISCONFIGURED

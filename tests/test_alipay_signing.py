"""RSA2 signing as Alipay does it, pinned by known answers computed with OpenSSL
(`openssl dgst -sha256 -sign`) over the test-only keys in tests/fixtures/alipay/."""

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.http import QueryDict

from billing.alipay.client import AlipayClient
from billing.alipay.errors import AlipayError, AlipayKeyError, AlipaySignatureError
from billing.alipay.formats import beijing_time, compact_json, format_amount, parse_amount
from billing.alipay.keys import load_private_key, load_public_key
from billing.alipay.signing import (
    notification_string,
    sign,
    sign_message,
    sign_notification,
    signing_string,
    verify_notification,
    verify_request,
    verify_response,
)

FIXTURES = Path(__file__).parent / "fixtures" / "alipay"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


PRIVATE_KEY = load_private_key(fixture_text("test_only_app_private_pkcs1.pem"))
PUBLIC_KEY = load_public_key(fixture_text("test_only_app_public_spki.pem"))
OTHER_KEY = load_private_key(fixture_text("test_only_other_private_pkcs1.pem"))

REQUEST = {
    "app_id": "2021000000000000",
    "method": "alipay.trade.page.pay",
    "format": "JSON",
    "charset": "utf-8",
    "sign_type": "RSA2",
    "timestamp": "2026-01-02 03:04:05",
    "version": "1.0",
    "notify_url": "https://shop.example.com/api/v1/payments/alipay/notify",
    "return_url": "https://shop.example.com/api/v1/payments/alipay/return",
    "biz_content": '{"out_trade_no":"20260102030405123456","total_amount":"199.00","subject":"Python 入门 + 进阶",'
    '"product_code":"FAST_INSTANT_TRADE_PAY","time_expire":"2026-01-02 03:34:05"}',
    "goods_type": "",
}
REQUEST_STRING = (
    "app_id=2021000000000000"
    '&biz_content={"out_trade_no":"20260102030405123456","total_amount":"199.00","subject":"Python 入门 + 进阶",'
    '"product_code":"FAST_INSTANT_TRADE_PAY","time_expire":"2026-01-02 03:34:05"}'
    "&charset=utf-8&format=JSON&method=alipay.trade.page.pay"
    "&notify_url=https://shop.example.com/api/v1/payments/alipay/notify"
    "&return_url=https://shop.example.com/api/v1/payments/alipay/return"
    "&sign_type=RSA2&timestamp=2026-01-02 03:04:05&version=1.0"
)
# printf '%s' "$REQUEST_STRING" | openssl dgst -sha256 -sign test_only_app_private_pkcs8.pem | base64 -w0
REQUEST_SIGNATURE = (
    "V1IDvIo+2TbSDd4qgh3oKkyX4H4gFzLG9so3Tt/s9TalQdrvnVYqNkzy+L/mx38xpaL5FeOj6bKsh293RL+CDSLReERBzxjU/oY7/pmAIF"
    "qhtLFwFoSdoAouC8VMINS8wis8Mh4ZToUYuM7hq6qb/x3siwizlPSc431Qay9R6/qG06jQEUMzNe0g6qnKaIpayG8/jUra4e8QPiiAADkc"
    "rXgU5RpH6rz8/Db4WorC5kF83/lJ2YpWlaeIv9l7160ddVkcdkjsG4b2RPuEyHLky258tr6b5T+NhueAl18J+okSsPvK+G5LeVgkrfIc3i"
    "I4EH7m3/w9/tz+izb3dhASTQ=="
)


def real_notify() -> dict[str, str]:
    """A notify shaped like Alipay's, with the characters that break naive code in its values."""
    return {
        "gmt_create": "2026-01-02 03:04:10",
        "charset": "utf-8",
        "seller_email": "shop+alipay@example.com",
        "subject": "Python 入门 + 进阶 a=b&c=d 100%",
        "sign_type": "RSA2",
        "buyer_id": "2088102177846880",
        "invoice_amount": "199.00",
        "notify_id": "2026010200222030411046881430563821",
        "fund_bill_list": '[{"amount":"199.00","fundChannel":"ALIPAYACCOUNT"}]',
        "notify_type": "trade_status_sync",
        "trade_status": "TRADE_SUCCESS",
        "receipt_amount": "199.00",
        "app_id": "2021000000000000",
        "buyer_pay_amount": "199.00",
        "notify_time": "2026-01-02 03:04:11",
        "point_amount": "0.00",
        "total_amount": "199.00",
        "trade_no": "2026010222001446881430563821",
        "auth_app_id": "2021000000000000",
        "buyer_logon_id": "abc***@example.com",
        "gmt_payment": "2026-01-02 03:04:11",
        "out_trade_no": "20260102030405123456",
        "seller_id": "2088102177000000",
        "version": "1.0",
        "body": "",
    }


def signed_notify() -> dict[str, str]:
    params = real_notify()
    params["sign"] = sign_notification(params, PRIVATE_KEY)
    return params


# Known answers ---------------------------------------------------------------------------------


def test_signing_string_sorts_keeps_sign_type_and_drops_sign_and_empty_values():
    assert signing_string({**REQUEST, "sign": "whatever"}) == REQUEST_STRING


def test_request_signature_matches_openssl():
    assert sign(REQUEST, PRIVATE_KEY) == REQUEST_SIGNATURE
    # PKCS#1 v1.5 is deterministic, so the same key in PKCS#8 form gives the very same string.
    assert sign(REQUEST, load_private_key(fixture_text("test_only_app_private_pkcs8.pem"))) == REQUEST_SIGNATURE
    assert verify_request({**REQUEST, "sign": REQUEST_SIGNATURE}, PUBLIC_KEY)


def test_request_signature_covers_sign_type():
    assert verify_request({**REQUEST, "sign": REQUEST_SIGNATURE}, PUBLIC_KEY)
    assert not verify_request({**REQUEST, "sign_type": "RSA", "sign": REQUEST_SIGNATURE}, PUBLIC_KEY)
    without_sign_type = {k: v for k, v in REQUEST.items() if k != "sign_type"}
    assert sign(without_sign_type, PRIVATE_KEY) != REQUEST_SIGNATURE


def test_notification_verification_ignores_sign_type():
    params = signed_notify()
    assert verify_notification(params, PUBLIC_KEY)
    assert verify_notification({**params, "sign_type": "RSA"}, PUBLIC_KEY)
    assert verify_notification({k: v for k, v in params.items() if k != "sign_type"}, PUBLIC_KEY)
    # A notify signed the request way (sign_type included) is not what Alipay sends: it fails.
    request_signed = {**real_notify(), "sign": sign(real_notify(), PRIVATE_KEY)}
    assert not verify_notification(request_signed, PUBLIC_KEY)


# A real-format notify ------------------------------------------------------------------------


def test_notify_verifies_after_a_form_round_trip():
    # What the notify view sees: the form body Alipay POSTs, decoded once by Django.
    body = urlencode(signed_notify())
    received = QueryDict(body).dict()
    assert received["subject"] == "Python 入门 + 进阶 a=b&c=d 100%"
    assert verify_notification(received, PUBLIC_KEY)


def test_notify_decoded_twice_or_not_at_all_fails():
    body = urlencode(signed_notify())
    raw_pairs = dict(pair.split("=", 1) for pair in body.split("&"))
    assert not verify_notification(raw_pairs, PUBLIC_KEY)
    # A `+` read as a space (a second decoding) breaks the subject.
    once = QueryDict(body).dict()
    twice = {k: v.replace("+", " ") for k, v in once.items()}
    assert not verify_notification(twice, PUBLIC_KEY)


def changed(text: str, index: int) -> str:
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


def test_changing_any_character_of_any_value_fails():
    params = signed_notify()
    checked = 0
    for key, value in params.items():
        if key in {"sign", "sign_type"}:
            continue
        for index in range(len(value)):
            assert not verify_notification({**params, key: changed(value, index)}, PUBLIC_KEY), (key, index)
            checked += 1
    assert checked == sum(len(v) for k, v in params.items() if k not in {"sign", "sign_type"}) > 300


def test_changing_any_character_of_the_signature_fails():
    params = signed_notify()
    signature = params["sign"]
    for index in range(len(signature)):
        assert not verify_notification({**params, "sign": changed(signature, index)}, PUBLIC_KEY), index


def test_adding_or_removing_a_field_fails():
    params = signed_notify()
    assert not verify_notification({**params, "refund_fee": "199.00"}, PUBLIC_KEY)
    assert not verify_notification({k: v for k, v in params.items() if k != "seller_id"}, PUBLIC_KEY)
    # A notify's empty values are signed too (`k=`), so an empty field added or dropped fails.
    assert not verify_notification({**params, "passback_params": ""}, PUBLIC_KEY)
    assert params["body"] == ""
    assert not verify_notification({k: v for k, v in params.items() if k != "body"}, PUBLIC_KEY)


def test_a_notify_signature_covers_its_empty_values():
    # Alipay's string for a notify keeps `body=`; a request's string leaves empty values out.
    params = real_notify()
    assert "&body=&" in notification_string(params)
    assert "goods_type" not in signing_string(REQUEST)
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in ("sign", "sign_type"))
    assert verify_notification({**params, "sign": sign_message(message, PRIVATE_KEY)}, PUBLIC_KEY)


@pytest.mark.parametrize(
    "signature",
    [None, "", "   ", "not base64 at all!", "QUJD", 12345, ["a"], "=" * 8],
)
def test_garbage_signatures_are_false_never_errors(signature):
    params = {**real_notify(), "sign": signature}
    assert verify_notification(params, PUBLIC_KEY) is False


def test_missing_sign_is_false():
    assert verify_notification(real_notify(), PUBLIC_KEY) is False
    assert verify_notification({}, PUBLIC_KEY) is False


def test_non_canonical_base64_of_the_right_signature_is_refused():
    params = signed_notify()
    raw = base64.b64decode(params["sign"])
    assert params["sign"].endswith("==")
    # The character before "==" carries 4 spare bits; flipping one decodes to the same bytes.
    last = params["sign"][-3]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    sibling = alphabet[alphabet.index(last) ^ 1]
    lax = params["sign"][:-3] + sibling + "=="
    assert base64.b64decode(lax) == raw
    assert not verify_notification({**params, "sign": lax}, PUBLIC_KEY)


def test_signature_from_another_key_fails():
    params = real_notify()
    params["sign"] = sign_notification(params, OTHER_KEY)
    assert not verify_notification(params, PUBLIC_KEY)


# Responses: the raw text is what is signed ---------------------------------------------------


def response_body(inner: str, *, signature: str | None = None, method_key: str = "alipay_trade_query_response") -> str:
    signature = sign_message(inner, PRIVATE_KEY) if signature is None else signature
    return f'{{ "sign" : "{signature}",\n  "{method_key}" :  {inner} }}'


# Spacing, key order and escapes that re-serialising the parsed JSON would not reproduce.
RAW_INNER = (
    '{"code": "10000", "msg":"Success", "subject":"\\u4e2d\\u6587 + \\"quoted\\"",'
    ' "total_amount":"199.00",  "out_trade_no":"20260102030405123456" }'
)


def test_response_signature_is_checked_over_the_raw_text():
    answer = verify_response(response_body(RAW_INNER), "alipay.trade.query", PUBLIC_KEY)
    assert answer["subject"] == '中文 + "quoted"'
    assert compact_json(answer) != RAW_INNER


def test_response_with_any_character_changed_fails():
    body = response_body(RAW_INNER)
    start = body.index(RAW_INNER)
    for index in range(start, start + len(RAW_INNER)):
        tampered = changed(body, index)
        try:
            verify_response(tampered, "alipay.trade.query", PUBLIC_KEY)
        except AlipayError:
            continue  # AlipaySignatureError, or the change broke the JSON itself
        pytest.fail(f"tampering at {index} went unnoticed")


def test_response_without_or_with_a_foreign_sign_raises_with_the_unverified_code():
    inner = '{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST"}'
    unsigned = f'{{"alipay_trade_query_response":{inner}}}'
    with pytest.raises(AlipaySignatureError) as caught:
        verify_response(unsigned, "alipay.trade.query", PUBLIC_KEY)
    assert caught.value.sub_code == "ACQ.TRADE_NOT_EXIST"
    foreign = response_body(inner, signature=sign_message(inner, OTHER_KEY))
    with pytest.raises(AlipaySignatureError):
        verify_response(foreign, "alipay.trade.query", PUBLIC_KEY)


def test_error_response_member_is_verified_too():
    inner = '{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id"}'
    answer = verify_response(response_body(inner, method_key="error_response"), "alipay.trade.query", PUBLIC_KEY)
    assert answer["sub_code"] == "isv.invalid-app-id"


def test_escaped_slashes_verify_like_alipays_sdk():
    signed_text = '{"code":"10000","msg":"Success","url":"https://example.com/x"}'
    sent_text = signed_text.replace("/", "\\/")
    body = response_body(sent_text, signature=sign_message(signed_text, PRIVATE_KEY))
    assert verify_response(body, "alipay.trade.query", PUBLIC_KEY)["url"] == "https://example.com/x"


@pytest.mark.parametrize(
    "body",
    [
        "",
        "<html>502 Bad Gateway</html>",
        "[1, 2]",
        '{"alipay_trade_query_response": {"code": "10000"}',
        '{"alipay_trade_query_response": {}, "alipay_trade_query_response": {}, "sign": "x"}',
        '{"alipay_trade_query_response": {}} trailing',
        '{"other_response": {}, "sign": "x"}',
        '{"alipay_trade_query_response": "text", "sign": "x"}',
    ],
)
def test_bodies_that_are_not_alipay_answers_raise_alipay_error(body):
    with pytest.raises(AlipayError):
        verify_response(body, "alipay.trade.query", PUBLIC_KEY)


# Keys ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "test_only_app_private_pkcs1.pem",
        "test_only_app_private_pkcs8.pem",
        "test_only_app_private_pkcs1.b64.txt",
        "test_only_app_private_pkcs8.b64.txt",
    ],
)
def test_private_key_loads_in_every_form(name):
    key = load_private_key(fixture_text(name))
    assert key.has_private()
    assert (key.n, key.e, key.d) == (PRIVATE_KEY.n, PRIVATE_KEY.e, PRIVATE_KEY.d)


@pytest.mark.parametrize(
    "name",
    [
        "test_only_app_public_pkcs1.pem",
        "test_only_app_public_spki.pem",
        "test_only_app_public_pkcs1.b64.txt",
        "test_only_app_public_spki.b64.txt",
    ],
)
def test_public_key_loads_in_every_form(name):
    key = load_public_key(fixture_text(name))
    assert not key.has_private()
    assert (key.n, key.e) == (PUBLIC_KEY.n, PUBLIC_KEY.e)


def test_console_base64_pasted_with_line_breaks_and_crlf_pem_load():
    one_line = fixture_text("test_only_app_public_spki.b64.txt")
    wrapped = "\n".join(one_line[i : i + 64] for i in range(0, len(one_line), 64))
    assert load_public_key(f"  {wrapped}\n").n == PUBLIC_KEY.n
    assert load_private_key(fixture_text("test_only_app_private_pkcs8.pem").replace("\n", "\r\n")).n == PUBLIC_KEY.n


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "not a key",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        base64.b64encode(b"\x30\x03\x02\x01\x00" * 20).decode(),
        "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",  # a truncated console key
    ],
)
def test_garbage_is_a_key_error(text):
    with pytest.raises(AlipayKeyError):
        load_private_key(text)
    with pytest.raises(AlipayKeyError):
        load_public_key(text)


def test_a_key_of_the_wrong_kind_is_refused():
    with pytest.raises(AlipayKeyError, match="public key"):
        load_private_key(fixture_text("test_only_app_public_spki.pem"))
    with pytest.raises(AlipayKeyError, match="private key"):
        load_public_key(fixture_text("test_only_app_private_pkcs8.pem"))


# Formats and the page-pay URL -----------------------------------------------------------------


def test_amounts_are_two_decimal_strings_and_never_rounded():
    assert format_amount(Decimal("199")) == "199.00"
    assert format_amount(Decimal("0.1")) == "0.10"
    assert parse_amount("199.00") == Decimal("199.00")
    with pytest.raises(ValueError):
        format_amount(Decimal("1.005"))
    with pytest.raises(ValueError):
        format_amount(1.5)  # type: ignore[arg-type]
    for text in ["1e3", "-1.00", "1.001", " 1.00", "NaN", "", None]:
        with pytest.raises(ValueError):
            parse_amount(text)


def test_times_are_beijing_time():
    assert beijing_time(datetime(2026, 1, 1, 16, 30, tzinfo=UTC)) == "2026-01-02 00:30:00"
    with pytest.raises(ValueError):
        beijing_time(datetime(2026, 1, 1, 16, 30))


def test_page_pay_url_is_signed_quoted_and_in_beijing_time():
    client = AlipayClient(
        "2021000000000000",
        fixture_text("test_only_app_private_pkcs8.b64.txt"),
        fixture_text("test_only_app_public_spki.b64.txt"),
        "https://openapi.alipay.com/gateway.do",
        "https://shop.example.com/notify",
        "https://shop.example.com/return?from=alipay",
    )
    url = client.page_pay_url(
        out_trade_no="20260102030405123456",
        total_amount=Decimal("199"),
        subject="Python 入门 + 进阶 a=b&c",
        time_expire=datetime(2026, 1, 1, 19, 34, 5, tzinfo=UTC),
    )
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://openapi.alipay.com/gateway.do"
    assert " " not in url and "%2B" in parts.query  # the subject's `+` survives the URL
    params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True, strict_parsing=True).items()}
    assert params["method"] == "alipay.trade.page.pay"
    assert params["sign_type"] == "RSA2" and params["charset"] == "utf-8" and params["version"] == "1.0"
    assert params["return_url"] == "https://shop.example.com/return?from=alipay"
    assert params["biz_content"] == (
        '{"out_trade_no":"20260102030405123456","total_amount":"199.00","subject":"Python 入门 + 进阶 a=b&c",'
        '"product_code":"FAST_INSTANT_TRADE_PAY","time_expire":"2026-01-02 03:34:05"}'
    )
    assert json.loads(params["biz_content"])["time_expire"] == "2026-01-02 03:34:05"
    assert verify_request(params, PUBLIC_KEY)


def test_page_pay_refuses_zero_sub_cent_and_naive_inputs():
    client = AlipayClient("2021000000000000", PRIVATE_KEY, PUBLIC_KEY, "https://gw", "https://n", "https://r")
    deadline = datetime(2026, 1, 1, tzinfo=UTC)
    for amount in [Decimal("0.00"), Decimal("1.001")]:
        with pytest.raises(ValueError):
            client.page_pay_url(out_trade_no="1", total_amount=amount, subject="s", time_expire=deadline)
    with pytest.raises(ValueError):
        client.page_pay_url(out_trade_no="1", total_amount=Decimal("1"), subject="s", time_expire=datetime(2026, 1, 1))


def test_is_ours_checks_app_id_and_configured_seller():
    params = signed_notify()
    plain = AlipayClient("2021000000000000", PRIVATE_KEY, PUBLIC_KEY, "https://gw", "https://n", "https://r")
    assert plain.verify_notification(params) and plain.is_ours(params)
    assert not plain.is_ours({**params, "app_id": "2021000000000001"})
    with_seller = AlipayClient(
        "2021000000000000",
        PRIVATE_KEY,
        PUBLIC_KEY,
        "https://gw",
        "https://n",
        "https://r",
        seller_id="2088102177000000",
    )
    assert with_seller.is_ours(params)
    assert not with_seller.is_ours({**params, "seller_id": "2088000000000009"})
    assert not with_seller.is_ours({k: v for k, v in params.items() if k != "seller_id"})

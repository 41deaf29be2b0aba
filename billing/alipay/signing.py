"""RSA2 (SHA256withRSA, PKCS#1 v1.5) signatures the way Alipay computes them.

Three different strings get signed, and mixing them up is the classic integration bug:
- a request: every parameter except `sign` (so `sign_type` IS signed), sorted, `k=v&k=v`;
- a notify or a synchronous return: every parameter except `sign` AND `sign_type`;
- a gateway response: the exact raw JSON text of its `<method>_response` member.
Values are joined as they are (decoded, never URL-quoted). A request leaves empty values out; a
notify or return keeps them (`k=`), as Alipay signs them (its Java SDK's rsaCheckV1).
"""

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from Crypto.Hash import SHA256
from Crypto.Signature import pkcs1_15

from billing.alipay.errors import AlipayError, AlipaySignatureError
from billing.alipay.keys import RsaKey

_REQUEST_UNSIGNED = frozenset({"sign"})
_NOTIFICATION_UNSIGNED = frozenset({"sign", "sign_type"})


def _join(params: Mapping[str, Any], leave_out: frozenset[str], *, keep_empty: bool) -> str:
    pairs = sorted(
        (str(k), str(v)) for k, v in params.items() if k not in leave_out and v is not None and (keep_empty or v != "")
    )
    return "&".join(f"{k}={v}" for k, v in pairs)


def signing_string(params: Mapping[str, Any]) -> str:
    """The string a request signature covers (`sign_type` included, empty values left out)."""
    return _join(params, _REQUEST_UNSIGNED, keep_empty=False)


def notification_string(params: Mapping[str, Any]) -> str:
    """The string a notify / return signature covers: every parameter received but `sign` and
    `sign_type`, empty ones included (a genuine notify with `body=` must verify)."""
    return _join(params, _NOTIFICATION_UNSIGNED, keep_empty=True)


def sign_message(message: str, private_key: RsaKey) -> str:
    digest = SHA256.new(message.encode("utf-8"))
    return base64.b64encode(pkcs1_15.new(private_key).sign(digest)).decode("ascii")


def verify_message(message: str, signature: Any, public_key: RsaKey) -> bool:
    """True only for a canonical base64 RSA2 signature of `message`; never raises."""
    if not isinstance(signature, str) or not signature:
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
        digest = SHA256.new(message.encode("utf-8"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False
    # b64decode ignores the spare bits of the last character, so several strings decode to the
    # same bytes; accepting only the canonical one keeps "one character changed" meaning "fails".
    if base64.b64encode(raw).decode("ascii") != signature:
        return False
    try:
        pkcs1_15.new(public_key).verify(digest, raw)
    except (ValueError, TypeError):
        return False
    return True


def sign(params: Mapping[str, Any], private_key: RsaKey) -> str:
    """The `sign` value for a request to the gateway."""
    return sign_message(signing_string(params), private_key)


def sign_notification(params: Mapping[str, Any], private_key: RsaKey) -> str:
    """The `sign` value of a notify / return (what Alipay, or the dev gateway, computes)."""
    return sign_message(notification_string(params), private_key)


def verify_request(params: Mapping[str, Any], public_key: RsaKey) -> bool:
    """Check a request's signature as the gateway does (only `sign` left out); never raises."""
    try:
        return verify_message(signing_string(params), params.get("sign"), public_key)
    except Exception:  # garbage in (odd types, odd mappings) is simply "not verified"
        return False


def verify_notification(params: Mapping[str, Any], public_key: RsaKey) -> bool:
    """Check a notify or synchronous return, given its values decoded once (`request.POST.dict()`,
    `request.GET.dict()`). Never raises: anything unverifiable is False."""
    try:
        return verify_message(notification_string(params), params.get("sign"), public_key)
    except Exception:  # garbage in (odd types, odd mappings) is simply "not verified"
        return False


def response_key(method: str) -> str:
    """`alipay.trade.query` answers under `alipay_trade_query_response`."""
    return method.replace(".", "_") + "_response"


def verify_response(raw_body: str, method: str, public_key: RsaKey) -> dict[str, Any]:
    """The verified `<method>_response` object of a gateway answer (or its `error_response`).

    Alipay signs the bytes it sent, not a JSON value, so the signed text is cut out of the body
    as it arrived; re-serialising the parsed object could reorder keys or change escapes.
    Raises AlipaySignatureError when the signature is missing or wrong, AlipayError when the
    body is not an Alipay answer at all.
    """
    members = _top_level_members(raw_body)
    raw = members.get(response_key(method))
    if raw is None:
        raw = members.get("error_response")
    if raw is None:
        raise AlipayError(f"{method}: the answer has no {response_key(method)} member")
    payload = json.loads(raw)
    if not isinstance(payload, dict):
        raise AlipayError(f"{method}: {response_key(method)} is not an object")
    signature = json.loads(members["sign"]) if "sign" in members else None
    signed_texts = [raw]
    if "\\/" in raw:
        # Alipay's own SDKs retry with `\/` unescaped: some gateway paths escape slashes after signing.
        signed_texts.append(raw.replace("\\/", "/"))
    if not any(verify_message(text, signature, public_key) for text in signed_texts):
        raise AlipaySignatureError(
            f"{method}: the answer's signature is {'wrong' if signature else 'missing'}",
            code=str(payload.get("code", "")),
            sub_code=str(payload.get("sub_code", "")),
            sub_msg=str(payload.get("sub_msg", "")),
        )
    return payload


_WHITESPACE = re.compile(r"[ \t\n\r]*")
_decoder = json.JSONDecoder()


def _skip(text: str, index: int) -> int:
    match = _WHITESPACE.match(text, index)
    return match.end() if match else index


def _top_level_members(body: str) -> dict[str, str]:
    """The raw text of each member of the top-level JSON object, keyed by member name."""
    try:
        return _scan_object(body)
    except ValueError as exc:  # json.JSONDecodeError included
        raise AlipayError(f"The gateway's answer is not a JSON object: {exc}") from exc


def _scan_object(body: str) -> dict[str, str]:
    members: dict[str, str] = {}
    index = _skip(body, 0)
    if body[index : index + 1] != "{":
        raise ValueError("expected '{'")
    index = _skip(body, index + 1)
    if body[index : index + 1] == "}":
        index += 1
    else:
        while True:
            if body[index : index + 1] != '"':
                raise ValueError(f"expected a member name at {index}")
            name, index = _decoder.raw_decode(body, index)
            index = _skip(body, index)
            if body[index : index + 1] != ":":
                raise ValueError(f"expected ':' at {index}")
            start = _skip(body, index + 1)
            _, end = _decoder.raw_decode(body, start)
            # Two members of one name would leave "which one was signed" open to interpretation.
            if name in members:
                raise ValueError(f"duplicate member {name!r}")
            members[name] = body[start:end]
            index = _skip(body, end)
            separator = body[index : index + 1]
            index += 1
            if separator == "}":
                break
            if separator != ",":
                raise ValueError(f"expected ',' or '}}' at {index - 1}")
            index = _skip(body, index)
    if _skip(body, index) != len(body):
        raise ValueError("trailing text after the object")
    return members

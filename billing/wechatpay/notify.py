"""Reading a WeChat Pay notify: the headers' signature over the raw body first, then the
encrypted `resource`, then whose it is. Nothing of a notify is read before its signature holds.

The envelope WeChat Pay POSTs (JSON):
    {"id": "EV-...", "create_time": "...", "event_type": "TRANSACTION.SUCCESS",
     "resource_type": "encrypt-resource", "summary": "...",
     "resource": {"algorithm": "AEAD_AES_256_GCM", "original_type": "transaction",
                  "ciphertext": "...", "associated_data": "transaction", "nonce": "..."}}
"""

import json
from collections.abc import Mapping
from typing import Any

from billing.wechatpay import crypto
from billing.wechatpay.errors import Reason, WechatPayError
from billing.wechatpay.keys import RsaKey
from billing.wechatpay.results import (
    RefundNotification,
    TransactionNotification,
    refund_notification_from,
    text,
    transaction_notification_from,
)
from billing.wechatpay.signing import verify_signed

TRANSACTION_SUCCESS = "TRANSACTION.SUCCESS"
REFUND_EVENTS = frozenset({"REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"})
ENCRYPTED = "encrypt-resource"


def parse_notification(
    *,
    headers: Mapping[str, str],
    body: bytes | str,
    mchid: str,
    appid: str,
    apiv3_key: bytes,
    public_key: RsaKey,
    public_key_id: str,
    now: float | None = None,
) -> TransactionNotification | RefundNotification:
    """The verified, decrypted notify; pass `request.headers` and `request.body` (the raw bytes).
    Raises WechatPayError: UNSIGNED, WRONG_SERIAL, STALE_TIMESTAMP, BAD_SIGNATURE, UNDECRYPTABLE,
    NOT_OURS or MALFORMED."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    verify_signed(headers=headers, body=body, public_key=public_key, public_key_id=public_key_id, now=now)
    envelope = json_object(body, "the notify")
    event_type = text(envelope, "event_type")
    resource = envelope.get("resource")
    if envelope.get("resource_type") != ENCRYPTED or not isinstance(resource, Mapping):
        raise WechatPayError(Reason.MALFORMED, "the notify carries no encrypted resource")
    if resource.get("algorithm") != crypto.ALGORITHM:
        raise WechatPayError(Reason.UNDECRYPTABLE, f"unsupported algorithm {resource.get('algorithm')!r}")
    plaintext = crypto.decrypt(
        apiv3_key=apiv3_key,
        nonce=resource.get("nonce"),
        associated_data=resource.get("associated_data") or "",
        ciphertext=resource.get("ciphertext"),
    )
    payload = json_object(plaintext, "the notify's resource")
    event_id = text(envelope, "id", required=False)
    if event_type == TRANSACTION_SUCCESS:
        require_ours(payload, mchid=mchid, appid=appid)
        return transaction_notification_from(event_id, event_type, payload)
    if event_type in REFUND_EVENTS:
        # A refund's resource names the merchant but no appid.
        require_ours(payload, mchid=mchid)
        return refund_notification_from(event_id, event_type, payload)
    raise WechatPayError(Reason.MALFORMED, f"unexpected event_type {event_type!r}")


def require_ours(payload: Mapping[str, Any], *, mchid: str, appid: str | None = None) -> None:
    # WeChat Pay signs every merchant's notifies and answers with the same platform key, so a
    # valid signature alone does not make one ours.
    if payload.get("mchid") != mchid:
        raise WechatPayError(Reason.NOT_OURS, f"mchid {payload.get('mchid')!r} is not ours")
    if appid is not None and payload.get("appid") != appid:
        raise WechatPayError(Reason.NOT_OURS, f"appid {payload.get('appid')!r} is not ours")


def json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WechatPayError(Reason.MALFORMED, f"{what} is not UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise WechatPayError(Reason.MALFORMED, f"{what} is not a JSON object")
    return value

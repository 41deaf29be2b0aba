"""What the stand-in POSTs to a notify_url: WeChat Pay's envelope, its `resource` sealed with the
APIv3 key (AEAD_AES_256_GCM), the whole body signed with the platform key in the headers.

It is also how tests craft notifies: every step takes overrides. `transaction_resource` /
`refund_resource` build the plaintext (any field replaced, None removes it), `notify_envelope`
seals it (another APIv3 key, nonce or associated_data), `sign_notify` signs any body (another
key, serial or timestamp); `signed_notify` does all three for a trade or a refund.
"""

import logging
import secrets
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from django.utils import timezone

from billing.models import WechatPayDevRefund, WechatPayDevTrade
from billing.wechatpay import crypto
from billing.wechatpay.formats import compact_json, rfc3339
from billing.wechatpay.keys import RsaKey
from billing.wechatpay.signing import signed_headers
from billing.wechatpay_dev_gateway import keys

logger = logging.getLogger(__name__)

# No real WeChat user; the shape of an openid.
DEV_OPENID = "oUpF8uDevGatewayBuyer0000000"
# WeChat Pay retries for a day (15 s, 15 s, 30 s, 3 min, ...); the stand-in a few times, quickly.
RETRY_DELAYS_SECONDS: Sequence[float] = (0.5, 1.5)
SUMMARIES = {
    "TRANSACTION.SUCCESS": "支付成功",
    "REFUND.SUCCESS": "退款成功",
    "REFUND.ABNORMAL": "退款异常",
    "REFUND.CLOSED": "退款关闭",
}


@dataclass(frozen=True)
class SignedNotify:
    headers: dict[str, str]
    body: bytes


def transaction_resource(trade_or_fields: WechatPayDevTrade | Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """The decrypted `resource` of a TRANSACTION.SUCCESS notify. From a trade, or from a mapping
    with at least `out_trade_no` and `total` (fen) whose other keys replace the defaults."""
    if isinstance(trade_or_fields, WechatPayDevTrade):
        trade = trade_or_fields
        given: dict[str, Any] = {
            "appid": trade.appid,
            "mchid": trade.mchid,
            "out_trade_no": trade.out_trade_no,
            "transaction_id": trade.transaction_id,
            "trade_type": trade.trade_type,
            "total": trade.total,
            "success_time": rfc3339(trade.success_time or timezone.now()),
        }
    else:
        given = dict(trade_or_fields)
    total = given.pop("total")
    resource: dict[str, Any] = {
        "mchid": settings.WECHATPAY_MCHID,
        "appid": settings.WECHATPAY_APPID,
        "out_trade_no": "",
        "transaction_id": "",
        "trade_type": WechatPayDevTrade.TradeType.NATIVE,
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": rfc3339(timezone.now()),
        "payer": {"openid": DEV_OPENID},
        "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
    }
    resource.update(given)
    return _overridden(resource, overrides)


def refund_resource(refund_or_fields: WechatPayDevRefund | Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """The decrypted `resource` of a REFUND.* notify. From a refund, or from a mapping with at
    least `out_trade_no`, `out_refund_no`, `refund` and `total` (fen)."""
    if isinstance(refund_or_fields, WechatPayDevRefund):
        refund = refund_or_fields
        given: dict[str, Any] = {
            "mchid": refund.trade.mchid,
            "out_trade_no": refund.trade.out_trade_no,
            "transaction_id": refund.trade.transaction_id,
            "out_refund_no": refund.out_refund_no,
            "refund_id": refund.refund_id,
            "refund_status": refund.status,
            "refund": refund.refund,
            "total": refund.total,
            "success_time": rfc3339(refund.success_time or timezone.now()),
        }
    else:
        given = dict(refund_or_fields)
    amount = {"refund": given.pop("refund"), "total": given.pop("total")}
    resource: dict[str, Any] = {
        "mchid": settings.WECHATPAY_MCHID,
        "out_trade_no": "",
        "transaction_id": "",
        "out_refund_no": "",
        "refund_id": "",
        "refund_status": "SUCCESS",
        "success_time": rfc3339(timezone.now()),
        "user_received_account": "支付用户零钱",
        "amount": {**amount, "payer_total": amount["total"], "payer_refund": amount["refund"]},
    }
    resource.update(given)
    return _overridden(resource, overrides)


def notify_envelope(
    resource: Mapping[str, Any],
    *,
    event_type: str,
    apiv3_key: bytes | None = None,
    nonce: str | None = None,
    associated_data: str | None = None,
) -> dict[str, Any]:
    """The notify body, `resource` sealed with the APIv3 key (the stand-in's unless given)."""
    original_type = "refund" if event_type.startswith("REFUND.") else "transaction"
    nonce = nonce if nonce is not None else secrets.token_hex(6)
    associated_data = original_type if associated_data is None else associated_data
    return {
        "id": str(uuid.uuid4()),
        "create_time": rfc3339(timezone.now()),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": SUMMARIES.get(event_type, event_type),
        "resource": {
            "original_type": original_type,
            "algorithm": crypto.ALGORITHM,
            "ciphertext": crypto.encrypt(
                apiv3_key=apiv3_key or keys.apiv3_key(),
                nonce=nonce,
                associated_data=associated_data,
                plaintext=compact_json(resource).encode("utf-8"),
            ),
            "associated_data": associated_data,
            "nonce": nonce,
        },
    }


def sign_notify(
    envelope_or_body: Mapping[str, Any] | bytes,
    *,
    private_key: RsaKey | None = None,
    public_key_id: str | None = None,
    timestamp: int | None = None,
) -> SignedNotify:
    """Any body, signed as WeChat Pay signs (with the stand-in's platform key unless given)."""
    body = envelope_or_body if isinstance(envelope_or_body, bytes) else compact_json(envelope_or_body).encode("utf-8")
    headers = signed_headers(
        body=body,
        private_key=private_key or keys.platform_private_key(),
        public_key_id=public_key_id or keys.public_key_id(),
        timestamp=timestamp,
    )
    return SignedNotify(headers={**headers, "Content-Type": "application/json"}, body=body)


def signed_notify(
    trade_or_refund: WechatPayDevTrade | WechatPayDevRefund,
    *,
    event_type: str | None = None,
    apiv3_key: bytes | None = None,
    private_key: RsaKey | None = None,
    timestamp: int | None = None,
    **overrides: Any,
) -> SignedNotify:
    """The notify WeChat Pay sends for a paid trade or a refund, with any resource field replaced."""
    if isinstance(trade_or_refund, WechatPayDevRefund):
        resource = refund_resource(trade_or_refund, **overrides)
        event_type = event_type or f"REFUND.{resource.get('refund_status', 'SUCCESS')}"
    else:
        resource = transaction_resource(trade_or_refund, **overrides)
        event_type = event_type or "TRANSACTION.SUCCESS"
    envelope = notify_envelope(resource, event_type=event_type, apiv3_key=apiv3_key)
    return sign_notify(envelope, private_key=private_key, timestamp=timestamp)


def send_notify(notify_url: str, notify: SignedNotify, *, delays: Sequence[float] = RETRY_DELAYS_SECONDS) -> bool:
    """POST a notify until the app takes it (HTTP 200 or 204, WeChat Pay's rule) or the retries
    run out; they come within seconds, so the first signature is still fresh."""
    for delay in [0.0, *delays]:
        time.sleep(delay)
        try:
            response = requests.post(
                notify_url, data=notify.body, headers=notify.headers, timeout=settings.WECHATPAY_TIMEOUT_SECONDS
            )
        except requests.RequestException as exc:
            logger.warning("WeChat Pay dev gateway notify to %s failed: %s", notify_url, exc)
            continue
        if response.status_code in (200, 204):
            return True
        logger.warning(
            "WeChat Pay dev gateway notify to %s: HTTP %s %r", notify_url, response.status_code, response.text[:200]
        )
    return False


_deliveries: list[threading.Thread] = []
_deliveries_lock = threading.Lock()


def send_notify_later(notify_url: str, notify: SignedNotify) -> None:
    """Send from a thread of its own, as WeChat Pay notifies after it has answered the request
    (a refund's caller may hold locks its own notify handler needs)."""
    thread = threading.Thread(target=send_notify, args=(notify_url, notify), daemon=True)
    with _deliveries_lock:
        _deliveries[:] = [t for t in _deliveries if t.is_alive()]
        _deliveries.append(thread)
    thread.start()


def wait_for_deliveries(timeout: float = 30) -> None:
    """Until every notify sent later has been delivered or given up (tests call this)."""
    deadline = time.monotonic() + timeout
    with _deliveries_lock:
        pending = list(_deliveries)
    for thread in pending:
        thread.join(max(0.0, deadline - time.monotonic()))


def _overridden(resource: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    for name, value in overrides.items():
        if value is None:
            resource.pop(name, None)
        else:
            resource[name] = value
    return resource

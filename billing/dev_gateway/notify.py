"""What the dev gateway sends back to the app: the asynchronous notify (server to server) and the
synchronous return (the browser's redirect), both signed with the gateway's "Alipay" key.

`signed_notify_params` is also the way tests craft notifies: any field can be overridden before
signing (a tampered amount that is nonetheless validly signed, a foreign app_id, ...).
"""

import logging
import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.utils import timezone

from billing.alipay.formats import beijing_time, compact_json, format_amount
from billing.alipay.keys import RsaKey
from billing.alipay.signing import sign_notification
from billing.dev_gateway import certs
from billing.dev_gateway.keys import gateway_private_key
from billing.dev_gateway.trades import new_trade_no
from billing.models import DevGatewayTrade

logger = logging.getLogger(__name__)

# Alipay user ids start with 2088; these name no real account.
DEV_SELLER_ID = "2088000000000001"
DEV_BUYER_ID = "2088000000000002"


def seller_id() -> str:
    return settings.ALIPAY_SELLER_ID or DEV_SELLER_ID


def notify_fields(trade_or_fields: DevGatewayTrade | Mapping[str, Any]) -> dict[str, str]:
    """The unsigned fields of a `trade_status_sync` notify, shaped like Alipay's.

    From a DevGatewayTrade, or from a mapping that needs at least `out_trade_no` and
    `total_amount` (Decimal or "0.00" string); its other keys override the defaults.
    """
    now = timezone.now()
    if isinstance(trade_or_fields, DevGatewayTrade):
        trade = trade_or_fields
        given: dict[str, Any] = {
            "out_trade_no": trade.out_trade_no,
            "total_amount": trade.total_amount,
            "subject": trade.subject,
            "trade_no": trade.trade_no or new_trade_no(),
            "trade_status": trade.status,
            "gmt_create": beijing_time(trade.created_at),
        }
        if trade.paid_at:
            given["gmt_payment"] = beijing_time(trade.paid_at)
    else:
        given = dict(trade_or_fields)
    amount = given.pop("total_amount")
    total = format_amount(amount) if isinstance(amount, Decimal) else str(amount)
    fields: dict[str, Any] = {
        "notify_time": beijing_time(now),
        "notify_type": "trade_status_sync",
        "notify_id": secrets.token_hex(16),
        "app_id": settings.ALIPAY_APP_ID,
        "auth_app_id": settings.ALIPAY_APP_ID,
        "charset": "utf-8",
        "version": "1.0",
        "sign_type": "RSA2",
        "trade_no": new_trade_no(),
        "subject": "Dev gateway trade",
        "trade_status": DevGatewayTrade.Status.TRADE_SUCCESS,
        "total_amount": total,
        "receipt_amount": total,
        "invoice_amount": total,
        "buyer_pay_amount": total,
        "point_amount": "0.00",
        "fund_bill_list": compact_json([{"amount": total, "fundChannel": "ALIPAYACCOUNT"}]),
        "gmt_create": beijing_time(now),
        "gmt_payment": beijing_time(now),
        "seller_id": seller_id(),
        "buyer_id": DEV_BUYER_ID,
    }
    fields.update(given)
    return {key: str(value) for key, value in fields.items()}


def signed_notify_params(
    trade_or_fields: DevGatewayTrade | Mapping[str, Any], *, private_key: RsaKey | None = None, **overrides: Any
) -> dict[str, str]:
    """A notify as Alipay would POST it, signed with the gateway key (or `private_key`).
    An override of None removes that field before signing; an empty string is a field Alipay sent
    empty, and is signed like any other."""
    params = notify_fields(trade_or_fields)
    return _signed(params, overrides, private_key)


def signed_return_params(
    trade: DevGatewayTrade, *, private_key: RsaKey | None = None, **overrides: Any
) -> dict[str, str]:
    """The query parameters Alipay puts on return_url when it sends the buyer back."""
    params = {
        "method": "alipay.trade.page.pay.return",
        "out_trade_no": trade.out_trade_no,
        "trade_no": trade.trade_no,
        "total_amount": format_amount(trade.total_amount),
        "app_id": settings.ALIPAY_APP_ID,
        "auth_app_id": settings.ALIPAY_APP_ID,
        "seller_id": seller_id(),
        "timestamp": beijing_time(timezone.now()),
        "charset": "utf-8",
        "version": "1.0",
        "sign_type": "RSA2",
    }
    return _signed(params, overrides, private_key)


def return_redirect_url(trade: DevGatewayTrade) -> str:
    separator = "&" if "?" in trade.return_url else "?"
    return f"{trade.return_url}{separator}{urlencode(signed_return_params(trade))}"


def send_notify(trade: DevGatewayTrade, **overrides: Any) -> bool:
    """POST the trade's notify to its notify_url once. True when the app answered exactly
    `success`, the only answer that stops Alipay's retries. `overrides` as for signed_notify_params."""
    if not trade.notify_url:
        return False
    params = signed_notify_params(trade, **overrides)
    try:
        response = requests.post(
            trade.notify_url,
            data=urlencode(params).encode("ascii"),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            timeout=settings.ALIPAY_TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        logger.warning("Dev gateway notify for %s to %s failed: %s", trade.out_trade_no, trade.notify_url, exc)
        return False
    if response.status_code == 200 and response.text == "success":
        return True
    logger.warning(
        "Dev gateway notify for %s: %s answered HTTP %s %r, not 'success'",
        trade.out_trade_no,
        trade.notify_url,
        response.status_code,
        response.text[:200],
    )
    return False


def _signed(params: dict[str, str], overrides: Mapping[str, Any], private_key: RsaKey | None) -> dict[str, str]:
    if settings.ALIPAY_DEV_GATEWAY_CERT_MODE:
        # Signed with the rest: which Alipay certificate's key the receiver must verify with.
        params["alipay_cert_sn"] = certs.certificate_sns().alipay_cert_sn
    for key, value in overrides.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    params["sign"] = sign_notification(params, private_key or gateway_private_key())
    return params

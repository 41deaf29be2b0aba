"""What the client hands back, typed, and how each is read from a verified WeChat Pay object.

Amounts stay integer fen as WeChat Pay sends them (`*_fen`); `*_amount` gives the same in yuan
as a Decimal, to compare with an order's `pay_amount`.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from billing.wechatpay.errors import Reason, WechatPayError
from billing.wechatpay.formats import parse_rfc3339, to_yuan

CURRENCY = "CNY"
# REFUND is WeChat Pay's state for a paid trade with a refund on it: the money did arrive.
PAID_STATES = frozenset({"SUCCESS", "REFUND"})


@dataclass(frozen=True)
class NativeOrder:
    out_trade_no: str
    # Shown to the buyer as a QR code; WeChat Pay keeps it valid for two hours.
    code_url: str


@dataclass(frozen=True)
class H5Order:
    out_trade_no: str
    h5_url: str

    def url_returning_to(self, redirect_url: str) -> str:
        """The h5_url with `redirect_url` appended, where WeChat Pay sends the buyer after paying
        (or not): a hint to check the order, never proof of payment."""
        return f"{self.h5_url}{'&' if '?' in self.h5_url else '?'}{urlencode({'redirect_url': redirect_url})}"


@dataclass(frozen=True)
class TradeQuery:
    out_trade_no: str
    transaction_id: str  # "" until paid
    # SUCCESS, REFUND, NOTPAY, CLOSED, REVOKED, USERPAYING, PAYERROR
    trade_state: str
    # WeChat Pay may leave the amount out for a trade nobody paid.
    total_fen: int | None
    success_time: datetime | None

    @property
    def is_paid(self) -> bool:
        return self.trade_state in PAID_STATES

    @property
    def total_amount(self) -> Decimal | None:
        return None if self.total_fen is None else to_yuan(self.total_fen)


@dataclass(frozen=True)
class Refund:
    out_refund_no: str
    refund_id: str
    out_trade_no: str
    transaction_id: str
    status: str  # SUCCESS, PROCESSING, CLOSED, ABNORMAL
    refund_fen: int
    total_fen: int
    success_time: datetime | None

    @property
    def refund_amount(self) -> Decimal:
        return to_yuan(self.refund_fen)


@dataclass(frozen=True)
class TransactionNotification:
    event_id: str
    event_type: str  # TRANSACTION.SUCCESS
    out_trade_no: str
    transaction_id: str
    trade_state: str
    total_fen: int
    success_time: datetime | None

    @property
    def is_paid(self) -> bool:
        return self.trade_state == "SUCCESS"

    @property
    def total_amount(self) -> Decimal:
        return to_yuan(self.total_fen)


@dataclass(frozen=True)
class RefundNotification:
    event_id: str
    event_type: str  # REFUND.SUCCESS, REFUND.ABNORMAL or REFUND.CLOSED
    out_trade_no: str
    transaction_id: str
    out_refund_no: str
    refund_id: str
    refund_status: str  # SUCCESS, ABNORMAL or CLOSED
    refund_fen: int
    total_fen: int
    success_time: datetime | None

    @property
    def refund_amount(self) -> Decimal:
        return to_yuan(self.refund_fen)


# Reading verified objects -------------------------------------------------------------------------


def text(payload: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = payload.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise WechatPayError(Reason.MALFORMED, f"{name} is missing or not text")
    return value


def fen(amount: Mapping[str, Any], name: str, *, required: bool = True) -> int | None:
    value = amount.get(name)
    if value is None and not required:
        return None
    # bool is an int in Python; JSON true is no amount.
    if type(value) is not int or value < 0:
        raise WechatPayError(Reason.MALFORMED, f"amount.{name} is not a whole number of fen: {value!r}")
    return value


def amount_of(payload: Mapping[str, Any], *, required: bool = True) -> Mapping[str, Any]:
    amount = payload.get("amount")
    if amount is None and not required:
        return {}
    if not isinstance(amount, Mapping):
        raise WechatPayError(Reason.MALFORMED, "amount is missing")
    currency = amount.get("currency")
    # Fen of another currency compared with yuan would be a wrong price that looks right.
    if currency is not None and currency != CURRENCY:
        raise WechatPayError(Reason.MALFORMED, f"amount.currency is {currency!r}, not {CURRENCY}")
    return amount


def moment(payload: Mapping[str, Any], name: str) -> datetime | None:
    value = payload.get(name)
    if value in (None, ""):
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise WechatPayError(Reason.MALFORMED, f"{name} is not an RFC 3339 time: {value!r}") from None


def trade_query_from(payload: Mapping[str, Any]) -> TradeQuery:
    state = text(payload, "trade_state")
    amount = amount_of(payload, required=state in PAID_STATES)
    return TradeQuery(
        out_trade_no=text(payload, "out_trade_no"),
        transaction_id=text(payload, "transaction_id", required=state in PAID_STATES),
        trade_state=state,
        total_fen=fen(amount, "total", required=state in PAID_STATES),
        success_time=moment(payload, "success_time"),
    )


def refund_from(payload: Mapping[str, Any]) -> Refund:
    amount = amount_of(payload)
    return Refund(
        out_refund_no=text(payload, "out_refund_no"),
        refund_id=text(payload, "refund_id"),
        out_trade_no=text(payload, "out_trade_no"),
        transaction_id=text(payload, "transaction_id", required=False),
        status=text(payload, "status"),
        refund_fen=fen(amount, "refund") or 0,
        total_fen=fen(amount, "total") or 0,
        success_time=moment(payload, "success_time"),
    )


def transaction_notification_from(
    event_id: str, event_type: str, payload: Mapping[str, Any]
) -> TransactionNotification:
    return TransactionNotification(
        event_id=event_id,
        event_type=event_type,
        out_trade_no=text(payload, "out_trade_no"),
        transaction_id=text(payload, "transaction_id"),
        trade_state=text(payload, "trade_state"),
        total_fen=fen(amount_of(payload), "total") or 0,
        success_time=moment(payload, "success_time"),
    )


def refund_notification_from(event_id: str, event_type: str, payload: Mapping[str, Any]) -> RefundNotification:
    amount = amount_of(payload)
    return RefundNotification(
        event_id=event_id,
        event_type=event_type,
        out_trade_no=text(payload, "out_trade_no"),
        transaction_id=text(payload, "transaction_id", required=False),
        out_refund_no=text(payload, "out_refund_no"),
        refund_id=text(payload, "refund_id"),
        refund_status=text(payload, "refund_status"),
        refund_fen=fen(amount, "refund") or 0,
        total_fen=fen(amount, "total") or 0,
        success_time=moment(payload, "success_time"),
    )

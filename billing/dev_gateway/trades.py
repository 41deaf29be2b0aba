"""What the dev gateway does to its trades, following Alipay's rules: each change takes the row
lock first, so a Pay click, a close and a refund arriving together cannot both win."""

import secrets
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.alipay.formats import BEIJING, format_amount
from billing.models import DevGatewayTrade

Status = DevGatewayTrade.Status


class GatewayRefusal(Exception):
    """A business refusal, answered as Alipay does: code 40004 with an `ACQ.*` sub_code."""

    def __init__(self, sub_code: str, sub_msg: str, *, code: str = "40004", msg: str = "Business Failed") -> None:
        super().__init__(f"{sub_code}: {sub_msg}")
        self.code = code
        self.msg = msg
        self.sub_code = sub_code
        self.sub_msg = sub_msg

    def as_answer(self) -> dict[str, str]:
        return {"code": self.code, "msg": self.msg, "sub_code": self.sub_code, "sub_msg": self.sub_msg}


def new_trade_no() -> str:
    """28 digits like Alipay's: the Beijing date, then digits of no meaning."""
    return timezone.now().astimezone(BEIJING).strftime("%Y%m%d") + "2200" + f"{secrets.randbelow(10**16):016d}"


def open_trade(
    *,
    out_trade_no: str,
    total_amount: Decimal,
    subject: str,
    notify_url: str,
    return_url: str,
    time_expire: datetime | None,
    product_code: str = "FAST_INSTANT_TRADE_PAY",
    quit_url: str = "",
) -> DevGatewayTrade:
    """The trade a page-pay or wap-pay request opens, or the one it opened before for the same
    out_trade_no."""
    with transaction.atomic():
        trade, created = DevGatewayTrade.objects.select_for_update().get_or_create(
            out_trade_no=out_trade_no,
            defaults={
                "total_amount": total_amount,
                "subject": subject,
                "notify_url": notify_url,
                "return_url": return_url,
                "time_expire": time_expire,
                "product_code": product_code,
                "quit_url": quit_url,
            },
        )
        if created:
            _close_if_expired(trade)
            return trade
        # Alipay refuses a second page-pay for the same out_trade_no with other terms
        # (ACQ.CONTEXT_INCONSISTENT): the buyer must never pay a price the first request didn't name.
        if trade.total_amount != total_amount or trade.subject != subject:
            raise GatewayRefusal(
                "ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改 (trade terms differ from the first request)"
            )
        if trade.status == Status.WAIT_BUYER_PAY:
            trade.notify_url, trade.return_url, trade.time_expire = notify_url, return_url, time_expire
            trade.product_code, trade.quit_url = product_code, quit_url
            trade.save(update_fields=["notify_url", "return_url", "time_expire", "product_code", "quit_url"])
        _close_if_expired(trade)
        return trade


def pay_trade(*, out_trade_no: str) -> tuple[DevGatewayTrade, bool]:
    """The buyer pays. Returns the trade and whether this call paid it (False on a repeat click).
    Raises DevGatewayTrade.DoesNotExist, or GatewayRefusal for a closed or expired trade."""
    with transaction.atomic():
        trade = DevGatewayTrade.objects.select_for_update().get(out_trade_no=out_trade_no)
        _close_if_expired(trade)
        if trade.status == Status.TRADE_SUCCESS:
            return trade, False
        if trade.status == Status.TRADE_CLOSED:
            if trade.time_expire and trade.time_expire <= timezone.now():
                raise GatewayRefusal("ACQ.TRADE_HAS_CLOSE", "交易已过期 (time_expire has passed)")
            raise GatewayRefusal("ACQ.TRADE_HAS_CLOSE", "交易已关闭 (the trade is closed)")
        trade.status = Status.TRADE_SUCCESS
        trade.trade_no = new_trade_no()
        trade.paid_at = timezone.now()
        trade.save(update_fields=["status", "trade_no", "paid_at"])
        return trade, True


def query_trade(*, out_trade_no: str) -> DevGatewayTrade:
    with transaction.atomic():
        trade = _locked(out_trade_no)
        _close_if_expired(trade)
        return trade


def close_trade(*, out_trade_no: str) -> DevGatewayTrade:
    with transaction.atomic():
        trade = _locked(out_trade_no)
        _close_if_expired(trade)
        # As at Alipay, only a trade waiting for the buyer can be closed: closing a closed one is
        # refused the same way as closing a paid one, so callers must query to tell them apart.
        if trade.status != Status.WAIT_BUYER_PAY:
            raise GatewayRefusal("ACQ.TRADE_STATUS_ERROR", f"交易状态不合法 (the trade is {trade.status})")
        trade.status = Status.TRADE_CLOSED
        trade.save(update_fields=["status"])
        return trade


def refund_trade(*, out_trade_no: str, refund_amount: Decimal, out_request_no: str) -> tuple[DevGatewayTrade, bool]:
    """Refund part of a paid trade. Returns the trade and whether money moved (False when this
    out_request_no was refunded before: Alipay answers the repeat without refunding again)."""
    with transaction.atomic():
        trade = _locked(out_trade_no)
        if out_request_no in trade.refund_request_nos:
            return trade, False
        if trade.status != Status.TRADE_SUCCESS:
            raise GatewayRefusal("ACQ.TRADE_STATUS_ERROR", "交易状态不合法 (only a paid trade can be refunded)")
        if refund_amount <= 0:
            raise GatewayRefusal("ACQ.INVALID_PARAMETER", "退款金额无效 (refund_amount must be positive)")
        if refund_amount > trade.total_amount - trade.refunded_amount:
            raise GatewayRefusal("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限 (more than what is left to refund)")
        trade.refunded_amount += refund_amount
        trade.refund_request_nos = [*trade.refund_request_nos, out_request_no]
        trade.refund_amounts = {**trade.refund_amounts, out_request_no: format_amount(refund_amount)}
        # As at Alipay, a trade refunded in full is closed.
        if trade.refunded_amount == trade.total_amount:
            trade.status = Status.TRADE_CLOSED
        trade.save(update_fields=["refunded_amount", "refund_request_nos", "refund_amounts", "status"])
        return trade, True


def _locked(out_trade_no: str) -> DevGatewayTrade:
    try:
        return DevGatewayTrade.objects.select_for_update().get(out_trade_no=out_trade_no)
    except DevGatewayTrade.DoesNotExist:
        raise GatewayRefusal("ACQ.TRADE_NOT_EXIST", "交易不存在 (no such trade)") from None


def _close_if_expired(trade: DevGatewayTrade) -> None:
    # Alipay closes an unpaid trade by itself once time_expire passes; nothing can pay it after.
    if trade.status == Status.WAIT_BUYER_PAY and trade.time_expire and trade.time_expire <= timezone.now():
        trade.status = Status.TRADE_CLOSED
        trade.save(update_fields=["status"])

"""What the WeChat Pay stand-in does to its trades and refunds, following WeChat Pay's rules: each
change takes the trade's row lock first, so a Pay click, a close and a refund arriving together
cannot both win."""

import secrets
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing.models import WechatPayDevRefund, WechatPayDevTrade
from billing.wechatpay.formats import BEIJING

State = WechatPayDevTrade.State
PAID_STATES = (State.SUCCESS, State.REFUND)


class GatewayRefusal(Exception):
    """An error answer as WeChat Pay gives it: an HTTP status and `{"code", "message"}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def as_answer(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def _beijing_now(pattern: str) -> str:
    return timezone.now().astimezone(BEIJING).strftime(pattern)


def new_prepay_id() -> str:
    return "wx" + _beijing_now("%d%H%M%S") + secrets.token_hex(13)


def new_transaction_id() -> str:
    """28 digits like WeChat Pay's: `4200000`, the Beijing date, digits of no meaning."""
    return "4200000" + _beijing_now("%Y%m%d") + f"{secrets.randbelow(10**13):013d}"


def new_refund_id() -> str:
    return "50000" + _beijing_now("%Y%m%d") + f"{secrets.randbelow(10**16):016d}"


def open_trade(
    *,
    out_trade_no: str,
    appid: str,
    mchid: str,
    trade_type: str,
    description: str,
    total: int,
    notify_url: str,
    time_expire: datetime | None,
    payer_client_ip: str,
) -> WechatPayDevTrade:
    """The trade a Native or H5 order opens, or the one opened before for the same out_trade_no."""
    with transaction.atomic():
        trade, created = WechatPayDevTrade.objects.select_for_update().get_or_create(
            out_trade_no=out_trade_no,
            defaults={
                "appid": appid,
                "mchid": mchid,
                "trade_type": trade_type,
                "description": description,
                "total": total,
                "notify_url": notify_url,
                "time_expire": time_expire,
                "payer_client_ip": payer_client_ip,
                "prepay_id": new_prepay_id(),
            },
        )
        if created:
            _close_if_expired(trade)
            return trade
        # The buyer must never pay terms the first request did not name.
        if (trade.mchid, trade.appid, trade.trade_type, trade.total, trade.description) != (
            mchid,
            appid,
            trade_type,
            total,
            description,
        ):
            raise GatewayRefusal(403, "OUT_TRADE_NO_USED", "商户订单号重复 (out_trade_no was used with other terms)")
        _close_if_expired(trade)
        if trade.trade_state in PAID_STATES:
            raise GatewayRefusal(400, "ORDERPAID", "该订单已支付 (the trade is paid)")
        if trade.trade_state == State.CLOSED:
            raise GatewayRefusal(400, "ORDER_CLOSED", "订单已关闭 (the trade is closed)")
        trade.notify_url, trade.time_expire, trade.payer_client_ip = notify_url, time_expire, payer_client_ip
        trade.save(update_fields=["notify_url", "time_expire", "payer_client_ip"])
        return trade


def pay_trade(*, prepay_id: str) -> tuple[WechatPayDevTrade, bool]:
    """The buyer pays. Returns the trade and whether this call paid it (False on a repeat click).
    Raises WechatPayDevTrade.DoesNotExist, or GatewayRefusal for a closed or expired trade."""
    with transaction.atomic():
        trade = WechatPayDevTrade.objects.select_for_update().get(prepay_id=prepay_id)
        _close_if_expired(trade)
        if trade.trade_state in PAID_STATES:
            return trade, False
        if trade.trade_state == State.CLOSED:
            raise GatewayRefusal(400, "ORDER_CLOSED", "订单已关闭 (the trade is closed or expired)")
        trade.trade_state = State.SUCCESS
        trade.transaction_id = new_transaction_id()
        trade.success_time = timezone.now()
        trade.save(update_fields=["trade_state", "transaction_id", "success_time"])
        return trade, True


def view_trade(*, prepay_id: str, trade_type: str) -> WechatPayDevTrade:
    """The trade behind a code_url or h5_url. Raises WechatPayDevTrade.DoesNotExist."""
    with transaction.atomic():
        trade = WechatPayDevTrade.objects.select_for_update().get(prepay_id=prepay_id, trade_type=trade_type)
        _close_if_expired(trade)
        return trade


def query_trade(*, out_trade_no: str, mchid: str) -> WechatPayDevTrade:
    with transaction.atomic():
        trade = _locked(out_trade_no, mchid, GatewayRefusal(404, "ORDER_NOT_EXIST", "订单不存在"))
        _close_if_expired(trade)
        return trade


def close_trade(*, out_trade_no: str, mchid: str) -> None:
    """As WeChat Pay: closing a closed trade, or one it never had, answers 204 all the same; only
    a paid one is refused."""
    with transaction.atomic():
        trade = WechatPayDevTrade.objects.select_for_update().filter(out_trade_no=out_trade_no, mchid=mchid).first()
        if trade is None:
            return
        if trade.trade_state in PAID_STATES:
            raise GatewayRefusal(400, "ORDERPAID", "订单已支付 (a paid trade cannot be closed)")
        if trade.trade_state == State.NOTPAY:
            trade.trade_state = State.CLOSED
            trade.save(update_fields=["trade_state"])


def refund_trade(
    *, mchid: str, out_trade_no: str, out_refund_no: str, refund: int, total: int, reason: str, notify_url: str
) -> tuple[WechatPayDevRefund, bool]:
    """Refund part of a paid trade, at once. Returns the refund and whether this call made it
    (False for a repeat of an out_refund_no already refunded, which WeChat Pay answers without
    refunding again)."""
    with transaction.atomic():
        trade = _locked(out_trade_no, mchid, GatewayRefusal(404, "RESOURCE_NOT_EXISTS", "订单不存在"))
        # Looked up under the trade's lock: two requests with one out_refund_no refund once.
        earlier = WechatPayDevRefund.objects.filter(out_refund_no=out_refund_no).select_related("trade").first()
        if earlier is not None:
            if earlier.trade_id != trade.pk or (earlier.refund, earlier.total) != (refund, total):
                raise GatewayRefusal(
                    400, "INVALID_REQUEST", "订单金额或退款金额与之前请求不一致，请核实后再试 (out_refund_no was used)"
                )
            return earlier, False
        if trade.trade_state not in PAID_STATES:
            raise GatewayRefusal(400, "INVALID_REQUEST", "订单未支付，无法退款 (only a paid trade can be refunded)")
        if total != trade.total:
            raise GatewayRefusal(400, "PARAM_ERROR", "amount.total与订单金额不一致 (total is not the trade's total)")
        if not 0 < refund <= trade.total - trade.refunded:
            raise GatewayRefusal(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额 (more than is left to refund)")
        now = timezone.now()
        made = WechatPayDevRefund.objects.create(
            trade=trade,
            out_refund_no=out_refund_no,
            refund_id=new_refund_id(),
            refund=refund,
            total=total,
            reason=reason,
            notify_url=notify_url,
            # The stand-in's bank answers at once; the refund request is still answered PROCESSING,
            # as WeChat Pay's usually is, and the result goes out as a REFUND.SUCCESS notify.
            status=WechatPayDevRefund.Status.SUCCESS,
            success_time=now,
        )
        trade.refunded += refund
        trade.trade_state = State.REFUND
        trade.save(update_fields=["refunded", "trade_state"])
        return made, True


def query_refund(*, out_refund_no: str, mchid: str) -> WechatPayDevRefund:
    refund = (
        WechatPayDevRefund.objects.select_related("trade")
        .filter(out_refund_no=out_refund_no, trade__mchid=mchid)
        .first()
    )
    if refund is None:
        raise GatewayRefusal(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
    return refund


def _locked(out_trade_no: str, mchid: str, absent: GatewayRefusal) -> WechatPayDevTrade:
    trade = WechatPayDevTrade.objects.select_for_update().filter(out_trade_no=out_trade_no, mchid=mchid).first()
    if trade is None:
        raise absent
    return trade


def _close_if_expired(trade: WechatPayDevTrade) -> None:
    # WeChat Pay closes an unpaid trade by itself once time_expire passes; nothing can pay it after.
    if trade.trade_state == State.NOTPAY and trade.time_expire and trade.time_expire <= timezone.now():
        trade.trade_state = State.CLOSED
        trade.save(update_fields=["trade_state"])

"""What the providers tell us: notifies (the source of truth) and the Alipay browser return (a
hint). Each is verified by the provider's client before anything of it is believed, recorded,
and applied through the one settle path (orders/services/payment.py)."""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from billing import services as billing
from billing.alipay.client import PAID_STATUSES, get_alipay_client
from billing.alipay.formats import parse_amount
from billing.wechatpay.configured import get_wechatpay_client
from billing.wechatpay.errors import WechatPayError
from billing.wechatpay.results import RefundNotification
from orders.models import Order, PaymentAttempt, Refund
from orders.services.payment import Settlement, Verdict, frontend_order_url, settle_payment
from orders.services.providers import ProviderError, ProviderRefund, RefundState, provider_for, wechat_refund_state
from orders.services.refund_execution import apply_refund_outcome

logger = logging.getLogger(__name__)
ALIPAY = PaymentAttempt.Provider.ALIPAY
WECHAT = PaymentAttempt.Provider.WECHAT


def _parse_amount(raw: str | None) -> Decimal | None:
    try:
        return parse_amount(raw)
    except ValueError:
        return None


def _attempt_order(out_trade_no: str, provider: str) -> Order | None:
    attempt = PaymentAttempt.objects.filter(out_trade_no=out_trade_no, provider=provider).select_related("order")
    found = attempt.first()
    return found.order if found else None


# Only this much of a notify that did not verify is kept: enough to investigate, not a dump
# (anyone can POST to the notify endpoints).
UNVERIFIED_BODY_CHARS = 200


def unverified_summary(*, notify_id: str, body: bytes, remote_addr: str, **fields: str) -> dict[str, str]:
    return {
        "notify_id": notify_id[:64],
        **{name: value[:64] for name, value in fields.items()},
        "body": body[: UNVERIFIED_BODY_CHARS * 4].decode("utf-8", "replace")[:UNVERIFIED_BODY_CHARS],
        "remote_addr": remote_addr,
    }


def handle_alipay_notify(*, params: dict[str, str], body: bytes, remote_addr: str) -> bool:
    """True when Alipay should stop sending this notify (we answer `success`)."""
    client = get_alipay_client()
    if not client.verify_notification(params):
        summary = unverified_summary(
            notify_id=params.get("notify_id", ""),
            out_trade_no=params.get("out_trade_no", ""),
            body=body,
            remote_addr=remote_addr,
        )
        billing.record_notification(params=summary, verdict=Verdict.REJECTED, reason="bad signature")
        return False
    if not client.is_ours(params):
        billing.record_notification(params=params, verdict=Verdict.REJECTED, reason="app_id or seller_id not ours")
        return False
    amount = _parse_amount(params.get("total_amount"))
    out_trade_no = params.get("out_trade_no", "")
    if amount is None or not out_trade_no:
        billing.record_notification(params=params, verdict=Verdict.REJECTED, reason="missing out_trade_no or amount")
        return False
    if params.get("trade_status") not in PAID_STATUSES:
        # Signed and ours but not a payment (WAIT_BUYER_PAY, TRADE_CLOSED): nothing to change.
        order = _attempt_order(out_trade_no, ALIPAY)
        billing.record_notification(
            params=params, verdict=Verdict.IGNORED, reason=f"trade_status {params.get('trade_status')}", order=order
        )
        return order is not None
    settlement: Settlement = settle_payment(
        provider=ALIPAY, out_trade_no=out_trade_no, provider_trade_no=params.get("trade_no", ""), amount=amount
    )
    billing.record_notification(
        params=params, verdict=settlement.verdict, reason=settlement.reason, order=settlement.order
    )
    return settlement.verdict != Verdict.REJECTED


def handle_alipay_return(*, params: dict[str, str]) -> str:
    """Where to send the browser back to. A return is only a hint: it never marks an order paid
    by itself, but a verified one makes us ask Alipay (trade query), which may."""
    out_trade_no = params.get("out_trade_no", "")
    client = get_alipay_client()
    if not client.verify_notification(params) or not client.is_ours(params):
        return frontend_order_url(out_trade_no.split("_")[0], outcome="invalid_signature")
    attempt = PaymentAttempt.objects.filter(out_trade_no=out_trade_no, provider=ALIPAY).select_related("order").first()
    if attempt is None:
        return frontend_order_url("", outcome="unknown_order")
    order = attempt.order
    if order.status == Order.Status.PENDING:
        try:
            trade = provider_for(ALIPAY).query(out_trade_no=out_trade_no)
        except ProviderError:
            logger.warning("trade query after return failed for %s", out_trade_no, exc_info=True)
            trade = None
        if trade is not None and trade.paid:
            settle_payment(
                provider=ALIPAY, out_trade_no=out_trade_no, provider_trade_no=trade.trade_no, amount=trade.amount
            )
            order.refresh_from_db()
    return frontend_order_url(order.order_no, outcome=order.status)


@dataclass(frozen=True)
class WechatAnswer:
    """What the notify endpoint answers WeChat Pay: 204 when we hold the outcome, else an error
    status with `{"code": "FAIL", "message": ...}`, which makes WeChat Pay send it again."""

    status: int
    message: str = ""


def handle_wechat_notify(*, headers: Mapping[str, str], body: bytes, remote_addr: str) -> WechatAnswer:
    try:
        notification = get_wechatpay_client().parse_notification(headers=headers, body=body)
    except WechatPayError as exc:
        summary = unverified_summary(
            notify_id=headers.get("Wechatpay-Nonce", ""),
            serial=headers.get("Wechatpay-Serial", ""),
            body=body,
            remote_addr=remote_addr,
        )
        billing.record_notification(params=summary, verdict=Verdict.REJECTED, reason=str(exc), provider=WECHAT)
        return WechatAnswer(400, "notify did not verify")
    if isinstance(notification, RefundNotification):
        return _wechat_refund_notify(notification)
    fields = {
        "notify_id": notification.event_id,
        "event_type": notification.event_type,
        "out_trade_no": notification.out_trade_no,
        "trade_no": notification.transaction_id,
        "trade_status": notification.trade_state,
        "total_amount": str(notification.total_amount),
    }
    if not notification.is_paid:
        order = _attempt_order(notification.out_trade_no, WECHAT)
        billing.record_notification(
            params=fields,
            verdict=Verdict.IGNORED,
            reason=f"trade_state {notification.trade_state}",
            order=order,
            provider=WECHAT,
        )
        return WechatAnswer(204)
    settlement = settle_payment(
        provider=WECHAT,
        out_trade_no=notification.out_trade_no,
        provider_trade_no=notification.transaction_id,
        amount=notification.total_amount,
    )
    billing.record_notification(
        params=fields, verdict=settlement.verdict, reason=settlement.reason, order=settlement.order, provider=WECHAT
    )
    if settlement.verdict == Verdict.REJECTED:
        return WechatAnswer(400, settlement.reason)
    return WechatAnswer(204)


def _wechat_refund_notify(notification: RefundNotification) -> WechatAnswer:
    # A refund of ours: its outcome is applied (once) when it names the refund's trade and amount.
    # A stray payment's refund is marked done when WeChat Pay accepts it (a fixed out_refund_no
    # makes a retry safe); its notify only confirms, or tells of a refund the bank bounced.
    order = _attempt_order(notification.out_trade_no, WECHAT)
    outcome = ""
    refund = Refund.objects.filter(request_no=notification.out_refund_no).select_related("attempt").first()
    if refund is not None and refund.attempt is not None:
        if (refund.attempt.out_trade_no, refund.amount) != (notification.out_trade_no, notification.refund_amount):
            outcome = f": not refund {refund.request_no}'s trade and amount"
            logger.error("WeChat Pay refund notify %s%s", notification.out_refund_no, outcome)
        elif wechat_refund_state(notification.refund_status) != RefundState.PROCESSING:
            state = apply_refund_outcome(
                request_no=refund.request_no,
                outcome=ProviderRefund(
                    wechat_refund_state(notification.refund_status),
                    provider_refund_id=notification.refund_id,
                    message=f"wechat: refund {notification.refund_status} (notify)",
                ),
            )
            outcome = f": refund {refund.request_no} {state}"
    elif notification.refund_status != "SUCCESS":
        logger.error("WeChat Pay refund %s ended %s", notification.out_refund_no, notification.refund_status)
    billing.record_notification(
        params={
            "notify_id": notification.event_id,
            "event_type": notification.event_type,
            "out_trade_no": notification.out_trade_no,
            "trade_no": notification.transaction_id,
            "trade_status": notification.refund_status,
            "total_amount": str(notification.refund_amount),
            "out_refund_no": notification.out_refund_no,
        },
        verdict=Verdict.IGNORED,
        reason=f"refund {notification.refund_status}{outcome}",
        order=order,
        provider=WECHAT,
    )
    return WechatAnswer(204)

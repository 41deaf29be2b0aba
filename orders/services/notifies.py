"""What the providers tell us: notifies (the source of truth) and the Alipay browser return (a
hint). Each is verified by the provider's client before anything of it is believed, recorded,
and applied through the one settle path (orders/services/payment.py)."""

import logging
from decimal import Decimal

from billing import services as billing
from billing.alipay.client import PAID_STATUSES, get_alipay_client
from billing.alipay.formats import parse_amount
from orders.models import Order, PaymentAttempt
from orders.services.payment import Settlement, Verdict, frontend_order_url, settle_payment
from orders.services.providers import ProviderError, provider_for

logger = logging.getLogger(__name__)
ALIPAY = PaymentAttempt.Provider.ALIPAY


def _parse_amount(raw: str | None) -> Decimal | None:
    try:
        return parse_amount(raw)
    except ValueError:
        return None


def _attempt_order(out_trade_no: str, provider: str) -> Order | None:
    attempt = PaymentAttempt.objects.filter(out_trade_no=out_trade_no, provider=provider).select_related("order")
    found = attempt.first()
    return found.order if found else None


def handle_alipay_notify(*, params: dict[str, str]) -> bool:
    """True when Alipay should stop sending this notify (we answer `success`)."""
    client = get_alipay_client()
    if not client.verify_notification(params):
        billing.record_notification(params=params, verdict=Verdict.REJECTED, reason="bad signature")
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

"""Alipay payment of orders: the pay URL, the notify (the source of truth), the browser return,
and the refund of money that arrived for an order we had already cancelled."""

import logging
import re
from decimal import Decimal
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing import services as billing
from billing.alipay.client import PAID_STATUSES, get_alipay_client
from billing.alipay.errors import AlipayError
from billing.alipay.formats import parse_amount
from billing.models import PaymentNotification, PointsEntry
from core.errors import DomainError
from core.models import Enrollment, User
from orders import events
from orders.errors import OrderErrorCode
from orders.models import Order
from orders.services.settlement import earned_points, lock_order, settle_paid_order

logger = logging.getLogger(__name__)
Verdict = PaymentNotification.Verdict


def order_subject(order: Order) -> str:
    names = [line.name for line in order.lines.all()]
    subject = names[0] if len(names) == 1 else f"{names[0]} 等{len(names)}门课程"
    return subject[:128]


def request_payment(*, user: User, order_no: str) -> str:
    """The signed page-pay URL for a pending order before its deadline."""
    with transaction.atomic():
        order = lock_order(order_no=order_no, user=user)
        if order.status != Order.Status.PENDING or order.expires_at <= timezone.now():
            raise DomainError(
                OrderErrorCode.ORDER_NOT_PAYABLE,
                f"Order {order_no} can no longer be paid ({order.status}).",
                details={"status": order.status, "expires_at": order.expires_at.isoformat()},
            )
        if order.pay_requested_at is None:
            # Under the row lock: expiry reads this to know whether Alipay may hold a trade.
            order.pay_requested_at = timezone.now()
            order.save(update_fields=["pay_requested_at"])
    return get_alipay_client().page_pay_url(
        out_trade_no=order.order_no,
        total_amount=order.pay_amount,
        subject=order_subject(order),
        time_expire=order.expires_at,
    )


def _parse_amount(raw: str | None) -> Decimal | None:
    try:
        return parse_amount(raw)
    except ValueError:
        return None


def settle_trade(*, order_no: str, trade_no: str, total_amount: Decimal) -> tuple[str, str, Order | None]:
    """Applies a payment Alipay confirmed (by notify or by trade query) under the order's lock.
    Returns (verdict, reason, order). Safe to call any number of times for the same trade."""
    with transaction.atomic():
        try:
            order = lock_order(order_no=order_no)
        except DomainError:
            return Verdict.REJECTED, "unknown out_trade_no", None
        if total_amount != order.pay_amount:
            return Verdict.REJECTED, f"total_amount {total_amount} != pay_amount {order.pay_amount}", order
        if order.status == Order.Status.PENDING:
            settle_paid_order(order=order, trade_no=trade_no)
            return Verdict.PAID, "", order
        if order.status == Order.Status.CANCELLED:
            if not order.trade_no:
                order.trade_no = trade_no
                order.save(update_fields=["trade_no"])
            if order.refunded_at is None:
                return Verdict.REFUND_REQUIRED, "paid after cancellation", order
            return Verdict.DUPLICATE, "paid after cancellation, already refunded", order
        return Verdict.DUPLICATE, f"order already {order.status}", order


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
    order_no = params.get("out_trade_no", "")
    if amount is None or not order_no:
        billing.record_notification(params=params, verdict=Verdict.REJECTED, reason="missing out_trade_no or amount")
        return False
    if params.get("trade_status") not in PAID_STATUSES:
        # Signed and ours but not a payment (WAIT_BUYER_PAY, TRADE_CLOSED): nothing to change.
        order = Order.objects.filter(order_no=order_no).first()
        billing.record_notification(
            params=params, verdict=Verdict.IGNORED, reason=f"trade_status {params.get('trade_status')}", order=order
        )
        return order is not None
    with transaction.atomic():
        verdict, reason, order = settle_trade(
            order_no=order_no, trade_no=params.get("trade_no", ""), total_amount=amount
        )
        billing.record_notification(params=params, verdict=verdict, reason=reason, order=order)
    if verdict == Verdict.REFUND_REQUIRED:
        return start_refund(order_no=order_no)
    return verdict != Verdict.REJECTED


def start_refund(*, order_no: str) -> bool:
    """Hands the refund to the worker when one is subscribed, else refunds now. False when the
    refund could not even be started, so Alipay sends the notify again and we try again."""
    if events.refund_needed(order_no):
        return True
    try:
        refund_cancelled_payment(order_no=order_no)
    except AlipayError:
        logger.exception("refund of cancelled order %s failed; waiting for Alipay to resend", order_no)
        return False
    return True


def handle_alipay_return(*, params: dict[str, str]) -> str:
    """Where to send the browser back to. A return is only a hint: it never marks an order paid
    by itself, but a verified one makes us ask Alipay (trade query), which may."""
    order_no = params.get("out_trade_no", "")
    client = get_alipay_client()
    if not client.verify_notification(params) or not client.is_ours(params):
        return frontend_order_url(order_no, outcome="invalid_signature")
    order = Order.objects.filter(order_no=order_no).first()
    if order is None:
        return frontend_order_url("", outcome="unknown_order")
    if order.status == Order.Status.PENDING:
        try:
            trade = client.query_trade(out_trade_no=order_no)
        except AlipayError:
            logger.warning("trade query after return failed for %s", order_no, exc_info=True)
            trade = None
        if trade is not None and trade.is_paid:
            settle_trade(order_no=order_no, trade_no=trade.trade_no, total_amount=trade.total_amount)
            order.refresh_from_db()
    return frontend_order_url(order_no, outcome=order.status)


ORDER_NO = re.compile(r"^[0-9]{1,32}$")


def frontend_order_url(order_no: str, *, outcome: str) -> str:
    # The order number may come from an unverified return: only a well-formed one goes in the path.
    path = f"/orders/{quote(order_no, safe='')}" if ORDER_NO.match(order_no or "") else "/orders"
    return f"{settings.FRONTEND_URL}{path}?{urlencode({'payment': outcome})}"


def refund_cancelled_payment(*, order_no: str) -> bool:
    """Gives back money that arrived for a cancelled order. Idempotent: the out_request_no is fixed
    per order, and Alipay refunds one out_request_no at most once."""
    order = Order.objects.filter(order_no=order_no).first()
    if order is None or order.status != Order.Status.CANCELLED or not order.trade_no or order.refunded_at:
        return False
    get_alipay_client().refund_trade(
        out_trade_no=order.order_no, refund_amount=order.pay_amount, out_request_no=f"{order.order_no}-cancelled"
    )
    Order.objects.filter(pk=order.pk, refunded_at__isnull=True).update(refunded_at=timezone.now())
    return True


def refund_paid_order(*, order_no: str) -> Order:
    """paid -> refunded, by an operator: the money goes back through Alipay first, then, under the
    order's lock, its enrolments are revoked, the points it spent come back and the points it
    earned are taken back (as far as the balance allows). The coupon stays used."""
    order = Order.objects.filter(order_no=order_no).first()
    if order is None:
        raise DomainError(OrderErrorCode.ORDER_NOT_FOUND, f"Order {order_no} does not exist.")
    if order.status != Order.Status.PAID:
        raise DomainError(
            OrderErrorCode.ORDER_NOT_REFUNDABLE,
            f"Order {order_no} is {order.status}; only paid orders can be refunded.",
        )
    if order.pay_amount > 0:
        # Idempotent at Alipay by out_request_no: a retry after a timeout refunds once.
        get_alipay_client().refund_trade(
            out_trade_no=order.order_no, refund_amount=order.pay_amount, out_request_no=f"{order.order_no}-refund"
        )
    with transaction.atomic():
        order = lock_order(order_no=order_no)
        if order.status != Order.Status.PAID:
            return order
        order.status = Order.Status.REFUNDED
        order.refunded_at = timezone.now()
        order.save(update_fields=["status", "refunded_at"])
        Enrollment.objects.filter(order=order).delete()
        if order.points_used:
            billing.credit_points(
                user=order.user, amount=order.points_used, reason=PointsEntry.Reason.ORDER_REFUND, order=order
            )
        earned = earned_points(order.pay_amount)
        if earned:
            billing.take_back_points(
                user=order.user, amount=earned, reason=PointsEntry.Reason.EARNED_REVERSAL, order=order
            )
    return order

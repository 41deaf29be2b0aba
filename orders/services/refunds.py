"""An operator's refund of a whole paid order (the Django admin's action)."""

from django.db import transaction
from django.utils import timezone

from billing import services as billing
from billing.models import PointsEntry
from core.errors import DomainError
from core.models import Enrollment
from orders.errors import OrderErrorCode
from orders.models import Order, PaymentAttempt
from orders.services.providers import provider_for
from orders.services.settlement import earned_points, lock_order


def refund_paid_order(*, order_no: str) -> Order:
    """paid -> refunded: the money goes back through the provider of the attempt that paid, then,
    under the order's lock, its enrolments are revoked, the points it spent come back and the
    points it earned are taken back (as far as the balance allows). The coupon stays used."""
    order = Order.objects.filter(order_no=order_no).first()
    if order is None:
        raise DomainError(OrderErrorCode.ORDER_NOT_FOUND, f"Order {order_no} does not exist.")
    if order.status != Order.Status.PAID:
        raise DomainError(
            OrderErrorCode.ORDER_NOT_REFUNDABLE,
            f"Order {order_no} is {order.status}; only paid orders can be refunded.",
        )
    paid = order.payment_attempts.filter(status=PaymentAttempt.Status.PAID).first()
    if paid is not None:
        # Idempotent at the provider by the request id: a retry after a timeout refunds once.
        provider_for(paid.provider).refund(
            out_trade_no=paid.out_trade_no,
            refund_request_no=f"{order.order_no}-refund",
            amount=order.pay_amount,
            total=paid.amount,
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

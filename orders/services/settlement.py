"""Order state transitions (DESIGN.md "Order states"). Each one runs under the order's row lock,
taken first, so paying and cancelling cannot both win."""

import math

from django.conf import settings
from django.utils import timezone

from billing import services as billing
from billing.models import PointsEntry
from core.errors import DomainError
from core.models import Enrollment, User
from orders.errors import OrderErrorCode
from orders.models import CartItem, Order


def lock_order(*, order_no: str, user: User | None = None) -> Order:
    orders = Order.objects.select_for_update().filter(order_no=order_no)
    if user is not None:
        orders = orders.filter(user=user)
    order = orders.first()
    if order is None:
        raise DomainError(OrderErrorCode.ORDER_NOT_FOUND, f"Order {order_no} does not exist.")
    return order


def earned_points(pay_amount) -> int:
    return math.floor(pay_amount * settings.POINTS_EARNED_PER_YUAN)


def settle_paid_order(*, order: Order, trade_no: str, course_ids: list[int] | None = None) -> Order:
    """pending -> paid, for a locked order: enrolments, coupon used, cart cleaned, points earned."""
    assert order.status == Order.Status.PENDING, order.status
    if course_ids is None:
        course_ids = list(order.lines.values_list("course_id", flat=True))
    order.status = Order.Status.PAID
    order.paid_at = timezone.now()
    order.trade_no = trade_no
    order.save(update_fields=["status", "paid_at", "trade_no"])
    # ignore_conflicts: a course enrolled through another order stays enrolled through that one.
    Enrollment.objects.bulk_create(
        [Enrollment(user_id=order.user_id, course_id=course_id, order=order) for course_id in course_ids],
        ignore_conflicts=True,
    )
    CartItem.objects.filter(user_id=order.user_id, course_id__in=course_ids).delete()
    # Points account before coupon: the lock order checkout uses, so the two cannot deadlock.
    points = earned_points(order.pay_amount)
    if points > 0:
        billing.credit_points(user=order.user, amount=points, reason=PointsEntry.Reason.ORDER_EARNED, order=order)
    billing.mark_coupon_used(order=order)
    return order


def release_order_holds(*, order: Order) -> None:
    """Gives back what a pending order held: its points (through the ledger) and its coupon, in
    checkout's lock order (points account, then coupon) so a cancel and a checkout cannot deadlock."""
    if order.points_used:
        billing.credit_points(
            user=order.user, amount=order.points_used, reason=PointsEntry.Reason.ORDER_REFUND, order=order
        )
    billing.release_coupon(order=order)


def cancel_locked_order(*, order: Order, reason: str) -> Order:
    assert order.status == Order.Status.PENDING, order.status
    order.status = Order.Status.CANCELLED
    order.cancelled_at = timezone.now()
    order.cancel_reason = reason
    order.save(update_fields=["status", "cancelled_at", "cancel_reason"])
    release_order_holds(order=order)
    return order

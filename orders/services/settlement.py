"""Order state transitions (DESIGN.md "Order states"). Each one runs under the order's row lock,
taken first, so paying and cancelling cannot both win."""

import math
from collections.abc import Sequence

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


def settle_paid_order(*, order: Order, course_ids: list[int] | None = None) -> Order:
    """pending -> paid, for a locked order: enrolments, coupon used, cart cleaned, points earned."""
    assert order.status == Order.Status.PENDING, order.status
    if course_ids is None:
        course_ids = list(order.lines.values_list("course_id", flat=True))
    order.status = Order.Status.PAID
    order.paid_at = timezone.now()
    order.save(update_fields=["status", "paid_at"])
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


def cancel_locked_orders(*, orders: Sequence[Order], reason: str) -> None:
    """The one cancel: a user's cancel, an expiry message and the sweeper's batches all end here,
    with the orders' rows locked by the caller and every one still pending. Marks them cancelled
    and gives back what they held: points through the ledger, then coupons, in checkout's lock
    order (points accounts, then coupons) so a cancel and a checkout cannot deadlock. A fixed
    number of statements however many orders there are."""
    assert all(order.status == Order.Status.PENDING for order in orders), [order.status for order in orders]
    now = timezone.now()
    Order.objects.filter(pk__in=[order.pk for order in orders]).update(
        status=Order.Status.CANCELLED, cancelled_at=now, cancel_reason=reason
    )
    for order in orders:
        order.status, order.cancelled_at, order.cancel_reason = Order.Status.CANCELLED, now, reason
    billing.credit_points_in_bulk(
        credits=[(order.user_id, order.points_used, order) for order in orders],
        reason=PointsEntry.Reason.ORDER_REFUND,
    )
    billing.release_coupons(order_ids=[order.pk for order in orders])

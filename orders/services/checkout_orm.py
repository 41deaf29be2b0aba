"""The checkout transaction through the ORM, for SQLite (the embedded dev default), where
checkout_sql's Postgres statements do not run. Same steps, same lock order, same checks; the
test suite runs the checkout tests on Postgres through both."""

from billing import services as billing
from billing.models import PointsAccount, UserCoupon
from orders.models import CartItem, Order, OrderLine
from orders.selectors import owned_or_pending
from orders.services.checkout_rows import LockedRows


def insert_order(*, order: Order) -> None:
    order.save(force_insert=True)


def lock_rows(*, order: Order, lock_points: bool, user_coupon_id: int | None) -> LockedRows:
    items = [
        item
        for item in CartItem.objects.select_for_update(of=("self",))
        .filter(user_id=order.user_id, selected=True)
        .select_related("course")
        .order_by("pk")
        if item.course.is_active
    ]
    course_ids = [item.course_id for item in items]
    enrolled, pending = owned_or_pending(user=order.user, course_ids=course_ids) if items else ([], {})
    account = None
    if lock_points:
        account = PointsAccount.objects.select_for_update().filter(user_id=order.user_id).first()
    user_coupon = None
    if user_coupon_id:
        user_coupon = UserCoupon.objects.select_for_update().filter(pk=user_coupon_id, user_id=order.user_id).first()
    return LockedRows(
        cart_item_ids=[item.pk for item in items],
        lines=[
            OrderLine(
                order=order,
                course_id=item.course_id,
                name=item.course.name,
                picture_url=item.course.picture_url,
                price=item.course.price,
            )
            for item in items
        ],
        enrolled_course_ids=enrolled,
        pending=pending,
        points_account=account,
        user_coupon=user_coupon,
    )


def apply_order(
    *,
    order: Order,
    lines: list[OrderLine],
    cart_item_ids: list[int],
    points_account: PointsAccount | None,
) -> None:
    OrderLine.objects.bulk_create(lines)
    CartItem.objects.filter(pk__in=cart_item_ids).delete()
    if order.user_coupon is not None:
        billing.lock_coupon_for_order(user_coupon=order.user_coupon, order=order)
    if points_account is not None and order.points_used:
        billing.debit_points(account=points_account, amount=order.points_used, order=order)
    order.save(
        update_fields=["subtotal", "coupon_discount", "points_used", "points_discount", "pay_amount", "user_coupon"]
    )

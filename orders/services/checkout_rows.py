"""What the checkout transaction locks before it prices the order (checkout_sql and
checkout_orm both return it; checkout.py decides what it means)."""

from dataclasses import dataclass

from billing.models import PointsAccount, UserCoupon
from orders.models import OrderLine


@dataclass(frozen=True)
class LockedRows:
    cart_item_ids: list[int]
    lines: list[OrderLine]  # unsaved, one per selected cart item of a course on sale
    enrolled_course_ids: list[int]
    pending: dict[int, str]  # course id -> number of another pending order holding it
    points_account: PointsAccount | None  # None when not asked for, or the user never had points
    user_coupon: UserCoupon | None  # None when not asked for, or not the user's

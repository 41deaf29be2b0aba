"""Billing's part of the checkout's statements (orders/services/checkout_sql.py sends them, in
its lock order and round trips, without spelling billing's tables): the locks on the points
account and the user coupon, and the CTEs that hold both for the order (the coupon locked to it,
the points debited through the ledger's MOVE_POINTS). Parameters are named `billing_*`.
"""

from collections.abc import Sequence
from datetime import datetime

from django.db import connection

from billing.ledger import MOVE_POINTS, PointsMove, points_moves
from billing.models import PointsAccount, PointsEntry, UserCoupon
from core.db import field_names

POINTS_ACCOUNT_FIELDS = field_names(PointsAccount)
LOCK_POINTS_ACCOUNT = "SELECT {} FROM billing_pointsaccount WHERE user_id = %(billing_user_id)s FOR UPDATE".format(
    ", ".join(POINTS_ACCOUNT_FIELDS)
)

USER_COUPON_FIELDS = field_names(UserCoupon)
LOCK_USER_COUPON = (
    "SELECT {} FROM billing_usercoupon WHERE id = %(billing_user_coupon_id)s AND user_id = %(billing_user_id)s "
    "FOR UPDATE".format(", ".join(USER_COUPON_FIELDS))
)

# Runs inside the order's own write, after every check passed under the locks above. A part that
# does not apply (no coupon, no points) matches no row.
HOLD_FOR_ORDER = f"""
held_coupon AS (
    UPDATE billing_usercoupon SET status = 'locked', order_id = %(billing_order_id)s
    WHERE id = %(billing_user_coupon_id)s
), {MOVE_POINTS.strip()}"""


def lock_params(*, user_id: int, user_coupon_id: int | None) -> dict[str, object]:
    return {"billing_user_id": user_id, "billing_user_coupon_id": user_coupon_id}


def locked_points_account(row: Sequence[object] | None) -> PointsAccount | None:
    """LOCK_POINTS_ACCOUNT's row as the model (None: the user never had points)."""
    return PointsAccount.from_db(connection.alias, POINTS_ACCOUNT_FIELDS, row) if row else None


def locked_user_coupon(row: Sequence[object] | None) -> UserCoupon | None:
    """LOCK_USER_COUPON's row as the model (None: missing, or another user's)."""
    return UserCoupon.from_db(connection.alias, USER_COUPON_FIELDS, row) if row else None


def hold_params(
    *, order_id: int, user_id: int, user_coupon_id: int | None, points: int, at: datetime
) -> dict[str, object]:
    debit = [PointsMove(user_id=user_id, delta=-points, order_id=order_id)] if points else []
    return {
        "billing_order_id": order_id,
        "billing_user_coupon_id": user_coupon_id,
        **points_moves(moves=debit, reason=PointsEntry.Reason.ORDER_DEBIT, at=at),
    }

"""A coupon claim as one statement (billing.services.claim_coupon sends it), the flash sale's hot
path: the conditional stock UPDATE takes one coupon from the hot row, and the user coupon is
inserted from the row it returns, with the terms copied as they are now.

One statement commits or fails as a whole: sold out or outside the window takes nothing and
inserts nothing; a second claim by the same user fails on user_coupon_one_claim_per_user and
takes its stock back with it. The hot row stays locked from the UPDATE to the end of the
statement's commit, with no round trip of Python in between (the ORM's claim held it across
BEGIN / INSERT / UPDATE / COMMIT). bench/coupon.pgbench.sql sends exactly this statement: change
both together.
"""

from collections.abc import Sequence
from datetime import datetime

from django.db import connection

from billing.models import UserCoupon
from core.db import field_names

USER_COUPON_FIELDS = field_names(UserCoupon)

CLAIM = """
WITH taken AS (
    UPDATE billing_coupon SET issued_count = issued_count + 1
    WHERE id = %(coupon_id)s AND issued_count < total_quantity AND starts_at <= %(now)s AND %(now)s < ends_at
    RETURNING id, name, kind, threshold, amount_off, percent_off, starts_at, ends_at
)
INSERT INTO billing_usercoupon (user_id, coupon_id, name, kind, threshold, amount_off, percent_off, starts_at,
    ends_at, status, order_id, claimed_at)
SELECT %(user_id)s, id, name, kind, threshold, amount_off, percent_off, starts_at, ends_at, 'unused', NULL, %(now)s
FROM taken
RETURNING {}""".format(", ".join(USER_COUPON_FIELDS))

# Why a claim took nothing (the cold path): an earlier claim, the coupon's window, its stock.
WHY_NOT_CLAIMED = """
SELECT name, EXISTS (SELECT FROM billing_usercoupon WHERE user_id = %(user_id)s AND coupon_id = %(coupon_id)s),
    starts_at <= %(now)s AND %(now)s < ends_at, issued_count < total_quantity
FROM billing_coupon WHERE id = %(coupon_id)s"""


def claim_params(*, user_id: int, coupon_id: int, now: datetime) -> dict[str, object]:
    return {"user_id": user_id, "coupon_id": coupon_id, "now": now}


def claimed_user_coupon(row: Sequence[object] | None) -> UserCoupon | None:
    """CLAIM's row as the model (None: nothing was taken)."""
    return UserCoupon.from_db(connection.alias, USER_COUPON_FIELDS, row) if row else None

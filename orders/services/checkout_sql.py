"""The checkout transaction as hand-written SQL (orders/services/checkout.py runs it).

It is the busiest write of the shop, and through the ORM building and compiling a dozen
querysets cost three times the CPU Postgres spends running the whole transaction (BENCHMARKS.md
"Checkout"). Here it is 5 round trips inside the transaction whatever the cart's size.
bench/checkout.pgbench.sql sends exactly these statements: change both together.
"""

from dataclasses import dataclass

from django.db import connection

from billing import checkout_sql as billing_sql
from billing.models import PointsAccount, UserCoupon
from orders.models import Order, OrderLine


@dataclass(frozen=True)
class LockedRows:
    """What the checkout locks before it prices the order (checkout.py decides what it means)."""

    cart_item_ids: list[int]
    lines: list[OrderLine]  # unsaved, one per selected cart item of a course on sale
    enrolled_course_ids: list[int]
    pending: dict[int, str]  # course id -> number of another pending order holding it
    points_account: PointsAccount | None  # None when not asked for, or the user never had points
    user_coupon: UserCoupon | None  # None when not asked for, or not the user's


INSERT_ORDER = """
INSERT INTO orders_order (order_no, user_id, status, pay_type, subtotal, coupon_discount, points_used,
    points_discount, pay_amount, idempotency_key, request_fingerprint, expires_at, cancel_reason, created_at)
VALUES (%s, %s, 'pending', %s, 0, 0, 0, 0, 0, %s, %s, %s, '', %s)
RETURNING id"""

# The selected cart, locked, with what check_not_owned would say about each course: enrolled, or
# waiting in another pending order of the user (an order being placed has no lines yet). The
# user's pending orders are found first, through order_user_status_idx: usually there are none.
LOCK_SELECTED_CART = """
WITH pending AS MATERIALIZED (
    SELECT line.course_id, pending_order.order_no
    FROM orders_order pending_order JOIN orders_orderline line ON line.order_id = pending_order.id
    WHERE pending_order.user_id = %(user_id)s AND pending_order.status = 'pending'
)
SELECT cart.id, course.id, course.name, course.picture_url, course.price,
    EXISTS (SELECT FROM core_enrollment WHERE user_id = cart.user_id AND course_id = cart.course_id),
    (SELECT order_no FROM pending WHERE course_id = cart.course_id LIMIT 1)
FROM orders_cartitem cart JOIN core_course course ON course.id = cart.course_id
WHERE cart.user_id = %(user_id)s AND cart.selected AND course.is_active
ORDER BY cart.id
FOR UPDATE OF cart"""

# Everything the priced order changes, in one round trip: its lines, the cart, and billing's
# holds (billing/checkout_sql.py: the coupon locked to the order, the points debited with their
# ledger entry), then the amounts. It answers the new lines' ids (the order's page shows them).
APPLY_ORDER = f"""
WITH order_lines AS (
    INSERT INTO orders_orderline (order_id, course_id, name, picture_url, price)
    SELECT %(order_id)s, * FROM unnest(%(course_ids)s::bigint[], %(names)s::varchar[], %(picture_urls)s::varchar[],
        %(prices)s::numeric[])
    RETURNING id, course_id
), checked_out AS (
    DELETE FROM orders_cartitem WHERE id = ANY(%(cart_item_ids)s::bigint[])
), {billing_sql.HOLD_FOR_ORDER.strip()}
UPDATE orders_order SET subtotal = %(subtotal)s, coupon_discount = %(coupon_discount)s, points_used = %(points_used)s,
    points_discount = %(points_discount)s, pay_amount = %(pay_amount)s, user_coupon_id = %(user_coupon_id)s
WHERE id = %(order_id)s
RETURNING (SELECT array_agg(id) FROM order_lines), (SELECT array_agg(course_id) FROM order_lines)"""


def insert_order(*, order: Order) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            INSERT_ORDER,
            [
                order.order_no,
                order.user_id,
                order.pay_type,
                order.idempotency_key,
                order.request_fingerprint,
                order.expires_at,
                order.created_at,
            ],
        )
        order.pk = cursor.fetchone()[0]
    order._state.adding = False


def lock_rows(*, order: Order, lock_points: bool, user_coupon_id: int | None) -> LockedRows:
    """The cart, then the points account and the user coupon when asked for, locked in that order
    in one round trip: Postgres runs the statements of one query string one after the other."""
    statements = [LOCK_SELECTED_CART]
    params = {"user_id": order.user_id, **billing_sql.lock_params(user_id=order.user_id, user_coupon_id=user_coupon_id)}
    if lock_points:
        statements.append(billing_sql.LOCK_POINTS_ACCOUNT)
    if user_coupon_id:
        statements.append(billing_sql.LOCK_USER_COUPON)
    account = coupon = None
    with connection.cursor() as cursor:
        cursor.execute(";\n".join(statements), params)
        cart = cursor.fetchall()
        if lock_points:
            cursor.nextset()
            account = cursor.fetchone()
        if user_coupon_id:
            cursor.nextset()
            coupon = cursor.fetchone()
    # One statement, one snapshot: after waiting for a cart lock, Postgres re-reads the locked
    # rows, and a course's cart row is deleted by the same transaction that makes it pending or
    # enrolled, so a concurrent checkout's course cannot slip through.
    return LockedRows(
        cart_item_ids=[row[0] for row in cart],
        lines=[
            OrderLine(order=order, course_id=course_id, name=name, picture_url=picture_url, price=price)
            for _, course_id, name, picture_url, price, _, _ in cart
        ],
        enrolled_course_ids=[course_id for _, course_id, _, _, _, is_enrolled, _ in cart if is_enrolled],
        pending={course_id: order_no for _, course_id, _, _, _, _, order_no in cart if order_no},
        points_account=billing_sql.locked_points_account(account),
        user_coupon=billing_sql.locked_user_coupon(coupon),
    )


def apply_order(*, order: Order, lines: list[OrderLine], cart_item_ids: list[int]) -> None:
    """Writes the priced order: its lines (their ids set), the cart, the coupon, the points and the
    amounts."""
    params: dict[str, object] = {
        "order_id": order.pk,
        "course_ids": [line.course_id for line in lines],
        "names": [line.name for line in lines],
        "picture_urls": [line.picture_url for line in lines],
        "prices": [line.price for line in lines],
        "cart_item_ids": cart_item_ids,
        "user_coupon_id": order.user_coupon_id,
        "points_used": order.points_used,
        "subtotal": order.subtotal,
        "coupon_discount": order.coupon_discount,
        "points_discount": order.points_discount,
        "pay_amount": order.pay_amount,
        **billing_sql.hold_params(
            order_id=order.pk,
            user_id=order.user_id,
            user_coupon_id=order.user_coupon_id,
            points=order.points_used,
            at=order.created_at,
        ),
    }
    with connection.cursor() as cursor:
        cursor.execute(APPLY_ORDER, params)
        line_ids, course_ids = cursor.fetchone()
    # A course is on an order once (order_line_unique_course): its id names the line.
    line_of = dict(zip(course_ids or [], line_ids or [], strict=True))
    for line in lines:
        line.pk = line_of[line.course_id]
        line._state.adding = False

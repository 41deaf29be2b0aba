"""The checkout transaction as hand-written SQL (orders/services/checkout.py runs it).

It is the busiest write of the shop, and through the ORM building and compiling a dozen
querysets cost three times the CPU Postgres spends running the whole transaction (BENCHMARKS.md
"Checkout"). Here it is 5 round trips inside the transaction whatever the cart's size.
bench/checkout.pgbench.sql sends exactly these statements: change both together.
"""

from dataclasses import dataclass

from django.db import connection

from billing.models import PointsAccount, UserCoupon
from core.db import field_names
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
    points_discount, pay_amount, idempotency_key, request_fingerprint, expires_at, cancel_reason, trade_no, created_at)
VALUES (%s, %s, 'pending', %s, 0, 0, 0, 0, 0, %s, %s, %s, '', '', %s)
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

POINTS_ACCOUNT_FIELDS = field_names(PointsAccount)
LOCK_POINTS_ACCOUNT = "SELECT {} FROM billing_pointsaccount WHERE user_id = %(user_id)s FOR UPDATE".format(
    ", ".join(POINTS_ACCOUNT_FIELDS)
)

USER_COUPON_FIELDS = field_names(UserCoupon)
LOCK_USER_COUPON = (
    "SELECT {} FROM billing_usercoupon WHERE id = %(user_coupon_id)s AND user_id = %(user_id)s FOR UPDATE".format(
        ", ".join(USER_COUPON_FIELDS)
    )
)

# Everything the priced order changes, in one round trip. The parts that do not apply (no coupon,
# no points) match no row. The ledger entry is written from the account row this statement
# updated, so balance and ledger cannot drift apart.
APPLY_ORDER = """
WITH order_lines AS (
    INSERT INTO orders_orderline (order_id, course_id, name, picture_url, price)
    SELECT %(order_id)s, * FROM unnest(%(course_ids)s::bigint[], %(names)s::varchar[], %(picture_urls)s::varchar[],
        %(prices)s::numeric[])
), checked_out AS (
    DELETE FROM orders_cartitem WHERE id = ANY(%(cart_item_ids)s::bigint[])
), coupon AS (
    UPDATE billing_usercoupon SET status = 'locked', order_id = %(order_id)s WHERE id = %(user_coupon_id)s
), account AS (
    UPDATE billing_pointsaccount SET balance = balance - %(points_used)s
    WHERE id = %(points_account_id)s
    RETURNING id, balance
), entry AS (
    INSERT INTO billing_pointsentry (account_id, delta, balance_after, reason, order_id, created_at)
    SELECT id, -%(points_used)s, balance, 'order_debit', %(order_id)s, %(now)s FROM account
)
UPDATE orders_order SET subtotal = %(subtotal)s, coupon_discount = %(coupon_discount)s, points_used = %(points_used)s,
    points_discount = %(points_discount)s, pay_amount = %(pay_amount)s, user_coupon_id = %(user_coupon_id)s
WHERE id = %(order_id)s"""


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
    statements, params = [LOCK_SELECTED_CART], {"user_id": order.user_id, "user_coupon_id": user_coupon_id}
    if lock_points:
        statements.append(LOCK_POINTS_ACCOUNT)
    if user_coupon_id:
        statements.append(LOCK_USER_COUPON)
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
        points_account=PointsAccount.from_db(connection.alias, POINTS_ACCOUNT_FIELDS, account) if account else None,
        user_coupon=UserCoupon.from_db(connection.alias, USER_COUPON_FIELDS, coupon) if coupon else None,
    )


def apply_order(
    *,
    order: Order,
    lines: list[OrderLine],
    cart_item_ids: list[int],
    points_account: PointsAccount | None,
) -> None:
    """Writes the priced order: its lines, the cart, the coupon, the points and the amounts."""
    params: dict[str, object] = {
        "order_id": order.pk,
        "course_ids": [line.course_id for line in lines],
        "names": [line.name for line in lines],
        "picture_urls": [line.picture_url for line in lines],
        "prices": [line.price for line in lines],
        "cart_item_ids": cart_item_ids,
        "user_coupon_id": order.user_coupon_id,
        "points_account_id": points_account.pk if points_account and order.points_used else None,
        "points_used": order.points_used,
        "now": order.created_at,
        "subtotal": order.subtotal,
        "coupon_discount": order.coupon_discount,
        "points_discount": order.points_discount,
        "pay_amount": order.pay_amount,
    }
    with connection.cursor() as cursor:
        cursor.execute(APPLY_ORDER, params)

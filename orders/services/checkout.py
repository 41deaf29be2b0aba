"""Turning the selected cart into an order exactly once (DESIGN.md "Idempotent order placement")."""

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from billing import services as billing
from billing.errors import BillingErrorCode
from billing.models import UserCoupon
from core.errors import DomainError
from core.models import User
from orders import events
from orders.errors import OrderErrorCode
from orders.models import Order, OrderLine
from orders.pricing import Quote, coupon_terms, quote
from orders.selectors import already_purchased
from orders.services.settlement import settle_paid_order

logger = logging.getLogger(__name__)

IDEMPOTENCY_CONSTRAINT = "order_unique_user_idempotency_key"
# How long a duplicate submit waits for the first one to finish before answering 409 is
# Postgres's lock_timeout, set per connection in settings.DATABASES (DB_LOCK_TIMEOUT_MS).


@dataclass(frozen=True)
class Placement:
    order: Order
    replayed: bool


def new_order_no() -> str:
    """Sortable by time (to the microsecond), then 4 random digits: 24 characters."""
    return timezone.now().strftime("%Y%m%d%H%M%S%f") + f"{secrets.randbelow(10_000):04d}"


def request_fingerprint(*, pay_type: str, user_coupon_id: int | None, points: int) -> str:
    canonical = json.dumps(
        {"pay_type": pay_type, "points": points, "user_coupon_id": user_coupon_id},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_idempotency_key(idempotency_key: str | None) -> str:
    key = (idempotency_key or "").strip()
    if not key:
        raise DomainError(OrderErrorCode.IDEMPOTENCY_KEY_REQUIRED, "Send an Idempotency-Key header (e.g. a UUID).")
    if len(key) > 255 or not key.isascii() or not key.isprintable():
        raise DomainError(
            OrderErrorCode.IDEMPOTENCY_KEY_REQUIRED, "The Idempotency-Key must be 1 to 255 printable ASCII characters."
        )
    return key


def _replay(*, user: User, idempotency_key: str, fingerprint: str) -> Placement | None:
    order = Order.objects.filter(user=user, idempotency_key=idempotency_key).first()
    if order is None:
        return None
    if order.request_fingerprint != fingerprint:
        raise DomainError(
            OrderErrorCode.IDEMPOTENCY_KEY_REUSED,
            "This Idempotency-Key was used for a different request; use a new key for a new order.",
            details={"order_no": order.order_no},
        )
    return Placement(order=order, replayed=True)


def _is_idempotency_conflict(exc: IntegrityError) -> bool:
    diag = getattr(exc.__cause__, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    return constraint == IDEMPOTENCY_CONSTRAINT or (constraint is None and "idempotency_key" in str(exc))


def _is_lock_timeout(exc: OperationalError) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) == "55P03"


def place_order(
    *, user: User, idempotency_key: str | None, pay_type: str, user_coupon_id: int | None, points: int
) -> Placement:
    key = check_idempotency_key(idempotency_key)
    fingerprint = request_fingerprint(pay_type=pay_type, user_coupon_id=user_coupon_id, points=points)
    now = timezone.now()
    order = Order(
        order_no=new_order_no(),
        user=user,
        pay_type=pay_type,
        idempotency_key=key,
        request_fingerprint=fingerprint,
        expires_at=now + timedelta(seconds=settings.ORDER_PAYMENT_TIMEOUT_SECONDS),
        created_at=now,
    )
    # No look-up before the insert: the unique index answers "seen this key?" as part of the
    # insert itself, so a new order costs no extra query and a replay costs one failed insert.
    stage = "insert"
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # The row goes in first: a concurrent duplicate blocks on the unique index right here
            # and fails once we commit, instead of doing the whole checkout a second time.
            _insert_order(cursor, order=order)
            stage = "checkout"
            _fill_order(cursor, order=order, user_coupon_id=user_coupon_id, points=points)
    except IntegrityError as exc:
        if not _is_idempotency_conflict(exc):
            raise
        replay = _replay(user=user, idempotency_key=key, fingerprint=fingerprint)
        if replay is None:  # the winner failed and rolled back: nothing to replay, try again
            raise DomainError(
                OrderErrorCode.IDEMPOTENCY_KEY_IN_USE, "Retry: a request with this key just failed."
            ) from exc
        return replay
    except OperationalError as exc:
        if not _is_lock_timeout(exc):
            raise
        if stage == "insert":
            raise DomainError(
                OrderErrorCode.IDEMPOTENCY_KEY_IN_USE, "A request with this Idempotency-Key is still being processed."
            ) from exc
        raise DomainError(OrderErrorCode.CHECKOUT_BUSY, "Your cart is being checked out by another request.") from exc
    return Placement(order=order, replayed=False)


# The checkout transaction is written in SQL rather than through the ORM: it is the busiest write
# of the shop, and building and compiling a dozen querysets cost several times the CPU Postgres
# spends running them (BENCHMARKS.md "Checkout"). bench/checkout.pgbench.sql sends exactly these
# statements; change both together. Lock order, as everywhere: order row (inserted), cart rows
# by id, points account, user coupon.

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

LOCK_POINTS_ACCOUNT = "SELECT id, balance FROM billing_pointsaccount WHERE user_id = %s FOR UPDATE"

LOCK_USER_COUPON = """
SELECT id, user_id, coupon_id, name, kind, threshold, amount_off, percent_off, starts_at, ends_at, status, order_id,
    claimed_at
FROM billing_usercoupon WHERE id = %s AND user_id = %s FOR UPDATE"""
USER_COUPON_FIELDS = [
    "id", "user_id", "coupon_id", "name", "kind", "threshold", "amount_off", "percent_off", "starts_at", "ends_at",
    "status", "order_id", "claimed_at",
]  # fmt: skip

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


def _insert_order(cursor: CursorWrapper, *, order: Order) -> None:
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


def _lock_user_coupon(cursor: CursorWrapper, *, user_id: int, user_coupon_id: int) -> UserCoupon:
    cursor.execute(LOCK_USER_COUPON, [user_coupon_id, user_id])
    row = cursor.fetchone()
    if row is None:
        # Another user's coupon looks exactly like a missing one (as billing.get_user_coupon).
        message = "That coupon is not yours or does not exist."
        raise DomainError(BillingErrorCode.COUPON_INVALID, message, details={"reason": "unknown"})
    return UserCoupon.from_db(connection.alias, USER_COUPON_FIELDS, row)


def _fill_order(cursor: CursorWrapper, *, order: Order, user_coupon_id: int | None, points: int) -> None:
    # Every limit is checked after its lock is held, so a concurrent checkout cannot spend the
    # same cart, points or coupon.
    cursor.execute(LOCK_SELECTED_CART, {"user_id": order.user_id})
    cart = cursor.fetchall()
    if not cart:
        raise DomainError(OrderErrorCode.CART_EMPTY, "Select at least one course in your cart.")
    enrolled = [course_id for _, course_id, _, _, _, is_enrolled, _ in cart if is_enrolled]
    pending = {course_id: order_no for _, course_id, _, _, _, _, order_no in cart if order_no}
    if enrolled or pending:
        raise already_purchased(enrolled_course_ids=enrolled, pending=pending)
    lines = [
        OrderLine(order=order, course_id=course_id, name=name, picture_url=picture_url, price=price)
        for _, course_id, name, picture_url, price, _, _ in cart
    ]
    course_ids = [line.course_id for line in lines]
    subtotal = sum((line.price for line in lines), start=order.subtotal)

    account_id, balance = None, 0
    if points:
        cursor.execute(LOCK_POINTS_ACCOUNT, [order.user_id])
        account_id, balance = cursor.fetchone() or (None, 0)
    user_coupon = None
    if user_coupon_id:
        user_coupon = _lock_user_coupon(cursor, user_id=order.user_id, user_coupon_id=user_coupon_id)
        billing.check_coupon_applies(user_coupon=user_coupon, subtotal=subtotal)
    priced: Quote = quote(
        subtotal=subtotal,
        terms=coupon_terms(user_coupon),
        points=points,
        points_balance=balance,
        points_per_yuan=settings.POINTS_PER_YUAN,
    )

    order.subtotal = priced.subtotal
    order.coupon_discount = priced.coupon_discount
    order.points_used = priced.points_used
    order.points_discount = priced.points_discount
    order.pay_amount = priced.pay_amount
    order.user_coupon = user_coupon
    cursor.execute(
        APPLY_ORDER,
        {
            "order_id": order.pk,
            "course_ids": course_ids,
            "names": [line.name for line in lines],
            "picture_urls": [line.picture_url for line in lines],
            "prices": [line.price for line in lines],
            "cart_item_ids": [row[0] for row in cart],
            "user_coupon_id": user_coupon_id if user_coupon else None,
            "points_account_id": account_id if priced.points_used else None,
            "points_used": priced.points_used,
            "now": order.created_at,
            "subtotal": order.subtotal,
            "coupon_discount": order.coupon_discount,
            "points_discount": order.points_discount,
            "pay_amount": order.pay_amount,
        },
    )
    # The response is built from these objects: the order and its lines need no second read.
    order._prefetched_objects_cache = {"lines": lines}
    if user_coupon is not None:
        user_coupon.status, user_coupon.order = UserCoupon.Status.LOCKED, order
    if order.pay_amount == 0:
        # Nothing to pay: the order is paid at once, with no Alipay trade.
        settle_paid_order(order=order, trade_no="", course_ids=course_ids)
    else:
        events.order_placed(order.order_no)

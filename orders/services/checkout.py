"""Turning the selected cart into an order exactly once (DESIGN.md "Idempotent order placement")."""

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from billing import services as billing
from billing.models import UserCoupon
from core.db import broke_constraint
from core.errors import DomainError
from core.models import User
from orders import events
from orders.errors import OrderErrorCode
from orders.models import Order
from orders.pricing import Quote, coupon_terms, quote
from orders.selectors import already_purchased
from orders.services import checkout_sql
from orders.services.payment import check_payable_with
from orders.services.settlement import settle_paid_order

logger = logging.getLogger(__name__)

IDEMPOTENCY_CONSTRAINT = "order_unique_user_idempotency_key"
ORDER_NO_CONSTRAINT = "orders_order_order_no_key"
# Two orders in the same microsecond with the same 4 random digits: rare (about 1 in 3 x 10^7
# orders at 350 orders/s), and then the insert simply takes a new number.
ORDER_NO_ATTEMPTS = 3
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
    return broke_constraint(exc, name=IDEMPOTENCY_CONSTRAINT)


def _is_order_no_collision(exc: IntegrityError) -> bool:
    return broke_constraint(exc, name=ORDER_NO_CONSTRAINT)


def _is_lock_timeout(exc: OperationalError) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) == "55P03"


def place_order(
    *, user: User, idempotency_key: str | None, pay_type: str, user_coupon_id: int | None, points: int
) -> Placement:
    key = check_idempotency_key(idempotency_key)
    check_payable_with(provider=pay_type)
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
    attempt = 1
    while True:
        try:
            _place(order=order, user_coupon_id=user_coupon_id, points=points)
            return Placement(order=order, replayed=False)
        except IntegrityError as exc:
            if _is_order_no_collision(exc) and attempt < ORDER_NO_ATTEMPTS:
                attempt += 1
                order.order_no = new_order_no()
                continue
            if not _is_idempotency_conflict(exc):
                raise
            replay = _replay(user=user, idempotency_key=key, fingerprint=fingerprint)
            if replay is None:  # the winner failed and rolled back: nothing to replay, try again
                raise DomainError(
                    OrderErrorCode.IDEMPOTENCY_KEY_IN_USE, "Retry: a request with this key just failed."
                ) from exc
            return replay


def _place(*, order: Order, user_coupon_id: int | None, points: int) -> None:
    """One attempt at the whole checkout, in one transaction."""
    stage = "insert"
    try:
        with transaction.atomic():
            # The row goes in first: a concurrent duplicate blocks on the unique index right here
            # and fails once we commit, instead of doing the whole checkout a second time.
            checkout_sql.insert_order(order=order)
            stage = "checkout"
            _fill_order(order=order, user_coupon_id=user_coupon_id, points=points)
    except OperationalError as exc:
        if not _is_lock_timeout(exc):
            raise
        if stage == "insert":
            raise DomainError(
                OrderErrorCode.IDEMPOTENCY_KEY_IN_USE, "A request with this Idempotency-Key is still being processed."
            ) from exc
        raise DomainError(OrderErrorCode.CHECKOUT_BUSY, "Your cart is being checked out by another request.") from exc


def _fill_order(*, order: Order, user_coupon_id: int | None, points: int) -> None:
    # Lock order, as everywhere: order row (inserted), cart rows by id, points account, user
    # coupon. Every limit is checked after its lock is held, so a concurrent checkout cannot
    # spend the same cart, points or coupon.
    locked = checkout_sql.lock_rows(order=order, lock_points=points > 0, user_coupon_id=user_coupon_id)
    lines = locked.lines
    if not lines:
        raise DomainError(OrderErrorCode.CART_EMPTY, "Select at least one course in your cart.")
    if locked.enrolled_course_ids or locked.pending:
        raise already_purchased(enrolled_course_ids=locked.enrolled_course_ids, pending=locked.pending)
    subtotal = sum((line.price for line in lines), start=order.subtotal)
    account, user_coupon = locked.points_account, locked.user_coupon
    if user_coupon_id:
        if user_coupon is None:
            raise billing.unknown_coupon()  # another user's coupon looks exactly like a missing one
        billing.check_coupon_applies(user_coupon=user_coupon, subtotal=subtotal)
    priced: Quote = quote(
        subtotal=subtotal,
        terms=coupon_terms(user_coupon),
        points=points,
        points_balance=account.balance if account else 0,
        points_per_yuan=settings.POINTS_PER_YUAN,
    )
    order.subtotal = priced.subtotal
    order.coupon_discount = priced.coupon_discount
    order.points_used = priced.points_used
    order.points_discount = priced.points_discount
    order.pay_amount = priced.pay_amount
    order.user_coupon = user_coupon
    checkout_sql.apply_order(order=order, lines=lines, cart_item_ids=locked.cart_item_ids)
    # The response is built from these objects: the order and its lines need no second read, and
    # a new order has no payment attempt yet.
    order._prefetched_objects_cache = {"lines": lines, "payment_attempts": [], "refunds": []}
    if user_coupon is not None:
        user_coupon.status, user_coupon.order = UserCoupon.Status.LOCKED, order
    if order.pay_amount == 0:
        # Nothing to pay: the order is paid at once, with no payment attempt.
        settle_paid_order(order=order, course_ids=[line.course_id for line in lines])
    else:
        events.order_placed(order.order_no)

"""Cancelling pending orders, by the user or at the deadline (DESIGN.md "Expiry").

Every open payment attempt is asked about before its order is cancelled: a paid one settles the
order instead, an unpaid one is closed at its provider so it can no longer be paid. The network
calls happen outside the order's row lock; the state is re-checked once the lock is held.
"""

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from core.errors import DomainError
from core.models import User
from orders.errors import OrderErrorCode
from orders.models import Order, PaymentAttempt
from orders.services.payment import settle_or_close
from orders.services.providers import ProviderError
from orders.services.settlement import cancel_locked_orders, lock_order

logger = logging.getLogger(__name__)
OPEN = PaymentAttempt.Status.OPEN


@dataclass(frozen=True)
class Outcome:
    result: str  # "cancelled", "paid", "skipped", "not_due"
    order: Order | None = None


def _not_cancellable(order: Order) -> DomainError:
    return DomainError(
        OrderErrorCode.ORDER_NOT_CANCELLABLE,
        f"Order {order.order_no} is {order.status}; only pending orders can be cancelled.",
        details={"status": order.status},
    )


def _cancel(*, order_no: str, reason: str, user: User | None, providers_must_answer: bool) -> Outcome:
    scope = {"user": user} if user else {}
    asked: set[str] = set()
    while True:
        order = Order.objects.filter(order_no=order_no, **scope).first()
        if order is None:
            raise DomainError(OrderErrorCode.ORDER_NOT_FOUND, f"Order {order_no} does not exist.")
        if order.status != Order.Status.PENDING:
            return Outcome("skipped", order)
        for attempt in order.payment_attempts.filter(status=OPEN).exclude(out_trade_no__in=asked):
            asked.add(attempt.out_trade_no)
            attempt.order = order
            try:
                if settle_or_close(attempt):
                    order.refresh_from_db()
                    if order.status != Order.Status.PENDING:
                        return Outcome("paid", order)
            except ProviderError:
                if providers_must_answer:
                    raise
                # The user asked to cancel: do it. Should the buyer have paid after all, the
                # notify finds a cancelled order and the money goes back (DESIGN.md "Order states").
                logger.warning("provider unreachable while cancelling %s; cancelling anyway", order_no, exc_info=True)
        with transaction.atomic():
            order = lock_order(order_no=order_no)
            if order.status != Order.Status.PENDING:
                return Outcome("skipped", order)
            # An attempt opened since we looked committed under this lock: ask about it first.
            if order.payment_attempts.filter(status=OPEN).exclude(out_trade_no__in=asked).exists():
                continue
            cancel_locked_orders(orders=[order], reason=reason)
            return Outcome("cancelled", order)


def cancel_order(*, user: User, order_no: str) -> Order:
    """The user cancels their pending order: 404 for someone else's, 409 unless pending."""
    outcome = _cancel(order_no=order_no, reason="user", user=user, providers_must_answer=False)
    if outcome.result != "cancelled":
        raise _not_cancellable(outcome.order)
    return outcome.order


def cancel_overdue_orders_without_trade(*, limit: int) -> list[str]:
    """Cancels up to `limit` overdue pending orders that cannot be paid any more (no open payment
    attempt), set-based: a fixed number of statements per batch. Rows another transaction holds
    (a payment, a user's cancel) are skipped, not waited for; whoever holds them decides, and a
    later batch or message sees the result."""
    open_attempts = PaymentAttempt.objects.filter(order=OuterRef("pk"), status=OPEN)
    with transaction.atomic():
        batch = list(
            Order.objects.select_for_update(skip_locked=True)
            .filter(status=Order.Status.PENDING, expires_at__lte=timezone.now())
            .filter(~Exists(open_attempts))
            .order_by("pk")
            .only("pk", "order_no", "status", "user_id", "points_used")[:limit]
        )
        # Checked again now that the rows are ours: a pay request opens its attempt under the
        # order's lock, so one that committed before we locked is visible to this statement.
        reopened = set(
            PaymentAttempt.objects.filter(order_id__in=[o.pk for o in batch], status=OPEN).values_list(
                "order_id", flat=True
            )
        )
        batch = [order for order in batch if order.pk not in reopened]
        if batch:
            cancel_locked_orders(orders=batch, reason="expired")
    return [order.order_no for order in batch]


# How long one expiry message may keep draining other due orders before it lets go of its thread.
DRAIN_BUDGET_SECONDS = 90  # under the actor's 120 s time limit; 100k due at once needs ~100 s (BENCHMARKS.md)


def _drain_due_orders_without_trade(*, order_no: str) -> bool:
    """Cancels due orders without a trade, batch after batch, until none is left (or the budget
    runs out); True when `order_no` was among them. One message finding many orders due (10,000
    in one second) does all their work in large set-based steps while the rest of its queue still
    waits behind it, instead of each batch waiting for its own message's turn (BENCHMARKS.md)."""
    deadline = time.monotonic() + DRAIN_BUDGET_SECONDS
    found = False
    while True:
        cancelled = cancel_overdue_orders_without_trade(limit=settings.SWEEP_BATCH_SIZE)
        found = found or order_no in cancelled
        if not cancelled or time.monotonic() > deadline:
            return found


def cancel_expired_order(*, order_no: str) -> str:
    """Cancels the order if it is still pending past its deadline. Idempotent: a paid, cancelled
    or not-yet-due order is left alone. Raises ProviderError when a provider cannot be asked, so
    the message is retried (and the sweeper tries again) rather than guessing.

    An order with no open payment attempt is cancelled in a batch with the other such orders due now:
    when many orders expire in the same second, the first messages do the work in a few
    statements and the rest find their order already cancelled."""
    order = Order.objects.filter(order_no=order_no).only("status", "expires_at").first()
    if order is None or order.status != Order.Status.PENDING:
        return "skipped"
    if order.expires_at > timezone.now():
        return "not_due"
    if not order.payment_attempts.filter(status=OPEN).exists() and _drain_due_orders_without_trade(order_no=order_no):
        return "cancelled"
    try:
        return _cancel(order_no=order_no, reason="expired", user=None, providers_must_answer=True).result
    except DomainError:
        return "skipped"


def overdue_order_numbers(*, limit: int | None = None, exclude: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Pending orders past their deadline, oldest deadline first."""
    overdue = Order.objects.filter(status=Order.Status.PENDING, expires_at__lte=timezone.now()).exclude(
        order_no__in=exclude
    )
    return list(overdue.order_by("expires_at").values_list("order_no", flat=True)[: limit or settings.SWEEP_BATCH_SIZE])

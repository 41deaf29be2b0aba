"""Refunds of paid orders, line by line (DESIGN.md "Order states"): the buyer's request within the
refund window, staff's approval or rejection (or REFUND_AUTO_APPROVE's approval), and the
operator's refund of every line. Sending an approved refund to the provider, and what its outcome
changes, is refund_execution.py's.

Every change runs under the order's row lock, taken first, and re-checks the order and its lines
once the lock is held. The database refuses a line in two live refunds
(`refund_line_one_live_refund_per_line`) and refunds adding up to more than `pay_amount` (the
`refund_total_within_pay_amount` trigger), whatever the code above it does.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import DomainError
from core.models import User
from core.money import ZERO
from orders import events
from orders.errors import OrderErrorCode
from orders.models import Order, PaymentAttempt, Refund, RefundLine
from orders.pricing import split_order
from orders.selectors import refundable_until
from orders.services.checkout import check_idempotency_key
from orders.services.refund_execution import succeed_refund
from orders.services.settlement import lock_order

REFUNDABLE = (Order.Status.PAID, Order.Status.PARTIALLY_REFUNDED)
AUTO_APPROVED = "approved automatically inside the refund window (REFUND_AUTO_APPROVE)"


@dataclass(frozen=True)
class RefundRequest:
    refund: Refund
    replayed: bool  # the same request had been made with the same Idempotency-Key


def request_refund(
    *,
    user: User,
    order_no: str,
    order_line_ids: Iterable[int],
    reason: str = "",
    idempotency_key: str | None = None,
) -> RefundRequest:
    """The buyer asks for the money of some lines of their paid order back, within the refund
    window: a `requested` refund, approved at once with REFUND_AUTO_APPROVE.

    With an Idempotency-Key (optional; blank is none), the same request sent again is answered
    with the refund it made, whatever became of the order since (refunded, window closed); the key
    with other lines or another reason is `idempotency_key_reused`. The order's lock orders the
    two."""
    key = check_idempotency_key(idempotency_key) if (idempotency_key or "").strip() else None
    line_ids = set(order_line_ids)
    with transaction.atomic():
        order = lock_order(order_no=order_no, user=user)
        if key is not None:
            earlier = order.refunds.filter(idempotency_key=key).first()
            if earlier is not None:
                return RefundRequest(refund=_replayed(earlier, line_ids=line_ids, reason=reason), replayed=True)
        _check_refundable(order)
        until = refundable_until(order)
        if until is None or timezone.now() >= until:
            raise DomainError(
                OrderErrorCode.REFUND_WINDOW_CLOSED,
                f"Refunds of order {order_no} could be asked for until {until:%Y-%m-%d %H:%M} UTC.",
                details={"refundable_until": until.isoformat() if until else None},
            )
        refund = _create_refund(
            order=order, line_ids=line_ids, requested_by=user, reason=reason, idempotency_key=key or ""
        )
        if settings.REFUND_AUTO_APPROVE:
            _approve(refund, order=order, decided_by=None, note=AUTO_APPROVED)
    return RefundRequest(refund=refund, replayed=False)


def _replayed(refund: Refund, *, line_ids: set[int], reason: str) -> Refund:
    asked_before = set(refund.lines.values_list("order_line_id", flat=True))
    if asked_before != line_ids or refund.reason != reason[:200]:
        raise DomainError(
            OrderErrorCode.IDEMPOTENCY_KEY_REUSED,
            "This Idempotency-Key was used for another refund request; use a new key for a new request.",
            details={"refund_id": refund.pk},
        )
    return refund


def refund_every_line(*, order_no: str, operator: User, reason: str = "") -> Refund:
    """The operator's refund (the admin's action on orders): every line not refunded or being
    refunded yet, approved at once, whatever the window."""
    with transaction.atomic():
        order = lock_order(order_no=order_no)
        _check_refundable(order)
        held = RefundLine.objects.filter(order_line__order=order, active=True).values_list("order_line_id", flat=True)
        free = set(order.lines.exclude(pk__in=held).values_list("pk", flat=True))
        if not free:
            raise DomainError(
                OrderErrorCode.ORDER_LINE_ALREADY_REFUNDED,
                f"Every line of order {order_no} is refunded or being refunded.",
                details={"order_line_ids": sorted(held)},
            )
        refund = _create_refund(order=order, line_ids=free, requested_by=operator, reason=reason or "refunded by staff")
        _approve(refund, order=order, decided_by=operator, note="approved by staff: every line")
    return refund


def approve_refund(*, refund_id: int, decided_by: User) -> Refund:
    with transaction.atomic():
        refund, order = _lock_refund(refund_id)
        _check_status(refund, Refund.Status.REQUESTED)
        _approve(refund, order=order, decided_by=decided_by, note="approved by staff")
    return refund


def reject_refund(*, refund_id: int, decided_by: User, reason: str) -> Refund:
    """A request staff turn down, or a refund the provider refused that will not be sent again:
    its lines can be asked for again."""
    with transaction.atomic():
        refund, _ = _lock_refund(refund_id)
        _check_status(refund, Refund.Status.REQUESTED, Refund.Status.FAILED)
        refund.status = Refund.Status.REJECTED
        refund.decided_by, refund.decided_at, refund.decision_note = decided_by, timezone.now(), reason[:200]
        refund.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "updated_at"])
        refund.lines.update(active=False)
    return refund


def retry_refund(*, refund_id: int, decided_by: User) -> Refund:
    """Sends a refund the provider refused once more, with the same request id (so it still
    refunds at most once), e.g. after the merchant account was topped up."""
    with transaction.atomic():
        refund, _ = _lock_refund(refund_id)
        _check_status(refund, Refund.Status.FAILED)
        refund.status = Refund.Status.APPROVED
        refund.decided_by, refund.decided_at = decided_by, timezone.now()
        refund.decision_note = f"sent again by staff after: {refund.failure_message}"[:200]
        refund.failure_message, refund.completed_at = "", None
        refund.save(
            update_fields=["status", "decided_by", "decided_at", "decision_note", "failure_message", "completed_at"]
            + ["updated_at"]
        )
        events.refund_approved(refund.request_no)
    return refund


def _check_refundable(order: Order) -> None:
    if order.status not in REFUNDABLE:
        raise DomainError(
            OrderErrorCode.ORDER_NOT_REFUNDABLE,
            f"Order {order.order_no} is {order.status}; only paid orders can be refunded.",
            details={"status": order.status},
        )


def _lock_refund(refund_id: int) -> tuple[Refund, Order]:
    found = Refund.objects.filter(pk=refund_id).values_list("order__order_no", flat=True).first()
    if found is None:
        raise DomainError(OrderErrorCode.REFUND_NOT_FOUND, f"Refund {refund_id} does not exist.")
    order = lock_order(order_no=found)
    return Refund.objects.select_for_update().get(pk=refund_id), order


def _check_status(refund: Refund, *allowed: str) -> None:
    if refund.status not in allowed:
        raise DomainError(
            OrderErrorCode.REFUND_NOT_DECIDABLE,
            f"Refund {refund.request_no} is {refund.status}.",
            details={"status": refund.status},
        )


def _create_refund(
    *, order: Order, line_ids: set[int], requested_by: User, reason: str, idempotency_key: str = ""
) -> Refund:
    lines = list(order.lines.order_by("id"))
    unknown = sorted(line_ids - {line.pk for line in lines})
    if unknown or not line_ids:
        raise DomainError(
            OrderErrorCode.ORDER_LINE_NOT_FOUND,
            f"Order {order.order_no} has no line {unknown}.",
            details={"order_line_ids": unknown},
        )
    taken = sorted(
        RefundLine.objects.filter(order_line_id__in=line_ids, active=True).values_list("order_line_id", flat=True)
    )
    if taken:
        raise DomainError(
            OrderErrorCode.ORDER_LINE_ALREADY_REFUNDED,
            f"Lines {taken} of order {order.order_no} are refunded or being refunded.",
            details={"order_line_ids": taken},
        )
    shares = split_order(
        prices=[line.price for line in lines],
        coupon_discount=order.coupon_discount,
        points_discount=order.points_discount,
        points_used=order.points_used,
    )
    chosen = [(line, share) for line, share in zip(lines, shares, strict=True) if line.pk in line_ids]
    amount = sum((share.refundable for _, share in chosen), ZERO)
    attempt = order.payment_attempts.filter(status=PaymentAttempt.Status.PAID).first()
    if attempt is None and amount > 0:
        raise DomainError(
            OrderErrorCode.ORDER_NOT_REFUNDABLE,
            f"Order {order.order_no} has no payment to refund through.",
            details={"status": order.status},
        )
    # Under the order's lock: the number is the order's next, and never changes afterwards.
    number = order.refunds.count() + 1
    refund = Refund.objects.create(
        order=order,
        attempt=attempt,
        request_no=f"{order.order_no}-r{number}",
        amount=amount,
        reason=reason[:200],
        idempotency_key=idempotency_key,
        requested_by=requested_by,
    )
    RefundLine.objects.bulk_create(
        [
            RefundLine(refund=refund, order_line=line, amount=share.refundable, points=share.points)
            for line, share in chosen
        ]
    )
    return refund


def _approve(refund: Refund, *, order: Order, decided_by: User | None, note: str) -> None:
    refund.status = Refund.Status.APPROVED
    refund.decided_by, refund.decided_at, refund.decision_note = decided_by, timezone.now(), note
    refund.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "updated_at"])
    if refund.amount == 0:
        # Nothing goes back through a provider (the lines were fully discounted): done at once.
        succeed_refund(refund=refund, order=order)
    else:
        events.refund_approved(refund.request_no)

"""Sending approved refunds through the provider of the attempt that paid, and what a refund's
outcome changes (DESIGN.md "Order states").

The provider is called outside the order's row lock (as cancelling does); the outcome is applied
under it, once: a retried message, a notify and a query may all report the same refund, and only
a refund still `processing` takes an outcome. Every call to the provider carries the refund's one
`request_no`, which the provider refunds at most once.
"""

import logging

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from billing import services as billing
from billing.models import PointsEntry
from core.errors import DomainError
from core.models import Enrollment
from core.money import ZERO
from orders.errors import OrderErrorCode
from orders.models import Order, Refund, RefundLine
from orders.services.providers import ProviderRefund, ProviderRefusal, RefundState, provider_for
from orders.services.settlement import earned_points, lock_order

logger = logging.getLogger(__name__)


class RefundPending(Exception):
    """The provider accepted the refund and has not finished it: ask again later."""


def send_refund(*, request_no: str) -> str:
    """Sends an approved refund to its provider (or asks about one sent before) and applies the
    answer. Returns the refund's status. Raises RefundPending while the provider is still at it,
    ProviderError when it could not be asked: both mean "try again later, with the same id"."""
    with transaction.atomic():
        refund, _ = _lock_refund(request_no)
        if refund.status not in (Refund.Status.APPROVED, Refund.Status.PROCESSING):
            return refund.status
        sent_before = refund.status == Refund.Status.PROCESSING
        refund.status, refund.sent_at = Refund.Status.PROCESSING, refund.sent_at or timezone.now()
        refund.send_count += 1
        refund.save(update_fields=["status", "sent_at", "send_count", "updated_at"])
    attempt = refund.attempt
    provider = provider_for(attempt.provider)
    outcome = (
        provider.refund_state(out_trade_no=attempt.out_trade_no, refund_request_no=request_no) if sent_before else None
    )
    if outcome is None:
        try:
            outcome = provider.refund(
                out_trade_no=attempt.out_trade_no,
                refund_request_no=request_no,
                amount=refund.amount,
                total=attempt.amount,
            )
        except ProviderRefusal as exc:
            outcome = ProviderRefund(RefundState.FAILED, message=str(exc))
    return apply_refund_outcome(request_no=request_no, outcome=outcome)


def apply_refund_outcome(*, request_no: str, outcome: ProviderRefund) -> str:
    """What the provider said of a refund we sent (its answer, a query, a notify), applied once."""
    if outcome.state == RefundState.PROCESSING:
        raise RefundPending(f"refund {request_no} is still being processed by the provider")
    with transaction.atomic():
        refund, order = _lock_refund(request_no)
        if refund.status != Refund.Status.PROCESSING:
            return refund.status
        if outcome.state == RefundState.SUCCEEDED:
            succeed_refund(refund=refund, order=order, provider_refund_id=outcome.provider_refund_id)
        else:
            logger.warning("refund %s failed: %s", request_no, outcome.message)
            refund.status, refund.completed_at = Refund.Status.FAILED, timezone.now()
            refund.failure_message = (outcome.message or "refused by the provider")[:500]
            refund.provider_refund_id = outcome.provider_refund_id or refund.provider_refund_id
            refund.save(update_fields=["status", "completed_at", "failure_message", "provider_refund_id", "updated_at"])
        return refund.status


def succeed_refund(*, refund: Refund, order: Order, provider_refund_id: str = "") -> None:
    """The money is back with the buyer: for the locked order, the refunded courses' enrolments go,
    the points spent on those lines come back, the points earned on the refunded amount are taken
    back as far as the balance allows (what could not be is recorded on the refund), and the
    order is `refunded` (its coupon back when still inside its window) or `partially_refunded`."""
    now = timezone.now()
    lines = list(refund.lines.select_related("order_line"))
    Enrollment.objects.filter(order=order, course_id__in=[line.order_line.course_id for line in lines]).delete()
    # Points account before coupon: the lock order checkout and settlement use.
    returned = sum(line.points for line in lines)
    if returned:
        billing.credit_points(user=order.user, amount=returned, reason=PointsEntry.Reason.REFUND_RETURN, order=order)
    # Earned points are taken back on the running total refunded, so refunding every line, in any
    # number of refunds, takes back exactly what the order earned.
    before = (
        order.refunds.filter(status=Refund.Status.SUCCEEDED)
        .exclude(pk=refund.pk)
        .aggregate(total=Sum("amount"))["total"]
        or ZERO
    )
    owed = earned_points(before + refund.amount) - earned_points(before)
    taken = 0
    if owed > 0:
        entry = billing.take_back_points(
            user=order.user, amount=owed, reason=PointsEntry.Reason.EARNED_REVERSAL, order=order
        )
        taken = -entry.delta if entry is not None else 0
    refund.status, refund.completed_at = Refund.Status.SUCCEEDED, now
    refund.provider_refund_id = provider_refund_id or refund.provider_refund_id
    refund.points_returned, refund.points_taken_back, refund.points_not_taken_back = returned, taken, owed - taken
    refund.save(
        update_fields=["status", "completed_at", "provider_refund_id", "points_returned", "points_taken_back"]
        + ["points_not_taken_back", "updated_at"]
    )
    refunded_lines = RefundLine.objects.filter(
        order_line__order=order, active=True, refund__status=Refund.Status.SUCCEEDED
    ).count()
    if refunded_lines == order.lines.count():
        order.status, order.refunded_at = Order.Status.REFUNDED, now
        billing.return_coupon_of_refunded_order(order=order)
    else:
        order.status = Order.Status.PARTIALLY_REFUNDED
    order.save(update_fields=["status", "refunded_at"])


def _lock_refund(request_no: str) -> tuple[Refund, Order]:
    found = Refund.objects.filter(request_no=request_no).values_list("order__order_no", flat=True).first()
    if found is None:
        raise DomainError(OrderErrorCode.REFUND_NOT_FOUND, f"Refund {request_no} does not exist.")
    order = lock_order(order_no=found)
    return Refund.objects.select_for_update(of=("self",)).select_related("attempt").get(request_no=request_no), order

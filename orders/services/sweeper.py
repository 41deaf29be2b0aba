"""The safety net under the expiry messages: finds what they missed (DESIGN.md "Expiry")."""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from orders.models import Order, PaymentAttempt, Refund
from orders.services.cancellation import (
    cancel_expired_order,
    cancel_overdue_orders_without_trade,
    overdue_order_numbers,
)
from orders.services.payment import close_open_attempts, refund_stray_payment
from orders.services.providers import ProviderError
from orders.services.refund_execution import RefundPending, send_refund

logger = logging.getLogger(__name__)


@dataclass
class SweepReport:
    outcomes: dict[str, int] = field(default_factory=dict)
    refunded: int = 0
    closed: int = 0
    failed: int = 0

    def count(self, outcome: str, n: int = 1) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + n


def sweep_overdue_orders(*, batch_size: int | None = None, max_batches: int = 1000) -> SweepReport:
    """Cancels every pending order past its deadline, a batch at a time; closes attempts left open
    on orders that are no longer pending (their close message was lost, or a provider was down
    when the user cancelled); retries refunds of money that arrived where it was not wanted; sends
    again (or asks about) order refunds approved or processing for REFUND_RECHECK_SECONDS (their
    message was lost, or ran out of retries). An order a provider cannot be asked about is left
    for the next sweep."""
    batch_size = batch_size or settings.SWEEP_BATCH_SIZE
    report = SweepReport()
    skip: set[str] = set()
    for _ in range(max_batches):
        cancelled = cancel_overdue_orders_without_trade(limit=batch_size)
        if cancelled:
            report.count("cancelled", len(cancelled))
            continue
        overdue = overdue_order_numbers(limit=batch_size, exclude=skip)
        if not overdue:
            break
        for order_no in overdue:
            try:
                report.count(cancel_expired_order(order_no=order_no))
            except ProviderError:
                logger.warning("sweeper: a provider is unreachable for %s; next sweep retries", order_no)
                report.failed += 1
                skip.add(order_no)
    left_open = (
        PaymentAttempt.objects.filter(status=PaymentAttempt.Status.OPEN)
        .exclude(order__status=Order.Status.PENDING)
        .values_list("order__order_no", flat=True)
        .distinct()
    )
    for order_no in list(left_open[:batch_size]):
        try:
            report.closed += close_open_attempts(order_no=order_no)
        except ProviderError:
            logger.warning("sweeper: closing the attempts of %s failed; next sweep retries", order_no)
            report.failed += 1
    unrefunded = PaymentAttempt.objects.filter(status=PaymentAttempt.Status.REFUND_REQUIRED)
    for out_trade_no in unrefunded.values_list("out_trade_no", flat=True)[:batch_size]:
        try:
            report.refunded += refund_stray_payment(out_trade_no=out_trade_no)
        except ProviderError:
            logger.warning("sweeper: refund of %s failed; next sweep retries", out_trade_no)
            report.failed += 1
    stale = timezone.now() - timedelta(seconds=settings.REFUND_RECHECK_SECONDS)
    waiting = Refund.objects.filter(
        status__in=[Refund.Status.APPROVED, Refund.Status.PROCESSING], updated_at__lt=stale
    ).order_by("updated_at")
    for request_no in list(waiting.values_list("request_no", flat=True)[:batch_size]):
        try:
            report.count(f"refund_{send_refund(request_no=request_no)}")
        except RefundPending:
            report.count("refund_processing")
        except ProviderError:
            logger.warning("sweeper: refund %s could not be sent or asked about; next sweep retries", request_no)
            report.failed += 1
    return report

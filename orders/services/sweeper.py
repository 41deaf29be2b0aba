"""The safety net under the expiry messages: finds what they missed (DESIGN.md "Expiry")."""

import logging
from dataclasses import dataclass, field

from django.conf import settings

from orders.models import Order, PaymentAttempt
from orders.services.cancellation import (
    cancel_expired_order,
    cancel_overdue_orders_without_trade,
    overdue_order_numbers,
)
from orders.services.payment import close_open_attempts, refund_stray_payment
from orders.services.providers import ProviderError

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
    when the user cancelled); retries refunds of money that arrived where it was not wanted. An
    order a provider cannot be asked about is left for the next sweep."""
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
    return report

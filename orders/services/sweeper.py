"""The safety net under the expiry messages: finds what they missed (DESIGN.md "Expiry")."""

import logging
from dataclasses import dataclass, field

from django.conf import settings

from billing.alipay.errors import AlipayError
from orders.models import Order
from orders.services.cancellation import (
    cancel_expired_order,
    cancel_overdue_orders_without_trade,
    overdue_order_numbers,
)
from orders.services.payment import refund_cancelled_payment

logger = logging.getLogger(__name__)


@dataclass
class SweepReport:
    outcomes: dict[str, int] = field(default_factory=dict)
    refunded: int = 0
    failed: int = 0

    def count(self, outcome: str, n: int = 1) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + n


def sweep_overdue_orders(*, batch_size: int | None = None, max_batches: int = 1000) -> SweepReport:
    """Cancels every pending order past its deadline, a batch at a time, and retries refunds of
    money that arrived for cancelled orders. An order Alipay cannot be asked about is left for
    the next sweep."""
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
            except AlipayError:
                logger.warning("sweeper: Alipay unreachable for %s; next sweep retries", order_no)
                report.failed += 1
                skip.add(order_no)
    unrefunded = Order.objects.filter(
        status=Order.Status.CANCELLED, refunded_at__isnull=True, pay_amount__gt=0
    ).exclude(trade_no="")
    for order_no in unrefunded.values_list("order_no", flat=True)[:batch_size]:
        try:
            report.refunded += refund_cancelled_payment(order_no=order_no)
        except AlipayError:
            logger.warning("sweeper: refund of %s failed; next sweep retries", order_no)
            report.failed += 1
    return report

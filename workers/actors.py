"""Dramatiq actors: another interface to the order services (fetch by id, call a service).

No actor sets `max_age`: an expiry message is meant to wait for the whole payment timeout.
"""

import logging
from datetime import timedelta

import dramatiq
from django.conf import settings
from django.utils import timezone

from orders import services
from orders.models import Order

logger = logging.getLogger(__name__)

EXPIRY_QUEUE = "expiry"
REFUND_QUEUE = "refunds"
# Fire a little after the deadline so the order is surely overdue when the message runs.
EXPIRY_SLACK = timedelta(milliseconds=500)


@dramatiq.actor(queue_name=EXPIRY_QUEUE, max_retries=10, min_backoff=1_000, max_backoff=300_000, time_limit=120_000)
def cancel_expired_order(order_no: str) -> None:
    outcome = services.cancel_expired_order(order_no=order_no)
    if outcome == "not_due":
        # Delivered early (clock skew, a changed timeout): come back at the deadline.
        order = Order.objects.only("expires_at").get(order_no=order_no)
        schedule_expiry(order_no, delay=order.expires_at - timezone.now())
    logger.info("expiry of %s: %s", order_no, outcome)


@dramatiq.actor(queue_name=EXPIRY_QUEUE, max_retries=0, time_limit=600_000)
def sweep_overdue_orders() -> None:
    report = services.sweep_overdue_orders()
    if report.outcomes or report.refunded or report.failed:
        logger.info("sweep: %s refunded=%d failed=%d", report.outcomes, report.refunded, report.failed)


@dramatiq.actor(queue_name=REFUND_QUEUE, max_retries=20, min_backoff=5_000, max_backoff=3_600_000, time_limit=120_000)
def refund_order(order_no: str) -> None:
    """Refunds money that arrived for an order already cancelled (the notify-after-cancel case)."""
    services.refund_cancelled_payment(order_no=order_no)


def schedule_expiry(order_no: str, delay: timedelta | None = None) -> None:
    if delay is None:
        delay = timedelta(seconds=settings.ORDER_PAYMENT_TIMEOUT_SECONDS)
    cancel_expired_order.send_with_options(args=(order_no,), delay=max(delay, timedelta(0)) + EXPIRY_SLACK)


def enqueue_refund(order_no: str) -> None:
    refund_order.send(order_no)

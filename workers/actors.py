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
    if report.outcomes or report.refunded or report.closed or report.failed:
        logger.info(
            "sweep: %s refunded=%d closed=%d failed=%d", report.outcomes, report.refunded, report.closed, report.failed
        )


@dramatiq.actor(queue_name=REFUND_QUEUE, max_retries=20, min_backoff=5_000, max_backoff=3_600_000, time_limit=120_000)
def refund_payment(out_trade_no: str) -> None:
    """Refunds money that arrived on a payment attempt where it was not wanted: an order already
    cancelled, or already paid through another attempt."""
    services.refund_stray_payment(out_trade_no=out_trade_no)


@dramatiq.actor(queue_name=REFUND_QUEUE, max_retries=20, min_backoff=5_000, max_backoff=3_600_000, time_limit=120_000)
def send_refund(request_no: str) -> None:
    """Sends an approved refund through the provider of the attempt that paid, or asks it again
    about one sent before. Retried with backoff while the provider cannot be asked or is still at
    it (the sweeper takes over after the last retry); every try carries the refund's one request
    id, so the money goes back once."""
    try:
        status = services.send_refund(request_no=request_no)
    except services.RefundPending as exc:
        # Not an error: WeChat Pay is still processing it. Asked again after the usual backoff.
        raise dramatiq.Retry(str(exc)) from exc
    logger.info("refund %s: %s", request_no, status)


@dramatiq.actor(queue_name=REFUND_QUEUE, max_retries=20, min_backoff=5_000, max_backoff=3_600_000, time_limit=120_000)
def close_open_attempts(order_no: str) -> None:
    """Closes the other open attempts of an order one attempt just paid."""
    services.close_open_attempts(order_no=order_no)


def schedule_expiry(order_no: str, delay: timedelta | None = None) -> None:
    if delay is None:
        delay = timedelta(seconds=settings.ORDER_PAYMENT_TIMEOUT_SECONDS)
    cancel_expired_order.send_with_options(args=(order_no,), delay=max(delay, timedelta(0)) + EXPIRY_SLACK)


def enqueue_refund(out_trade_no: str) -> None:
    refund_payment.send(out_trade_no)


def enqueue_refund_sending(request_no: str) -> None:
    send_refund.send(request_no)


def enqueue_close_attempts(order_no: str) -> None:
    close_open_attempts.send(order_no)

"""A seam for the layer above (workers): orders announces what happened, workers subscribes.

Orders must not import workers (DESIGN.md "Layout"), yet a placed order has to schedule its
expiry message. Workers registers a callback here from its AppConfig.ready(); orders calls
`order_placed` inside the placing transaction and the callbacks run after commit.
"""

import logging
from collections.abc import Callable

from django.db import transaction

logger = logging.getLogger(__name__)

OrderCallback = Callable[[str], None]
_order_placed: list[OrderCallback] = []
_refund_needed: list[OrderCallback] = []
_attempts_to_close: list[OrderCallback] = []
_refund_approved: list[OrderCallback] = []


def on_order_placed(callback: OrderCallback) -> None:
    if callback not in _order_placed:
        _order_placed.append(callback)


def on_refund_needed(callback: OrderCallback) -> None:
    """The callback gets the out_trade_no of an attempt whose money must go back."""
    if callback not in _refund_needed:
        _refund_needed.append(callback)


def on_attempts_to_close(callback: OrderCallback) -> None:
    """The callback gets the order_no of an order paid while other attempts of it were open."""
    if callback not in _attempts_to_close:
        _attempts_to_close.append(callback)


def on_refund_approved(callback: OrderCallback) -> None:
    """The callback gets the request_no of a refund approved (or approved again) for sending."""
    if callback not in _refund_approved:
        _refund_approved.append(callback)


def _run_after_commit(callbacks: list[OrderCallback], key: str) -> None:
    def run() -> None:
        for callback in callbacks:
            # An enqueue that fails (broker down) must not fail the request: the sweeper catches up.
            try:
                callback(key)
            except Exception:
                logger.exception("order event callback %s failed for %s", callback, key)

    transaction.on_commit(run)


def order_placed(order_no: str) -> None:
    _run_after_commit(_order_placed, order_no)


def refund_needed(out_trade_no: str) -> None:
    # Without a subscriber (or with the broker down) nothing is lost: the sweeper refunds every
    # attempt left in refund_required.
    _run_after_commit(_refund_needed, out_trade_no)


def attempts_to_close(order_no: str) -> None:
    # Likewise: the sweeper closes attempts left open on orders that are no longer pending.
    _run_after_commit(_attempts_to_close, order_no)


def refund_approved(request_no: str) -> None:
    # Likewise: the sweeper sends approved refunds whose message was lost.
    _run_after_commit(_refund_approved, request_no)

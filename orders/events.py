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


def on_order_placed(callback: OrderCallback) -> None:
    if callback not in _order_placed:
        _order_placed.append(callback)


def on_refund_needed(callback: OrderCallback) -> None:
    if callback not in _refund_needed:
        _refund_needed.append(callback)


def _run_after_commit(callbacks: list[OrderCallback], order_no: str) -> None:
    def run() -> None:
        for callback in callbacks:
            # An enqueue that fails (broker down) must not fail the request: the sweeper catches up.
            try:
                callback(order_no)
            except Exception:
                logger.exception("order event callback %s failed for %s", callback, order_no)

    transaction.on_commit(run)


def order_placed(order_no: str) -> None:
    _run_after_commit(_order_placed, order_no)


def refund_needed(order_no: str) -> bool:
    """True when a subscriber will refund asynchronously; False means the caller must do it now."""
    if not _refund_needed:
        return False
    _run_after_commit(_refund_needed, order_no)
    return True

"""Orders' business actions: the only code in this app that writes."""

from orders.services.cancellation import cancel_expired_order, cancel_order, overdue_order_numbers
from orders.services.cart import add_to_cart, remove_cart_item, set_cart_item_selected, set_cart_selection
from orders.services.checkout import Placement, place_order
from orders.services.notifies import handle_alipay_notify, handle_alipay_return, handle_wechat_notify
from orders.services.payment import (
    check_payable_with,
    close_open_attempts,
    frontend_order_url,
    refund_stray_payment,
    request_payment,
    settle_payment,
)
from orders.services.refund_execution import RefundPending, apply_refund_outcome, send_refund
from orders.services.refunds import (
    RefundRequest,
    approve_refund,
    refund_every_line,
    reject_refund,
    request_refund,
    retry_refund,
)
from orders.services.settlement import lock_order, settle_paid_order
from orders.services.sweeper import SweepReport, sweep_overdue_orders

__all__ = [
    "Placement",
    "add_to_cart",
    "cancel_expired_order",
    "cancel_order",
    "frontend_order_url",
    "handle_alipay_notify",
    "handle_alipay_return",
    "handle_wechat_notify",
    "overdue_order_numbers",
    "check_payable_with",
    "close_open_attempts",
    "refund_stray_payment",
    "settle_payment",
    "RefundPending",
    "RefundRequest",
    "apply_refund_outcome",
    "approve_refund",
    "refund_every_line",
    "reject_refund",
    "request_refund",
    "retry_refund",
    "send_refund",
    "request_payment",
    "lock_order",
    "place_order",
    "remove_cart_item",
    "set_cart_item_selected",
    "set_cart_selection",
    "settle_paid_order",
    "SweepReport",
    "sweep_overdue_orders",
]

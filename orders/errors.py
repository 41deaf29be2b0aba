from core.errors import ErrorCode


class OrderErrorCode(ErrorCode):
    CART_ITEM_NOT_FOUND = "cart_item_not_found"
    ALREADY_IN_CART = "already_in_cart"
    ALREADY_PURCHASED = "already_purchased"
    CART_EMPTY = "cart_empty"
    IDEMPOTENCY_KEY_REQUIRED = "idempotency_key_required"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use"
    CHECKOUT_BUSY = "checkout_busy"
    ORDER_NOT_FOUND = "order_not_found"
    ORDER_NOT_CANCELLABLE = "order_not_cancellable"
    ORDER_NOT_PAYABLE = "order_not_payable"
    ORDER_NOT_REFUNDABLE = "order_not_refundable"
    REFUND_WINDOW_CLOSED = "refund_window_closed"
    ORDER_LINE_NOT_FOUND = "order_line_not_found"
    ORDER_LINE_ALREADY_REFUNDED = "order_line_already_refunded"
    REFUND_NOT_FOUND = "refund_not_found"
    REFUND_NOT_DECIDABLE = "refund_not_decidable"
    PAYMENT_PROVIDER_UNAVAILABLE = "payment_provider_unavailable"
    PAYMENT_CHANNEL_INVALID = "payment_channel_invalid"
    PAYMENT_PROVIDER_UNREACHABLE = "payment_provider_unreachable"

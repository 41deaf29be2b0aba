from core.errors import ErrorCode


class OrderErrorCode(ErrorCode):
    CART_ITEM_NOT_FOUND = ("cart_item_not_found", 404)
    ALREADY_IN_CART = ("already_in_cart", 409)
    ALREADY_PURCHASED = ("already_purchased", 409)
    CART_EMPTY = ("cart_empty", 422)
    IDEMPOTENCY_KEY_REQUIRED = ("idempotency_key_required", 400)
    IDEMPOTENCY_KEY_REUSED = ("idempotency_key_reused", 422)
    IDEMPOTENCY_KEY_IN_USE = ("idempotency_key_in_use", 409)
    CHECKOUT_BUSY = ("checkout_busy", 409)
    ORDER_NOT_FOUND = ("order_not_found", 404)
    ORDER_NOT_CANCELLABLE = ("order_not_cancellable", 409)
    ORDER_NOT_PAYABLE = ("order_not_payable", 409)
    ORDER_NOT_REFUNDABLE = ("order_not_refundable", 409)
    REFUND_WINDOW_CLOSED = ("refund_window_closed", 409)
    ORDER_LINE_NOT_FOUND = ("order_line_not_found", 422)
    ORDER_LINE_ALREADY_REFUNDED = ("order_line_already_refunded", 409)
    REFUND_NOT_FOUND = ("refund_not_found", 404)
    REFUND_NOT_DECIDABLE = ("refund_not_decidable", 409)
    PAYMENT_PROVIDER_UNAVAILABLE = ("payment_provider_unavailable", 422)
    PAYMENT_CHANNEL_INVALID = ("payment_channel_invalid", 422)
    PAYMENT_PROVIDER_UNREACHABLE = ("payment_provider_unreachable", 503)

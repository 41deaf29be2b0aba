"""The API layer's side of errors: the HTTP status of every error code, and the one function that
builds the envelope `{"code", "message", "details"}`. Ninja's exception handlers (core.api_root)
and the middlewares (core.middleware) all answer through `error_response`.

This module sits above the apps (it names billing's and orders' codes) like the composition root;
the apps' services raise `DomainError(code, message, details=...)` and never pick a status.
"""

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, JsonResponse

from billing.errors import BillingErrorCode
from core.errors import CoreErrorCode, ErrorCode
from orders.errors import OrderErrorCode

HTTP_STATUS: dict[ErrorCode, int] = {
    CoreErrorCode.VALIDATION_ERROR: 422,
    CoreErrorCode.INVALID_JSON: 400,
    CoreErrorCode.BAD_REQUEST: 400,
    CoreErrorCode.NOT_AUTHENTICATED: 401,
    CoreErrorCode.INVALID_TOKEN: 401,
    CoreErrorCode.INVALID_CREDENTIALS: 401,
    CoreErrorCode.FORBIDDEN: 403,
    CoreErrorCode.NOT_FOUND: 404,
    CoreErrorCode.METHOD_NOT_ALLOWED: 405,
    CoreErrorCode.PAYLOAD_TOO_LARGE: 413,
    CoreErrorCode.RATE_LIMITED: 429,
    CoreErrorCode.INTERNAL_ERROR: 500,
    CoreErrorCode.SERVICE_UNAVAILABLE: 503,
    CoreErrorCode.USERNAME_TAKEN: 409,
    CoreErrorCode.COURSE_NOT_FOUND: 404,
    BillingErrorCode.COUPON_NOT_FOUND: 404,
    BillingErrorCode.COUPON_SOLD_OUT: 409,
    BillingErrorCode.COUPON_ALREADY_CLAIMED: 409,
    BillingErrorCode.COUPON_NOT_ACTIVE: 422,
    BillingErrorCode.COUPON_INVALID: 422,
    BillingErrorCode.INSUFFICIENT_POINTS: 422,
    BillingErrorCode.POINTS_EXCEED_LIMIT: 422,
    OrderErrorCode.CART_ITEM_NOT_FOUND: 404,
    OrderErrorCode.ALREADY_IN_CART: 409,
    # Checking out a cart that holds a course the buyer owns or is paying for: the order cannot be
    # placed (the contract's 422). Adding such a course to the cart answers 409 (see error_statuses).
    OrderErrorCode.ALREADY_PURCHASED: 422,
    OrderErrorCode.CART_EMPTY: 422,
    OrderErrorCode.IDEMPOTENCY_KEY_REQUIRED: 400,
    OrderErrorCode.IDEMPOTENCY_KEY_REUSED: 422,
    OrderErrorCode.IDEMPOTENCY_KEY_IN_USE: 409,
    OrderErrorCode.CHECKOUT_BUSY: 409,
    OrderErrorCode.ORDER_NOT_FOUND: 404,
    OrderErrorCode.ORDER_NOT_CANCELLABLE: 409,
    OrderErrorCode.ORDER_NOT_PAYABLE: 409,
    OrderErrorCode.ORDER_NOT_REFUNDABLE: 409,
    OrderErrorCode.REFUND_WINDOW_CLOSED: 409,
    OrderErrorCode.ORDER_LINE_NOT_FOUND: 422,
    OrderErrorCode.ORDER_LINE_ALREADY_REFUNDED: 409,
    OrderErrorCode.REFUND_NOT_FOUND: 404,
    OrderErrorCode.REFUND_NOT_DECIDABLE: 409,
    OrderErrorCode.PAYMENT_PROVIDER_UNAVAILABLE: 422,
    OrderErrorCode.PAYMENT_CHANNEL_INVALID: 422,
    OrderErrorCode.PAYMENT_PROVIDER_UNREACHABLE: 503,
}

# The code for an error that arrives as a bare status (Django's own error pages, Ninja's HttpError).
GENERIC_CODES: dict[int, CoreErrorCode] = {
    400: CoreErrorCode.BAD_REQUEST,
    401: CoreErrorCode.NOT_AUTHENTICATED,
    403: CoreErrorCode.FORBIDDEN,
    404: CoreErrorCode.NOT_FOUND,
    405: CoreErrorCode.METHOD_NOT_ALLOWED,
    413: CoreErrorCode.PAYLOAD_TOO_LARGE,
    429: CoreErrorCode.RATE_LIMITED,
    500: CoreErrorCode.INTERNAL_ERROR,
    503: CoreErrorCode.SERVICE_UNAVAILABLE,
}


def code_for_status(status: int) -> CoreErrorCode:
    """A status with no code of its own answers as the generic 400 or 500, so a code keeps one status."""
    return GENERIC_CODES.get(status, CoreErrorCode.INTERNAL_ERROR if status >= 500 else CoreErrorCode.BAD_REQUEST)


def error_statuses(overrides: dict[ErrorCode, int]) -> Callable[[Callable], Callable]:
    """For the few routes where the contract (DESIGN.md) answers a code with another status than
    the table's: the route names them (`@decorate_view(error_statuses({...}))`), and the table
    decides everything else."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def with_statuses(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            request.error_statuses = overrides  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        return with_statuses

    return decorate


def status_for(code: ErrorCode, request: HttpRequest | None = None) -> int:
    """The status `code` answers with on this request's route."""
    return getattr(request, "error_statuses", {}).get(code, HTTP_STATUS[code])


def error_response(code: ErrorCode, message: str, details: Any = None, *, status: int | None = None) -> JsonResponse:
    """The error envelope, with the status the table gives `code` (or the route's, `status_for`)."""
    return JsonResponse(
        {"code": code.value, "message": message, "details": details},
        status=status or HTTP_STATUS[code],
        content_type="application/json; charset=utf-8",
        json_dumps_params={"ensure_ascii": False},
    )

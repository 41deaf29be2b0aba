import json
import logging
import re
import time
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core.api_errors import code_for_status, error_response
from core.errors import CoreErrorCode

API_PREFIX = "/api/"
ORDER_PATH = re.compile(r"/orders/([0-9]{1,32})(?:/|$)")
request_logger = logging.getLogger("shop.requests")

MESSAGES = {
    CoreErrorCode.BAD_REQUEST: "The request is malformed.",
    CoreErrorCode.FORBIDDEN: "Forbidden.",
    CoreErrorCode.NOT_FOUND: "Not found.",
    CoreErrorCode.METHOD_NOT_ALLOWED: "This method is not allowed here.",
    CoreErrorCode.PAYLOAD_TOO_LARGE: "The request body is too large.",
    CoreErrorCode.INTERNAL_ERROR: "Something went wrong on our side.",
}


class ApiErrorEnvelopeMiddleware:
    """Gives the envelope to the API errors Django answers before Ninja sees the request:
    unknown paths (404), methods a path does not take (405), Django's own 400/413/500 pages."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(API_PREFIX) or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        code = code_for_status(response.status_code)
        wrapped = error_response(code, MESSAGES.get(code, "The request failed."))
        for header in ("Allow", "Retry-After"):
            if header in response:
                wrapped[header] = response[header]
        return wrapped


def declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def payload_too_large(limit: int) -> HttpResponse:
    return error_response(
        CoreErrorCode.PAYLOAD_TOO_LARGE, f"The request body is over {limit} bytes.", details={"limit": limit}
    )


class BodySizeLimitMiddleware:
    """413 for a body declared larger than MAX_REQUEST_BODY_BYTES, before anything reads it.
    (A chunked body without Content-Length is capped by DATA_UPLOAD_MAX_MEMORY_SIZE on read.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if declared_length(request) > settings.MAX_REQUEST_BODY_BYTES:
            return payload_too_large(settings.MAX_REQUEST_BODY_BYTES)
        return self.get_response(request)


def limit_body(limit: int) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A view decorator (with Ninja: `@decorate_view(limit_body(...))`): 413 for a body over
    `limit` bytes, declared or read, before the view or Ninja parses anything of it."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def limited(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            # The read is capped by DATA_UPLOAD_MAX_MEMORY_SIZE when no length was declared.
            if declared_length(request) > limit or len(request.body) > limit:
                return payload_too_large(limit)
            return view(request, *args, **kwargs)

        return limited

    return decorate


class RequestLogMiddleware:
    """One JSON line per request: method, path, status, duration, user id, order number.
    Never the query string, headers or body: they carry tokens, passwords and Alipay signatures."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        user = getattr(request, "auth", None)
        order_no = getattr(request, "log_order_no", None)
        if order_no is None:
            match = ORDER_PATH.search(request.path)
            order_no = match.group(1) if match else None
        request_logger.info(
            json.dumps(
                {
                    "event": "request",
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "user_id": getattr(user, "pk", None),
                    "order_no": order_no,
                },
                ensure_ascii=False,
            )
        )
        return response

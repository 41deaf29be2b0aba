"""The NinjaAPI object: the composition root that mounts every app's router under /api/v1,
and the one place where exceptions become the error envelope."""

import json
import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.parser import Parser

from core.api_errors import code_for_status, error_response, status_for
from core.errors import CoreErrorCode, DomainError

logger = logging.getLogger(__name__)


class JSONObjectParser(Parser):
    def parse_body(self, request: HttpRequest) -> Any:
        return json.loads(request.body)


class ShopAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs: Any) -> OpenAPISchema:
        """The schema, plus the 401 that every operation behind the bearer token can answer
        (Ninja documents the security scheme but not that answer), so Swagger UI and the typed
        web client know its body is the error envelope."""
        schema = super().get_openapi_schema(**kwargs)
        for operations in schema["paths"].values():
            for operation in operations.values():
                if operation.get("security"):
                    operation["responses"].setdefault(401, UNAUTHORIZED)
        return schema


UNAUTHORIZED = {
    "description": "No bearer access token, or an invalid or expired one (`not_authenticated`, `invalid_token`).",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
}

api = ShopAPI(
    title="Course shop checkout API",
    version="1",
    description="Cart, checkout with coupons and points, Alipay payment. Errors: `{code, message, details}`.",
    urls_namespace="api-v1",
    parser=JSONObjectParser(),
)


@api.exception_handler(DomainError)
def on_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return error_response(exc.code, exc.message, exc.details, status=status_for(exc.code, request))


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors]
    return error_response(CoreErrorCode.VALIDATION_ERROR, "The request is not valid.", details)


@api.exception_handler(AuthenticationError)
def on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(CoreErrorCode.NOT_AUTHENTICATED, "A bearer access token is required.")


@api.exception_handler(Throttled)
def on_throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
    response = error_response(CoreErrorCode.RATE_LIMITED, "Too many requests; slow down.")
    if exc.wait:
        response["Retry-After"] = str(int(exc.wait))
    return response


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # Ninja raises HttpError(400) around a body it could not parse; say so precisely.
    if isinstance(exc.__cause__, RequestDataTooBig):
        return error_response(CoreErrorCode.PAYLOAD_TOO_LARGE, "The request body is too large.")
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
        return error_response(CoreErrorCode.INVALID_JSON, "The request body is not valid JSON.")
    return error_response(code_for_status(exc.status_code), str(exc))


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(CoreErrorCode.NOT_FOUND, "Not found.")


@api.exception_handler(OperationalError)
def on_database_unavailable(request: HttpRequest, exc: OperationalError) -> HttpResponse:
    # The database went away (a restart, a failover, too many connections) or gave up on a
    # deadlock: the request can simply be sent again, so say so rather than answer 500. The
    # services turn the lock timeouts they expect into their own errors before this.
    logger.warning("database unavailable on %s %s: %s", request.method, request.path, exc)
    response = error_response(
        CoreErrorCode.SERVICE_UNAVAILABLE,
        "The database is briefly unavailable; send the request again (an order with the same Idempotency-Key).",
    )
    response["Retry-After"] = "1"
    return response


@api.exception_handler(Exception)
def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(CoreErrorCode.INTERNAL_ERROR, "Something went wrong on our side.")


def mount_routers() -> None:
    from billing.api import coupons_router, me_router
    from core.api import auth_router, courses_router, health_router
    from core.api import me_router as core_me_router
    from orders.api import cart_router, checkout_router, orders_router, payments_router
    from orders.api import me_router as orders_me_router

    api.add_router("/auth", auth_router)
    api.add_router("/courses", courses_router)
    api.add_router("/health", health_router)
    api.add_router("/cart", cart_router)
    api.add_router("/coupons", coupons_router)
    api.add_router("/me", core_me_router)
    api.add_router("/me", me_router)
    api.add_router("/me", orders_me_router)
    api.add_router("/checkout", checkout_router)
    api.add_router("/orders", orders_router)
    api.add_router("/payments", payments_router)


mount_routers()

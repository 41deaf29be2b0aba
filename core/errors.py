"""One application error type, carrying a code, mapped once to the envelope in `core.api`.

Every error the API answers has the shape `{"code": "snake_case", "message": "...", "details": ...}`.
Each app lists its codes in an `ErrorCode` enum whose members carry their usual HTTP status;
`DomainError` may override the status where the contract answers the same code differently
(`already_purchased` is 409 on the cart and 422 at checkout).
"""

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """A snake_case error code with its default HTTP status (`Member = ("code", status)`)."""

    http_status: int

    def __new__(cls, code: str, http_status: int) -> "ErrorCode":
        member = str.__new__(cls, code)
        member._value_ = code
        member.http_status = http_status
        return member

    def __str__(self) -> str:
        return self.value


class CoreErrorCode(ErrorCode):
    VALIDATION_ERROR = ("validation_error", 422)
    INVALID_JSON = ("invalid_json", 400)
    BAD_REQUEST = ("bad_request", 400)
    NOT_AUTHENTICATED = ("not_authenticated", 401)
    INVALID_TOKEN = ("invalid_token", 401)
    INVALID_CREDENTIALS = ("invalid_credentials", 401)
    FORBIDDEN = ("forbidden", 403)
    NOT_FOUND = ("not_found", 404)
    METHOD_NOT_ALLOWED = ("method_not_allowed", 405)
    PAYLOAD_TOO_LARGE = ("payload_too_large", 413)
    RATE_LIMITED = ("rate_limited", 429)
    INTERNAL_ERROR = ("internal_error", 500)
    SERVICE_UNAVAILABLE = ("service_unavailable", 503)
    USERNAME_TAKEN = ("username_taken", 409)
    COURSE_NOT_FOUND = ("course_not_found", 404)


class DomainError(Exception):
    """A business rule said no. Raised by services, rendered by the API's one handler."""

    def __init__(self, code: ErrorCode, message: str, *, status: int | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or code.http_status
        self.details = details


def envelope(code: ErrorCode | str, message: str, details: Any = None) -> dict[str, Any]:
    return {"code": str(code), "message": message, "details": details}

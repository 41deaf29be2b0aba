"""One application error type, carrying a code, mapped once to the envelope in `core.api_root`.

Every error the API answers has the shape `{"code": "snake_case", "message": "...", "details": ...}`.
Each app lists its codes in an enum subclassing `ErrorCode`; the HTTP status of each code is the
API layer's business (the table in `core.api_root`), so a service never picks one.
"""

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """The base of every app's error codes: snake_case strings, each app's enum subclassing this."""


class CoreErrorCode(ErrorCode):
    VALIDATION_ERROR = "validation_error"
    INVALID_JSON = "invalid_json"
    BAD_REQUEST = "bad_request"
    NOT_AUTHENTICATED = "not_authenticated"
    INVALID_TOKEN = "invalid_token"
    INVALID_CREDENTIALS = "invalid_credentials"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    RATE_LIMITED = "rate_limited"
    INTERNAL_ERROR = "internal_error"
    SERVICE_UNAVAILABLE = "service_unavailable"
    USERNAME_TAKEN = "username_taken"
    COURSE_NOT_FOUND = "course_not_found"


class DomainError(Exception):
    """A business rule said no. Raised by services, rendered by the API's one handler."""

    def __init__(self, code: ErrorCode, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

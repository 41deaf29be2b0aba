from decimal import Decimal
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from ninja.pagination import PageNumberPagination
from pydantic import PlainSerializer, WithJsonSchema

from core.errors import CoreErrorCode
from core.money import to_cents


def money_str(value: Decimal) -> str:
    return str(to_cents(Decimal(value)))


# Money leaves the API as a string with exactly two decimals ("199.00"), never a float.
Money = Annotated[
    Decimal,
    PlainSerializer(money_str, return_type=str, when_used="always"),
    WithJsonSchema({"type": "string", "pattern": r"^\d+\.\d{2}$", "examples": ["199.00"]}),
]


CODE_DESCRIPTION = "snake_case error code, stable for clients to branch on"


# The error envelope of core's operations. Each app's own (billing's `BillingErrorOut`, orders'
# `OrderErrorOut`) widens `code` to the enums it can answer, so the OpenAPI schema and the typed
# web client carry every code. (A comment, not a docstring: a docstring would show in the schema.)
class ErrorOut(Schema):
    code: CoreErrorCode = Field(description=CODE_DESCRIPTION)
    message: str
    details: Any = None


class Pagination(PageNumberPagination):
    """`?page=&page_size=` with upper bounds, so no page number can overflow the SQL OFFSET."""

    class Input(Schema):
        page: int = Field(1, ge=1, le=1_000_000)
        page_size: int | None = Field(None, ge=1, le=100)


USERNAME_PATTERN = r"^[\w.@+-]+$"


class CredentialsIn(Schema):
    username: str = Field(min_length=1, max_length=150, pattern=USERNAME_PATTERN)
    password: str = Field(min_length=1, max_length=128)


class UserOut(Schema):
    id: int
    username: str


class TokenPairOut(Schema):
    access: str
    refresh: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="seconds until the access token expires")


class RefreshIn(Schema):
    refresh: str = Field(min_length=1, max_length=4096)


class CourseOut(Schema):
    id: int
    name: str
    description: str
    picture_url: str
    price: Money
    is_active: bool


class CatalogCourseOut(CourseOut):
    owned: bool = Field(description="whether the caller is enrolled in it; always false without a token")


class HealthOut(Schema):
    status: Literal["ok"]
    database: Literal["ok"]
    database_kind: Literal["embedded_postgres", "postgres"]
    broker: Literal["ok", "embedded"]

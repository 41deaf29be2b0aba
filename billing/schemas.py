from datetime import datetime
from typing import Literal

from ninja import Field, Schema

from billing.errors import BillingErrorCode
from core.errors import CoreErrorCode
from core.schemas import CODE_DESCRIPTION, ErrorOut, Money


class BillingErrorOut(ErrorOut):
    code: CoreErrorCode | BillingErrorCode = Field(description=CODE_DESCRIPTION)


class CouponTerms(Schema):
    name: str
    kind: Literal["fixed", "percent"]
    threshold: Money
    amount_off: Money | None
    percent_off: Money | None = Field(description='percent taken off, e.g. "20.00" for 8折')
    starts_at: datetime
    ends_at: datetime


class CouponOut(CouponTerms):
    id: int
    total_quantity: int
    remaining: int
    claimed: bool

    @staticmethod
    def resolve_remaining(obj) -> int:
        return obj.total_quantity - obj.issued_count


class UserCouponOut(CouponTerms):
    id: int
    coupon_id: int
    status: Literal["unused", "locked", "used"]


class UserCouponFilter(Schema):
    status: Literal["unused", "locked", "used"] | None = None


class PointsEntryOut(Schema):
    id: int
    delta: int
    balance_after: int
    reason: str
    order_no: str | None
    created_at: datetime

    @staticmethod
    def resolve_order_no(obj) -> str | None:
        return obj.order.order_no if obj.order_id else None


class PointsOut(Schema):
    balance: int
    entries: list[PointsEntryOut]

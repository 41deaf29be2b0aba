import re
from datetime import datetime
from typing import Annotated, Literal

from ninja import Field, Schema
from pydantic import AfterValidator, WithJsonSchema

from billing.errors import BillingErrorCode
from billing.schemas import UserCouponOut
from core.db import MAX_ROW_ID
from core.errors import CoreErrorCode, DomainError
from core.schemas import CODE_DESCRIPTION, CourseOut, ErrorOut, Money
from orders.errors import OrderErrorCode
from orders.pricing import points_step
from orders.selectors import enrolment_line, order_line_views, refundable_until

OrderStatus = Literal["pending", "paid", "cancelled", "partially_refunded", "refunded"]
RefundStatus = Literal["requested", "approved", "rejected", "processing", "succeeded", "failed"]

ORDER_NO_PATTERN = r"^[0-9]{1,32}$"
_ORDER_NO = re.compile(ORDER_NO_PATTERN)


def _names_an_order(value: str) -> str:
    # Order numbers are 1-32 ASCII digits, so anything else names no order: 404, as for a number
    # nobody has. It must not reach Postgres either, which answers a NUL byte with an error. Raised
    # from inside validation on purpose: pydantic wraps only ValueError and AssertionError, so the
    # DomainError reaches the API's one handler instead of becoming a 422.
    if not _ORDER_NO.fullmatch(value):
        raise DomainError(OrderErrorCode.ORDER_NOT_FOUND, "There is no order with that number.")
    return value


class OrderErrorOut(ErrorOut):
    # Checkout prices with billing's coupons and points, so their codes come back from here too.
    code: CoreErrorCode | BillingErrorCode | OrderErrorCode = Field(description=CODE_DESCRIPTION)


# The `{order_no}` path parameter.
OrderNo = Annotated[
    str, AfterValidator(_names_an_order), WithJsonSchema({"type": "string", "pattern": ORDER_NO_PATTERN})
]


class CartItemOut(Schema):
    id: int
    course: CourseOut
    selected: bool
    created_at: datetime


class CartOut(Schema):
    items: list[CartItemOut]
    count: int
    selected_count: int
    selected_total: Money


class AddCartItemIn(Schema):
    course_id: int


class SelectionIn(Schema):
    selected: bool


class OrderLineOut(Schema):
    id: int
    course_id: int
    name: str
    picture_url: str
    price: Money
    refundable_amount: Money = Field(
        description="what a refund of this line gives back: its price less its share of the order's discounts"
    )
    refund_status: RefundStatus | None = Field(
        description="its refund's status (the latest one if every refund of it was rejected); null when none"
    )


class RefundLineOut(Schema):
    order_line_id: int
    course_id: int
    amount: Money

    @staticmethod
    def resolve_course_id(obj) -> int:
        return obj.order_line.course_id


class RefundOut(Schema):
    id: int
    status: RefundStatus
    amount: Money
    reason: str
    provider: Literal["alipay", "wechat"] | None = Field(description="where the money goes back; null for 0.00")
    lines: list[RefundLineOut]
    rejection_reason: str
    created_at: datetime
    decided_at: datetime | None
    completed_at: datetime | None

    @staticmethod
    def resolve_provider(obj) -> str | None:
        return obj.attempt.provider if obj.attempt is not None else None

    @staticmethod
    def resolve_lines(obj) -> list:
        return list(obj.lines.all())

    @staticmethod
    def resolve_rejection_reason(obj) -> str:
        return obj.decision_note if obj.status == "rejected" else ""


class RefundRequestIn(Schema):
    order_line_ids: list[Annotated[int, Field(ge=1, le=MAX_ROW_ID)]] = Field(min_length=1, max_length=100)
    reason: str = Field("", max_length=200)


class PaymentAttemptOut(Schema):
    provider: Literal["alipay", "wechat"]
    channel: Literal["page", "wap", "native", "h5"]
    status: Literal["open", "paid", "closed", "refund_required", "refunded"]
    amount: Money
    created_at: datetime
    paid_at: datetime | None


class OrderOut(Schema):
    order_no: str
    status: OrderStatus
    pay_type: Literal["alipay", "wechat"]
    subtotal: Money
    coupon_discount: Money
    points_used: int
    points_discount: Money
    pay_amount: Money
    user_coupon_id: int | None
    expires_at: datetime
    paid_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str
    created_at: datetime
    lines: list[OrderLineOut]
    payment_attempts: list[PaymentAttemptOut]
    refundable_until: datetime | None = Field(description="the end of the refund window (paid orders)")
    refunds: list[RefundOut]

    @staticmethod
    def resolve_lines(obj) -> list:
        return order_line_views(obj)

    @staticmethod
    def resolve_refundable_until(obj) -> datetime | None:
        return refundable_until(obj)

    @staticmethod
    def resolve_refunds(obj) -> list:
        return list(obj.refunds.all())

    @staticmethod
    def resolve_payment_attempts(obj) -> list:
        return list(obj.payment_attempts.all())


class PlaceOrderIn(Schema):
    # The buyer's first choice: POST /orders/{order_no}/pay may use another provider.
    pay_type: Literal["alipay", "wechat"] = "alipay"
    user_coupon_id: int | None = Field(None, ge=1, le=MAX_ROW_ID)
    points: int = Field(0, ge=0, le=10**12)


class CheckoutQuery(Schema):
    user_coupon_id: int | None = Field(None, ge=1, le=MAX_ROW_ID)
    points: int = Field(0, ge=0, le=10**12)


class OrderFilter(Schema):
    status: OrderStatus | None = None


class UsableCouponOut(UserCouponOut):
    discount: Money


class PreviewLineOut(Schema):
    course_id: int
    name: str
    picture_url: str
    price: Money

    @staticmethod
    def resolve_name(obj) -> str:
        return obj.course.name

    @staticmethod
    def resolve_picture_url(obj) -> str:
        return obj.course.picture_url

    @staticmethod
    def resolve_price(obj):
        return obj.course.price


class CheckoutPreviewOut(Schema):
    lines: list[PreviewLineOut]
    subtotal: Money
    usable_coupons: list[UsableCouponOut]
    points_balance: int
    max_points: int
    points_per_yuan: int
    points_step: int = Field(description="points are spent in multiples of this (1 when a point buys whole cents)")
    coupon_discount: Money
    points_discount: Money
    pay_amount: Money

    @staticmethod
    def resolve_points_step(obj) -> int:
        return points_step(obj.points_per_yuan)

    @staticmethod
    def resolve_usable_coupons(obj) -> list[dict]:
        return [
            {**UserCouponOut.from_orm(c.user_coupon).model_dump(), "discount": c.discount} for c in obj.usable_coupons
        ]


class PayIn(Schema):
    """Both optional: the order's pay_type, and that provider's usual channel on a computer
    (Alipay page pay, WeChat Pay Native)."""

    provider: Literal["alipay", "wechat"] | None = None
    channel: Literal["page", "wap", "native", "h5"] | None = None


class PayOut(Schema):
    """What the client opens: exactly one is set. `pay_url` (Alipay page or wap): navigate to it;
    `code_url` (WeChat Pay Native): show it as a QR code for the WeChat app to scan; `h5_url`
    (WeChat Pay H5): navigate to it in the phone's browser."""

    provider: Literal["alipay", "wechat"]
    channel: Literal["page", "wap", "native", "h5"]
    pay_url: str | None = None
    code_url: str | None = None
    h5_url: str | None = None


class WechatFailOut(Schema):
    """WeChat Pay's own error shape for notify answers (not the API's error envelope)."""

    code: Literal["FAIL"]
    message: str


class CourseSummaryOut(Schema):
    id: int
    name: str
    picture_url: str


class OwnedCourseOut(Schema):
    """A course the buyer is enrolled in, and what they paid for it."""

    course: CourseSummaryOut
    order_no: str | None = Field(description="the order that bought it; null for a course given by staff")
    order_line_id: int | None = Field(description="its line in that order: what POST /orders/{no}/refunds takes")
    price_paid: Money | None = Field(description="its price less its share of the order's discounts")
    enrolled_at: datetime
    refundable_until: datetime | None = Field(description="the end of its refund window (may be past)")
    refund_status: RefundStatus | None = Field(description="its refund's status, when one was asked for")

    @staticmethod
    def resolve_order_no(obj) -> str | None:
        return obj.order.order_no if obj.order is not None else None

    @staticmethod
    def resolve_order_line_id(obj) -> int | None:
        line = enrolment_line(obj)
        return line.id if line else None

    @staticmethod
    def resolve_price_paid(obj):
        line = enrolment_line(obj)
        return line.refundable_amount if line else None

    @staticmethod
    def resolve_enrolled_at(obj) -> datetime:
        return obj.created_at

    @staticmethod
    def resolve_refundable_until(obj) -> datetime | None:
        return refundable_until(obj.order) if obj.order is not None else None

    @staticmethod
    def resolve_refund_status(obj) -> str | None:
        line = enrolment_line(obj)
        return line.refund_status if line else None

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Prefetch, QuerySet

from billing import selectors as billing_selectors
from billing.models import UserCoupon
from billing.services import check_coupon_applies, get_user_coupon
from core.db import json_datetime, prepared_cursor
from core.errors import DomainError
from core.models import Enrollment, User
from core.money import ZERO
from core.schemas import money_str
from orders import pricing
from orders.errors import OrderErrorCode
from orders.models import CartItem, Order, OrderLine, Refund, RefundLine


def cart_items(*, user: User) -> QuerySet[CartItem]:
    return CartItem.objects.filter(user=user).select_related("course")


# The cart is read on every page of the shop: one hand-written query, newest first as
# CartItem.Meta.ordering, answered without the ORM's model instances (tests/test_cart.py checks
# the answer against CartOut).
CART = f"""
SELECT cart.id, cart.selected, {json_datetime("cart.created_at")}, course.id, course.name, course.description,
    course.picture_url, course.price, course.is_active
FROM orders_cartitem cart JOIN core_course course ON course.id = cart.course_id
WHERE cart.user_id = %s
ORDER BY cart.created_at DESC, cart.id DESC"""


def get_cart(*, user: User) -> dict[str, Any]:
    """GET /cart's answer (CartOut's shape), totals summed here in Decimal.

    A course withdrawn from sale stays visible in the cart (so it can be removed) but does not
    count towards the selected total and cannot be checked out.
    """
    with prepared_cursor() as cursor:
        cursor.execute(CART, [user.pk])
        rows = cursor.fetchall()
    items = []
    selected_count, selected_total = 0, ZERO
    for item_id, selected, created_at, course_id, name, description, picture_url, price, is_active in rows:
        course = {
            "id": course_id,
            "name": name,
            "description": description,
            "picture_url": picture_url,
            "price": money_str(price),
            "is_active": is_active,
        }
        items.append({"id": item_id, "course": course, "selected": selected, "created_at": created_at})
        if selected and is_active:
            selected_count, selected_total = selected_count + 1, selected_total + price
    return {
        "items": items,
        "count": len(items),
        "selected_count": selected_count,
        "selected_total": money_str(selected_total),
    }


def check_not_owned(*, user: User, course_ids: list[int]) -> None:
    """A course the user owns, or is already paying for in another pending order, can't be bought."""
    enrolled, pending = owned_or_pending(user=user, course_ids=course_ids)
    if enrolled or pending:
        raise already_purchased(enrolled_course_ids=enrolled, pending=pending)


def owned_or_pending(*, user: User, course_ids: list[int]) -> tuple[list[int], dict[int, str]]:
    """Which of these courses the user is enrolled in, and which wait in a pending order of theirs
    (course id -> order number). An order being placed has no lines yet, so it never counts
    against itself. Checkout asks the same inside its cart statement
    (orders/services/checkout_sql.py)."""
    enrolled = list(Enrollment.objects.filter(user=user, course_id__in=course_ids).values_list("course_id", flat=True))
    # The user's pending orders first (the order_user_status index): usually there are none, and
    # then the order lines are not read at all. Joining lines to orders in one query let the
    # planner pick a plan that scanned every pending line in the shop once statistics went stale.
    order_nos = dict(Order.objects.filter(user=user, status=Order.Status.PENDING).values_list("pk", "order_no"))
    pending = {}
    if order_nos:
        lines = OrderLine.objects.filter(order_id__in=order_nos, course_id__in=course_ids)
        pending = {course_id: order_nos[order_id] for course_id, order_id in lines.values_list("course_id", "order_id")}
    return enrolled, pending


def already_purchased(*, enrolled_course_ids: list[int], pending: dict[int, str]) -> DomainError:
    return DomainError(
        OrderErrorCode.ALREADY_PURCHASED,
        "Some selected courses are already yours or waiting for payment in another order.",
        details={"enrolled_course_ids": sorted(enrolled_course_ids), "pending": pending},
    )


@dataclass(frozen=True)
class UsableCoupon:
    user_coupon: UserCoupon
    discount: Decimal


@dataclass(frozen=True)
class CheckoutPreview:
    lines: list[CartItem]
    subtotal: Decimal
    usable_coupons: list[UsableCoupon]
    points_balance: int
    max_points: int
    points_per_yuan: int
    coupon_discount: Decimal
    points_discount: Decimal
    pay_amount: Decimal


def checkout_preview(*, user: User, user_coupon_id: int | None, points: int) -> CheckoutPreview:
    """What POST /orders would charge now, with the same rules and errors, locking nothing."""
    items = [item for item in cart_items(user=user).filter(selected=True).order_by("pk") if item.course.is_active]
    if not items:
        raise DomainError(OrderErrorCode.CART_EMPTY, "Select at least one course in your cart.")
    check_not_owned(user=user, course_ids=[item.course_id for item in items])
    subtotal = sum((item.course.price for item in items), ZERO)
    user_coupon = None
    if user_coupon_id is not None:
        user_coupon = get_user_coupon(user=user, user_coupon_id=user_coupon_id)
        check_coupon_applies(user_coupon=user_coupon, subtotal=subtotal)
    balance = billing_selectors.points_balance(user=user)
    priced = pricing.quote(
        subtotal=subtotal,
        terms=pricing.coupon_terms(user_coupon),
        points=points,
        points_balance=balance,
        points_per_yuan=settings.POINTS_PER_YUAN,
    )
    usable = [
        UsableCoupon(
            user_coupon=c, discount=pricing.coupon_discount(subtotal=priced.subtotal, terms=pricing.coupon_terms(c))
        )
        for c in billing_selectors.usable_user_coupons(user=user, subtotal=subtotal)
    ]
    return CheckoutPreview(
        lines=items,
        subtotal=priced.subtotal,
        usable_coupons=usable,
        points_balance=balance,
        max_points=priced.max_points,
        points_per_yuan=settings.POINTS_PER_YUAN,
        coupon_discount=priced.coupon_discount,
        points_discount=priced.points_discount,
        pay_amount=priced.pay_amount,
    )


def refunds_with_lines() -> QuerySet[Refund]:
    return Refund.objects.select_related("attempt").prefetch_related(
        Prefetch("lines", queryset=RefundLine.objects.select_related("order_line"))
    )


def user_orders(*, user: User, status: str | None = None) -> QuerySet[Order]:
    """The user's orders, newest first, with their lines, attempts and refunds (5 queries a page)."""
    orders = (
        Order.objects.filter(user=user)
        .prefetch_related("lines", "payment_attempts", Prefetch("refunds", queryset=refunds_with_lines()))
        .order_by("-created_at", "-id")
    )
    return orders.filter(status=status) if status else orders


def get_user_order(*, user: User, order_no: str) -> Order:
    order = user_orders(user=user).filter(order_no=order_no).first()
    if order is None:
        raise DomainError(OrderErrorCode.ORDER_NOT_FOUND, f"Order {order_no} does not exist.")
    return order


def get_user_refund(*, user: User, refund_id: int) -> Refund:
    return refunds_with_lines().get(pk=refund_id, order__user=user)


def refundable_until(order: Order) -> datetime | None:
    """The end of the buyer's refund window: REFUND_WINDOW_DAYS after payment."""
    if order.paid_at is None:
        return None
    return order.paid_at + timedelta(days=settings.REFUND_WINDOW_DAYS)


@dataclass(frozen=True)
class OrderLineView:
    id: int
    course_id: int
    name: str
    picture_url: str
    price: Decimal
    refundable_amount: Decimal
    refund_status: str | None


def order_line_views(order: Order) -> list[OrderLineView]:
    """The order's lines with what each is worth in a refund (orders/pricing.py `split_order`) and
    where its refund stands, from the lines and refunds prefetched with the order."""
    lines = sorted(order.lines.all(), key=lambda line: line.pk)
    shares = pricing.split_order(
        prices=[line.price for line in lines],
        coupon_discount=order.coupon_discount,
        points_discount=order.points_discount,
        points_used=order.points_used,
    )
    states = line_refund_states(order)
    return [
        OrderLineView(
            id=line.pk,
            course_id=line.course_id,
            name=line.name,
            picture_url=line.picture_url,
            price=line.price,
            refundable_amount=share.refundable,
            refund_status=states.get(line.pk),
        )
        for line, share in zip(lines, shares, strict=True)
    ]


def line_refund_states(order: Order) -> dict[int, str]:
    """Order line id -> the status of its live refund, or of its latest one when every refund of
    it was rejected (from the order's prefetched refunds)."""
    live: dict[int, str] = {}
    latest: dict[int, str] = {}
    for refund in sorted(order.refunds.all(), key=lambda refund: refund.pk):
        for line in refund.lines.all():
            latest[line.order_line_id] = refund.status
            if line.active:
                live[line.order_line_id] = refund.status
    return {**latest, **live}


def owned_courses(*, user: User) -> QuerySet[Enrollment]:
    """The user's enrolments, newest first, with each course and the order that bought it (its
    lines and refunds): a page costs 5 queries however long it is."""
    return (
        Enrollment.objects.filter(user=user)
        .select_related("course", "order")
        .prefetch_related("order__lines", Prefetch("order__refunds", queryset=refunds_with_lines()))
        .order_by("-created_at", "-id")
    )


def enrolment_line(enrollment: Enrollment) -> OrderLineView | None:
    """The order line that bought an enrolment's course (None for an enrolment given by hand)."""
    if enrollment.order is None:
        return None
    return next((line for line in order_line_views(enrollment.order) if line.course_id == enrollment.course_id), None)

"""Checkout pricing (DESIGN.md "Pricing"): pure functions over Decimal, no database.

Cents are exact: every amount is quantized to 0.01 with ROUND_HALF_UP, and points only buy whole
cents (with POINTS_PER_YUAN = 10 a point is worth 0.10; with a rate that does not divide into
cents, points are usable in the smallest step that does).
"""

from dataclasses import dataclass
from decimal import Decimal
from math import gcd

from billing.errors import BillingErrorCode
from core.errors import CoreErrorCode, DomainError
from core.money import CENT, ZERO, to_cents

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class CouponTerms:
    kind: str
    amount_off: Decimal | None
    percent_off: Decimal | None


@dataclass(frozen=True)
class Quote:
    subtotal: Decimal
    coupon_discount: Decimal
    points_used: int
    points_discount: Decimal
    pay_amount: Decimal
    max_points: int


def coupon_terms(user_coupon) -> CouponTerms | None:
    if user_coupon is None:
        return None
    return CouponTerms(kind=user_coupon.kind, amount_off=user_coupon.amount_off, percent_off=user_coupon.percent_off)


def coupon_discount(*, subtotal: Decimal, terms: CouponTerms | None) -> Decimal:
    if terms is None:
        return ZERO
    if terms.kind == "percent":
        off = to_cents(subtotal * (terms.percent_off or ZERO) / HUNDRED)
    else:
        off = to_cents(terms.amount_off or ZERO)
    return min(off, subtotal)


def points_step(points_per_yuan: int) -> int:
    """The fewest points worth a whole number of cents."""
    return points_per_yuan // gcd(points_per_yuan, 100)


def points_value(points: int, points_per_yuan: int) -> Decimal:
    return to_cents(Decimal(points) / Decimal(points_per_yuan))


def max_usable_points(*, amount_left: Decimal, balance: int, points_per_yuan: int) -> int:
    cents_left = int(amount_left / CENT)
    by_amount = cents_left * points_per_yuan // 100
    step = points_step(points_per_yuan)
    return max(0, min(by_amount, balance) // step * step)


def quote(
    *, subtotal: Decimal, terms: CouponTerms | None, points: int, points_balance: int, points_per_yuan: int
) -> Quote:
    subtotal = to_cents(subtotal)
    discount = coupon_discount(subtotal=subtotal, terms=terms)
    amount_left = subtotal - discount
    limit = max_usable_points(amount_left=amount_left, balance=points_balance, points_per_yuan=points_per_yuan)
    if points > points_balance:
        raise DomainError(
            BillingErrorCode.INSUFFICIENT_POINTS,
            f"You have {points_balance} points, not {points}.",
            details={"balance": points_balance, "requested": points},
        )
    if points > limit:
        raise DomainError(
            BillingErrorCode.POINTS_EXCEED_LIMIT,
            f"At most {limit} points can be used on this order.",
            details={"max_points": limit, "requested": points},
        )
    step = points_step(points_per_yuan)
    if points % step:
        raise DomainError(
            CoreErrorCode.VALIDATION_ERROR,
            f"Points are usable in steps of {step}.",
            details=[{"loc": ["body", "points"], "msg": f"must be a multiple of {step}", "type": "points_step"}],
        )
    points_discount = points_value(points, points_per_yuan)
    return Quote(
        subtotal=subtotal,
        coupon_discount=discount,
        points_used=points,
        points_discount=points_discount,
        pay_amount=amount_left - points_discount,
        max_points=limit,
    )

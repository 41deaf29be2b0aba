"""Checkout pricing (DESIGN.md "Pricing"): pure functions over Decimal, no database.

Cents are exact: every amount is quantized to 0.01 with ROUND_HALF_UP, and points only buy whole
cents (with POINTS_PER_YUAN = 10 a point is worth 0.10; with a rate that does not divide into
cents, points are usable in the smallest step that does).
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from math import gcd

from billing.errors import BillingErrorCode
from core.errors import CoreErrorCode, DomainError
from core.money import CENT, ZERO, to_cents

HUNDRED = Decimal(100)
ONE = Decimal(1)


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


# Refunds: what each line of a paid order is worth ----------------------------------------------


@dataclass(frozen=True)
class LineShare:
    """One order line's part of what the buyer paid: its price less its share of the order's
    discounts (coupon and points together), and its share of the points spent."""

    price: Decimal
    discount: Decimal
    points: int

    @property
    def refundable(self) -> Decimal:
        return self.price - self.discount


def _running_share(total: Decimal, *, before: Decimal, price: Decimal, subtotal: Decimal, quantum: Decimal) -> Decimal:
    if not subtotal:
        return ZERO
    upto = (total * (before + price) / subtotal).quantize(quantum, rounding=ROUND_HALF_UP)
    until = (total * before / subtotal).quantize(quantum, rounding=ROUND_HALF_UP)
    return upto - until


def line_share(*, price: Decimal, before: Decimal, subtotal: Decimal, discount: Decimal, points_used: int) -> LineShare:
    """One line's share, from its price and the sum of the prices of the lines before it (lines
    in id order): enough to price one line without reading the others' shares. See `split_order`."""
    return LineShare(
        price=price,
        discount=_running_share(discount, before=before, price=price, subtotal=subtotal, quantum=CENT),
        points=int(_running_share(Decimal(points_used), before=before, price=price, subtotal=subtotal, quantum=ONE)),
    )


def split_order(
    *, prices: list[Decimal], coupon_discount: Decimal, points_discount: Decimal, points_used: int
) -> list[LineShare]:
    """Splits an order's discounts over its lines (in id order), so that a line's refundable amount
    is its price less its share of the coupon and points discounts, and the lines add up exactly to
    `pay_amount` (DESIGN.md "Domain", `orders.Refund`).

    The rule: the discount is split in proportion to the lines' prices, rounded half up to the fen,
    with the last line taking the remainder. Rounding each line on its own and giving the last line
    what is left can leave the last line a negative amount (three lines of 1.00 and one of 0.00
    sharing 0.04: 0.01 each, and -0.01 for the free line), so the rounding is done on the running
    total instead: line i's share is round(D * P_i / S) - round(D * P_(i-1) / S), where D is the
    discount, S the subtotal and P_i the sum of the prices of lines 1..i. The shares then add up to
    exactly D (the last line takes what the rounding of the others left), each is within a fen of
    its exact proportion, and none is negative or more than its line's price, so every refundable
    amount is between 0.00 and its price. The points spent are split the same way in whole points,
    so refunding every line gives every point back. An order of free lines (subtotal 0.00) has no
    discount to split."""
    subtotal = sum(prices, ZERO)
    discount = coupon_discount + points_discount
    shares, before = [], ZERO
    for price in prices:
        shares.append(
            line_share(price=price, before=before, subtotal=subtotal, discount=discount, points_used=points_used)
        )
        before += price
    return shares

"""Property tests of checkout pricing (DESIGN.md "Pricing")."""

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import DomainError
from orders.pricing import CouponTerms, coupon_discount, max_usable_points, points_step, quote

money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)
percent = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100.00"), places=2)
terms = st.one_of(
    st.none(),
    st.builds(CouponTerms, kind=st.just("fixed"), amount_off=money, percent_off=st.none()),
    st.builds(CouponTerms, kind=st.just("percent"), amount_off=st.none(), percent_off=percent),
)
rates = st.sampled_from([1, 3, 10, 100, 1000, 7])


@settings(max_examples=400, deadline=None)
@given(subtotal=money, terms=terms, balance=st.integers(0, 10**7), rate=rates, data=st.data())
def test_quote_adds_up_in_exact_cents(subtotal, terms, balance, rate, data):
    limit = max_usable_points(
        amount_left=subtotal - coupon_discount(subtotal=subtotal, terms=terms), balance=balance, points_per_yuan=rate
    )
    step = points_step(rate)
    points = data.draw(st.integers(0, limit // step)) * step
    result = quote(subtotal=subtotal, terms=terms, points=points, points_balance=balance, points_per_yuan=rate)
    for amount in (result.subtotal, result.coupon_discount, result.points_discount, result.pay_amount):
        assert amount >= 0
        assert amount == amount.quantize(Decimal("0.01"))
    assert result.pay_amount == result.subtotal - result.coupon_discount - result.points_discount
    assert result.coupon_discount <= result.subtotal
    assert result.points_used <= balance
    # points buy whole cents exactly: no rounding on the points side
    assert result.points_discount * rate == Decimal(points)
    assert result.max_points == limit


@settings(max_examples=300, deadline=None)
@given(subtotal=money, pct=percent)
def test_percent_rounds_half_up_to_cents(subtotal, pct):
    expected = (subtotal * pct / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert coupon_discount(subtotal=subtotal, terms=CouponTerms("percent", None, pct)) == min(expected, subtotal)


@settings(max_examples=200, deadline=None)
@given(subtotal=money, balance=st.integers(0, 10**7), rate=rates, extra=st.integers(1, 1000))
def test_points_above_the_limit_are_refused(subtotal, balance, rate, extra):
    limit = max_usable_points(amount_left=subtotal, balance=balance, points_per_yuan=rate)
    with pytest.raises(DomainError) as error:
        quote(
            subtotal=subtotal,
            terms=None,
            points=limit + extra * points_step(rate),
            points_balance=balance,
            points_per_yuan=rate,
        )
    assert error.value.code in {"insufficient_points", "points_exceed_limit"}


def test_known_values():
    assert coupon_discount(subtotal=Decimal("0.05"), terms=CouponTerms("percent", None, Decimal("10"))) == Decimal(
        "0.01"
    )  # 0.005 rounds half-up
    assert coupon_discount(subtotal=Decimal("10.00"), terms=CouponTerms("fixed", Decimal("50.00"), None)) == Decimal(
        "10.00"
    )
    assert points_step(10) == 1 and points_step(3) == 3 and points_step(1000) == 10
    assert max_usable_points(amount_left=Decimal("1.00"), balance=1000, points_per_yuan=3) == 3

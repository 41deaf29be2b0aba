"""Property tests of the per-line refund split (orders/pricing.py `split_order`): random prices,
discounts and line counts, and orders placed through the real checkout."""

from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from orders.models import Order
from orders.pricing import CouponTerms, line_share, quote, split_order
from tests.conftest import ApiClient
from tests.factories import fill_cart, give_coupon, give_points

CENT = Decimal("0.01")
prices = st.lists(
    st.one_of(
        st.just(Decimal("0.00")),
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999.99"), places=2),
    ),
    min_size=1,
    max_size=25,
)


@st.composite
def orders(draw):
    """An order's line prices and discounts as the checkout prices them: a coupon of any kind,
    then points (10 a yuan) up to what is left."""
    line_prices = draw(prices)
    subtotal = sum(line_prices, Decimal("0.00"))
    terms = draw(
        st.one_of(
            st.none(),
            st.builds(
                CouponTerms,
                kind=st.just("fixed"),
                amount_off=st.decimals(min_value=CENT, max_value=Decimal("99999.99"), places=2),
                percent_off=st.none(),
            ),
            st.builds(
                CouponTerms,
                kind=st.just("percent"),
                amount_off=st.none(),
                percent_off=st.decimals(min_value=CENT, max_value=Decimal("100.00"), places=2),
            ),
        )
    )
    balance = draw(st.integers(0, 10**7))
    limit = quote(subtotal=subtotal, terms=terms, points=0, points_balance=balance, points_per_yuan=10).max_points
    points = draw(st.integers(0, limit))
    priced = quote(subtotal=subtotal, terms=terms, points=points, points_balance=balance, points_per_yuan=10)
    return line_prices, priced


@settings(max_examples=600, deadline=None)
@given(order=orders())
@example(
    order=(
        [Decimal("1.00")] * 3 + [Decimal("0.00")],
        quote(
            subtotal=Decimal("3.00"),
            terms=CouponTerms(kind="fixed", amount_off=Decimal("0.04"), percent_off=None),
            points=0,
            points_balance=0,
            points_per_yuan=10,
        ),
    )
)
def test_lines_add_up_exactly_to_what_was_paid(order):
    line_prices, priced = order
    shares = split_order(
        prices=line_prices,
        coupon_discount=priced.coupon_discount,
        points_discount=priced.points_discount,
        points_used=priced.points_used,
    )
    assert [share.price for share in shares] == line_prices
    assert sum((share.refundable for share in shares), Decimal("0.00")) == priced.pay_amount
    assert sum(share.points for share in shares) == priced.points_used
    discount = priced.coupon_discount + priced.points_discount
    for share in shares:
        assert share.refundable == share.refundable.quantize(CENT)
        assert Decimal("0.00") <= share.refundable <= share.price
        assert 0 <= share.points <= priced.points_used
        # Within a fen of the line's exact proportion of the discount, a point of the points.
        if priced.subtotal:
            assert abs(share.discount - discount * share.price / priced.subtotal) <= CENT
            assert abs(share.points - priced.points_used * share.price / priced.subtotal) <= 1
        else:
            assert (share.discount, share.points) == (Decimal("0.00"), 0)


@settings(max_examples=200, deadline=None)
@given(order=orders(), data=st.data())
def test_one_line_is_priced_alone_from_the_lines_before_it(order, data):
    line_prices, priced = order
    shares = split_order(
        prices=line_prices,
        coupon_discount=priced.coupon_discount,
        points_discount=priced.points_discount,
        points_used=priced.points_used,
    )
    i = data.draw(st.integers(0, len(line_prices) - 1))
    alone = line_share(
        price=line_prices[i],
        before=sum(line_prices[:i], Decimal("0.00")),
        subtotal=priced.subtotal,
        discount=priced.coupon_discount + priced.points_discount,
        points_used=priced.points_used,
    )
    assert alone == shares[i]


def test_the_last_line_takes_the_remainder():
    # 10.00 off 3 x 10.00: 3.33, 3.34, 3.33 on the running total; the lines pay 6.67, 6.66, 6.67.
    shares = split_order(
        prices=[Decimal("10.00")] * 3, coupon_discount=Decimal("10.00"), points_discount=Decimal("0.00"), points_used=0
    )
    assert [share.refundable for share in shares] == [Decimal("6.67"), Decimal("6.66"), Decimal("6.67")]
    # A fully discounted order: every line is worth 0.00.
    free = split_order(
        prices=[Decimal("5.00"), Decimal("7.00")],
        coupon_discount=Decimal("12.00"),
        points_discount=Decimal("0.00"),
        points_used=0,
    )
    assert [share.refundable for share in free] == [Decimal("0.00"), Decimal("0.00")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("line_prices", "amount_off", "points"),
    [
        (["100.00", "57.99", "0.01"], "20.00", 30),
        (["33.33", "33.33", "33.34", "0.00"], "0.07", 0),
        (["9.90"], "9.90", 0),
        (["19.99", "0.50", "1.00"], "20.00", 14),
    ],
)
def test_orders_placed_through_the_checkout_split_to_their_pay_amount(user, line_prices, amount_off, points):
    fill_cart(user, *line_prices)
    coupon = give_coupon(user, threshold="0.00", amount_off=amount_off)
    give_points(user, 1000)
    placed = ApiClient(user).post(
        "/orders", {"user_coupon_id": coupon.pk, "points": points}, headers={"Idempotency-Key": "split"}
    )
    assert placed.status_code == 201, placed.content
    order = Order.objects.get(order_no=placed.json()["order_no"])
    lines = list(order.lines.order_by("id"))
    shares = split_order(
        prices=[line.price for line in lines],
        coupon_discount=order.coupon_discount,
        points_discount=order.points_discount,
        points_used=order.points_used,
    )
    assert sum((share.refundable for share in shares), Decimal("0.00")) == order.pay_amount
    assert sum(share.points for share in shares) == order.points_used == points

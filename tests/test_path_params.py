"""Every path parameter, fed what a hostile client sends: never a 500. An order number is 1-32
ASCII digits, anything else names no order (404 `order_not_found`) and never reaches Postgres,
which refuses a NUL byte in a text parameter with an error rather than a miss."""

import pytest

from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

HOSTILE_ORDER_NOS = [
    "1%002",  # NUL
    "%00",
    "1" * 33,  # longer than any order number
    "abc",
    "%C2%B2",  # a superscript two: a digit to str.isdigit, not to us
    "%EF%BC%91",  # a fullwidth one
    "-1",
    "1.0",
    "%201",
    "1%0A",
]


@pytest.mark.parametrize("order_no", HOSTILE_ORDER_NOS)
@pytest.mark.parametrize(
    ("method", "template"),
    [("get", "/orders/{}"), ("post", "/orders/{}/cancel"), ("post", "/orders/{}/pay"), ("post", "/orders/{}/refunds")],
)
def test_an_order_number_that_cannot_exist_is_order_not_found(api, method, template, order_no):
    body = {"order_line_ids": [1]} if template.endswith("/refunds") else None
    response = api.request(method.upper(), template.format(order_no), body)
    assert_error(response, 404, "order_not_found")


def test_a_well_formed_order_number_still_reaches_the_order(api):
    assert_error(api.get("/orders/" + "9" * 32), 404, "order_not_found")


HOSTILE_IDS = ["99999999999999999999", "9223372036854775808", "0", "-1", "1%00", "%00", "abc", "%C2%B2", "1e3"]


@pytest.mark.parametrize("value", HOSTILE_IDS)
@pytest.mark.parametrize(
    ("method", "template", "not_found"),
    [
        ("get", "/courses/{}", "course_not_found"),
        ("patch", "/cart/items/{}", "cart_item_not_found"),
        ("delete", "/cart/items/{}", "cart_item_not_found"),
        ("post", "/coupons/{}/claim", "coupon_not_found"),
    ],
)
def test_an_id_no_row_can_have_is_not_found_or_invalid_never_an_error(api, method, template, not_found, value):
    body = {"selected": True} if method == "patch" else None
    response = api.request(method.upper(), template.format(value), body)
    if value.lstrip("-").isdigit():  # a number, but out of range: no such row
        assert_error(response, 404, not_found)
    else:  # not a number at all
        assert_error(response, 422, "validation_error")

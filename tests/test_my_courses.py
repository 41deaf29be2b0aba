"""What the buyer owns: `GET /me/courses`, and `owned` on the catalogue when called with a token."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.dateparse import parse_datetime

from core.models import Enrollment
from orders import events
from orders.models import Order
from tests.conftest import ApiClient, assert_error, assert_ledger_consistent
from tests.factories import CourseFactory, EnrollmentFactory, fill_cart
from tests.payment_support import DEAD_BASE_URL, key_dir, use_dev_gateway
from tests.refund_support import ask_refund, line_ids, order_with_discounts, pay_by_alipay_notify

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def alipay_settings(settings, tmp_path_factory, monkeypatch):
    use_dev_gateway(settings, base_url=DEAD_BASE_URL, dev_key_dir=key_dir(tmp_path_factory))
    settings.REFUND_AUTO_APPROVE = False
    monkeypatch.setattr(events, "refund_approved", lambda request_no: None)


def test_my_courses_lists_enrolments_newest_first_with_what_was_paid(user, other_user, api):
    first_order = pay_by_alipay_notify(user, order_with_discounts(user, "100.00", "57.99", key="one"))
    given = EnrollmentFactory(user=user)  # given by staff: no order
    second_order = pay_by_alipay_notify(user, order_with_discounts(user, "30.00", key="two", amount_off="", points=0))
    pay_by_alipay_notify(other_user, order_with_discounts(other_user, "12.00", key="theirs", amount_off=""))
    first, second = line_ids(first_order.order_no)
    ask_refund(user, first_order.order_no, [second])

    body = api.get("/me/courses").json()

    assert body["count"] == 4
    items = body["items"]
    third_line = second_order.lines.get()
    assert items[0] == {
        "course": {"id": third_line.course_id, "name": third_line.name, "picture_url": third_line.picture_url},
        "order_no": second_order.order_no,
        "order_line_id": third_line.pk,
        "price_paid": "30.00",
        "enrolled_at": items[0]["enrolled_at"],
        "refundable_until": items[0]["refundable_until"],
        "refund_status": None,
    }
    until = parse_datetime(items[0]["refundable_until"])
    assert abs(until - (second_order.paid_at + timedelta(days=7))) < timedelta(milliseconds=1)  # JSON: ms
    assert (items[1]["course"]["id"], items[1]["order_no"], items[1]["price_paid"]) == (given.course_id, None, None)
    assert items[1]["refundable_until"] is None and items[1]["order_line_id"] is None
    bought = {item["order_line_id"]: item for item in items[2:]}
    assert {line: (item["price_paid"], item["refund_status"]) for line, item in bought.items()} == {
        first: ("85.44", None),
        second: ("49.55", "requested"),
    }
    assert [item["order_no"] for item in items[2:]] == [first_order.order_no] * 2
    page = api.get("/me/courses?page=2&page_size=3").json()
    assert (page["count"], len(page["items"])) == (4, 1)
    assert_error(ApiClient().get("/me/courses"), 401, "not_authenticated")


def test_a_page_of_my_courses_costs_a_fixed_number_of_queries(user, api):
    for n in range(3):
        pay_by_alipay_notify(user, order_with_discounts(user, "10.00", "20.00", key=f"k{n}", points=10))
    with CaptureQueriesContext(connection) as few:
        assert api.get("/me/courses").json()["count"] == 6
    for n in range(3, 8):
        pay_by_alipay_notify(user, order_with_discounts(user, "10.00", "20.00", key=f"k{n}", points=10))
    with CaptureQueriesContext(connection) as many:
        assert len(api.get("/me/courses").json()["items"]) == 16
    assert len(many) == len(few), [q["sql"] for q in many]


def test_a_refunded_course_leaves_my_courses(user, api, settings):
    settings.REFUND_AUTO_APPROVE = True
    # Fully discounted: the refund succeeds at once, with no provider.
    order_no = order_with_discounts(user, "10.00", "20.00", amount_off="30.00", points=0)["order_no"]
    first, _ = line_ids(order_no)
    assert ask_refund(user, order_no, [first]).json()["status"] == "succeeded"
    items = api.get("/me/courses").json()["items"]
    assert [item["order_line_id"] for item in items] == [line_ids(order_no)[1]]
    assert Order.objects.get(order_no=order_no).status == "partially_refunded"
    assert_ledger_consistent()


def test_courses_say_owned_with_a_token_and_stay_public_without(user, other_user, anon):
    owned, other = CourseFactory(), CourseFactory()
    Enrollment.objects.create(user=user, course=owned)
    EnrollmentFactory(user=other_user, course=other)

    mine = ApiClient(user).get("/courses").json()["items"]
    assert {c["id"]: c["owned"] for c in mine} == {owned.pk: True, other.pk: False}
    assert ApiClient(user).get(f"/courses/{owned.pk}").json()["owned"] is True
    assert ApiClient(user).get(f"/courses/{other.pk}").json()["owned"] is False
    public = anon.get("/courses").json()["items"]
    assert [c["owned"] for c in public] == [False, False]
    assert anon.get(f"/courses/{owned.pk}").json()["owned"] is False
    # A bad token is refused rather than taken for none: the shop refreshes it and asks again.
    bad = ApiClient()
    bad.headers["Authorization"] = "Bearer nope"
    assert_error(bad.get("/courses"), 401, "invalid_token")
    assert_error(ApiClient(user).get("/courses/999999"), 404, "course_not_found")


def test_owned_costs_no_extra_query(user, anon):
    CourseFactory.create_batch(5)
    fill_cart(user, "1.00")  # not owned: in the cart only
    with CaptureQueriesContext(connection) as public:
        anon.get("/courses")
    with CaptureQueriesContext(connection) as signed_in:
        ApiClient(user).get("/courses")
    # The token's user look-up is the one more; `owned` is asked inside the page's own query.
    assert len(signed_in) == len(public) + 1, [q["sql"] for q in signed_in]


def test_the_schema_says_the_catalogue_takes_a_token_or_none(anon):
    schema = anon.get("/openapi.json").json()
    for path in ("/api/v1/courses", "/api/v1/courses/{course_id}"):
        operation = schema["paths"][path]["get"]
        assert operation["security"] == [{"JWTAuth": []}, {}], operation["security"]
        assert "401" in operation["responses"]

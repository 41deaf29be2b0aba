from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection
from django.utils import timezone

from billing.models import PointsAccount, PointsEntry, UserCoupon
from core.models import Enrollment
from orders.models import CartItem, Order, OrderLine
from tests.conftest import assert_error, assert_ledger_consistent
from tests.factories import (
    CartItemFactory,
    CourseFactory,
    EnrollmentFactory,
    fill_cart,
    give_coupon,
    give_points,
    percent_coupon,
)

pytestmark = pytest.mark.django_db


def place(api, body=None, key="key-1"):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return api.post(
        "/orders", {"pay_type": "alipay", "user_coupon_id": None, "points": 0, **(body or {})}, headers=headers
    )


def snapshot():
    """Everything a failed checkout must leave untouched."""
    return (
        Order.objects.count(),
        OrderLine.objects.count(),
        sorted(CartItem.objects.values_list("pk", "selected")),
        sorted(UserCoupon.objects.values_list("pk", "status")),
        sorted(PointsAccount.objects.values_list("pk", "balance")),
        PointsEntry.objects.count(),
        Enrollment.objects.count(),
    )


def test_preview_prices_the_selected_cart(api, user):
    fill_cart(user, "199.00", "101.00")
    CartItemFactory(user=user, selected=False)
    coupon = give_coupon(user, threshold="100.00", amount_off="20.00")
    give_coupon(user, threshold="1000.00")  # not usable: threshold
    give_points(user, 5000)
    body = api.get(f"/checkout/preview?user_coupon_id={coupon.pk}&points=150").json()
    assert [line["price"] for line in body["lines"]] == ["199.00", "101.00"]
    assert body["subtotal"] == "300.00"
    assert [c["id"] for c in body["usable_coupons"]] == [coupon.pk]
    assert body["usable_coupons"][0]["discount"] == "20.00"
    assert (body["coupon_discount"], body["points_discount"], body["pay_amount"]) == ("20.00", "15.00", "265.00")
    assert (body["points_balance"], body["max_points"], body["points_per_yuan"]) == (5000, 2800, 10)
    assert body["points_step"] == 1


def test_preview_tells_the_points_step(api, user, settings):
    settings.POINTS_PER_YUAN = 1000  # 1 point = 0.1 cent: points go in tens
    fill_cart(user, "1.00")
    give_points(user, 5000)
    body = api.get("/checkout/preview").json()
    assert (body["points_step"], body["max_points"]) == (10, 1000)
    assert_error(api.get("/checkout/preview?points=15"), 422, "validation_error")


def test_preview_errors(api, user):
    assert_error(api.get("/checkout/preview"), 422, "cart_empty")
    fill_cart(user, "50.00")
    give_points(user, 100)
    assert_error(api.get("/checkout/preview?points=101"), 422, "insufficient_points")
    assert_error(api.get("/checkout/preview?user_coupon_id=999"), 422, "coupon_invalid")
    assert_error(api.get("/checkout/preview?points=-1"), 422, "validation_error")
    give_points(user, 1000)  # 1,100 points = 110.00 > the 50.00 to pay
    assert_error(api.get("/checkout/preview?points=501"), 422, "points_exceed_limit")
    assert api.get("/checkout/preview?points=500").json()["pay_amount"] == "0.00"
    (item,) = CartItem.objects.filter(user=user)
    EnrollmentFactory(user=user, course=item.course)
    body = assert_error(api.get("/checkout/preview"), 422, "already_purchased")
    assert body["details"]["enrolled_course_ids"] == [item.course_id]


def test_place_order_takes_everything_under_one_transaction(api, user, settings):
    settings.ORDER_PAYMENT_TIMEOUT_SECONDS = 1800
    items = fill_cart(user, "199.00", "0.99")
    keep = CartItemFactory(user=user, selected=False)
    coupon = give_coupon(user, coupon=percent_coupon())  # 20% off
    give_points(user, 5000)
    before = timezone.now()
    response = place(api, {"user_coupon_id": coupon.pk, "points": 333})
    assert response.status_code == 201, response.content
    assert "Idempotent-Replayed" not in response
    order = response.json()
    # 199.99 * 20% = 39.998 -> 40.00; 333 points = 33.30
    assert order["subtotal"] == "199.99"
    assert order["coupon_discount"] == "40.00"
    assert (order["points_used"], order["points_discount"]) == (333, "33.30")
    assert order["pay_amount"] == "126.69"
    assert order["status"] == "pending" and order["user_coupon_id"] == coupon.pk
    assert [line["course_id"] for line in order["lines"]] == [i.course_id for i in items]
    assert order["lines"][0]["price"] == "199.00"
    expires = timezone.datetime.fromisoformat(order["expires_at"])
    assert before + timedelta(seconds=1795) < expires < timezone.now() + timedelta(seconds=1805)

    assert list(CartItem.objects.filter(user=user)) == [keep]
    coupon.refresh_from_db()
    assert coupon.status == "locked" and coupon.order.order_no == order["order_no"]
    assert PointsAccount.objects.get(user=user).balance == 5000 - 333
    debit = PointsEntry.objects.get(reason="order_debit")
    assert (debit.delta, debit.balance_after, debit.order.order_no) == (-333, 4667, order["order_no"])
    assert_ledger_consistent()


def test_snapshot_keeps_the_price_paid(api, user):
    (item,) = fill_cart(user, "10.00")
    order_no = place(api).json()["order_no"]
    item.course.price = Decimal("99.00")
    item.course.name = "Renamed"
    item.course.save()
    line = api.get(f"/orders/{order_no}").json()["lines"][0]
    assert (line["price"], line["name"]) == ("10.00", OrderLine.objects.get().name)
    assert line["name"] != "Renamed"


def test_replay_returns_the_same_order(api, user):
    fill_cart(user, "10.00")
    first = place(api, key="same")
    second = place(api, key="same")
    assert second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert Order.objects.count() == 1


def test_same_key_different_body_is_422(api, user):
    fill_cart(user, "10.00")
    give_points(user, 10)
    place(api, key="same")
    CartItemFactory(user=user)  # something a second, wrongly accepted order would take
    before = snapshot()
    assert_error(place(api, {"points": 5}, key="same"), 422, "idempotency_key_reused")
    assert snapshot() == before


def test_key_is_per_user(api, client_for, user, other_user):
    fill_cart(user, "10.00")
    fill_cart(other_user, "10.00")
    assert place(api, key="k").status_code == 201
    assert place(client_for(other_user), key="k").status_code == 201
    assert Order.objects.count() == 2


@pytest.mark.parametrize("key", [None, "", "   ", "x" * 256, "ключ"])
def test_missing_or_bad_key_is_400(api, user, key):
    fill_cart(user, "10.00")
    before = snapshot()
    assert_error(place(api, key=key), 400, "idempotency_key_required")
    assert snapshot() == before


def test_cart_empty(api, user):
    CartItemFactory(user=user, selected=False)
    CartItemFactory(user=user, course=CourseFactory(is_active=False))
    before = snapshot()
    assert_error(place(api), 422, "cart_empty")
    assert snapshot() == before


def _expired_coupon(user):
    coupon = give_coupon(user, threshold="0.00")
    UserCoupon.objects.filter(pk=coupon.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    return coupon


def _future_coupon(user):
    coupon = give_coupon(user, threshold="0.00")
    UserCoupon.objects.filter(pk=coupon.pk).update(starts_at=timezone.now() + timedelta(hours=1))
    return coupon


@pytest.mark.parametrize(
    "make_coupon,reason",
    [
        (lambda user, other: give_coupon(other, threshold="0.00"), "unknown"),
        (lambda user, other: give_coupon(user, threshold="500.00"), "below_threshold"),
        (lambda user, other: _expired_coupon(user), "expired"),
        (lambda user, other: _future_coupon(user), "not_started"),
    ],
)
def test_coupon_invalid_changes_nothing(api, user, other_user, make_coupon, reason):
    fill_cart(user, "100.00")
    coupon = make_coupon(user, other_user)
    before = snapshot()
    body = assert_error(place(api, {"user_coupon_id": coupon.pk}), 422, "coupon_invalid")
    assert body["details"]["reason"] == reason
    assert snapshot() == before


def test_coupon_already_locked_by_another_order(api, user):
    fill_cart(user, "100.00")
    coupon = give_coupon(user, threshold="0.00")
    assert place(api, {"user_coupon_id": coupon.pk}, key="a").status_code == 201
    fill_cart(user, "100.00")
    body = assert_error(place(api, {"user_coupon_id": coupon.pk}, key="b"), 422, "coupon_invalid")
    assert body["details"]["reason"] == "not_unused"


def test_points_errors_change_nothing(api, user):
    fill_cart(user, "10.00")
    give_points(user, 500)
    before = snapshot()
    assert_error(place(api, {"points": 501}), 422, "insufficient_points")
    assert_error(place(api, {"points": 101}), 422, "points_exceed_limit")  # 10.00 yuan = 100 points
    assert snapshot() == before


def test_points_without_account_is_insufficient(api, user):
    fill_cart(user, "10.00")
    assert_error(place(api, {"points": 1}), 422, "insufficient_points")
    assert not Order.objects.exists()


def test_failed_attempt_can_be_retried_with_the_same_key(api, user):
    fill_cart(user, "10.00")
    assert_error(place(api, {"points": 50}, key="retry"), 422, "insufficient_points")
    give_points(user, 50)
    response = place(api, {"points": 50}, key="retry")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert response.json()["pay_amount"] == "5.00"


def test_already_purchased_and_pending_courses(api, user):
    (item,) = fill_cart(user, "10.00")
    EnrollmentFactory(user=user, course=item.course)
    before = snapshot()
    body = assert_error(place(api), 422, "already_purchased")
    assert body["details"]["enrolled_course_ids"] == [item.course_id]
    assert snapshot() == before


def test_course_waiting_in_another_pending_order_is_refused(api, user):
    (item,) = fill_cart(user, "10.00")
    first = place(api, key="a").json()
    CartItemFactory(user=user, course=item.course)
    before = snapshot()
    body = assert_error(place(api, key="b"), 422, "already_purchased")
    assert body["details"]["pending"] == {str(item.course_id): first["order_no"]}
    assert snapshot() == before


def test_an_order_number_taken_in_the_same_microsecond_is_drawn_again(api, user, monkeypatch):
    from orders.services import checkout

    fill_cart(user, "10.00")
    taken = place(api, key="first").json()["order_no"]
    fill_cart(user, "20.00")
    drawn = iter([taken, taken, "20991231235959999999" + "0001"])
    monkeypatch.setattr(checkout, "new_order_no", lambda: next(drawn))
    second = place(api, key="second")
    assert second.status_code == 201, second.json()
    assert second.json()["order_no"] == "209912312359599999990001"
    assert Order.objects.count() == 2 and OrderLine.objects.count() == 2
    assert_ledger_consistent()


def test_order_numbers_that_keep_colliding_give_up_without_a_trace(api, user, monkeypatch):
    from orders.services import checkout

    fill_cart(user, "10.00")
    taken = place(api, key="first").json()["order_no"]
    fill_cart(user, "20.00")
    monkeypatch.setattr(checkout, "new_order_no", lambda: taken)
    before = snapshot()
    with pytest.raises(IntegrityError, match="order_no"):
        checkout.place_order(user=user, idempotency_key="second", pay_type="alipay", user_coupon_id=None, points=0)
    assert snapshot() == before


def test_zero_amount_order_is_paid_at_once(api, user):
    items = fill_cart(user, "30.00")
    coupon = give_coupon(user, threshold="0.00", amount_off="50.00")
    order = place(api, {"user_coupon_id": coupon.pk}).json()
    assert (order["status"], order["pay_amount"], order["coupon_discount"]) == ("paid", "0.00", "30.00")
    assert order["paid_at"] is not None
    assert Enrollment.objects.filter(user=user, course=items[0].course).exists()
    coupon.refresh_from_db()
    assert coupon.status == "used"
    assert not PointsEntry.objects.filter(reason="order_earned").exists()


def test_points_can_pay_everything(api, user):
    fill_cart(user, "12.34")
    give_points(user, 1000)
    order = place(api, {"points": 123}).json()
    assert (order["pay_amount"], order["status"]) == ("0.04", "pending")
    order = place(api, {"points": 0}, key="again")
    assert order.status_code == 422  # cart is empty now


# Round trips per checkout as the test client sees them (inside the test's transaction, so the
# checkout's atomic block adds a SAVEPOINT and its RELEASE): the user, the order insert, the
# locks (cart, points, coupon in one query string) and one write.
CHECKOUT_MAX_QUERIES = 6


def _checkout_queries(client_for, size: int, django_assert_max_num_queries) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import UserFactory

    user = UserFactory()
    fill_cart(user, *["50.00"] * size)
    coupon = give_coupon(user, threshold="0.00")
    give_points(user, 1000)
    client = client_for(user)
    with django_assert_max_num_queries(CHECKOUT_MAX_QUERIES), CaptureQueriesContext(connection) as queries:
        response = place(client, {"user_coupon_id": coupon.pk, "points": 10})
    assert response.status_code == 201, response.content
    assert len(response.json()["lines"]) == size
    return len(queries)


def test_place_order_query_count_does_not_grow_with_the_cart(client_for, django_assert_max_num_queries):
    one = _checkout_queries(client_for, 1, django_assert_max_num_queries)
    twenty = _checkout_queries(client_for, 20, django_assert_max_num_queries)
    assert one == twenty


@contextmanager
def postgres_raises(*, table: str, message: str, sqlstate: str = "P0001"):
    """Every INSERT into `table` fails inside Postgres itself, with `sqlstate`, until the block ends."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION injected_failure() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{message}' USING ERRCODE = '{sqlstate}'; END $$"
        )
        cursor.execute(
            f"CREATE TRIGGER injected_failure BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION injected_failure()"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER injected_failure ON {table}")
        cursor.execute("DROP FUNCTION injected_failure()")


def test_failure_after_the_insert_rolls_everything_back(api, user):
    fill_cart(user, "10.00", "20.00")
    coupon = give_coupon(user, threshold="0.00")
    give_points(user, 100)
    before = snapshot()
    # The failure comes from Postgres itself, in the ledger write: the last thing checkout does,
    # after the order, its lines, the cart delete and the coupon and balance updates.
    with postgres_raises(table="billing_pointsentry", message="disk full while writing the ledger"):
        response = place(api, {"user_coupon_id": coupon.pk, "points": 50})
    assert_error(response, 500, "internal_error")
    assert snapshot() == before
    assert place(api, {"user_coupon_id": coupon.pk, "points": 50}).status_code == 201


def test_a_database_restart_mid_checkout_answers_503_and_leaves_nothing(api, user):
    fill_cart(user, "10.00")
    give_points(user, 100)
    before = snapshot()
    # What a request in flight sees when Postgres restarts: SQLSTATE 57P01 (admin_shutdown).
    with postgres_raises(table="orders_order", message="terminating connection", sqlstate="57P01"):
        response = place(api, {"points": 50}, key="during-restart")
    assert_error(response, 503, "service_unavailable")
    assert response["Retry-After"] == "1"
    assert snapshot() == before
    assert place(api, {"points": 50}, key="during-restart").status_code == 201  # the same key, sent again


def test_body_validation(api, user):
    fill_cart(user, "10.00")
    for body in [{"pay_type": "paypal"}, {"points": -5}, {"points": "lots"}, {"user_coupon_id": 0}, {"points": 10**13}]:
        assert_error(place(api, body), 422, "validation_error")
    assert not Order.objects.exists()


def test_a_provider_the_shop_does_not_offer_is_refused_at_checkout(api, user, settings):
    settings.WECHATPAY_ENABLED = False
    fill_cart(user, "10.00")
    before = snapshot()
    body = assert_error(place(api, {"pay_type": "wechat"}), 422, "payment_provider_unavailable")
    assert body["details"] == {"provider": "wechat"}
    assert snapshot() == before


def test_lines_keep_names_and_pictures_exactly(api, user):
    """Names travel to Postgres as array literals: quotes, backslashes, commas, braces, the word
    NULL and non-ASCII text must arrive as they were."""
    names = ['Say "hi"\\, {x}', "NULL", "课程 ä', ", ""]
    pictures = ["NULL", "", "/static/a b,{c}.svg", 'x"\\y']
    for name, picture in zip(names, pictures, strict=True):
        CartItemFactory(user=user, course=CourseFactory(name=name, picture_url=picture, price=Decimal("1.10")))
    order = place(api).json()
    assert [(line["name"], line["picture_url"]) for line in order["lines"]] == list(zip(names, pictures, strict=True))
    stored = OrderLine.objects.filter(order__order_no=order["order_no"]).order_by("pk")
    assert [(line.name, line.picture_url, line.price) for line in stored] == [
        (name, picture, Decimal("1.10")) for name, picture in zip(names, pictures, strict=True)
    ]
    assert order["subtotal"] == "4.40"

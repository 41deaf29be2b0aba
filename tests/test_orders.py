import pytest

from billing.models import PointsAccount, PointsEntry, UserCoupon
from orders.models import Order
from tests.conftest import ApiClient, assert_error, assert_ledger_consistent
from tests.factories import fill_cart, give_coupon, give_points

pytestmark = pytest.mark.django_db


def place(api, key, **body):
    response = api.post("/orders", {"points": 0, **body}, headers={"Idempotency-Key": key})
    assert response.status_code == 201, response.content
    return response.json()


def test_list_orders_newest_first_with_filter_and_pages(api, user, other_user):
    numbers = []
    for n in range(3):
        fill_cart(user, "10.00")
        numbers.append(place(api, f"k{n}")["order_no"])
    fill_cart(other_user, "10.00")
    place(ApiClient(other_user), "theirs")
    api.post(f"/orders/{numbers[0]}/cancel")

    body = api.get("/orders").json()
    assert body["count"] == 3
    assert [o["order_no"] for o in body["items"]] == numbers[::-1]
    assert sorted(numbers) == numbers  # order numbers sort by time
    assert len(body["items"][0]["lines"]) == 1
    assert [o["order_no"] for o in api.get("/orders?status=cancelled").json()["items"]] == [numbers[0]]
    assert api.get("/orders?status=pending").json()["count"] == 2
    page = api.get("/orders?page=2&page_size=2").json()
    assert [o["order_no"] for o in page["items"]] == [numbers[0]]
    assert_error(api.get("/orders?status=lost"), 422, "validation_error")


def test_get_order_and_other_users_orders_are_404(api, user, other_user):
    fill_cart(other_user, "10.00")
    theirs = place(ApiClient(other_user), "k")["order_no"]
    assert_error(api.get(f"/orders/{theirs}"), 404, "order_not_found")
    assert_error(api.post(f"/orders/{theirs}/cancel"), 404, "order_not_found")
    assert Order.objects.get(order_no=theirs).status == "pending"
    assert_error(api.get("/orders/nope"), 404, "order_not_found")


def test_cancel_returns_coupon_and_points(api, user):
    fill_cart(user, "100.00")
    coupon = give_coupon(user, threshold="0.00")
    give_points(user, 300)
    order = place(api, "k", user_coupon_id=coupon.pk, points=300)
    assert PointsAccount.objects.get(user=user).balance == 0

    response = api.post(f"/orders/{order['order_no']}/cancel")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "cancelled" and body["cancel_reason"] == "user" and body["cancelled_at"]
    coupon.refresh_from_db()
    assert (coupon.status, coupon.order) == ("unused", None)
    assert PointsAccount.objects.get(user=user).balance == 300
    refund = PointsEntry.objects.get(reason="order_refund")
    assert (refund.delta, refund.order.order_no) == (300, order["order_no"])
    assert_ledger_consistent()

    body = assert_error(api.post(f"/orders/{order['order_no']}/cancel"), 409, "order_not_cancellable")
    assert body["details"] == {"status": "cancelled"}
    assert PointsAccount.objects.get(user=user).balance == 300  # no double refund


def test_paid_order_is_not_cancellable(api, user):
    fill_cart(user, "10.00")
    coupon = give_coupon(user, threshold="0.00", amount_off="10.00")
    order = place(api, "k", user_coupon_id=coupon.pk)
    assert order["status"] == "paid"
    assert_error(api.post(f"/orders/{order['order_no']}/cancel"), 409, "order_not_cancellable")
    assert UserCoupon.objects.get(pk=coupon.pk).status == "used"


def test_my_points_shows_balance_and_entries(api, user):
    give_points(user, 500)
    fill_cart(user, "10.00")
    order = place(api, "k", points=40)
    body = api.get("/me/points").json()
    assert body["balance"] == 460
    assert [(e["delta"], e["balance_after"], e["reason"]) for e in body["entries"]] == [
        (-40, 460, "order_debit"),
        (500, 500, "grant"),
    ]
    assert body["entries"][0]["order_no"] == order["order_no"]
    assert body["entries"][1]["order_no"] is None


def test_orders_require_auth(anon):
    assert_error(anon.get("/orders"), 401, "not_authenticated")
    assert_error(anon.post("/orders", {}), 401, "not_authenticated")
    assert_error(anon.get("/checkout/preview"), 401, "not_authenticated")
    assert_error(anon.get("/me/points"), 401, "not_authenticated")

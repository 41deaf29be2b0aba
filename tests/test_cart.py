import json
from datetime import timedelta

import pytest
from django.utils import timezone
from ninja.responses import NinjaJSONEncoder

from orders.models import CartItem
from orders.schemas import CartOut
from tests.conftest import ApiClient, assert_error
from tests.factories import CartItemFactory, CourseFactory, EnrollmentFactory

pytestmark = pytest.mark.django_db


def test_empty_cart(api):
    assert api.get("/cart").json() == {"items": [], "count": 0, "selected_count": 0, "selected_total": "0.00"}


def test_add_item_then_cart_totals(api, user):
    a = CourseFactory(price="199.00")
    b = CourseFactory(price="0.10")
    response = api.post("/cart/items", {"course_id": a.pk})
    assert response.status_code == 201
    item = response.json()
    assert item["course"]["id"] == a.pk and item["course"]["price"] == "199.00"
    assert item["selected"] is True
    api.post("/cart/items", {"course_id": b.pk})
    cart = api.get("/cart").json()
    assert cart["count"] == 2 and cart["selected_count"] == 2
    assert cart["selected_total"] == "199.10"
    assert [i["course"]["id"] for i in cart["items"]] == [b.pk, a.pk]  # newest first


def test_the_cart_is_answered_exactly_as_its_schema_would_render_it(api, user):
    # GET /cart skips the schema's validation (core/responses.py): its body must be what CartOut
    # would have made of it, to the character, with every kind of row in it.
    withdrawn = CartItemFactory(user=user, course=CourseFactory(price="12.30", is_active=False))
    unselected = CartItemFactory(user=user, course=CourseFactory(price="0.99", name="Ünïcode 课程"), selected=False)
    CartItemFactory(user=user, course=CourseFactory(price="100.00"))
    CartItem.objects.filter(pk=withdrawn.pk).update(created_at=timezone.now() - timedelta(days=1, microseconds=7))
    CartItem.objects.filter(pk=unselected.pk).update(created_at=timezone.now().replace(microsecond=0))
    for response in (api.get("/cart"), api.put("/cart/selection", {"selected": True})):
        assert response.status_code == 200 and response["Content-Type"] == "application/json; charset=utf-8"
        body = response.json()
        rendered = json.dumps(CartOut.model_validate(body).model_dump(), cls=NinjaJSONEncoder)
        assert response.content.decode() == rendered
    assert body["count"] == 3 and body["selected_count"] == 2 and body["selected_total"] == "100.99"


@pytest.mark.parametrize("microsecond", [0, 1, 500, 123456, 999999])
def test_the_cart_renders_when_an_item_was_added_as_the_schema_does(api, user, microsecond):
    # The read formats created_at in SQL (core.db.json_datetime): the same text Ninja's renderer
    # makes of the stored value, milliseconds cut and not rounded, none for a whole second.
    item = CartItemFactory(user=user)
    added = timezone.now().replace(microsecond=microsecond) - timedelta(days=400)
    CartItem.objects.filter(pk=item.pk).update(created_at=added)
    stored = CartItem.objects.get(pk=item.pk).created_at

    assert api.get("/cart").json()["items"][0]["created_at"] == json.loads(json.dumps(stored, cls=NinjaJSONEncoder))


def test_add_twice_is_409_already_in_cart(api, user):
    course = CourseFactory()
    api.post("/cart/items", {"course_id": course.pk})
    assert_error(api.post("/cart/items", {"course_id": course.pk}), 409, "already_in_cart")
    assert CartItem.objects.filter(user=user).count() == 1


def test_add_purchased_course_is_409_already_purchased(api, user):
    enrollment = EnrollmentFactory(user=user)
    assert_error(api.post("/cart/items", {"course_id": enrollment.course_id}), 409, "already_purchased")
    assert not CartItem.objects.exists()


def test_add_unknown_or_inactive_course_is_404(api):
    assert_error(api.post("/cart/items", {"course_id": 424242}), 404, "course_not_found")
    inactive = CourseFactory(is_active=False)
    assert_error(api.post("/cart/items", {"course_id": inactive.pk}), 404, "course_not_found")
    assert not CartItem.objects.exists()


@pytest.mark.parametrize("body", [{}, {"course_id": "x"}, {"course_id": None}, {"course": 1}, [1]])
def test_add_bad_body_is_422(api, body):
    assert_error(api.post("/cart/items", body), 422, "validation_error")


def test_patch_selected_changes_totals(api, user):
    a = CartItemFactory(user=user, course=CourseFactory(price="10.00"))
    CartItemFactory(user=user, course=CourseFactory(price="5.50"))
    response = api.patch(f"/cart/items/{a.pk}", {"selected": False})
    assert response.status_code == 200 and response.json()["selected"] is False
    cart = api.get("/cart").json()
    assert (cart["selected_count"], cart["selected_total"]) == (1, "5.50")


def test_select_all_and_none(api, user):
    CartItemFactory.create_batch(3, user=user, selected=False)
    cart = api.put("/cart/selection", {"selected": True}).json()
    assert cart["selected_count"] == 3 and cart["selected_total"] == "300.00"
    cart = api.put("/cart/selection", {"selected": False}).json()
    assert cart["selected_count"] == 0 and cart["selected_total"] == "0.00"


def test_delete_item(api, user):
    item = CartItemFactory(user=user)
    assert api.delete(f"/cart/items/{item.pk}").status_code == 204
    assert_error(api.delete(f"/cart/items/{item.pk}"), 404, "cart_item_not_found")


def test_inactive_course_stays_visible_but_not_counted(api, user):
    CartItemFactory(user=user, course=CourseFactory(is_active=False, price="50.00"))
    CartItemFactory(user=user, course=CourseFactory(price="20.00"))
    cart = api.get("/cart").json()
    assert (cart["count"], cart["selected_count"], cart["selected_total"]) == (2, 1, "20.00")


def test_other_users_items_answer_404_and_stay_unchanged(api, other_user):
    theirs = CartItemFactory(user=other_user)
    assert_error(api.patch(f"/cart/items/{theirs.pk}", {"selected": False}), 404, "cart_item_not_found")
    assert_error(api.delete(f"/cart/items/{theirs.pk}"), 404, "cart_item_not_found")
    api.put("/cart/selection", {"selected": False})
    theirs.refresh_from_db()
    assert theirs.selected is True
    assert api.get("/cart").json()["count"] == 0
    assert ApiClient(other_user).get("/cart").json()["count"] == 1


def test_unknown_item_ids(api):
    assert_error(api.patch("/cart/items/999999", {"selected": True}), 404, "cart_item_not_found")
    assert_error(api.patch("/cart/items/abc", {"selected": True}), 422, "validation_error")
    assert_error(api.patch("/cart/items/1", {"selected": "maybe"}), 422, "validation_error")


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/cart"),
        ("POST", "/cart/items"),
        ("PATCH", "/cart/items/1"),
        ("PUT", "/cart/selection"),
        ("DELETE", "/cart/items/1"),
    ],
)
def test_cart_requires_a_token(anon, method, path):
    body = None if method in ("GET", "DELETE") else {"selected": True, "course_id": 1}
    assert_error(anon.request(method, path, body), 401, "not_authenticated")


@pytest.mark.parametrize("size", [1, 30])
def test_get_cart_query_count_is_fixed(api, user, size, django_assert_max_num_queries):
    for course in CourseFactory.create_batch(size):
        CartItemFactory(user=user, course=course)
    # 1 for the token's user, 1 for the cart with its courses.
    with django_assert_max_num_queries(2):
        body = api.get("/cart").json()
    assert body["count"] == size

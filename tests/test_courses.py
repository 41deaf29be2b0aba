import pytest

from tests.conftest import assert_error
from tests.factories import CourseFactory

pytestmark = pytest.mark.django_db


def test_list_courses_is_public_and_paginated(anon):
    courses = CourseFactory.create_batch(25)
    CourseFactory(is_active=False)
    first = anon.get("/courses?page=1&page_size=10").json()
    assert first["count"] == 25
    assert [c["id"] for c in first["items"]] == [c.pk for c in courses[:10]]
    last = anon.get("/courses?page=3&page_size=10").json()
    assert len(last["items"]) == 5
    assert anon.get("/courses?page=9").json()["items"] == []


def test_course_shape_carries_money_as_string(anon):
    course = CourseFactory(price="49.9", name="课程 A")
    body = anon.get(f"/courses/{course.pk}").json()
    assert body == {
        "id": course.pk,
        "name": "课程 A",
        "description": course.description,
        "picture_url": course.picture_url,
        "price": "49.90",
        "is_active": True,
        "owned": False,
    }


@pytest.mark.parametrize("query", ["page=0", "page=-1", "page=abc", "page_size=0", "page_size=1000", "page=10000000"])
def test_bad_pagination_is_422(anon, query):
    assert_error(anon.get(f"/courses?{query}"), 422, "validation_error")


def test_unknown_or_inactive_course_is_404(anon):
    inactive = CourseFactory(is_active=False)
    assert_error(anon.get(f"/courses/{inactive.pk}"), 404, "course_not_found")
    assert_error(anon.get("/courses/999999"), 404, "course_not_found")
    assert_error(anon.get("/courses/99999999999999999999"), 404, "course_not_found")


def test_non_integer_course_id_is_422(anon):
    assert_error(anon.get("/courses/abc"), 422, "validation_error")

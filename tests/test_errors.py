import pytest

from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_unknown_api_path_is_404_envelope(anon):
    assert_error(anon.get("/no-such-thing"), 404, "not_found")


def test_wrong_method_is_405_envelope(anon):
    response = anon.request("DELETE", "/courses")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_validation_error_details_name_the_field(api):
    body = assert_error(api.post("/cart/items", {"course_id": "x"}), 422, "validation_error")
    assert body["details"][0]["loc"] == ["body", "payload", "course_id"]


def test_body_that_is_not_utf8_is_an_envelope(api):
    response = api.client.post(
        "/api/v1/cart/items", data=b"\xff\xfe", content_type="application/json", headers=api.headers
    )
    assert response.status_code in (400, 422)
    assert response.json()["code"] in {"invalid_json", "validation_error"}

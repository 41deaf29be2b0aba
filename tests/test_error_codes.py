"""Every error code of every app has one HTTP status in the API's table and is in the OpenAPI
schema's enums. web/src/api/schema.d.ts is generated from that schema (`npm run check:schema`
fails when it is stale), and the shop's Vitest test (web/tests/unit/i18n.spec.ts) reads the same
enums from schema.d.ts and wants a message for each code in both languages."""

import importlib
import importlib.util
import json

import pytest
from django.apps import apps

from core.api_errors import GENERIC_CODES, HTTP_STATUS, code_for_status, error_response
from core.api_root import api
from core.errors import ErrorCode

# The notify answers WeChat Pay reads: its own `{"code": "FAIL", ...}`, not our envelope.
PROVIDER_BODIES = {"#/components/schemas/WechatFailOut"}


def error_code_enums() -> list[type[ErrorCode]]:
    """Every app's `ErrorCode` enum, found by walking the subclasses once each app's `errors`
    module is imported, so a new app's enum is checked without being listed here."""
    for app in apps.get_app_configs():
        if importlib.util.find_spec(f"{app.name}.errors") is not None:
            importlib.import_module(f"{app.name}.errors")
    enums, pending = [], list(ErrorCode.__subclasses__())
    while pending:
        enum = pending.pop()
        enums.append(enum)
        pending.extend(enum.__subclasses__())
    return enums


def every_code() -> list[ErrorCode]:
    return [code for enum in error_code_enums() for code in enum]


@pytest.fixture(scope="module")
def openapi() -> dict:
    return api.get_openapi_schema()


def test_the_apps_enums_are_found():
    assert {enum.__name__ for enum in error_code_enums()} >= {"CoreErrorCode", "BillingErrorCode", "OrderErrorCode"}
    assert len(every_code()) > 40


def test_no_two_enums_share_a_code():
    # Members of different StrEnums with the same value are equal keys: the table could not tell them apart.
    values = [code.value for code in every_code()]
    assert sorted(values) == sorted(set(values))


@pytest.mark.parametrize("code", every_code(), ids=str)
def test_every_code_has_an_error_status_and_renders_with_it(code):
    assert 400 <= HTTP_STATUS.get(code, 0) < 600, f"{code!r} has no status in core/api_errors.py HTTP_STATUS"
    response = error_response(code, "words", {"n": 1})
    assert response.status_code == HTTP_STATUS[code]
    assert json.loads(response.content) == {"code": code.value, "message": "words", "details": {"n": 1}}


def test_the_table_names_no_code_outside_the_enums():
    assert set(HTTP_STATUS) == set(every_code())


@pytest.mark.parametrize("status", sorted(GENERIC_CODES))
def test_a_bare_status_keeps_its_status_through_its_generic_code(status):
    assert HTTP_STATUS[code_for_status(status)] == status


def test_other_bare_statuses_fall_to_the_generic_400_and_500():
    assert (HTTP_STATUS[code_for_status(418)], HTTP_STATUS[code_for_status(502)]) == (400, 500)


def test_every_code_is_in_the_openapi_schema_under_its_enum(openapi):
    components = openapi["components"]["schemas"]
    for enum in error_code_enums():
        assert components[enum.__name__]["enum"] == [code.value for code in enum], enum.__name__
    # The web client's `ErrorCode` is the union of the schema's `*ErrorCode` components: these, no more.
    assert {name for name in components if name.endswith("ErrorCode")} == {e.__name__ for e in error_code_enums()}


def test_every_error_answer_in_the_schema_carries_a_typed_code(openapi):
    components = openapi["components"]["schemas"]
    named: set[str] = set()
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                ref = response["content"]["application/json"]["schema"]["$ref"]
                if ref in PROVIDER_BODIES:
                    continue
                code = components[ref.rsplit("/", 1)[1]]["properties"]["code"]
                refs = [code["$ref"]] if "$ref" in code else [option["$ref"] for option in code["anyOf"]]
                assert refs, f"{method.upper()} {path} {status}: code is not an enum"
                named.update(components[r.rsplit("/", 1)[1]]["title"] for r in refs)
    # Together the operations' error answers name every enum, so the web client sees every code.
    assert named == {enum.__name__ for enum in error_code_enums()}

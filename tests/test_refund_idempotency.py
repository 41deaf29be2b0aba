"""A refund request with an Idempotency-Key: sent again (its answer lost on the way), it is answered
with the refund it made, not a 409; the key cannot be reused for another request."""

from collections import Counter
from datetime import timedelta

import pytest

from orders.models import Order, Refund
from tests.conftest import ApiClient, assert_error, assert_ledger_consistent, run_together
from tests.factories import UserFactory
from tests.refund_support import (
    assert_refunds_within_pay_amount,
    decide_refunds_here,
    line_ids,
    order_with_discounts,
    pay_by_alipay_notify,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def alipay_settings(settings, tmp_path_factory, monkeypatch):
    decide_refunds_here(settings, tmp_path_factory, monkeypatch)
    yield
    assert_ledger_consistent()


def paid_order(user, key: str = "k") -> Order:
    return pay_by_alipay_notify(user, order_with_discounts(user, "100.00", "57.99", key=key))


def ask(user, order_no: str, lines: list[int], *, key: str | None, reason: str = "不想学了"):
    headers = {"Idempotency-Key": key} if key is not None else {}
    body = {"order_line_ids": lines, "reason": reason}
    return ApiClient(user).post(f"/orders/{order_no}/refunds", body, headers=headers)


def test_the_same_request_sent_again_is_answered_with_its_refund(user):
    order = paid_order(user)
    first, _ = line_ids(order.order_no)

    made = ask(user, order.order_no, [first], key="refund-1")
    again = ask(user, order.order_no, [first], key="refund-1")

    assert made.status_code == 201 and "Idempotent-Replayed" not in made
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == made.json()
    assert Refund.objects.filter(order=order).count() == 1
    assert Refund.objects.get().idempotency_key == "refund-1"


def test_without_a_key_a_second_request_for_the_same_line_is_refused(user):
    order = paid_order(user)
    first, _ = line_ids(order.order_no)
    assert ask(user, order.order_no, [first], key=None).status_code == 201
    assert_error(ask(user, order.order_no, [first], key=None), 409, "order_line_already_refunded")
    assert_error(ask(user, order.order_no, [first], key="  "), 409, "order_line_already_refunded")  # blank: none


@pytest.mark.parametrize("change", ["other lines", "other reason"])
def test_the_key_of_one_request_cannot_make_another(user, change):
    order = paid_order(user)
    first, second = line_ids(order.order_no)
    assert ask(user, order.order_no, [first], key="refund-1").status_code == 201

    lines, reason = ([first, second], "不想学了") if change == "other lines" else ([first], "买错了")
    assert_error(ask(user, order.order_no, lines, key="refund-1", reason=reason), 422, "idempotency_key_reused")
    assert Refund.objects.filter(order=order).count() == 1
    assert ask(user, order.order_no, [second], key="refund-2").status_code == 201


def test_the_answer_is_replayed_after_the_window_has_closed(user):
    order = paid_order(user)
    first, second = line_ids(order.order_no)
    made = ask(user, order.order_no, [first, second], key="refund-all")
    Order.objects.filter(pk=order.pk).update(paid_at=order.paid_at - timedelta(days=30))

    again = ask(user, order.order_no, [first, second], key="refund-all")

    assert again.status_code == 201 and again.json()["id"] == made.json()["id"]
    assert_error(ask(user, order.order_no, [first], key="refund-new"), 409, "refund_window_closed")


def test_a_key_is_one_orders_own(user):
    order, other = paid_order(user, key="a"), paid_order(user, key="b")
    assert ask(user, order.order_no, line_ids(order.order_no)[:1], key="same").status_code == 201
    assert ask(user, other.order_no, line_ids(other.order_no)[:1], key="same").status_code == 201
    stranger = UserFactory()
    assert_error(ask(stranger, order.order_no, line_ids(order.order_no)[:1], key="same"), 404, "order_not_found")
    assert Refund.objects.count() == 2


@pytest.mark.parametrize("key", ["é" * 3, "k" * 256, "tab\there"])
def test_a_malformed_key_is_refused_and_changes_nothing(user, key):
    order = paid_order(user)
    response = ask(user, order.order_no, line_ids(order.order_no)[:1], key=key)
    assert_error(response, 400, "idempotency_key_required")
    assert not Refund.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_same_request_sent_at_once_makes_one_refund():
    user = UserFactory()
    order = paid_order(user)
    first, _ = line_ids(order.order_no)

    results = run_together([lambda: ask(user, order.order_no, [first], key="double-tap")] * 6)

    assert [r.status_code for r in results] == [201] * 6, [r.content for r in results]
    assert len({r.json()["id"] for r in results}) == 1
    assert Counter(r.get("Idempotent-Replayed") for r in results) == {None: 1, "true": 5}
    assert Refund.objects.filter(order=order).count() == 1
    assert_refunds_within_pay_amount(order.order_no)

"""Asking for refunds and deciding on them: `POST /orders/{no}/refunds`, what `GET /orders/{no}`
shows, auto-approval, staff's decisions in the admin, and the database's limits on refunds.

Orders are paid by a signed Alipay notify; nothing here reaches a provider (the gateway URL points
where nothing listens, so an unexpected call fails loudly). Sending refunds is in
test_refund_execution.py."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from core.db import broke_constraint
from core.errors import DomainError
from core.models import Enrollment, User
from orders import events, services
from orders.models import Order, Refund
from tests.conftest import ApiClient, assert_error, assert_ledger_consistent
from tests.factories import UserFactory, fill_cart
from tests.payment_support import DEAD_BASE_URL, key_dir, place_order, use_dev_gateway
from tests.refund_support import (
    ask_refund,
    assert_refunds_within_pay_amount,
    line_ids,
    order_with_discounts,
    pay_by_alipay_notify,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def alipay_settings(settings, tmp_path_factory):
    use_dev_gateway(settings, base_url=DEAD_BASE_URL, dev_key_dir=key_dir(tmp_path_factory))
    settings.REFUND_AUTO_APPROVE = False
    return settings


@pytest.fixture
def approved(monkeypatch) -> list[str]:
    """The request numbers of refunds handed to the worker (when their transaction commits;
    nothing consumes them here)."""
    sent: list[str] = []
    monkeypatch.setattr(events, "refund_approved", sent.append)
    return sent


@pytest.fixture(autouse=True)
def _ledger_stays_consistent():
    yield
    assert_ledger_consistent()


def paid_order(user, *prices: str, key: str = "k", **discounts) -> Order:
    return pay_by_alipay_notify(user, order_with_discounts(user, *prices, key=key, **discounts))


# POST /orders/{order_no}/refunds ----------------------------------------------------------------


def test_buyer_asks_for_one_line_back_and_the_order_shows_it(user, approved):
    order = paid_order(user)  # 100.00 + 57.99, 20.00 coupon and 3.00 of points: pays 134.99
    first, second = line_ids(order.order_no)

    response = ask_refund(user, order.order_no, [second], reason="买错了")

    assert response.status_code == 201, response.content
    body = response.json()
    refund = Refund.objects.get()
    # 57.99 less its share of the 23.00 discount, on the running total: 23.00 - 14.56 = 8.44.
    assert body | {"created_at": "-"} == {
        "id": refund.pk,
        "status": "requested",
        "amount": "49.55",
        "reason": "买错了",
        "provider": "alipay",
        "lines": [{"order_line_id": second, "course_id": order.lines.get(pk=second).course_id, "amount": "49.55"}],
        "rejection_reason": "",
        "created_at": "-",
        "decided_at": None,
        "completed_at": None,
    }
    assert refund.request_no == f"{order.order_no}-r1"
    assert refund.attempt == order.payment_attempts.get(status="paid")
    assert [line.points for line in refund.lines.all()] == [11]  # 30 points: 19 and 11
    assert approved == []  # waits for staff
    assert Enrollment.objects.filter(user=user).count() == 2

    shown = ApiClient(user).get(f"/orders/{order.order_no}").json()
    assert shown["status"] == "paid"
    assert [(line["id"], line["refundable_amount"], line["refund_status"]) for line in shown["lines"]] == [
        (first, "85.44", None),
        (second, "49.55", "requested"),
    ]
    assert [r["id"] for r in shown["refunds"]] == [refund.pk]
    assert shown["refundable_until"].startswith((order.paid_at + timedelta(days=7)).date().isoformat())
    listed = ApiClient(user).get("/orders").json()["items"][0]
    assert listed["refunds"][0]["status"] == "requested"
    assert_refunds_within_pay_amount(order.order_no)


def test_refund_requests_refused_with_clear_codes(user, other_user, settings):
    order = paid_order(user, "100.00", "57.99", "10.00")
    first, second, third = line_ids(order.order_no)
    assert ask_refund(user, order.order_no, [first]).status_code == 201

    body = assert_error(ask_refund(user, order.order_no, [second, first]), 409, "order_line_already_refunded")
    assert body["details"] == {"order_line_ids": [first]}
    fill_cart(other_user, "5.00")
    theirs = place_order(other_user, "theirs")
    foreign_line = line_ids(theirs["order_no"])[0]
    body = assert_error(ask_refund(user, order.order_no, [third, foreign_line]), 422, "order_line_not_found")
    assert body["details"] == {"order_line_ids": [foreign_line]}
    assert_error(ask_refund(other_user, order.order_no, [third]), 404, "order_not_found")
    assert_error(ask_refund(user, "20990101000000000000009999", [third]), 404, "order_not_found")
    assert_error(
        ApiClient().post(f"/orders/{order.order_no}/refunds", {"order_line_ids": [third]}), 401, "not_authenticated"
    )
    for bad in ({"order_line_ids": []}, {"order_line_ids": [0]}, {"order_line_ids": [2**63]}, {"reason": "x"}):
        assert_error(ApiClient(user).post(f"/orders/{order.order_no}/refunds", bad), 422, "validation_error")
    assert_error(ask_refund(user, order.order_no, [third], reason="x" * 201), 422, "validation_error")

    # A pending order, and one the user cancelled: not paid.
    body = assert_error(ask_refund(other_user, theirs["order_no"], [foreign_line]), 409, "order_not_refundable")
    assert body["details"] == {"status": "pending"}
    ApiClient(other_user).post(f"/orders/{theirs['order_no']}/cancel")
    assert_error(ask_refund(other_user, theirs["order_no"], [foreign_line]), 409, "order_not_refundable")

    # Outside the window: REFUND_WINDOW_DAYS after payment.
    Order.objects.filter(pk=order.pk).update(paid_at=timezone.now() - timedelta(days=7, seconds=1))
    body = assert_error(ask_refund(user, order.order_no, [third]), 409, "refund_window_closed")
    assert body["details"]["refundable_until"]
    settings.REFUND_WINDOW_DAYS = 8
    assert ask_refund(user, order.order_no, [third]).status_code == 201
    assert Refund.objects.count() == 2
    assert_refunds_within_pay_amount(order.order_no)


def test_auto_approval_hands_the_refund_to_the_worker(user, settings, approved):
    settings.REFUND_AUTO_APPROVE = True
    order = paid_order(user)
    response = ask_refund(user, order.order_no, line_ids(order.order_no))
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["amount"]) == ("approved", "134.99")
    refund = Refund.objects.get()
    assert (refund.decided_by, refund.decided_at is not None) == (None, True)
    assert "automatically" in refund.decision_note
    assert approved == [refund.request_no]
    # Outside the window nothing is approved: the request itself is refused.
    Order.objects.filter(pk=order.pk).update(paid_at=timezone.now() - timedelta(days=30))
    assert_error(ask_refund(user, order.order_no, line_ids(order.order_no)), 409, "refund_window_closed")


def test_a_fully_discounted_line_is_refunded_at_once_without_a_provider(user, settings, approved):
    settings.REFUND_AUTO_APPROVE = True
    # A 60.00 coupon on 50.00 + 10.00: nothing to pay, paid at once, no payment attempt.
    order_body = order_with_discounts(user, "50.00", "10.00", amount_off="60.00", points=0)
    assert (order_body["status"], order_body["pay_amount"]) == ("paid", "0.00")
    order_no = order_body["order_no"]
    first, second = line_ids(order_no)

    response = ask_refund(user, order_no, [first])

    assert (response.json()["status"], response.json()["amount"], response.json()["provider"]) == (
        "succeeded",
        "0.00",
        None,
    )
    assert approved == []
    order = Order.objects.get(order_no=order_no)
    assert order.status == "partially_refunded"
    assert list(Enrollment.objects.filter(user=user).values_list("course_id", flat=True)) == [
        order.lines.get(pk=second).course_id
    ]
    assert ask_refund(user, order_no, [second]).json()["status"] == "succeeded"
    order.refresh_from_db()
    assert (order.status, order.refunded_at is not None) == ("refunded", True)
    assert not Enrollment.objects.filter(user=user).exists()
    assert order.user_coupon.status == "unused"  # the whole order refunded, coupon still valid
    assert_error(ask_refund(user, order_no, [second]), 409, "order_not_refundable")


# Staff's decisions in the admin -------------------------------------------------------------------


@pytest.fixture
def staff() -> tuple[User, Client]:
    operator = User.objects.create_superuser("operator", password="operator-pass-123")
    client = Client()
    client.force_login(operator)
    return operator, client


def admin_action(client: Client, model: str, action: str, ids: list[int], **extra):
    return client.post(
        f"/admin/orders/{model}/", {"action": action, "_selected_action": [str(pk) for pk in ids], **extra}
    )


def test_staff_approve_and_reject_with_a_reason(user, staff, approved):
    operator, client = staff
    order = paid_order(user, "100.00", "57.99", "10.00")
    first, second, third = line_ids(order.order_no)
    one = Refund.objects.get(pk=ask_refund(user, order.order_no, [first]).json()["id"])
    two = Refund.objects.get(pk=ask_refund(user, order.order_no, [second, third]).json()["id"])
    assert client.get("/admin/orders/refund/").status_code == 200
    assert client.get(f"/admin/orders/refund/{one.pk}/change/").status_code == 200

    assert admin_action(client, "refund", "approve", [one.pk]).status_code == 302
    one.refresh_from_db()
    assert (one.status, one.decided_by, one.decision_note) == ("approved", operator, "approved by staff")
    assert approved == [one.request_no]

    # Rejecting asks for a reason first; without one nothing changes.
    page = admin_action(client, "refund", "reject", [two.pk])
    assert page.status_code == 200 and "reason" in page.content.decode() and two.request_no in page.content.decode()
    assert admin_action(client, "refund", "reject", [two.pk], apply="Reject", reason="").status_code == 200
    two.refresh_from_db()
    assert two.status == "requested"
    assert admin_action(client, "refund", "reject", [two.pk], apply="Reject", reason="课程已学完").status_code == 302
    two.refresh_from_db()
    assert (two.status, two.decided_by, two.decision_note) == ("rejected", operator, "课程已学完")
    shown = ApiClient(user).get(f"/orders/{order.order_no}").json()
    assert [line["refund_status"] for line in shown["lines"]] == ["approved", "rejected", "rejected"]
    assert shown["refunds"][1]["rejection_reason"] == "课程已学完"

    # An approved refund is decided: neither action moves it again.
    admin_action(client, "refund", "reject", [one.pk], apply="Reject", reason="no")
    admin_action(client, "refund", "approve", [one.pk, two.pk])
    assert list(Refund.objects.order_by("id").values_list("status", flat=True)) == ["approved", "rejected"]
    # Rejected lines can be asked for again.
    again = ask_refund(user, order.order_no, [second])
    assert (again.status_code, again.json()["status"]) == (201, "requested")
    assert Refund.objects.get(pk=again.json()["id"]).request_no == f"{order.order_no}-r3"
    assert_refunds_within_pay_amount(order.order_no)


def test_operator_refund_approves_every_line_not_refunded_yet(user, staff, approved):
    operator, client = staff
    order = paid_order(user, "100.00", "57.99", "10.00")
    first, second, third = line_ids(order.order_no)
    asked = ask_refund(user, order.order_no, [second]).json()
    assert client.get(f"/admin/orders/order/{order.pk}/change/").status_code == 200

    assert admin_action(client, "order", "refund_every_line", [order.pk]).status_code == 302

    refund = Refund.objects.exclude(pk=asked["id"]).get()
    assert (refund.status, refund.decided_by, refund.requested_by) == ("approved", operator, operator)
    assert sorted(line.order_line_id for line in refund.lines.all()) == [first, third]
    assert approved == [refund.request_no]
    # Nothing is left to refund: the action says so and creates nothing.
    admin_action(client, "order", "refund_every_line", [order.pk])
    assert Refund.objects.count() == 2
    with pytest.raises(DomainError):
        services.refund_every_line(order_no=order.order_no, operator=operator)
    assert_refunds_within_pay_amount(order.order_no)


# The database's limits --------------------------------------------------------------------------


def test_the_database_refuses_refunds_above_pay_amount_and_a_line_in_two_refunds(user):
    order = paid_order(user)
    first, _ = line_ids(order.order_no)
    refund = services.request_refund(user=user, order_no=order.order_no, order_line_ids=[first]).refund
    extra = {"order": order, "requested_by": user, "status": "requested"}
    with pytest.raises(IntegrityError) as error, transaction.atomic():
        Refund.objects.create(request_no="x-1", amount=order.pay_amount - refund.amount + Decimal("0.01"), **extra)
    assert broke_constraint(error.value, name="refund_total_within_pay_amount")
    Refund.objects.create(request_no="x-2", amount=order.pay_amount - refund.amount, **extra)  # exactly up to it
    # Rejecting one lowers the sum, so another fits; bringing the rejected one back is refused.
    Refund.objects.filter(request_no="x-2").update(status="rejected", decided_at=timezone.now())
    Refund.objects.create(request_no="x-3", amount=order.pay_amount - refund.amount, **extra)
    with pytest.raises(IntegrityError), transaction.atomic():
        Refund.objects.filter(request_no="x-2").update(status="approved")
    other = Refund.objects.create(request_no="x-4", amount=Decimal("0.00"), **extra)
    with pytest.raises(IntegrityError) as error, transaction.atomic():
        other.lines.create(order_line_id=first, amount=Decimal("0.00"))
    assert broke_constraint(error.value, name="refund_line_one_live_refund_per_line")


def test_only_staff_decide_and_decisions_need_the_right_status(user, staff):
    operator, _ = staff
    order = paid_order(user)
    refund = services.request_refund(user=user, order_no=order.order_no, order_line_ids=line_ids(order.order_no)).refund
    with pytest.raises(DomainError) as error:
        services.retry_refund(refund_id=refund.pk, decided_by=operator)
    assert error.value.code == "refund_not_decidable"
    with pytest.raises(DomainError) as error:
        services.approve_refund(refund_id=10**9, decided_by=operator)
    assert error.value.code == "refund_not_found"
    # A buyer's token reaches no decision: there is no such endpoint, and the admin wants staff.
    assert Client().get("/admin/orders/refund/").status_code == 302
    other = UserFactory()
    assert_error(ApiClient(other).get(f"/orders/{order.order_no}"), 404, "order_not_found")

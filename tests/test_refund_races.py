"""Refund races with real threads against Postgres: duplicate requests, requests against staff's
decisions and the operator's refund, and raw inserts that skip the services altogether. The sum of
an order's non-rejected refunds never passes its pay_amount, and a line is in one live refund."""

import time
from collections import Counter
from decimal import Decimal
from functools import partial

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.db import broke_constraint
from core.errors import DomainError
from core.models import User
from orders import services
from orders.models import Order, Refund
from tests.conftest import assert_ledger_consistent, run_together
from tests.factories import UserFactory
from tests.refund_support import (
    ask_refund,
    assert_refunds_within_pay_amount,
    decide_refunds_here,
    line_ids,
    order_with_discounts,
    pay_by_alipay_notify,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def alipay_settings(settings, tmp_path_factory, monkeypatch):
    decide_refunds_here(settings, tmp_path_factory, monkeypatch)
    yield
    assert_ledger_consistent()


def paid_order(user, key: str = "k") -> Order:
    return pay_by_alipay_notify(user, order_with_discounts(user, "100.00", "57.99", "10.00", key=key))


def test_simultaneous_requests_for_the_same_lines_make_one_refund():
    user = UserFactory()
    order = paid_order(user)
    first, second, third = line_ids(order.order_no)
    asks = [[first, second]] * 6 + [[second]] * 3 + [[first, third]] * 3

    results = run_together([partial(lambda lines: ask_refund(user, order.order_no, lines), lines) for lines in asks])

    codes = Counter((r.status_code, r.json().get("code")) if r.status_code != 201 else (201, None) for r in results)
    refunds = list(Refund.objects.filter(order=order))
    assert codes[(201, None)] == len(refunds) >= 1, codes
    assert codes[(201, None)] + codes[(409, "order_line_already_refunded")] == len(asks), codes
    covered = [line.order_line_id for refund in refunds for line in refund.lines.all()]
    assert len(covered) == len(set(covered))  # no line twice
    assert len(refunds) <= 2  # {1, 2} or {2} + {1, 3}: the first to lock the order decides
    assert_refunds_within_pay_amount(order.order_no)


def test_decisions_requests_and_the_operators_refund_at_once_never_pass_pay_amount():
    operator = User.objects.create_superuser("operator", password="operator-pass-123")
    for round_no in range(6):
        user = UserFactory()
        order = paid_order(user, key=f"round-{round_no}")
        first, second, third = line_ids(order.order_no)
        one = services.request_refund(user=user, order_no=order.order_no, order_line_ids=[first]).refund
        two = services.request_refund(user=user, order_no=order.order_no, order_line_ids=[second, third]).refund

        def attempt(job):
            try:
                return job()
            except DomainError as exc:
                return exc.code

        jobs = [
            partial(services.approve_refund, refund_id=one.pk, decided_by=operator),
            partial(services.approve_refund, refund_id=two.pk, decided_by=operator),
            partial(services.reject_refund, refund_id=two.pk, decided_by=operator, reason="no"),
            partial(services.reject_refund, refund_id=one.pk, decided_by=operator, reason="no"),
            partial(services.request_refund, user=user, order_no=order.order_no, order_line_ids=[second]),
            partial(services.request_refund, user=user, order_no=order.order_no, order_line_ids=[first, third]),
            partial(services.refund_every_line, order_no=order.order_no, operator=operator),
            partial(services.refund_every_line, order_no=order.order_no, operator=operator),
        ]
        results = run_together([partial(attempt, job) for job in jobs])

        assert not [r for r in results if isinstance(r, Exception)], results
        assert_refunds_within_pay_amount(order.order_no)
        live = Refund.objects.filter(order=order).exclude(status="rejected")
        assert sum((r.amount for r in live), Decimal("0.00")) <= order.pay_amount


def test_the_trigger_alone_keeps_raw_inserts_within_pay_amount():
    """Inserts that skip the services (and their lock): the trigger locks the order itself, so
    of several refunds of 60% each exactly one goes in."""
    user = UserFactory()
    order = paid_order(user)
    amount = (order.pay_amount * Decimal("0.6")).quantize(Decimal("0.01"))

    def insert(n: int):
        try:
            with transaction.atomic():
                pk = Refund.objects.create(
                    order=order,
                    requested_by=user,
                    request_no=f"raw-{n}",
                    amount=amount,
                    status="approved",
                    decided_at=timezone.now(),
                ).pk
                time.sleep(0.3)  # still uncommitted while the others insert theirs
            return pk
        except IntegrityError as exc:
            assert broke_constraint(exc, name="refund_total_within_pay_amount"), exc
            return "refused"

    results = run_together([partial(insert, n) for n in range(8)])

    assert Counter(isinstance(r, int) for r in results) == Counter({True: 1, False: 7}), results
    assert Refund.objects.filter(order=order).count() == 1

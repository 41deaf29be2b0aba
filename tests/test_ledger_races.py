"""Races on points accounts, with real threads against Postgres: credits, take-backs and bulk
credits of the same accounts at once keep every balance equal to its ledger and never below 0."""

from collections import Counter

import pytest

from billing.models import PointsAccount, PointsEntry
from billing.services import credit_points, credit_points_in_bulk, take_back_points
from tests.conftest import ApiClient, assert_ledger_consistent, run_together
from tests.factories import UserFactory, fill_cart, give_points

pytestmark = pytest.mark.django_db(transaction=True)
ROUNDS = 5
# Users per bulk credit: enough that two batches' statements overlap, as a sweep batch's do.
BATCH = 200


def balance_of(user) -> int:
    return PointsAccount.objects.get(user=user).balance


def checkout(user, key: str, *, points: int):
    def job():
        response = ApiClient(user).post("/orders", {"points": points}, headers={"Idempotency-Key": key})
        return response.status_code, response.json().get("code")

    return job


def test_credits_and_debits_on_one_account_at_once_keep_balance_and_ledger_together():
    """Each round 6 credits of 10, 6 take-backs of up to 40 and a checkout spending 30 hit one
    account: a take-back takes what the balance allows when its turn comes, the checkout spends
    only what is there, and no move is lost: the balance is the sum of its ledger, every entry's
    balance_after its running balance, and never below zero."""
    user = UserFactory()
    give_points(user, 50)
    for round_no in range(ROUNDS):
        before = balance_of(user)
        last_entry = PointsEntry.objects.order_by("id").last().pk
        fill_cart(user, "10.00")
        credit = lambda: credit_points(user=user, amount=10, reason=PointsEntry.Reason.GRANT)  # noqa: E731
        take_back = lambda: take_back_points(user=user, amount=40, reason=PointsEntry.Reason.EARNED_REVERSAL)  # noqa: E731

        results = run_together([credit, take_back] * 6 + [checkout(user, f"spend-{round_no}", points=30)])

        assert not [r for r in results if isinstance(r, Exception)], results
        assert results[-1] in ((201, None), (422, "insufficient_points")), results[-1]
        moved = PointsEntry.objects.filter(pk__gt=last_entry, account__user=user)
        assert Counter(moved.values_list("reason", flat=True))["grant"] == 6
        assert moved.filter(reason="order_debit").count() == (results[-1][0] == 201)
        assert balance_of(user) == before + sum(moved.values_list("delta", flat=True))
        assert_ledger_consistent()
    assert PointsEntry.objects.filter(reason=PointsEntry.Reason.EARNED_REVERSAL).exists()


def test_bulk_credits_of_the_same_accounts_in_opposite_orders_never_deadlock(session_settings):
    """Two sweeper batches (or cancels) crediting the same users, listed in opposite orders, at
    once. Their one UPDATE would lock the accounts in the order its plan visits them, so the
    batch locks them in pk order first. With a handful of accounts Postgres hashes the whole
    table in its own order (which hides the danger); a shop's many accounts are probed through the
    index in the moves' order, so the test plans the small table as a big one is planned."""
    session_settings(enable_hashjoin="off", enable_mergejoin="off")
    users = UserFactory.create_batch(BATCH)
    forward = [(user.pk, 5, None) for user in users]

    def batch(credits):
        return lambda: credit_points_in_bulk(credits=credits, reason=PointsEntry.Reason.ORDER_REFUND)

    for _ in range(ROUNDS):
        results = run_together([batch(forward), batch(forward[::-1])] * 2)
        assert [len(r) if isinstance(r, list) else r for r in results] == [BATCH] * 4, results
    assert {balance_of(user) for user in users} == {5 * 4 * ROUNDS}
    assert_ledger_consistent()

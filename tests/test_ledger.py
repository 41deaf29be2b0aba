"""The points ledger's one statement (billing/ledger.py), which billing's credits and the
checkout's debit share: balances and entries move together, in the moves' order."""

import pytest
from django.db import IntegrityError, transaction

from billing import services as billing
from billing.ledger import PointsMove, move_points
from billing.models import PointsAccount, PointsEntry
from tests.conftest import assert_ledger_consistent
from tests.factories import UserFactory, give_points

pytestmark = pytest.mark.django_db


def test_moves_of_one_account_run_in_order_with_their_balances():
    alice, bob = UserFactory(), UserFactory()
    give_points(alice, 100)
    give_points(bob, 50)
    moves = [
        PointsMove(user_id=alice.pk, delta=-30),
        PointsMove(user_id=bob.pk, delta=5),
        PointsMove(user_id=alice.pk, delta=7),
        PointsMove(user_id=alice.pk, delta=-70),
    ]
    entries = move_points(moves=moves, reason=PointsEntry.Reason.GRANT)
    assert [(e.delta, e.balance_after) for e in entries] == [(-30, 70), (5, 55), (7, 77), (-70, 7)]
    assert [e.account.user_id for e in entries] == [alice.pk, bob.pk, alice.pk, alice.pk]
    assert entries == sorted(entries, key=lambda e: e.pk)
    assert PointsAccount.objects.get(user=alice).balance == 7
    assert PointsAccount.objects.get(user=bob).balance == 55
    assert_ledger_consistent()


def test_a_move_without_an_account_raises_and_writes_nothing():
    holder, stranger = UserFactory(), UserFactory()
    give_points(holder, 10)
    with pytest.raises(LookupError), transaction.atomic():
        move_points(
            moves=[PointsMove(user_id=holder.pk, delta=5), PointsMove(user_id=stranger.pk, delta=5)],
            reason=PointsEntry.Reason.GRANT,
        )
    assert PointsAccount.objects.get(user=holder).balance == 10
    assert PointsEntry.objects.count() == 1
    assert_ledger_consistent()


def test_a_move_below_zero_is_refused_by_the_database():
    user = UserFactory()
    give_points(user, 10)
    with pytest.raises(IntegrityError), transaction.atomic():
        move_points(moves=[PointsMove(user_id=user.pk, delta=-11)], reason=PointsEntry.Reason.ORDER_DEBIT)
    assert PointsAccount.objects.get(user=user).balance == 10
    assert_ledger_consistent()


def test_credits_open_the_account_and_take_back_stops_at_zero():
    user = UserFactory()
    assert billing.take_back_points(user=user, amount=5, reason=PointsEntry.Reason.EARNED_REVERSAL) is None
    assert not PointsAccount.objects.filter(user=user).exists()
    entry = billing.credit_points(user=user, amount=8, reason=PointsEntry.Reason.ORDER_EARNED)
    assert (entry.delta, entry.balance_after, entry.reason) == (8, 8, "order_earned")
    taken = billing.take_back_points(user=user, amount=20, reason=PointsEntry.Reason.EARNED_REVERSAL)
    assert (taken.delta, taken.balance_after) == (-8, 0)
    assert billing.take_back_points(user=user, amount=1, reason=PointsEntry.Reason.EARNED_REVERSAL) is None
    assert_ledger_consistent()


def test_bulk_credits_open_accounts_and_keep_running_balances():
    new, old = UserFactory(), UserFactory()
    give_points(old, 100)
    entries = billing.credit_points_in_bulk(
        credits=[(old.pk, 10, None), (new.pk, 3, None), (old.pk, 0, None), (old.pk, 5, None)],
        reason=PointsEntry.Reason.ORDER_REFUND,
    )
    assert [(e.account.user_id, e.delta, e.balance_after) for e in entries] == [
        (old.pk, 10, 110),
        (new.pk, 3, 3),
        (old.pk, 5, 115),
    ]
    assert billing.credit_points_in_bulk(credits=[(old.pk, 0, None)], reason=PointsEntry.Reason.ORDER_REFUND) == []
    assert_ledger_consistent()

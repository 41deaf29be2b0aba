"""The database's own checks: the last line of defence behind the services' locks and
conditional updates. Each write here skips the services on purpose and must be refused."""

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from billing.models import Coupon, PointsAccount, PointsEntry, UserCoupon
from tests.factories import CouponFactory, UserFactory, give_coupon, give_points

pytestmark = pytest.mark.django_db


def refused(write, constraint: str) -> None:
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        write()


def test_a_points_balance_cannot_go_below_zero():
    user = UserFactory()
    give_points(user, 10)
    account = PointsAccount.objects.get(user=user)
    refused(
        lambda: PointsAccount.objects.filter(pk=account.pk).update(balance=F("balance") - 11),
        "points_balance_not_negative",
    )
    refused(
        lambda: PointsEntry.objects.create(account=account, delta=-11, balance_after=-1, reason="order_debit"),
        "points_entry_balance_not_negative",
    )
    refused(
        lambda: PointsEntry.objects.create(account=account, delta=0, balance_after=10, reason="grant"),
        "points_entry_delta_not_zero",
    )
    account.refresh_from_db()
    assert account.balance == 10 and account.entries.count() == 1


def test_a_coupon_cannot_be_issued_beyond_its_total():
    coupon = CouponFactory(total_quantity=2)
    refused(
        lambda: Coupon.objects.filter(pk=coupon.pk).update(issued_count=F("total_quantity") + 1),
        "coupon_not_oversold",
    )
    coupon.refresh_from_db()
    assert coupon.issued_count == 0


def test_a_user_holds_one_claim_of_a_coupon_and_its_order_matches_its_status():
    user = UserFactory()
    claimed = give_coupon(user, threshold="0.00")
    duplicate = UserCoupon(
        **{f.attname: getattr(claimed, f.attname) for f in UserCoupon._meta.concrete_fields if not f.primary_key}
    )
    refused(duplicate.save, "user_coupon_one_claim_per_user")
    refused(
        lambda: UserCoupon.objects.filter(pk=claimed.pk).update(status=UserCoupon.Status.LOCKED),
        "user_coupon_order_matches_status",
    )
    claimed.refresh_from_db()
    assert claimed.status == UserCoupon.Status.UNUSED and UserCoupon.objects.count() == 1

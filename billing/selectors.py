from decimal import Decimal

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from billing.models import Coupon, PointsAccount, PointsEntry, UserCoupon
from core.models import User


def claimable_coupons(*, user: User) -> QuerySet[Coupon]:
    """Coupons inside their window, annotated with whether this user already holds one."""
    now = timezone.now()
    return (
        Coupon.objects.filter(starts_at__lte=now, ends_at__gt=now)
        .annotate(claimed=Exists(UserCoupon.objects.filter(user=user, coupon=OuterRef("pk"))))
        .order_by("ends_at", "id")
    )


def user_coupons(*, user: User, status: str | None = None) -> QuerySet[UserCoupon]:
    coupons = UserCoupon.objects.filter(user=user)
    return coupons.filter(status=status) if status else coupons


def usable_coupons_filter(*, subtotal: Decimal) -> Q:
    now = timezone.now()
    return Q(status=UserCoupon.Status.UNUSED, starts_at__lte=now, ends_at__gt=now, threshold__lte=subtotal)


def usable_user_coupons(*, user: User, subtotal: Decimal) -> list[UserCoupon]:
    return list(UserCoupon.objects.filter(usable_coupons_filter(subtotal=subtotal), user=user).order_by("ends_at"))


def points_balance(*, user: User) -> int:
    return PointsAccount.objects.filter(user=user).values_list("balance", flat=True).first() or 0


def recent_points_entries(*, user: User, limit: int = 50) -> list[PointsEntry]:
    return list(PointsEntry.objects.filter(account__user=user).select_related("order").order_by("-id")[:limit])

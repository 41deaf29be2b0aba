from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth.hashers import make_password
from django.utils import timezone

from billing.models import Coupon, PointsEntry, UserCoupon
from core.models import Course, Enrollment, User
from orders.models import CartItem

TEST_PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.LazyFunction(lambda: make_password(TEST_PASSWORD))


class CourseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Course

    name = factory.Sequence(lambda n: f"Course {n}")
    description = "A course."
    picture_url = factory.Sequence(lambda n: f"/static/demo/course-{n}.svg")
    price = Decimal("100.00")


class EnrollmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Enrollment

    user = factory.SubFactory(UserFactory)
    course = factory.SubFactory(CourseFactory)


class CartItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CartItem

    user = factory.SubFactory(UserFactory)
    course = factory.SubFactory(CourseFactory)


class CouponFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Coupon

    name = factory.Sequence(lambda n: f"满100减20 #{n}")
    kind = Coupon.Kind.FIXED
    threshold = Decimal("100.00")
    amount_off = Decimal("20.00")
    percent_off = None
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    ends_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))
    total_quantity = 100


def percent_coupon(**kwargs) -> Coupon:
    return CouponFactory(kind=Coupon.Kind.PERCENT, amount_off=None, percent_off=Decimal("20.00"), **kwargs)


def give_coupon(user, coupon: Coupon | None = None, **coupon_kwargs) -> UserCoupon:
    """A coupon claimed by `user` through the real claim service."""
    from billing.services import claim_coupon

    coupon = coupon or CouponFactory(**coupon_kwargs)
    return claim_coupon(user=user, coupon_id=coupon.pk)


def give_points(user, amount: int) -> None:
    from billing.services import credit_points

    credit_points(user=user, amount=amount, reason=PointsEntry.Reason.GRANT)


def fill_cart(user, *prices: str) -> list[CartItem]:
    return [CartItemFactory(user=user, course=CourseFactory(price=Decimal(p))) for p in prices]

"""Demo data of DESIGN.md "Demo data". Idempotent: existing rows are left as they are."""

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing import services as billing
from billing.models import Coupon, PointsAccount, PointsEntry
from core.models import Course, User

DEMO_PASSWORD = "demo-pass-123"
DEMO_USERS = ["alice", "bob"]
DEMO_COURSES = [
    ("Python from zero", "Variables to classes, with exercises.", "199.00"),
    ("Django in depth", "Models, views, the ORM and deployment.", "299.00"),
    ("Vue 3 for shop pages", "Components, router and a typed API client.", "159.00"),
    ("PostgreSQL for developers", "Indexes, locks, transactions and EXPLAIN.", "129.00"),
    ("Redis in practice", "Data types, queues and caching patterns.", "89.00"),
    ("Linux command line", "Shell, processes, files and networking.", "49.90"),
    ("Algorithms warm-up", "Sorting, searching and complexity, gently.", "9.90"),
]
DEMO_POINTS = 5000
# name, kind, threshold, amount_off, percent_off, total_quantity
DEMO_COUPONS = [
    ("满100减20", Coupon.Kind.FIXED, "100.00", "20.00", None, 1000),
    ("8折", Coupon.Kind.PERCENT, "0.00", None, "20.00", 1000),
    ("秒杀券", Coupon.Kind.FIXED, "0.00", "50.00", None, 10),
]


def picture_for(index: int) -> str:
    return f"/static/demo/course-{index}.svg"


@transaction.atomic
def seed_demo() -> str:
    courses = 0
    for index, (name, description, price) in enumerate(DEMO_COURSES, start=1):
        _, created = Course.objects.get_or_create(
            name=name,
            defaults={"description": description, "price": Decimal(price), "picture_url": picture_for(index)},
        )
        courses += created
    users = 0
    for username in DEMO_USERS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_user(username=username, password=DEMO_PASSWORD)
            users += 1
        if not PointsAccount.objects.filter(user=user).exists():
            billing.credit_points(user=user, amount=DEMO_POINTS, reason=PointsEntry.Reason.GRANT)
    coupons = 0
    now = timezone.now()
    for name, kind, threshold, amount_off, percent_off, total in DEMO_COUPONS:
        _, created = Coupon.objects.get_or_create(
            name=name,
            defaults={
                "kind": kind,
                "threshold": Decimal(threshold),
                "amount_off": Decimal(amount_off) if amount_off else None,
                "percent_off": Decimal(percent_off) if percent_off else None,
                "starts_at": now - timedelta(days=1),
                "ends_at": now + timedelta(days=365),
                "total_quantity": total,
            },
        )
        coupons += created
    return f"{courses} courses, {users} users and {coupons} coupons created"

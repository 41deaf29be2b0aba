"""Demo data of DESIGN.md "Demo data". Idempotent: existing rows are left as they are."""

from decimal import Decimal

from django.db import transaction

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
        if not User.objects.filter(username=username).exists():
            User.objects.create_user(username=username, password=DEMO_PASSWORD)
            users += 1
    return f"{courses} courses and {users} users created"

from django.core.management.base import BaseCommand

from orders.demo import seed_demo


class Command(BaseCommand):
    help = "Create the demo courses, users, points and coupons (safe to run again)."

    def handle(self, *args, **options) -> None:
        summary = seed_demo()
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {summary}"))

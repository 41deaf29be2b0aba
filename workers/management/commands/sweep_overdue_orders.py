from django.core.management.base import BaseCommand

from orders.services import sweep_overdue_orders


class Command(BaseCommand):
    help = "Cancel every pending order past its deadline now (what the every-minute sweeper does)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args, batch_size: int | None = None, **options) -> None:
        report = sweep_overdue_orders(batch_size=batch_size)
        self.stdout.write(f"outcomes={report.outcomes} refunded={report.refunded} failed={report.failed}")

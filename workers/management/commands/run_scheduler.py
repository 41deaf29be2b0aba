from apscheduler.schedulers.blocking import BlockingScheduler
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Send the sweeper message every SWEEP_INTERVAL_SECONDS (one scheduler per deployment)."

    def handle(self, *args, **options) -> None:
        from workers.actors import sweep_overdue_orders

        # APScheduler keeps the beat; the work itself runs on the Dramatiq workers. Two
        # schedulers by mistake only sweep twice: the sweep is idempotent.
        scheduler = BlockingScheduler(timezone="UTC")
        scheduler.add_job(
            sweep_overdue_orders.send,
            "interval",
            seconds=settings.SWEEP_INTERVAL_SECONDS,
            id="sweep_overdue_orders",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=30,
        )
        self.stdout.write(f"Sweeping every {settings.SWEEP_INTERVAL_SECONDS}s; Ctrl-C to stop.")
        try:
            scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            scheduler.shutdown(wait=False)

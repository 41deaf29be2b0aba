from django.apps import AppConfig
from django.conf import settings


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Workers: expiry, sweeper, refunds"

    def ready(self) -> None:
        from orders import events
        from workers import actors

        # The seam of DESIGN.md "Layout": orders announces, workers enqueues.
        events.on_order_placed(actors.schedule_expiry)
        events.on_refund_needed(actors.enqueue_refund)
        events.on_attempts_to_close(actors.enqueue_close_attempts)
        events.on_refund_approved(actors.enqueue_refund_sending)
        if settings.RUN_EMBEDDED_WORKER:
            from workers.embedded import start_embedded_worker

            start_embedded_worker()

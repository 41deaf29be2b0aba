"""The embedded default's worker: with no REDIS_URL, messages live in the web process's
StubBroker, so that process drains them itself, and runs the sweeper on a timer."""

import logging
import threading

import dramatiq
from django.conf import settings
from dramatiq import Worker

logger = logging.getLogger(__name__)
_started = threading.Event()


def _sweep_forever() -> None:
    from workers.actors import sweep_overdue_orders

    stop = threading.Event()
    while not stop.wait(settings.SWEEP_INTERVAL_SECONDS):
        sweep_overdue_orders.send()


def start_embedded_worker() -> Worker | None:
    if _started.is_set():
        return None
    _started.set()
    worker = Worker(dramatiq.get_broker(), worker_threads=2)
    worker.start()
    threading.Thread(target=_sweep_forever, name="sweeper-timer", daemon=True).start()
    logger.info("embedded Dramatiq worker and sweeper started (broker %s)", type(dramatiq.get_broker()).__name__)
    return worker

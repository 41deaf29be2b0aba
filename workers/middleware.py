"""Dramatiq middleware of our own."""

import logging
import os
import threading

from dramatiq import Middleware
from dramatiq.worker import ConsumerThread, WorkerThread

logger = logging.getLogger(__name__)
# EX_SOFTWARE: the worker died of an internal error; its supervisor should start a new one.
EXIT_CODE = 70


class ExitWhenAWorkerThreadDies(Middleware):
    """A consumer thread that dies leaves a process that looks healthy (heartbeat, /health) but
    takes no more messages from its queue: seen in the fault drill, where a Redis restart in the
    middle of moving a due delayed message killed the thread consuming `expiry.DQ` and every
    expiry then waited for the sweeper. A dead process is noticed and restarted; a half-dead one
    is not, so the whole process exits instead."""

    def after_worker_boot(self, broker, worker) -> None:
        previous = threading.excepthook

        def exit_on_dead_worker_thread(args: threading.ExceptHookArgs) -> None:
            previous(args)
            if isinstance(args.thread, (ConsumerThread, WorkerThread)):
                logger.critical("Dramatiq thread %s died; exiting so the worker is restarted", args.thread.name)
                logging.shutdown()
                os._exit(EXIT_CODE)

        threading.excepthook = exit_on_dead_worker_thread

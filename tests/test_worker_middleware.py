"""A Dramatiq worker whose consumer thread dies exits (so its supervisor restarts it) instead of
lingering half-dead; other threads dying change nothing."""

import subprocess
import sys
import textwrap

import pytest

from workers.middleware import EXIT_CODE

SCRIPT = textwrap.dedent(
    """
    import threading, time
    from dramatiq.worker import ConsumerThread
    from workers.middleware import ExitWhenAWorkerThreadDies

    class DyingConsumer(ConsumerThread):
        def __init__(self):
            threading.Thread.__init__(self, name="expiry.DQ consumer")
        def run(self):
            raise ConnectionError("Redis went away while moving a delayed message")

    class OtherThread(threading.Thread):
        def run(self):
            raise ValueError("not a dramatiq thread")

    ExitWhenAWorkerThreadDies().after_worker_boot(None, None)
    thread = {which}()
    thread.start()
    thread.join()
    time.sleep(0.2)
    print("still running")
    """
)


@pytest.mark.parametrize("which,code", [("DyingConsumer", EXIT_CODE), ("OtherThread", 0)])
def test_only_a_dead_dramatiq_thread_ends_the_process(which, code):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(which=which)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == code, result.stderr
    assert ("still running" in result.stdout) is (code == 0)

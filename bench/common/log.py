"""The runs' progress lines, on stderr: `[bench 12:04:23] ...` (the fault drill: `[drill ...]`)."""

from __future__ import annotations

import sys
import time

_who = "bench"


def log_as(who: str) -> None:
    """The name every later line starts with (the fault drill logs as `drill`)."""
    global _who
    _who = who


def log(msg: str) -> None:
    print(f"[{_who} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

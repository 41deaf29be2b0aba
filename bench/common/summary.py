"""What a run reports: number formats, the machine's description, and the summary rows
`bench/report.py` turns into the one combined table `make bench` prints."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import time

from .db import psql
from .procfs import read
from .redis_cli import redis_cli


def fmt(x: float, digits: int = 1) -> str:
    return "n/a" if x is None or x != x else f"{x:.{digits}f}"


def pct(x: float) -> str:
    return "n/a" if x is None or x != x else f"{x * 100:.0f}%"


def machine_info() -> dict[str, str]:
    """What the figures were taken on (for BENCHMARKS.md and the JSON results)."""
    info = {"nproc": str(os.cpu_count()), "kernel": platform.release(), "python": platform.python_version()}
    for line in read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            info["memory"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            info["cpu"] = line.split(":", 1)[1].strip()
            break
    try:
        info["postgres"] = psql("postgres", "SHOW server_version;")
    except (RuntimeError, OSError):
        pass
    if shutil.which("redis-cli"):
        m = re.search(r"redis_version:(\S+)", redis_cli("INFO", "server") or "")
        if m:
            info["redis"] = m.group(1)
    return info


def summary_row(
    *,
    bench: str,
    case: str,
    app: str,
    baseline: str = "",
    ratio: float | str | None = None,
    p50: str = "",
    p99: str = "",
    note: str = "",
) -> dict:
    """One row of the combined table: figures already formatted with their units; `ratio` is a
    fraction (printed as %) or a preformatted text."""
    return {
        "bench": bench,
        "case": case,
        "app": app,
        "baseline": baseline,
        "ratio": ratio,
        "p50": p50,
        "p99": p99,
        "note": note,
    }


def write_results(args, bench: str, rows: list[dict], *, started: str, **raw) -> None:
    """End of a run: the rows of the combined table (--summary) and, with --json, the raw results;
    both say when the run started and on what machine."""
    machine = machine_info()
    write_summary(args.summary, bench, rows, started=started, machine=machine)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"started": started, "machine": machine, **raw}, fh, indent=2)


def write_summary(path: str | None, bench: str, rows: list[dict], **meta) -> None:
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        json.dump({"bench": bench, "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows, **meta}, fh, indent=2)

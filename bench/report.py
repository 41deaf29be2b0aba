#!/usr/bin/env python3
"""Prints ONE table from the summaries the benchmarks wrote (`--summary PATH` of each
`bench/*_bench.py`): `make bench` runs every benchmark, then this.

    .venv/bin/python bench/report.py var/bench/*.json

Each row: benchmark, case, the app's figure, the baseline measured in the same run, the ratio
(app/baseline throughput in %; for the cart, cart latency / bare-view latency as "Nx"), p50 and p99
(latency, or lag after the deadline for expiry) and notes (targets, flags such as "under load").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ORDER = ["checkout", "expiry", "coupon", "cart", "pay"]


def load(paths: list[str]) -> list[dict]:
    out = []
    for path in paths:
        try:
            with open(path) as fh:
                out.append(json.load(fh))
        except (OSError, ValueError) as exc:
            print(f"(skipping {path}: {exc})", file=sys.stderr)
    out.sort(key=lambda s: ORDER.index(s["bench"]) if s["bench"] in ORDER else len(ORDER))
    return out


def cell(text) -> str:
    return str(text).replace("|", "/") if text not in (None, "") else ""


def render(summaries: list[dict]) -> str:
    lines = [
        "| benchmark | case | app | baseline (same run) | app/baseline | p50 | p99 | notes |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for s in summaries:
        for r in s["rows"]:
            ratio = r.get("ratio")
            ratio = f"{ratio * 100:.0f}%" if isinstance(ratio, (int, float)) else cell(ratio)
            lines.append(
                f"| {s['bench']} | {cell(r['case'])} | {cell(r['app'])} | {cell(r['baseline'])} | {ratio} "
                f"| {cell(r['p50'])} | {cell(r['p99'])} | {cell(r['note'])} |"
            )
    machine = next((s.get("machine") for s in summaries if s.get("machine")), None)
    when = ", ".join(f"{s['bench']} {s.get('started', '?')}" for s in summaries)
    lines.append("")
    lines.append(f"Runs started: {when}.")
    if machine:
        lines.append(
            "Machine: "
            + ", ".join(
                f"{k} {machine[k]}"
                for k in ("nproc", "memory", "cpu", "postgres", "redis", "python", "kernel")
                if k in machine
            )
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    paths = [p for arg in argv for p in (sorted(map(str, Path().glob(arg))) if "*" in arg else [arg])]
    summaries = load(paths)
    if not summaries:
        print("no benchmark summaries found", file=sys.stderr)
        return 1
    print()
    print("== All benchmarks (one table)")
    print()
    print(render(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

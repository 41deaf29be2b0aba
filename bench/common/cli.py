"""The flags every benchmark takes (BENCHMARKS.md "Running them")."""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BENCH_DIR = ROOT / "bench"


def parser(doc: str) -> argparse.ArgumentParser:
    """A script's parser, described by the first paragraph of its docstring."""
    return argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)


def add_common_args(p: argparse.ArgumentParser, *, db: str) -> None:
    p.add_argument(
        "--max-wait", type=float, default=20, help="seconds to wait for an idle machine before each level (default 20)"
    )
    p.add_argument(
        "--extra-time",
        type=float,
        default=90,
        help="total seconds a run may add for waiting and re-measuring disturbed levels (default 90)",
    )
    p.add_argument(
        "--max-other-load",
        type=float,
        default=10,
        help="re-measure a level when other processes used more than this %% of the machine (default 10)",
    )
    p.add_argument(
        "--retries", type=int, default=1, help="re-measurements per disturbed level; the least disturbed is kept"
    )
    p.add_argument("--db", default=db, help=f"database to (re)create (default {db})")
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    p.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    p.add_argument("--summary", metavar="PATH", help="write the rows of the combined table (bench/report.py) here")
    p.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"), help="the project's python")
    p.add_argument(
        "--app-dir",
        type=Path,
        default=ROOT,
        help="project tree to serve and migrate (default: this checkout); e.g. a copy with a change to A/B",
    )


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]

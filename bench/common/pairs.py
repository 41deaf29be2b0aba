"""Paired rounds: the API run and its pgbench baseline right after it, the same minute, so the
host's drift (BENCHMARKS.md "How figures are taken") hits both alike; a level's figure is the
median of its rounds."""

from __future__ import annotations

from dataclasses import dataclass

from .cpu import noisy
from .load import LevelResult
from .pgbench import PgbenchResult
from .summary import fmt, pct


@dataclass
class Pair:
    """One round of one level: the API run and the pgbench run right after it."""

    clients: int
    round: int
    api: LevelResult | None = None
    pgb: PgbenchResult | None = None

    @property
    def ratio(self) -> float | None:
        if self.api and self.pgb and self.pgb.tps:
            return self.api.rate / self.pgb.tps
        return None


def median(values: list[float]) -> float:
    values = sorted(v for v in values if v == v)
    if not values:
        return float("nan")
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def by_level(pairs: list[Pair]) -> dict[int, list[Pair]]:
    levels: dict[int, list[Pair]] = {}
    for pair in pairs:
        levels.setdefault(pair.clients, []).append(pair)
    return levels


def level_verdict(rounds: list[Pair], *, min_ratio: float, max_p99_ms: float) -> str:
    """A level's targets: the median ratio of its rounds, and every round's p99."""
    ratios = [p.ratio for p in rounds if p.ratio is not None]
    p99s = [p.api.p99 for p in rounds if p.api]
    if not ratios or not p99s:
        return ""
    ratio, worst = median(ratios), max(p99s)
    each = ", ".join(f"{r * 100:.0f}%" for r in ratios)
    return (
        f"API >= {min_ratio * 100:.0f}% of SQL-only -> median {ratio * 100:.0f}% of {len(ratios)} paired round(s) "
        f"({each}; {sum(r >= min_ratio for r in ratios)} at or above {min_ratio * 100:.0f}%) "
        f"({'met' if ratio >= min_ratio else 'MISSED'}); "
        f"p99 < {max_p99_ms:.0f} ms -> worst round {fmt(worst)} ms ({'met' if worst < max_p99_ms else 'MISSED'})"
    )


def flag(run: LevelResult | PgbenchResult, max_other_load: float) -> str:
    """ "*" after a run's figure when someone else's load disturbed it, it ran out of users, got
    error answers or failed transactions, or its counts did not check out (`verified`)."""
    suspect = run.exhausted or getattr(run, "errors", None) or getattr(run, "failed", 0)
    suspect = suspect or getattr(run, "verified", True) is False
    return "*" if suspect or noisy(run.cpu, max_other_load) else ""


def round_rows(pairs: list[Pair], *, max_other_load: float) -> list[str]:
    """The rows of a paired-rounds table (clients, round, API rate, p50, p99, pgbench tps, p50, p99,
    API/pgbench): one per round, each figure flagged as `flag` says, and per level of several
    rounds one of their medians."""
    lines = []
    for c, rounds in by_level(pairs).items():
        for pair in rounds:
            a, p = pair.api, pair.pgb
            rate = fmt(a.rate) + flag(a, max_other_load) if a else "n/a"
            tps = fmt(p.tps) + flag(p, max_other_load) if p else "n/a"
            lines.append(
                f"| {c} | {pair.round} | {rate} | {fmt(a.p50) if a else 'n/a'} "
                f"| {fmt(a.p99) if a else 'n/a'} | {tps} "
                f"| {fmt(p.p50_ms, 2) if p else 'n/a'} | {fmt(p.p99_ms, 2) if p else 'n/a'} | {pct(pair.ratio)} |"
            )
        if len(rounds) > 1:
            ratios = [r.ratio for r in rounds if r.ratio is not None]
            lines.append(
                f"| {c} | median | {fmt(median([r.api.rate for r in rounds if r.api]))} | "
                f"| {fmt(median([r.api.p99 for r in rounds if r.api]))} "
                f"| {fmt(median([r.pgb.tps for r in rounds if r.pgb]))} | | "
                f"| {pct(median(ratios)) if ratios else 'n/a'} |"
            )
    return lines

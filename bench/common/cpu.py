"""CPU accounting from /proc (Linux): where the cycles of one operation go; and the shared host:
waiting for an idle machine, re-measuring a level someone else's load disturbed, and what the
bench database's backends were doing (pg_stat_activity)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable

from . import procfs
from .db import pg_env
from .log import log
from .procfs import CLK_TCK, machine_ticks


class CpuSampler:
    """Polls /proc every `interval` s and charges each process's CPU (utime + stime) to a class:
    server (every process in the session of `server_pid`: gunicorn master + workers, or the
    Dramatiq worker tree; they are started with start_new_session), client (the load generator),
    pg (backends and autovacuum of the bench database), pg_aux (WAL writer, checkpointer, background
    writer...: shared, mostly ours), pg_other (other databases' backends). What is left of the
    machine's busy time is `other` (other people's test runs, this sampler...). Polling, rather than
    two snapshots, keeps the ticks of processes that exit inside the window (pgbench's backends at
    its end); at most one interval of their CPU is lost."""

    def __init__(self, *, db: str, server_pid: int | None, client_pids: set[int], interval: float = 0.2):
        self.db_marker = f" {db} "
        self.server_pid = server_pid
        self.client_pids = client_pids
        self.interval = interval
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.kind: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _classify(self, pid: int, comm: str, ppid: int, session: int) -> str | None:
        if pid in self.client_pids:
            return "client"
        if self.server_pid and (pid == self.server_pid or ppid == self.server_pid or session == self.server_pid):
            return "server"
        if ppid in self.client_pids:
            return "client"  # the load generator's forked clients
        if comm == "postgres":
            cmdline = procfs.read(f"/proc/{pid}/cmdline").replace("\0", " ")
            if self.db_marker in cmdline + " ":
                return "pg"
            if "(" in cmdline or "autovacuum worker" in cmdline or "parallel worker" in cmdline:
                return "pg_other"  # a backend or worker of another database
            return "pg_aux"
        return None

    def _poll(self, initial: bool) -> None:
        for pid in procfs.pids():
            parsed = procfs.stat(pid)
            if not parsed:
                continue
            comm, rest = parsed
            ticks = int(rest[11]) + int(rest[12])
            if pid not in self.kind:
                kind = self._classify(pid, comm, int(rest[1]), int(rest[3]))
                if kind is None:
                    continue
                self.kind[pid] = kind
                # Born inside the window: all of its CPU is ours to count.
                self.first[pid] = ticks if initial else 0
            self.last[pid] = ticks

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._poll(initial=False)

    def start(self) -> CpuSampler:
        self.machine0 = machine_ticks()
        self._poll(initial=True)
        self._thread.start()
        return self

    def stop(self, extra_client_ticks: int = 0) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self._poll(initial=False)
        busy1, total1 = machine_ticks()
        busy = busy1 - self.machine0[0]
        wall = max(1, total1 - self.machine0[1])
        out = {"server": 0, "client": extra_client_ticks, "pg": 0, "pg_aux": 0, "pg_other": 0}
        for pid, kind in self.kind.items():
            out[kind] += self.last[pid] - self.first[pid]
        out["other"] = max(0, busy - sum(out.values()))
        out["busy"] = busy
        out["wall"] = wall
        return out


def cpu_per_op(ticks: dict[str, float], ops: int) -> dict[str, float]:
    """ms of CPU per operation for each class, and shares of the whole machine."""
    per = {
        k: (ticks[k] * 1000.0 / CLK_TCK / ops if ops else float("nan"))
        for k in ("server", "client", "pg", "pg_aux", "pg_other", "other")
    }
    per["machine_busy"] = ticks["busy"] / ticks["wall"]
    per["other_share"] = (ticks["other"] + ticks["pg_other"]) / ticks["wall"]
    return per


class ExtraTime:
    """The time a run may spend beyond its levels: waiting for other people's load to pass and
    re-measuring disturbed levels. Keeps one run bounded on a shared machine."""

    def __init__(self, seconds: float):
        self.left = seconds

    def spend(self, seconds: float) -> None:
        self.left = max(0.0, self.left - seconds)


def wait_for_quiet(budget: ExtraTime, max_wait: float, threshold: float = 0.25) -> float:
    """Waits (up to max_wait s, within the budget) until the machine is mostly idle: other
    people's test runs on this host would otherwise take CPU from the level being measured.
    Returns the busy share seen last (0..1)."""
    started = time.monotonic()
    limit = min(max_wait, budget.left)
    while True:
        b0, t0 = machine_ticks()
        time.sleep(1.0)
        b1, t1 = machine_ticks()
        share = (b1 - b0) / max(1, t1 - t0)
        waited = time.monotonic() - started
        if share <= threshold or waited >= limit:
            budget.spend(max(0.0, waited - 1.0))
            if share > threshold:
                log(f"WARNING: machine still {share * 100:.0f}% busy (not us); measuring anyway")
            return share
        log(f"machine {share * 100:.0f}% busy (someone else's load); waiting for it to settle")


def noisy(cpu: dict[str, float], max_other_load: float) -> bool:
    return cpu.get("other_share", 0.0) > max_other_load / 100.0


def under_load(cpu: dict[str, float], max_other_load: float) -> list[str]:
    """The note of a level someone else's load disturbed (the combined table's "under load")."""
    return [f"under load ({cpu['other_share'] * 100:.0f}% other)"] if noisy(cpu, max_other_load) else []


def best_of(measure: Callable[[], object], *, args, budget: ExtraTime, level_cost: float, label: str):
    """Measures a level; when someone else's load disturbed it (result.cpu['other_share'] above
    --max-other-load) and the budget allows, measures it again and keeps the least disturbed."""
    best = None
    for attempt in range(args.retries + 1):
        res = measure()
        if best is None or res.cpu["other_share"] < best.cpu["other_share"]:
            best = res
        if not noisy(res.cpu, args.max_other_load) or attempt == args.retries or budget.left < level_cost:
            break
        budget.spend(level_cost)
        log(f"{label}: someone else's load disturbed this level; measuring it again")
    return best


class PgActivitySampler:
    """Samples pg_stat_activity of the bench database every `interval` s through one persistent
    psql (no process start per sample): how many backends were waiting for a lock (a row lock on
    a hot row shows up as wait_event_type 'Lock', event 'transactionid' or 'tuple'), how many
    were running a statement, and how many sat idle inside a transaction (waiting for the client,
    e.g. for Python between two statements while holding the row lock)."""

    QUERY = (
        "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), count(*) FILTER (WHERE state = 'active'), "
        "count(*) FILTER (WHERE state = 'idle in transaction') FROM pg_stat_activity "
        "WHERE datname = '{db}' AND pid <> pg_backend_pid() AND backend_type = 'client backend';\n"
    )

    def __init__(self, db: str, interval: float = 0.05):
        self.query = self.QUERY.format(db=db)
        self.interval = interval
        self.samples: list[tuple[int, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.proc = subprocess.Popen(
            ["psql", "-X", "-At", "-q", "-d", db],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env=pg_env(),
        )

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.proc.stdin.write(self.query)
            self.proc.stdin.flush()
            line = self.proc.stdout.readline().strip()
            if line:
                self.samples.append(tuple(int(x) for x in line.split("|")))

    def start(self) -> PgActivitySampler:
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self.proc.stdin.close()
        self.proc.wait(timeout=5)
        n = len(self.samples) or 1
        return {
            "samples": len(self.samples),
            "lock_waiters": sum(s[0] for s in self.samples) / n,
            "share_with_waiters": sum(1 for s in self.samples if s[0]) / n,
            "active": sum(s[1] for s in self.samples) / n,
            "idle_in_tx": sum(s[2] for s in self.samples) / n,
        }

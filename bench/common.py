"""Helpers shared by the benchmarks in bench/ (each `*_bench.py` is a standalone script).

Postgres through psql/createdb/dropdb/pgbench (postgresql-client), the app through the project's
venv python (migrate, Django snippets, gunicorn), CPU accounting from /proc, waiting for an idle
machine (the host is shared with other engineers' test runs), a closed-loop HTTP load generator
(stdlib http.client, one forked process per client; loopback only) and the summary rows `bench/report.py` turns into
the one combined table `make bench` prints.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("BENCH_PG_PORT", "5432")
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
SECRET_KEY = "bench-only-secret-key-" + "x" * 32

# Databases a benchmark must never drop.
PROTECTED_DBS = {"postgres", "test", "test_test", "template0", "template1"}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Postgres helpers (psql / createdb / dropdb from postgresql-client)


def pg_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PGDATABASE", None)
    env.update(PGHOST=PG_HOST, PGPORT=PG_PORT, PGUSER=PG_USER)
    return env


def psql(db: str, sql: str, *, quiet: bool = True) -> str:
    cmd = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", db, "-At"]
    if quiet:
        cmd.append("-q")
    out = subprocess.run(cmd, input=sql, env=pg_env(), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"psql failed ({out.returncode}):\n{out.stderr}\n--- SQL ---\n{sql[:2000]}")
    return out.stdout.strip()


def database_url(db: str) -> str:
    return f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{db}"


def recreate_database(db: str) -> None:
    drop_database(db)
    subprocess.run(["createdb", db], env=pg_env(), check=True)


def drop_database(db: str) -> None:
    assert db not in PROTECTED_DBS, db
    subprocess.run(["dropdb", "--if-exists", "--force", db], env=pg_env(), check=True, capture_output=True)


def keep_or_drop(args: argparse.Namespace, tmp: str) -> None:
    """End of a run: the database kept (`--keep`) or dropped, the temporary folder removed."""
    if args.keep:
        log(f"kept database {args.db} ({database_url(args.db)})")
    else:
        drop_database(args.db)
    shutil.rmtree(tmp, ignore_errors=True)


def check_tools(*tools: str) -> bool:
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        log(f"not found: {', '.join(missing)} (apt-get install postgresql-client)")
    return not missing


def database_tools(*, skip_pgbench: bool) -> tuple[bool, str | None]:
    """psql, createdb, dropdb and, unless skipped, pgbench: (all found, pgbench's path)."""
    pgbench = None if skip_pgbench else find_pgbench()
    if not skip_pgbench and not pgbench:
        log("pgbench not found (apt-get install postgresql-client); use --skip-pgbench")
        return False, None
    return check_tools("psql", "createdb", "dropdb"), pgbench


def app_env(db: str, var_dir: str, *, redis_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of everything that runs app code (server, worker, Django snippets)."""
    env = dict(os.environ)
    for name in ("REDIS_URL", "DJANGO_SETTINGS_MODULE", "DEBUG", "BENCH_BASELINE_VIEW", "ALIPAY_GATEWAY_URL"):
        env.pop(name, None)
    env.update(
        DJANGO_SETTINGS_MODULE="core.settings",
        DATABASE_URL=database_url(db),
        SECRET_KEY=SECRET_KEY,
        ALIPAY_DEV_GATEWAY="1",
        DEBUG="0",
        JWT_ACCESS_TTL_SECONDS="7200",  # the default 15 minutes could run out during a long run
        LOG_LEVEL="WARNING",
        VAR_DIR=var_dir,
        PYTHONUNBUFFERED="1",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra)
    return env


def migrate(python: str, env: dict[str, str], app_dir: Path) -> None:
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=app_dir, env=env, check=True)


def run_django(python: str, env: dict[str, str], app_dir: Path, code: str, **variables: str) -> str:
    """Runs `code` (after django.setup()) in the app's python; returns its stdout."""
    prelude = "import django\ndjango.setup()\n"
    out = subprocess.run(
        [python, "-c", prelude + code],
        cwd=app_dir,
        env={**env, **{f"BENCH_{k.upper()}": str(v) for k, v in variables.items()}},
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"Django snippet failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return out.stdout


MINT_TOKENS = """
import json, os
from core.auth import ACCESS, encode_token
from core.models import User
lo, hi = int(os.environ["BENCH_LO"]), int(os.environ["BENCH_HI"])
# encode_token only reads user.pk; the rows exist (seeded with these ids) for the server's lookup.
tokens = {uid: encode_token(user=User(pk=uid), token_type=ACCESS) for uid in range(lo, hi + 1)}
with open(os.environ["BENCH_PATH"], "w") as fh:
    json.dump(tokens, fh)
"""


def mint_tokens(python: str, env: dict[str, str], *, lo: int, hi: int, tmp: str, app_dir: Path) -> dict[int, str]:
    """One access token per user id lo..hi (same SECRET_KEY as the server)."""
    path = os.path.join(tmp, f"tokens-{lo}-{hi}.json")
    run_django(python, env, app_dir, MINT_TOKENS, lo=lo, hi=hi, path=path)
    with open(path) as fh:
        return {int(k): v for k, v in json.load(fh).items()}


# --------------------------------------------------------------------------------------------
# CPU accounting from /proc (Linux): where the cycles of one operation go.

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _read(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot."""
    parts = [int(x) for x in _read("/proc/stat").splitlines()[0].split()[1:9]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


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
            cmdline = _read(f"/proc/{pid}/cmdline").replace("\0", " ")
            if self.db_marker in cmdline + " ":
                return "pg"
            if "(" in cmdline or "autovacuum worker" in cmdline or "parallel worker" in cmdline:
                return "pg_other"  # a backend or worker of another database
            return "pg_aux"
        return None

    def _poll(self, initial: bool) -> None:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            stat = _read(f"/proc/{pid}/stat")
            if not stat:
                continue
            comm, rest = stat[stat.find("(") + 1 : stat.rfind(")")], stat[stat.rfind(")") + 2 :].split()
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


def other_db_activity(db: str) -> int:
    """Backends of other databases doing something right now (other people's test runs skew figures)."""
    out = psql(
        "postgres",
        f"SELECT count(*) FROM pg_stat_activity WHERE datname IS NOT NULL AND datname <> '{db}' "
        "AND state = 'active' AND pid <> pg_backend_pid();",
    )
    return int(out or 0)


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


def check_db_name(p: argparse.ArgumentParser, db: str) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", db) or db in PROTECTED_DBS:
        p.error("--db must be a plain lower-case name of a throw-away database")


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


# --------------------------------------------------------------------------------------------
# Processes: the app server (gunicorn) and other long-running app processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# The API server's layout, as `make run` starts it with Redis (Makefile WEB_WORKERS): sync workers,
# two per core. Checkout A/B runs picked it (BENCHMARKS.md "Checkout"): each worker serves one
# request at a time, so requests wait their turn in the listen queue instead of time-slicing
# inside a worker, which keeps the tail short.
DEFAULT_WORKERS = 2 * (os.cpu_count() or 1)


def add_server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help=f"gunicorn workers (default {DEFAULT_WORKERS})")
    p.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker (default 1)")
    p.add_argument("--worker-class", default="sync", help="gunicorn worker class (default sync, as make run)")
    p.add_argument(
        "--access-log",
        action="store_true",
        help="also gunicorn's access log (make run has none: the app's JSON request log covers it)",
    )


def server_layout(args: argparse.Namespace) -> str:
    return f"gunicorn {args.worker_class} {args.workers} workers x {args.threads} threads"


def start_api_server(args: argparse.Namespace, env: dict[str, str], *, port: int):
    """start_server with the layout add_server_args parsed (and the common --python, --app-dir)."""
    return start_server(
        args.python,
        env,
        app_dir=args.app_dir,
        port=port,
        workers=args.workers,
        threads=args.threads,
        worker_class=args.worker_class,
        access_log=args.access_log,
    )


def start_server(
    python: str,
    env: dict[str, str],
    *,
    app_dir: Path,
    port: int,
    workers: int,
    threads: int,
    worker_class: str = "sync",
    access_log: bool = False,
):
    """gunicorn core.wsgi:application as `make run` starts it (layout from the arguments), in a
    session of its own; returns once /api/v1/health answers 200."""
    cmd = [
        python,
        "-m",
        "gunicorn",
        "core.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--worker-class",
        worker_class,
        "--keep-alive",
        "30",
        "--backlog",
        "512",
        "--log-level",
        "warning",
    ]
    if access_log:
        cmd += ["--access-logfile", "-"]

    def healthy() -> bool:
        try:
            status, body = http_get(port, "/api/v1/health")
        except OSError:
            return False
        if status == 200:
            log(f"server healthy: {body.decode()}")
        return status == 200

    # The app logs one JSON line per request: to a file, not the terminal.
    log_path = os.path.join(env["VAR_DIR"], "server.log")
    return spawn_until_ready(cmd, app_dir=app_dir, env=env, log_path=log_path, what="server", ready=healthy)


def spawn_until_ready(
    cmd: list[str],
    *,
    app_dir: Path,
    env: dict[str, str],
    log_path: str,
    what: str,
    ready: Callable[[], bool],
    stop: Callable[[subprocess.Popen], None] | None = None,
    timeout: float = 60,
) -> subprocess.Popen:
    """Starts `cmd` in a session of its own (so stopping it stops only what we started), its output
    appended to `log_path`; returns it once ready() says so. Raises when it exits first, or, after
    stop(proc) (default stop_process), when it is not ready within `timeout` s."""
    log(f"{what}: " + " ".join(cmd[1:]) + f" (output in {log_path})")
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=app_dir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{_read(log_path)[-3000:]}")
        if ready():
            return proc
        time.sleep(0.2)
    (stop or stop_process)(proc)
    raise RuntimeError(f"{what} not ready within {timeout:.0f} s")


def stop_process(proc, timeout: float = 20) -> None:
    """SIGTERM to the process group of a process we started with start_new_session (only ours)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


stop_server = stop_process


# --------------------------------------------------------------------------------------------
# The HTTP load generator (closed loop: each client sends its next request when the last returns)


@dataclass
class LevelResult:
    clients: int
    ok: int = 0
    elapsed: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    exhausted: bool = False
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies_ms, 99)

    def as_dict(self) -> dict:
        return {
            "clients": self.clients,
            "ok": self.ok,
            "elapsed": self.elapsed,
            "rate": self.rate,
            "p50_ms": self.p50,
            "p99_ms": self.p99,
            "errors": self.errors,
            "exhausted": self.exhausted,
            "cpu": self.cpu,
        }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)  # nearest-rank percentile
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100.0 * len(ordered)) - 1))
    return ordered[k]


# A request: (method, path, body or None, headers); None from the factory = nothing left to send.
Request = tuple[str, str, "bytes | str | None", dict[str, str]]


# The load generator's clients are processes, not threads: with threads, the client's own GIL
# hand-offs between 8-32 threads added tens of ms to the tail latency it measured (BENCHMARKS.md
# "How figures are taken"). pgbench, the baseline, is C and has no such cost either.
_FORK = multiprocessing.get_context("fork")


def drive(
    *, port: int, clients: int, seconds: float, next_request: Callable[[int], Request | None], ok_status: int = 200
) -> LevelResult:
    """`clients` processes (forked, so `next_request` may be a closure), one keep-alive connection
    each, send `next_request(i)` back to back for `seconds`; answers with `ok_status` count (and
    their latencies), others are tallied by status and error code."""
    result = LevelResult(clients=clients)
    stop = _FORK.Event()
    start_gate = _FORK.Barrier(clients + 1)
    outcomes = _FORK.SimpleQueue()

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        lat: list[float] = []
        errors: dict[str, int] = {}
        ok = 0
        exhausted = False
        start_gate.wait()
        while not stop.is_set():
            req = next_request(index)
            if req is None:
                exhausted = True
                stop.set()
                break
            method, path, body, headers = req
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                key = f"transport:{type(exc).__name__}"
                errors[key] = errors.get(key, 0) + 1
                continue
            dt = (time.perf_counter() - t0) * 1000.0
            if status == ok_status:
                ok += 1
                lat.append(dt)
            else:
                try:
                    code = json.loads(payload).get("code", "?")
                except (ValueError, AttributeError):
                    code = "?"
                key = f"{status}:{code}"
                errors[key] = errors.get(key, 0) + 1
        conn.close()
        outcomes.put((ok, lat, errors, exhausted))

    def run(index: int) -> None:
        try:
            worker(index)
        finally:
            os._exit(0)  # skip the parent's atexit handlers and threads in the forked child

    procs = [_FORK.Process(target=run, args=(i,), daemon=True) for i in range(clients)]
    for proc in procs:
        proc.start()
    start_gate.wait()
    t0 = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for _ in procs:
        ok, lat, errors, exhausted = outcomes.get()
        result.ok += ok
        result.latencies_ms.extend(lat)
        result.exhausted = result.exhausted or exhausted
        for k, v in errors.items():
            result.errors[k] = result.errors.get(k, 0) + v
    for proc in procs:
        proc.join()
    result.elapsed = time.perf_counter() - t0
    return result


class UserPool:
    """Users handed out once each, in order (for requests that consume something per user)."""

    def __init__(self, tokens: dict[int, str]):
        self._items = sorted(tokens.items())
        self._next = _FORK.Value("q", 0)  # shared with the load generator's forked clients

    def reset(self) -> None:
        with self._next.get_lock():
            self._next.value = 0

    def take(self) -> tuple[int, str] | None:
        with self._next.get_lock():
            if self._next.value >= len(self._items):
                return None
            item = self._items[self._next.value]
            self._next.value += 1
            return item

    @property
    def used(self) -> int:
        return self._next.value

    def mark_used(self, count: int) -> None:
        """For a load generator that takes users itself (wrk): the first `count` are gone."""
        with self._next.get_lock():
            self._next.value = max(self._next.value, count)

    def write(self, path: str) -> None:
        """The pool as "<user id> <token>" lines, in the order take() hands them out."""
        with open(path, "w") as fh:
            fh.writelines(f"{uid} {token}\n" for uid, token in self._items)


# --------------------------------------------------------------------------------------------
# pgbench


@dataclass
class PgbenchResult:
    clients: int
    tps: float = 0.0
    transactions: int = 0
    failed: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    exhausted: bool = False
    cpu: dict[str, float] = field(default_factory=dict)


def find_pgbench() -> str | None:
    found = shutil.which("pgbench")
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True):
        return str(candidate)
    return None


def run_pgbench(
    pgbench: str,
    db: str,
    *,
    script: Path,
    clients: int,
    seconds: float,
    tmp: str,
    defines: dict[str, object] | None = None,
    protocol: str = "simple",
    client_pids: set[int] | None = None,
) -> PgbenchResult:
    """pgbench -f script for `seconds` at `clients`; tps, latency percentiles from its per-
    transaction log, and CPU per transaction (pgbench itself measured exactly via getrusage)."""
    log_dir = tempfile.mkdtemp(prefix=f"pgbench-c{clients}-", dir=tmp)
    cmd = [
        pgbench,
        "-n",  # no vacuum of pgbench's own tables (we have none)
        "-M",
        protocol,  # Django (psycopg 3, client-side binding) sends literal SQL, parsed every time
        "-c",
        str(clients),
        "-j",
        str(min(2, clients)),
        "-T",
        str(int(seconds)),
    ]
    for name, value in (defines or {}).items():
        cmd += ["-D", f"{name}={value}"]
    cmd += ["-f", str(script), "-l", "--log-prefix", os.path.join(log_dir, "tx"), db]
    log("pgbench: " + " ".join(cmd[1:]))
    sampler = CpuSampler(db=db, server_pid=None, client_pids=client_pids or set()).start()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, env=pg_env(), capture_output=True, text=True)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # pgbench itself (the load generator) is the only child that ran in between: exact figure.
    pgbench_ticks = int((ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) * CLK_TCK)
    ticks = sampler.stop(extra_client_ticks=pgbench_ticks)
    out, err = proc.stdout, proc.stderr
    if proc.returncode not in (0, 2):  # pgbench 15 exits 2 when some clients aborted
        raise RuntimeError(f"pgbench failed ({proc.returncode}):\n{out}\n{err}")
    res = PgbenchResult(clients=clients)
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    res.tps = float(m.group(1)) if m else 0.0
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    res.transactions = int(m.group(1)) if m else 0
    m = re.search(r"number of failed transactions: (\d+)", out)
    res.failed = int(m.group(1)) if m else 0
    if "aborted" in err or proc.returncode == 2:
        log("pgbench stderr:\n" + err[-2000:])
        res.failed = max(res.failed, 1)
    latencies = []
    for name in os.listdir(log_dir):
        with open(os.path.join(log_dir, name)) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3:
                    latencies.append(int(parts[2]) / 1000.0)  # microseconds -> ms
    res.p50_ms = percentile(latencies, 50)
    res.p99_ms = percentile(latencies, 99)
    res.cpu = cpu_per_op(ticks, res.transactions)
    return res


# --------------------------------------------------------------------------------------------
# Reporting


def fmt(x: float, digits: int = 1) -> str:
    return "n/a" if x is None or x != x else f"{x:.{digits}f}"


def pct(x: float) -> str:
    return "n/a" if x is None or x != x else f"{x * 100:.0f}%"


def machine_info() -> dict[str, str]:
    """What the figures were taken on (for BENCHMARKS.md and the JSON results)."""
    info = {"nproc": str(os.cpu_count()), "kernel": platform.release(), "python": platform.python_version()}
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            info["memory"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            info["cpu"] = line.split(":", 1)[1].strip()
            break
    try:
        info["postgres"] = psql("postgres", "SHOW server_version;")
    except (RuntimeError, OSError):
        pass
    if shutil.which("redis-cli"):
        out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "INFO", "server"], capture_output=True, text=True)
        m = re.search(r"redis_version:(\S+)", out.stdout)
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


def write_summary(path: str | None, bench: str, rows: list[dict], **meta) -> None:
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        json.dump({"bench": bench, "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows, **meta}, fh, indent=2)

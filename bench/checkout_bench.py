#!/usr/bin/env python3
"""Checkout throughput: POST /api/v1/orders through gunicorn vs. the same SQL through pgbench.

One run does everything (see BENCHMARKS.md for figures and analysis):

1. drops and recreates a dedicated database (default `bench_checkout`) and migrates it;
2. seeds two disjoint pools of users with plain SQL (fast): each user has a cart of `--items`
   selected courses, one unused fixed coupon (threshold 0, 5.00 off), a points account of
   1,000,000 points and the matching `grant` ledger entry (balance == sum of the ledger), and
   one earlier cancelled order for the same courses (so the planner has real statistics).
   User ids are explicit, and each user's user-coupon and points-account ids equal the user id,
   so a client (and pgbench) knows them without asking. Every order consumes a user (cart,
   coupon); a level takes users in order and the pool is restored before the next level;
3. mints one JWT access token per API user with `core.auth.encode_token` (same SECRET_KEY as
   the server);
4. starts gunicorn (`core.wsgi:application`, gthread) against that database and waits for
   /api/v1/health;
5. for each client count (default 1, 8, 32): restores the API pool (cart rows back, coupons
   unused, earlier orders cancelled; outside the timed window), warms up, then drives
   `POST /api/v1/orders` for `--duration` seconds, every request a different user and a new
   Idempotency-Key; only 201 counts as success;
6. stops gunicorn and runs pgbench with `bench/checkout.pgbench.sql` (the same statements the
   checkout sends, in the same transaction shape) at the same client counts, on its own pool
   of users, restored the same way before each level;
7. prints the table (API orders/s, p50, p99, pgbench tps, API/pgbench) plus CPU use per order
   (from /proc: gunicorn, Postgres, load generator, everything else), then stops the server
   and drops the database (unless `--keep`).

The host is shared: before each level the run waits (briefly) for an idle machine, and a level
during which other processes took more than `--max-other-load` % of the CPU is measured again
(within `--extra-time` seconds for the whole run); such figures are flagged in the table.

Plain Python 3.11 stdlib only (http.client + threads). Run it with the project's venv python
(`make bench`, or `.venv/bin/python bench/checkout_bench.py --help`). Loopback traffic only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
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
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
PGBENCH_SCRIPT = BENCH_DIR / "checkout.pgbench.sql"

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("BENCH_PG_PORT", "5432")
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")

# Explicit, disjoint id ranges for the two pools (user id == user coupon id == points account id).
API_UID_BASE = 1_000_000  # API users are API_UID_BASE + 1 ... API_UID_BASE + api_users
PGB_UID_BASE = 5_000_000  # pgbench users are PGB_UID_BASE + 1 ...
COUPON_ID = 1
COUPON_OFF = "5.00"
POINTS_GRANT = 1_000_000
POINTS_PER_ORDER = 10
SECRET_KEY = "bench-only-secret-key-" + "x" * 32
PGBENCH_SEQ = "bench_pgbench_next_user"
PGBENCH_SEQ_START = 10**12


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
    subprocess.run(["dropdb", "--if-exists", "--force", db], env=pg_env(), check=True, capture_output=True)


def app_env(db: str, var_dir: str) -> dict[str, str]:
    """The environment both the server and the token minting see."""
    env = dict(os.environ)
    for name in ("REDIS_URL", "DJANGO_SETTINGS_MODULE", "DEBUG"):
        env.pop(name, None)
    env.update(
        DJANGO_SETTINGS_MODULE="core.settings",
        DATABASE_URL=database_url(db),
        SECRET_KEY=SECRET_KEY,
        DEBUG="0",
        JWT_ACCESS_TTL_SECONDS="7200",  # the default 15 minutes could run out during a long run
        LOG_LEVEL="WARNING",
        VAR_DIR=var_dir,
        PYTHONUNBUFFERED="1",
    )
    return env


def migrate(python: str, env: dict[str, str], app_dir: Path) -> None:
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=app_dir, env=env, check=True)


# --------------------------------------------------------------------------------------------
# Seeding (plain SQL: tens of thousands of users in a few seconds)


def seed_catalogue(db: str, *, courses: int, coupon_quantity: int) -> None:
    psql(
        db,
        f"""
        BEGIN;
        INSERT INTO core_course (name, description, picture_url, price, is_active, created_at)
        SELECT 'Bench course ' || g, 'Seeded by bench/checkout_bench.py',
               'https://example.invalid/courses/' || g || '.png', (50 + g)::numeric(10, 2), true, now()
        FROM generate_series(1, {courses}) g;
        INSERT INTO billing_coupon (id, name, kind, threshold, amount_off, percent_off, starts_at, ends_at,
                                    total_quantity, issued_count, created_at)
        VALUES ({COUPON_ID}, 'Bench {COUPON_OFF} off', 'fixed', 0, {COUPON_OFF}, NULL, now() - interval '1 day',
                now() + interval '30 days', {coupon_quantity}, {coupon_quantity}, now());
        SELECT setval(pg_get_serial_sequence('billing_coupon', 'id'), {COUPON_ID});
        COMMIT;
        """,
    )


def seed_users(db: str, *, lo: int, hi: int, items: int) -> None:
    """Users lo..hi (inclusive), each with `items` selected cart rows, a coupon and points."""
    psql(
        db,
        f"""
        BEGIN;
        INSERT INTO core_user (id, password, last_login, is_superuser, username, first_name, last_name, email,
                               is_staff, is_active, date_joined)
        SELECT g, '!bench', NULL, false, 'bench' || g, '', '', '', false, true, now()
        FROM generate_series({lo}, {hi}) g;
        INSERT INTO orders_cartitem (selected, created_at, course_id, user_id)
        SELECT true, now(), c.id, g
        FROM generate_series({lo}, {hi}) g CROSS JOIN (SELECT id FROM core_course ORDER BY id LIMIT {items}) c
        ORDER BY g, c.id;
        INSERT INTO billing_usercoupon (id, name, kind, threshold, amount_off, percent_off, starts_at, ends_at,
                                        status, claimed_at, coupon_id, order_id, user_id)
        SELECT g, c.name, c.kind, c.threshold, c.amount_off, c.percent_off, c.starts_at, c.ends_at,
               'unused', now(), c.id, NULL, g
        FROM generate_series({lo}, {hi}) g CROSS JOIN billing_coupon c WHERE c.id = {COUPON_ID};
        INSERT INTO billing_pointsaccount (id, balance, user_id)
        SELECT g, {POINTS_GRANT}, g FROM generate_series({lo}, {hi}) g;
        INSERT INTO billing_pointsentry (delta, balance_after, reason, created_at, account_id, order_id)
        SELECT {POINTS_GRANT}, {POINTS_GRANT}, 'grant', now(), g, NULL FROM generate_series({lo}, {hi}) g;
        -- Order history: one earlier, cancelled order per user for the same courses, so the
        -- planner has real statistics for orders_order / orders_orderline from the first level.
        INSERT INTO orders_order (order_no, user_id, status, pay_type, subtotal, coupon_discount, points_used,
                                  points_discount, pay_amount, user_coupon_id, idempotency_key, request_fingerprint,
                                  expires_at, paid_at, cancelled_at, cancel_reason, refunded_at, trade_no, created_at)
        SELECT 'H' || g, g, 'cancelled', 'alipay', t.total, 0, 0, 0, t.total, NULL, 'history-' || g, '',
               now() - interval '47 hours 30 minutes', NULL, now() - interval '47 hours 30 minutes',
               'expired', NULL, '', now() - interval '2 days'
        FROM generate_series({lo}, {hi}) g
        CROSS JOIN (SELECT sum(price) AS total FROM (SELECT price FROM core_course ORDER BY id LIMIT {items}) x) t;
        INSERT INTO orders_orderline (order_id, course_id, name, picture_url, price)
        SELECT o.id, c.id, c.name, c.picture_url, c.price
        FROM orders_order o CROSS JOIN (SELECT * FROM core_course ORDER BY id LIMIT {items}) c
        WHERE o.user_id BETWEEN {lo} AND {hi} AND o.order_no = 'H' || o.user_id
        ORDER BY o.id, c.id;
        COMMIT;
        """,
    )


def finish_seeding(db: str) -> None:
    psql(
        db,
        """
        SELECT setval(pg_get_serial_sequence('core_user', 'id'), (SELECT max(id) FROM core_user));
        SELECT setval(pg_get_serial_sequence('billing_usercoupon', 'id'), (SELECT max(id) FROM billing_usercoupon));
        SELECT setval(pg_get_serial_sequence('billing_pointsaccount', 'id'),
                      (SELECT max(id) FROM billing_pointsaccount));
        """,
    )
    psql(db, "VACUUM ANALYZE;")


def restore_pool(db: str, *, lo: int, hi: int, items: int) -> None:
    """Makes every user in lo..hi able to check out again (outside any timed window): earlier
    pending orders become cancelled (so `already_purchased` does not fire), coupons go back to
    unused, consumed cart rows come back. Points are not refunded: the grant is large enough."""
    psql(
        db,
        f"""
        BEGIN;
        UPDATE orders_order SET status = 'cancelled', cancelled_at = now(), cancel_reason = 'bench'
        WHERE status = 'pending' AND user_id BETWEEN {lo} AND {hi};
        UPDATE billing_usercoupon SET status = 'unused', order_id = NULL
        WHERE status <> 'unused' AND user_id BETWEEN {lo} AND {hi};
        INSERT INTO orders_cartitem (selected, created_at, course_id, user_id)
        SELECT true, now(), c.id, g
        FROM generate_series({lo}, {hi}) g CROSS JOIN (SELECT id FROM core_course ORDER BY id LIMIT {items}) c
        ORDER BY g, c.id
        ON CONFLICT (user_id, course_id) DO NOTHING;
        COMMIT;
        """,
    )
    # Same starting state for every level: fresh planner statistics (a table that grew since its
    # last ANALYZE can get a very bad plan, see BENCHMARKS.md), no dead rows left from the
    # previous level, no checkpoint due in the middle of the timed window.
    psql(db, "VACUUM ANALYZE; CHECKPOINT;")


MINT_TOKENS = """
import json, os, sys
import django
django.setup()
from core.auth import ACCESS, encode_token
from core.models import User
lo, hi = int(os.environ["BENCH_LO"]), int(os.environ["BENCH_HI"])
# encode_token only reads user.pk; the rows exist (seeded with these ids) for the server's lookup.
tokens = {uid: encode_token(user=User(pk=uid), token_type=ACCESS) for uid in range(lo, hi + 1)}
with open(os.environ["BENCH_TOKENS"], "w") as fh:
    json.dump(tokens, fh)
"""


def mint_tokens(python: str, env: dict[str, str], *, lo: int, hi: int, tmp: str, app_dir: Path) -> dict[int, str]:
    path = os.path.join(tmp, "tokens.json")
    subprocess.run(
        [python, "-c", MINT_TOKENS],
        cwd=app_dir,
        env={**env, "BENCH_LO": str(lo), "BENCH_HI": str(hi), "BENCH_TOKENS": path},
        check=True,
    )
    with open(path) as fh:
        return {int(k): v for k, v in json.load(fh).items()}


# --------------------------------------------------------------------------------------------
# CPU accounting from /proc (Linux): where the cycles of one order go.

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _read(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _machine_ticks() -> tuple[int, int]:
    parts = [int(x) for x in _read("/proc/stat").splitlines()[0].split()[1:9]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


class CpuSampler:
    """Polls /proc every `interval` s and charges each process's CPU (utime + stime) to a class:
    server (the gunicorn tree), client (the load generator), pg (backends and autovacuum of the
    bench database), pg_aux (WAL writer, checkpointer, background writer...: shared, mostly ours),
    pg_other (other databases' backends). What is left of the machine's busy time is `other`
    (other people's test runs, this sampler...). Polling, rather than two snapshots, keeps the
    ticks of processes that exit inside the window (pgbench's backends at its end); at most one
    interval of their CPU is lost."""

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

    def _classify(self, pid: int, comm: str, ppid: int) -> str | None:
        if pid in self.client_pids:
            return "client"
        if self.server_pid and (pid == self.server_pid or ppid == self.server_pid):
            return "server"
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
                kind = self._classify(pid, comm, int(rest[1]))
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
        self.machine0 = _machine_ticks()
        self._poll(initial=True)
        self._thread.start()
        return self

    def stop(self, extra_client_ticks: int = 0) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self._poll(initial=False)
        busy1, total1 = _machine_ticks()
        busy = busy1 - self.machine0[0]
        wall = max(1, total1 - self.machine0[1])
        out = {"server": 0, "client": extra_client_ticks, "pg": 0, "pg_aux": 0, "pg_other": 0}
        for pid, kind in self.kind.items():
            out[kind] += self.last[pid] - self.first[pid]
        out["other"] = max(0, busy - sum(out.values()))
        out["busy"] = busy
        out["wall"] = wall
        return out


class ExtraTime:
    """The time a run may spend beyond its levels: waiting for other people's load to pass and
    re-measuring disturbed levels. Keeps one run bounded on a shared machine."""

    def __init__(self, seconds: float):
        self.left = seconds

    def spend(self, seconds: float) -> None:
        self.left = max(0.0, self.left - seconds)


def wait_for_quiet(budget: ExtraTime, max_wait: float, threshold: float = 0.25) -> None:
    """Waits (up to max_wait s, within the budget) until the machine is mostly idle: other
    people's test runs on this host would otherwise take CPU from the level being measured."""
    started = time.monotonic()
    limit = min(max_wait, budget.left)
    while True:
        b0, t0 = _machine_ticks()
        time.sleep(1.0)
        b1, t1 = _machine_ticks()
        share = (b1 - b0) / max(1, t1 - t0)
        waited = time.monotonic() - started
        if share <= threshold or waited >= limit:
            budget.spend(max(0.0, waited - 1.0))
            if share > threshold:
                log(f"WARNING: machine still {share * 100:.0f}% busy (not us); measuring anyway")
            return
        log(f"machine {share * 100:.0f}% busy (someone else's load); waiting for it to settle")


def noisy(cpu: dict[str, float], args) -> bool:
    return cpu.get("other_share", 0.0) > args.max_other_load / 100.0


def cpu_per_order(ticks: dict[str, float], orders: int) -> dict[str, float]:
    """ms of CPU per order for each class, and shares of the whole machine."""
    per = {
        k: (ticks[k] * 1000.0 / CLK_TCK / orders if orders else float("nan"))
        for k in ("server", "client", "pg", "pg_aux", "pg_other", "other")
    }
    per["machine_busy"] = ticks["busy"] / ticks["wall"]
    per["other_share"] = (ticks["other"] + ticks["pg_other"]) / ticks["wall"]
    return per


def other_db_activity(db: str) -> int:
    """Backends of other databases doing something right now (other people's test runs skew figures)."""
    out = psql(
        "postgres",
        f"SELECT count(*) FROM pg_stat_activity WHERE datname IS NOT NULL AND datname <> '{db}' "
        "AND state = 'active' AND pid <> pg_backend_pid();",
    )
    return int(out or 0)


# --------------------------------------------------------------------------------------------
# The app server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    python: str,
    env: dict[str, str],
    *,
    app_dir: Path,
    port: int,
    workers: int,
    threads: int,
    worker_class: str,
    access_log: bool,
):
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
    log_path = os.path.join(env["VAR_DIR"], "server.log")
    log("server: " + " ".join(cmd[1:]) + f" (output in {log_path})")
    # The app logs one JSON line per request: to a file, not the terminal.
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=app_dir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}:\n{_read(log_path)[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/health")
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            if resp.status == 200:
                log(f"server healthy: {body.decode()}")
                return proc
        except OSError:
            pass
        time.sleep(0.25)
    stop_server(proc)
    raise RuntimeError("server did not become healthy within 60 s")


def stop_server(proc) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)  # its own session: gunicorn master + workers only
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# --------------------------------------------------------------------------------------------
# The HTTP load generator


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


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)  # nearest-rank percentile
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100.0 * len(ordered)) - 1))
    return ordered[k]


class UserPool:
    def __init__(self, tokens: dict[int, str]):
        self._items = sorted(tokens.items())
        self._next = 0
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._next = 0

    def take(self) -> tuple[int, str] | None:
        with self._lock:
            if self._next >= len(self._items):
                return None
            item = self._items[self._next]
            self._next += 1
            return item

    @property
    def used(self) -> int:
        return self._next


def drive(*, port: int, pool: UserPool, clients: int, seconds: float) -> LevelResult:
    result = LevelResult(clients=clients)
    stop = threading.Event()
    start_gate = threading.Barrier(clients + 1)
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        lat: list[float] = []
        errors: dict[str, int] = {}
        ok = 0
        start_gate.wait()
        while not stop.is_set():
            taken = pool.take()
            if taken is None:
                result.exhausted = True
                stop.set()
                break
            uid, token = taken
            body = json.dumps({"pay_type": "alipay", "user_coupon_id": uid, "points": POINTS_PER_ORDER})
            headers = {
                "Authorization": f"Bearer {token}",
                "Idempotency-Key": uuid.uuid4().hex,
                "Content-Type": "application/json",
            }
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/orders", body=body, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                errors[f"transport:{type(exc).__name__}"] = errors.get(f"transport:{type(exc).__name__}", 0) + 1
                continue
            dt = (time.perf_counter() - t0) * 1000.0
            if status == 201:
                ok += 1
                lat.append(dt)
            else:
                try:
                    code = json.loads(payload).get("code", "?")
                except ValueError:
                    code = "?"
                key = f"{status}:{code}"
                errors[key] = errors.get(key, 0) + 1
        conn.close()
        with lock:
            result.ok += ok
            result.latencies_ms.extend(lat)
            for k, v in errors.items():
                result.errors[k] = result.errors.get(k, 0) + v

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    start_gate.wait()
    t0 = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join()
    result.elapsed = time.perf_counter() - t0
    return result


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
    pgbench: str, db: str, *, clients: int, seconds: int, pool_lo: int, pool_size: int, tmp: str
) -> PgbenchResult:
    # One sequence for the whole run (order_no and Idempotency-Key are built from its values, so
    # they must never repeat); values start at 10**12 so those strings are fixed-width.
    psql(db, f"CREATE SEQUENCE IF NOT EXISTS {PGBENCH_SEQ} START {PGBENCH_SEQ_START};")
    offset = int(psql(db, f"SELECT nextval('{PGBENCH_SEQ}');"))
    log_dir = tempfile.mkdtemp(prefix=f"pgbench-c{clients}-", dir=tmp)
    cmd = [
        pgbench,
        "-n",  # no vacuum of pgbench's own tables (we have none)
        "-M",
        "simple",  # Django (psycopg 3, client-side binding) sends literal SQL, parsed every time
        "-c",
        str(clients),
        "-j",
        str(min(2, clients)),
        "-T",
        str(seconds),
        "-D",
        f"first_uid={pool_lo}",
        "-D",
        f"seq_offset={offset}",
        "-f",
        str(PGBENCH_SCRIPT),
        "-l",
        "--log-prefix",
        os.path.join(log_dir, "tx"),
        db,
    ]
    log("pgbench: " + " ".join(cmd[1:]))
    sampler = CpuSampler(db=db, server_pid=None, client_pids=set()).start()
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
    used = int(psql(db, f"SELECT last_value FROM {PGBENCH_SEQ};")) - offset
    res.exhausted = used > pool_size
    res.cpu = cpu_per_order(ticks, res.transactions)
    return res


# --------------------------------------------------------------------------------------------


def fmt(x: float, digits: int = 1) -> str:
    return "n/a" if x != x else f"{x:.{digits}f}"


def print_report(args, api: list[LevelResult], pgb: dict[int, PgbenchResult], setup: str) -> None:
    lines = []
    lines.append(f"Checkout benchmark: {args.items} item(s) per order, {args.duration}s per level, {setup}")
    lines.append("")
    header = (
        "| clients | API orders/s | p50 ms | p99 ms | pgbench tps | pgbench p50 ms | pgbench p99 ms | API/pgbench |"
    )
    lines.append(header)
    lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    by_clients = {r.clients: r for r in api}
    for c in args.clients:
        a, p = by_clients.get(c), pgb.get(c)
        rate = a.rate if a else float("nan")
        tps = p.tps if p else float("nan")
        ratio = f"{rate / tps * 100:.0f}%" if a and p and tps else "n/a"
        flag_a = "*" if a and (a.exhausted or a.errors or noisy(a.cpu, args)) else ""
        flag_p = "*" if p and (p.exhausted or p.failed or noisy(p.cpu, args)) else ""
        lines.append(
            f"| {c} | {fmt(rate)}{flag_a} | {fmt(percentile(a.latencies_ms, 50)) if a else 'n/a'} "
            f"| {fmt(percentile(a.latencies_ms, 99)) if a else 'n/a'} | {fmt(tps)}{flag_p} "
            f"| {fmt(p.p50_ms, 2) if p else 'n/a'} | {fmt(p.p99_ms, 2) if p else 'n/a'} | {ratio} |"
        )
    lines.append("")
    lines.append("CPU per order in ms (from /proc): server = gunicorn, pg = backends of the bench database,")
    lines.append("pg aux = WAL writer/checkpointer/etc., client = load generator; other load = share of the")
    lines.append("machine used by everything else (other databases, other people's test runs) during the level.")
    lines.append("")
    lines.append("| clients | run | server | pg | pg aux | client | machine busy | other load |")
    lines.append("|---:|---|---:|---:|---:|---:|---:|---:|")
    for c in args.clients:
        for label, r in (("API", by_clients.get(c)), ("pgbench", pgb.get(c))):
            if r and r.cpu:
                cpu = r.cpu
                lines.append(
                    f"| {c} | {label} | {fmt(cpu['server'], 2)} | {fmt(cpu['pg'], 2)} | {fmt(cpu['pg_aux'], 2)} "
                    f"| {fmt(cpu['client'], 2)} | {cpu['machine_busy'] * 100:.0f}% | {cpu['other_share'] * 100:.0f}% |"
                )
    notes = []
    for label, r in [("API", r) for r in api] + [("pgbench", p) for p in pgb.values()]:
        if r.cpu and noisy(r.cpu, args):
            notes.append(
                f"{label} c={r.clients}: other processes used {r.cpu['other_share'] * 100:.0f}% of the machine "
                "during the level even after retries: treat the figure as a lower bound"
            )
    for r in api:
        if r.errors:
            notes.append(f"API c={r.clients}: non-201 answers {r.errors} (not counted as orders)")
        if r.exhausted:
            notes.append(f"API c={r.clients}: user pool exhausted after {r.elapsed:.1f}s (raise --api-users)")
    for p in pgb.values():
        if p.failed:
            notes.append(f"pgbench c={p.clients}: {p.failed} failed transactions / aborted clients")
        if p.exhausted:
            notes.append(f"pgbench c={p.clients}: user pool exhausted (raise --pgbench-users); tps not comparable")
    if notes:
        lines.append("")
        lines.extend("* " + n for n in notes)
    lines.append("")
    c8a, c8p = by_clients.get(8), pgb.get(8)
    if c8a and c8p and c8p.tps:
        ratio = c8a.rate / c8p.tps
        p99 = percentile(c8a.latencies_ms, 99)
        lines.append(
            f"Targets at 8 clients: API >= 30% of SQL-only -> {ratio * 100:.0f}% "
            f"({'met' if ratio >= 0.30 else 'MISSED'}); p99 < 50 ms -> {fmt(p99)} ms "
            f"({'met' if p99 < 50 else 'MISSED'})"
        )
    print("\n".join(lines), flush=True)


def parse_args(argv: list[str] | None = None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--items", type=int, default=1, help="selected cart items per order (default 1)")
    p.add_argument("--clients", default="1,8,32", help="comma-separated concurrency levels (default 1,8,32)")
    p.add_argument("--duration", type=int, default=12, help="seconds per level, API and pgbench (default 12)")
    p.add_argument("--warmup", type=float, default=2.0, help="untimed seconds before each API level (default 2)")
    p.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4: two per core)")
    p.add_argument("--threads", type=int, default=2, help="gunicorn threads per worker (default 2)")
    p.add_argument("--worker-class", default="gthread", help="gunicorn worker class (default gthread, as make run)")
    p.add_argument("--api-users", type=int, default=8000, help="API users, reused each level (default 8000)")
    p.add_argument("--pgbench-users", type=int, default=25000, help="pgbench users, reused each level (default 25000)")
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
    p.add_argument("--db", default="bench_checkout", help="database to (re)create (default bench_checkout)")
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    p.add_argument("--skip-api", action="store_true")
    p.add_argument("--skip-pgbench", action="store_true")
    p.add_argument("--access-log", action="store_true", help="gunicorn access log to stdout, as `make run` does")
    p.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    p.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"), help="the project's python")
    p.add_argument(
        "--app-dir",
        type=Path,
        default=ROOT,
        help="project tree to serve and migrate (default: this checkout); e.g. a copy with a change to A/B",
    )
    args = p.parse_args(argv)
    args.clients = [int(c) for c in args.clients.split(",") if c.strip()]
    if args.items < 1:
        p.error("--items must be >= 1")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", args.db) or args.db in {"postgres", "test", "template0", "template1"}:
        p.error("--db must be a plain lower-case name of a throw-away database")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pgbench = None if args.skip_pgbench else find_pgbench()
    if not args.skip_pgbench and not pgbench:
        log("pgbench not found (apt-get install postgresql-client); use --skip-pgbench")
        return 2
    for tool in ("psql", "createdb", "dropdb"):
        if not shutil.which(tool):
            log(f"{tool} not found (postgresql-client)")
            return 2
    tmp = tempfile.mkdtemp(prefix="checkout-bench-")
    env = app_env(args.db, tmp)
    server = None
    api_results: list[LevelResult] = []
    pgb_results: dict[int, PgbenchResult] = {}
    courses = max(50, args.items)
    api_lo, api_hi = API_UID_BASE + 1, API_UID_BASE + args.api_users
    pgb_lo, pgb_hi = PGB_UID_BASE + 1, PGB_UID_BASE + args.pgbench_users
    budget = ExtraTime(args.extra_time)
    level_cost = args.duration + args.warmup + 3  # a re-measurement, restore included
    try:
        t0 = time.monotonic()
        log(f"recreating database {args.db} and migrating")
        recreate_database(args.db)
        migrate(args.python, env, args.app_dir)
        log(f"seeding {args.api_users} API users + {args.pgbench_users} pgbench users, {args.items} item(s) each")
        seed_catalogue(args.db, courses=courses, coupon_quantity=args.api_users + args.pgbench_users)
        if not args.skip_api:
            seed_users(args.db, lo=api_lo, hi=api_hi, items=args.items)
        if not args.skip_pgbench:
            seed_users(args.db, lo=pgb_lo, hi=pgb_hi, items=args.items)
        finish_seeding(args.db)
        log(f"seeded in {time.monotonic() - t0:.1f}s")
        busy = other_db_activity(args.db)
        if busy:
            log(f"WARNING: {busy} active backends in other databases: figures may be skewed")

        if not args.skip_api:
            tokens = mint_tokens(args.python, env, lo=api_lo, hi=api_hi, tmp=tmp, app_dir=args.app_dir)
            pool = UserPool(tokens)
            port = free_port()
            server = start_server(
                args.python,
                env,
                app_dir=args.app_dir,
                port=port,
                workers=args.workers,
                threads=args.threads,
                worker_class=args.worker_class,
                access_log=args.access_log,
            )
            for clients in args.clients:
                best = None  # of the attempts, the one least disturbed by other load
                for attempt in range(args.retries + 1):
                    restore_pool(args.db, lo=api_lo, hi=api_hi, items=args.items)
                    pool.reset()
                    wait_for_quiet(budget, args.max_wait)
                    if args.warmup > 0:
                        drive(port=port, pool=pool, clients=clients, seconds=args.warmup)
                    sampler = CpuSampler(db=args.db, server_pid=server.pid, client_pids={os.getpid()}).start()
                    res = drive(port=port, pool=pool, clients=clients, seconds=args.duration)
                    res.cpu = cpu_per_order(sampler.stop(), res.ok)
                    log(
                        f"API c={clients}: {res.ok} orders in {res.elapsed:.1f}s = {res.rate:.1f}/s, "
                        f"p50 {fmt(percentile(res.latencies_ms, 50))} ms, "
                        f"p99 {fmt(percentile(res.latencies_ms, 99))} ms, errors {res.errors or 'none'}, "
                        f"other load {res.cpu['other_share'] * 100:.0f}%"
                    )
                    if best is None or res.cpu["other_share"] < best.cpu["other_share"]:
                        best = res
                    if not noisy(res.cpu, args) or attempt == args.retries or budget.left < level_cost:
                        break
                    budget.spend(level_cost)
                    log("someone else's load disturbed this level; measuring it again")
                api_results.append(best)
            stop_server(server)
            server = None

        if not args.skip_pgbench:
            for clients in args.clients:
                best = None  # of the attempts, the one least disturbed by other load
                for attempt in range(args.retries + 1):
                    restore_pool(args.db, lo=pgb_lo, hi=pgb_hi, items=args.items)
                    wait_for_quiet(budget, args.max_wait)
                    res = run_pgbench(
                        pgbench,
                        args.db,
                        clients=clients,
                        seconds=args.duration,
                        pool_lo=pgb_lo,
                        pool_size=args.pgbench_users,
                        tmp=tmp,
                    )
                    log(
                        f"pgbench c={clients}: {res.tps:.1f} tps ({res.transactions} tx, {res.failed} failed), "
                        f"p50 {fmt(res.p50_ms, 2)} ms, p99 {fmt(res.p99_ms, 2)} ms, "
                        f"other load {res.cpu['other_share'] * 100:.0f}%"
                    )
                    if res.exhausted:
                        log(f"WARNING: pgbench used more than {args.pgbench_users} users; raise --pgbench-users")
                    if best is None or res.cpu["other_share"] < best.cpu["other_share"]:
                        best = res
                    if not noisy(res.cpu, args) or attempt == args.retries or budget.left < level_cost:
                        break
                    budget.spend(level_cost)
                    log("someone else's load disturbed this level; measuring it again")
                pgb_results[clients] = best

        setup = f"gunicorn {args.worker_class} {args.workers} workers x {args.threads} threads"
        print_report(args, api_results, pgb_results, setup)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(
                    {
                        "items": args.items,
                        "duration": args.duration,
                        "workers": args.workers,
                        "threads": args.threads,
                        "api": [
                            {
                                "clients": r.clients,
                                "orders": r.ok,
                                "elapsed": r.elapsed,
                                "rate": r.rate,
                                "p50_ms": percentile(r.latencies_ms, 50),
                                "p99_ms": percentile(r.latencies_ms, 99),
                                "errors": r.errors,
                                "exhausted": r.exhausted,
                                "cpu": r.cpu,
                            }
                            for r in api_results
                        ],
                        "pgbench": [vars(p) for p in pgb_results.values()],
                    },
                    fh,
                    indent=2,
                )
        failed = any(r.errors or r.exhausted for r in api_results) or any(
            p.failed or p.exhausted for p in pgb_results.values()
        )
        return 1 if failed else 0
    finally:
        stop_server(server)
        if args.keep:
            log(f"kept database {args.db} ({database_url(args.db)})")
        else:
            drop_database(args.db)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

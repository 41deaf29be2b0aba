"""The faults, one at a time under load: each kills or restarts a part of the stack, records when
it started and when the service was back (its window), and notes what it did."""

from __future__ import annotations

import os
import random
import re
import signal
import time
from dataclasses import dataclass, field

from common.server import health, stop_process, wait_for

from .stack import DRAMATIQ_NS, DrillRedis, Stack, db_connect, now


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
    conn = db_connect(stack.pg, args.db)
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
    old = stack.pg.pid()
    fault.start, fault.wall = now(), time.time()
    stack.pg.restart()
    took = now() - fault.start
    ok = wait_for(stack.pg.ready, 60, 0.1)
    ok = ok and wait_for(lambda: health(stack.port) == 200, 30, 0.1)
    fault.recovered = now()
    fault.notes.append(
        "restart of the drill's Postgres 18 (fast shutdown: sessions terminated; postmaster "
        f"{old} -> {stack.pg.pid()}) in {took:.1f}s" + ("" if ok else "; NOT healthy afterwards")
    )


@dataclass
class Delayed:
    """Where the delayed expiry messages are: waiting in Redis (no worker took them yet), held in
    memory by a live worker (its ack set), or stranded in the ack set of a dead worker (Redis
    hands those back only after the heartbeat timeout, and only on a "maintenance" roll)."""

    waiting: int = 0
    held: int = 0
    stranded: int = 0


def count_delayed(redis: DrillRedis, redis_db: int) -> Delayed:
    out = Delayed()
    waiting = redis.cli("llen", f"{DRAMATIQ_NS}:expiry.DQ", db=redis_db)
    out.waiting = int(waiting) if waiting and waiting.isdigit() else 0
    prefix = f"{DRAMATIQ_NS}:__acks__."
    keys = redis.cli("--scan", "--pattern", f"{prefix}*.expiry.DQ", db=redis_db) or ""
    live_since = int(time.time() * 1000) - 10_000
    for key in keys.split():
        worker_id = key[len(prefix) : -len(".expiry.DQ")]
        n = redis.cli("scard", key, db=redis_db)
        beat = redis.cli("zscore", f"{DRAMATIQ_NS}:__heartbeats__", worker_id, db=redis_db)
        live = bool(beat) and float(beat) >= live_since
        count = int(n) if n and n.isdigit() else 0
        if live:
            out.held += count
        else:
            out.stranded += count
    return out


def restart_redis(stack: Stack, fault: Fault, args) -> None:
    delayed = count_delayed(stack.redis, args.redis_db)
    fault.start, fault.wall = now(), time.time()
    down = stack.redis.shutdown_nosave()
    time.sleep(args.redis_down)  # the outage itself: how long Redis stays away, not a wait for an event
    up = stack.redis.start()
    fault.recovered = now()
    fault.notes.append(
        f"redis `shutdown nosave` (whole server, no persistence: every queued message lost), down "
        f"{fault.recovered - fault.start:.1f}s{'' if down and up else ' (stop/start NOT confirmed)'}; "
        f"at shutdown {delayed.held} delayed expiry messages were held by the worker, {delayed.waiting} waiting "
        "in Redis: all lost with it"
    )


def kill_dramatiq(stack: Stack, fault: Fault, args) -> None:
    delayed = count_delayed(stack.redis, args.redis_db)
    pids = stack.worker_pids()
    fault.start, fault.wall = now(), time.time()
    with stack.worker_cond:
        stack.worker_paused = True
    stop_process(stack.worker, signal.SIGKILL, timeout=10)
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
    delayed = count_delayed(stack.redis, args.redis_db)
    listing = stack.redis.cli("client", "list") or ""
    ids = [m.group(1) for m in re.finditer(rf"^id=(\d+) .* db={args.redis_db} ", listing, re.M)]
    fault.start, fault.wall = now(), time.time()
    # CLIENT KILL ID <id> answers the number of clients killed.
    killed = sum(1 for cid in ids if stack.redis.cli("client", "kill", "id", cid) in ("1", "OK"))
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

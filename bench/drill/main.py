"""The drill's command line and its run: servers, data, stack, load, each fault and its check,
the final wait and check, the report."""

from __future__ import annotations

import fcntl
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

from common.app import app_env, make_gateway_keys, migrate, mint_tokens
from common.cli import ROOT, parser
from common.db import check_db_name, recreate_database, use_server
from common.load import UserPool
from common.log import log, log_as
from common.server import DEFAULT_WORKERS, free_port

from . import __doc__ as DRILL_DOC
from .checks import CheckResult, expiry_lateness, run_checks, worker_log_findings
from .faults import FAULTS, Fault, count_delayed
from .flows import Client, Recorder
from .invariants import LIVENESS, UNSETTLED_SQL
from .report import print_checkpoint, print_report
from .seed import POINTS_PER_YUAN, seed
from .stack import DrillPostgres, DrillRedis, Stack, busy_processes, db_connect, now, wait_for_no_tests


def drill_env(args, port: int, gateway_port: int, redis: DrillRedis, var_dir: Path) -> dict[str, str]:
    """The app's environment on the drill's servers, with short timeouts so that orders expire and
    refunds are sent again during the run."""
    return app_env(
        args.db,
        str(var_dir),
        redis_url=f"redis://127.0.0.1:{redis.port}/{args.redis_db}",
        WECHATPAY_DEV_GATEWAY="1",
        # Buyers' refunds are approved at once, and one whose message was lost (a Redis restart) is
        # sent again by the sweeper after this long, as it would be after REFUND_RECHECK_SECONDS.
        REFUND_AUTO_APPROVE="1",
        REFUND_RECHECK_SECONDS=str(args.refund_recheck),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        # "Alipay" and "WeChat Pay" (the dev gateways) are a second gunicorn of the app, as the real
        # ones are other services: the API's workers never wait on a call to themselves.
        DEV_GATEWAY_BASE_URL=f"http://127.0.0.1:{gateway_port}",
        ORDER_PAYMENT_TIMEOUT_SECONDS=str(args.timeout),
        SWEEP_INTERVAL_SECONDS=str(args.sweep),
        AUTH_RATE_LIMIT="0",
        POINTS_PER_YUAN=str(POINTS_PER_YUAN),
        POINTS_EARNED_PER_YUAN="1",
        LOG_LEVEL="INFO",
    )


def parse_args(argv=None):
    p = parser(DRILL_DOC)
    p.add_argument("--db", default="drill", help="database to drop and recreate (default drill)")
    p.add_argument("--redis-db", type=int, default=11, help="Redis database for the broker (default 11)")
    p.add_argument("--users", type=int, default=15000, help="seeded users, one per order (default 15000)")
    p.add_argument("--clients", type=int, default=6, help="client threads (default 6)")
    p.add_argument("--think", type=float, default=0.05, help="mean pause between a client's orders, s (default 0.05)")
    # As `make run` serves with Redis (Makefile WEB_WORKERS): sync workers, two per core.
    workers = DEFAULT_WORKERS
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
    check_db_name(p, args.db)
    if args.redis_db in (0, 15):
        p.error("--redis-db: 0 is the default app database and 15 the test suite's; pick a dedicated one")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    log_as("drill")
    for tool in ("redis-cli", "redis-server", "pgrep"):
        if not shutil.which(tool):
            log(f"{tool} not found")
            return 2
    # Nobody else's service is touched: waiting for a quiet host only makes the figures less
    # disturbed by other people's CPU load (off unless asked for).
    if args.wait_quiet and not wait_for_no_tests(args.wait_quiet, "figures undisturbed by others' tests"):
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
    pg = DrillPostgres(log_dir / "postgres")
    use_server(pg)  # every database of the run is on the drill's own Postgres
    redis = DrillRedis(free_port(), log_dir)
    port, gateway_port = free_port(), free_port()
    env = drill_env(args, port, gateway_port, redis, log_dir / "var")
    stack = Stack(args, env, port, gateway_port, log_dir, pg, redis)
    rec = Recorder()
    stop = threading.Event()
    clients: list[Client] = []
    faults = [Fault(name, label) for name, label, *_ in FAULTS if name in args.faults]
    faults.sort(key=lambda f: args.faults.index(f.name))
    results: list[CheckResult] = []
    grace = 2 * args.sweep + args.slack
    findings: list[str] = []  # liveness problems that break no invariant (fatal with --strict)
    t_start = now()
    load_wall = time.time()

    def checkpoint(label: str, *, final: bool = False) -> CheckResult:
        res = run_checks(args, pg, rec, label, final=final, grace=0 if final else grace)
        delayed = count_delayed(redis, args.redis_db)
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
        log(f"starting the drill's own Postgres (data in {pg.data_dir}) and redis-server on port {redis.port}")
        pg.start()
        if not redis.start():
            raise RuntimeError(f"redis-server did not start; see {log_dir / 'redis.log'}")
        log(f"recreating database {args.db}, migrating, flushing Redis db {args.redis_db}; logs in {log_dir}")
        recreate_database(args.db)
        redis.cli("flushdb", db=args.redis_db)
        migrate(args.python, env, ROOT)
        seed(args.db, args.users)
        tokens = mint_tokens(args.python, env, lo=1, hi=args.users, tmp=str(log_dir), app_dir=ROOT)
        make_gateway_keys(args.python, env, ROOT)
        log(
            f"seeded {args.users} users in {now() - t_start:.1f}s; "
            f"starting gunicorn on 127.0.0.1:{port}, the worker and the scheduler"
        )
        stack.start()

        users = UserPool(tokens)
        clients = [
            Client(n, ports=(port, gateway_port), users=users, stop=stop, rec=rec, args=args)
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
                wait_for_no_tests(args.wait_quiet_fault, f"before: {fault.label}")
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
        conn = db_connect(pg, args.db)
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
        res.stats["lateness"] = expiry_lateness(args, pg, faults, load_wall, first_wall)
        findings += worker_log_findings(log_dir)
        for name, text, _ in LIVENESS:
            if res.counts.get(name):
                findings.append(f"{res.counts[name]} {text}: {res.examples.get(name)}")
        alive = stack.alive()
    except Exception as exc:
        log(f"drill aborted: {exc!r}")
        stop.set()
        raise
    finally:
        stop.set()
        stack.stop()
        redis.stop()
        pg.stop()
        if args.keep:
            log(
                f"kept database {args.db} in {pg.data_dir}; serve it again with "
                f"`.venv/bin/python -m core.embedded_database --data-dir {pg.data_dir} -- COMMAND`"
            )
        else:
            shutil.rmtree(pg.data_dir, ignore_errors=True)
        log(f"done in {now() - t_start:.0f}s; logs in {log_dir}")

    failed = print_report(args, rec, faults, results, stack, findings, alive)
    return 1 if failed else 0

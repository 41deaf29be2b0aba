#!/usr/bin/env python3
"""Checkout throughput: POST /api/v1/orders through gunicorn vs. the same SQL through pgbench.

One run does everything (see BENCHMARKS.md for figures and analysis):

1. drops and recreates a dedicated database (default `bench_checkout`) and migrates it;
2. seeds, for each `--items` count, two disjoint pools of users with plain SQL (fast): each user
   has a cart of that many selected courses, one unused fixed coupon (threshold 0, 5.00 off), a
   points account of 1,000,000 points and the matching `grant` ledger entry (balance == sum of the
   ledger), and one earlier cancelled order for the same courses (so the planner has real
   statistics). User ids are explicit, and each user's user-coupon and points-account ids equal
   the user id, so a client (and pgbench) knows them without asking. Every order consumes a user
   (cart, coupon); a level takes users in order and the pool is restored before the next level;
3. mints one JWT access token per API user with `core.auth.encode_token` (same SECRET_KEY as
   the server);
4. starts gunicorn (`core.wsgi:application`, sync workers, two per core, as `make run`)
   against that database and waits for /api/v1/health;
5. for each items count and client count (default 1 item; 1, 8, 32 clients), `--rounds` times
   (default 1) a pair of runs, back to back so the host's drift hits both alike:
   - the API: restores the API pool (cart rows back, coupons unused, earlier orders cancelled;
     outside the timed window), warms up, then drives `POST /api/v1/orders` for `--duration`
     seconds, every request a different user and a new Idempotency-Key; only 201 counts as
     success. The load generator is wrk (`--client wrk`, default; bench/pool.wrk.lua), C like
     pgbench, or forked Python http.client processes (`--client python`, about 0.4 ms more CPU
     per order on the same cores);
   - pgbench with `bench/checkout.pgbench.sql` (the same statements the checkout sends, in the
     same transaction shape) at the same client count, on its own pool of users, restored the
     same way (gunicorn stays up, idle);
6. prints one table per items count (each round's API orders/s, p50, p99, pgbench tps,
   API/pgbench, and with several rounds their median) plus CPU use per order (from /proc:
   gunicorn, Postgres, load generator, everything else), then stops the server and drops the
   database (unless `--keep`).

The host is shared: before each level the run waits (briefly) for an idle machine, and a level
during which other processes took more than `--max-other-load` % of the CPU is measured again
(within `--extra-time` seconds for the whole run); such figures are flagged in the table.

Python 3.11 stdlib, helpers in bench/common/, and wrk (`apt-get install wrk`) unless
`--client python`. Run it with the project's venv python (`make bench`, or
`.venv/bin/python bench/checkout_bench.py --help`). Loopback traffic only.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from functools import partial

from common.app import app_env, migrate, mint_tokens
from common.cli import BENCH_DIR, add_common_args, int_list, parser
from common.cpu import CpuSampler, ExtraTime, best_of, cpu_per_op, noisy, wait_for_quiet
from common.db import check_db_name, keep_or_drop, psql, recreate_database, warn_other_db_activity
from common.load import LevelResult, PoolRequest, UserPool, drive
from common.log import log
from common.pairs import Pair, by_level, level_verdict, median, round_rows
from common.pgbench import PgbenchResult, database_tools, run_pgbench
from common.server import add_server_args, free_port, server_layout, start_api_server, stop_process
from common.summary import fmt, summary_row, write_results
from common.wrk import add_client_arg, drive_wrk, find_wrk

PGBENCH_SCRIPT = BENCH_DIR / "checkout.pgbench.sql"
# At 8 clients: the API's orders/s against pgbench's, and every round's p99.
TARGETS = {"min_ratio": 0.30, "max_p99_ms": 50}

# Explicit, disjoint id ranges for the pools (user id == user coupon id == points account id).
# Items count number k (0, 1, 2 for --items 1,5,20) uses API users API_UID_BASE + k * API_STRIDE
# + 1 ... and pgbench users PGB_UID_BASE + k * PGB_STRIDE + 1 ...
API_UID_BASE = 1_000_000
API_STRIDE = 200_000
PGB_UID_BASE = 5_000_000
PGB_STRIDE = 1_000_000
COUPON_ID = 1
COUPON_OFF = "5.00"
POINTS_GRANT = 1_000_000
POINTS_PER_ORDER = 10
# The order every API request places, each for another user (either load generator).
CHECKOUT = PoolRequest(
    "POST",
    "/api/v1/orders",
    ok_status=201,
    body='{"pay_type": "alipay", "user_coupon_id": {uid}, "points": ' + str(POINTS_PER_ORDER) + "}",
)
PGBENCH_SEQ = "bench_pgbench_next_user"
PGBENCH_SEQ_START = 10**12


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
                               is_staff, is_active, date_joined, username_key, token_version)
        SELECT g, '!bench', NULL, false, 'bench' || g, '', '', '', false, true, now(), 'bench' || g, 0
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
                                  expires_at, paid_at, cancelled_at, cancel_reason, refunded_at, created_at)
        SELECT 'H' || g, g, 'cancelled', 'alipay', t.total, 0, 0, 0, t.total, NULL, 'history-' || g, '',
               now() - interval '47 hours 30 minutes', NULL, now() - interval '47 hours 30 minutes',
               'expired', NULL, now() - interval '2 days'
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


def api_pool_range(index: int, args) -> tuple[int, int]:
    lo = API_UID_BASE + index * API_STRIDE + 1
    return lo, lo + args.api_users - 1


def pgb_pool_range(index: int, args) -> tuple[int, int]:
    lo = PGB_UID_BASE + index * PGB_STRIDE + 1
    return lo, lo + args.pgbench_users - 1


def clients_for(index: int, args) -> list[int]:
    """Client counts for the index-th items count: all of --clients for the first, then
    --extra-items-clients when given (keeps `make bench` short)."""
    if index == 0 or not args.extra_items_clients:
        return args.clients
    return args.extra_items_clients


def drive_checkout(*, port: int, pool: UserPool, clients: int, seconds: float) -> LevelResult:
    """The Python load generator (--client python): forked http.client processes."""
    return drive(
        port=port, clients=clients, seconds=seconds, next_request=CHECKOUT.from_pool(pool), ok_status=CHECKOUT.ok_status
    )


def measure_api_level(args, *, port: int, server_pid: int, pool: UserPool, tokens_file: str, clients: int):
    """Warm-up, then one timed level, through the load generator --client chose."""
    if args.client == "wrk":
        wrk = partial(drive_wrk, args.wrk, CHECKOUT, port=port, pool=pool, tokens_file=tokens_file, clients=clients)
        if args.warmup > 0:
            wrk(seconds=args.warmup, sampler_args=None)
        return wrk(seconds=args.duration, sampler_args={"db": args.db, "server_pid": server_pid})
    if args.warmup > 0:
        drive_checkout(port=port, pool=pool, clients=clients, seconds=args.warmup)
    sampler = CpuSampler(db=args.db, server_pid=server_pid, client_pids={os.getpid()}).start()
    res = drive_checkout(port=port, pool=pool, clients=clients, seconds=args.duration)
    res.cpu = cpu_per_op(sampler.stop(), res.ok)
    return res


def run_checkout_pgbench(
    pgbench: str, db: str, *, clients: int, seconds: int, pool_lo: int, pool_size: int, tmp: str
) -> PgbenchResult:
    # One sequence for the whole run (order_no and Idempotency-Key are built from its values, so
    # they must never repeat); values start at 10**12 so those strings are fixed-width.
    psql(db, f"CREATE SEQUENCE IF NOT EXISTS {PGBENCH_SEQ} START {PGBENCH_SEQ_START};")
    offset = int(psql(db, f"SELECT nextval('{PGBENCH_SEQ}');"))
    res = run_pgbench(
        pgbench,
        db,
        script=PGBENCH_SCRIPT,
        clients=clients,
        seconds=seconds,
        tmp=tmp,
        defines={"first_uid": pool_lo, "seq_offset": offset},
    )
    used = int(psql(db, f"SELECT last_value FROM {PGBENCH_SEQ};")) - offset
    res.exhausted = used > pool_size
    return res


# --------------------------------------------------------------------------------------------


def print_report(args, items: int, pairs: list[Pair], setup: str) -> list[str]:
    """Prints the tables of one items count; returns the notes (flags) for the summary."""
    lines = [f"Checkout benchmark: {items} item(s) per order, {args.duration}s per level, {setup}", ""]
    lines.append(
        "| clients | round | API orders/s | p50 ms | p99 ms | pgbench tps | pgbench p50 ms | pgbench p99 ms "
        "| API/pgbench |"
    )
    lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines += round_rows(pairs, max_other_load=args.max_other_load)
    lines.append("")
    lines.append("CPU per order in ms (from /proc): server = gunicorn, pg = backends of the bench database,")
    lines.append(f"pg aux = WAL writer/checkpointer/etc., client = load generator ({args.client} for the API,")
    lines.append("pgbench for pgbench); other load = share of the machine used by everything else (other")
    lines.append("databases, other people's test runs) during the level.")
    lines.append("")
    lines.append("| clients | round | run | server | pg | pg aux | client | machine busy | other load |")
    lines.append("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for pair in pairs:
        for label, r in (("API", pair.api), ("pgbench", pair.pgb)):
            if r and r.cpu:
                cpu = r.cpu
                lines.append(
                    f"| {pair.clients} | {pair.round} | {label} | {fmt(cpu['server'], 2)} | {fmt(cpu['pg'], 2)} "
                    f"| {fmt(cpu['pg_aux'], 2)} | {fmt(cpu['client'], 2)} | {cpu['machine_busy'] * 100:.0f}% "
                    f"| {cpu['other_share'] * 100:.0f}% |"
                )
    notes = []
    for pair in pairs:
        where = f"c={pair.clients} round {pair.round}"
        for label, r in (("API", pair.api), ("pgbench", pair.pgb)):
            if r and r.cpu and noisy(r.cpu, args.max_other_load):
                notes.append(
                    f"{label} {where}: other processes used {r.cpu['other_share'] * 100:.0f}% of the machine "
                    "during the level even after retries: treat the figure as a lower bound"
                )
        if pair.api and pair.api.errors:
            notes.append(f"API {where}: non-201 answers {pair.api.errors} (not counted as orders)")
        if pair.api and pair.api.exhausted:
            notes.append(f"API {where}: user pool exhausted after {pair.api.elapsed:.1f}s (raise --api-users)")
        if pair.pgb and pair.pgb.failed:
            notes.append(f"pgbench {where}: {pair.pgb.failed} failed transactions / aborted clients")
        if pair.pgb and pair.pgb.exhausted:
            notes.append(f"pgbench {where}: user pool exhausted (raise --pgbench-users); tps not comparable")
    if notes:
        lines.append("")
        lines.extend("* " + n for n in notes)
    verdict = level_verdict(by_level(pairs).get(8, []), **TARGETS)
    if verdict:
        lines += ["", "Targets at 8 clients: " + verdict]
    print("\n".join(lines), flush=True)
    return notes


def summary_rows(args, items: int, pairs: list[Pair]) -> list[dict]:
    """One row per client count for the combined table: medians over the paired rounds."""
    rows = []
    for c, rounds in sorted(by_level(pairs).items()):
        apis = [r.api for r in rounds if r.api]
        pgbs = [r.pgb for r in rounds if r.pgb]
        ratios = [r.ratio for r in rounds if r.ratio is not None]
        flags = [] if len(rounds) == 1 else [f"median of {len(rounds)} paired rounds"]
        if any(noisy(a.cpu, args.max_other_load) for a in apis):
            flags.append("an API level under load")
        if any(noisy(p.cpu, args.max_other_load) for p in pgbs):
            flags.append("a pgbench level under load")
        if any(a.errors for a in apis):
            flags.append("API errors")
        if any(a.exhausted for a in apis):
            flags.append("API user pool exhausted (raise --api-users)")
        if c == 8:
            verdict = level_verdict(rounds, **TARGETS)
            if verdict:
                flags.append(verdict)
        rows.append(
            summary_row(
                bench="checkout",
                case=f"{items} item(s), {c} clients",
                app=f"{fmt(median([a.rate for a in apis]))} orders/s" if apis else "n/a",
                baseline=f"pgbench {fmt(median([p.tps for p in pgbs]))} tps" if pgbs else "",
                ratio=median(ratios) if ratios else None,
                p50=f"{fmt(median([a.p50 for a in apis]))} ms" if apis else "",
                p99=f"{fmt(median([a.p99 for a in apis]))} ms" if apis else "",
                note="; ".join(flags),
            )
        )
    return rows


def measured(round_fn, args, budget: ExtraTime, where: str, *, level_cost: float, **kwargs):
    """round_fn(args, budget, where, **kwargs), measured again if someone else's load disturbed it."""
    label = "API" if round_fn is api_round else "pgbench"
    return best_of(
        partial(round_fn, args, budget, where, **kwargs),
        args=args,
        budget=budget,
        level_cost=level_cost,
        label=f"{label} {where}",
    )


def api_round(
    args,
    budget: ExtraTime,
    where: str,
    *,
    port: int,
    server_pid: int,
    pool: UserPool,
    tokens_file: str,
    items: int,
    clients: int,
    lo: int,
    hi: int,
) -> LevelResult:
    restore_pool(args.db, lo=lo, hi=hi, items=items)
    pool.reset()
    wait_for_quiet(budget, args.max_wait)
    res = measure_api_level(args, port=port, server_pid=server_pid, pool=pool, tokens_file=tokens_file, clients=clients)
    log(
        f"API {where}: {res.ok} orders in {res.elapsed:.1f}s = {res.rate:.1f}/s, p50 {fmt(res.p50)} ms, "
        f"p99 {fmt(res.p99)} ms, errors {res.errors or 'none'}, other load {res.cpu['other_share'] * 100:.0f}%"
    )
    return res


def pgbench_round(
    args, budget: ExtraTime, where: str, *, pgbench: str, tmp: str, items: int, clients: int, lo: int
) -> PgbenchResult:
    restore_pool(args.db, lo=lo, hi=lo + args.pgbench_users - 1, items=items)
    wait_for_quiet(budget, args.max_wait)
    res = run_checkout_pgbench(
        pgbench, args.db, clients=clients, seconds=args.duration, pool_lo=lo, pool_size=args.pgbench_users, tmp=tmp
    )
    log(
        f"pgbench {where}: {res.tps:.1f} tps ({res.transactions} tx, {res.failed} failed), "
        f"p50 {fmt(res.p50_ms, 2)} ms, p99 {fmt(res.p99_ms, 2)} ms, other load {res.cpu['other_share'] * 100:.0f}%"
    )
    if res.exhausted:
        log(f"WARNING: pgbench used more than {args.pgbench_users} users; raise --pgbench-users")
    return res


def parse_args(argv: list[str] | None = None):
    p = parser(__doc__)
    p.add_argument("--items", default="1", help="selected cart items per order, comma-separated (default 1)")
    p.add_argument("--clients", default="1,8,32", help="comma-separated concurrency levels (default 1,8,32)")
    p.add_argument(
        "--extra-items-clients",
        default="",
        help="concurrency levels for the 2nd and later --items counts (default: the same as --clients)",
    )
    p.add_argument("--duration", type=int, default=12, help="seconds per level, API and pgbench (default 12)")
    p.add_argument("--warmup", type=float, default=2.0, help="untimed seconds before each API level (default 2)")
    add_server_args(p)
    p.add_argument("--api-users", type=int, default=8000, help="API users per items count (default 8000)")
    p.add_argument("--pgbench-users", type=int, default=25000, help="pgbench users per items count (default 25000)")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="paired rounds (API, then pgbench) per level; tables show each and the median (default 1)",
    )
    add_client_arg(p)
    p.add_argument("--skip-api", action="store_true")
    p.add_argument("--skip-pgbench", action="store_true")
    add_common_args(p, db="bench_checkout")
    args = p.parse_args(argv)
    args.clients = int_list(args.clients)
    args.extra_items_clients = int_list(args.extra_items_clients)
    args.items = int_list(args.items)
    if not args.items or min(args.items) < 1:
        p.error("--items must be >= 1")
    if args.api_users > API_STRIDE or args.pgbench_users > PGB_STRIDE:
        p.error(f"at most {API_STRIDE} API users and {PGB_STRIDE} pgbench users per items count")
    check_db_name(p, args.db)
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    find_wrk(p, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tools_found, pgbench = database_tools(skip_pgbench=args.skip_pgbench)
    if not tools_found:
        return 2
    tmp = tempfile.mkdtemp(prefix="checkout-bench-")
    env = app_env(args.db, tmp)
    server = None
    pairs: dict[int, list[Pair]] = {items: [] for items in args.items}
    courses = max(50, max(args.items))
    budget = ExtraTime(args.extra_time)
    level_cost = args.duration + args.warmup + 3  # a re-measurement, restore included
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    try:
        t0 = time.monotonic()
        log(f"recreating database {args.db} and migrating")
        recreate_database(args.db)
        migrate(args.python, env, args.app_dir)
        log(f"seeding {args.api_users} API users + {args.pgbench_users} pgbench users per items count {args.items}")
        quantity = len(args.items) * (args.api_users + args.pgbench_users)
        seed_catalogue(args.db, courses=courses, coupon_quantity=quantity)
        for k, items in enumerate(args.items):
            if not args.skip_api:
                lo, hi = api_pool_range(k, args)
                seed_users(args.db, lo=lo, hi=hi, items=items)
            if not args.skip_pgbench:
                lo, hi = pgb_pool_range(k, args)
                seed_users(args.db, lo=lo, hi=hi, items=items)
        finish_seeding(args.db)
        log(f"seeded in {time.monotonic() - t0:.1f}s")
        warn_other_db_activity(args.db)

        port = free_port()
        if not args.skip_api:
            # Left running (idle) while pgbench measures, so each API level and its baseline run
            # back to back.
            server = start_api_server(args, env, port=port)
        for k, items in enumerate(args.items):
            api_lo, api_hi = api_pool_range(k, args)
            pgb_lo, _ = pgb_pool_range(k, args)
            pool = tokens_file = None
            if not args.skip_api:
                pool = UserPool(mint_tokens(args.python, env, lo=api_lo, hi=api_hi, tmp=tmp, app_dir=args.app_dir))
                tokens_file = os.path.join(tmp, f"tokens-{items}.txt")
                pool.write(tokens_file)
            for clients in clients_for(k, args):
                for round_no in range(1, args.rounds + 1):
                    pair = Pair(clients=clients, round=round_no)
                    where = f"items={items} c={clients} round {round_no}"
                    level = {"level_cost": level_cost, "items": items, "clients": clients}
                    if not args.skip_api:
                        api = {"port": port, "server_pid": server.pid, "pool": pool, "tokens_file": tokens_file}
                        pair.api = measured(api_round, args, budget, where, **level, **api, lo=api_lo, hi=api_hi)
                    if not args.skip_pgbench:
                        pgb = {"pgbench": pgbench, "tmp": tmp, "lo": pgb_lo}
                        pair.pgb = measured(pgbench_round, args, budget, where, **level, **pgb)
                    if pair.ratio is not None:
                        log(f"{where}: API/pgbench {pair.ratio * 100:.1f}%")
                    pairs[items].append(pair)
        stop_process(server)
        server = None

        setup = f"{server_layout(args)}; API load generator: {args.client}"
        rows = []
        for items in args.items:
            print_report(args, items, pairs[items], setup)
            print()
            rows += summary_rows(args, items, pairs[items])
        write_results(
            args,
            "checkout",
            rows,
            started=started,
            items=args.items,
            duration=args.duration,
            workers=args.workers,
            threads=args.threads,
            client=args.client,
            pairs={
                str(i): [
                    {
                        "clients": p.clients,
                        "round": p.round,
                        "api": p.api.as_dict() if p.api else None,
                        "pgbench": vars(p.pgb) if p.pgb else None,
                        "ratio": p.ratio,
                    }
                    for p in pairs[i]
                ]
                for i in args.items
            },
        )
        failed = any(
            (p.api and (p.api.errors or p.api.exhausted)) or (p.pgb and (p.pgb.failed or p.pgb.exhausted))
            for ps in pairs.values()
            for p in ps
        )
        return 1 if failed else 0
    finally:
        stop_process(server)
        keep_or_drop(args, tmp)


if __name__ == "__main__":
    sys.exit(main())

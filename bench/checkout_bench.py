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
5. for each items count and client count (default 1 item; 1, 8, 32 clients): restores the API
   pool (cart rows back, coupons unused, earlier orders cancelled; outside the timed window),
   warms up, then drives `POST /api/v1/orders` for `--duration` seconds, every request a
   different user and a new Idempotency-Key; only 201 counts as success;
6. stops gunicorn and runs pgbench with `bench/checkout.pgbench.sql` (the same statements the
   checkout sends, in the same transaction shape) at the same levels, on its own pools of users,
   restored the same way before each level;
7. prints one table per items count (API orders/s, p50, p99, pgbench tps, API/pgbench) plus CPU
   use per order (from /proc: gunicorn, Postgres, load generator, everything else), then stops
   the server and drops the database (unless `--keep`).

The host is shared: before each level the run waits (briefly) for an idle machine, and a level
during which other processes took more than `--max-other-load` % of the CPU is measured again
(within `--extra-time` seconds for the whole run); such figures are flagged in the table.

Plain Python 3.11 stdlib only (http.client in forked client processes), helpers in bench/common.py. Run it with
the project's venv python (`make bench`, or `.venv/bin/python bench/checkout_bench.py --help`).
Loopback traffic only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid

from common import (
    BENCH_DIR,
    CpuSampler,
    ExtraTime,
    LevelResult,
    PgbenchResult,
    UserPool,
    add_common_args,
    add_server_args,
    app_env,
    best_of,
    check_db_name,
    check_tools,
    cpu_per_op,
    drive,
    find_pgbench,
    fmt,
    free_port,
    int_list,
    keep_or_drop,
    log,
    machine_info,
    migrate,
    mint_tokens,
    noisy,
    other_db_activity,
    psql,
    recreate_database,
    run_pgbench,
    server_layout,
    start_api_server,
    stop_server,
    summary_row,
    wait_for_quiet,
    write_summary,
)

PGBENCH_SCRIPT = BENCH_DIR / "checkout.pgbench.sql"

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
    def next_request(_: int):
        taken = pool.take()
        if taken is None:
            return None
        uid, token = taken
        body = json.dumps({"pay_type": "alipay", "user_coupon_id": uid, "points": POINTS_PER_ORDER})
        headers = {
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": uuid.uuid4().hex,
            "Content-Type": "application/json",
        }
        return "POST", "/api/v1/orders", body, headers

    return drive(port=port, clients=clients, seconds=seconds, next_request=next_request, ok_status=201)


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


def print_report(args, items: int, api: list[LevelResult], pgb: dict[int, PgbenchResult], setup: str) -> list[str]:
    """Prints the tables of one items count; returns the notes (flags) for the summary."""
    lines = []
    lines.append(f"Checkout benchmark: {items} item(s) per order, {args.duration}s per level, {setup}")
    lines.append("")
    header = (
        "| clients | API orders/s | p50 ms | p99 ms | pgbench tps | pgbench p50 ms | pgbench p99 ms | API/pgbench |"
    )
    lines.append(header)
    lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    by_clients = {r.clients: r for r in api}
    levels = sorted(set(by_clients) | set(pgb))
    for c in levels:
        a, p = by_clients.get(c), pgb.get(c)
        rate = a.rate if a else float("nan")
        tps = p.tps if p else float("nan")
        ratio = f"{rate / tps * 100:.0f}%" if a and p and tps else "n/a"
        flag_a = "*" if a and (a.exhausted or a.errors or noisy(a.cpu, args.max_other_load)) else ""
        flag_p = "*" if p and (p.exhausted or p.failed or noisy(p.cpu, args.max_other_load)) else ""
        lines.append(
            f"| {c} | {fmt(rate)}{flag_a} | {fmt(a.p50) if a else 'n/a'} "
            f"| {fmt(a.p99) if a else 'n/a'} | {fmt(tps)}{flag_p} "
            f"| {fmt(p.p50_ms, 2) if p else 'n/a'} | {fmt(p.p99_ms, 2) if p else 'n/a'} | {ratio} |"
        )
    lines.append("")
    lines.append("CPU per order in ms (from /proc): server = gunicorn, pg = backends of the bench database,")
    lines.append("pg aux = WAL writer/checkpointer/etc., client = load generator; other load = share of the")
    lines.append("machine used by everything else (other databases, other people's test runs) during the level.")
    lines.append("")
    lines.append("| clients | run | server | pg | pg aux | client | machine busy | other load |")
    lines.append("|---:|---|---:|---:|---:|---:|---:|---:|")
    for c in levels:
        for label, r in (("API", by_clients.get(c)), ("pgbench", pgb.get(c))):
            if r and r.cpu:
                cpu = r.cpu
                lines.append(
                    f"| {c} | {label} | {fmt(cpu['server'], 2)} | {fmt(cpu['pg'], 2)} | {fmt(cpu['pg_aux'], 2)} "
                    f"| {fmt(cpu['client'], 2)} | {cpu['machine_busy'] * 100:.0f}% | {cpu['other_share'] * 100:.0f}% |"
                )
    notes = []
    for label, r in [("API", r) for r in api] + [("pgbench", p) for p in pgb.values()]:
        if r.cpu and noisy(r.cpu, args.max_other_load):
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
        lines.append(
            f"Targets at 8 clients: API >= 30% of SQL-only -> {ratio * 100:.0f}% "
            f"({'met' if ratio >= 0.30 else 'MISSED'}); p99 < 50 ms -> {fmt(c8a.p99)} ms "
            f"({'met' if c8a.p99 < 50 else 'MISSED'})"
        )
    print("\n".join(lines), flush=True)
    return notes


def summary_rows(args, items: int, api: list[LevelResult], pgb: dict[int, PgbenchResult]) -> list[dict]:
    rows = []
    by_clients = {r.clients: r for r in api}
    for c in sorted(set(by_clients) | set(pgb)):
        a, p = by_clients.get(c), pgb.get(c)
        flags = []
        if a and noisy(a.cpu, args.max_other_load):
            flags.append(f"API level under load ({a.cpu['other_share'] * 100:.0f}% other)")
        if p and noisy(p.cpu, args.max_other_load):
            flags.append(f"pgbench level under load ({p.cpu['other_share'] * 100:.0f}% other)")
        if a and a.errors:
            flags.append(f"API errors {a.errors}")
        if a and a.exhausted:
            flags.append("API user pool exhausted (raise --api-users)")
        if c == 8 and a and p and p.tps:
            flags.append(
                f"target >=30% {'met' if a.rate / p.tps >= 0.30 else 'missed'}, "
                f"p99<50ms {'met' if a.p99 < 50 else 'missed'}"
            )
        rows.append(
            summary_row(
                bench="checkout",
                case=f"{items} item(s), {c} clients",
                app=f"{fmt(a.rate)} orders/s" if a else "n/a",
                baseline=f"pgbench {fmt(p.tps)} tps" if p else "",
                ratio=(a.rate / p.tps) if a and p and p.tps else None,
                p50=f"{fmt(a.p50)} ms" if a else "",
                p99=f"{fmt(a.p99)} ms" if a else "",
                note="; ".join(flags),
            )
        )
    return rows


def parse_args(argv: list[str] | None = None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
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
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pgbench = None if args.skip_pgbench else find_pgbench()
    if not args.skip_pgbench and not pgbench:
        log("pgbench not found (apt-get install postgresql-client); use --skip-pgbench")
        return 2
    if not check_tools("psql", "createdb", "dropdb"):
        return 2
    tmp = tempfile.mkdtemp(prefix="checkout-bench-")
    env = app_env(args.db, tmp)
    server = None
    api_results: dict[int, list[LevelResult]] = {items: [] for items in args.items}
    pgb_results: dict[int, dict[int, PgbenchResult]] = {items: {} for items in args.items}
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
        busy = other_db_activity(args.db)
        if busy:
            log(f"WARNING: {busy} active backends in other databases: figures may be skewed")

        if not args.skip_api:
            port = free_port()
            server = start_api_server(args, env, port=port)
            for k, items in enumerate(args.items):
                lo, hi = api_pool_range(k, args)
                pool = UserPool(mint_tokens(args.python, env, lo=lo, hi=hi, tmp=tmp, app_dir=args.app_dir))
                for clients in clients_for(k, args):

                    def measure(lo=lo, hi=hi, items=items, clients=clients, pool=pool):
                        restore_pool(args.db, lo=lo, hi=hi, items=items)
                        pool.reset()
                        wait_for_quiet(budget, args.max_wait)
                        if args.warmup > 0:
                            drive_checkout(port=port, pool=pool, clients=clients, seconds=args.warmup)
                        sampler = CpuSampler(db=args.db, server_pid=server.pid, client_pids={os.getpid()}).start()
                        res = drive_checkout(port=port, pool=pool, clients=clients, seconds=args.duration)
                        res.cpu = cpu_per_op(sampler.stop(), res.ok)
                        log(
                            f"API items={items} c={clients}: {res.ok} orders in {res.elapsed:.1f}s = "
                            f"{res.rate:.1f}/s, p50 {fmt(res.p50)} ms, p99 {fmt(res.p99)} ms, "
                            f"errors {res.errors or 'none'}, other load {res.cpu['other_share'] * 100:.0f}%"
                        )
                        return res

                    api_results[items].append(
                        best_of(measure, args=args, budget=budget, level_cost=level_cost, label=f"API c={clients}")
                    )
            stop_server(server)
            server = None

        if not args.skip_pgbench:
            for k, items in enumerate(args.items):
                lo, hi = pgb_pool_range(k, args)
                for clients in clients_for(k, args):

                    def measure(lo=lo, hi=hi, items=items, clients=clients):
                        restore_pool(args.db, lo=lo, hi=hi, items=items)
                        wait_for_quiet(budget, args.max_wait)
                        res = run_checkout_pgbench(
                            pgbench,
                            args.db,
                            clients=clients,
                            seconds=args.duration,
                            pool_lo=lo,
                            pool_size=args.pgbench_users,
                            tmp=tmp,
                        )
                        log(
                            f"pgbench items={items} c={clients}: {res.tps:.1f} tps ({res.transactions} tx, "
                            f"{res.failed} failed), p50 {fmt(res.p50_ms, 2)} ms, p99 {fmt(res.p99_ms, 2)} ms, "
                            f"other load {res.cpu['other_share'] * 100:.0f}%"
                        )
                        if res.exhausted:
                            log(f"WARNING: pgbench used more than {args.pgbench_users} users; raise --pgbench-users")
                        return res

                    pgb_results[items][clients] = best_of(
                        measure, args=args, budget=budget, level_cost=level_cost, label=f"pgbench c={clients}"
                    )

        setup = server_layout(args)
        rows = []
        for items in args.items:
            print_report(args, items, api_results[items], pgb_results[items], setup)
            print()
            rows += summary_rows(args, items, api_results[items], pgb_results[items])
        write_summary(args.summary, "checkout", rows, started=started, machine=machine_info())
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(
                    {
                        "started": started,
                        "items": args.items,
                        "duration": args.duration,
                        "workers": args.workers,
                        "threads": args.threads,
                        "machine": machine_info(),
                        "api": {str(i): [r.as_dict() for r in api_results[i]] for i in args.items},
                        "pgbench": {str(i): [vars(p) for p in pgb_results[i].values()] for i in args.items},
                    },
                    fh,
                    indent=2,
                )
        failed = any(r.errors or r.exhausted for rs in api_results.values() for r in rs) or any(
            p.failed or p.exhausted for ps in pgb_results.values() for p in ps.values()
        )
        return 1 if failed else 0
    finally:
        stop_server(server)
        keep_or_drop(args, tmp)


if __name__ == "__main__":
    sys.exit(main())

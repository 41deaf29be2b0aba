#!/usr/bin/env python3
"""Cart reads: GET /api/v1/cart for carts of 1, 5 and 20 items vs a bare Django view, same server.

The baseline is `core/bench_views.baseline`, a plain Django view returning a small JSON, mounted
at /bench/baseline only when BENCH_BASELINE_VIEW=1 (the server here is started with it). It goes
through the same gunicorn, WSGI handler and middleware as the API, but no Ninja, no JWT, no
database: the ratio cart/bare is what the endpoint itself costs (auth lookup, the one cart query,
building and validating the response) on top of serving any request at all.

One run (see BENCHMARKS.md for figures and analysis):

1. drops and recreates a dedicated database (default `bench_cart`), migrates it, and seeds with
   plain SQL 50 courses and, for each cart size, `--users` users whose carts hold that many
   selected courses; mints a token per user;
2. starts gunicorn (as `make run` does: sync workers, two per core) with BENCH_BASELINE_VIEW=1
   and checks one answer of each kind (the cart's `count` is the size);
3. for each client count (default 1 and 8) and each target (bare view, cart of 1, 5, 20), waits for
   an idle machine, warms up, then sends GETs back to back for `--duration` s (users in turn,
   the same Authorization header on the bare view), CPU sampled from /proc;
4. prints req/s, p50, p99 and the ratios to the bare view: latency (p50, p99) and throughput.

Stdlib only (helpers in bench/common/), loopback only; needs psql.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
import threading
import time

from common.app import app_env, migrate, mint_tokens
from common.cli import add_common_args, int_list, parser
from common.cpu import CpuSampler, ExtraTime, best_of, cpu_per_op, noisy, under_load, wait_for_quiet
from common.db import check_db_name, check_tools, keep_or_drop, psql, recreate_database, warn_other_db_activity
from common.load import LevelResult, drive
from common.log import log
from common.server import add_server_args, free_port, http_request, server_layout, start_api_server, stop_process
from common.summary import fmt, summary_row, write_results

UID_BASE = 1_000_000
UID_STRIDE = 100_000  # users of the k-th cart size: UID_BASE + k * UID_STRIDE + 1 ...
BARE = "bare"


def seed(db: str, *, sizes: list[int], users: int) -> None:
    parts = [
        """
        BEGIN;
        INSERT INTO core_course (name, description, picture_url, price, is_active, created_at)
        SELECT 'Bench course ' || g, 'Seeded by bench/cart_bench.py: a course description of some length, '
               || 'as the catalogue has', 'https://example.invalid/courses/' || g || '.png',
               (50 + g)::numeric(10, 2), true, now()
        FROM generate_series(1, 50) g;
        """
    ]
    for k, size in enumerate(sizes):
        lo = UID_BASE + k * UID_STRIDE + 1
        hi = lo + users - 1
        parts.append(
            f"""
            INSERT INTO core_user (id, password, last_login, is_superuser, username, first_name, last_name, email,
                                   is_staff, is_active, date_joined, username_key, token_version)
            SELECT g, '!bench', NULL, false, 'cart' || g, '', '', '', false, true, now(), 'cart' || g, 0
            FROM generate_series({lo}, {hi}) g;
            INSERT INTO orders_cartitem (selected, created_at, course_id, user_id)
            SELECT true, now() - (c.id || ' seconds')::interval, c.id, g
            FROM generate_series({lo}, {hi}) g
            CROSS JOIN (SELECT id FROM core_course ORDER BY id LIMIT {size}) c;
            """
        )
    parts.append(
        """
        SELECT setval(pg_get_serial_sequence('core_user', 'id'), (SELECT max(id) FROM core_user));
        COMMIT;
        """
    )
    psql(db, "\n".join(parts))
    psql(db, "VACUUM ANALYZE; CHECKPOINT;")


def requests_for(target: str, tokens: list[str]):
    """Round-robin over the users (each client thread starts at its own offset)."""
    path = "/bench/baseline" if target == BARE else "/api/v1/cart"
    counters: dict[int, itertools.count] = {}
    lock = threading.Lock()

    def next_request(index: int):
        if index not in counters:
            with lock:
                counters[index] = itertools.count(index * 997)
        token = tokens[next(counters[index]) % len(tokens)]
        return "GET", path, None, {"Authorization": f"Bearer {token}"}

    return next_request


def check_answers(port: int, tokens: dict[int, list[str]], sizes: list[int]) -> None:
    for size in sizes:
        auth = {"Authorization": f"Bearer {tokens[size][0]}"}
        status, answer = http_request(port, "GET", "/api/v1/cart", headers=auth, timeout=10)
        body = json.loads(answer)
        if status != 200 or body.get("count") != size or body.get("selected_count") != size:
            raise RuntimeError(f"GET /api/v1/cart for a {size}-item cart answered {status}: {body}")
    status, body = http_request(port, "GET", "/bench/baseline", timeout=10)
    if status != 200 or b"items" not in body:
        raise RuntimeError(f"/bench/baseline answered {status}: is BENCH_BASELINE_VIEW on? {body[:200]!r}")


def target_label(target) -> str:
    return "bare view" if target == BARE else f"cart of {target}"


def levels(args, results: dict[tuple[int, object], LevelResult]):
    """(clients, target, its result, the bare view's result at those clients) of each level measured."""
    for c in args.clients:
        bare = results.get((c, BARE))
        for target in [BARE, *args.sizes]:
            r = results.get((c, target))
            if r:
                yield c, target, r, bare


def print_report(args, results: dict[tuple[int, object], LevelResult]) -> None:
    lines = [
        f"Cart benchmark: GET /api/v1/cart vs a bare Django view (/bench/baseline), {args.duration}s per level, "
        + server_layout(args),
        "",
        "| clients | target | req/s | p50 ms | p99 ms | p50 / bare | p99 / bare | req/s bare / req/s "
        "| server CPU ms/req | pg CPU ms/req | client CPU ms/req | other load |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c, target, r, bare in levels(args, results):
        flag = "*" if noisy(r.cpu, args.max_other_load) or r.errors else ""
        if bare and target != BARE:
            ratios = (
                f"{r.p50 / bare.p50:.2f}x | {r.p99 / bare.p99:.2f}x | {bare.rate / r.rate:.2f}x"
                if r.rate
                else "n/a | n/a | n/a"
            )
        else:
            ratios = "1 | 1 | 1"
        lines.append(
            f"| {c} | {target_label(target)} | {fmt(r.rate)}{flag} | {fmt(r.p50, 2)} | {fmt(r.p99, 2)} | {ratios} "
            f"| {fmt(r.cpu['server'], 2)} | {fmt(r.cpu['pg'], 2)} | {fmt(r.cpu['client'], 2)} "
            f"| {r.cpu['other_share'] * 100:.0f}% |"
        )
    for r in results.values():
        if r.errors:
            lines.append(f"* c={r.clients}: non-200 answers {r.errors}")
        if noisy(r.cpu, args.max_other_load):
            lines.append(
                f"* c={r.clients}: other processes used {r.cpu['other_share'] * 100:.0f}% of the machine (lower bound)"
            )
    print("\n".join(lines), flush=True)


def summary_rows(args, results: dict[tuple[int, object], LevelResult]) -> list[dict]:
    rows = []
    for c, target, r, bare in levels(args, results):
        notes = []
        if target != BARE and bare:
            notes.append(f"p99 {r.p99 / bare.p99:.1f}x bare; req/s {r.rate / bare.rate * 100:.0f}% of bare")
        notes += under_load(r.cpu, args.max_other_load)
        if r.errors:
            notes.append(f"errors {r.errors}")
        rows.append(
            summary_row(
                bench="cart",
                case=f"GET {'/bench/baseline' if target == BARE else '/cart'} ({target_label(target)}), {c} clients",
                app=f"{fmt(r.rate)} req/s",
                baseline=f"bare p50 {fmt(bare.p50, 2)} ms" if bare and target != BARE else "",
                # The ratio of latencies the benchmark is about: cart p50 / bare-view p50.
                ratio=f"p50 {r.p50 / bare.p50:.1f}x bare" if bare and target != BARE and bare.p50 else None,
                p50=f"{fmt(r.p50, 2)} ms",
                p99=f"{fmt(r.p99, 2)} ms",
                note="; ".join(notes),
            )
        )
    return rows


def parse_args(argv: list[str] | None = None):
    p = parser(__doc__)
    p.add_argument("--sizes", default="1,5,20", help="cart sizes, comma-separated (default 1,5,20)")
    p.add_argument("--clients", default="1,8", help="comma-separated concurrency levels (default 1,8)")
    p.add_argument("--duration", type=int, default=6, help="seconds per level (default 6)")
    p.add_argument("--warmup", type=float, default=1.0, help="untimed seconds before each level (default 1)")
    p.add_argument("--users", type=int, default=500, help="users per cart size (default 500)")
    add_server_args(p)
    add_common_args(p, db="bench_cart")
    args = p.parse_args(argv)
    args.sizes = int_list(args.sizes)
    args.clients = int_list(args.clients)
    if max(args.sizes) > 50 or args.users > UID_STRIDE:
        p.error(f"cart sizes up to 50 (the seeded courses), at most {UID_STRIDE} users per size")
    check_db_name(p, args.db)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not check_tools("psql"):
        return 2
    tmp = tempfile.mkdtemp(prefix="cart-bench-")
    env = app_env(args.db, tmp, BENCH_BASELINE_VIEW="1")
    server = None
    budget = ExtraTime(args.extra_time)
    level_cost = args.duration + args.warmup + 1
    results: dict[tuple[int, object], LevelResult] = {}
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    try:
        log(f"recreating database {args.db}, migrating, seeding {args.users} users per cart size {args.sizes}")
        recreate_database(args.db)
        migrate(args.python, env, args.app_dir)
        seed(args.db, sizes=args.sizes, users=args.users)
        warn_other_db_activity(args.db)
        tokens: dict[int, list[str]] = {}
        for k, size in enumerate(args.sizes):
            lo = UID_BASE + k * UID_STRIDE + 1
            minted = mint_tokens(args.python, env, lo=lo, hi=lo + args.users - 1, tmp=tmp, app_dir=args.app_dir)
            tokens[size] = [t for _, t in sorted(minted.items())]
        port = free_port()
        server = start_api_server(args, env, port=port)
        check_answers(port, tokens, args.sizes)
        pid = server.pid
        for c in args.clients:
            for target in [BARE, *args.sizes]:
                toks = tokens[args.sizes[0]] if target == BARE else tokens[target]

                def measure(c=c, target=target, toks=toks):
                    wait_for_quiet(budget, args.max_wait)
                    if args.warmup:
                        drive(port=port, clients=c, seconds=args.warmup, next_request=requests_for(target, toks))
                    sampler = CpuSampler(db=args.db, server_pid=pid, client_pids={os.getpid()}).start()
                    res = drive(port=port, clients=c, seconds=args.duration, next_request=requests_for(target, toks))
                    res.cpu = cpu_per_op(sampler.stop(), res.ok)
                    log(
                        f"c={c} {target_label(target)}: {res.rate:.0f} req/s, p50 {fmt(res.p50, 2)} ms, "
                        f"p99 {fmt(res.p99, 2)} ms, errors {res.errors or 'none'}, "
                        f"other load {res.cpu['other_share'] * 100:.0f}%"
                    )
                    return res

                results[(c, target)] = best_of(
                    measure, args=args, budget=budget, level_cost=level_cost, label=f"c={c} {target_label(target)}"
                )
        print_report(args, results)
        write_results(
            args,
            "cart",
            summary_rows(args, results),
            started=started,
            results=[{"target": t} | r.as_dict() for (_, t), r in results.items()],
        )
        return 1 if any(r.errors for r in results.values()) else 0
    finally:
        stop_process(server)
        keep_or_drop(args, tmp)


if __name__ == "__main__":
    sys.exit(main())

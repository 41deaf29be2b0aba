#!/usr/bin/env python3
"""The pay endpoint: POST /api/v1/orders/{order_no}/pay per provider, vs reading the same orders.

What one call costs the API, next to a baseline the same server answers in the same run: `GET
/api/v1/orders/{order_no}` of the same buyers' orders (token check, the order's row, its lines and
attempts). Four cases of the pay call:

- Alipay page pay, a new attempt: the order's row lock, the attempt's INSERT and the signed
  cashier URL (RSA2048 signing in the process; Alipay is not called);
- Alipay page pay again: the open attempt is reused, the URL signed again;
- WeChat Pay Native, a new attempt: the same, then one signed request to the WeChat Pay dev
  gateway (`/v3/pay/transactions/native`), whose signed answer is verified;
- WeChat Pay Native again: the attempt and the code_url WeChat Pay gave it are reused (no call).

The dev gateway runs in a second gunicorn of the app, as WeChat Pay is another service (so the
API's sync workers never wait on themselves); its CPU is shown apart and is not "other load".

One run (see BENCHMARKS.md for figures):

1. drops and recreates a dedicated database (default `bench_pay`), migrates it, seeds with plain
   SQL 50 courses, `--users` buyers and, for each "new attempt" case, `--orders` pending orders of
   one course (an order per call: each call of those cases opens a fresh attempt), plus
   `--reused` orders per provider for the "again" cases and the baseline; mints a token per buyer;
   makes the dev gateways' keys once;
2. starts the API (as `make run` does: sync workers, two per core) and the dev gateway, and opens
   one attempt per provider on each "again" order (untimed), checking each answer's shape;
3. for each client count (default 1 and 8) and each case, waits for an idle machine, warms up, then
   sends the calls back to back for `--duration` s, CPU sampled from /proc;
4. prints calls/s, p50, p99, server CPU ms per call and the ratios to the read of an order.

Stdlib only (helpers in bench/common/), loopback only; needs psql.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass

from common.app import app_env, make_gateway_keys, migrate, mint_tokens
from common.cli import add_common_args, int_list, parser
from common.cpu import CpuSampler, ExtraTime, best_of, cpu_per_op, noisy, under_load, wait_for_quiet
from common.db import check_db_name, check_tools, keep_or_drop, psql, recreate_database
from common.load import LevelResult, drive
from common.log import log
from common.server import (
    add_server_args,
    free_port,
    http_request,
    server_layout,
    start_api_server,
    start_server,
    stop_process,
)
from common.summary import fmt, summary_row, write_results

ORDER_NO_PREFIX = "20991231"  # a date no real order has: order_no = prefix + 10-digit id


@dataclass(frozen=True)
class Case:
    name: str
    label: str
    provider: str | None  # None: the baseline read
    channel: str | None
    fresh: bool  # each call on an order never paid for before (a new attempt)


READ = Case("read", "GET /orders/{no} (baseline)", None, None, False)
CASES = [
    READ,
    Case("alipay_new", "Alipay page, new attempt", "alipay", "page", True),
    Case("alipay_again", "Alipay page, again", "alipay", "page", False),
    Case("wechat_new", "WeChat Native, new attempt", "wechat", "native", True),
    Case("wechat_again", "WeChat Native, again", "wechat", "native", False),
]
ANSWER_FIELD = {"alipay": "pay_url", "wechat": "code_url"}


def order_no(order_id: int) -> str:
    return f"{ORDER_NO_PREFIX}{order_id:010d}"


def seed(db: str, *, users: int, orders: int) -> None:
    """Buyers 1..users; orders 1..orders, order k of buyer (k % users) + 1, one course each,
    pending for two hours."""
    psql(
        db,
        f"""
        BEGIN;
        INSERT INTO core_course (name, description, picture_url, price, is_active, created_at)
        SELECT 'Bench course ' || g, 'Seeded by bench/pay_bench.py', 'https://example.invalid/' || g || '.png',
               (50 + g)::numeric(10, 2), true, now()
        FROM generate_series(1, 50) g;
        INSERT INTO core_user (id, password, last_login, is_superuser, username, first_name, last_name, email,
                               is_staff, is_active, date_joined, username_key, token_version)
        SELECT g, '!bench', NULL, false, 'pay' || g, '', '', '', false, true, now(), 'pay' || g, 0
        FROM generate_series(1, {users}) g;
        INSERT INTO orders_order (id, order_no, user_id, status, pay_type, subtotal, coupon_discount, points_used,
                                  points_discount, pay_amount, user_coupon_id, idempotency_key, request_fingerprint,
                                  expires_at, paid_at, cancelled_at, cancel_reason, refunded_at, created_at)
        SELECT g, '{ORDER_NO_PREFIX}' || lpad(g::text, 10, '0'), (g % {users}) + 1, 'pending', 'alipay', c.price,
               0, 0, 0, c.price, NULL, 'seed-' || g, '', now() + interval '2 hours', NULL, NULL, '', NULL, now()
        FROM generate_series(1, {orders}) g JOIN core_course c ON c.id = (g % 50) + 1;
        INSERT INTO orders_orderline (order_id, course_id, name, picture_url, price)
        SELECT o.id, c.id, c.name, c.picture_url, c.price
        FROM orders_order o JOIN core_course c ON c.id = (o.id % 50) + 1;
        SELECT setval(pg_get_serial_sequence('core_user', 'id'), {users});
        SELECT setval(pg_get_serial_sequence('orders_order', 'id'), {orders});
        COMMIT;
        """,
    )
    psql(db, "VACUUM ANALYZE; CHECKPOINT;")


class Pools:
    """Which orders each case's calls go to: the reused ones (shared by the baseline and the
    "again" cases, cycled), and a range per "new attempt" case whose orders are taken in turn by
    the clients (client i of n takes every n-th), from the first one no call has reached yet."""

    def __init__(self, *, db: str, users: int, fresh_orders: int, reused: int):
        self.db, self.users = db, users
        self.tokens: dict[int, str] = {}
        self.reused = range(1, reused + 1)
        self.fresh: dict[str, range] = {}
        start = reused + 1
        for case in CASES:
            if case.fresh:
                self.fresh[case.name] = range(start, start + fresh_orders)
                start += fresh_orders
        self.total = start - 1

    def token_of(self, order_id: int) -> str:
        return self.tokens[(order_id % self.users) + 1]

    def untouched(self, case: Case) -> range:
        """The case's orders past the last one that has an attempt (warm-ups and earlier levels
        took those before; a call whose answer was lost may have opened one too)."""
        pool = self.fresh[case.name]
        last = psql(
            self.db,
            "SELECT coalesce(max(order_id), 0) FROM orders_paymentattempt "
            f"WHERE order_id BETWEEN {pool[0]} AND {pool[-1]}",
        )
        return range(max(pool[0], int(last) + 1), pool[-1] + 1)

    def requests(self, case: Case, clients: int):
        """A next_request for drive() (forked clients: each counts its own calls)."""
        pool = self.untouched(case) if case.fresh else self.reused
        body = json.dumps({"provider": case.provider, "channel": case.channel}) if case.provider else None
        state = {"n": 0}

        def next_request(index: int):
            n = state["n"]
            state["n"] = n + 1
            if case.fresh:
                if n * clients + index >= len(pool):
                    return None
                order_id = pool[n * clients + index]
            else:
                order_id = pool[(index * 997 + n) % len(pool)]
            headers = {"Authorization": f"Bearer {self.token_of(order_id)}"}
            if body is None:
                return "GET", f"/api/v1/orders/{order_no(order_id)}", None, headers
            headers["Content-Type"] = "application/json"
            return "POST", f"/api/v1/orders/{order_no(order_id)}/pay", body, headers

        return next_request


def call(port: int, method: str, path: str, token: str, body: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    status, answer = http_request(port, method, path, body=body, headers=headers, timeout=30)
    return status, json.loads(answer or b"null")


def open_reused_attempts(port: int, pools: Pools) -> None:
    """One attempt per provider on every reused order, so the "again" cases reuse it; checks the
    answers and the read's shape on the way."""
    for order_id in pools.reused:
        token = pools.token_of(order_id)
        for provider, channel in (("alipay", "page"), ("wechat", "native")):
            body = json.dumps({"provider": provider, "channel": channel})
            status, answer = call(port, "POST", f"/api/v1/orders/{order_no(order_id)}/pay", token, body)
            if status != 200 or not (answer or {}).get(ANSWER_FIELD[provider]):
                raise RuntimeError(f"pay {order_no(order_id)} by {provider} answered {status}: {answer}")
    status, answer = call(port, "GET", f"/api/v1/orders/{order_no(pools.reused[0])}", pools.token_of(pools.reused[0]))
    attempts = (answer or {}).get("payment_attempts") or []
    if status != 200 or len(attempts) != 2:
        raise RuntimeError(f"GET /orders/{order_no(pools.reused[0])} answered {status} with attempts {attempts}")


def count_attempts(db: str) -> tuple[int, int]:
    out = psql(db, "SELECT count(*), count(DISTINCT order_id) FROM orders_paymentattempt")
    total, orders = (int(x) for x in out.split("|"))
    return total, orders


def levels(args, results: dict[tuple[int, str], LevelResult]):
    """(clients, case, its result, the baseline read's result at those clients) of each level measured."""
    for c in args.clients:
        base = results.get((c, READ.name))
        for case in CASES:
            r = results.get((c, case.name))
            if r:
                yield c, case, r, base


def print_report(args, results: dict[tuple[int, str], LevelResult]) -> None:
    lines = [
        f"Pay benchmark: POST /api/v1/orders/{{no}}/pay vs GET /api/v1/orders/{{no}}, {args.duration}s per level, "
        + server_layout(args)
        + "; WeChat Pay's dev gateway in a second gunicorn",
        "",
        "| clients | case | calls/s | p50 ms | p99 ms | p50 / read | calls/s read / calls/s "
        "| server CPU ms/call | gateway CPU ms/call | pg CPU ms/call | other load |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c, case, r, base in levels(args, results):
        flag = "*" if noisy(r.cpu, args.max_other_load) or r.errors else ""
        if base and case is not READ and r.rate:
            ratios = f"{r.p50 / base.p50:.2f}x | {base.rate / r.rate:.2f}x"
        else:
            ratios = "1 | 1" if case is READ else "n/a | n/a"
        lines.append(
            f"| {c} | {case.label} | {fmt(r.rate)}{flag} | {fmt(r.p50, 2)} | {fmt(r.p99, 2)} | {ratios} "
            f"| {fmt(r.cpu['server'], 2)} | {fmt(r.cpu['gateway'], 2)} | {fmt(r.cpu['pg'], 2)} "
            f"| {r.cpu['other_share'] * 100:.0f}% |"
        )
    for (c, name), r in results.items():
        if r.errors:
            lines.append(f"* c={c} {name}: other answers {r.errors}")
        if r.exhausted:
            lines.append(f"* c={c} {name}: ran out of seeded orders after {r.elapsed:.1f}s (raise --orders)")
    print("\n".join(lines), flush=True)


def summary_rows(args, results: dict[tuple[int, str], LevelResult]) -> list[dict]:
    rows = []
    for c, case, r, base in levels(args, results):
        notes = [f"server CPU {fmt(r.cpu['server'], 2)} ms/call"]
        if r.cpu["gateway"]:
            notes.append(f"gateway CPU {fmt(r.cpu['gateway'], 2)} ms/call")
        notes += under_load(r.cpu, args.max_other_load)
        if r.errors:
            notes.append(f"errors {r.errors}")
        rows.append(
            summary_row(
                bench="pay",
                case=f"{case.label}, {c} clients",
                app=f"{fmt(r.rate)} calls/s",
                baseline=f"read p50 {fmt(base.p50, 2)} ms" if base and case is not READ else "",
                ratio=f"p50 {r.p50 / base.p50:.1f}x read" if base and case is not READ and base.p50 else None,
                p50=f"{fmt(r.p50, 2)} ms",
                p99=f"{fmt(r.p99, 2)} ms",
                note="; ".join(notes),
            )
        )
    return rows


def parse_args(argv: list[str] | None = None):
    p = parser(__doc__)
    p.add_argument("--clients", default="1,8", help="comma-separated concurrency levels (default 1,8)")
    p.add_argument("--duration", type=int, default=6, help="seconds per level (default 6)")
    p.add_argument("--warmup", type=float, default=1.0, help="untimed seconds before each level (default 1)")
    p.add_argument("--users", type=int, default=500, help="buyers (default 500)")
    p.add_argument(
        "--orders", type=int, default=30_000, help="orders per 'new attempt' case, for all its levels (default 30000)"
    )
    p.add_argument("--reused", type=int, default=400, help="orders of the 'again' cases and the read (default 400)")
    add_server_args(p)
    p.add_argument("--gateway-workers", type=int, default=2, help="gunicorn workers of the dev gateway (default 2)")
    add_common_args(p, db="bench_pay")
    args = p.parse_args(argv)
    args.clients = int_list(args.clients)
    check_db_name(p, args.db)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not check_tools("psql"):
        return 2
    tmp = tempfile.mkdtemp(prefix="pay-bench-")
    port, gateway_port = free_port(), free_port()
    env = app_env(
        args.db,
        tmp,
        WECHATPAY_DEV_GATEWAY="1",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        DEV_GATEWAY_BASE_URL=f"http://127.0.0.1:{gateway_port}",
        AUTH_RATE_LIMIT="0",
    )
    server = gateway = None
    budget = ExtraTime(args.extra_time)
    level_cost = args.duration + args.warmup + 1
    results: dict[tuple[int, str], LevelResult] = {}
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    pools = Pools(db=args.db, users=args.users, fresh_orders=args.orders, reused=args.reused)
    try:
        log(f"recreating database {args.db}, migrating, seeding {args.users} buyers and {pools.total} orders")
        recreate_database(args.db)
        migrate(args.python, env, args.app_dir)
        seed(args.db, users=args.users, orders=pools.total)
        pools.tokens = mint_tokens(args.python, env, lo=1, hi=args.users, tmp=tmp, app_dir=args.app_dir)
        make_gateway_keys(args.python, env, args.app_dir)
        gateway_env = dict(env, VAR_DIR=tmp)
        gateway = start_server(
            args.python,
            gateway_env,
            app_dir=args.app_dir,
            port=gateway_port,
            workers=args.gateway_workers,
            threads=1,
        )
        server = start_api_server(args, env, port=port)
        open_reused_attempts(port, pools)
        for c in args.clients:
            for case in CASES:

                def measure(c=c, case=case):
                    wait_for_quiet(budget, args.max_wait)
                    if args.warmup:
                        drive(port=port, clients=c, seconds=args.warmup, next_request=pools.requests(case, c))
                    sampler = CpuSampler(db=args.db, server_pid=server.pid, client_pids={os.getpid()}).start()
                    gateway_sampler = CpuSampler(db=args.db, server_pid=gateway.pid, client_pids=set()).start()
                    res = drive(port=port, clients=c, seconds=args.duration, next_request=pools.requests(case, c))
                    gateway_ticks = gateway_sampler.stop()["server"]
                    ticks = sampler.stop()
                    # The gateway stands for WeChat Pay: its CPU is the provider's, not other load.
                    ticks["other"] = max(0, ticks["other"] - gateway_ticks)
                    res.cpu = cpu_per_op(ticks, res.ok)
                    res.cpu["gateway"] = cpu_per_op(dict(ticks, server=gateway_ticks), res.ok)["server"]
                    log(
                        f"c={c} {case.label}: {res.rate:.0f} calls/s, p50 {fmt(res.p50, 2)} ms, "
                        f"p99 {fmt(res.p99, 2)} ms, server {fmt(res.cpu['server'], 2)} ms/call, "
                        f"gateway {fmt(res.cpu['gateway'], 2)} ms/call, errors {res.errors or 'none'}, "
                        f"other load {res.cpu['other_share'] * 100:.0f}%"
                    )
                    return res

                results[(c, case.name)] = best_of(
                    measure, args=args, budget=budget, level_cost=level_cost, label=f"c={c} {case.label}"
                )
        attempts, orders = count_attempts(args.db)
        log(f"{attempts} payment attempts on {orders} orders (one per 'new attempt' call, two per reused order)")
        print_report(args, results)
        write_results(
            args,
            "pay",
            summary_rows(args, results),
            started=started,
            results=[{"case": name} | r.as_dict() for (_, name), r in results.items()],
        )
        return 1 if any(r.errors for r in results.values()) else 0
    finally:
        stop_process(server)
        stop_process(gateway)
        keep_or_drop(args, tmp)


if __name__ == "__main__":
    sys.exit(main())

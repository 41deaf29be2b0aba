#!/usr/bin/env python3
"""Flash-sale coupon claims: POST /api/v1/coupons/{id}/claim on ONE coupon (a hot row) vs pgbench.

Many users claim the same coupon at once; it has plenty of stock, so every claim succeeds and
every claim updates the same `billing_coupon` row (`issued_count = issued_count + 1 WHERE
issued_count < total_quantity`): the row lock serialises them from that UPDATE to the COMMIT.
The claim is one statement in autocommit (billing/claim_sql.py): that UPDATE, then the user
coupon's INSERT from the row it returns, so the lock lasts that one statement and its commit.

One run (see BENCHMARKS.md for figures and analysis):

1. drops and recreates a dedicated database (default `bench_coupon`), migrates it, and seeds
   with plain SQL one hot coupon (10,000,000 in stock), a small coupon for the sold-out check,
   a pool of API users and a pool of pgbench users (each user claims once);
2. starts gunicorn (as `make run` does: sync workers, two per core) and, for each client count
   (default 1, 8, 32), restores the pool (claims deleted, issued_count back to 0; untimed), warms
   up, then drives the claim for `--duration` s, every request a different user; only 201 counts.
   The load generator is wrk (`--client wrk`, default; bench/pool.wrk.lua), C like pgbench, or
   forked Python http.client processes (`--client python`), whose CPU comes off the same cores.
   After each level it checks issued_count == number of 201 answers == user coupon rows;
3. checks no oversell: `--soldout-claims` users claim a coupon with half that stock at 32 clients:
   exactly the stock answers 201, the rest 409 coupon_sold_out, issued_count == stock;
4. runs pgbench at the same client counts with `bench/coupon_tx.pgbench.sql` (variant "tx": the
   hot-row transaction BEGIN / INSERT / UPDATE / COMMIT the claim was until 2026-11-28, the
   ratio's baseline as issue 19 set it), `bench/coupon_claim.pgbench.sql` (variant "claim": the
   app's one claim statement alone) and `bench/coupon.pgbench.sql` (variant "full": every
   statement the endpoint sends, the token's user read included), and checks issued_count ==
   transactions == rows the same way;
5. prints the table (claims/s, p50, p99 for the API and each pgbench variant; API/pgbench).

Helpers in bench/common/ (waiting for an idle machine, re-measuring disturbed levels, CPU from
/proc). Stdlib only, loopback only; needs psql and pgbench (postgresql-client), and wrk
(`apt-get install wrk`) unless `--client python`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from functools import partial

from common.app import app_env, migrate, mint_tokens
from common.cli import BENCH_DIR, add_common_args, int_list, parser
from common.cpu import CpuSampler, ExtraTime, PgActivitySampler, best_of, cpu_per_op, noisy, under_load, wait_for_quiet
from common.db import check_db_name, keep_or_drop, psql, recreate_database, warn_other_db_activity
from common.load import LevelResult, PoolRequest, UserPool, drive
from common.log import log
from common.pairs import Pair, by_level, flag, level_verdict, median, round_rows
from common.pgbench import PgbenchResult, database_tools, run_pgbench
from common.server import add_server_args, free_port, server_layout, start_api_server, stop_process
from common.summary import fmt, pct, summary_row, write_results
from common.wrk import add_client_arg, drive_wrk, find_wrk

HOT_COUPON = 1
SOLDOUT_COUPON = 2
HOT_STOCK = 10_000_000
API_UID_BASE = 1_000_000
SOLDOUT_UID_BASE = 3_000_000
PGB_UID_BASE = 5_000_000
PGBENCH_SEQ = "bench_coupon_next_user"
PGBENCH_SEQ_START = 10**12
# The ratio's baseline (issue 19), measured right after each API run; the other scripts once a level.
BASELINE = "tx"
# At 8 clients: claims/s against pgbench's hot-row transactions/s, and every round's p99.
TARGETS = {"min_ratio": 0.40, "max_p99_ms": 30}


def claim(coupon: int) -> PoolRequest:
    return PoolRequest("POST", f"/api/v1/coupons/{coupon}/claim", ok_status=201)


HOT_CLAIM = claim(HOT_COUPON)
SCRIPTS = {
    "tx": BENCH_DIR / "coupon_tx.pgbench.sql",
    "full": BENCH_DIR / "coupon.pgbench.sql",
    "claim": BENCH_DIR / "coupon_claim.pgbench.sql",
}


def seed(db: str, *, api_users: int, pgbench_users: int, soldout_claims: int) -> None:
    psql(
        db,
        f"""
        BEGIN;
        INSERT INTO billing_coupon (id, name, kind, threshold, amount_off, percent_off, starts_at, ends_at,
                                    total_quantity, issued_count, created_at)
        VALUES ({HOT_COUPON}, 'Bench flash sale', 'fixed', 0, 5.00, NULL, '2000-01-01 00:00:00+00',
                '2999-01-01 00:00:00+00', {HOT_STOCK}, 0, now()),
               ({SOLDOUT_COUPON}, 'Bench sold out', 'fixed', 0, 5.00, NULL, '2000-01-01 00:00:00+00',
                '2999-01-01 00:00:00+00', {soldout_claims // 2}, 0, now());
        SELECT setval(pg_get_serial_sequence('billing_coupon', 'id'), {SOLDOUT_COUPON});
        INSERT INTO core_user (id, password, last_login, is_superuser, username, first_name, last_name, email,
                               is_staff, is_active, date_joined, username_key, token_version)
        SELECT g, '!bench', NULL, false, 'claim' || g, '', '', '', false, true, now(), 'claim' || g, 0
        FROM (SELECT generate_series({API_UID_BASE + 1}, {API_UID_BASE + api_users}) g
              UNION ALL SELECT generate_series({SOLDOUT_UID_BASE + 1}, {SOLDOUT_UID_BASE + soldout_claims})
              UNION ALL SELECT generate_series({PGB_UID_BASE + 1}, {PGB_UID_BASE + pgbench_users})) u;
        SELECT setval(pg_get_serial_sequence('core_user', 'id'), (SELECT max(id) FROM core_user));
        COMMIT;
        VACUUM ANALYZE;
        """,
    )


def restore(db: str) -> None:
    """Every user can claim again: claims of the hot coupon deleted, its issued_count back to 0."""
    psql(
        db,
        f"""
        BEGIN;
        DELETE FROM billing_usercoupon WHERE coupon_id = {HOT_COUPON};
        UPDATE billing_coupon SET issued_count = 0 WHERE id = {HOT_COUPON};
        COMMIT;
        """,
    )
    psql(db, "VACUUM ANALYZE billing_coupon; VACUUM ANALYZE billing_usercoupon; CHECKPOINT;")


def issued(db: str, coupon: int) -> tuple[int, int]:
    out = psql(
        db,
        f"SELECT issued_count, (SELECT count(*) FROM billing_usercoupon WHERE coupon_id = {coupon}) "
        f"FROM billing_coupon WHERE id = {coupon};",
    )
    a, b = out.split("|")
    return int(a), int(b)


def settled_issued(db: str, coupon: int, *, timeout: float = 10.0) -> tuple[int, int]:
    """issued(), once two reads 0.2 s apart agree: wrk stops with requests in flight, which the
    server still completes; the checks, and the next level's restore, must come after them."""
    last = issued(db, coupon)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = issued(db, coupon)
        if now == last:
            break
        last = now
    return last


def drive_claims(args, *, port: int, server_pid: int, pool: UserPool, tokens_file: str, clients: int):
    """Warm-up, then the timed claims, through the load generator --client chose; the CPU per
    claim and what the backends were doing."""
    if args.client == "wrk":
        wrk = partial(drive_wrk, args.wrk, HOT_CLAIM, port=port, pool=pool, tokens_file=tokens_file, clients=clients)
        warm = wrk(seconds=args.warmup, sampler_args=None)
        activity = PgActivitySampler(args.db).start()
        sampler_args = {"db": args.db, "server_pid": server_pid, "client_pids": {activity.proc.pid}}
        res = wrk(seconds=args.duration, sampler_args=sampler_args)
        res.activity = activity.stop()
        return warm, res
    claims = HOT_CLAIM.from_pool(pool)
    warm = drive(port=port, clients=clients, seconds=args.warmup, next_request=claims, ok_status=201)
    activity = PgActivitySampler(args.db).start()
    sampler = CpuSampler(db=args.db, server_pid=server_pid, client_pids={os.getpid(), activity.proc.pid}).start()
    res = drive(port=port, clients=clients, seconds=args.duration, next_request=claims, ok_status=201)
    res.cpu = cpu_per_op(sampler.stop(), res.ok)
    res.activity = activity.stop()
    return warm, res


def run_api_level(
    args, *, port: int, server_pid: int, pool: UserPool, tokens_file: str, clients: int, budget: ExtraTime
) -> LevelResult:
    restore(args.db)
    pool.reset()
    wait_for_quiet(budget, args.max_wait)
    warm, res = drive_claims(
        args, port=port, server_pid=server_pid, pool=pool, tokens_file=tokens_file, clients=clients
    )
    count, rows = settled_issued(args.db, HOT_COUPON)
    answered, unanswered = warm.ok + res.ok, warm.unanswered + res.unanswered
    res.verified = count == rows and answered <= count <= answered + unanswered and not warm.errors
    res.verify_text = f"issued_count {count}, rows {rows}, 201s {answered} (warm-up {warm.ok})"
    if unanswered:
        res.verify_text += f" + {unanswered} unanswered at the load generator's stop"
    log(
        f"API c={clients}: {res.ok} claims in {res.elapsed:.1f}s = {res.rate:.1f}/s, p50 {fmt(res.p50)} ms, "
        f"p99 {fmt(res.p99)} ms, errors {res.errors or 'none'}, other load {res.cpu['other_share'] * 100:.0f}%; "
        f"{res.verify_text} -> {'OK' if res.verified else 'MISMATCH'}"
    )
    return res


def soldout_check(args, *, port: int, tokens: dict[int, str]) -> dict:
    stock = args.soldout_claims // 2
    pool = UserPool(tokens)
    res = drive(
        port=port, clients=32, seconds=60, next_request=claim(SOLDOUT_COUPON).from_pool(pool), ok_status=201
    )  # ends when the pool is used up
    count, rows = issued(args.db, SOLDOUT_COUPON)
    sold_out = res.errors.get("409:coupon_sold_out", 0)
    ok = res.ok == stock == count == rows and sold_out == args.soldout_claims - stock
    out = {"claims": args.soldout_claims, "stock": stock, "201": res.ok, "409_sold_out": sold_out}
    out.update(issued_count=count, rows=rows, other_errors={k: v for k, v in res.errors.items() if "sold_out" not in k})
    out["ok"] = ok
    log(f"sold-out check: {out} -> {'OK' if ok else 'OVERSOLD OR LOST'}")
    return out


def run_pgbench_level(args, pgbench: str, *, variant: str, clients: int, tmp: str, budget: ExtraTime) -> PgbenchResult:
    restore(args.db)
    psql(args.db, f"CREATE SEQUENCE IF NOT EXISTS {PGBENCH_SEQ} START {PGBENCH_SEQ_START};")
    offset = int(psql(args.db, f"SELECT nextval('{PGBENCH_SEQ}');"))
    wait_for_quiet(budget, args.max_wait)
    activity = PgActivitySampler(args.db).start()
    res = run_pgbench(
        pgbench,
        args.db,
        script=SCRIPTS[variant],
        clients=clients,
        seconds=args.duration,
        tmp=tmp,
        defines={"first_uid": PGB_UID_BASE + 1, "seq_offset": offset, "coupon_id": HOT_COUPON},
        client_pids={activity.proc.pid},
    )
    res.activity = activity.stop()
    used = int(psql(args.db, f"SELECT last_value FROM {PGBENCH_SEQ};")) - offset
    res.exhausted = used > args.pgbench_users
    count, rows = issued(args.db, HOT_COUPON)
    res.verified = count == rows == res.transactions and not res.failed
    res.verify_text = f"issued_count {count}, rows {rows}, transactions {res.transactions}"
    log(
        f"pgbench {variant} c={clients}: {res.tps:.1f} tps, p50 {fmt(res.p50_ms, 2)} ms, "
        f"p99 {fmt(res.p99_ms, 2)} ms, other load {res.cpu['other_share'] * 100:.0f}%; {res.verify_text} -> "
        f"{'OK' if res.verified else 'MISMATCH'}"
    )
    return res


def cpu_row(c: int, label: str, r) -> str:
    cpu = r.cpu
    return (
        f"| {c} | {label} | {fmt(cpu['server'], 2)} | {fmt(cpu['pg'], 2)} | {fmt(cpu['pg_aux'], 2)} "
        f"| {fmt(cpu['client'], 2)} | {cpu['machine_busy'] * 100:.0f}% | {cpu['other_share'] * 100:.0f}% "
        f"| {fmt(r.activity['lock_waiters'], 2)} | {fmt(r.activity['idle_in_tx'], 2)} "
        f"| {'OK' if r.verified else 'MISMATCH'}: {r.verify_text} |"
    )


def print_report(args, pairs: list[Pair], extra: dict[str, dict[int, PgbenchResult]], soldout: dict) -> None:
    lines = [
        f"Coupon claim benchmark: one hot coupon, {args.duration}s per level, {args.rounds} paired round(s) "
        f"(the API, then pgbench {BASELINE} right after), " + server_layout(args),
        "",
        f"| clients | round | API claims/s | p50 ms | p99 ms | pgbench {BASELINE} tps | p50 ms | p99 ms "
        f"| API/{BASELINE} |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += round_rows(pairs, max_other_load=args.max_other_load)
    verdict = level_verdict(by_level(pairs).get(8, []), **TARGETS)
    if verdict:
        lines += ["", f"Targets at 8 clients: {verdict}"]
    if extra:
        lines += ["", "The other pgbench scripts, once per level, against the API's median:", ""]
        lines.append("| clients | " + " | ".join(f"pgbench {v} tps | API/{v}" for v in extra) + " |")
        lines.append("|---:|" + "---:|---:|" * len(extra))
        for c, rounds in by_level(pairs).items():
            rate = median([r.api.rate for r in rounds if r.api])
            cells = []
            for v in extra:
                p = extra[v].get(c)
                ratio = pct(rate / p.tps) if p and p.tps and rate == rate else "n/a"
                cells.append(f"{fmt(p.tps) + flag(p, args.max_other_load) if p else 'n/a'} | {ratio}")
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "CPU per claim in ms (from /proc): server = gunicorn, pg = backends of the bench database, client = load",
        "generator; other load = everything else (other people's test runs) as a share of the machine.",
        "",
        "lock waiters = mean number of backends waiting for a lock (the hot row), idle in tx = mean number",
        "holding a transaction open while waiting for their client (sampled every 50 ms).",
        "",
        "| clients | run | server | pg | pg aux | client | machine busy | other load | lock waiters | idle in tx "
        "| check |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c, rounds in by_level(pairs).items():
        for pair in rounds:
            suffix = f", round {pair.round}" if args.rounds > 1 else ""
            lines += [
                cpu_row(c, label + suffix, r)
                for label, r in (("API", pair.api), (f"pgbench {BASELINE}", pair.pgb))
                if r and r.cpu
            ]
        lines += [cpu_row(c, f"pgbench {v}", extra[v][c]) for v in extra if c in extra[v] and extra[v][c].cpu]
    lines.append("")
    if soldout:
        lines.append(
            f"Sold-out check (32 clients, {soldout['claims']} users, stock {soldout['stock']}): "
            f"{soldout['201']} x 201, {soldout['409_sold_out']} x 409 coupon_sold_out, issued_count "
            f"{soldout['issued_count']}, rows {soldout['rows']}, other answers {soldout['other_errors'] or 'none'} -> "
            f"{'OK (no oversell)' if soldout['ok'] else 'FAILED'}"
        )
    runs = [r for pair in pairs for r in (pair.api, pair.pgb) if r] + [p for ps in extra.values() for p in ps.values()]
    for r in runs:
        if r.cpu and noisy(r.cpu, args.max_other_load):
            lines.append(
                f"* c={r.clients}: other processes used {r.cpu['other_share'] * 100:.0f}% of the machine (lower bound)"
            )
    for pair in pairs:
        if pair.api and pair.api.errors:
            lines.append(f"* API c={pair.clients} round {pair.round}: non-201 answers {pair.api.errors}")
    print("\n".join(lines), flush=True)


def summary_rows(args, pairs: list[Pair], extra: dict[str, dict[int, PgbenchResult]], soldout: dict):
    """One row per client count: medians over the paired rounds."""
    rows = []
    for c, rounds in by_level(pairs).items():
        apis = [r.api for r in rounds if r.api]
        pgbs = [r.pgb for r in rounds if r.pgb]
        ratios = [r.ratio for r in rounds if r.ratio is not None]
        notes = [] if len(rounds) == 1 else [f"median of {len(rounds)} paired rounds"]
        rate = median([a.rate for a in apis])
        full = extra.get("full", {}).get(c)
        if full and full.tps and apis:
            notes.append(f"pgbench full {fmt(full.tps)} tps ({rate / full.tps * 100:.0f}%)")
        if apis:
            notes.append(f"mean lock waiters {median([a.activity['lock_waiters'] for a in apis]):.1f}")
            notes.append("issued_count == 201s" if all(a.verified for a in apis) else "COUNT MISMATCH")
            for a in apis:
                notes += under_load(a.cpu, args.max_other_load)
        if c == 8:
            notes.append(level_verdict(rounds, **TARGETS))
        rows.append(
            summary_row(
                bench="coupon",
                case=f"claim one hot coupon, {c} clients",
                app=f"{fmt(rate)} claims/s" if apis else "n/a",
                baseline=f"pgbench {BASELINE} {fmt(median([p.tps for p in pgbs]))} tps" if pgbs else "",
                ratio=median(ratios) if ratios else None,
                p50=f"{fmt(median([a.p50 for a in apis]))} ms" if apis else "",
                p99=f"{fmt(median([a.p99 for a in apis]))} ms" if apis else "",
                note="; ".join(n for n in dict.fromkeys(notes) if n),
            )
        )
    if soldout:
        rows.append(
            summary_row(
                bench="coupon",
                case=f"sold-out check: {soldout['claims']} users, stock {soldout['stock']}, 32 clients",
                app=f"{soldout['201']} x 201",
                note=("no oversell, " if soldout["ok"] else "FAILED, ")
                + f"{soldout['409_sold_out']} x 409 sold out, issued_count {soldout['issued_count']}",
            )
        )
    return rows


def parse_args(argv: list[str] | None = None):
    p = parser(__doc__)
    p.add_argument("--clients", default="1,8,32", help="comma-separated concurrency levels (default 1,8,32)")
    p.add_argument("--duration", type=int, default=10, help="seconds per level, API and pgbench (default 10)")
    p.add_argument("--warmup", type=float, default=1.0, help="untimed seconds before each API level (default 1)")
    add_server_args(p)
    add_client_arg(p)
    p.add_argument("--api-users", type=int, default=20000, help="API users, reused each level (default 20000)")
    p.add_argument("--pgbench-users", type=int, default=100000, help="pgbench users (default 100000)")
    p.add_argument("--soldout-claims", type=int, default=1000, help="users in the sold-out check (0: skip)")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help=f"paired rounds (API, then pgbench {BASELINE}) per level; tables show each and the median (default 1)",
    )
    p.add_argument(
        "--variants",
        default="tx,claim,full",
        help="pgbench scripts: tx, claim, full, comma-separated (default tx,claim,full)",
    )
    p.add_argument("--skip-api", action="store_true")
    p.add_argument("--skip-pgbench", action="store_true")
    add_common_args(p, db="bench_coupon")
    args = p.parse_args(argv)
    args.clients = int_list(args.clients)
    args.variants = [v for v in args.variants.split(",") if v]
    if any(v not in SCRIPTS for v in args.variants):
        p.error(f"--variants: choose from {', '.join(SCRIPTS)}")
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
    tmp = tempfile.mkdtemp(prefix="coupon-bench-")
    env = app_env(args.db, tmp)
    server = None
    budget = ExtraTime(args.extra_time)
    level_cost = args.duration + args.warmup + 3
    pairs: list[Pair] = []
    measure_baseline = not args.skip_pgbench and BASELINE in args.variants
    extra: dict[str, dict[int, PgbenchResult]] = (
        {} if args.skip_pgbench else {v: {} for v in args.variants if v != BASELINE}
    )
    soldout: dict = {}
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    try:
        log(f"recreating database {args.db}, migrating, seeding")
        recreate_database(args.db)
        migrate(args.python, env, args.app_dir)
        seed(args.db, api_users=args.api_users, pgbench_users=args.pgbench_users, soldout_claims=args.soldout_claims)
        warn_other_db_activity(args.db)
        api_level = None
        if not args.skip_api:
            lo, hi = API_UID_BASE + 1, API_UID_BASE + args.api_users
            pool = UserPool(mint_tokens(args.python, env, lo=lo, hi=hi, tmp=tmp, app_dir=args.app_dir))
            tokens_file = os.path.join(tmp, "tokens.txt")
            pool.write(tokens_file)
            port = free_port()
            server = start_api_server(args, env, port=port)
            api_level = partial(
                run_api_level, args, port=port, server_pid=server.pid, pool=pool, tokens_file=tokens_file, budget=budget
            )
        for c in args.clients:
            for round_no in range(1, args.rounds + 1):
                pair = Pair(clients=c, round=round_no)
                label = f"c={c} round {round_no}"
                if api_level:
                    measure = partial(api_level, clients=c)
                    pair.api = best_of(measure, args=args, budget=budget, level_cost=level_cost, label=f"API {label}")
                if measure_baseline:  # right after its API run; gunicorn stays up, idle
                    measure = partial(
                        run_pgbench_level, args, pgbench, variant=BASELINE, clients=c, tmp=tmp, budget=budget
                    )
                    pair.pgb = best_of(
                        measure, args=args, budget=budget, level_cost=level_cost, label=f"pgbench {label}"
                    )
                pairs.append(pair)
        if api_level and args.soldout_claims:
            lo = SOLDOUT_UID_BASE + 1
            tokens = mint_tokens(
                args.python, env, lo=lo, hi=lo + args.soldout_claims - 1, tmp=tmp, app_dir=args.app_dir
            )
            soldout = soldout_check(args, port=port, tokens=tokens)
        stop_process(server)
        server = None
        for v in extra:
            for c in args.clients:
                measure = partial(run_pgbench_level, args, pgbench, variant=v, clients=c, tmp=tmp, budget=budget)
                extra[v][c] = best_of(
                    measure, args=args, budget=budget, level_cost=level_cost, label=f"pgbench {v} c={c}"
                )
        print_report(args, pairs, extra, soldout)
        apis = [p.api for p in pairs if p.api]
        pgbs = [p.pgb for p in pairs if p.pgb] + [r for rs in extra.values() for r in rs.values()]
        write_results(
            args,
            "coupon",
            summary_rows(args, pairs, extra, soldout),
            started=started,
            api=[
                r.as_dict() | {"round": p.round, "verified": r.verified, "activity": r.activity}
                for p in pairs
                if (r := p.api)
            ],
            pgbench={BASELINE: [vars(p.pgb) | {"round": p.round} for p in pairs if p.pgb]}
            | {v: [vars(r) for r in rs.values()] for v, rs in extra.items()},
            soldout=soldout,
        )
        bad = any(not r.verified or r.errors or r.exhausted for r in apis) or any(
            not p.verified or p.exhausted for p in pgbs
        )
        return 1 if bad or (soldout and not soldout["ok"]) else 0
    finally:
        stop_process(server)
        keep_or_drop(args, tmp)


if __name__ == "__main__":
    sys.exit(main())

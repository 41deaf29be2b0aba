"""What the drill prints: a line per checkpoint, and at the end the tables (orders and money per
provider, invariants per checkpoint, how late expired orders were cancelled, client-visible errors
per fault window) and the verdict."""

from __future__ import annotations

from collections import Counter, defaultdict

from common.load import percentile
from common.log import log

from .checks import CheckResult
from .faults import Fault
from .flows import BACKOFF, Recorder, Req

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
        if f.start and req.t0 <= f.end and req.t1 >= f.start:
            return f.name
    return "outside"


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
        b = buckets.get(f.name, {"reqs": 0, "5xx": Counter(), "conn": Counter(), "lat": []})
        secs = f"{f.end - f.start:.1f}" if f.start else "-"
        five = sum(b["5xx"].values())
        conn = sum(b["conn"].values())
        detail5 = f" ({', '.join(f'{k} {v}' for k, v in b['5xx'].most_common(4))})" if five else ""
        detailc = f" ({', '.join(f'{k} {v}' for k, v in b['conn'].most_common(4))})" if conn else ""
        lat = b["lat"]
        lines.append(
            f"| {f.label} | {secs} | {b['reqs']} | {five}{detail5} | {conn}{detailc} "
            f"| {percentile(lat, 50):.0f} / {max(lat) if lat else float('nan'):.0f} |"
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


def print_report(
    args, rec: Recorder, faults: list[Fault], results: list[CheckResult], stack, findings: list[str], alive
) -> list[str]:
    """Prints the tables and the verdict at the end of a run; returns what failed (empty: all held)."""
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
        lines.append(f"- {f.label}: " + "; ".join(f.notes))
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
    print("\n".join(lines), flush=True)
    return failed

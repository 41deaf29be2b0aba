"""The checks at each checkpoint (the invariants in one REPEATABLE READ snapshot, what the clients
saw against the database), and the figures for the report: how late expired orders were cancelled,
where the money went, Dramatiq threads that died."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from .faults import Fault
from .flows import Recorder, Seen
from .invariants import CHECKS, GATEWAYS, LIVENESS, SEEN_REFUNDS_SQL, SEEN_SQL
from .stack import DrillPostgres, db_connect


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


def run_checks(args, pg: DrillPostgres, rec: Recorder, label: str, *, final: bool, grace: float) -> CheckResult:
    import psycopg

    seen = rec.snapshot_seen()  # every one of these 201s was committed before the snapshot below
    refunds = rec.snapshot_refunds()  # and so was every one of these refunds
    result = CheckResult(label)
    conn = db_connect(pg, args.db)
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


def expiry_lateness(args, pg: DrillPostgres, faults: list[Fault], load_wall: float, first_wall: float) -> list[tuple]:
    """How late expired orders were cancelled (cancelled_at - expires_at), by when they lived:
    - placed after a fault's recovery and due before the next check: was expiry healthy again?
    - placed before a fault and due after it: their messages lived through the fault."""
    spans = [("baseline", "placed and due before the first fault", load_wall, first_wall, load_wall, first_wall)]
    for f in faults:
        if not f.wall:
            continue
        spans.append((f.label, "expiry message existed at the fault", 0, f.wall, f.wall, 4e9))
        # Due a little before the check: a message due right at it would fire during the next fault.
        due_by = f.wall_checked - 2
        spans.append((f.label, "placed after recovery, due before the check", f.wall_recovered, 4e9, 0, due_by))
    out = []
    conn = db_connect(pg, args.db)
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

"""What must hold after every fault, in SQL (checks.py runs them in one REPEATABLE READ snapshot):
no partial order, ledgers that add up, coupons held as the status says, one paid attempt per order,
refunds within what was paid, the gateways' money matching the shop's books."""

from __future__ import annotations

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


def entries_of(reason: str) -> str:
    """`e`: each order's ledger entries of one reason, their sum (s) and number (n); to LEFT JOIN."""
    return f"""(
             SELECT order_id, sum(delta) AS s, count(*) AS n FROM billing_pointsentry
             WHERE reason = '{reason}' GROUP BY order_id) e ON e.order_id = o.id"""


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
        f"""SELECT o.order_no FROM orders_order o LEFT JOIN {entries_of("order_debit")}
           WHERE coalesce(e.s, 0) <> -o.points_used OR coalesce(e.n, 0) <> (o.points_used > 0)::int""",
        True,
    ),
    (
        "points_refund",
        "cancelled orders whose points are not refunded once (or pending/paid orders with a refund)",
        f"""SELECT o.order_no FROM orders_order o LEFT JOIN {entries_of("order_refund")}
           WHERE (o.status = 'cancelled' AND (coalesce(e.s, 0) <> o.points_used
                                              OR coalesce(e.n, 0) <> (o.points_used > 0)::int))
              OR ((o.status = 'pending' OR o.status IN {PAID_STATUSES}) AND e.n IS NOT NULL)""",
        True,
    ),
    (
        "points_earned",
        "paid orders without their earned points (floor(pay_amount)), or earned points on unpaid ones",
        f"""SELECT o.order_no FROM orders_order o LEFT JOIN {entries_of("order_earned")}
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
# Every refund a client was told of (201, first time or replayed after a retry) is in the database
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

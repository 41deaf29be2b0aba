"""The points ledger's rule, written once: a balance changes only in the statement that writes its
`PointsEntry`, and the entry's `balance_after` is read back from the account row that statement
updated. Balance and ledger cannot drift apart, and a concurrent change of the same account waits
for the row lock the UPDATE holds until commit.

Billing's services run MOVE_POINTS as a statement of its own (`move_points`); the checkout sends
the same CTEs inside its one write (billing/checkout_sql.py). Their parameters are named
`billing_*`, so a statement that composes them cannot clash with its own.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.utils import timezone

from billing.models import PointsEntry
from core.db import field_names


@dataclass(frozen=True)
class PointsMove:
    user_id: int
    delta: int  # a credit is positive, a debit negative; never 0 (points_entry_delta_not_zero)
    order_id: int | None = None


ENTRY_FIELDS = field_names(PointsEntry)

# An UPDATE changes a row at most once, so several moves of one account (two cancelled orders of
# one user in a batch) change its balance once, by their sum; each entry's balance_after is then
# counted back from the updated balance by what the account moves after it in this statement, so
# its entries run in the moves' order. A user without an account matches no row and gets no
# entry: callers open accounts first. (points_moves adds the deltas up in Python: a GROUP BY and
# a window here would be planned anew in every checkout, for sums of one move.)
MOVE_POINTS = """
points_account AS (
    UPDATE billing_pointsaccount account SET balance = account.balance + total.delta
    FROM unnest(%(billing_account_user_ids)s::bigint[], %(billing_account_deltas)s::bigint[]) AS total (user_id, delta)
    WHERE account.user_id = total.user_id
    RETURNING account.id, account.user_id, account.balance
), points_entry AS (
    INSERT INTO billing_pointsentry (account_id, delta, balance_after, reason, order_id, created_at)
    SELECT account.id, move.delta, account.balance - move.moved_later, %(billing_move_reason)s, move.order_id,
        %(billing_move_at)s
    FROM unnest(%(billing_move_user_ids)s::bigint[], %(billing_move_deltas)s::bigint[],
        %(billing_move_moved_later)s::bigint[], %(billing_move_order_ids)s::bigint[])
        WITH ORDINALITY AS move (user_id, delta, moved_later, order_id, n)
    JOIN points_account account USING (user_id)
    ORDER BY move.n
    RETURNING {}
)""".format(", ".join(ENTRY_FIELDS))

MOVE_POINTS_ALONE = f"WITH {MOVE_POINTS.strip()}\nSELECT * FROM points_entry ORDER BY id"


def points_moves(*, moves: Sequence[PointsMove], reason: str, at: datetime) -> dict[str, object]:
    """MOVE_POINTS's parameters; no moves, no rows touched."""
    totals: dict[int, int] = {}
    moved_later = []
    for move in reversed(moves):
        moved_later.append(totals.get(move.user_id, 0))
        totals[move.user_id] = totals.get(move.user_id, 0) + move.delta
    moved_later.reverse()
    return {
        "billing_account_user_ids": list(totals),
        "billing_account_deltas": list(totals.values()),
        "billing_move_user_ids": [move.user_id for move in moves],
        "billing_move_deltas": [move.delta for move in moves],
        "billing_move_moved_later": moved_later,
        "billing_move_order_ids": [move.order_id for move in moves],
        "billing_move_reason": reason,
        "billing_move_at": at,
    }


def move_points(*, moves: Sequence[PointsMove], reason: str) -> list[PointsEntry]:
    """MOVE_POINTS as one statement, its entries in the moves' order. Every account must exist;
    moves of more than one account need their locks taken first, in pk order, so that two such
    statements cannot deadlock."""
    with connection.cursor() as cursor:
        cursor.execute(MOVE_POINTS_ALONE, points_moves(moves=moves, reason=reason, at=timezone.now()))
        rows = cursor.fetchall()
    if len(rows) != len(moves):
        # Only a missing account does this: raising keeps a credit from vanishing without a trace.
        raise LookupError(f"{len(moves) - len(rows)} of {len(moves)} points moves found no account")
    return [PointsEntry.from_db(connection.alias, ENTRY_FIELDS, row) for row in rows]

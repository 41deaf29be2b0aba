"""Billing's locks, each removed on purpose by `make mutants` (tests/mutants.py) to prove that some
test fails without it. A new lock in billing/ gets an entry here. The first test named catches it
every time (its interleaving is forced, or its rounds are enough); others may be free races
that catch it when the interleaving happens."""

from core.mutations import Mutation

CONCURRENCY = "tests/test_concurrency.py"
LEDGER = "tests/test_ledger_races.py"

MUTATIONS = [
    Mutation(
        name="checkout: points account FOR UPDATE",
        path="billing/checkout_sql.py",
        find="WHERE user_id = %(billing_user_id)s FOR UPDATE",
        replace="WHERE user_id = %(billing_user_id)s",
        why="the checkout would price its points on a balance another transaction is changing",
        caught_by=(
            f"{CONCURRENCY}::test_a_checkout_waits_for_a_cancel_giving_back_what_it_wants[points]",
            f"{CONCURRENCY}::test_a_cancel_racing_a_checkout_that_wants_what_it_gives_back",
        ),
    ),
    Mutation(
        name="checkout: user coupon FOR UPDATE",
        path="billing/checkout_sql.py",
        find='"FOR UPDATE".format(", ".join(USER_COUPON_FIELDS))',
        replace='"".format(", ".join(USER_COUPON_FIELDS))',
        why="the checkout would judge a coupon another transaction is changing",
        caught_by=(f"{CONCURRENCY}::test_a_checkout_waits_for_a_cancel_giving_back_what_it_wants[coupon]",),
    ),
    Mutation(
        name="coupon claim: conditional stock UPDATE",
        path="billing/claim_sql.py",
        find="WHERE id = %(coupon_id)s AND issued_count < total_quantity AND",
        replace="WHERE id = %(coupon_id)s AND",
        why="a flash sale would hand out more coupons than it has",
        caught_by=(f"{CONCURRENCY}::test_50_users_claiming_10_coupons_get_exactly_10",),
    ),
    Mutation(
        name="take_back_points: account FOR UPDATE",
        path="billing/services.py",
        find="account = PointsAccount.objects.select_for_update().filter(user=user).first()",
        replace="account = PointsAccount.objects.filter(user=user).first()",
        why="two take-backs would each take from the same balance, below zero",
        caught_by=(f"{LEDGER}::test_credits_and_debits_on_one_account_at_once_keep_balance_and_ledger_together",),
    ),
    Mutation(
        name="credit_points_in_bulk: accounts FOR UPDATE in pk order",
        path="billing/services.py",
        find="PointsAccount.objects.select_for_update().filter(user_id__in=user_ids)",
        replace="PointsAccount.objects.filter(user_id__in=user_ids)",
        why="two batches crediting the same users in different orders would deadlock",
        caught_by=(f"{LEDGER}::test_bulk_credits_of_the_same_accounts_in_opposite_orders_never_deadlock",),
    ),
    Mutation(
        name="MOVE_POINTS: balance moved under its row lock",
        path="billing/ledger.py",
        find="SET balance = account.balance + total.delta",
        # What read-then-write does: the new balance comes from the statement's snapshot, read
        # before the row lock was granted, so a move committed meanwhile is overwritten.
        replace=(
            "SET balance = (SELECT stale.balance FROM billing_pointsaccount stale WHERE stale.id = account.id)"
            " + total.delta"
        ),
        why="moves of one account at once would overwrite each other: the balance falls behind its ledger",
        caught_by=(f"{LEDGER}::test_credits_and_debits_on_one_account_at_once_keep_balance_and_ledger_together",),
    ),
]

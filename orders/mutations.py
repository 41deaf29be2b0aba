"""Orders' locks, each removed on purpose by `make mutants` (tests/mutants.py) to prove that some
test fails without it. A new lock in orders/ gets an entry here. The first test named catches it
every time (its interleaving is forced, or its rounds are enough); others may be free races
that catch it when the interleaving happens.

settle_payment's lock on the attempt row is not listed: it is taken after the order's row lock,
and every change of an attempt is made under that one (but refund_stray_payment's
refund_required -> refunded, which settle_payment treats as refund_required), so no outcome
depends on it and no test can fail without it. The same holds for the refund row locks in
refunds.py and refund_execution.py (`_lock_refund`): each is taken after `lock_order`, and every
change of a refund (request, decision, send, outcome) is made under the order's row lock, which
the `lock_order` entry below removes and tests/test_refund_races.py catches (simultaneous requests
for the same lines; decisions racing requests are also held by the refunds' trigger, so that
test passes without the lock).
"""

from core.mutations import Mutation

CONCURRENCY = "tests/test_concurrency.py"
PAYMENT_RACES = "tests/test_payment_races.py"
REFUND_RACES = "tests/test_refund_races.py"
EXPIRY = "tests/test_expiry.py"

MUTATIONS = [
    Mutation(
        name="checkout: cart rows FOR UPDATE",
        path="orders/services/checkout_sql.py",
        find="ORDER BY cart.id\nFOR UPDATE OF cart",
        replace="ORDER BY cart.id",
        why="two checkouts of one cart would both turn it into an order",
        caught_by=(
            f"{CONCURRENCY}::test_one_cart_checked_out_at_once_without_points_or_coupon_makes_one_order",
            f"{CONCURRENCY}::test_racing_orders_from_one_cart_make_one_order_and_one_debit",
            f"{CONCURRENCY}::test_a_checkout_waiting_past_lock_timeout_for_its_cart_answers_409_checkout_busy",
            f"{CONCURRENCY}::test_a_deadlock_answers_503_with_retry_after_and_the_retry_places_the_order",
        ),
    ),
    Mutation(
        name="checkout: idempotency unique-violation catch",
        path="orders/services/checkout.py",
        find="            if not _is_idempotency_conflict(exc):\n                raise\n",
        replace="            raise\n",
        why="a duplicate submit that loses the insert race must replay the winner's order, not fail",
        caught_by=(f"{CONCURRENCY}::test_24_simultaneous_submits_with_one_key_make_one_order",),
    ),
    Mutation(
        name="lock_order: order row FOR UPDATE",
        path="orders/services/settlement.py",
        find="orders = Order.objects.select_for_update().filter(order_no=order_no)",
        replace="orders = Order.objects.filter(order_no=order_no)",
        why="a cancel would cancel an order a payment (or another cancel) is changing",
        caught_by=(
            f"{PAYMENT_RACES}::test_notify_and_user_cancel_forced_in_either_order_never_both_win[notify]",
            f"{CONCURRENCY}::test_simultaneous_cancels_of_one_order_cancel_it_once",
            f"{REFUND_RACES}::test_simultaneous_requests_for_the_same_lines_make_one_refund",
        ),
    ),
    Mutation(
        name="settle_payment: order row FOR UPDATE",
        path="orders/services/payment.py",
        find="order = Order.objects.select_for_update().get(pk=found)",
        replace="order = Order.objects.get(pk=found)",
        why="a payment would pay an order a cancel (or the expiry) is cancelling: paid and cancelled",
        caught_by=(
            f"{PAYMENT_RACES}::test_notify_and_user_cancel_forced_in_either_order_never_both_win[cancel]",
            f"{PAYMENT_RACES}::test_notify_and_user_cancel_racing_never_both_win",
            f"{EXPIRY}::test_pay_and_expiry_racing_never_both",
        ),
    ),
    Mutation(
        name="batch cancel: overdue orders FOR UPDATE SKIP LOCKED",
        path="orders/services/cancellation.py",
        find="Order.objects.select_for_update(skip_locked=True)",
        replace="Order.objects",
        why="a sweep batch would cancel an order a payment (or another batch) holds",
        caught_by=(
            f"{EXPIRY}::test_batch_cancel_skips_orders_someone_else_holds",
            f"{EXPIRY}::test_pay_and_expiry_racing_never_both",
        ),
    ),
]

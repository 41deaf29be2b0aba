"""Billing's business actions: coupon claiming and the coupon side of orders (use, release), and
the points ledger. The checkout locks and holds coupons and points inside its own statements,
with SQL billing writes (billing/checkout_sql.py).

Every change of a points balance writes its `PointsEntry` in the same statement, under the
account's row lock, so the balance always equals the sum of its entries (billing/ledger.py).
"""

from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from billing import claim_sql, ledger
from billing.errors import BillingErrorCode
from billing.ledger import PointsMove
from billing.models import PaymentNotification, PointsAccount, PointsEntry, UserCoupon
from core.db import MAX_ROW_ID, alone_or_in_savepoint, broke_constraint, prepared_cursor
from core.errors import DomainError
from core.models import User


def claim_coupon(*, user: User, coupon_id: int) -> UserCoupon:
    """One coupon of the flash sale for the user, in one statement (billing/claim_sql.py); when it
    takes nothing, one read tells the user why."""
    if not 0 < coupon_id <= MAX_ROW_ID:
        raise coupon_not_found(coupon_id)
    params = claim_sql.claim_params(user_id=user.pk, coupon_id=coupon_id, now=timezone.now())
    try:
        with alone_or_in_savepoint(), prepared_cursor() as cursor:
            cursor.execute(claim_sql.CLAIM, params)
            user_coupon = claim_sql.claimed_user_coupon(cursor.fetchone())
    except IntegrityError as exc:
        # Any other constraint (stock, terms) failing is a bug, and stays one.
        if not broke_constraint(exc, name="user_coupon_one_claim_per_user"):
            raise
        user_coupon = None
    if user_coupon is not None:
        return user_coupon
    with connection.cursor() as cursor:
        cursor.execute(claim_sql.WHY_NOT_CLAIMED, params)
        found = cursor.fetchone()
    if found is None:
        raise coupon_not_found(coupon_id)
    name, claimed_before, in_window, in_stock = found
    if claimed_before:
        raise DomainError(BillingErrorCode.COUPON_ALREADY_CLAIMED, f"You already claimed {name!r}.")
    if not in_window:
        raise DomainError(BillingErrorCode.COUPON_NOT_ACTIVE, f"{name!r} cannot be claimed now.")
    if not in_stock:
        raise DomainError(BillingErrorCode.COUPON_SOLD_OUT, f"{name!r} is sold out.")
    raise AssertionError(f"claim of coupon {coupon_id} took nothing, yet it is open, in stock and not claimed")


def coupon_not_found(coupon_id: int) -> DomainError:
    return DomainError(BillingErrorCode.COUPON_NOT_FOUND, f"Coupon {coupon_id} does not exist.")


def get_user_coupon(*, user: User, user_coupon_id: int) -> UserCoupon:
    """The user's coupon, or `coupon_invalid`: another user's coupon looks exactly like a missing
    one. (Checkout locks it in its own lock order: billing/checkout_sql.py.)"""
    user_coupon = UserCoupon.objects.filter(pk=user_coupon_id, user=user).first()
    if user_coupon is None:
        raise unknown_coupon()
    return user_coupon


def unknown_coupon() -> DomainError:
    return DomainError(
        BillingErrorCode.COUPON_INVALID, "That coupon is not yours or does not exist.", details={"reason": "unknown"}
    )


def check_coupon_applies(*, user_coupon: UserCoupon, subtotal: Decimal) -> None:
    now = timezone.now()
    if user_coupon.status != UserCoupon.Status.UNUSED:
        reason, message = "not_unused", f"{user_coupon.name!r} is {user_coupon.status}."
    elif now < user_coupon.starts_at:
        reason, message = "not_started", f"{user_coupon.name!r} is not valid yet."
    elif now >= user_coupon.ends_at:
        reason, message = "expired", f"{user_coupon.name!r} has expired."
    elif subtotal < user_coupon.threshold:
        reason, message = (
            "below_threshold",
            f"{user_coupon.name!r} needs a subtotal of at least {user_coupon.threshold}.",
        )
    else:
        return
    raise DomainError(BillingErrorCode.COUPON_INVALID, message, details={"reason": reason})


def mark_coupon_used(*, order) -> int:
    return UserCoupon.objects.filter(order=order, status=UserCoupon.Status.LOCKED).update(status=UserCoupon.Status.USED)


def release_coupons(*, order_ids: list[int]) -> int:
    """Gives cancelled orders' coupons back. A coupon past its window comes back too: it simply
    cannot be used again, and the user sees why."""
    return UserCoupon.objects.filter(order_id__in=order_ids, status=UserCoupon.Status.LOCKED).update(
        status=UserCoupon.Status.UNUSED, order=None
    )


def return_coupon_of_refunded_order(*, order) -> int:
    """Gives back the coupon of an order refunded in full, when it is still inside its window; one
    past it stays used (a refund does not lengthen a coupon's life)."""
    return UserCoupon.objects.filter(order=order, status=UserCoupon.Status.USED, ends_at__gt=timezone.now()).update(
        status=UserCoupon.Status.UNUSED, order=None
    )


# Points ledger: every balance change goes through ledger.move_points (one statement writes the
# balance and its entry), or through the same SQL inside the checkout's write.


def _open_accounts(*, user_ids: list[int]) -> None:
    # ignore_conflicts makes opening safe when two first credits race.
    PointsAccount.objects.bulk_create([PointsAccount(user_id=user_id) for user_id in user_ids], ignore_conflicts=True)


def _order_id(order) -> int | None:
    return order.pk if order is not None else None


def credit_points(*, user: User, amount: int, reason: str, order=None) -> PointsEntry:
    # No transaction of its own: the move is one statement, and an account opened for a credit
    # that then fails is empty, which its (empty) ledger agrees with.
    assert amount > 0
    _open_accounts(user_ids=[user.pk])
    [entry] = ledger.move_points(
        moves=[PointsMove(user_id=user.pk, delta=amount, order_id=_order_id(order))], reason=reason
    )
    return entry


@transaction.atomic
def credit_points_in_bulk(*, credits: list[tuple[int, int, object]], reason: str) -> list[PointsEntry]:
    """Many credits of (user id, amount, order) in a fixed number of statements: the accounts are
    opened where missing and locked in pk order (so two batches sharing users cannot deadlock),
    then one statement moves every balance and writes every entry."""
    moves = [
        PointsMove(user_id=user_id, delta=amount, order_id=_order_id(order))
        for user_id, amount, order in credits
        if amount > 0
    ]
    if not moves:
        return []
    user_ids = sorted({move.user_id for move in moves})
    _open_accounts(user_ids=user_ids)
    # The move's UPDATE would lock the accounts in whatever order its plan visits them.
    list(PointsAccount.objects.select_for_update().filter(user_id__in=user_ids).order_by("pk").values_list("pk"))
    return ledger.move_points(moves=moves, reason=reason)


@transaction.atomic
def take_back_points(*, user: User, amount: int, reason: str, order=None) -> PointsEntry | None:
    """Reverses earned points as far as the balance allows (never below zero); None if nothing to take."""
    # Locked first: the amount taken depends on the balance, which must not change before the move.
    account = PointsAccount.objects.select_for_update().filter(user=user).first()
    taken = min(amount, account.balance) if account is not None else 0
    if taken <= 0:
        return None
    [entry] = ledger.move_points(
        moves=[PointsMove(user_id=user.pk, delta=-taken, order_id=_order_id(order))], reason=reason
    )
    return entry


# Provider notifies


def _storable(text: str) -> str:
    # Postgres text and JSON cannot hold NUL; a notify carrying one must still be recorded.
    return text.replace("\x00", "\ufffd")


def record_notification(
    *, params: dict[str, str], verdict: str, reason: str = "", order=None, provider: str = "alipay"
) -> PaymentNotification:
    """`params` in Alipay's field names (notify_id, out_trade_no, trade_no, trade_status,
    total_amount); a WeChat Pay notify is recorded under the same names."""
    params = {_storable(str(key)): _storable(str(value)) for key, value in params.items()}
    return PaymentNotification.objects.create(
        provider=provider,
        notify_id=params.get("notify_id", "")[:128],
        out_trade_no=params.get("out_trade_no", "")[:64],
        trade_no=params.get("trade_no", "")[:64],
        trade_status=params.get("trade_status", "")[:32],
        total_amount=params.get("total_amount", "")[:32],
        raw=params,
        verdict=verdict,
        reason=reason[:200],
        order=order,
    )

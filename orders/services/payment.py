"""Paying orders through payment attempts (DESIGN.md "Order states", "Domain"): opening an attempt
at a provider, the one settle path every confirmed payment takes, closing the attempts that
did not pay, and refunding money that arrived where it was not wanted.

Every change of an attempt runs under its order's row lock, taken first: a payment on one
attempt, a payment on another, an expiry and a user's cancel are serialised by that one row.
"""

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.models import PaymentNotification
from core.errors import DomainError
from core.models import User
from orders import events
from orders.errors import OrderErrorCode
from orders.models import Order, PaymentAttempt
from orders.services.providers import PaymentStart, ProviderError, StartRequest, provider_enabled, provider_for
from orders.services.settlement import lock_order, settle_paid_order

logger = logging.getLogger(__name__)
Verdict = PaymentNotification.Verdict
Attempt = PaymentAttempt
# Alipay forbids these in `subject`; WeChat's `description` takes them, but one cleaning serves both.
SUBJECT_FORBIDDEN = re.compile(r"[/=&]")
# WeChat Pay Native's code_url is valid for 2 hours; kept for a little less.
CODE_URL_KEPT_FOR = timedelta(hours=1, minutes=50)
DEFAULT_CHANNEL = {Attempt.Provider.ALIPAY: Attempt.Channel.PAGE, Attempt.Provider.WECHAT: Attempt.Channel.NATIVE}


def order_subject(order: Order) -> str:
    names = [line.name for line in order.lines.all()]
    subject = names[0] if len(names) == 1 else f"{names[0]} 等{len(names)}门课程"
    return SUBJECT_FORBIDDEN.sub(" ", subject)[:127]


def request_payment(
    *, user: User, order_no: str, provider: str | None, channel: str | None, client_ip: str
) -> PaymentStart:
    """What the buyer's client opens to pay a pending order before its deadline: an open attempt
    for this provider and channel (reused when asked again), started at the provider."""
    with transaction.atomic():
        order = lock_order(order_no=order_no, user=user)
        provider = provider or order.pay_type
        channel = channel or DEFAULT_CHANNEL[provider]
        check_payable_with(provider=provider, channel=channel)
        if order.status != Order.Status.PENDING or order.expires_at <= timezone.now():
            raise DomainError(
                OrderErrorCode.ORDER_NOT_PAYABLE,
                f"Order {order_no} can no longer be paid ({order.status}).",
                details={"status": order.status, "expires_at": order.expires_at.isoformat()},
            )
        attempt = _open_attempt(order=order, provider=provider, channel=channel)
    if kept := kept_code_url(attempt):
        return PaymentStart(provider=provider, channel=channel, code_url=kept)
    start = StartRequest(
        attempt=attempt,
        subject=order_subject(order),
        expires_at=order.expires_at,
        client_ip=client_ip,
        back_url=frontend_order_url(order.order_no, outcome="returned"),
        quit_url=frontend_order_url(order.order_no, outcome="left"),
    )
    try:
        started = provider_for(provider).start(start)
    except ProviderError as exc:
        logger.warning("starting %s failed: %s", attempt.out_trade_no, exc)
        raise DomainError(
            OrderErrorCode.PAYMENT_PROVIDER_UNREACHABLE,
            "The payment provider did not answer; try again in a moment.",
            details={"provider": provider},
        ) from exc
    if started.code_url:
        PaymentAttempt.objects.filter(pk=attempt.pk).update(code_url=started.code_url, code_url_at=timezone.now())
    return started


def kept_code_url(attempt: PaymentAttempt) -> str | None:
    """The QR code link WeChat Pay gave this attempt, while it is still good: showing it again
    saves a call to WeChat Pay each time the buyer comes back to the order."""
    if not attempt.code_url or attempt.code_url_at is None:
        return None
    return attempt.code_url if timezone.now() - attempt.code_url_at < CODE_URL_KEPT_FOR else None


def check_payable_with(*, provider: str, channel: str | None = None) -> None:
    if not provider_enabled(provider):
        raise DomainError(
            OrderErrorCode.PAYMENT_PROVIDER_UNAVAILABLE,
            f"{provider} is not offered by this shop.",
            details={"provider": provider},
        )
    if channel is not None and channel not in Attempt.CHANNELS[provider]:
        raise DomainError(
            OrderErrorCode.PAYMENT_CHANNEL_INVALID,
            f"{provider} has no {channel} channel.",
            details={"provider": provider, "channels": list(Attempt.CHANNELS[provider])},
        )


def _open_attempt(*, order: Order, provider: str, channel: str) -> PaymentAttempt:
    attempts = list(order.payment_attempts.all())
    for attempt in attempts:
        if (attempt.provider, attempt.channel, attempt.status) == (provider, channel, Attempt.Status.OPEN):
            return attempt
    # The first Alipay attempt keeps the order's number, as trades opened before attempts did.
    first_alipay = provider == Attempt.Provider.ALIPAY and all(a.out_trade_no != order.order_no for a in attempts)
    out_trade_no = order.order_no if first_alipay else f"{order.order_no}_{len(attempts) + 1}"
    return PaymentAttempt.objects.create(
        order=order, provider=provider, channel=channel, out_trade_no=out_trade_no, amount=order.pay_amount
    )


@dataclass(frozen=True)
class Settlement:
    verdict: str
    reason: str = ""
    order: Order | None = None
    attempt: PaymentAttempt | None = None


def settle_payment(*, provider: str, out_trade_no: str, provider_trade_no: str, amount: Decimal) -> Settlement:
    """Applies a payment a provider confirmed (verified notify, or trade query) to its attempt.
    The first payment of the exact amount pays a pending order; any other (a second attempt, an
    order cancelled meanwhile) is marked for refund. Safe to repeat for the same trade."""
    found = (
        PaymentAttempt.objects.filter(out_trade_no=out_trade_no, provider=provider)
        .values_list("order_id", flat=True)
        .first()
    )
    if found is None:
        return Settlement(Verdict.REJECTED, "unknown out_trade_no")
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=found)
        attempt = PaymentAttempt.objects.select_for_update().get(out_trade_no=out_trade_no)
        if amount != attempt.amount:
            return Settlement(Verdict.REJECTED, f"amount {amount} != {attempt.amount}", order, attempt)
        if attempt.status in (Attempt.Status.PAID, Attempt.Status.REFUND_REQUIRED, Attempt.Status.REFUNDED):
            return Settlement(Verdict.DUPLICATE, f"attempt already {attempt.status}", order, attempt)
        attempt.provider_trade_no = provider_trade_no
        if order.status == Order.Status.PENDING:
            attempt.status, attempt.paid_at = Attempt.Status.PAID, timezone.now()
            attempt.save(update_fields=["status", "paid_at", "provider_trade_no"])
            settle_paid_order(order=order)
            if order.payment_attempts.filter(status=Attempt.Status.OPEN).exists():
                events.attempts_to_close(order.order_no)
            return Settlement(Verdict.PAID, "", order, attempt)
        attempt.status = Attempt.Status.REFUND_REQUIRED
        attempt.save(update_fields=["status", "provider_trade_no"])
        events.refund_needed(attempt.out_trade_no)
        return Settlement(Verdict.REFUND_REQUIRED, f"paid while the order was {order.status}", order, attempt)


def settle_or_close(attempt: PaymentAttempt) -> bool:
    """Asks the provider about an open attempt. True when it was paid (and is now settled, which
    may pay the order); False when no payment can arrive on it any more (closed now). Raises
    ProviderError when the provider cannot say."""
    provider = provider_for(attempt.provider)
    trade = provider.query(out_trade_no=attempt.out_trade_no)
    if trade is None or not trade.paid:
        try:
            if trade is not None:
                provider.close(out_trade_no=attempt.out_trade_no)
        except ProviderError:
            trade = provider.query(out_trade_no=attempt.out_trade_no)  # paid between query and close?
            if trade is None or not trade.paid:
                raise
        else:
            _mark_closed(attempt)
            return False
    settle_payment(
        provider=attempt.provider,
        out_trade_no=attempt.out_trade_no,
        provider_trade_no=trade.trade_no,
        amount=trade.amount,
    )
    return True


def _mark_closed(attempt: PaymentAttempt) -> None:
    with transaction.atomic():
        lock_order(order_no=attempt.order.order_no)
        PaymentAttempt.objects.filter(pk=attempt.pk, status=Attempt.Status.OPEN).update(
            status=Attempt.Status.CLOSED, closed_at=timezone.now()
        )


def close_open_attempts(*, order_no: str) -> int:
    """Closes the attempts left open on an order that is no longer pending (another attempt paid
    it, or it was cancelled while a provider could not be reached); money found on one of them
    goes back. Returns how many were closed. Raises ProviderError to be retried."""
    attempts = PaymentAttempt.objects.filter(order__order_no=order_no, status=Attempt.Status.OPEN).exclude(
        order__status=Order.Status.PENDING
    )
    return sum(not settle_or_close(attempt) for attempt in attempts.select_related("order"))


def refund_stray_payment(*, out_trade_no: str) -> bool:
    """Gives back money that arrived on an attempt marked `refund_required`. Idempotent: the refund
    request id is fixed per attempt and the provider refunds it at most once."""
    attempt = PaymentAttempt.objects.filter(out_trade_no=out_trade_no, status=Attempt.Status.REFUND_REQUIRED).first()
    if attempt is None:
        return False
    provider_for(attempt.provider).refund(
        out_trade_no=attempt.out_trade_no,
        refund_request_no=attempt.refund_request_no,
        amount=attempt.amount,
        total=attempt.amount,
    )
    PaymentAttempt.objects.filter(pk=attempt.pk, status=Attempt.Status.REFUND_REQUIRED).update(
        status=Attempt.Status.REFUNDED, refunded_at=timezone.now()
    )
    return True


ORDER_NO = re.compile(r"^[0-9]{1,32}$")


def frontend_order_url(order_no: str, *, outcome: str) -> str:
    # The order number may come from an unverified return: only a well-formed one goes in the path.
    path = f"/orders/{quote(order_no, safe='')}" if ORDER_NO.match(order_no or "") else "/orders"
    return f"{settings.FRONTEND_URL}{path}?{urlencode({'payment': outcome})}"

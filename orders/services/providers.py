"""The payment providers as orders sees them: one `PaymentProvider` per provider, so payment,
settlement, expiry and refunds are written once for all of them (DESIGN.md "Order states").

Each adapter turns its client's answers into `ProviderTrade` and its failures (unreachable,
refused, unverifiable) into `ProviderError`; nothing above this module knows a provider's wire
format. Which adapter serves an attempt is decided by `attempt.provider` (`provider_for`).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from django.conf import settings

from billing.alipay.client import get_alipay_client
from billing.alipay.errors import AlipayError, AlipaySignatureError
from billing.wechatpay.configured import get_wechatpay_client
from billing.wechatpay.errors import Reason, WechatPayError
from billing.wechatpay.results import Refund as WechatRefund
from orders.models import PaymentAttempt

Channel = PaymentAttempt.Channel
ALIPAY_TRADE_STATUS_ERROR = "ACQ.TRADE_STATUS_ERROR"
# Alipay's business (40004) and argument (40002) failures are its answer, except a system error,
# after which Alipay asks for the same request again.
ALIPAY_REFUSALS = frozenset({"40002", "40004"})
ALIPAY_TRY_AGAIN = frozenset({"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR"})
# WeChat Pay's 4xx answers are its decision, except these, which ask us to send it again later.
WECHATPAY_TRY_AGAIN = frozenset({"SYSTEM_ERROR", "FREQUENCY_LIMITED"})


class ProviderError(Exception):
    """The provider could not be asked, or refused: the caller retries later or gives up."""


class ProviderRefusal(ProviderError):
    """The provider answered, verifiably, and said no (a refund it will not make): sending the same
    request again would get the same answer."""


class RefundState(StrEnum):
    SUCCEEDED = "succeeded"
    PROCESSING = "processing"  # accepted; the result comes later (WeChat Pay's notify or query)
    FAILED = "failed"


@dataclass(frozen=True)
class ProviderRefund:
    """What a provider says of one of our refunds."""

    state: RefundState
    provider_refund_id: str = ""
    message: str = ""


@dataclass(frozen=True)
class ProviderTrade:
    """What a provider says of one of our trades (answers verified by the client)."""

    out_trade_no: str
    trade_no: str
    paid: bool
    amount: Decimal


@dataclass(frozen=True)
class PaymentStart:
    """What the buyer's client needs: exactly one of the three URLs is set."""

    provider: str
    channel: str
    pay_url: str | None = None  # Alipay page / wap: open it
    code_url: str | None = None  # WeChat Pay Native: show it as a QR code
    h5_url: str | None = None  # WeChat Pay H5: open it in the phone's browser


@dataclass(frozen=True)
class StartRequest:
    attempt: PaymentAttempt
    subject: str
    expires_at: datetime
    client_ip: str
    # The order's page in the shop, where the buyer's browser comes back to from a provider's page:
    # after WeChat H5 (paid or not: the page asks the API how it went), and from Alipay wap's
    # "back" link (the buyer left without paying).
    back_url: str
    quit_url: str


class PaymentProvider(Protocol):
    def start(self, request: StartRequest) -> PaymentStart: ...

    def query(self, *, out_trade_no: str) -> ProviderTrade | None:
        """None when the provider has no such trade (the buyer never reached its cashier)."""

    def close(self, *, out_trade_no: str) -> None:
        """After this returns no payment can arrive on the trade. Raises ProviderError when the
        trade could not be closed (e.g. it was paid meanwhile): query it again to know."""

    def refund(self, *, out_trade_no: str, refund_request_no: str, amount: Decimal, total: Decimal) -> ProviderRefund:
        """Refunds `amount` of the trade's `total`; the same refund_request_no refunds once, and
        sent again reports that refund. Raises ProviderRefusal when the provider will not make it,
        ProviderError when it could not be asked."""

    def refund_state(self, *, out_trade_no: str, refund_request_no: str) -> ProviderRefund | None:
        """What the provider says of a refund sent before. None when it has no such refund, or
        cannot be asked about one: sending the refund again is then the way to know (it refunds
        once)."""


class AlipayProvider:
    def start(self, request: StartRequest) -> PaymentStart:
        client, attempt = get_alipay_client(), request.attempt
        trade = {
            "out_trade_no": attempt.out_trade_no,
            "total_amount": attempt.amount,
            "subject": request.subject,
            "time_expire": request.expires_at,
        }
        if attempt.channel == Channel.WAP:
            url = client.wap_pay_url(**trade, quit_url=request.quit_url)
        else:
            url = client.page_pay_url(**trade)
        return PaymentStart(provider=attempt.provider, channel=attempt.channel, pay_url=url)

    def query(self, *, out_trade_no: str) -> ProviderTrade | None:
        try:
            trade = get_alipay_client().query_trade(out_trade_no=out_trade_no)
        except AlipayError as exc:
            raise ProviderError(f"alipay: {exc}") from exc
        if trade is None:
            return None
        return ProviderTrade(
            out_trade_no=trade.out_trade_no, trade_no=trade.trade_no, paid=trade.is_paid, amount=trade.total_amount
        )

    def close(self, *, out_trade_no: str) -> None:
        try:
            get_alipay_client().close_trade(out_trade_no=out_trade_no)
        except AlipayError as exc:
            # TRADE_STATUS_ERROR: not waiting for the buyer any more; closed already, or paid.
            if exc.sub_code == ALIPAY_TRADE_STATUS_ERROR:
                trade = self.query(out_trade_no=out_trade_no)
                if trade is None or not trade.paid:
                    return
            raise ProviderError(f"alipay: {exc}") from exc

    def refund(self, *, out_trade_no: str, refund_request_no: str, amount: Decimal, total: Decimal) -> ProviderRefund:
        try:
            result = get_alipay_client().refund_trade(
                out_trade_no=out_trade_no, refund_amount=amount, out_request_no=refund_request_no
            )
        except AlipaySignatureError as exc:
            # Its codes were read from an answer that did not verify: believe none of them.
            raise ProviderError(f"alipay: {exc}") from exc
        except AlipayError as exc:
            if exc.code in ALIPAY_REFUSALS and exc.sub_code not in ALIPAY_TRY_AGAIN:
                raise ProviderRefusal(f"alipay: {exc}") from exc
            raise ProviderError(f"alipay: {exc}") from exc
        if result.fund_change:
            return ProviderRefund(RefundState.SUCCEEDED)
        # No money moved with this answer: a repeat of a refund made before, or one Alipay has not
        # made. Alipay says to ask; until it answers, the refund is not done.
        return self.refund_state(out_trade_no=out_trade_no, refund_request_no=refund_request_no) or ProviderRefund(
            RefundState.PROCESSING
        )

    def refund_state(self, *, out_trade_no: str, refund_request_no: str) -> ProviderRefund | None:
        try:
            found = get_alipay_client().query_refund(out_trade_no=out_trade_no, out_request_no=refund_request_no)
        except AlipayError as exc:
            raise ProviderError(f"alipay: {exc}") from exc
        if found is None:
            return None  # not made: send it again, with the same request number
        return ProviderRefund(RefundState.SUCCEEDED if found.refunded else RefundState.PROCESSING)


class WechatProvider:
    def start(self, request: StartRequest) -> PaymentStart:
        attempt = request.attempt
        trade = {
            "out_trade_no": attempt.out_trade_no,
            "description": request.subject,
            "total_amount": attempt.amount,
            "time_expire": request.expires_at,
        }
        try:
            client = get_wechatpay_client()
            if attempt.channel == Channel.H5:
                h5 = client.create_h5_order(**trade, payer_client_ip=request.client_ip)
                return PaymentStart(
                    provider=attempt.provider, channel=attempt.channel, h5_url=h5.url_returning_to(request.back_url)
                )
            native = client.create_native_order(**trade)
        except WechatPayError as exc:
            raise ProviderError(f"wechat: {exc}") from exc
        return PaymentStart(provider=attempt.provider, channel=attempt.channel, code_url=native.code_url)

    def query(self, *, out_trade_no: str) -> ProviderTrade | None:
        try:
            trade = get_wechatpay_client().query_trade(out_trade_no=out_trade_no)
        except WechatPayError as exc:
            raise ProviderError(f"wechat: {exc}") from exc
        if trade is None:
            return None
        return ProviderTrade(
            out_trade_no=trade.out_trade_no,
            trade_no=trade.transaction_id,
            paid=trade.is_paid,
            amount=trade.total_amount if trade.total_amount is not None else Decimal("0.00"),
        )

    def close(self, *, out_trade_no: str) -> None:
        try:
            get_wechatpay_client().close_trade(out_trade_no=out_trade_no)
        except WechatPayError as exc:
            raise ProviderError(f"wechat: {exc}") from exc
        # WeChat Pay answers 204 to closing a closed or unknown trade as well: make sure it is not paid.
        trade = self.query(out_trade_no=out_trade_no)
        if trade is not None and trade.paid:
            raise ProviderError(f"wechat: {out_trade_no} was paid before it could be closed")

    def refund(self, *, out_trade_no: str, refund_request_no: str, amount: Decimal, total: Decimal) -> ProviderRefund:
        try:
            refund = get_wechatpay_client().refund_trade(
                out_trade_no=out_trade_no, out_refund_no=refund_request_no, refund_amount=amount, total_amount=total
            )
        except WechatPayError as exc:
            if exc.reason == Reason.REFUSED and (exc.http_status or 500) < 500 and exc.code not in WECHATPAY_TRY_AGAIN:
                raise ProviderRefusal(f"wechat: {exc}") from exc
            raise ProviderError(f"wechat: {exc}") from exc
        return wechat_refund(refund)

    def refund_state(self, *, out_trade_no: str, refund_request_no: str) -> ProviderRefund | None:
        try:
            refund = get_wechatpay_client().query_refund(out_refund_no=refund_request_no)
        except WechatPayError as exc:
            raise ProviderError(f"wechat: {exc}") from exc
        if refund is None:
            return None
        if refund.out_trade_no != out_trade_no:
            raise ProviderError(f"wechat: refund {refund_request_no} is of trade {refund.out_trade_no}")
        return wechat_refund(refund)


def wechat_refund_state(status: str) -> RefundState:
    """WeChat Pay's refund status (answer, query or REFUND.* notify) in our words: SUCCESS, then
    PROCESSING; CLOSED and ABNORMAL (the buyer's card refused it) need the merchant platform."""
    if status == "SUCCESS":
        return RefundState.SUCCEEDED
    if status == "PROCESSING":
        return RefundState.PROCESSING
    return RefundState.FAILED


def wechat_refund(refund: WechatRefund) -> ProviderRefund:
    state = wechat_refund_state(refund.status)
    message = f"wechat: refund {refund.status}" if state == RefundState.FAILED else ""
    return ProviderRefund(state, provider_refund_id=refund.refund_id, message=message)


PROVIDERS: dict[str, PaymentProvider] = {
    PaymentAttempt.Provider.ALIPAY: AlipayProvider(),
    PaymentAttempt.Provider.WECHAT: WechatProvider(),
}


def provider_enabled(provider: str) -> bool:
    if provider == PaymentAttempt.Provider.WECHAT:
        return settings.WECHATPAY_ENABLED
    return provider in PROVIDERS


def provider_for(provider: str) -> PaymentProvider:
    return PROVIDERS[provider]

"""The payment providers as orders sees them: one `PaymentProvider` per provider, so payment,
settlement, expiry and refunds are written once for all of them (DESIGN.md "Order states").

Each adapter turns its client's answers into `ProviderTrade` and its failures (unreachable,
refused, unverifiable) into `ProviderError`; nothing above this module knows a provider's wire
format. Which adapter serves an attempt is decided by `attempt.provider` (`provider_for`).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from django.conf import settings

from billing.alipay.client import get_alipay_client
from billing.alipay.errors import AlipayError
from billing.wechatpay.configured import get_wechatpay_client
from billing.wechatpay.errors import WechatPayError
from orders.models import PaymentAttempt

Channel = PaymentAttempt.Channel
ALIPAY_TRADE_STATUS_ERROR = "ACQ.TRADE_STATUS_ERROR"


class ProviderError(Exception):
    """The provider could not be asked, or refused: the caller retries later or gives up."""


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
    # Where the buyer's browser comes back to from a provider's page (Alipay wap's "back", WeChat
    # H5's redirect): the order's page in the shop, which asks the API how the payment went.
    back_url: str


class PaymentProvider(Protocol):
    def start(self, request: StartRequest) -> PaymentStart: ...

    def query(self, *, out_trade_no: str) -> ProviderTrade | None:
        """None when the provider has no such trade (the buyer never reached its cashier)."""

    def close(self, *, out_trade_no: str) -> None:
        """After this returns no payment can arrive on the trade. Raises ProviderError when the
        trade could not be closed (e.g. it was paid meanwhile): query it again to know."""

    def refund(self, *, out_trade_no: str, refund_request_no: str, amount: Decimal, total: Decimal) -> None:
        """Refunds `amount` of the trade's `total`; the same refund_request_no refunds once."""


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
            url = client.wap_pay_url(**trade, quit_url=request.back_url)
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

    def refund(self, *, out_trade_no: str, refund_request_no: str, amount: Decimal, total: Decimal) -> None:
        try:
            get_alipay_client().refund_trade(
                out_trade_no=out_trade_no, refund_amount=amount, out_request_no=refund_request_no
            )
        except AlipayError as exc:
            raise ProviderError(f"alipay: {exc}") from exc


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

    def refund(self, *, out_trade_no: str, refund_request_no: str, amount: Decimal, total: Decimal) -> None:
        try:
            get_wechatpay_client().refund_trade(
                out_trade_no=out_trade_no, out_refund_no=refund_request_no, refund_amount=amount, total_amount=total
            )
        except WechatPayError as exc:
            raise ProviderError(f"wechat: {exc}") from exc


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

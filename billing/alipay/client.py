"""The calls we make to the Alipay gateway, and the checks on what comes back.

Every server-to-server answer is verified with Alipay's public key before any field of it is
read; a trade that "does not exist" or "is closed" is only believed from a signed answer.
"""

import functools
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import reverse

from billing.alipay.certs import CertificateSNs, load_certificate_mode
from billing.alipay.errors import AlipayError, AlipayKeyError
from billing.alipay.formats import BEIJING, beijing_time, compact_json, format_amount, parse_amount
from billing.alipay.keys import RsaKey, load_private_key, load_public_key
from billing.alipay.signing import sign, verify_notification, verify_response

SUCCESS = "10000"
TRADE_NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
PAID_STATUSES = frozenset({"TRADE_SUCCESS", "TRADE_FINISHED"})


@dataclass(frozen=True)
class TradeQuery:
    out_trade_no: str
    trade_no: str
    trade_status: str
    total_amount: Decimal

    @property
    def is_paid(self) -> bool:
        return self.trade_status in PAID_STATUSES


@dataclass(frozen=True)
class RefundResult:
    out_trade_no: str
    trade_no: str
    # Alipay's meaning: the total refunded on this trade so far, not this request's amount.
    refund_fee: Decimal
    # False when this request moved no money, e.g. a repeat of an out_request_no already refunded.
    fund_change: bool


@dataclass(frozen=True)
class RefundQuery:
    out_request_no: str
    refund_amount: Decimal
    # REFUND_SUCCESS, or no status at all (older answers): Alipay made the refund.
    refunded: bool


class AlipayClient:
    def __init__(
        self,
        app_id: str,
        app_private_key: RsaKey | str,
        alipay_public_key: RsaKey | str,
        gateway_url: str,
        notify_url: str,
        return_url: str,
        seller_id: str = "",
        timeout: float = 10,
        cert_sns: CertificateSNs | None = None,
    ) -> None:
        """`cert_sns` turns on public-key certificate mode; `alipay_public_key` is then the key
        of the Alipay public-key certificate (billing.alipay.certs.load_certificate_mode)."""
        self.app_id = app_id
        self.app_private_key = (
            load_private_key(app_private_key) if isinstance(app_private_key, str) else app_private_key
        )
        self.alipay_public_key = (
            load_public_key(alipay_public_key) if isinstance(alipay_public_key, str) else alipay_public_key
        )
        self.gateway_url = gateway_url
        self.notify_url = notify_url
        self.return_url = return_url
        self.seller_id = seller_id
        self.timeout = timeout
        self.cert_sns = cert_sns

    # Browser flow -----------------------------------------------------------------------------

    def page_pay_url(self, *, out_trade_no: str, total_amount: Decimal, subject: str, time_expire: datetime) -> str:
        """The signed URL that sends a computer's browser to Alipay's cashier page."""
        return self._browser_pay_url(
            "alipay.trade.page.pay",
            {"product_code": "FAST_INSTANT_TRADE_PAY"},
            out_trade_no=out_trade_no,
            total_amount=total_amount,
            subject=subject,
            time_expire=time_expire,
        )

    def wap_pay_url(
        self, *, out_trade_no: str, total_amount: Decimal, subject: str, time_expire: datetime, quit_url: str
    ) -> str:
        """The signed URL of Alipay's cashier for a phone's browser (手机网站支付), which opens the
        Alipay app when it is installed; `quit_url` is where the buyer's "back" goes."""
        return self._browser_pay_url(
            "alipay.trade.wap.pay",
            {"product_code": "QUICK_WAP_WAY", "quit_url": quit_url},
            out_trade_no=out_trade_no,
            total_amount=total_amount,
            subject=subject,
            time_expire=time_expire,
        )

    def _browser_pay_url(
        self,
        method: str,
        product: dict[str, str],
        *,
        out_trade_no: str,
        total_amount: Decimal,
        subject: str,
        time_expire: datetime,
    ) -> str:
        if total_amount <= 0:
            raise ValueError("Alipay takes no trade of 0.00; settle free orders without it.")
        params = self._common_params(method)
        params["notify_url"] = self.notify_url
        params["return_url"] = self.return_url
        params["biz_content"] = compact_json(
            {
                "out_trade_no": out_trade_no,
                "total_amount": format_amount(total_amount),
                "subject": subject,
                **product,
                # Alipay closes the trade itself at our deadline, so a buyer cannot pay an
                # order we have already cancelled.
                "time_expire": beijing_time(time_expire),
            }
        )
        params["sign"] = sign(params, self.app_private_key)
        separator = "&" if "?" in self.gateway_url else "?"
        return f"{self.gateway_url}{separator}{urlencode(params)}"

    # Server-to-server calls -------------------------------------------------------------------

    def query_trade(self, *, out_trade_no: str) -> TradeQuery | None:
        """The trade's state at Alipay, or None when Alipay has no such trade (the buyer never
        reached the cashier)."""
        method = "alipay.trade.query"
        answer = self._call(method, {"out_trade_no": out_trade_no})
        if _is_trade_not_exist(answer):
            _require_same_trade(method, answer, out_trade_no, required=False)
            return None
        _require_success(method, answer)
        _require_same_trade(method, answer, out_trade_no)
        try:
            return TradeQuery(
                out_trade_no=answer["out_trade_no"],
                trade_no=str(answer.get("trade_no", "")),
                trade_status=str(answer["trade_status"]),
                total_amount=parse_amount(answer["total_amount"]),
            )
        except (KeyError, ValueError) as exc:
            raise AlipayError(f"{method}: incomplete answer: {exc}") from exc

    def close_trade(self, *, out_trade_no: str) -> bool:
        """Close an unpaid trade. False when Alipay has no such trade, which is the usual case
        for an order whose buyer never opened the cashier. A trade that is not waiting for the
        buyer (paid, or already closed) raises AlipayError with sub_code ACQ.TRADE_STATUS_ERROR:
        query the trade to tell which."""
        method = "alipay.trade.close"
        answer = self._call(method, {"out_trade_no": out_trade_no})
        if _is_trade_not_exist(answer):
            _require_same_trade(method, answer, out_trade_no, required=False)
            return False
        _require_success(method, answer)
        # Alipay documents out_trade_no as optional in this answer.
        _require_same_trade(method, answer, out_trade_no, required=False)
        return True

    def refund_trade(
        self, *, out_trade_no: str, refund_amount: Decimal, out_request_no: str, refund_reason: str = ""
    ) -> RefundResult:
        """Refund part or all of a paid trade. Alipay refunds one out_request_no at most once,
        so retrying with the same out_request_no after a timeout is safe. `refund_reason` is shown
        to the buyer."""
        if refund_amount <= 0:
            raise ValueError("A refund must be positive.")
        method = "alipay.trade.refund"
        biz_content = {
            "out_trade_no": out_trade_no,
            "refund_amount": format_amount(refund_amount),
            "out_request_no": out_request_no,
        }
        if refund_reason:
            biz_content["refund_reason"] = refund_reason
        answer = self._call(method, biz_content)
        _require_success(method, answer)
        _require_same_trade(method, answer, out_trade_no)
        try:
            return RefundResult(
                out_trade_no=answer["out_trade_no"],
                trade_no=str(answer.get("trade_no", "")),
                refund_fee=parse_amount(answer["refund_fee"]),
                fund_change=answer["fund_change"] == "Y",
            )
        except (KeyError, ValueError) as exc:
            raise AlipayError(f"{method}: incomplete answer: {exc}") from exc

    def query_refund(self, *, out_trade_no: str, out_request_no: str) -> RefundQuery | None:
        """What Alipay did with a refund request (alipay.trade.fastpay.refund.query). None when it
        has no such refund: it was not made, and may be sent again with the same out_request_no.
        An answer of `fund_change: N` to alipay.trade.refund is confirmed this way."""
        method = "alipay.trade.fastpay.refund.query"
        answer = self._call(method, {"out_request_no": out_request_no, "out_trade_no": out_trade_no})
        if _is_trade_not_exist(answer):
            return None
        _require_success(method, answer)
        # Success with no refund data means no such refund.
        if "refund_amount" not in answer and "out_request_no" not in answer:
            return None
        _require_same_trade(method, answer, out_trade_no)
        if answer.get("out_request_no") != out_request_no:
            raise AlipayError(f"{method}: the answer is about refund {answer.get('out_request_no')!r}")
        try:
            return RefundQuery(
                out_request_no=out_request_no,
                refund_amount=parse_amount(answer["refund_amount"]),
                refunded=answer.get("refund_status", REFUND_SUCCESS) == REFUND_SUCCESS,
            )
        except (KeyError, ValueError) as exc:
            raise AlipayError(f"{method}: incomplete answer: {exc}") from exc

    # Notifies and returns ---------------------------------------------------------------------

    def verify_notification(self, params: dict[str, Any]) -> bool:
        """Whether a notify / return was signed by Alipay; pass `request.POST.dict()` (or GET).
        In certificate mode one that names another Alipay certificate is refused too."""
        if self.cert_sns and params.get("alipay_cert_sn", self.cert_sns.alipay_cert_sn) != self.cert_sns.alipay_cert_sn:
            return False
        return verify_notification(params, self.alipay_public_key)

    def is_ours(self, params: dict[str, Any]) -> bool:
        """Whether a verified notify is for our app (and seller, when one is configured): Alipay
        signs notifies for every app with the same key, so a valid signature alone is not enough."""
        if params.get("app_id") != self.app_id:
            return False
        return not self.seller_id or params.get("seller_id") == self.seller_id

    # Plumbing ---------------------------------------------------------------------------------

    def _common_params(self, method: str) -> dict[str, str]:
        params = {
            "app_id": self.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": beijing_time(datetime.now(tz=BEIJING)),
            "version": "1.0",
        }
        if self.cert_sns:
            # Signed like every other parameter: they name the certificates the gateway checks us against.
            params["app_cert_sn"] = self.cert_sns.app_cert_sn
            params["alipay_root_cert_sn"] = self.cert_sns.alipay_root_cert_sn
        return params

    def _call(self, method: str, biz_content: dict[str, Any]) -> dict[str, Any]:
        params = self._common_params(method)
        params["biz_content"] = compact_json(biz_content)
        params["sign"] = sign(params, self.app_private_key)
        # As Alipay's SDKs send a call: the common parameters (charset among them) in the query
        # string, which the gateway reads before it decodes the body, and biz_content alone in the
        # form body; the signature covers both.
        body = urlencode({"biz_content": params.pop("biz_content")})
        separator = "&" if "?" in self.gateway_url else "?"
        url = f"{self.gateway_url}{separator}{urlencode(params)}"
        try:
            response = requests.post(
                url,
                data=body.encode("ascii"),
                headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise AlipayError(f"{method}: could not reach the gateway: {exc}") from exc
        if response.status_code != 200:
            raise AlipayError(f"{method}: the gateway answered HTTP {response.status_code}")
        try:
            # We asked for charset=utf-8; requests' guess from the headers may differ.
            body = response.content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AlipayError(f"{method}: the answer is not UTF-8") from exc
        expected_sn = self.cert_sns.alipay_cert_sn if self.cert_sns else ""
        return verify_response(body, method, self.alipay_public_key, alipay_cert_sn=expected_sn)


REFUND_SUCCESS = "REFUND_SUCCESS"


def _is_trade_not_exist(answer: dict[str, Any]) -> bool:
    return answer.get("code") != SUCCESS and answer.get("sub_code") == TRADE_NOT_EXIST


def _require_success(method: str, answer: dict[str, Any]) -> None:
    if answer.get("code") != SUCCESS:
        raise AlipayError(
            f"{method}: {answer.get('msg') or 'failed'}",
            code=str(answer.get("code", "")),
            sub_code=str(answer.get("sub_code", "")),
            sub_msg=str(answer.get("sub_msg", "")),
        )


def _require_same_trade(method: str, answer: dict[str, Any], out_trade_no: str, *, required: bool = True) -> None:
    # A signed answer names no request, so a replayed answer about another trade would verify;
    # the trade number it names must be the one we asked about.
    if not required and "out_trade_no" not in answer:
        return
    if answer.get("out_trade_no") != out_trade_no:
        raise AlipayError(f"{method}: the answer is about trade {answer.get('out_trade_no')!r}, not {out_trade_no!r}")


@functools.cache
def get_alipay_client() -> AlipayClient:
    """The process's client, from settings: the dev gateway and its generated keys (and
    certificates, with ALIPAY_DEV_GATEWAY_CERT_MODE) when ALIPAY_DEV_GATEWAY is on, else the
    configured gateway and key or certificate files."""
    common = {
        "app_id": settings.ALIPAY_APP_ID,
        "notify_url": settings.ALIPAY_NOTIFY_URL,
        "return_url": settings.ALIPAY_RETURN_URL,
        "seller_id": settings.ALIPAY_SELLER_ID,
        "timeout": settings.ALIPAY_TIMEOUT_SECONDS,
    }
    if settings.ALIPAY_DEV_GATEWAY:
        from billing.dev_gateway import certs as dev_certs
        from billing.dev_gateway import keys as dev_keys

        dev_gateway_url = settings.DEV_GATEWAY_BASE_URL + reverse("dev_gateway:gateway")
        if settings.ALIPAY_DEV_GATEWAY_CERT_MODE:
            # Read back from the files it wrote, as a real deployment reads Alipay's.
            mode = load_certificate_mode(**dev_certs.certificate_files())
            return AlipayClient(
                app_private_key=dev_keys.app_private_key(),
                alipay_public_key=mode.alipay_public_key,
                gateway_url=dev_gateway_url,
                cert_sns=mode.sns,
                **common,
            )
        return AlipayClient(
            app_private_key=dev_keys.app_private_key(),
            alipay_public_key=dev_keys.gateway_public_key(),
            gateway_url=dev_gateway_url,
            **common,
        )
    if not settings.ALIPAY_APP_ID:
        raise AlipayError("ALIPAY_APP_ID is not set.")
    app_private_key = load_private_key(_read_key_file("ALIPAY_APP_PRIVATE_KEY_PATH"))
    if settings.ALIPAY_CERT_MODE:
        mode = load_certificate_mode(
            app_cert=_read_key_file("ALIPAY_APP_CERT_PATH"),
            alipay_cert=_read_key_file("ALIPAY_PUBLIC_CERT_PATH"),
            alipay_root_cert=_read_key_file("ALIPAY_ROOT_CERT_PATH"),
        )
        if (mode.app_public_key.n, mode.app_public_key.e) != (app_private_key.n, app_private_key.e):
            # Every request would be refused as isv.invalid-signature; say which files disagree instead.
            raise AlipayKeyError("ALIPAY_APP_CERT_PATH certifies another key than ALIPAY_APP_PRIVATE_KEY_PATH holds.")
        return AlipayClient(
            app_private_key=app_private_key,
            alipay_public_key=mode.alipay_public_key,
            gateway_url=settings.ALIPAY_GATEWAY_URL,
            cert_sns=mode.sns,
            **common,
        )
    return AlipayClient(
        app_private_key=app_private_key,
        alipay_public_key=load_public_key(_read_key_file("ALIPAY_PUBLIC_KEY_PATH")),
        gateway_url=settings.ALIPAY_GATEWAY_URL,
        **common,
    )


def _read_key_file(setting_name: str) -> str:
    path = getattr(settings, setting_name)
    if not path:
        raise AlipayKeyError(f"{setting_name} is not set.")
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise AlipayKeyError(f"{setting_name}: cannot read {path}: {exc}") from exc


@receiver(setting_changed)
def _forget_client_on_settings_change(*, setting: str, **kwargs: Any) -> None:
    # Tests override ALIPAY_* settings; a client cached from the old values would ignore them.
    if setting.startswith("ALIPAY_") or setting in ("PUBLIC_BASE_URL", "DEV_GATEWAY_BASE_URL"):
        get_alipay_client.cache_clear()

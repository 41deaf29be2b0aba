"""The calls we make to WeChat Pay API v3, and the checks on what comes back.

Every answer is verified with the WeChat Pay public key before any field of it is read, errors
included: a trade that "does not exist" is only believed from a signed answer. WeChat Pay signs
every answer to a request whose own signature it accepted; an unsigned error is reported by its
HTTP status alone.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests

from billing.wechatpay.errors import Reason, WechatPayError
from billing.wechatpay.formats import (
    DESCRIPTION_MAX_LENGTH,
    check_out_refund_no,
    check_out_trade_no,
    compact_json,
    rfc3339,
    to_fen,
)
from billing.wechatpay.keys import RsaKey, load_apiv3_key, load_private_key, load_public_key
from billing.wechatpay.notify import json_object, parse_notification, require_ours
from billing.wechatpay.results import (
    CURRENCY,
    H5Order,
    NativeOrder,
    Refund,
    RefundNotification,
    TradeQuery,
    TransactionNotification,
    refund_from,
    text,
    trade_query_from,
)
from billing.wechatpay.signing import SERIAL_HEADER, authorization, is_signed, verify_signed

API_BASE = "https://api.mch.weixin.qq.com"
ORDER_NOT_EXIST = "ORDER_NOT_EXIST"
RESOURCE_NOT_EXISTS = "RESOURCE_NOT_EXISTS"
H5_TYPES = frozenset({"Wap", "iOS", "Android"})
# WeChat Pay may refuse a request without a User-Agent.
USER_AGENT = "course-shop-checkout/1 (WeChat Pay API v3; python-requests)"


@dataclass(frozen=True)
class _Answer:
    status: int
    payload: dict[str, Any]


class WechatPayClient:
    def __init__(
        self,
        *,
        mchid: str,
        appid: str,
        merchant_private_key: RsaKey | str,
        merchant_serial_no: str,
        apiv3_key: bytes | str,
        wechatpay_public_key: RsaKey | str,
        wechatpay_public_key_id: str,
        notify_url: str,
        api_base: str = API_BASE,
        timeout: float = 10,
    ) -> None:
        self.mchid = mchid
        self.appid = appid
        self.merchant_private_key = (
            load_private_key(merchant_private_key) if isinstance(merchant_private_key, str) else merchant_private_key
        )
        self.merchant_serial_no = merchant_serial_no
        self.apiv3_key = load_apiv3_key(apiv3_key)
        self.wechatpay_public_key = (
            load_public_key(wechatpay_public_key) if isinstance(wechatpay_public_key, str) else wechatpay_public_key
        )
        self.wechatpay_public_key_id = wechatpay_public_key_id
        self.notify_url = notify_url
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout

    # Paying ---------------------------------------------------------------------------------------

    def create_native_order(
        self, *, out_trade_no: str, description: str, total_amount: Decimal, time_expire: datetime
    ) -> NativeOrder:
        """A Native (QR code) trade; the buyer scans `code_url` with WeChat. Asking again with the
        same terms answers the same code_url."""
        body = self._order_body(out_trade_no, description, total_amount, time_expire)
        answer = self._call("POST", "/v3/pay/transactions/native", body=body, expect=200)
        return NativeOrder(out_trade_no=out_trade_no, code_url=_url(answer.payload, "code_url"))

    def create_h5_order(
        self,
        *,
        out_trade_no: str,
        description: str,
        total_amount: Decimal,
        time_expire: datetime,
        payer_client_ip: str,
        h5_type: str = "Wap",
    ) -> H5Order:
        """An H5 trade, paid in WeChat from a phone browser; send the buyer to `h5_url` (with
        `H5Order.url_returning_to` to bring them back). `payer_client_ip` is the buyer's IP, which
        WeChat Pay compares with the one that opens h5_url."""
        if not payer_client_ip:
            raise ValueError("H5 pay needs the buyer's IP address.")
        if h5_type not in H5_TYPES:
            raise ValueError(f"h5_type must be one of {sorted(H5_TYPES)}")
        body = self._order_body(out_trade_no, description, total_amount, time_expire)
        body["scene_info"] = {"payer_client_ip": payer_client_ip, "h5_info": {"type": h5_type}}
        answer = self._call("POST", "/v3/pay/transactions/h5", body=body, expect=200)
        return H5Order(out_trade_no=out_trade_no, h5_url=_url(answer.payload, "h5_url"))

    # Asking and closing -------------------------------------------------------------------------

    def query_trade(self, *, out_trade_no: str) -> TradeQuery | None:
        """The trade's state at WeChat Pay, or None when WeChat Pay (in a signed answer) has no
        such trade."""
        path = f"/v3/pay/transactions/out-trade-no/{_segment(check_out_trade_no(out_trade_no))}"
        answer = self._call("GET", path, query={"mchid": self.mchid}, expect=200, absent=ORDER_NOT_EXIST)
        if answer is None:
            return None
        require_ours(answer.payload, mchid=self.mchid, appid=self.appid)
        query = trade_query_from(answer.payload)
        _require_same("out_trade_no", query.out_trade_no, out_trade_no)
        return query

    def close_trade(self, *, out_trade_no: str) -> None:
        """Close an unpaid trade. WeChat Pay answers 204 for a trade already closed too (and, by
        its users' reports, for one it never had); a paid one is refused: query to tell apart."""
        path = f"/v3/pay/transactions/out-trade-no/{_segment(check_out_trade_no(out_trade_no))}/close"
        self._call("POST", path, body={"mchid": self.mchid}, expect=204)

    # Refunds --------------------------------------------------------------------------------------

    def refund_trade(
        self, *, out_trade_no: str, out_refund_no: str, refund_amount: Decimal, total_amount: Decimal, reason: str = ""
    ) -> Refund:
        """Refund part or all of a paid trade. WeChat Pay refunds one out_refund_no at most once,
        so retrying with the same out_refund_no (and the same amounts) after a timeout is safe.
        The answer is usually PROCESSING; the result comes by a REFUND.* notify or query_refund."""
        refund_fen, total_fen = to_fen(refund_amount), to_fen(total_amount)
        if not 0 < refund_fen <= total_fen:
            raise ValueError(f"A refund must be positive and at most the trade's total: {refund_amount}")
        body: dict[str, Any] = {
            "out_trade_no": check_out_trade_no(out_trade_no),
            "out_refund_no": check_out_refund_no(out_refund_no),
        }
        if reason:
            body["reason"] = reason
        body["notify_url"] = self.notify_url
        body["amount"] = {"refund": refund_fen, "total": total_fen, "currency": CURRENCY}
        answer = self._call("POST", "/v3/refund/domestic/refunds", body=body, expect=200)
        refund = refund_from(answer.payload)
        _require_same("out_refund_no", refund.out_refund_no, out_refund_no)
        _require_same("out_trade_no", refund.out_trade_no, out_trade_no)
        if (refund.refund_fen, refund.total_fen) != (refund_fen, total_fen):
            raise WechatPayError(
                Reason.MALFORMED,
                f"refund {out_refund_no}: the answer says {refund.refund_fen}/{refund.total_fen} fen, "
                f"we asked for {refund_fen}/{total_fen}",
            )
        return refund

    def query_refund(self, *, out_refund_no: str) -> Refund | None:
        """A refund's state, or None when WeChat Pay (in a signed answer) has no such refund."""
        path = f"/v3/refund/domestic/refunds/{_segment(check_out_refund_no(out_refund_no))}"
        answer = self._call("GET", path, expect=200, absent=RESOURCE_NOT_EXISTS)
        if answer is None:
            return None
        refund = refund_from(answer.payload)
        _require_same("out_refund_no", refund.out_refund_no, out_refund_no)
        return refund

    # Notifies -------------------------------------------------------------------------------------

    def parse_notification(
        self, *, headers: Any, body: bytes | str, now: float | None = None
    ) -> TransactionNotification | RefundNotification:
        """A verified, decrypted notify of ours; pass `request.headers` and the raw `request.body`.
        Raises WechatPayError for anything else (see billing.wechatpay.notify)."""
        return parse_notification(
            headers=headers,
            body=body,
            mchid=self.mchid,
            appid=self.appid,
            apiv3_key=self.apiv3_key,
            public_key=self.wechatpay_public_key,
            public_key_id=self.wechatpay_public_key_id,
            now=now,
        )

    # Plumbing -------------------------------------------------------------------------------------

    def _order_body(
        self, out_trade_no: str, description: str, total_amount: Decimal, time_expire: datetime
    ) -> dict[str, Any]:
        total = to_fen(total_amount)
        if total <= 0:
            raise ValueError("WeChat Pay takes no trade of 0.00; settle free orders without it.")
        if not isinstance(description, str) or not 0 < len(description) <= DESCRIPTION_MAX_LENGTH:
            raise ValueError(f"description must be 1 to {DESCRIPTION_MAX_LENGTH} characters")
        return {
            "appid": self.appid,
            "mchid": self.mchid,
            "description": description,
            "out_trade_no": check_out_trade_no(out_trade_no),
            # WeChat Pay closes the trade itself at our deadline, so a buyer cannot pay an order
            # we have already cancelled.
            "time_expire": rfc3339(time_expire),
            "notify_url": self.notify_url,
            "amount": {"total": total, "currency": CURRENCY},
        }

    def _call(
        self,
        method: str,
        path: str,
        *,
        expect: int,
        query: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        absent: str = "",
    ) -> _Answer | None:
        """One signed request; the verified answer when its status is `expect`, None for a signed
        404 carrying the code `absent`, WechatPayError for anything else."""
        base = urlsplit(self.api_base)
        # The signature covers the path as sent, so a base with a path (the dev gateway's) is in it.
        url = base.path.rstrip("/") + path + (f"?{urlencode(query)}" if query else "")
        what = f"{method} {path}"
        content = b"" if body is None else compact_json(body).encode("utf-8")
        headers = {
            "Authorization": authorization(
                mchid=self.mchid,
                serial_no=self.merchant_serial_no,
                private_key=self.merchant_private_key,
                method=method,
                url=url,
                body=content,
            ),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            # Public-key mode: names the WeChat Pay key we verify with, as WeChat Pay's SDKs do.
            SERIAL_HEADER: self.wechatpay_public_key_id,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        status, answer_headers, answer = _send(
            method, f"{base.scheme}://{base.netloc}{url}", headers=headers, body=content, timeout=self.timeout
        )
        request_id = answer_headers.get("Request-ID", "")
        if not 200 <= status < 300 and not is_signed(answer_headers):
            # E.g. 401 SIGN_ERROR: WeChat Pay cannot sign an answer to a request it did not accept.
            # Its code is not believed, so the caller cannot mistake it for "no such trade".
            raise WechatPayError(
                Reason.UNSIGNED, f"{what}: HTTP {status} without a signature", http_status=status, request_id=request_id
            )
        try:
            verify_signed(
                headers=answer_headers,
                body=answer,
                public_key=self.wechatpay_public_key,
                public_key_id=self.wechatpay_public_key_id,
            )
        except WechatPayError as exc:
            raise WechatPayError(
                exc.reason, f"{what}: {exc.detail}", http_status=status, request_id=request_id
            ) from None
        if status == expect:
            return _Answer(status, json_object(answer, what) if expect != 204 else {})
        if 200 <= status < 300:
            raise WechatPayError(
                Reason.MALFORMED, f"{what}: HTTP {status}, expected {expect}", http_status=status, request_id=request_id
            )
        refusal = json_object(answer, what)
        code = refusal.get("code") if isinstance(refusal.get("code"), str) else ""
        if absent and status == 404 and code == absent:
            return None
        raise WechatPayError(
            Reason.REFUSED,
            f"{what}: {refusal.get('message') or 'refused'}",
            code=code,
            http_status=status,
            request_id=request_id,
        )


def _send(
    method: str, url: str, *, headers: dict[str, str], body: bytes, timeout: float
) -> tuple[int, Mapping[str, str], bytes]:
    """One HTTP exchange, the connection closed before the answer is read: an error raised later
    (and kept, in a log or a test) holds bytes, not a socket."""
    try:
        with requests.request(
            method, url, data=body or None, headers=headers, timeout=timeout, allow_redirects=False
        ) as response:
            return response.status_code, response.headers, response.content
    except requests.RequestException as exc:
        raise WechatPayError(Reason.UNREACHABLE, f"{method} {urlsplit(url).path}: {exc}") from exc


def _segment(value: str) -> str:
    # Escaped as WeChat Pay's own SDKs escape path parameters, and signed in that form.
    return quote(value, safe="")


def _url(payload: dict[str, Any], name: str) -> str:
    value = text(payload, name)
    if not value.startswith(("weixin://", "https://", "http://")):
        raise WechatPayError(Reason.MALFORMED, f"{name} is not a URL: {value!r}")
    return value


def _require_same(name: str, answered: str, asked: str) -> None:
    # A signed answer names no request, so a replayed answer about another trade would verify.
    if answered != asked:
        raise WechatPayError(Reason.NOT_OURS, f"the answer is about {name} {answered!r}, not {asked!r}")

"""The dev gateway's HTTP face: `gateway.do` (page pay in the browser; query, close and refund
from our server) and the cashier page's Pay button.

Requests are checked as Alipay checks them (app_id, sign_type, in certificate mode the app and
root certificate SNs, the app's RSA2 signature over every parameter but `sign`); answers are
signed with the gateway's own key and, in certificate mode, name its certificate's SN.
"""

import json
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.timezone import now
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.alipay.formats import beijing_time, compact_json, format_amount, parse_amount, parse_beijing_time
from billing.alipay.signing import response_key, sign_message, verify_request
from billing.dev_gateway import certs, trades
from billing.dev_gateway.keys import app_public_key, gateway_private_key
from billing.dev_gateway.notify import DEV_BUYER_ID, return_redirect_url, send_notify
from billing.dev_gateway.trades import GatewayRefusal
from billing.models import DevGatewayTrade

PAGE_PAY = "alipay.trade.page.pay"
WAP_PAY = "alipay.trade.wap.pay"
# Each browser method and the product_code Alipay requires with it.
BROWSER_PRODUCTS = {PAGE_PAY: "FAST_INSTANT_TRADE_PAY", WAP_PAY: "QUICK_WAP_WAY"}
BUYER_LOGON_ID = "dev***@example.com"
MAX_AMOUNT = Decimal("100000000.00")
# Alipay's rule for merchant order numbers.
OUT_TRADE_NO = re.compile(r"[A-Za-z0-9_]{1,64}")


def _require_enabled() -> None:
    # Mounted or not, a fake that "pays" trades and POSTs to URLs it is given has no business
    # answering when a real gateway is configured.
    if not settings.ALIPAY_DEV_GATEWAY:
        raise Http404("The Alipay dev gateway is off.")


@csrf_exempt
def gateway(request: HttpRequest) -> HttpResponse:
    _require_enabled()
    # Alipay's SDKs put the common parameters in the query string and biz_content in the body.
    params = {**request.GET.dict(), **request.POST.dict()}
    method = params.get("method", "")
    if method in BROWSER_PRODUCTS:
        return _browser_pay(request, params, product_code=BROWSER_PRODUCTS[method])
    answer_for = API_METHODS.get(method)
    if answer_for is None:
        return signed_answer("", _invalid("isv.invalid-method", f"不存在的方法名 (unknown method {method!r})"))
    try:
        biz = _checked_biz_content(params)
        answer = answer_for(biz)
    except GatewayRefusal as refusal:
        answer = refusal.as_answer()
    return signed_answer(method, answer)


@csrf_exempt
@require_POST
def pay(request: HttpRequest, out_trade_no: str) -> HttpResponse:
    """The cashier's Pay button: the trade is paid, the app notified, the buyer sent back."""
    _require_enabled()
    try:
        trade, newly_paid = trades.pay_trade(out_trade_no=out_trade_no)
    except DevGatewayTrade.DoesNotExist:
        raise Http404("No such trade.") from None
    except GatewayRefusal as refusal:
        return _error_page(request, refusal.sub_msg, status=400)
    if newly_paid:
        # Sent before the redirect so the order is usually settled when the buyer lands on the
        # return page; real Alipay gives no such ordering, which is why the return is only a hint.
        send_notify(trade)
    if not trade.return_url:
        return render(request, "dev_gateway/checkout.html", _page_context(trade))
    return HttpResponseRedirect(return_redirect_url(trade))


# Page and wap pay (browser) ------------------------------------------------------------------


def _browser_pay(request: HttpRequest, params: dict[str, str], *, product_code: str) -> HttpResponse:
    try:
        biz = _checked_biz_content(params)
        if biz.get("product_code") != product_code:
            raise _invalid_parameter(f"product_code must be {product_code}")
        amount = _amount(biz, "total_amount")
        if amount > MAX_AMOUNT:
            raise _invalid_parameter("total_amount is above 100000000.00")
        subject = biz.get("subject")
        if not isinstance(subject, str) or not subject or len(subject) > 256:
            raise _invalid_parameter("subject must be 1 to 256 characters")
        time_expire = biz.get("time_expire")
        quit_url = biz.get("quit_url", "")
        if not isinstance(quit_url, str) or len(quit_url) > 400:
            raise _invalid_parameter("quit_url must be a URL of at most 400 characters")
        trade = trades.open_trade(
            out_trade_no=_out_trade_no(biz),
            total_amount=amount,
            subject=subject,
            notify_url=params.get("notify_url", ""),
            return_url=params.get("return_url", ""),
            time_expire=_time(time_expire) if time_expire else None,
            product_code=product_code,
            quit_url=quit_url if product_code == BROWSER_PRODUCTS[WAP_PAY] else "",
        )
    except GatewayRefusal as refusal:
        return _error_page(request, f"{refusal.sub_code}: {refusal.sub_msg}", status=400)
    return render(request, "dev_gateway/checkout.html", _page_context(trade))


def _page_context(trade: DevGatewayTrade) -> dict[str, Any]:
    closed = trade.status == DevGatewayTrade.Status.TRADE_CLOSED
    phone = trade.product_code == BROWSER_PRODUCTS[WAP_PAY]
    return {
        "phone": phone,
        "trade": trade,
        "amount": format_amount(trade.total_amount),
        "deadline": beijing_time(trade.time_expire) if trade.time_expire else "",
        "payable": trade.status == DevGatewayTrade.Status.WAIT_BUYER_PAY,
        "paid": trade.paid_at is not None,
        "expired": closed and trade.paid_at is None and trade.time_expire is not None and trade.time_expire <= now(),
        "closed": closed,
        # Leaving without paying goes back with no parameters, as Alipay's cashier does: to the
        # wap request's quit_url, else to return_url.
        "cancel_url": (phone and trade.quit_url) or trade.return_url,
        "paid_return_url": return_redirect_url(trade) if trade.return_url and trade.paid_at else "",
    }


def _error_page(request: HttpRequest, message: str, *, status: int) -> HttpResponse:
    return render(request, "dev_gateway/error.html", {"message": message}, status=status)


# Server-to-server methods ---------------------------------------------------------------------


def _answer_query(biz: dict[str, Any]) -> dict[str, Any]:
    trade = trades.query_trade(out_trade_no=_out_trade_no(biz))
    answer = _success(trade)
    answer.update(
        {
            "trade_status": trade.status,
            "total_amount": format_amount(trade.total_amount),
            "subject": trade.subject,
            "buyer_pay_amount": format_amount(trade.total_amount if trade.paid_at else Decimal("0")),
            "receipt_amount": format_amount(trade.total_amount if trade.paid_at else Decimal("0")),
        }
    )
    if trade.paid_at:
        answer["send_pay_date"] = beijing_time(trade.paid_at)
    return answer


def _answer_close(biz: dict[str, Any]) -> dict[str, Any]:
    return _success(trades.close_trade(out_trade_no=_out_trade_no(biz)))


def _answer_refund(biz: dict[str, Any]) -> dict[str, Any]:
    out_request_no = biz.get("out_request_no")
    if not isinstance(out_request_no, str) or not out_request_no:
        raise _invalid_parameter("out_request_no is required")
    trade, fund_change = trades.refund_trade(
        out_trade_no=_out_trade_no(biz), refund_amount=_amount(biz, "refund_amount"), out_request_no=out_request_no
    )
    answer = _success(trade)
    answer.update(
        {
            "fund_change": "Y" if fund_change else "N",
            "refund_fee": format_amount(trade.refunded_amount),
            "buyer_user_id": DEV_BUYER_ID,
        }
    )
    return answer


def _answer_refund_query(biz: dict[str, Any]) -> dict[str, Any]:
    out_request_no = biz.get("out_request_no")
    if not isinstance(out_request_no, str) or not out_request_no:
        raise _invalid_parameter("out_request_no is required")
    trade = trades.query_trade(out_trade_no=_out_trade_no(biz))
    answer = _success(trade)
    if out_request_no in trade.refund_amounts:
        # A refund it made; one it has no record of answers with no refund data, as Alipay does.
        answer.update(
            {
                "out_request_no": out_request_no,
                "refund_amount": trade.refund_amounts[out_request_no],
                "total_amount": format_amount(trade.total_amount),
                "refund_status": "REFUND_SUCCESS",
            }
        )
    return answer


API_METHODS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "alipay.trade.query": _answer_query,
    "alipay.trade.close": _answer_close,
    "alipay.trade.refund": _answer_refund,
    "alipay.trade.fastpay.refund.query": _answer_refund_query,
}


def signed_answer(method: str, answer: dict[str, Any]) -> HttpResponse:
    """Alipay's answer shape: `{"<method>_response": {...}, "sign": "..."}`, the signature over
    the exact text of the inner object as sent."""
    return HttpResponse(signed_answer_text(method, answer), content_type="application/json; charset=utf-8")


def signed_answer_text(method: str, answer: dict[str, Any]) -> str:
    inner = compact_json(answer)
    key = response_key(method) if method else "error_response"
    signature = sign_message(inner, gateway_private_key())
    # In certificate mode Alipay names the certificate whose key signed, beside (not inside) the signed text.
    cert_sn = (
        f'"alipay_cert_sn":{json.dumps(certs.certificate_sns().alipay_cert_sn)},'
        if settings.ALIPAY_DEV_GATEWAY_CERT_MODE
        else ""
    )
    return f"{{{json.dumps(key)}:{inner},{cert_sn}{json.dumps('sign')}:{json.dumps(signature)}}}"


def _success(trade: DevGatewayTrade) -> dict[str, Any]:
    answer: dict[str, Any] = {"code": "10000", "msg": "Success", "out_trade_no": trade.out_trade_no}
    if trade.trade_no:
        answer["trade_no"] = trade.trade_no
        answer["buyer_logon_id"] = BUYER_LOGON_ID
    return answer


# Request checks -------------------------------------------------------------------------------


def _checked_biz_content(params: dict[str, str]) -> dict[str, Any]:
    """The request's biz_content, once app_id, sign_type and the signature are right."""
    if params.get("app_id") != settings.ALIPAY_APP_ID:
        raise GatewayRefusal(**_invalid("isv.invalid-app-id", "无效的AppID参数 (unknown app_id)"))
    if params.get("sign_type") != "RSA2":
        raise GatewayRefusal(**_invalid("isv.invalid-signature-type", "无效的签名类型 (sign_type must be RSA2)"))
    if settings.ALIPAY_DEV_GATEWAY_CERT_MODE:
        _check_certificate_sns(params)
    if not verify_request(params, app_public_key()):
        raise GatewayRefusal(**_invalid("isv.invalid-signature", "验签出错 (the app's signature does not verify)"))
    try:
        biz = json.loads(params.get("biz_content") or "")
    except ValueError:
        biz = None
    if not isinstance(biz, dict):
        raise GatewayRefusal(**_invalid("isv.invalid-parameter", "biz_content is not a JSON object"))
    return biz


def _check_certificate_sns(params: dict[str, str]) -> None:
    # Alipay's answers to a missing or unknown SN (the app signing with certificates has no public key).
    sns = certs.certificate_sns()
    if params.get("app_cert_sn") != sns.app_cert_sn:
        raise GatewayRefusal(
            **_invalid(
                "isv.app-cert-not-exist", f"应用公钥证书不存在 (no app certificate {params.get('app_cert_sn')!r})"
            )
        )
    if params.get("alipay_root_cert_sn") != sns.alipay_root_cert_sn:
        raise GatewayRefusal(
            **_invalid(
                "isv.invalid-alipay-root-cert-sn",
                f"无效支付宝根证书序列号 (alipay_root_cert_sn {params.get('alipay_root_cert_sn')!r})",
            )
        )


def _invalid(sub_code: str, sub_msg: str) -> dict[str, str]:
    """A protocol-level refusal (code 40002), as opposed to a business one (40004)."""
    return {"code": "40002", "msg": "Invalid Arguments", "sub_code": sub_code, "sub_msg": sub_msg}


def _invalid_parameter(message: str) -> GatewayRefusal:
    return GatewayRefusal("ACQ.INVALID_PARAMETER", f"参数无效 ({message})")


def _out_trade_no(biz: dict[str, Any]) -> str:
    value = biz.get("out_trade_no")
    if not isinstance(value, str) or not OUT_TRADE_NO.fullmatch(value):
        raise _invalid_parameter("out_trade_no must be 1 to 64 letters, digits or underscores")
    return value


def _amount(biz: dict[str, Any], name: str) -> Decimal:
    try:
        amount = parse_amount(biz.get(name))
    except ValueError:
        raise _invalid_parameter(f"{name} must be an amount like 199.00") from None
    if amount <= 0:
        raise _invalid_parameter(f"{name} must be at least 0.01")
    return amount


def _time(value: Any) -> datetime:
    try:
        return parse_beijing_time(value)
    except (TypeError, ValueError):
        raise _invalid_parameter("time_expire must be yyyy-MM-dd HH:mm:ss") from None

"""The stand-in's HTTP face: WeChat Pay API v3's own paths under /dev/wechatpay/v3/ (orders,
query, close, refunds), checked and answered as WeChat Pay does (billing.wechatpay_dev_gateway
.answers), and the pages a buyer's phone opens at a code_url (after scanning the QR code) or an
h5_url, whose Pay button pays the trade and notifies the merchant.
"""

import functools
import json
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from billing.models import WechatPayDevRefund, WechatPayDevTrade
from billing.wechatpay.formats import (
    BEIJING,
    DESCRIPTION_MAX_LENGTH,
    OUT_REFUND_NO,
    OUT_TRADE_NO,
    parse_rfc3339,
    to_yuan,
)
from billing.wechatpay_dev_gateway import keys, trades
from billing.wechatpay_dev_gateway.answers import (
    Unauthorized,
    authenticated_mchid,
    refund_answer,
    refusal_answer,
    signed_answer,
    trade_answer,
    unsigned_refusal,
)
from billing.wechatpay_dev_gateway.notify import send_notify, send_notify_later, signed_notify
from billing.wechatpay_dev_gateway.trades import GatewayRefusal

TradeType = WechatPayDevTrade.TradeType
H5_TYPES = frozenset({"Wap", "iOS", "Android"})


def _require_enabled() -> None:
    # Mounted or not, a fake that "pays" trades and POSTs to URLs it is given has no business
    # answering unless asked for by name.
    if not settings.WECHATPAY_DEV_GATEWAY:
        raise Http404("The WeChat Pay dev gateway is off.")


def api(*methods: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A WeChat Pay API view: the request's signature checked first, every answer signed."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            _require_enabled()
            if request.method not in methods:
                return HttpResponseNotAllowed(methods)
            try:
                return view(request, authenticated_mchid(request), *args, **kwargs)
            except Unauthorized as exc:
                return unsigned_refusal(401, "SIGN_ERROR", str(exc))
            except GatewayRefusal as refusal:
                return refusal_answer(refusal)

        return wrapper

    return decorate


# The API ----------------------------------------------------------------------------------------


@api("POST")
def native_order(request: HttpRequest, mchid: str) -> HttpResponse:
    trade = _open_trade(request, mchid, TradeType.NATIVE)
    code_url = request.build_absolute_uri(reverse("wechatpay_dev_gateway:scanned", args=[trade.prepay_id]))
    return signed_answer(200, {"code_url": code_url})


@api("POST")
def h5_order(request: HttpRequest, mchid: str) -> HttpResponse:
    trade = _open_trade(request, mchid, TradeType.H5)
    query = urlencode({"prepay_id": trade.prepay_id, "package": f"{secrets.randbelow(10**10):010d}"})
    h5_url = request.build_absolute_uri(reverse("wechatpay_dev_gateway:h5") + "?" + query)
    return signed_answer(200, {"h5_url": h5_url})


@api("GET")
def query_trade(request: HttpRequest, mchid: str, out_trade_no: str) -> HttpResponse:
    if request.GET.get("mchid") != mchid:
        raise GatewayRefusal(400, "PARAM_ERROR", "query mchid 与请求头中的商户号不一致")
    return signed_answer(200, trade_answer(trades.query_trade(out_trade_no=out_trade_no, mchid=mchid)))


@api("POST")
def close_trade(request: HttpRequest, mchid: str, out_trade_no: str) -> HttpResponse:
    if _json_body(request).get("mchid") != mchid:
        raise GatewayRefusal(400, "PARAM_ERROR", "mchid 与请求头中的商户号不一致")
    trades.close_trade(out_trade_no=out_trade_no, mchid=mchid)
    return signed_answer(204, None)


@api("POST")
def refund(request: HttpRequest, mchid: str) -> HttpResponse:
    body = _json_body(request)
    amount = body.get("amount")
    if not isinstance(amount, dict) or amount.get("currency", "CNY") != "CNY":
        raise GatewayRefusal(400, "PARAM_ERROR", "amount 须含 refund、total，currency 为 CNY")
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 80:
        raise GatewayRefusal(400, "PARAM_ERROR", "reason 至多80个字符")
    made, created = trades.refund_trade(
        mchid=mchid,
        out_trade_no=_matching(body, "out_trade_no", OUT_TRADE_NO),
        out_refund_no=_matching(body, "out_refund_no", OUT_REFUND_NO),
        refund=_fen(amount, "refund"),
        total=_fen(amount, "total"),
        reason=reason,
        notify_url=_notify_url(body, required=False),
    )
    if not created:
        return signed_answer(200, refund_answer(made))
    send_notify_later(made.notify_url or made.trade.notify_url, signed_notify(made))
    return signed_answer(200, refund_answer(made, status=WechatPayDevRefund.Status.PROCESSING))


@api("GET")
def query_refund(request: HttpRequest, mchid: str, out_refund_no: str) -> HttpResponse:
    return signed_answer(200, refund_answer(trades.query_refund(out_refund_no=out_refund_no, mchid=mchid)))


def _open_trade(request: HttpRequest, mchid: str, trade_type: str) -> WechatPayDevTrade:
    body = _json_body(request)
    if body.get("mchid") != mchid:
        raise GatewayRefusal(400, "PARAM_ERROR", "mchid 与请求头中的商户号不一致")
    if body.get("appid") != settings.WECHATPAY_APPID:
        raise GatewayRefusal(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
    description = body.get("description")
    if not isinstance(description, str) or not 0 < len(description) <= DESCRIPTION_MAX_LENGTH:
        raise GatewayRefusal(400, "PARAM_ERROR", f"description 须为1至{DESCRIPTION_MAX_LENGTH}个字符")
    amount = body.get("amount")
    if not isinstance(amount, dict) or amount.get("currency", "CNY") != "CNY":
        raise GatewayRefusal(400, "PARAM_ERROR", "amount 须含 total，currency 为 CNY")
    payer_client_ip = ""
    if trade_type == TradeType.H5:
        scene = body.get("scene_info")
        h5_info = scene.get("h5_info") if isinstance(scene, dict) else None
        payer_client_ip = scene.get("payer_client_ip") if isinstance(scene, dict) else None
        if not isinstance(payer_client_ip, str) or not payer_client_ip or len(payer_client_ip) > 45:
            raise GatewayRefusal(400, "PARAM_ERROR", "scene_info.payer_client_ip 必填")
        if not isinstance(h5_info, dict) or h5_info.get("type") not in H5_TYPES:
            raise GatewayRefusal(400, "PARAM_ERROR", "scene_info.h5_info.type 须为 Wap、iOS 或 Android")
    return trades.open_trade(
        out_trade_no=_matching(body, "out_trade_no", OUT_TRADE_NO),
        appid=body["appid"],
        mchid=mchid,
        trade_type=trade_type,
        description=description,
        total=_fen(amount, "total"),
        notify_url=_notify_url(body, required=True),
        time_expire=_time(body.get("time_expire")),
        payer_client_ip=payer_client_ip,
    )


def _json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        body = None
    if not isinstance(body, dict):
        raise GatewayRefusal(400, "PARAM_ERROR", "请求体须为 UTF-8 JSON 对象")
    return body


def _matching(body: dict[str, Any], name: str, pattern: Any) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise GatewayRefusal(400, "PARAM_ERROR", f"{name} 格式错误")
    return value


def _fen(amount: dict[str, Any], name: str) -> int:
    value = amount.get(name)
    if type(value) is not int or value < 1:
        raise GatewayRefusal(400, "PARAM_ERROR", f"amount.{name} 须为正整数（分）")
    return value


def _notify_url(body: dict[str, Any], *, required: bool) -> str:
    value = body.get("notify_url")
    if value is None and not required:
        return ""
    # WeChat Pay's rule: an absolute URL without a query string (the dev gateway allows http).
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https") or "?" in value:
        raise GatewayRefusal(400, "PARAM_ERROR", "notify_url 须为不带查询串的 http(s) 地址")
    return value


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise GatewayRefusal(400, "PARAM_ERROR", "time_expire 须为 RFC 3339 格式 (2026-01-01T08:30:00+08:00)") from None


# The buyer's phone ------------------------------------------------------------------------------


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    _require_enabled()
    context = {
        "mchid": settings.WECHATPAY_MCHID,
        "appid": settings.WECHATPAY_APPID,
        "merchant_serial_no": keys.merchant_serial_no(),
        "public_key_id": keys.public_key_id(),
        "key_dir": settings.WECHATPAY_DEV_KEY_DIR,
    }
    return render(request, "wechatpay_dev_gateway/home.html", context)


@require_GET
def scanned(request: HttpRequest, prepay_id: str) -> HttpResponse:
    """What a phone opens from a Native code_url (the QR code the shop shows encodes it)."""
    _require_enabled()
    return _checkout(request, _trade(prepay_id, TradeType.NATIVE))


@require_GET
def h5(request: HttpRequest) -> HttpResponse:
    """The h5_url a phone browser is sent to; `redirect_url` is the merchant's way back."""
    _require_enabled()
    trade = _trade(request.GET.get("prepay_id", ""), TradeType.H5)
    return _checkout(request, trade, redirect_url=_safe_redirect(request.GET.get("redirect_url", "")))


@csrf_exempt
@require_POST
def pay(request: HttpRequest, prepay_id: str) -> HttpResponse:
    """The Pay button: the trade is paid, the merchant notified, the buyer shown "paid" (or, from
    H5, sent to the merchant's redirect_url)."""
    _require_enabled()
    try:
        trade, newly_paid = trades.pay_trade(prepay_id=prepay_id)
    except WechatPayDevTrade.DoesNotExist:
        raise Http404("No such trade.") from None
    except GatewayRefusal as refusal:
        return render(request, "wechatpay_dev_gateway/error.html", {"message": refusal.message}, status=400)
    if newly_paid:
        # Sent before the page answers so the order is usually settled when the buyer looks;
        # WeChat Pay gives no such ordering, which is why a redirect is only a hint.
        send_notify(trade.notify_url, signed_notify(trade))
    redirect_url = _safe_redirect(request.POST.get("redirect_url", ""))
    if trade.trade_type == TradeType.H5 and redirect_url:
        return HttpResponseRedirect(redirect_url)
    return _checkout(request, trade)


def _trade(prepay_id: str, trade_type: str) -> WechatPayDevTrade:
    try:
        return trades.view_trade(prepay_id=prepay_id, trade_type=trade_type)
    except WechatPayDevTrade.DoesNotExist:
        raise Http404("No such trade.") from None


def _checkout(request: HttpRequest, trade: WechatPayDevTrade, *, redirect_url: str = "") -> HttpResponse:
    paid = trade.success_time is not None
    expired = not paid and trade.time_expire is not None and trade.time_expire <= timezone.now()
    context = {
        "trade": trade,
        "amount": f"{to_yuan(trade.total):f}",
        "deadline": trade.time_expire.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S") if trade.time_expire else "",
        "payable": trade.trade_state == WechatPayDevTrade.State.NOTPAY,
        "paid": paid,
        "expired": expired,
        "h5": trade.trade_type == TradeType.H5,
        "redirect_url": redirect_url,
    }
    return render(request, "wechatpay_dev_gateway/checkout.html", context)


def _safe_redirect(url: str) -> str:
    # Only a web address: the page must not become a way to run script through a crafted link.
    return url if urlsplit(url).scheme in ("http", "https") else ""

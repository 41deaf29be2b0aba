"""How the stand-in checks a request and shapes its answer, as WeChat Pay API v3 does.

A request must carry `Authorization: WECHATPAY2-SHA256-RSA2048 ...` signed by the merchant key
over the path as sent, for our mchid and merchant serial, within 5 minutes. An accepted request
gets a signed answer (errors included); a refused signature gets an unsigned 401 SIGN_ERROR,
as WeChat Pay cannot vouch for an answer to a caller it does not know.
"""

import re
import time
import uuid
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from billing.models import WechatPayDevRefund, WechatPayDevTrade
from billing.wechatpay.formats import compact_json, rfc3339
from billing.wechatpay.signing import (
    SERIAL_HEADER,
    TIMESTAMP_TOLERANCE_SECONDS,
    parse_authorization,
    request_message,
    signed_headers,
    verify_message,
)
from billing.wechatpay_dev_gateway import keys
from billing.wechatpay_dev_gateway.notify import DEV_OPENID
from billing.wechatpay_dev_gateway.trades import GatewayRefusal

TRADE_STATE_DESC = {
    "NOTPAY": "订单未支付",
    "SUCCESS": "支付成功",
    "CLOSED": "订单已关闭",
    "REFUND": "转入退款",
}


class Unauthorized(Exception):
    """The request's own signature is refused: answered 401 SIGN_ERROR, unsigned."""


def authenticated_mchid(request: HttpRequest) -> str:
    """The merchant whose key signed this request. Raises Unauthorized."""
    try:
        fields = parse_authorization(request.headers.get("Authorization", ""))
    except ValueError as exc:
        raise Unauthorized(f"Authorization 格式错误 ({exc})") from None
    if fields["mchid"] != settings.WECHATPAY_MCHID:
        raise Unauthorized(f"商户号 {fields['mchid']} 不存在或无此商户的证书 (unknown mchid)")
    if fields["serial_no"] != keys.merchant_serial_no():
        raise Unauthorized("商户证书序列号有误 (serial_no names no certificate of this merchant)")
    stamp = fields["timestamp"]
    if not re.fullmatch(r"[0-9]{1,12}", stamp) or abs(time.time() - int(stamp)) > TIMESTAMP_TOLERANCE_SECONDS:
        raise Unauthorized("timestamp 与当前时间相差超过5分钟 (stale timestamp)")
    message = request_message(
        method=request.method or "",
        url=signed_url(request),
        timestamp=stamp,
        nonce=fields["nonce_str"],
        body=request.body,
    )
    if not verify_message(message, fields["signature"], keys.merchant_public_key()):
        raise Unauthorized("签名错误，请检查后再试 (the signature does not verify with the merchant's key)")
    serial = request.headers.get(SERIAL_HEADER)
    if serial is not None and serial != keys.public_key_id():
        raise GatewayRefusal(400, "PARAM_ERROR", "Wechatpay-Serial 不是有效的微信支付公钥ID")
    return fields["mchid"]


def signed_url(request: HttpRequest) -> str:
    """The path and query as the client sent and signed them: Django decodes the path, so it is
    escaped again the way WeChat Pay's SDKs escape path parameters; the query string is raw."""
    path = "/".join(quote(segment, safe="") for segment in request.path.split("/"))
    query = request.META.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def signed_answer(status: int, payload: dict[str, Any] | None) -> HttpResponse:
    """An answer signed with the platform key over its exact body (empty for 204)."""
    body = b"" if payload is None else compact_json(payload).encode("utf-8")
    response = HttpResponse(body, status=status, content_type="application/json; charset=utf-8")
    if payload is None:
        del response["Content-Type"]
    for name, value in signed_headers(
        body=body, private_key=keys.platform_private_key(), public_key_id=keys.public_key_id()
    ).items():
        response[name] = value
    response["Request-ID"] = str(uuid.uuid4())
    return response


def unsigned_refusal(status: int, code: str, message: str) -> HttpResponse:
    response = HttpResponse(
        compact_json({"code": code, "message": message}).encode("utf-8"),
        status=status,
        content_type="application/json; charset=utf-8",
    )
    response["Request-ID"] = str(uuid.uuid4())
    return response


def refusal_answer(refusal: GatewayRefusal) -> HttpResponse:
    return signed_answer(refusal.status, refusal.as_answer())


def trade_answer(trade: WechatPayDevTrade) -> dict[str, Any]:
    """A trade as `GET /v3/pay/transactions/out-trade-no/{out_trade_no}` shows it."""
    paid = trade.success_time is not None
    answer: dict[str, Any] = {
        "appid": trade.appid,
        "mchid": trade.mchid,
        "out_trade_no": trade.out_trade_no,
        "trade_type": trade.trade_type,
        "trade_state": trade.trade_state,
        "trade_state_desc": TRADE_STATE_DESC[trade.trade_state],
        "attach": "",
        "amount": {"total": trade.total, "currency": "CNY", "payer_currency": "CNY"},
    }
    if paid:
        answer.update(
            {
                "transaction_id": trade.transaction_id,
                "bank_type": "OTHERS",
                "success_time": rfc3339(trade.success_time),
                "payer": {"openid": DEV_OPENID},
            }
        )
        answer["amount"]["payer_total"] = trade.total
    return answer


def refund_answer(refund: WechatPayDevRefund, *, status: str | None = None) -> dict[str, Any]:
    """A refund as `/v3/refund/domestic/refunds` shows it (`status` overrides the stored one)."""
    status = status or refund.status
    answer: dict[str, Any] = {
        "refund_id": refund.refund_id,
        "out_refund_no": refund.out_refund_no,
        "transaction_id": refund.trade.transaction_id,
        "out_trade_no": refund.trade.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": rfc3339(refund.created_at),
        "status": status,
        "funds_account": "AVAILABLE",
        "amount": {
            "total": refund.total,
            "refund": refund.refund,
            "payer_total": refund.total,
            "payer_refund": refund.refund,
            "settlement_total": refund.total,
            "settlement_refund": refund.refund,
            "discount_refund": 0,
            "currency": "CNY",
        },
        "promotion_detail": [],
    }
    if status == WechatPayDevRefund.Status.SUCCESS and refund.success_time:
        answer["success_time"] = rfc3339(refund.success_time)
    return answer

import logging

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from ninja import Header, Query, Router, Status
from ninja.decorators import decorate_view
from ninja.pagination import paginate

from core.api_errors import error_statuses
from core.auth import jwt_auth
from core.client_ip import client_ip
from core.db import in_one_snapshot
from core.middleware import limit_body
from core.responses import trusted_json
from core.schemas import ErrorOut, Pagination
from orders import selectors, services
from orders.errors import OrderErrorCode
from orders.schemas import (
    AddCartItemIn,
    CartItemOut,
    CartOut,
    CheckoutPreviewOut,
    CheckoutQuery,
    OrderErrorOut,
    OrderFilter,
    OrderNo,
    OrderOut,
    OwnedCourseOut,
    PayIn,
    PayOut,
    PlaceOrderIn,
    RefundOut,
    RefundRequestIn,
    SelectionIn,
    WechatFailOut,
)

logger = logging.getLogger(__name__)


cart_router = Router(tags=["cart"], auth=jwt_auth)


@cart_router.get("", response=CartOut)
def get_cart(request: HttpRequest):
    return trusted_json(request, selectors.get_cart(user=request.auth))


@cart_router.post("/items", response={201: CartItemOut, 404: OrderErrorOut, 409: OrderErrorOut})
@decorate_view(error_statuses({OrderErrorCode.ALREADY_PURCHASED: 409}))
def add_cart_item(request: HttpRequest, payload: AddCartItemIn):
    return Status(201, services.add_to_cart(user=request.auth, course_id=payload.course_id))


@cart_router.patch("/items/{item_id}", response={200: CartItemOut, 404: OrderErrorOut})
def update_cart_item(request: HttpRequest, item_id: int, payload: SelectionIn):
    return services.set_cart_item_selected(user=request.auth, item_id=item_id, selected=payload.selected)


@cart_router.put("/selection", response=CartOut)
def set_selection(request: HttpRequest, payload: SelectionIn):
    services.set_cart_selection(user=request.auth, selected=payload.selected)
    return trusted_json(request, selectors.get_cart(user=request.auth))


@cart_router.delete("/items/{item_id}", response={204: None, 404: OrderErrorOut})
def delete_cart_item(request: HttpRequest, item_id: int):
    services.remove_cart_item(user=request.auth, item_id=item_id)
    return Status(204, None)


checkout_router = Router(tags=["checkout"], auth=jwt_auth)
orders_router = Router(tags=["orders"], auth=jwt_auth)


@checkout_router.get("/preview", response={200: CheckoutPreviewOut, 422: OrderErrorOut})
def checkout_preview(request: HttpRequest, query: Query[CheckoutQuery]):
    return selectors.checkout_preview(user=request.auth, user_coupon_id=query.user_coupon_id, points=query.points)


@orders_router.post("", response={201: OrderOut, 400: OrderErrorOut, 409: OrderErrorOut, 422: OrderErrorOut})
def place_order(
    request: HttpRequest,
    response: HttpResponse,
    payload: PlaceOrderIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
):
    placement = services.place_order(
        user=request.auth,
        idempotency_key=idempotency_key,
        pay_type=payload.pay_type,
        user_coupon_id=payload.user_coupon_id,
        points=payload.points,
    )
    request.log_order_no = placement.order.order_no
    if not placement.replayed:
        return Status(201, placement.order)
    response["Idempotent-Replayed"] = "true"
    return Status(201, selectors.get_user_order(user=request.auth, order_no=placement.order.order_no))


@orders_router.get("", response=list[OrderOut])
@decorate_view(in_one_snapshot)
@paginate(Pagination)
def list_orders(request: HttpRequest, filters: Query[OrderFilter]):
    return selectors.user_orders(user=request.auth, status=filters.status)


@orders_router.get("/{order_no}", response={200: OrderOut, 404: OrderErrorOut})
@decorate_view(in_one_snapshot)
def get_order(request: HttpRequest, order_no: OrderNo):
    return selectors.get_user_order(user=request.auth, order_no=order_no)


@orders_router.post("/{order_no}/cancel", response={200: OrderOut, 404: OrderErrorOut, 409: OrderErrorOut})
def cancel_order(request: HttpRequest, order_no: OrderNo):
    services.cancel_order(user=request.auth, order_no=order_no)
    return selectors.get_user_order(user=request.auth, order_no=order_no)


@orders_router.post(
    "/{order_no}/pay",
    response={200: PayOut, 404: OrderErrorOut, 409: OrderErrorOut, 422: OrderErrorOut, 503: OrderErrorOut},
)
def pay_order(request: HttpRequest, order_no: OrderNo, payload: PayIn | None = None):
    """Opens (or reuses) a payment attempt for the provider and channel asked for."""
    choice = payload or PayIn()
    return services.request_payment(
        user=request.auth,
        order_no=order_no,
        provider=choice.provider,
        channel=choice.channel,
        client_ip=client_ip(request),
    )


@orders_router.post(
    "/{order_no}/refunds",
    response={201: RefundOut, 400: OrderErrorOut, 404: OrderErrorOut, 409: OrderErrorOut, 422: OrderErrorOut},
)
def request_refund(
    request: HttpRequest,
    response: HttpResponse,
    order_no: OrderNo,
    payload: RefundRequestIn,
    idempotency_key: str | None = Header(
        None, alias="Idempotency-Key", description="optional: the same request sent again answers the same refund"
    ),
):
    """Asks for the money of some lines of a paid order back, within the refund window."""
    asked = services.request_refund(
        user=request.auth,
        order_no=order_no,
        order_line_ids=payload.order_line_ids,
        reason=payload.reason,
        idempotency_key=idempotency_key,
    )
    if asked.replayed:
        response["Idempotent-Replayed"] = "true"
    return Status(201, selectors.get_user_refund(user=request.auth, refund_id=asked.refund.pk))


me_router = Router(tags=["me"], auth=jwt_auth)


@me_router.get("/courses", response=list[OwnedCourseOut])
@paginate(Pagination)
def my_courses(request: HttpRequest):
    """The courses the buyer is enrolled in, newest first."""
    return selectors.owned_courses(user=request.auth)


payments_router = Router(tags=["payments"], auth=None)
JSON_BODY = {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}}
FORM_BODY = {
    "requestBody": {
        "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "additionalProperties": True}}}
    }
}


# A real notify is a few kilobytes; anyone can POST to these endpoints, and what they send is
# parsed and (summarised) stored, so a larger body is refused before that.
NOTIFY_MAX_BODY_BYTES = 16 * 1024


@payments_router.post("/alipay/notify", openapi_extra=FORM_BODY, response={200: str, 413: ErrorOut})
@decorate_view(limit_body(NOTIFY_MAX_BODY_BYTES))
def alipay_notify(request: HttpRequest):
    """Alipay's asynchronous notify. Answers exactly `success` once we hold the outcome, else
    `failure`, which makes Alipay send it again (for up to 25 hours)."""
    try:
        # .dict() keeps one value per field, decoded once (DESIGN.md "Alipay rules that bite").
        params = request.POST.dict()
        request.log_order_no = params.get("out_trade_no", "")[:32] or None
        settled = services.handle_alipay_notify(params=params, body=request.body, remote_addr=client_ip(request))
    except Exception:
        logger.exception("alipay notify failed")
        settled = False
    return HttpResponse("success" if settled else "failure", content_type="text/plain")


@payments_router.post(
    "/wechat/notify",
    openapi_extra=JSON_BODY,
    response={204: None, 400: WechatFailOut, 413: ErrorOut, 500: WechatFailOut},
)
@decorate_view(limit_body(NOTIFY_MAX_BODY_BYTES))
def wechat_notify(request: HttpRequest):
    """WeChat Pay's notify: signed headers over the raw body, its `resource` encrypted with our
    APIv3 key. 204 once we hold the outcome; otherwise `{"code": "FAIL", "message"}` and WeChat
    Pay sends it again."""
    try:
        answer = services.handle_wechat_notify(
            headers=request.headers, body=request.body, remote_addr=client_ip(request)
        )
    except Exception:
        logger.exception("wechat notify failed")
        return JsonResponse({"code": "FAIL", "message": "internal error"}, status=500)
    if answer.status == 204:
        return HttpResponse(status=204)
    return JsonResponse({"code": "FAIL", "message": answer.message}, status=answer.status)


@payments_router.get("/alipay/return", response={302: None})
def alipay_return(request: HttpRequest):
    """The buyer's browser coming back from the cashier: a hint, redirected to the order page."""
    try:
        location = services.handle_alipay_return(params=request.GET.dict())
    except Exception:
        logger.exception("alipay return failed")
        location = services.frontend_order_url(request.GET.get("out_trade_no", ""), outcome="error")
    return HttpResponseRedirect(location)

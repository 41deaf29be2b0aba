from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import paginate

from billing import selectors, services
from billing.schemas import BillingErrorOut, CouponOut, PointsOut, UserCouponFilter, UserCouponOut
from core.auth import jwt_auth
from core.schemas import Pagination

coupons_router = Router(tags=["coupons"], auth=jwt_auth)
me_router = Router(tags=["me"], auth=jwt_auth)


@coupons_router.get("", response=list[CouponOut])
@paginate(Pagination)
def list_claimable_coupons(request: HttpRequest):
    return selectors.claimable_coupons(user=request.auth)


@coupons_router.post(
    "/{coupon_id}/claim",
    response={201: UserCouponOut, 404: BillingErrorOut, 409: BillingErrorOut, 422: BillingErrorOut},
)
def claim_coupon(request: HttpRequest, coupon_id: int):
    return Status(201, services.claim_coupon(user=request.auth, coupon_id=coupon_id))


@me_router.get("/coupons", response=list[UserCouponOut])
@paginate(Pagination)
def my_coupons(request: HttpRequest, filters: Query[UserCouponFilter]):
    return selectors.user_coupons(user=request.auth, status=filters.status)


@me_router.get("/points", response=PointsOut)
def my_points(request: HttpRequest):
    user = request.auth
    return {"balance": selectors.points_balance(user=user), "entries": selectors.recent_points_entries(user=user)}

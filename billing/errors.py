from core.errors import ErrorCode


class BillingErrorCode(ErrorCode):
    COUPON_NOT_FOUND = ("coupon_not_found", 404)
    COUPON_SOLD_OUT = ("coupon_sold_out", 409)
    COUPON_ALREADY_CLAIMED = ("coupon_already_claimed", 409)
    COUPON_NOT_ACTIVE = ("coupon_not_active", 422)
    COUPON_INVALID = ("coupon_invalid", 422)
    INSUFFICIENT_POINTS = ("insufficient_points", 422)
    POINTS_EXCEED_LIMIT = ("points_exceed_limit", 422)

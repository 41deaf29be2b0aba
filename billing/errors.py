from core.errors import ErrorCode


class BillingErrorCode(ErrorCode):
    COUPON_NOT_FOUND = "coupon_not_found"
    COUPON_SOLD_OUT = "coupon_sold_out"
    COUPON_ALREADY_CLAIMED = "coupon_already_claimed"
    COUPON_NOT_ACTIVE = "coupon_not_active"
    COUPON_INVALID = "coupon_invalid"
    INSUFFICIENT_POINTS = "insufficient_points"
    POINTS_EXCEED_LIMIT = "points_exceed_limit"

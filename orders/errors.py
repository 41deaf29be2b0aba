from core.errors import ErrorCode


class OrderErrorCode(ErrorCode):
    CART_ITEM_NOT_FOUND = ("cart_item_not_found", 404)
    ALREADY_IN_CART = ("already_in_cart", 409)
    ALREADY_PURCHASED = ("already_purchased", 409)

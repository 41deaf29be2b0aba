"""Orders' business actions: the only code in this app that writes."""

from orders.services.cart import add_to_cart, remove_cart_item, set_cart_item_selected, set_cart_selection
from orders.services.checkout import Placement, place_order
from orders.services.settlement import cancel_order, lock_order, settle_paid_order

__all__ = [
    "Placement",
    "add_to_cart",
    "cancel_order",
    "lock_order",
    "place_order",
    "remove_cart_item",
    "set_cart_item_selected",
    "set_cart_selection",
    "settle_paid_order",
]

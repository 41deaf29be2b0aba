from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet

from core.models import User
from orders.models import ZERO, CartItem


@dataclass(frozen=True)
class Cart:
    items: list[CartItem]
    count: int
    selected_count: int
    selected_total: Decimal


def cart_items(*, user: User) -> QuerySet[CartItem]:
    return CartItem.objects.filter(user=user).select_related("course")


def get_cart(*, user: User) -> Cart:
    """One query whatever the cart's size; totals are summed here in Decimal.

    A course withdrawn from sale stays visible in the cart (so it can be removed) but does not
    count towards the selected total and cannot be checked out.
    """
    items = list(cart_items(user=user))
    purchasable = [item for item in items if item.selected and item.course.is_active]
    return Cart(
        items=items,
        count=len(items),
        selected_count=len(purchasable),
        selected_total=sum((item.course.price for item in purchasable), ZERO),
    )

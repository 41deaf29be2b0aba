from django.db import IntegrityError, transaction

from core.errors import DomainError
from core.models import Enrollment, User
from core.selectors import get_active_course
from orders.errors import OrderErrorCode
from orders.models import CartItem


def _get_cart_item(*, user: User, item_id: int) -> CartItem:
    # Filtering by user makes another user's item indistinguishable from a missing one (404).
    item = CartItem.objects.select_related("course").filter(pk=item_id, user=user).first()
    if item is None:
        raise DomainError(OrderErrorCode.CART_ITEM_NOT_FOUND, f"Cart item {item_id} does not exist.")
    return item


def add_to_cart(*, user: User, course_id: int) -> CartItem:
    course = get_active_course(course_id=course_id)
    if Enrollment.objects.filter(user=user, course=course).exists():
        raise DomainError(OrderErrorCode.ALREADY_PURCHASED, f"You already own {course.name!r}.")
    try:
        with transaction.atomic():
            return CartItem.objects.create(user=user, course=course)
    except IntegrityError as exc:  # the unique (user, course) constraint settles double clicks
        raise DomainError(OrderErrorCode.ALREADY_IN_CART, f"{course.name!r} is already in your cart.") from exc


def set_cart_item_selected(*, user: User, item_id: int, selected: bool) -> CartItem:
    item = _get_cart_item(user=user, item_id=item_id)
    if item.selected != selected:
        item.selected = selected
        item.save(update_fields=["selected"])
    return item


def set_cart_selection(*, user: User, selected: bool) -> int:
    return CartItem.objects.filter(user=user).update(selected=selected)


def remove_cart_item(*, user: User, item_id: int) -> None:
    deleted, _ = CartItem.objects.filter(pk=item_id, user=user).delete()
    if not deleted:
        raise DomainError(OrderErrorCode.CART_ITEM_NOT_FOUND, f"Cart item {item_id} does not exist.")

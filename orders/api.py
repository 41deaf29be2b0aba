from django.http import HttpRequest
from ninja import Router, Status

from core.auth import jwt_auth
from core.schemas import ErrorOut
from orders import selectors, services
from orders.schemas import AddCartItemIn, CartItemOut, CartOut, SelectionIn

cart_router = Router(tags=["cart"], auth=jwt_auth)


@cart_router.get("", response=CartOut)
def get_cart(request: HttpRequest):
    return selectors.get_cart(user=request.auth)


@cart_router.post("/items", response={201: CartItemOut, 404: ErrorOut, 409: ErrorOut})
def add_cart_item(request: HttpRequest, payload: AddCartItemIn):
    return Status(201, services.add_to_cart(user=request.auth, course_id=payload.course_id))


@cart_router.patch("/items/{item_id}", response={200: CartItemOut, 404: ErrorOut})
def update_cart_item(request: HttpRequest, item_id: int, payload: SelectionIn):
    return services.set_cart_item_selected(user=request.auth, item_id=item_id, selected=payload.selected)


@cart_router.put("/selection", response=CartOut)
def set_selection(request: HttpRequest, payload: SelectionIn):
    services.set_cart_selection(user=request.auth, selected=payload.selected)
    return selectors.get_cart(user=request.auth)


@cart_router.delete("/items/{item_id}", response={204: None, 404: ErrorOut})
def delete_cart_item(request: HttpRequest, item_id: int):
    services.remove_cart_item(user=request.auth, item_id=item_id)
    return Status(204, None)

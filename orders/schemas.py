from datetime import datetime

from ninja import Schema

from core.schemas import CourseOut, Money


class CartItemOut(Schema):
    id: int
    course: CourseOut
    selected: bool
    created_at: datetime


class CartOut(Schema):
    items: list[CartItemOut]
    count: int
    selected_count: int
    selected_total: Money


class AddCartItemIn(Schema):
    course_id: int


class SelectionIn(Schema):
    selected: bool

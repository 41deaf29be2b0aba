from django.contrib import admin

from orders.models import CartItem


@admin.register(CartItem)
class CartItemAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "course", "selected", "created_at"]
    list_select_related = ["user", "course"]
    search_fields = ["user__username", "course__name"]
    raw_id_fields = ["user", "course"]

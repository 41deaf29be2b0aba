from django.contrib import admin

from orders.models import CartItem, Order, OrderLine


@admin.register(CartItem)
class CartItemAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "course", "selected", "created_at"]
    list_select_related = ["user", "course"]
    search_fields = ["user__username", "course__name"]
    raw_id_fields = ["user", "course"]


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    fields = ["course", "name", "price"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["order_no", "user", "status", "pay_amount", "created_at", "expires_at", "paid_at", "cancelled_at"]
    list_filter = ["status", "pay_type"]
    list_select_related = ["user"]
    search_fields = ["order_no", "user__username", "trade_no"]
    # Amounts and states change only through the order services (locks, ledger, coupon state).
    readonly_fields = [f.name for f in Order._meta.fields]
    inlines = [OrderLineInline]

    def has_add_permission(self, request) -> bool:
        return False

from django.contrib import admin, messages

from core.admin import RecordAdmin
from core.errors import DomainError
from orders import services
from orders.models import CartItem, Order, OrderLine, PaymentAttempt
from orders.services.providers import ProviderError


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


class PaymentAttemptInline(admin.TabularInline):
    model = PaymentAttempt
    fields = ["out_trade_no", "provider", "channel", "amount", "status", "provider_trade_no", "created_at", "paid_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(RecordAdmin):
    list_display = ["order_no", "user", "status", "pay_amount", "created_at", "expires_at", "paid_at", "cancelled_at"]
    list_filter = ["status", "pay_type"]
    list_select_related = ["user"]
    search_fields = [
        "order_no",
        "user__username",
        "payment_attempts__out_trade_no",
        "payment_attempts__provider_trade_no",
    ]
    # Amounts and states change only through the order services (locks, ledger, coupon state).
    readonly_fields = [f.name for f in Order._meta.fields]
    inlines = [OrderLineInline, PaymentAttemptInline]
    actions = ["refund_through_provider"]

    @admin.action(description="Refund selected paid orders through the provider that was paid")
    def refund_through_provider(self, request, queryset) -> None:
        for order_no in queryset.values_list("order_no", flat=True):
            try:
                services.refund_paid_order(order_no=order_no)
            except (DomainError, ProviderError) as exc:
                self.message_user(request, f"{order_no}: {exc}", level=messages.ERROR)
            else:
                self.message_user(request, f"{order_no}: refunded", level=messages.SUCCESS)

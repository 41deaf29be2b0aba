from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from core.admin import RecordAdmin
from core.errors import DomainError
from orders import services
from orders.models import CartItem, Order, OrderLine, PaymentAttempt, Refund, RefundLine


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


class RefundInline(admin.TabularInline):
    model = Refund
    fields = ["request_no", "amount", "status", "reason", "decided_by", "failure_message", "created_at"]
    readonly_fields = fields
    show_change_link = True
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
    inlines = [OrderLineInline, PaymentAttemptInline, RefundInline]
    actions = ["refund_every_line"]

    @admin.action(description="Approve a refund of every line (not refunded yet) of the selected orders")
    def refund_every_line(self, request, queryset) -> None:
        for order_no in queryset.values_list("order_no", flat=True):
            try:
                refund = services.refund_every_line(order_no=order_no, operator=request.user)
            except DomainError as exc:
                self.message_user(request, f"{order_no}: {exc}", level=messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{order_no}: refund {refund.request_no} of {refund.amount} {refund.status}",
                    messages.SUCCESS,
                )


class RefundLineInline(admin.TabularInline):
    model = RefundLine
    fields = ["order_line", "amount", "points", "active"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class RejectionForm(forms.Form):
    reason = forms.CharField(max_length=200, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


@admin.register(Refund)
class RefundAdmin(RecordAdmin):
    """Buyers' refund requests and where each stands. Approve, reject (with a reason the buyer
    sees) or send again a refund the provider refused; the services do the rest."""

    list_display = [
        "request_no",
        "order",
        "status",
        "amount",
        "requested_by",
        "decided_by",
        "created_at",
        "completed_at",
        "failure_message",
    ]
    list_filter = ["status"]
    list_select_related = ["order", "requested_by", "decided_by"]
    search_fields = ["request_no", "order__order_no", "requested_by__username"]
    readonly_fields = [f.name for f in Refund._meta.fields]
    inlines = [RefundLineInline]
    actions = ["approve", "reject", "send_again"]

    @admin.action(description="Approve the selected refund requests")
    def approve(self, request, queryset) -> None:
        self._decide(request, queryset, lambda pk: services.approve_refund(refund_id=pk, decided_by=request.user))

    @admin.action(description="Reject the selected refund requests (asks for a reason)")
    def reject(self, request, queryset):
        form = RejectionForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": "Reject refunds",
                "refunds": queryset,
                "form": form,
                "opts": self.model._meta,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/orders/refund/reject.html", context)
        reason = form.cleaned_data["reason"]
        self._decide(
            request, queryset, lambda pk: services.reject_refund(refund_id=pk, decided_by=request.user, reason=reason)
        )
        return None

    @admin.action(description="Send the selected failed refunds again (same request id)")
    def send_again(self, request, queryset) -> None:
        self._decide(request, queryset, lambda pk: services.retry_refund(refund_id=pk, decided_by=request.user))

    def _decide(self, request, queryset, decide) -> None:
        for pk, request_no in queryset.values_list("pk", "request_no"):
            try:
                refund = decide(pk)
            except DomainError as exc:
                self.message_user(request, f"{request_no}: {exc}", level=messages.ERROR)
            else:
                self.message_user(request, f"{request_no}: {refund.status}", level=messages.SUCCESS)

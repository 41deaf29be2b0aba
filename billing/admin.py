from django import forms
from django.contrib import admin

from billing.models import Coupon, PaymentNotification, PointsAccount, PointsEntry, UserCoupon
from core.admin import RecordAdmin


class CouponForm(forms.ModelForm):
    class Meta:
        model = Coupon
        exclude = ["issued_count"]

    def clean_total_quantity(self) -> int:
        # issued_count is not on the form, so Django skips the coupon_not_oversold constraint
        # when it validates: check it here against the current count, read under the row lock
        # (the admin's change view is one transaction, so claims wait until the save is done).
        total = self.cleaned_data["total_quantity"]
        if self.instance.pk is not None:
            issued = Coupon.objects.select_for_update().values_list("issued_count", flat=True).get(pk=self.instance.pk)
            if total < issued:
                raise forms.ValidationError(f"{issued} are already claimed; the total cannot be lower.")
        return total


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    form = CouponForm
    list_display = [
        "id",
        "name",
        "kind",
        "threshold",
        "amount_off",
        "percent_off",
        "issued_count",
        "total_quantity",
        "starts_at",
        "ends_at",
    ]
    list_filter = ["kind"]
    search_fields = ["name"]
    # Stock moves only through claim_coupon's conditional UPDATE.
    readonly_fields = ["issued_count"]

    def save_model(self, request, obj: Coupon, form: CouponForm, change: bool) -> None:
        if change:
            # Never write back the issued_count read when the page loaded: claims made since
            # then would be lost, and the coupon could be oversold.
            obj.save(update_fields=[name for name in form.fields if name != "issued_count"])
        else:
            obj.save()


@admin.register(UserCoupon)
class UserCouponAdmin(RecordAdmin):
    list_display = ["id", "user", "name", "status", "order", "claimed_at"]
    list_filter = ["status"]
    list_select_related = ["user", "order"]
    search_fields = ["user__username", "name"]
    readonly_fields = [f.name for f in UserCoupon._meta.fields]


class PointsEntryInline(admin.TabularInline):
    model = PointsEntry
    fields = ["created_at", "delta", "balance_after", "reason", "order"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-id"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PointsAccount)
class PointsAccountAdmin(RecordAdmin):
    list_display = ["id", "user", "balance"]
    search_fields = ["user__username"]
    # The ledger is append-only and written by services; the admin only shows it.
    readonly_fields = ["user", "balance"]
    inlines = [PointsEntryInline]


@admin.register(PointsEntry)
class PointsEntryAdmin(RecordAdmin):
    list_display = ["id", "account", "delta", "balance_after", "reason", "order", "created_at"]
    list_filter = ["reason"]
    list_select_related = ["account__user", "order"]
    readonly_fields = [f.name for f in PointsEntry._meta.fields]


@admin.register(PaymentNotification)
class PaymentNotificationAdmin(RecordAdmin):
    list_display = ["id", "received_at", "out_trade_no", "trade_status", "total_amount", "verdict", "reason"]
    list_filter = ["verdict", "trade_status"]
    search_fields = ["out_trade_no", "trade_no", "notify_id"]
    readonly_fields = [f.name for f in PaymentNotification._meta.fields]

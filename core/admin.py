from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from core.models import Course, Enrollment, User

admin.site.register(User, UserAdmin)


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "price", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name"]


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "course", "order", "created_at"]
    list_select_related = ["user", "course", "order"]
    search_fields = ["user__username", "course__name"]
    raw_id_fields = ["user", "course", "order"]


class RecordAdmin(admin.ModelAdmin):
    """For records of money (orders, coupons users hold, balances and their ledger, payment
    notifications): shown, never added or deleted here. The services change them, under their
    locks, and keep the ledger whole; a deleted order would leave its coupon pointing nowhere."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q


class User(AbstractUser):
    """The buyer. Custom from the first migration so it can grow without a painful swap."""


class Course(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    picture_url = models.CharField(max_length=500, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=Q(price__gte=0), name="course_price_not_negative")]

    def __str__(self) -> str:
        return self.name


class Enrollment(models.Model):
    """A user's access to a course, created when the order that bought it is paid."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="enrollments")
    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="enrollments")
    # Points up to orders by name only: core must not import orders (DESIGN.md "Layout").
    order = models.ForeignKey("orders.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "course"], name="enrollment_unique_user_course")]

    def __str__(self) -> str:
        return f"{self.user} -> {self.course}"

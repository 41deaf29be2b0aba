import unicodedata
import uuid

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


def username_key(username: str) -> str:
    """The form two usernames must not share: NFKC, case-folded (`Ｐrobe`, `PROBE`, `probe` are
    one; so are `Straße` and `strasse`), and NFKC again, since folding can undo normalisation."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


class User(AbstractUser):
    """The buyer. Custom from the first migration so it can grow without a painful swap."""

    # Unique, so no two accounts look alike whatever wrote them (sign-up, admin, createsuperuser).
    username_key = models.TextField(unique=True, editable=False)
    # Every token carries the version it was issued under (core/auth.py); raising it ends every
    # session of the user at once.
    token_version = models.PositiveIntegerField(default=0, editable=False)

    def clean(self) -> None:
        super().clean()  # NFKC-normalises the username
        if not isinstance(self.username, str):  # a form already refused it
            return
        if User.lookalike_exists(self.username, other_than=self.pk):
            raise ValidationError({"username": "A user with a username that looks the same already exists."})

    @classmethod
    def lookalike_exists(cls, username: str, *, other_than: int | None = None, using: str = "default") -> bool:
        """Whether a user (other than `other_than`) has a username of the same username_key: the
        unique index's rule, asked before writing so that the answer is an error, not a crash."""
        return cls.objects.using(using).filter(username_key=username_key(username)).exclude(pk=other_than).exists()

    def set_unusable_password(self) -> None:
        super().set_unusable_password()
        self._password_made_unusable = True

    def save(self, *args, **kwargs) -> None:
        self.username_key = username_key(self.username)
        if kwargs.get("update_fields") is not None and "username" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "username_key"}
        # A password change (Django sets _password only in set_password, and clears it before the
        # re-hash it does on login), a password made unusable, or a save of a deactivated account
        # ends every session: the admin, `changepassword` and password forms all come through
        # here. Reactivating the account later does not bring the old tokens back.
        password_changed = self._password is not None or self.__dict__.pop("_password_made_unusable", False)
        if not self._state.adding and (password_changed or not self.is_active):
            self.token_version += 1
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "token_version"}
        super().save(*args, **kwargs)


class TokenFamily(models.Model):
    """One login's chain of refresh tokens (core/sessions.py). Each refresh retires the token it
    was given and makes its successor current; a retired token presented again means two parties
    hold the chain, so the family ends and neither can refresh."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="token_families")
    current_jti = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the current refresh token expires; after that the row is only history and goes.
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "token families"
        indexes = [models.Index(fields=["user", "expires_at"], name="token_family_user_expiry_idx")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.id}"


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

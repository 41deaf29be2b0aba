from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from core.errors import CoreErrorCode, DomainError
from core.models import User


def register_user(*, username: str, password: str) -> User:
    candidate = User(username=username)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise DomainError(
            CoreErrorCode.VALIDATION_ERROR,
            "The password is too weak.",
            details=[{"loc": ["body", "password"], "msg": msg, "type": "password_policy"} for msg in exc.messages],
        ) from exc
    if User.objects.filter(username__iexact=username).exists():
        raise DomainError(CoreErrorCode.USERNAME_TAKEN, f"The username {username!r} is taken.")
    try:
        with transaction.atomic():
            return User.objects.create_user(username=username, password=password)
    except IntegrityError as exc:  # lost a race for the same username
        raise DomainError(CoreErrorCode.USERNAME_TAKEN, f"The username {username!r} is taken.") from exc

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from core.errors import CoreErrorCode, DomainError
from core.models import User


def _invalid(field: str, message: str, exc: ValidationError, kind: str) -> DomainError:
    details = [{"loc": ["body", field], "msg": msg, "type": kind} for msg in exc.messages]
    return DomainError(CoreErrorCode.VALIDATION_ERROR, message, details=details)


def register_user(*, username: str, password: str) -> User:
    # Stored NFKC-normalised, as Django's create_user does; checked again in that form, since
    # NFKC can lengthen a name or turn one character into several.
    username = User.normalize_username(username)
    candidate = User(username=username)
    try:
        User._meta.get_field("username").clean(username, candidate)
    except ValidationError as exc:
        raise _invalid("username", "The username is not valid.", exc, "username_policy") from exc
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise _invalid("password", "The password is too weak.", exc, "password_policy") from exc
    taken = DomainError(CoreErrorCode.USERNAME_TAKEN, f"The username {username!r} is taken.")
    if User.lookalike_exists(username):
        raise taken
    try:
        with transaction.atomic():
            return User.objects.create_user(username=username, password=password)
    except IntegrityError as exc:  # lost a race for the same (or a lookalike) name: the unique index decided
        raise taken from exc

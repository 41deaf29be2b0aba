from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from core.auth import ACCESS, REFRESH, encode_token, user_from_token
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


def issue_token_pair(*, user: User) -> dict[str, object]:
    return {
        "access": encode_token(user=user, token_type=ACCESS),
        "refresh": encode_token(user=user, token_type=REFRESH),
        "token_type": "Bearer",
        "expires_in": settings.JWT_ACCESS_TTL_SECONDS,
    }


def obtain_token_pair(*, username: str, password: str) -> dict[str, object]:
    user = authenticate(username=username, password=password)
    if user is None:
        raise DomainError(CoreErrorCode.INVALID_CREDENTIALS, "Wrong username or password.")
    return issue_token_pair(user=user)


def refresh_token_pair(*, refresh: str) -> dict[str, object]:
    return issue_token_pair(user=user_from_token(token=refresh, token_type=REFRESH))

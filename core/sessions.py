"""Sessions: a token pair per login, refresh tokens that rotate and work once, log-out.

A login starts a token family (a `TokenFamily` row: its id and the `jti` of its one current
refresh token). A refresh presents the current token and gets a new pair; the token it presented
is retired. A retired token presented again was copied (stolen, or replayed by a confused
client): the family ends, so neither holder can refresh, and the answer is 401 `invalid_token`.
Access tokens stay stateless for their 15 minutes; a password change or deactivation raises the
user's `token_version` (core/models.py), which ends every access and refresh token at once.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.utils import timezone

from core.auth import ACCESS, REFRESH, decode_token, encode_token, new_jti, user_for_claims, user_id_claim
from core.errors import CoreErrorCode, DomainError
from core.models import TokenFamily, User


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int
    token_type: str = "Bearer"


def _pair(*, user: User, family_id: uuid.UUID, jti: str) -> TokenPair:
    return TokenPair(
        access=encode_token(user=user, token_type=ACCESS),
        refresh=encode_token(user=user, token_type=REFRESH, family_id=family_id.hex, jti=jti),
        expires_in=settings.JWT_ACCESS_TTL_SECONDS,
    )


def _refresh_expiry():
    return timezone.now() + timedelta(seconds=settings.JWT_REFRESH_TTL_SECONDS)


def start_session(*, user: User) -> TokenPair:
    # The user's sessions whose last refresh token has expired are history: drop them here, where
    # the table grows, rather than in a job of their own.
    TokenFamily.objects.filter(user=user, expires_at__lt=timezone.now()).delete()
    jti = new_jti()
    family = TokenFamily.objects.create(user=user, current_jti=jti, expires_at=_refresh_expiry())
    return _pair(user=user, family_id=family.id, jti=jti)


def log_in(*, username: str, password: str) -> TokenPair:
    user = authenticate(username=username, password=password)
    if user is None:
        raise DomainError(CoreErrorCode.INVALID_CREDENTIALS, "Wrong username or password.")
    return start_session(user=user)


def _family_id(claims: dict[str, Any]) -> uuid.UUID:
    try:
        return uuid.UUID(hex=claims["fam"])
    except (TypeError, ValueError, AttributeError) as exc:
        raise DomainError(CoreErrorCode.INVALID_TOKEN, "The token is invalid.") from exc


def rotate_session(*, refresh: str) -> TokenPair:
    claims = decode_token(token=refresh, token_type=REFRESH)
    user = user_for_claims(claims)
    family_id = _family_id(claims)
    live = TokenFamily.objects.filter(pk=family_id, user=user, revoked_at__isnull=True)
    successor = new_jti()
    # One conditional UPDATE: of two requests presenting the same token, exactly one moves the
    # family on; the other finds the token retired.
    if live.filter(current_jti=claims["jti"]).update(current_jti=successor, expires_at=_refresh_expiry()):
        return _pair(user=user, family_id=family_id, jti=successor)
    if live.update(revoked_at=timezone.now()):
        raise DomainError(
            CoreErrorCode.INVALID_TOKEN, "This refresh token was already used, so its session has ended; log in again."
        )
    raise DomainError(CoreErrorCode.INVALID_TOKEN, "This session has ended; log in again.")


def end_session(*, refresh: str) -> None:
    """Log-out: ends the family of a genuine refresh token (already ended is fine)."""
    claims = decode_token(token=refresh, token_type=REFRESH)
    family_id, user_id = _family_id(claims), user_id_claim(claims)
    if user_id is None:
        raise DomainError(CoreErrorCode.INVALID_TOKEN, "The token is invalid.")
    TokenFamily.objects.filter(pk=family_id, user_id=user_id, revoked_at__isnull=True).update(revoked_at=timezone.now())

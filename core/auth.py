"""JWT bearer auth (PyJWT, HS256 with SECRET_KEY).

Access tokens live 15 minutes, refresh tokens 7 days; the `type` claim keeps one from being
used as the other. Every token carries its user's `token_version` (`ver`), so raising it ends
every session; a refresh token also names its family (`fam`, core/sessions.py). The user comes
from the token only, never from the query or the body.
"""

import time
import uuid
from typing import Any

import jwt
from django.conf import settings
from django.db import connection
from django.http import HttpRequest
from ninja.security import HttpBearer

from core.db import MAX_ROW_ID, field_names, prepared_cursor
from core.errors import CoreErrorCode, DomainError
from core.models import User

ALGORITHM = "HS256"
ACCESS = "access"
REFRESH = "refresh"
REQUIRED_CLAIMS = {
    ACCESS: ["exp", "iat", "sub", "type", "ver"],
    REFRESH: ["exp", "iat", "sub", "type", "ver", "fam", "jti"],
}


def new_jti() -> str:
    return uuid.uuid4().hex


def encode_token(*, user: User, token_type: str, family_id: str | None = None, jti: str | None = None) -> str:
    ttl = settings.JWT_ACCESS_TTL_SECONDS if token_type == ACCESS else settings.JWT_REFRESH_TTL_SECONDS
    now = int(time.time())
    claims = {
        "sub": str(user.pk),
        "type": token_type,
        "iat": now,
        "exp": now + ttl,
        "jti": jti or new_jti(),
        "ver": user.token_version,
    }
    if family_id is not None:
        claims["fam"] = family_id
    return jwt.encode(claims, settings.SECRET_KEY, algorithm=ALGORITHM)


def decode_token(*, token: str, token_type: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(
            token,
            settings.SECRET_KEY,
            algorithms=[ALGORITHM],
            options={"require": REQUIRED_CLAIMS.get(token_type, REQUIRED_CLAIMS[ACCESS])},
        )
    except jwt.ExpiredSignatureError as exc:
        raise DomainError(CoreErrorCode.INVALID_TOKEN, "The token has expired.") from exc
    except jwt.PyJWTError as exc:
        raise DomainError(CoreErrorCode.INVALID_TOKEN, "The token is invalid.") from exc
    if claims.get("type") != token_type:
        raise DomainError(CoreErrorCode.INVALID_TOKEN, f"This is not an {token_type} token.")
    return claims


# Every authenticated request reads its user: one plain query, no queryset to build and compile.
USER_FIELDS = field_names(User)
CURRENT_USER = "SELECT {} FROM {} WHERE id = %s AND is_active AND token_version = %s".format(
    ", ".join(f'"{name}"' for name in USER_FIELDS), User._meta.db_table
)


def current_user(user_id: int, token_version: int) -> User | None:
    """The user, if still active and still on the token version the token was issued under."""
    if user_id > MAX_ROW_ID or not 0 <= token_version <= 2**31 - 1:
        return None
    with prepared_cursor() as cursor:
        cursor.execute(CURRENT_USER, [user_id, token_version])
        row = cursor.fetchone()
    return User.from_db(connection.alias, USER_FIELDS, row) if row else None


def user_id_claim(claims: dict[str, Any]) -> int | None:
    sub = claims["sub"]
    return int(sub) if isinstance(sub, str) and sub.isascii() and sub.isdigit() else None


def user_for_claims(claims: dict[str, Any]) -> User:
    user_id, version = user_id_claim(claims), claims["ver"]
    is_int = isinstance(version, int) and not isinstance(version, bool)
    user = current_user(user_id, version) if user_id is not None and is_int else None
    if user is None:
        raise DomainError(CoreErrorCode.INVALID_TOKEN, "The session has ended (or its user no longer exists).")
    return user


def user_from_token(*, token: str, token_type: str) -> User:
    return user_for_claims(decode_token(token=token, token_type=token_type))


class JWTAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User:
        user = user_from_token(token=token, token_type=ACCESS)
        request.user = user
        return user


jwt_auth = JWTAuth()

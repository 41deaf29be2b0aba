"""JWT bearer auth (PyJWT, HS256 with SECRET_KEY).

Access tokens live 15 minutes, refresh tokens 7 days; the `type` claim keeps one from being
used as the other. The user comes from the token only, never from the query or the body.
"""

import time
import uuid
from typing import Any

import jwt
from django.conf import settings
from django.db import connection
from django.http import HttpRequest
from ninja.security import HttpBearer

from core.db import field_names
from core.errors import CoreErrorCode, DomainError
from core.models import User

ALGORITHM = "HS256"
ACCESS = "access"
REFRESH = "refresh"


def encode_token(*, user: User, token_type: str) -> str:
    ttl = settings.JWT_ACCESS_TTL_SECONDS if token_type == ACCESS else settings.JWT_REFRESH_TTL_SECONDS
    now = int(time.time())
    claims = {"sub": str(user.pk), "type": token_type, "iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, settings.SECRET_KEY, algorithm=ALGORITHM)


def decode_token(*, token: str, token_type: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(
            token,
            settings.SECRET_KEY,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "sub", "type"]},
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
ACTIVE_USER = "SELECT {} FROM {} WHERE id = %s AND is_active".format(
    ", ".join(f'"{name}"' for name in USER_FIELDS), User._meta.db_table
)


def active_user(user_id: int) -> User | None:
    if user_id > 2**63 - 1:
        return None
    with connection.cursor() as cursor:
        cursor.execute(ACTIVE_USER, [user_id])
        row = cursor.fetchone()
    return User.from_db(connection.alias, USER_FIELDS, row) if row else None


def user_from_token(*, token: str, token_type: str) -> User:
    claims = decode_token(token=token, token_type=token_type)
    sub = claims["sub"]
    user = active_user(int(sub)) if isinstance(sub, str) and sub.isascii() and sub.isdigit() else None
    if user is None:
        raise DomainError(CoreErrorCode.INVALID_TOKEN, "The token's user no longer exists.")
    return user


class JWTAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User:
        user = user_from_token(token=token, token_type=ACCESS)
        request.user = user
        return user


jwt_auth = JWTAuth()

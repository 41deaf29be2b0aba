from django.conf import settings
from django.db import connection

from core.errors import CoreErrorCode, DomainError


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        return False


def _database_kind() -> str:
    # Which Postgres, so a newcomer (and the test of the embedded default) can see what `make run` runs on.
    return "embedded_postgres" if settings.EMBEDDED_DATABASE else "postgres"


def _broker_state() -> str:
    if not settings.REDIS_URL:
        return "embedded"
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        return "ok" if client.ping() else "down"
    except Exception:
        return "down"


def check_health() -> dict[str, str]:
    """The database must answer; the broker too when one is configured (REDIS_URL)."""
    database = "ok" if _database_ok() else "down"
    broker = _broker_state()
    if database != "ok" or broker == "down":
        raise DomainError(
            CoreErrorCode.SERVICE_UNAVAILABLE,
            "A backing service is unreachable.",
            details={"database": database, "broker": broker},
        )
    return {"status": "ok", "database": database, "database_kind": _database_kind(), "broker": broker}

"""The few hot paths that skip the ORM (the JWT user look-up, the checkout transaction) run
hand-written SQL on Postgres only; elsewhere (SQLite, the embedded default) they go through the
ORM, which also converts SQLite's text dates and numbers."""

from django.db import IntegrityError, connection
from django.db.models import Model

PLAIN_SQL_VENDORS = {"postgresql"}


def uses_plain_sql() -> bool:
    return connection.vendor in PLAIN_SQL_VENDORS


def field_names(model: type[Model]) -> list[str]:
    """The model's columns in field order: what a hand-written SELECT lists and what
    `model.from_db` takes back, so the two cannot drift apart."""
    return [field.attname for field in model._meta.concrete_fields]


def broke_constraint(exc: IntegrityError, *, name: str, sqlite_hint: str) -> bool:
    """Whether `exc` is the named constraint failing. Postgres names it; SQLite only says which
    columns a UNIQUE failure was on, so `sqlite_hint` (e.g. "billing_usercoupon.user_id") is
    looked for in its message instead."""
    diag = getattr(exc.__cause__, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    return constraint == name if constraint is not None else sqlite_hint in str(exc)

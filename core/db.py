"""The few hot paths that skip the ORM (the JWT user look-up, the checkout transaction) run
hand-written SQL on Postgres only; elsewhere (SQLite, the embedded default) they go through the
ORM, which also converts SQLite's text dates and numbers."""

from django.db import connection
from django.db.models import Model

PLAIN_SQL_VENDORS = {"postgresql"}


def uses_plain_sql() -> bool:
    return connection.vendor in PLAIN_SQL_VENDORS


def field_names(model: type[Model]) -> list[str]:
    """The model's columns in field order: what a hand-written SELECT lists and what
    `model.from_db` takes back, so the two cannot drift apart."""
    return [field.attname for field in model._meta.concrete_fields]

"""Helpers for the few hot paths that skip the ORM (the JWT user look-up, the checkout
transaction) and for telling constraint failures apart."""

from django.db import IntegrityError
from django.db.models import Model


def field_names(model: type[Model]) -> list[str]:
    """The model's columns in field order: what a hand-written SELECT lists and what
    `model.from_db` takes back, so the two cannot drift apart."""
    return [field.attname for field in model._meta.concrete_fields]


def broke_constraint(exc: IntegrityError, *, name: str) -> bool:
    """Whether `exc` is the named constraint failing (Postgres names it in the error's diagnostics)."""
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == name

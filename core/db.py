"""Helpers for the few hot paths that skip the ORM (the JWT user look-up, the checkout
transaction) and for telling constraint failures apart."""

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Model

# The largest id a bigint primary key can hold: a larger one names no row (and Postgres would
# refuse it as a parameter of hand-written SQL instead of finding nothing).
MAX_ROW_ID = 2**63 - 1


def field_names(model: type[Model]) -> list[str]:
    """The model's columns in field order: what a hand-written SELECT lists and what
    `model.from_db` takes back, so the two cannot drift apart."""
    return [field.attname for field in model._meta.concrete_fields]


def prepared_cursor() -> CursorWrapper:
    """A cursor for a hot statement run again and again: Postgres keeps its plan
    (core/postgresql/base.py)."""
    return connection.prepared_cursor()


def json_datetime(column: str) -> str:
    """SQL for a timestamptz column as the API's JSON renders a datetime (Django's JSON encoder,
    which Ninja's renderer uses): UTC with a "Z", milliseconds cut (not rounded) from the
    microseconds, none when the second is whole. For hand-written reads answered without the
    schema (core/responses.py); their tests hold them to the schema's rendering."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    whole = f"date_trunc('second', {column}) = {column}"
    fraction = f"CASE WHEN {whole} THEN '' ELSE to_char({utc}, '.MS') END"
    return f"""to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS') || {fraction} || 'Z'"""


def broke_constraint(exc: IntegrityError, *, name: str) -> bool:
    """Whether `exc` is the named constraint failing (Postgres names it in the error's diagnostics)."""
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == name


def alone_or_in_savepoint() -> AbstractContextManager[object]:
    """For one statement that may fail on a constraint: in autocommit it is its own transaction
    (no BEGIN / COMMIT round trips); inside a caller's transaction it runs in a savepoint, so its
    failure does not abort the caller's work."""
    return transaction.atomic() if connection.in_atomic_block else nullcontext()


def in_one_snapshot(view: Callable[..., Any]) -> Callable[..., Any]:
    """Runs a read-only view in one REPEATABLE READ snapshot: a read of several queries (an order,
    then its lines, attempts and refunds) sees the rows as one transaction left them, never an
    order from before a refund's commit beside the refund from after it. Two round trips more
    (the SET inside BEGIN ... COMMIT). For `@decorate_view`, so the response is rendered inside.
    Called inside a transaction already (a test's), it reads in that one."""

    @functools.wraps(view)
    def in_snapshot(*args: Any, **kwargs: Any) -> Any:
        if connection.in_atomic_block:
            return view(*args, **kwargs)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return view(*args, **kwargs)

    return in_snapshot

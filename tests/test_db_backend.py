"""The database backend (core/postgresql): the kept connection's health check (a connection the
server ended is replaced before the request uses it, a healthy one is kept without a query sent on
it) and the prepared cursor of the hot statements."""

import select

import psycopg
import pytest
from django.db import NotSupportedError, close_old_connections, connection, transaction

from core.auth import current_user
from core.db import prepared_cursor
from tests.conftest import ApiClient
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def other_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


def next_request_query() -> None:
    """What a request does with the kept connection: Django's request_started handler, then a query
    (the health check runs at its first cursor)."""
    close_old_connections()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 + 1")


@pytest.fixture
def kept_connection():
    """The test's connection as a request's kept one (CONN_MAX_AGE > 0, health checks on)."""
    before = {name: connection.settings_dict[name] for name in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS")}
    connection.close()
    connection.settings_dict.update(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True)
    connection.ensure_connection()
    yield connection
    connection.close()
    connection.settings_dict.update(before)


def test_a_connection_the_server_ended_is_replaced_before_the_next_request_uses_it(kept_connection):
    pid = backend_pid()
    with other_connection() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    # The server's goodbye reaches the socket.
    poller = select.poll()
    poller.register(kept_connection.connection.pgconn.socket, select.POLLIN)
    assert poller.poll(5000)

    next_request_query()  # no error: a new connection

    assert backend_pid() != pid


def test_a_healthy_kept_connection_is_kept_and_checked_without_a_query(kept_connection):
    pid = backend_pid()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'the last query of the request before'")
    close_old_connections()
    connection.ensure_connection()
    connection.close_if_health_check_failed()  # what the next request's first cursor does

    with other_connection() as admin:
        last_query = admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0]
    # Django's own check sends SELECT 1 here, a round trip on every request.
    assert last_query == "SELECT 'the last query of the request before'"
    assert connection.health_check_done
    assert backend_pid() == pid


def test_a_connection_left_in_a_transaction_is_not_kept(kept_connection):
    pid = backend_pid()
    kept_connection.connection.execute("BEGIN")

    assert not kept_connection.is_usable()
    kept_connection.connection.execute("ROLLBACK")
    assert kept_connection.is_usable()
    assert backend_pid() == pid


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_hot_statement_is_prepared_on_its_first_run_on_a_connection():
    user = UserFactory()
    assert current_user(user.pk, user.token_version) == user

    assert [s for s in prepared_statements() if "FROM core_user WHERE id = $1" in s]


def test_djangos_own_cursor_prepares_nothing():
    for _ in range(6):
        with connection.cursor() as cursor:
            cursor.execute("SELECT %s + 1 AS through_django", [1])
        with prepared_cursor() as cursor:
            cursor.execute("SELECT %s + 1 AS prepared", [1])
            assert cursor.fetchone() == (2,)

    statements = prepared_statements()
    assert not [s for s in statements if "through_django" in s]
    assert [s for s in statements if "AS prepared" in s]


@pytest.fixture
def user_column_widened_elsewhere():
    """What a deploy's migration does from another process while the web workers keep their
    connections: a column the token's user read returns changes type."""

    def widen() -> None:
        with other_connection() as admin:
            admin.execute("ALTER TABLE core_user ALTER COLUMN first_name TYPE varchar(151)")

    yield widen
    connection.close()
    with other_connection() as admin:
        admin.execute("ALTER TABLE core_user ALTER COLUMN first_name TYPE varchar(150)")


def test_a_migration_elsewhere_does_not_break_the_prepared_statements(user_column_widened_elsewhere):
    api = ApiClient(UserFactory())
    assert api.get("/cart").status_code == 200  # the token's user read, prepared

    user_column_widened_elsewhere()

    # Postgres refuses the old plan ("cached plan must not change result type"): replanned.
    assert [api.get("/cart").status_code for _ in range(3)] == [200, 200, 200]


def test_inside_a_transaction_the_refused_plan_is_dropped_by_the_rollback(user_column_widened_elsewhere):
    user = UserFactory()
    assert current_user(user.pk, user.token_version) == user
    user_column_widened_elsewhere()

    with pytest.raises(NotSupportedError), transaction.atomic():
        current_user(user.pk, user.token_version)

    assert current_user(user.pk, user.token_version) == user

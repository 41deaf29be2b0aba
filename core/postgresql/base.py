"""Django's PostgreSQL backend with a health check that costs no round trip, and a cursor that
lets Postgres keep the plans of the hot paths' statements.

With CONN_HEALTH_CHECKS, Django checks a kept connection at the first query of every request by
sending `SELECT 1`: one more round trip on every request, as much as the hot paths' own statements
cost (BENCHMARKS.md, issue 19). Between requests a connection is idle and the server sends nothing
on it, unless it is ending it: a restart, pg_terminate_backend or a crash leaves an error message
or the end of the stream in the socket. So the socket having anything to read (or the connection
known broken, or in a transaction no atomic block opened) is what makes it unusable here; Django
then closes it and the request opens a new one, as with its own check. A connection cut without
a word from the server (a silent network drop) is no better caught by `SELECT 1`, which would
wait on it too.
"""

import select
from typing import Any

from django.db.backends.postgresql import base, operations
from django.db.backends.utils import CursorWrapper
from psycopg import errors, pq


class PreparingCursor(base.ServerBindingCursor):
    """Binds the parameters on the server, so psycopg prepares the statement (at its first run on
    a connection: `prepare_threshold` 0). A migration that changes a column a prepared statement
    returns makes Postgres refuse the statement on every connection that prepared it ("cached plan
    must not change result type"): outside a transaction, the plans are dropped and the statement
    sent again; inside one, the error stands, and the rollback that follows drops them (psycopg
    sends DEALLOCATE ALL after a ROLLBACK)."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        try:
            return super().execute(query, params, **kwargs)
        except errors.FeatureNotSupported as exc:
            if exc.diag.message_primary != "cached plan must not change result type":
                raise
            if self.connection.info.transaction_status != pq.TransactionStatus.IDLE:
                raise
            self.connection.execute("DEALLOCATE ALL")  # on the server, and psycopg forgets its names
            return super().execute(query, params, **kwargs)


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor: Any, sql: str, params: Any) -> str | None:
        # A prepared statement leaves psycopg no query text to show (DEBUG's query log, the
        # tests' CaptureQueriesContext): spelled out here as Django does for server-side binding.
        if isinstance(cursor, PreparingCursor):
            return self.compose_sql(sql, params)
        return super().last_executed_query(cursor, sql, params)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations

    def prepared_cursor(self) -> CursorWrapper:
        """Django's cursor (health check, error wrapping, query logging) over a PreparingCursor, for
        the hot paths' hand-written statements: Postgres neither parses nor plans them again on a
        connection (pgbench: the coupon claim alone, +27-30% transactions/s). One statement per
        execute (the extended protocol takes no more), so the checkout's multi-statement SQL stays
        on Django's client-side cursor, which never prepares."""
        self.close_if_health_check_failed()
        self.ensure_connection()
        with self.wrap_database_errors:
            return self._prepare_cursor(PreparingCursor(self.connection))

    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        pgconn = connection.pgconn
        if pgconn.status != pq.ConnStatus.OK:
            return False
        # A transaction open outside any atomic block was left behind by an earlier request.
        if pgconn.transaction_status != pq.TransactionStatus.IDLE and not self.in_atomic_block:
            return False
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN)
        return not poller.poll(0)

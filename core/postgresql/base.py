"""Django's PostgreSQL backend with a health check that costs no round trip, and a cursor that
lets Postgres keep the plans of the hot paths' statements.

With CONN_HEALTH_CHECKS, Django checks a kept connection at the first query of every request by
sending `SELECT 1`: one more round trip on every request, as much as the hot paths' own statements
cost (BENCHMARKS.md, issue 19). Between requests a connection is idle and the server sends nothing
on it, unless it is ending it: a restart, pg_terminate_backend or a crash leaves an error message
or the end of the stream in the socket. So the socket having anything to read (or the connection
known broken, or in a transaction no atomic block opened) is what makes it unusable here; Django
then closes it and the request opens a new one, as with its own check. A connection cut without a word from the server
(a silent network drop) is no better caught by `SELECT 1`, which would wait on it too.
"""

import select

from django.db.backends.postgresql import base
from django.db.backends.utils import CursorWrapper
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def prepared_cursor(self) -> CursorWrapper:
        """Django's cursor (health check, error wrapping, query logging) over one that binds the
        parameters on the server, for the hot paths' hand-written statements: psycopg prepares a
        statement at its `prepare_threshold`-th run on a connection (5), and from then on Postgres
        neither parses nor plans it (pgbench: the coupon claim alone, +27-30% transactions/s).
        One statement per execute (the extended protocol takes no more), so the checkout's
        multi-statement SQL stays on Django's client-side cursor."""
        self.close_if_health_check_failed()
        self.ensure_connection()
        with self.wrap_database_errors:
            return self._prepare_cursor(base.ServerBindingCursor(self.connection))

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

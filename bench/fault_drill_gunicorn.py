"""gunicorn settings for the API server of the fault drill (bench/drill/stack.py, `--config`).

Each worker names its Postgres sessions after its pid (libpq reads PGAPPNAME when a connection
opens, after the fork), so the drill's `web` fault can tell from pg_stat_activity which worker is
inside a checkout transaction. The drill's Postgres listens on a Unix socket only, where
`client_port` names nobody.
"""

import os


def post_fork(server, worker) -> None:
    os.environ["PGAPPNAME"] = f"drill-web-{os.getpid()}"

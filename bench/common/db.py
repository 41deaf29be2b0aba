"""Postgres through psql: which server (the shared one on 127.0.0.1:5432, or the fault drill's
own), database URLs, creating and dropping the throw-away databases."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Protocol

from .log import log

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("BENCH_PG_PORT", "5432")
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")

# Databases a benchmark must never drop.
PROTECTED_DBS = {"postgres", "test", "test_test", "template0", "template1"}


class PostgresServer(Protocol):
    """A server the runs reach with psql: where its client programs are, and each database's URL."""

    bin_dir: Path | None  # None: psql and pgbench from PATH (postgresql-client)

    def url(self, db: str) -> str: ...


class SharedPostgres:
    """The Postgres the benchmarks use (BENCH_PG_HOST/PORT/USER; default postgres@127.0.0.1:5432)."""

    bin_dir = None

    def url(self, db: str) -> str:
        return f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{db}"


_server: PostgresServer = SharedPostgres()


def use_server(server: PostgresServer) -> None:
    """Every later psql, database_url and (re)created database is on `server` (the drill's own)."""
    global _server
    _server = server


def pg_env() -> dict[str, str]:
    """The environment of client programs given a bare database name (pgbench, the activity
    sampler's psql): the shared server's host, port and user."""
    env = dict(os.environ)
    env.pop("PGDATABASE", None)
    env.update(PGHOST=PG_HOST, PGPORT=PG_PORT, PGUSER=PG_USER)
    return env


def database_url(db: str) -> str:
    return _server.url(db)


def psql(db: str, sql: str, *, quiet: bool = True) -> str:
    program = str(_server.bin_dir / "psql") if _server.bin_dir else "psql"
    cmd = [program, "-X", "-v", "ON_ERROR_STOP=1", "-d", database_url(db), "-At"]
    if quiet:
        cmd.append("-q")
    out = subprocess.run(cmd, input=sql, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"psql failed ({out.returncode}):\n{out.stderr}\n--- SQL ---\n{sql[:2000]}")
    return out.stdout.strip()


def recreate_database(db: str) -> None:
    drop_database(db)
    psql("postgres", f"CREATE DATABASE {db};")


def drop_database(db: str) -> None:
    # What `dropdb --if-exists --force` sends.
    assert db not in PROTECTED_DBS, db
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE);")


def keep_or_drop(args: argparse.Namespace, tmp: str) -> None:
    """End of a run: the database kept (`--keep`) or dropped, the temporary folder removed."""
    if args.keep:
        log(f"kept database {args.db} ({database_url(args.db)})")
    else:
        drop_database(args.db)
    shutil.rmtree(tmp, ignore_errors=True)


def check_tools(*tools: str) -> bool:
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        log(f"not found: {', '.join(missing)} (apt-get install postgresql-client)")
    return not missing


def check_db_name(p: argparse.ArgumentParser, db: str) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", db) or db in PROTECTED_DBS:
        p.error("--db must be a plain lower-case name of a throw-away database")


def warn_other_db_activity(db: str) -> None:
    """Says when backends of other databases are doing something right now (other people's test
    runs skew figures)."""
    out = psql(
        "postgres",
        f"SELECT count(*) FROM pg_stat_activity WHERE datname IS NOT NULL AND datname <> '{db}' "
        "AND state = 'active' AND pid <> pg_backend_pid();",
    )
    busy = int(out or 0)
    if busy:
        log(f"WARNING: {busy} active backends in other databases: figures may be skewed")

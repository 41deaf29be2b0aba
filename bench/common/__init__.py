"""Helpers shared by the benchmarks in bench/ (each `*_bench.py` is a standalone script) and the
fault drill (bench/drill/), each written once:

- `log`: the `[bench HH:MM:SS]` (or `[drill ...]`) lines on stderr;
- `procfs`: /proc reads (a file, a process's stat line, its children, the machine's CPU ticks);
- `db`: which Postgres (the shared one, or the drill's own), psql, database URL, recreate/drop;
- `app`: the app's environment, migrate, Django snippets, tokens, the dev gateways' keys;
- `server`: free ports, health, starting gunicorn and other app processes, stopping them;
- `redis_cli`: one `redis-cli` command;
- `load`: the closed-loop HTTP load generator (forked http.client processes), users handed out once;
- `cpu`: CPU accounting from /proc, waiting for an idle machine, re-measuring disturbed levels,
  pg_stat_activity sampling;
- `pgbench`: the SQL-only baseline;
- `cli`: the flags every benchmark takes;
- `summary`: number formats, the machine's description, the rows `bench/report.py` turns into the
  one combined table `make bench` prints.

The scripts run by path (`python bench/cart_bench.py`), so bench/ is on sys.path and this package
imports as `common`. Stdlib only; loopback only.
"""

"""Processes: the app server (gunicorn) and other long-running app processes, each started in a
session of its own so that stopping (or killing) it reaches only what we started."""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from .log import log
from .procfs import read


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 2.0,
) -> tuple[int, bytes]:
    """One request on a connection of its own (set-up and checks, not the timed load): status, body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    return http_request(port, "GET", path, timeout=timeout)


def health(port: int, timeout: float = 3.0) -> int | None:
    """The status of GET /api/v1/health, or None when nothing answers."""
    try:
        return http_get(port, "/api/v1/health", timeout)[0]
    except (OSError, http.client.HTTPException):
        return None


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Polls `predicate` until it holds (True) or `timeout` s have passed (its last answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# The API server's layout, as `make run` starts it with Redis (Makefile WEB_WORKERS): sync workers,
# two per core. Checkout A/B runs picked it (BENCHMARKS.md "Checkout"): each worker serves one
# request at a time, so requests wait their turn in the listen queue instead of time-slicing
# inside a worker, which keeps the tail short.
DEFAULT_WORKERS = 2 * (os.cpu_count() or 1)


def add_server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help=f"gunicorn workers (default {DEFAULT_WORKERS})")
    p.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker (default 1)")
    p.add_argument("--worker-class", default="sync", help="gunicorn worker class (default sync, as make run)")
    p.add_argument(
        "--access-log",
        action="store_true",
        help="also gunicorn's access log (make run has none: the app's JSON request log covers it)",
    )


def server_layout(args: argparse.Namespace) -> str:
    return f"gunicorn {args.worker_class} {args.workers} workers x {args.threads} threads"


def start_api_server(args: argparse.Namespace, env: dict[str, str], *, port: int):
    """start_server with the layout add_server_args parsed (and the common --python, --app-dir)."""
    return start_server(
        args.python,
        env,
        app_dir=args.app_dir,
        port=port,
        workers=args.workers,
        threads=args.threads,
        worker_class=args.worker_class,
        access_log=args.access_log,
    )


def gunicorn_command(
    python: str, *, port: int, workers: int, threads: int, worker_class: str = "sync", options: list[str] | None = None
) -> list[str]:
    """gunicorn core.wsgi:application as `make run` starts it, in the layout given; `options`
    are more of gunicorn's flags (the drill's worker timeouts and config)."""
    return [
        python,
        "-m",
        "gunicorn",
        "core.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--worker-class",
        worker_class,
        "--keep-alive",
        "30",
        "--backlog",
        "512",
        "--log-level",
        "warning",
        *(options or []),
    ]


def start_server(
    python: str,
    env: dict[str, str],
    *,
    app_dir: Path,
    port: int,
    workers: int,
    threads: int,
    worker_class: str = "sync",
    access_log: bool = False,
):
    """gunicorn (gunicorn_command) in a session of its own; returns once /api/v1/health answers 200."""
    cmd = gunicorn_command(
        python,
        port=port,
        workers=workers,
        threads=threads,
        worker_class=worker_class,
        options=["--access-logfile", "-"] if access_log else [],
    )

    def healthy() -> bool:
        try:
            status, body = http_get(port, "/api/v1/health")
        except OSError:
            return False
        if status == 200:
            log(f"server healthy: {body.decode()}")
        return status == 200

    # The app logs one JSON line per request: to a file, not the terminal.
    log_path = os.path.join(env["VAR_DIR"], "server.log")
    return spawn_until_ready(cmd, app_dir=app_dir, env=env, log_path=log_path, what="server", ready=healthy)


def spawn(cmd: list[str], *, app_dir: Path, env: dict[str, str], log_path: str | Path) -> subprocess.Popen:
    """Starts `cmd` in a session of its own (so stopping it stops only what we started), its output
    appended to `log_path`."""
    with open(log_path, "ab") as out:
        return subprocess.Popen(cmd, cwd=app_dir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def spawn_until_ready(
    cmd: list[str],
    *,
    app_dir: Path,
    env: dict[str, str],
    log_path: str,
    what: str,
    ready: Callable[[], bool],
    stop: Callable[[subprocess.Popen], None] | None = None,
    timeout: float = 60,
) -> subprocess.Popen:
    """spawn(), then returns the process once ready() says so. Raises when it exits first, or, after
    stop(proc) (default stop_process), when it is not ready within `timeout` s."""
    log(f"{what}: " + " ".join(cmd[1:]) + f" (output in {log_path})")
    proc = spawn(cmd, app_dir=app_dir, env=env, log_path=log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{read(log_path)[-3000:]}")
        if ready():
            return proc
        time.sleep(0.2)
    (stop or stop_process)(proc)
    raise RuntimeError(f"{what} not ready within {timeout:.0f} s")


def stop_process(
    proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 20, *, leader_only: bool = False
) -> None:
    """`sig` to the session of a process we started with spawn() (only ours), or with leader_only to
    its first process alone (Dramatiq's main process stops its workers itself); SIGKILL to the
    session after `timeout` s. Then SIGKILL to whatever is left in the session: children of a
    killed parent (gunicorn workers) may linger."""
    if proc is None:
        return
    try:
        if leader_only:
            proc.send_signal(sig)
        else:
            os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass

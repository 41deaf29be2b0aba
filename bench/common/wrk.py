"""wrk, the C load generator (like pgbench, the baselines' client), driven with bench/pool.wrk.lua:
each request a different user of a pool, the same requests the Python clients (load.drive) send,
at a fraction of their CPU. On two cores the client's CPU is taken from the server it measures."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass

from .cli import BENCH_DIR
from .cpu import CpuSampler, cpu_per_op
from .load import LevelResult, PoolRequest, UserPool

SCRIPT = BENCH_DIR / "pool.wrk.lua"


@dataclass
class WrkLevelResult(LevelResult):
    """wrk reports percentiles, not every latency (and times every answer, not only the successes)."""

    p50_ms: float = float("nan")
    p99_ms: float = float("nan")

    @property
    def p50(self) -> float:
        return self.p50_ms

    @property
    def p99(self) -> float:
        return self.p99_ms


def add_client_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--client",
        choices=("wrk", "python"),
        default="wrk",
        help="the API's load generator: wrk (C, like pgbench; default) or forked Python http.client processes",
    )


def find_wrk(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """args.wrk: wrk's path when --client wrk (the parser stops the run when it is missing)."""
    args.wrk = shutil.which("wrk") if args.client == "wrk" else None
    if args.client == "wrk" and not args.wrk:
        p.error("wrk not found (apt-get install wrk), or use --client python")


def drive_wrk(
    wrk: str,
    request: PoolRequest,
    *,
    port: int,
    pool: UserPool,
    tokens_file: str,
    clients: int,
    seconds: float,
    sampler_args: dict | None,
) -> WrkLevelResult:
    """`clients` keep-alive connections send `request` for `seconds`, users taken from `pool` (as
    written to `tokens_file` by pool.write) from the first unused one on. With sampler_args, CPU per
    success is measured (wrk counts as client, with any sampler_args["client_pids"])."""
    threads = 2 if clients % 2 == 0 else 1  # wrk gives each thread connections // threads
    cmd = [wrk, "-t", str(threads), "-c", str(clients), "-d", f"{max(1, round(seconds))}s", "--timeout", "30s"]
    cmd += ["-s", str(SCRIPT), f"http://127.0.0.1:{port}", "--", tokens_file, str(pool.used), str(threads)]
    cmd += [uuid.uuid4().hex[:12], str(request.ok_status), request.method, request.path]
    if request.body is not None:
        cmd.append(request.body)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = None
    if sampler_args is not None:
        clients_pids = {os.getpid(), proc.pid, *sampler_args.get("client_pids", ())}
        sampler = CpuSampler(**{**sampler_args, "client_pids": clients_pids}).start()
    out, err = proc.communicate()
    ticks = sampler.stop() if sampler else None
    found = [line[len("WRKJSON ") :] for line in out.splitlines() if line.startswith("WRKJSON ")]
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out}\n{err}")
    w = json.loads(found[0])
    pool.mark_used(w["next_index"])
    res = WrkLevelResult(clients=clients, ok=w["ok"], elapsed=w["duration_us"] / 1e6, exhausted=bool(w["exhausted"]))
    res.p50_ms, res.p99_ms = w["p50_us"] / 1000.0, w["p99_us"] / 1000.0
    res.unanswered = w["sent"] - w["ok"] - w["other_status"]
    if w["other_status"]:
        res.errors[f"non-{request.ok_status}"] = w["other_status"]
    if w["transport_errors"]:
        res.errors["transport"] = w["transport_errors"]
    if ticks is not None:
        res.cpu = cpu_per_op(ticks, res.ok)
    return res

"""Redis through `redis-cli` (the bench stays stdlib-only)."""

from __future__ import annotations

import subprocess

REDIS_HOST = "127.0.0.1"


def redis_cli(
    *args: str, port: int = 6379, db: int | None = None, timeout: float = 5, check: bool = False
) -> str | None:
    """One command's answer, or None when it failed (no server, an error, a timeout); with `check`,
    a failure raises instead."""
    cmd = ["redis-cli", "-h", REDIS_HOST, "-p", str(port)]
    if db is not None:
        cmd += ["-n", str(db)]
    try:
        out = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        out = None
    if out is None or out.returncode != 0 or out.stdout.startswith("Could not connect"):
        if check:
            raise RuntimeError(f"redis-cli {args} failed: {out.stderr if out else 'timed out'}")
        return None
    return out.stdout.strip()

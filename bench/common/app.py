"""The app's processes as the runs start them: their environment, migrate, Django snippets, the
users' tokens and the dev gateways' keys."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .db import database_url

SECRET_KEY = "bench-only-secret-key-" + "x" * 32
# Settings a run sets itself (or leaves unset on purpose): never inherited from the shell.
UNINHERITED = (
    "REDIS_URL",
    "DJANGO_SETTINGS_MODULE",
    "DEBUG",
    "BENCH_BASELINE_VIEW",
    "ALIPAY_GATEWAY_URL",
    "ALIPAY_NOTIFY_URL",
    "ALIPAY_RETURN_URL",
)
UNINHERITED_PREFIXES = ("WECHATPAY_", "REFUND_", "PG")


def app_env(db: str, var_dir: str, *, redis_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of everything that runs app code (server, worker, Django snippets); `extra`
    adds or overrides settings (the drill's short payment timeout, LOG_LEVEL=INFO, ...)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in UNINHERITED and not name.startswith(UNINHERITED_PREFIXES)
    }
    env.update(
        DJANGO_SETTINGS_MODULE="core.settings",
        DATABASE_URL=database_url(db),
        SECRET_KEY=SECRET_KEY,
        ALIPAY_DEV_GATEWAY="1",
        DEBUG="0",
        JWT_ACCESS_TTL_SECONDS="7200",  # the default 15 minutes could run out during a long run
        LOG_LEVEL="WARNING",
        VAR_DIR=str(var_dir),
        PYTHONUNBUFFERED="1",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra)
    return env


def migrate(python: str, env: dict[str, str], app_dir: Path) -> None:
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=app_dir, env=env, check=True)


def django_command(python: str, code: str) -> list[str]:
    """The app's python running `code` after django.setup()."""
    return [python, "-c", "import django\ndjango.setup()\n" + code]


def run_django(python: str, env: dict[str, str], app_dir: Path, code: str, **variables: object) -> str:
    """Runs `code` (after django.setup()) in the app's python, with each of `variables` as
    BENCH_<NAME> in its environment; returns its stdout."""
    out = subprocess.run(
        django_command(python, code),
        cwd=app_dir,
        env={**env, **{f"BENCH_{k.upper()}": str(v) for k, v in variables.items()}},
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"Django snippet failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return out.stdout


MINT_TOKENS = """
import json, os
from core.auth import ACCESS, encode_token
from core.models import User
lo, hi = int(os.environ["BENCH_LO"]), int(os.environ["BENCH_HI"])
# encode_token only reads user.pk; the rows exist (seeded with these ids) for the server's lookup.
tokens = {uid: encode_token(user=User(pk=uid), token_type=ACCESS) for uid in range(lo, hi + 1)}
with open(os.environ["BENCH_PATH"], "w") as fh:
    json.dump(tokens, fh)
"""


def mint_tokens(python: str, env: dict[str, str], *, lo: int, hi: int, tmp: str, app_dir: Path) -> dict[int, str]:
    """One access token per user id lo..hi (same SECRET_KEY as the server)."""
    path = os.path.join(tmp, f"tokens-{lo}-{hi}.json")
    run_django(python, env, app_dir, MINT_TOKENS, lo=lo, hi=hi, path=path)
    with open(path) as fh:
        tokens = {int(k): v for k, v in json.load(fh).items()}
    os.unlink(path)
    return tokens


GATEWAY_KEYS = """
from billing.dev_gateway.keys import app_private_key, gateway_private_key
from billing.wechatpay_dev_gateway import keys
app_private_key(); gateway_private_key()
keys.merchant_private_key(); keys.platform_public_key(); keys.apiv3_key()
"""


def make_gateway_keys(python: str, env: dict[str, str], app_dir: Path) -> None:
    """The dev gateways' keys (Alipay's, WeChat Pay's), made once before any server starts, so
    that no two processes race to create them."""
    run_django(python, env, app_dir, GATEWAY_KEYS)

"""Production settings fail closed: a process that lacks a secret, or names no Alipay gateway,
does not start; the dev gateway is served only when asked for by name."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECRET = "startup-test-secret-" + "x" * 40
# Starts Django as any command would, then sends the requests named on its command line.
PROBE = """
import sys
import django
django.setup()
from django.test import Client
client = Client()
print(*(getattr(client, method)(path).status_code for method, path in zip(sys.argv[1::2], sys.argv[2::2])))
"""
GATEWAY = ["get", "/dev/alipay/gateway.do?method=alipay.trade.page.pay"]
CASHIER_PAY = ["post", "/dev/alipay/pay/1"]


def start(*requests: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        name: value
        for name, value in os.environ.items()
        if name not in {"SECRET_KEY", "DEBUG", "ALIPAY_GATEWAY_URL", "ALIPAY_DEV_GATEWAY", "DJANGO_SETTINGS_MODULE"}
    }
    return subprocess.run(
        [sys.executable, "-c", PROBE, *requests],
        env={**base, "DJANGO_SETTINGS_MODULE": "core.settings", "VAR_DIR": str(ROOT / "var"), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def refused(result: subprocess.CompletedProcess[str], *, naming: str) -> bool:
    return result.returncode != 0 and "ImproperlyConfigured" in result.stderr and naming in result.stderr


def test_no_secret_key_with_debug_off_refuses_to_start():
    result = start(DEBUG="0", ALIPAY_DEV_GATEWAY="1")
    assert refused(result, naming="SECRET_KEY"), result.stderr


def test_an_empty_secret_key_is_no_secret_key():
    result = start(DEBUG="0", SECRET_KEY="", ALIPAY_DEV_GATEWAY="1")
    assert refused(result, naming="SECRET_KEY"), result.stderr


@pytest.mark.parametrize("debug", ["0", "1"])
def test_no_gateway_url_and_no_opt_in_refuses_to_start(debug):
    result = start(DEBUG=debug, SECRET_KEY=SECRET)
    assert refused(result, naming="ALIPAY_GATEWAY_URL"), result.stderr


def test_a_gateway_url_and_the_dev_gateway_together_refuse_to_start():
    result = start(
        DEBUG="0", SECRET_KEY=SECRET, ALIPAY_GATEWAY_URL="https://openapi.alipay.com/gateway.do", ALIPAY_DEV_GATEWAY="1"
    )
    assert refused(result, naming="ALIPAY_DEV_GATEWAY"), result.stderr


def test_with_a_real_gateway_the_dev_gateway_answers_404():
    result = start(
        *GATEWAY, *CASHIER_PAY, DEBUG="0", SECRET_KEY=SECRET, ALIPAY_GATEWAY_URL="https://openapi.alipay.com/gateway.do"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["404", "404"]


def test_the_dev_gateway_is_served_when_asked_for_by_name():
    result = start(*GATEWAY, DEBUG="0", SECRET_KEY=SECRET, ALIPAY_DEV_GATEWAY="1")
    assert result.returncode == 0, result.stderr
    # Served: a page-pay request without a signature is refused by the gateway itself, not 404.
    assert result.stdout.split() == ["400"]


def test_debug_alone_gets_a_fixed_key_for_local_work():
    result = start(DEBUG="1", ALIPAY_DEV_GATEWAY="1")
    assert result.returncode == 0, result.stderr


def test_compose_takes_its_secrets_from_the_environment_and_seeds_no_demo_users():
    import yaml

    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    app_env = compose["x-app"]["environment"]
    for name in ("SECRET_KEY", "ALIPAY_GATEWAY_URL", "ALIPAY_APP_PRIVATE_KEY_PATH"):
        assert app_env[name].startswith("${" + name + ":?"), (name, app_env[name])
    assert "ALIPAY_DEV_GATEWAY" not in app_env
    assert "POSTGRES_PASSWORD:?" in app_env["DATABASE_URL"]
    for service in compose["services"].values():
        assert "seed_demo" not in str(service.get("command", ""))


@pytest.mark.parametrize("url", ["sqlite:///db.sqlite3", "mysql://root@127.0.0.1:3306/test"])
def test_a_database_url_other_than_postgres_refuses_to_start(url):
    result = start(DEBUG="0", SECRET_KEY=SECRET, ALIPAY_DEV_GATEWAY="1", DATABASE_URL=url)
    assert refused(result, naming="DATABASE_URL must be a PostgreSQL URL"), result.stderr

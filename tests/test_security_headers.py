"""Production headers: the shop pages' Content-Security-Policy, the headers every response
carries, and the settings the README documents for a deployment, which must pass
`manage.py check --deploy` and serve HTTPS properly (run in a subprocess, as a deployment would)."""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def dist(tmp_path: Path, settings) -> Path:
    (tmp_path / "index.html").write_text('<!doctype html><script type="module" src="/assets/a-AbCd12_-.js"></script>')
    settings.SPA_DIST_DIR = tmp_path
    return tmp_path


def directives(policy: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


def test_the_shop_pages_allow_only_their_own_scripts_and_styles(dist):
    response = Client().get("/orders/123")
    policy = directives(response["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    # Our own stylesheets only: never an inline style.
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert "unsafe" not in response["Content-Security-Policy"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/api/v1/health", "/api/v1/courses", "/admin/login/"])
def test_every_response_says_nosniff_and_a_referrer_policy(dist, path):
    response = Client().get(path)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def documented_production_env() -> dict[str, str]:
    """The env block of the README's "Security" section, placeholders filled in."""
    section = (ROOT / "README.md").read_text().split("## Security", 1)[1]
    block = re.search(r"```env\n(.*?)```", section, re.S).group(1)
    env = dict(line.split("=", 1) for line in block.splitlines() if line.strip())
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    return {name: re.sub(r"<[^>]*>", "x", value) for name, value in env.items()}


def run_with_production_settings(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ALIPAY_", "WECHATPAY_", "SECURE_", "DJANGO_")) and name not in {"DEBUG", "SECRET_KEY"}
    }
    return subprocess.run(
        [sys.executable, *args],
        env={**inherited, "VAR_DIR": str(ROOT / "var"), "DJANGO_SETTINGS_MODULE": "core.settings", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_the_settings_the_readme_documents():
    env = documented_production_env()
    assert env["DEBUG"] == "0" and env["PUBLIC_BASE_URL"].startswith("https://")
    result = run_with_production_settings("manage.py", "check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


# Starts Django with the given settings and reports what HTTPS-related answers look like.
PROBE = """
import json
import django
django.setup()
from django.conf import settings
from django.test import Client
client = Client(HTTP_HOST="shop.example.com")
secure = client.get("/api/v1/openapi.json", HTTP_X_FORWARDED_PROTO="https")
plain = client.get("/cart")
health = client.get("/api/v1/health")
print(json.dumps({
    "secure_status": secure.status_code,
    "hsts": secure.headers.get("Strict-Transport-Security"),
    "plain_status": plain.status_code,
    "plain_location": plain.headers.get("Location"),
    "plain_hsts": plain.headers.get("Strict-Transport-Security"),
    "health_status": health.status_code,
    "cookies_secure": [settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE],
}))
"""


def test_behind_the_https_proxy_the_documented_settings_send_hsts_and_redirect_plain_http():
    env = documented_production_env()
    # A reachable database and Redis (the health check asks both) in place of the README's examples.
    env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    env["REDIS_URL"] = django_settings.REDIS_URL
    result = run_with_production_settings("-c", PROBE, env=env)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert answers["secure_status"] == 200
    assert answers["hsts"] == "max-age=31536000; includeSubDomains"
    assert answers["plain_status"] == 301
    assert answers["plain_location"] == "https://shop.example.com/cart"
    assert answers["plain_hsts"] is None  # HSTS only means something over HTTPS
    assert answers["health_status"] != 301
    assert answers["cookies_secure"] == [True, True]

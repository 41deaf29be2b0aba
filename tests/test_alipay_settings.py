"""Alipay's certificate-mode settings fail closed: a partial set of certificate files, or one mixed
with public-key mode or the dev gateway, does not start, and names what is wrong."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import django
django.setup()
from django.conf import settings
print(settings.ALIPAY_CERT_MODE, settings.ALIPAY_DEV_GATEWAY_CERT_MODE)
"""
REAL_GATEWAY = {
    "ALIPAY_GATEWAY_URL": "https://openapi.alipay.com/gateway.do",
    "ALIPAY_APP_ID": "2021000000000000",
    "ALIPAY_APP_PRIVATE_KEY_PATH": "/etc/shop/alipay/app_private_key.pem",
}
CERTS = {
    "ALIPAY_APP_CERT_PATH": "/etc/shop/alipay/appCertPublicKey_2021000000000000.crt",
    "ALIPAY_PUBLIC_CERT_PATH": "/etc/shop/alipay/alipayCertPublicKey_RSA2.crt",
    "ALIPAY_ROOT_CERT_PATH": "/etc/shop/alipay/alipayRootCert.crt",
}


def start(**env: str) -> subprocess.CompletedProcess[str]:
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("WECHATPAY_", "ALIPAY_")) and name not in {"DEBUG", "DJANGO_SETTINGS_MODULE"}
    }
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "core.settings",
            "VAR_DIR": str(ROOT / "var"),
            "DEBUG": "0",
            "SECRET_KEY": "settings-test-secret-" + "x" * 40,
            **env,
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_all_three_certificate_files_turn_certificate_mode_on():
    started = start(**REAL_GATEWAY, **CERTS)
    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == ["True", "False"]
    public_key_mode = start(**REAL_GATEWAY, ALIPAY_PUBLIC_KEY_PATH="/etc/shop/alipay/alipay_public_key.pem")
    assert public_key_mode.returncode == 0, public_key_mode.stderr
    assert public_key_mode.stdout.split() == ["False", "False"]


def test_a_partial_set_of_certificate_files_names_the_missing_ones():
    failed = start(**REAL_GATEWAY, ALIPAY_APP_CERT_PATH=CERTS["ALIPAY_APP_CERT_PATH"])
    assert failed.returncode != 0
    assert "ImproperlyConfigured" in failed.stderr
    assert "set ALIPAY_PUBLIC_CERT_PATH, ALIPAY_ROOT_CERT_PATH too" in failed.stderr
    failed = start(**REAL_GATEWAY, **{**CERTS, "ALIPAY_PUBLIC_CERT_PATH": ""})
    assert "set ALIPAY_PUBLIC_CERT_PATH too" in failed.stderr


def test_certificate_mode_mixed_with_public_key_mode_or_the_dev_gateway_does_not_start():
    both = start(**REAL_GATEWAY, **CERTS, ALIPAY_PUBLIC_KEY_PATH="/etc/shop/alipay/alipay_public_key.pem")
    assert both.returncode != 0 and "not both" in both.stderr
    dev = start(ALIPAY_DEV_GATEWAY="1", **CERTS)
    assert dev.returncode != 0 and "ALIPAY_DEV_GATEWAY_CERT_MODE=1" in dev.stderr
    orphan = start(**REAL_GATEWAY, ALIPAY_DEV_GATEWAY_CERT_MODE="1")
    assert orphan.returncode != 0 and "needs ALIPAY_DEV_GATEWAY=1" in orphan.stderr
    dev_cert_mode = start(ALIPAY_DEV_GATEWAY="1", ALIPAY_DEV_GATEWAY_CERT_MODE="1")
    assert dev_cert_mode.returncode == 0, dev_cert_mode.stderr
    assert dev_cert_mode.stdout.split() == ["False", "True"]

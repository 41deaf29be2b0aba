"""WeChat Pay settings fail closed: a merchant id without every key it needs, or together with the
dev gateway, does not start; with neither, WeChat Pay is off and the dev gateway is not served."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECRET = "startup-test-secret-" + "x" * 40
# Starts Django as any command would, prints what WeChat Pay ended up as, then sends the requests
# named on its command line.
PROBE = """
import sys
import django
django.setup()
from django.conf import settings
from django.test import Client
print(settings.WECHATPAY_ENABLED, settings.WECHATPAY_DEV_GATEWAY, settings.WECHATPAY_MCHID or "-")
client = Client()
print(*(getattr(client, method)(path).status_code for method, path in zip(sys.argv[1::2], sys.argv[2::2])))
"""
REAL_MERCHANT = {
    "WECHATPAY_MCHID": "1900000109",
    "WECHATPAY_APPID": "wxd678efh567hg6787",
    "WECHATPAY_PRIVATE_KEY_PATH": "/etc/shop/wechatpay/apiclient_key.pem",
    "WECHATPAY_CERT_SERIAL": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
    "WECHATPAY_APIV3_KEY": "sQ5uNzQ8a2xL7vR3tW9yB4cE6gH1jK0m",
    "WECHATPAY_PUBLIC_KEY_PATH": "/etc/shop/wechatpay/pub_key.pem",
    "WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_0119000001092026010100000000000001",
}


def start(*requests: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("WECHATPAY_", "ALIPAY_"))
        and name not in {"SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE"}
    }
    return subprocess.run(
        [sys.executable, "-c", PROBE, *requests],
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "core.settings",
            "VAR_DIR": str(ROOT / "var"),
            "DEBUG": "0",
            "SECRET_KEY": SECRET,
            "ALIPAY_DEV_GATEWAY": "1",
            **env,
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def refused(result: subprocess.CompletedProcess[str], *naming: str) -> bool:
    return (
        result.returncode != 0
        and "ImproperlyConfigured" in result.stderr
        and all(name in result.stderr for name in naming)
    )


def started(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_with_nothing_set_wechat_pay_is_off():
    assert started(start()) == ["False", "False", "-"]


def test_the_dev_gateway_enables_wechat_pay_with_its_own_merchant():
    assert started(start(WECHATPAY_DEV_GATEWAY="1")) == ["True", "True", "1900000109"]


def test_a_complete_merchant_enables_wechat_pay():
    assert started(start(**REAL_MERCHANT)) == ["True", "False", "1900000109"]


def test_a_merchant_and_the_dev_gateway_together_refuse_to_start():
    result = start(WECHATPAY_DEV_GATEWAY="1", **REAL_MERCHANT)
    assert refused(result, "WECHATPAY_MCHID", "WECHATPAY_DEV_GATEWAY"), result.stderr


@pytest.mark.parametrize("missing", [name for name in REAL_MERCHANT if name != "WECHATPAY_MCHID"])
def test_a_merchant_without_each_key_refuses_to_start_naming_it(missing):
    result = start(**{name: value for name, value in REAL_MERCHANT.items() if name != missing})
    assert refused(result, missing), result.stderr
    result = start(**{**REAL_MERCHANT, missing: ""})
    assert refused(result, missing), result.stderr


def test_a_merchant_with_nothing_else_names_everything_missing():
    result = start(WECHATPAY_MCHID="1900000109")
    assert refused(result, *(name for name in REAL_MERCHANT if name != "WECHATPAY_MCHID")), result.stderr


@pytest.mark.parametrize("apiv3_key", ["too-short", "x" * 33, "密钥" * 16])
def test_an_apiv3_key_of_other_than_32_bytes_refuses_to_start(apiv3_key):
    result = start(**{**REAL_MERCHANT, "WECHATPAY_APIV3_KEY": apiv3_key})
    assert refused(result, "WECHATPAY_APIV3_KEY", "32"), result.stderr


NATIVE = ["post", "/dev/wechatpay/v3/pay/transactions/native"]
PAGES = ["get", "/dev/wechatpay/", "get", "/dev/wechatpay/scanned/wx1", "post", "/dev/wechatpay/pay/wx1"]


def test_without_the_dev_gateway_its_urls_answer_404():
    assert started(start(*NATIVE, *PAGES))[3:] == ["404", "404", "404", "404"]
    assert started(start(*NATIVE, *PAGES, **REAL_MERCHANT))[3:] == ["404", "404", "404", "404"]


def test_the_dev_gateway_is_served_when_asked_for_by_name():
    # Served: an order without a signature is refused by the gateway itself (401), not 404.
    assert started(start(*NATIVE, "get", "/dev/wechatpay/", WECHATPAY_DEV_GATEWAY="1"))[3:] == ["401", "200"]

"""The process's WeChat Pay client, built from settings once and forgotten when a WECHATPAY_*
setting changes (tests override them)."""

import functools
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import reverse

from billing.wechatpay.client import WechatPayClient
from billing.wechatpay.errors import Reason, WechatPayError
from billing.wechatpay.keys import load_private_key, load_public_key


@functools.cache
def get_wechatpay_client() -> WechatPayClient:
    """The dev gateway and its generated keys when WECHATPAY_DEV_GATEWAY is on, else the
    configured merchant. Raises WechatPayError(MISCONFIGURED) when WeChat Pay is off
    (settings.WECHATPAY_ENABLED is False: offer Alipay only) or a key file is unusable."""
    if not settings.WECHATPAY_ENABLED:
        raise WechatPayError(Reason.MISCONFIGURED, "WeChat Pay is not enabled (no WECHATPAY_MCHID)")
    common: dict[str, Any] = {
        "mchid": settings.WECHATPAY_MCHID,
        "appid": settings.WECHATPAY_APPID,
        "notify_url": settings.WECHATPAY_NOTIFY_URL,
        "timeout": settings.WECHATPAY_TIMEOUT_SECONDS,
    }
    if settings.WECHATPAY_DEV_GATEWAY:
        from billing.wechatpay_dev_gateway import keys as dev_keys

        return WechatPayClient(
            merchant_private_key=dev_keys.merchant_private_key(),
            merchant_serial_no=dev_keys.merchant_serial_no(),
            apiv3_key=dev_keys.apiv3_key(),
            wechatpay_public_key=dev_keys.platform_public_key(),
            wechatpay_public_key_id=dev_keys.public_key_id(),
            api_base=settings.DEV_GATEWAY_BASE_URL + reverse("wechatpay_dev_gateway:home").rstrip("/"),
            **common,
        )
    return WechatPayClient(
        merchant_private_key=load_private_key(_read_key_file("WECHATPAY_PRIVATE_KEY_PATH")),
        merchant_serial_no=settings.WECHATPAY_CERT_SERIAL,
        apiv3_key=settings.WECHATPAY_APIV3_KEY,
        wechatpay_public_key=load_public_key(_read_key_file("WECHATPAY_PUBLIC_KEY_PATH")),
        wechatpay_public_key_id=settings.WECHATPAY_PUBLIC_KEY_ID,
        api_base=settings.WECHATPAY_API_BASE,
        **common,
    )


def _read_key_file(setting_name: str) -> str:
    path = getattr(settings, setting_name)
    if not path:
        raise WechatPayError(Reason.MISCONFIGURED, f"{setting_name} is not set")
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise WechatPayError(Reason.MISCONFIGURED, f"{setting_name}: cannot read {path}: {exc}") from exc


@receiver(setting_changed)
def _forget_client_on_settings_change(*, setting: str, **kwargs: Any) -> None:
    # A client cached from the old values would ignore an override.
    if setting.startswith("WECHATPAY_") or setting in ("PUBLIC_BASE_URL", "DEV_GATEWAY_BASE_URL"):
        get_wechatpay_client.cache_clear()

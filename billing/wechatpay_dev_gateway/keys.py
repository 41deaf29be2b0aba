"""The dev gateway's secrets, generated on first use under settings.WECHATPAY_DEV_KEY_DIR (inside
VAR_DIR, outside git): the merchant's API key pair (what a merchant downloads from the merchant
platform; requests are signed with it), WeChat Pay's own "platform" key pair (answers and notifies
are signed with it) and the 32-character APIv3 key (notifies are encrypted with it).

The merchant certificate serial and the public key id are derived from the keys they name, so
they change exactly when a key does.
"""

import functools
import hashlib
import secrets
import string
from pathlib import Path

from django.conf import settings

from billing.dev_gateway.keys import create_file_once, load_or_create_key
from billing.wechatpay.keys import RsaKey, load_apiv3_key

MERCHANT_KEY_FILE = "merchant_private_key.pem"
PLATFORM_KEY_FILE = "wechatpay_private_key.pem"
APIV3_KEY_FILE = "apiv3_key.txt"


def merchant_private_key() -> RsaKey:
    return load_or_create_key(_dir() / MERCHANT_KEY_FILE)


def merchant_public_key() -> RsaKey:
    return merchant_private_key().public_key()


def merchant_serial_no() -> str:
    """Stands in for the merchant API certificate's serial: 40 upper-case hex digits."""
    return hashlib.sha1(merchant_public_key().export_key(format="DER")).hexdigest().upper()


def platform_private_key() -> RsaKey:
    return load_or_create_key(_dir() / PLATFORM_KEY_FILE)


def platform_public_key() -> RsaKey:
    return platform_private_key().public_key()


def public_key_id() -> str:
    """WeChat Pay's public key id, `PUB_KEY_ID_` and digits as the merchant platform shows it."""
    digest = hashlib.sha256(platform_public_key().export_key(format="DER")).digest()
    return "PUB_KEY_ID_" + str(int.from_bytes(digest[:16], "big")).zfill(39)[:32]


def apiv3_key() -> bytes:
    return _load_or_create_apiv3_key(_dir() / APIV3_KEY_FILE)


def _dir() -> Path:
    return Path(settings.WECHATPAY_DEV_KEY_DIR)


@functools.cache
def _load_or_create_apiv3_key(path: Path) -> bytes:
    if not path.exists():
        alphabet = string.ascii_letters + string.digits
        create_file_once(path, "".join(secrets.choice(alphabet) for _ in range(32)).encode("ascii"))
    return load_apiv3_key(path.read_bytes().strip())

"""The merchant's keys and WeChat Pay's public key, as the merchant platform hands them out:
`apiclient_key.pem` (PKCS#8 PEM; PKCS#1 and bare base64 DER are accepted too), the WeChat Pay
public key `pub_key.pem` (X.509 SubjectPublicKeyInfo PEM) and the 32-byte APIv3 key."""

import base64
import binascii

from Crypto.PublicKey import RSA

from billing.wechatpay.errors import Reason, WechatPayError

RsaKey = RSA.RsaKey
APIV3_KEY_BYTES = 32


def _import(text: str | bytes) -> RsaKey:
    raw = (text.decode("ascii", errors="replace") if isinstance(text, bytes) else text).strip()
    if not raw:
        raise WechatPayError(Reason.MISCONFIGURED, "the RSA key is empty")
    try:
        if raw.startswith("-----BEGIN"):
            return RSA.import_key(raw)
        return RSA.import_key(base64.b64decode("".join(raw.split()), validate=True))
    except (ValueError, IndexError, TypeError, binascii.Error) as exc:
        raise WechatPayError(Reason.MISCONFIGURED, f"not an RSA key in PEM or base64 DER form: {exc}") from exc


def load_private_key(text: str | bytes) -> RsaKey:
    """The merchant API private key, which signs our requests."""
    key = _import(text)
    if not key.has_private():
        raise WechatPayError(Reason.MISCONFIGURED, "expected the merchant's RSA private key, got a public key")
    if key.size_in_bits() < 2048:
        raise WechatPayError(Reason.MISCONFIGURED, "WECHATPAY2-SHA256-RSA2048 needs a key of 2048 bits or more")
    return key


def load_public_key(text: str | bytes) -> RsaKey:
    """WeChat Pay's public key, which verifies answers and notifies. A private key is refused: it
    means the merchant's own key was pasted where WeChat Pay's belongs."""
    key = _import(text)
    if key.has_private():
        raise WechatPayError(Reason.MISCONFIGURED, "expected WeChat Pay's public key, got a private key")
    return key


def load_apiv3_key(text: str | bytes) -> bytes:
    """The APIv3 key is used as it is typed in the merchant platform: 32 ASCII characters, whose
    UTF-8 bytes are the AES-256 key."""
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if len(raw) != APIV3_KEY_BYTES:
        raise WechatPayError(Reason.MISCONFIGURED, f"the APIv3 key must be {APIV3_KEY_BYTES} bytes, got {len(raw)}")
    return raw

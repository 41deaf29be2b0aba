"""RSA keys in every form Alipay hands them out: PEM (PKCS#1 or PKCS#8 / X.509) and the bare
one-line base64 the open platform console shows (no header; PKCS#1 or PKCS#8 DER inside)."""

import base64
import binascii

from Crypto.PublicKey import RSA

from billing.alipay.errors import AlipayKeyError

RsaKey = RSA.RsaKey


def _import(text: str | bytes) -> RsaKey:
    raw = text.decode("ascii", errors="replace") if isinstance(text, bytes) else text
    raw = raw.strip()
    if not raw:
        raise AlipayKeyError("The RSA key is empty.")
    try:
        if raw.startswith("-----BEGIN"):
            return RSA.import_key(raw)
        # The console's form: DER base64, sometimes pasted with line breaks or spaces.
        der = base64.b64decode("".join(raw.split()), validate=True)
        # import_key tries PKCS#1 and PKCS#8 private, PKCS#1 and SubjectPublicKeyInfo public DER.
        return RSA.import_key(der)
    except (ValueError, IndexError, TypeError, binascii.Error) as exc:
        raise AlipayKeyError(f"Not an RSA key in PEM or base64 DER form: {exc}") from exc


def load_private_key(text: str | bytes) -> RsaKey:
    """The app's private key, used to sign requests."""
    key = _import(text)
    if not key.has_private():
        raise AlipayKeyError("Expected an RSA private key but got a public key.")
    return key


def load_public_key(text: str | bytes) -> RsaKey:
    """Alipay's public key, used to verify notifies and responses. A private key is refused:
    it means the app's own key was pasted where Alipay's belongs, and every check would fail."""
    key = _import(text)
    if key.has_private():
        raise AlipayKeyError("Expected an RSA public key but got a private key.")
    return key

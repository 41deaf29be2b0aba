"""WECHATPAY2-SHA256-RSA2048: SHA256withRSA (PKCS#1 v1.5), base64, both ways.

Two different messages get signed, each line ending in `\\n`, the last one too:
- a request, by the merchant's key: `METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n`, sent in the
  `Authorization` header together with the merchant id and the merchant certificate's serial;
- an answer or a notify, by WeChat Pay's key: `TIMESTAMP\\nNONCE\\nBODY\\n` from the headers
  `Wechatpay-Timestamp`, `Wechatpay-Nonce` and the raw body, the signature in
  `Wechatpay-Signature`, the key named by `Wechatpay-Serial`.
The body is the exact bytes on the wire: re-serialising parsed JSON would change what was signed.
"""

import base64
import binascii
import re
import secrets
import time
from collections.abc import Mapping

from Crypto.Hash import SHA256
from Crypto.Signature import pkcs1_15

from billing.wechatpay.errors import Reason, WechatPayError
from billing.wechatpay.keys import RsaKey

SCHEME = "WECHATPAY2-SHA256-RSA2048"
TIMESTAMP_TOLERANCE_SECONDS = 5 * 60
AUTHORIZATION_FIELDS = ("mchid", "nonce_str", "signature", "timestamp", "serial_no")
SIGNATURE_HEADER = "Wechatpay-Signature"
TIMESTAMP_HEADER = "Wechatpay-Timestamp"
NONCE_HEADER = "Wechatpay-Nonce"
SERIAL_HEADER = "Wechatpay-Serial"
SIGNATURE_TYPE_HEADER = "Wechatpay-Signature-Type"
_AUTHORIZATION_PAIR = re.compile(r'([a-z_]+)="([^"]*)"')
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def new_nonce() -> str:
    """32 random characters, as WeChat Pay's SDKs make them."""
    return secrets.token_hex(16).upper()


def request_message(*, method: str, url: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What a request signature covers. `url` is the path with its query string (no host)."""
    return f"{method}\n{url}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def answer_message(*, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What an answer's or a notify's signature covers (an empty body leaves an empty line)."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def sign_message(message: bytes, private_key: RsaKey) -> str:
    return base64.b64encode(pkcs1_15.new(private_key).sign(SHA256.new(message))).decode("ascii")


def verify_message(message: bytes, signature: object, public_key: RsaKey) -> bool:
    """True only for a canonical base64 signature of `message`; never raises."""
    if not isinstance(signature, str) or not signature:
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    # b64decode ignores the spare bits of the last character, so several strings decode to the
    # same bytes; accepting only the canonical one keeps "one character changed" meaning "fails".
    if base64.b64encode(raw).decode("ascii") != signature:
        return False
    try:
        pkcs1_15.new(public_key).verify(SHA256.new(message), raw)
    except (ValueError, TypeError):
        return False
    return True


def authorization(
    *,
    mchid: str,
    serial_no: str,
    private_key: RsaKey,
    method: str,
    url: str,
    body: bytes,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> str:
    """The `Authorization` header of a request to WeChat Pay."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or new_nonce()
    signature = sign_message(
        request_message(method=method, url=url, timestamp=stamp, nonce=nonce, body=body), private_key
    )
    return (
        f'{SCHEME} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{stamp}",serial_no="{serial_no}"'
    )


def parse_authorization(header: str) -> dict[str, str]:
    """The five fields of an `Authorization` header (as WeChat Pay reads it). Raises ValueError
    for another scheme, a missing, repeated or unknown field, or anything else in between."""
    scheme, _, rest = header.partition(" ")
    if scheme != SCHEME:
        raise ValueError(f"the scheme is not {SCHEME}")
    fields: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _AUTHORIZATION_PAIR.match(rest, position)
        if not match:
            raise ValueError(f"unreadable at {position}")
        name, value = match.groups()
        if name not in AUTHORIZATION_FIELDS or name in fields:
            raise ValueError(f"unknown or repeated field {name!r}")
        fields[name] = value
        position = match.end()
        if position < len(rest):
            if rest[position] != ",":
                raise ValueError(f"expected ',' at {position}")
            position += 1
            if position == len(rest):
                raise ValueError("trailing ','")
    missing = [name for name in AUTHORIZATION_FIELDS if not fields.get(name)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    return fields


def signed_headers(
    *, body: bytes, private_key: RsaKey, public_key_id: str, timestamp: int | None = None, nonce: str | None = None
) -> dict[str, str]:
    """The headers WeChat Pay puts on an answer or a notify (what the dev gateway sends)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or new_nonce()
    return {
        TIMESTAMP_HEADER: stamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: sign_message(answer_message(timestamp=stamp, nonce=nonce, body=body), private_key),
        SERIAL_HEADER: public_key_id,
        SIGNATURE_TYPE_HEADER: SCHEME,
    }


def header(headers: Mapping[str, str], name: str) -> str:
    """A header by name in any case (Django's request.headers and requests' are case-insensitive
    already; a plain dict from a test may not be)."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if isinstance(k, str) and k.lower() == wanted), None)
    return value if isinstance(value, str) else ""


def is_signed(headers: Mapping[str, str]) -> bool:
    """Whether an answer claims to be signed at all (WeChat Pay signs every answer to a request
    whose own signature verified, errors included; a 401 for a bad request signature is not)."""
    return any(header(headers, name) for name in (SIGNATURE_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SERIAL_HEADER))


def verify_signed(
    *, headers: Mapping[str, str], body: bytes, public_key: RsaKey, public_key_id: str, now: float | None = None
) -> None:
    """Check an answer or a notify against the WeChat Pay public key `public_key_id`, in the order
    WeChat Pay's guide gives: which key, how fresh, then the signature over the raw body.
    Raises WechatPayError(UNSIGNED, WRONG_SERIAL, STALE_TIMESTAMP or BAD_SIGNATURE)."""
    signature = header(headers, SIGNATURE_HEADER)
    timestamp = header(headers, TIMESTAMP_HEADER)
    nonce = header(headers, NONCE_HEADER)
    serial = header(headers, SERIAL_HEADER)
    if not (signature and timestamp and nonce and serial):
        raise WechatPayError(Reason.UNSIGNED, "a Wechatpay-* signature header is missing")
    if serial != public_key_id:
        raise WechatPayError(Reason.WRONG_SERIAL, f"signed by {serial!r}, not by {public_key_id!r}")
    signature_type = header(headers, SIGNATURE_TYPE_HEADER)
    if signature_type and signature_type != SCHEME:
        raise WechatPayError(Reason.BAD_SIGNATURE, f"unsupported signature type {signature_type!r}")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise WechatPayError(Reason.STALE_TIMESTAMP, f"not a timestamp: {timestamp!r}")
    # A captured answer or notify replayed later verifies forever; the window bounds that.
    drift = abs((time.time() if now is None else now) - int(timestamp))
    if drift > TIMESTAMP_TOLERANCE_SECONDS:
        raise WechatPayError(Reason.STALE_TIMESTAMP, f"{int(drift)} seconds away from our clock")
    if not verify_message(answer_message(timestamp=timestamp, nonce=nonce, body=body), signature, public_key):
        raise WechatPayError(Reason.BAD_SIGNATURE, "the signature does not verify with WeChat Pay's public key")

"""AEAD_AES_256_GCM, as WeChat Pay encrypts a notify's `resource`: the 32-byte APIv3 key, the
resource's `nonce` (its UTF-8 bytes, 12 of them) and `associated_data` (UTF-8, may be empty);
`ciphertext` is base64 of the encrypted bytes with the 16-byte tag appended."""

import base64
import binascii

from Crypto.Cipher import AES

from billing.wechatpay.errors import Reason, WechatPayError

ALGORITHM = "AEAD_AES_256_GCM"
TAG_BYTES = 16


def decrypt(*, apiv3_key: bytes, nonce: str, associated_data: str, ciphertext: str) -> bytes:
    """The plaintext, once the tag proves it was sealed with this key, nonce and associated data.
    Raises WechatPayError(UNDECRYPTABLE) for anything else."""
    if not isinstance(nonce, str) or not nonce or not isinstance(associated_data, str):
        raise WechatPayError(Reason.UNDECRYPTABLE, "nonce or associated_data missing")
    if not isinstance(ciphertext, str):
        raise WechatPayError(Reason.UNDECRYPTABLE, "ciphertext missing")
    try:
        sealed = base64.b64decode(ciphertext, validate=True)
    except (binascii.Error, ValueError):
        raise WechatPayError(Reason.UNDECRYPTABLE, "ciphertext is not base64") from None
    # Spare bits of the last base64 character change nothing after decoding; only the canonical
    # text is accepted, so any changed character fails.
    if base64.b64encode(sealed).decode("ascii") != ciphertext or len(sealed) <= TAG_BYTES:
        raise WechatPayError(Reason.UNDECRYPTABLE, "ciphertext is not canonical base64 of data and a tag")
    cipher = AES.new(apiv3_key, AES.MODE_GCM, nonce=nonce.encode("utf-8"))
    cipher.update(associated_data.encode("utf-8"))
    try:
        return cipher.decrypt_and_verify(sealed[:-TAG_BYTES], sealed[-TAG_BYTES:])
    except ValueError:
        raise WechatPayError(
            Reason.UNDECRYPTABLE, "the tag does not match: another APIv3 key, or altered data"
        ) from None


def encrypt(*, apiv3_key: bytes, nonce: str, associated_data: str, plaintext: bytes) -> str:
    """`ciphertext` as WeChat Pay writes it (what the dev gateway sends)."""
    cipher = AES.new(apiv3_key, AES.MODE_GCM, nonce=nonce.encode("utf-8"))
    cipher.update(associated_data.encode("utf-8"))
    sealed, tag = cipher.encrypt_and_digest(plaintext)
    return base64.b64encode(sealed + tag).decode("ascii")

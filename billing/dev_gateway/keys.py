"""The dev gateway's two RSA-2048 key pairs: the app's (requests are signed with it) and the
gateway's own "Alipay" pair (responses, notifies and returns are signed with it).

Generated on first use under settings.ALIPAY_DEV_KEY_DIR (inside VAR_DIR, outside git). Each
pair is one PKCS#8 PEM file holding the private key; the public half is derived from it, so a
pair can never be half-written.
"""

import functools
import os
import tempfile
from pathlib import Path

from Crypto.PublicKey import RSA
from django.conf import settings

from billing.alipay.keys import RsaKey, load_private_key

APP_KEY_FILE = "app_private_key.pem"
GATEWAY_KEY_FILE = "alipay_private_key.pem"


def app_private_key() -> RsaKey:
    return _private_key(APP_KEY_FILE)


def app_public_key() -> RsaKey:
    return app_private_key().public_key()


def gateway_private_key() -> RsaKey:
    return _private_key(GATEWAY_KEY_FILE)


def gateway_public_key() -> RsaKey:
    return gateway_private_key().public_key()


def _private_key(file_name: str) -> RsaKey:
    return load_or_create_key(Path(settings.ALIPAY_DEV_KEY_DIR) / file_name)


@functools.cache
def load_or_create_key(path: Path) -> RsaKey:
    """The private key in `path`, generating it first when the file does not exist yet."""
    if not path.exists():
        _create_key_file(path)
    return load_private_key(path.read_text())


def _create_key_file(path: Path) -> None:
    create_file_once(path, RSA.generate(2048).export_key(format="PEM", pkcs=8))


def create_file_once(path: Path, content: bytes) -> None:
    """Writes `path` unless it exists, readable by its owner only (mkstemp's mode), as a private
    key should be. The dev gateways' keys and certificates are all made this way."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # link(), not replace(): when two processes start at once the first to finish wins
            # and the other reads the winner's file. With replace() the loser's file would win
            # while the first process keeps signing with a key nobody else can see.
            os.link(temporary, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(temporary)

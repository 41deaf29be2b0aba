"""The dev gateway's certificates, for public-key certificate mode (ALIPAY_DEV_GATEWAY_CERT_MODE):
its own CA, an "Alipay" public-key certificate for the gateway's key and an app public-key
certificate for the app's key, in files shaped like the three the Alipay open platform hands out.

Generated on first use under settings.ALIPAY_DEV_KEY_DIR beside the keys they certify, so
ALIPAY_APP_CERT_PATH, ALIPAY_PUBLIC_CERT_PATH and ALIPAY_ROOT_CERT_PATH can point at them too.
"""

import contextlib
import fcntl
import functools
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from django.conf import settings

from billing.alipay.certs import CertificateSNs, load_certificate_mode
from billing.alipay.keys import RsaKey
from billing.dev_gateway.keys import app_public_key, gateway_public_key

APP_CERT_FILE = "appCertPublicKey_dev.crt"
ALIPAY_CERT_FILE = "alipayCertPublicKey_RSA2.crt"
ROOT_CERT_FILE = "alipayRootCert.crt"
LOCK_FILE = ".certificates.lock"
VALID_FOR = timedelta(days=3650)


def certificate_files(directory: Path | None = None) -> dict[str, str]:
    """The three files' contents (in ALIPAY_DEV_KEY_DIR unless `directory` is given), keyed as
    load_certificate_mode() takes them."""
    directory = Path(directory or settings.ALIPAY_DEV_KEY_DIR)
    with _locked(directory):
        if not all((directory / name).exists() for name in (APP_CERT_FILE, ALIPAY_CERT_FILE, ROOT_CERT_FILE)):
            _create_certificates(directory)
        return {
            "app_cert": (directory / APP_CERT_FILE).read_text(),
            "alipay_cert": (directory / ALIPAY_CERT_FILE).read_text(),
            "alipay_root_cert": (directory / ROOT_CERT_FILE).read_text(),
        }


def certificate_sns() -> CertificateSNs:
    """The SNs the gateway expects on requests (app, root) and puts in its answers (Alipay)."""
    return _sns(str(settings.ALIPAY_DEV_KEY_DIR))


@functools.cache
def _sns(directory: str) -> CertificateSNs:
    return load_certificate_mode(**certificate_files(Path(directory))).sns


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # Two processes starting at once must not each write a CA and certificates the other's don't match.
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(directory / LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _create_certificates(directory: Path) -> None:
    now = datetime.now(tz=UTC) - timedelta(days=1)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root_name = _ca_name("Alipay Dev Gateway Root CA R1")
    root = _certificate(root_name, root_name, root_key.public_key(), root_key, now, ca=True)
    # Alipay's root file also holds roots that are not RSA-signed, which the root SN leaves out.
    ecc_key = ec.generate_private_key(ec.SECP256R1())
    ecc_name = _ca_name("Alipay Dev Gateway Root CA E1")
    ecc_root = _certificate(ecc_name, ecc_name, ecc_key.public_key(), ecc_key, now, ca=True)
    alipay = _certificate(
        _leaf_name("Alipay Dev Gateway"), root_name, _as_cryptography(gateway_public_key()), root_key, now, ca=False
    )
    app = _certificate(_leaf_name("Dev app"), root_name, _as_cryptography(app_public_key()), root_key, now, ca=False)
    # As the open platform's files: the certificate, then the CA that issued it.
    _write(directory / APP_CERT_FILE, _pem(app) + _pem(root))
    _write(directory / ALIPAY_CERT_FILE, _pem(alipay) + _pem(root))
    _write(directory / ROOT_CERT_FILE, _pem(root) + "\n" + _pem(ecc_root))


def _ca_name(common_name: str) -> x509.Name:
    # Encoded C, O, OU, CN like Alipay's CAs, so SNs come out only when the DN is written last RDN first.
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Alipay Dev Gateway"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Certification Authority"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _leaf_name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Alipay Dev Gateway"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _certificate(subject, issuer, public_key, signing_key, not_before: datetime, *, ca: bool) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signing_key, hashes.SHA256())
    )


def _as_cryptography(key: RsaKey) -> rsa.RSAPublicKey:
    public = serialization.load_der_public_key(key.export_key(format="DER"))
    assert isinstance(public, rsa.RSAPublicKey)
    return public


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _write(path: Path, text: str) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise

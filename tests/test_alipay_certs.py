"""Public-key certificate mode: the SNs, pinned by known answers that the SDKs' own code computed
on the test-only certificates in tests/fixtures/alipay/certs (see its README for how)."""

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from billing.alipay.certs import (
    certificate_sn,
    java_rfc2253_name,
    load_certificate_mode,
    load_certificates,
    root_certificate_sn,
)
from billing.alipay.client import get_alipay_client
from billing.alipay.errors import AlipayKeyError, AlipaySignatureError
from billing.alipay.keys import load_private_key, load_public_key
from billing.alipay.signing import sign_message, sign_notification, verify_request, verify_response
from tests.test_alipay_signing import fixture_text

CERTS = Path(__file__).parent / "fixtures" / "alipay" / "certs"


def cert_text(name: str) -> str:
    return (CERTS / name).read_text()


def first_certificate(name: str) -> x509.Certificate:
    return load_certificates(cert_text(name))[0]


# Computed by python-alipay-sdk 3.4.0, alipay-sdk (Node.js) 4.14.0 and the Java SDK's
# AntCertificationUtil on OpenJDK 17 and 25: all four agree.
APP_CERT_SN = "f48f7809263089a22b7ce28b3b5de393"
ALIPAY_CERT_SN = "d795bc2d849931fc435df3b3be696c83"
ROOT_CERT_SN = "64d2d64de85339ff98b021c2e2f67335_cd3ec64ec925cc76af317eafecbbb2d7"


def test_sns_match_what_alipays_sdks_compute():
    assert certificate_sn(first_certificate("test_only_appCertPublicKey.crt")) == APP_CERT_SN
    assert certificate_sn(first_certificate("test_only_alipayCertPublicKey_RSA2.crt")) == ALIPAY_CERT_SN
    assert root_certificate_sn(cert_text("test_only_alipayRootCert.crt")) == ROOT_CERT_SN


def test_the_issuer_is_written_last_rdn_first_as_java_writes_it():
    certificate = first_certificate("test_only_alipayCertPublicKey_RSA2.crt")
    rendered = java_rfc2253_name(certificate.issuer.public_bytes())
    assert rendered == "CN=Test Only Class 1 R1,OU=Certification Authority,O=Test Only Ant,C=CN"
    assert certificate.serial_number == 322689990957591011545048779017772044449
    expected = hashlib.md5(f"{rendered}{certificate.serial_number}".encode()).hexdigest()
    assert expected == ALIPAY_CERT_SN
    # The classic trap: the certificate's own order (OpenSSL's one-line form) hashes to another SN.
    openssl_order = "C=CN,O=Test Only Ant,OU=Certification Authority,CN=Test Only Class 1 R1"
    assert hashlib.md5(f"{openssl_order}{certificate.serial_number}".encode()).hexdigest() != ALIPAY_CERT_SN


def test_escapes_and_hex_values_follow_java():
    # Java's X500Principal.getName() on OpenJDK 17 and 25 for this issuer; its SN from the Java SDK's code.
    certificate = first_certificate("test_only_odd_issuer.crt")
    assert java_rfc2253_name(certificate.issuer.public_bytes()) == (
        "CN=\\ 测试 CA\\ ,1.2.840.113549.1.9.1=#160e6361406578616d706c652e636f6d,"
        'DC=example+OU=\\#1 a\\+b\\=c \\<d\\>\\;\\"q\\"\\\\,O=Test Only Co.\\,Ltd.,L=Hangzhou,ST=Zhejiang,C=CN'
    )
    assert certificate_sn(certificate) == "bdfaa24571083017e7ebd0dd047e43a1"


def test_the_root_sn_keeps_every_rsa_signed_root_in_file_order():
    roots = load_certificates(cert_text("test_only_alipayRootCert.crt"))
    assert [c.signature_algorithm_oid.dotted_string for c in roots] == [
        "1.2.840.113549.1.1.11",  # sha256WithRSAEncryption
        "1.2.840.10045.4.3.2",  # ecdsa-with-SHA256: left out
        "1.2.840.113549.1.1.5",  # sha1WithRSAEncryption
    ]
    assert ROOT_CERT_SN == f"{certificate_sn(roots[0])}_{certificate_sn(roots[2])}"
    # sha384WithRSA counts too, as in the Java, Node.js and python-alipay-sdk code (PHP's SDK would
    # keep only sha1 and sha256: the SDKs differ there, and Alipay's own root file has neither).
    assert root_certificate_sn(cert_text("test_only_root_with_sha384.crt")) == (
        "64d2d64de85339ff98b021c2e2f67335_12e22a3a467e6b29276c033babf7609a"
    )


def test_certificate_mode_from_the_three_files():
    mode = load_certificate_mode(
        app_cert=cert_text("test_only_appCertPublicKey.crt"),
        alipay_cert=cert_text("test_only_alipayCertPublicKey_RSA2.crt").encode(),
        alipay_root_cert=cert_text("test_only_alipayRootCert.crt"),
    )
    assert (mode.sns.app_cert_sn, mode.sns.alipay_cert_sn, mode.sns.alipay_root_cert_sn) == (
        APP_CERT_SN,
        ALIPAY_CERT_SN,
        ROOT_CERT_SN,
    )
    assert mode.app_public_key.n == load_public_key(fixture_text("test_only_app_public_spki.pem")).n
    alipay_private = load_private_key(cert_text("test_only_alipay_cert_private_key.pem"))
    assert mode.alipay_public_key.n == alipay_private.n and not mode.alipay_public_key.has_private()


@pytest.mark.parametrize(
    "text",
    ["", "not a certificate", fixture_text("test_only_app_public_spki.pem")],
)
def test_garbage_is_a_key_error(text):
    with pytest.raises(AlipayKeyError):
        root_certificate_sn(text)
    with pytest.raises(AlipayKeyError):
        load_certificate_mode(app_cert=text, alipay_cert=text, alipay_root_cert=text)


def test_a_root_file_with_no_rsa_root_and_a_non_rsa_alipay_certificate_are_refused():
    ecc_only = load_certificates(cert_text("test_only_alipayRootCert.crt"))[1]
    ecc_pem = ecc_only.public_bytes(Encoding.PEM).decode()
    with pytest.raises(AlipayKeyError, match="no RSA-signed"):
        root_certificate_sn(ecc_pem)
    with pytest.raises(AlipayKeyError, match="no RSA public key"):
        load_certificate_mode(
            app_cert=cert_text("test_only_appCertPublicKey.crt"),
            alipay_cert=ecc_pem,
            alipay_root_cert=cert_text("test_only_alipayRootCert.crt"),
        )


# The client in certificate mode ---------------------------------------------------------------


@pytest.fixture
def cert_settings(settings):
    settings.ALIPAY_DEV_GATEWAY = False
    settings.ALIPAY_DEV_GATEWAY_CERT_MODE = False
    settings.ALIPAY_GATEWAY_URL = "https://openapi.alipay.com/gateway.do"
    settings.ALIPAY_APP_ID = "2021000000000000"
    settings.ALIPAY_APP_PRIVATE_KEY_PATH = str(CERTS.parent / "test_only_app_private_pkcs1.pem")
    settings.ALIPAY_PUBLIC_KEY_PATH = ""
    settings.ALIPAY_CERT_MODE = True
    settings.ALIPAY_APP_CERT_PATH = str(CERTS / "test_only_appCertPublicKey.crt")
    settings.ALIPAY_PUBLIC_CERT_PATH = str(CERTS / "test_only_alipayCertPublicKey_RSA2.crt")
    settings.ALIPAY_ROOT_CERT_PATH = str(CERTS / "test_only_alipayRootCert.crt")
    return settings


def test_the_configured_client_signs_the_sns_and_verifies_with_the_certificates_key(cert_settings):
    client = get_alipay_client()
    assert (client.cert_sns.app_cert_sn, client.cert_sns.alipay_root_cert_sn) == (APP_CERT_SN, ROOT_CERT_SN)
    url = client.wap_pay_url(
        out_trade_no="20260102030405123456",
        total_amount=Decimal("1.00"),
        subject="s",
        time_expire=datetime(2026, 1, 1, tzinfo=UTC),
        quit_url="https://shop.example.com/orders/20260102030405123456",
    )
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert (params["app_cert_sn"], params["alipay_root_cert_sn"]) == (APP_CERT_SN, ROOT_CERT_SN)
    assert verify_request(params, load_public_key(fixture_text("test_only_app_public_spki.pem")))
    assert not verify_request({**params, "app_cert_sn": ALIPAY_CERT_SN}, client.app_private_key.public_key())

    alipay_key = load_private_key(cert_text("test_only_alipay_cert_private_key.pem"))
    notify = {"out_trade_no": "1", "total_amount": "1.00", "alipay_cert_sn": ALIPAY_CERT_SN, "body": ""}
    assert client.verify_notification({**notify, "sign": sign_notification(notify, alipay_key)})
    without_sn = {k: v for k, v in notify.items() if k != "alipay_cert_sn"}
    assert client.verify_notification({**without_sn, "sign": sign_notification(without_sn, alipay_key)})
    other = {**notify, "alipay_cert_sn": APP_CERT_SN}
    assert not client.verify_notification({**other, "sign": sign_notification(other, alipay_key)})


def test_answers_are_checked_against_the_alipay_certificates_sn(cert_settings):
    client = get_alipay_client()
    alipay_key = load_private_key(cert_text("test_only_alipay_cert_private_key.pem"))
    inner = '{"code":"10000","msg":"Success","out_trade_no":"1"}'
    signature = sign_message(inner, alipay_key)

    def body(sn_member: str) -> str:
        return f'{{"alipay_trade_close_response":{inner},{sn_member}"sign":"{signature}"}}'

    key, method = client.alipay_public_key, "alipay.trade.close"
    assert verify_response(body(f'"alipay_cert_sn":"{ALIPAY_CERT_SN}",'), method, key, alipay_cert_sn=ALIPAY_CERT_SN)
    # Absent, the signature decides (as in Alipay's SDKs); another SN means a new certificate.
    assert verify_response(body(""), method, key, alipay_cert_sn=ALIPAY_CERT_SN)["code"] == "10000"
    with pytest.raises(AlipaySignatureError, match="download Alipay's new public-key certificate"):
        verify_response(body(f'"alipay_cert_sn":"{APP_CERT_SN}",'), method, key, alipay_cert_sn=ALIPAY_CERT_SN)


def test_an_app_certificate_for_another_key_is_refused(cert_settings):
    cert_settings.ALIPAY_APP_PRIVATE_KEY_PATH = str(CERTS.parent / "test_only_other_private_pkcs1.pem")
    with pytest.raises(AlipayKeyError, match="ALIPAY_APP_CERT_PATH certifies another key"):
        get_alipay_client()

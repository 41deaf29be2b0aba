"""Public-key certificate mode (公钥证书模式): the serial numbers ("SNs") Alipay names its
certificates by, and the keys inside the three certificate files.

An SN is the md5 hex of the certificate's issuer DN followed by its serial number in decimal.
The DN must be rendered exactly as Alipay's Java SDK renders it (X500Principal.getName(), RFC
2253): attributes from the last RDN to the first (`CN=...,OU=...,O=...,C=CN`, the reverse of
the order in the certificate and of OpenSSL's one-line form), Java's escapes, `#hex` for an
attribute without an RFC 2253 keyword. The root SN joins with `_` the SNs of the RSA-signed
certificates in the root file (Alipay's holds ECC and SM2 roots too, which are left out).

X.509 parsing is the `cryptography` package's; the DN is read from the certificate's own DER
bytes so that no re-encoding can change what is hashed. Signing stays on pycryptodome.
"""

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from billing.alipay.errors import AlipayKeyError
from billing.alipay.keys import RsaKey, load_public_key

# AntCertificationUtil.getRootCertSN keeps a root whose signature algorithm OID starts with this
# (PKCS#1: sha1WithRSAEncryption .5, sha256WithRSAEncryption .11, ...); the Node SDK does the same.
RSA_SIGNATURE_OID_PREFIX = "1.2.840.113549.1.1"

# The attribute types X500Principal.getName() writes by keyword; any other is written as its OID.
_RFC2253_KEYWORDS = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
# The string types Java writes as text, and the charset it decodes each with.
_STRING_CHARSETS = {
    0x13: "latin-1",  # PrintableString
    0x14: "latin-1",  # TeletexString
    0x16: "latin-1",  # IA5String
    0x1B: "latin-1",  # GeneralString
    0x1E: "utf-16-be",  # BMPString
    0x0C: "utf-8",  # UTF8String
}
_ESCAPED = set(',=+<>#;"\\')


@dataclass(frozen=True)
class CertificateSNs:
    """What certificate mode adds to the protocol: two SNs on every request, one to expect in answers."""

    app_cert_sn: str
    alipay_root_cert_sn: str
    alipay_cert_sn: str


@dataclass(frozen=True)
class CertificateMode:
    sns: CertificateSNs
    # From the Alipay public-key certificate: verifies answers, notifies and returns.
    alipay_public_key: RsaKey
    # From the app public-key certificate: must be the public half of the app's private key.
    app_public_key: RsaKey


def load_certificate_mode(
    *, app_cert: str | bytes, alipay_cert: str | bytes, alipay_root_cert: str | bytes
) -> CertificateMode:
    """Certificate mode from the contents of appCertPublicKey_*.crt, alipayCertPublicKey_RSA2.crt
    and alipayRootCert.crt. The first two hold the certificate first, then the CA that issued it."""
    app = load_certificates(app_cert, "the app public-key certificate")[0]
    alipay = load_certificates(alipay_cert, "the Alipay public-key certificate")[0]
    return CertificateMode(
        sns=CertificateSNs(
            app_cert_sn=certificate_sn(app),
            alipay_root_cert_sn=root_certificate_sn(alipay_root_cert),
            alipay_cert_sn=certificate_sn(alipay),
        ),
        alipay_public_key=rsa_public_key(alipay, "the Alipay public-key certificate"),
        app_public_key=rsa_public_key(app, "the app public-key certificate"),
    )


def load_certificates(pem: str | bytes, what: str = "the certificate file") -> list[x509.Certificate]:
    data = pem.encode("ascii", errors="replace") if isinstance(pem, str) else pem
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise AlipayKeyError(f"{what} holds no readable PEM certificate: {exc}") from exc
    return certificates


def certificate_sn(certificate: x509.Certificate) -> str:
    """md5 hex of the issuer DN as Java renders it, then the serial number in decimal."""
    try:
        issuer, serial = _issuer_and_serial(certificate.tbs_certificate_bytes)
        text = java_rfc2253_name(issuer) + str(serial)
    except ValueError as exc:
        raise AlipayKeyError(f"Cannot read the certificate's issuer and serial number: {exc}") from exc
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def root_certificate_sn(pem: str | bytes) -> str:
    """alipay_root_cert_sn: the SNs of the file's RSA-signed certificates, in file order, joined by `_`."""
    certificates = load_certificates(pem, "the Alipay root certificate file")
    sns = [
        certificate_sn(certificate)
        for certificate in certificates
        if certificate.signature_algorithm_oid.dotted_string.startswith(RSA_SIGNATURE_OID_PREFIX)
    ]
    if not sns:
        raise AlipayKeyError("The Alipay root certificate file holds no RSA-signed certificate.")
    return "_".join(sns)


def rsa_public_key(certificate: x509.Certificate, what: str = "the certificate") -> RsaKey:
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise AlipayKeyError(f"{what} holds no RSA public key (RSA2 needs one).")
    return load_public_key(
        key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


# The issuer DN as X500Principal.getName() writes it ------------------------------------------


def java_rfc2253_name(name_der: bytes) -> str:
    """A DER Name as Java's X500Principal.getName() (RFC 2253) writes it: RDNs last to first,
    joined by `,`; the attributes of one RDN in encoded order, joined by `+`."""
    tag, start, end = _tlv(name_der, 0)
    if tag != 0x30 or end != len(name_der):
        raise ValueError("not a DER Name")
    rdns: list[str] = []
    index = start
    while index < end:
        tag, set_start, set_end = _tlv(name_der, index)
        if tag != 0x31:
            raise ValueError("an RDN is not a SET")
        attributes: list[str] = []
        position = set_start
        while position < set_end:
            attributes.append(_attribute(name_der, position))
            position = _tlv(name_der, position)[2]
        rdns.append("+".join(attributes))
        index = set_end
    return ",".join(reversed(rdns))


def _attribute(der: bytes, index: int) -> str:
    tag, start, end = _tlv(der, index)
    if tag != 0x30:
        raise ValueError("an attribute is not a SEQUENCE")
    oid_tag, oid_start, oid_end = _tlv(der, start)
    if oid_tag != 0x06:
        raise ValueError("an attribute type is not an OID")
    oid = _oid(der[oid_start:oid_end])
    value_tag, value_start, value_end = _tlv(der, oid_end)
    keyword = _RFC2253_KEYWORDS.get(oid, oid)
    charset = _STRING_CHARSETS.get(value_tag)
    if keyword == oid or charset is None:
        # RFC 2253 2.4: a type written as an OID, or a value with no string form, is `#` and the
        # hex of the value's whole DER encoding.
        return f"{keyword}=#{der[oid_end:value_end].hex()}"
    return f"{keyword}={_escape(der[value_start:value_end].decode(charset, errors='replace'))}"


def _escape(value: str) -> str:
    # AVA.toRFC2253String: a backslash before , = + < > # ; " \ anywhere, NUL as \00, and before
    # each leading or trailing space or carriage return.
    escaped = ["\\" + c if c in _ESCAPED else "\\00" if c == "\x00" else c for c in value]
    lead = 0
    while lead < len(escaped) and escaped[lead] in (" ", "\r"):
        lead += 1
    trail = len(escaped) - 1
    while trail >= lead and escaped[trail] in (" ", "\r"):
        trail -= 1
    return "".join("\\" + c if i < lead or i > trail else c for i, c in enumerate(escaped))


def _issuer_and_serial(tbs: bytes) -> tuple[bytes, int]:
    """The issuer Name's DER bytes and the serial number from a TBSCertificate."""
    tag, index, end = _tlv(tbs, 0)
    if tag != 0x30:
        raise ValueError("not a TBSCertificate")
    tag, start, stop = _tlv(tbs, index)
    if tag == 0xA0:  # [0] version
        tag, start, stop = _tlv(tbs, stop)
    if tag != 0x02:
        raise ValueError("no serial number")
    # Java's BigInteger of the DER INTEGER: two's complement, so a serial encoded negative stays negative.
    serial = int.from_bytes(tbs[start:stop], "big", signed=True)
    signature_end = _tlv(tbs, stop)[2]
    issuer_start = signature_end
    tag, _, issuer_end = _tlv(tbs, issuer_start)
    if tag != 0x30 or issuer_end > end:
        raise ValueError("no issuer Name")
    return tbs[issuer_start:issuer_end], serial


def _tlv(der: bytes, index: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at `index`."""
    if index + 2 > len(der):
        raise ValueError("truncated DER")
    tag, length = der[index], der[index + 1]
    index += 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or index + count > len(der):
            raise ValueError("bad DER length")
        length = int.from_bytes(der[index : index + count], "big")
        index += count
    if index + length > len(der):
        raise ValueError("truncated DER")
    return tag, index, index + length


def _oid(content: bytes) -> str:
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        raise ValueError("empty OID")
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in [first, arcs[0] - 40 * first, *arcs[1:]])

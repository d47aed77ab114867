"""The homelab's certificate authority: one CA key pair, and leaf certificates for app names.

Pure functions over PEM text (no database): `ca_create` makes the authority,
`leaf_issue` signs a server certificate for a list of names. ECDSA P-256 throughout: small
keys, fast handshakes on a Raspberry Pi, accepted by every current browser and phone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from proxy.names import check_hostname

CA_YEARS = 10
# Apple's platforms refuse server certificates valid for more than 825 days; browsers
# cap publicly trusted ones at 398. 397 days suits both, and the front door renews sooner.
LEAF_DAYS = 397
# a little slack for devices whose clocks run behind
BACKDATE = dt.timedelta(hours=1)


@dataclass(frozen=True)
class KeyPair:
    certificate_pem: str
    # a secret: never logged, shown or answered by the API (nor in a repr)
    private_key_pem: str = field(repr=False)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _cert_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def ca_name(hostname: str) -> str:
    # the control plane's host name, so two homelabs' authorities are told apart
    safe = "".join(c for c in hostname if c.isalnum() or c in ".-_")[:40] or "homelab"
    return f"Homelab CA ({safe})"


def ca_create(*, hostname: str, now: dt.datetime | None = None) -> KeyPair:
    """A new certificate authority named "Homelab CA (<hostname>)", valid ten years.

    It may sign server certificates only (path length 0: no intermediate below it).
    """
    now = now or _now()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, ca_name(hostname)),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Homelab orchestrator"),
        ]
    )
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=365 * CA_YEARS + CA_YEARS // 4))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(certificate_pem=_cert_pem(certificate), private_key_pem=_key_pem(key))


def leaf_issue(
    *,
    authority: KeyPair,
    hostnames: list[str],
    days: int = LEAF_DAYS,
    now: dt.datetime | None = None,
) -> KeyPair:
    """A server certificate for `hostnames` (each checked with a full match), signed by
    `authority`, with its own new key. ValueError when a name is not a plain DNS name."""
    names = list(dict.fromkeys(check_hostname(name) for name in hostnames))
    if not names:
        raise ValueError("A certificate needs at least one name.")
    now = now or _now()
    ca_certificate = x509.load_pem_x509_certificate(authority.certificate_pem.encode())
    ca_key = serialization.load_pem_private_key(authority.private_key_pem.encode(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = min(now + dt.timedelta(days=days), ca_certificate.not_valid_after_utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_certificate.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return KeyPair(certificate_pem=_cert_pem(certificate), private_key_pem=_key_pem(key))


def certificate_summary(certificate_pem: str) -> dict:
    """What a person may see of a certificate: its name, validity and fingerprint."""
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex().upper()
    return {
        "name": ", ".join(
            str(a.value) for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        ),
        "not_after": certificate.not_valid_after_utc,
        "sha256": ":".join(fingerprint[i : i + 2] for i in range(0, len(fingerprint), 2)),
    }

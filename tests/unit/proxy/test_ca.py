"""The homelab CA: a leaf it signs verifies for its names, and for nothing else."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from proxy.ca import KeyPair, ca_create, certificate_summary, leaf_issue

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def authority() -> KeyPair:
    return ca_create(hostname="control-plane", now=NOW)


def _verify(authority: KeyPair, leaf: KeyPair, name: str, when: dt.datetime = NOW):
    ca = x509.load_pem_x509_certificate(authority.certificate_pem.encode())
    certificate = x509.load_pem_x509_certificate(leaf.certificate_pem.encode())
    verifier = (
        PolicyBuilder().store(Store([ca])).time(when).build_server_verifier(x509.DNSName(name))
    )
    return verifier.verify(certificate, [])


def test_the_ca_is_named_for_its_host_and_lasts_ten_years(authority):
    ca = x509.load_pem_x509_certificate(authority.certificate_pem.encode())
    assert ca.subject.rfc4514_string().startswith(
        "O=Homelab orchestrator,CN=Homelab CA (control-plane)"
    )
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.public_key().curve.name == "secp256r1"
    years = (ca.not_valid_after_utc - ca.not_valid_before_utc).days / 365.25
    assert 9.9 < years < 10.1
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_a_leaf_verifies_for_each_of_its_names(authority):
    leaf = leaf_issue(
        authority=authority, hostnames=["vaultwarden.home.arpa", "n8n.home.arpa"], now=NOW
    )
    for name in ("vaultwarden.home.arpa", "n8n.home.arpa"):
        chain = _verify(authority, leaf, name)
        assert chain[-1].subject.rfc4514_string().endswith("CN=Homelab CA (control-plane)")


def test_a_leaf_does_not_verify_for_another_name(authority):
    leaf = leaf_issue(authority=authority, hostnames=["vaultwarden.home.arpa"], now=NOW)
    with pytest.raises(VerificationError):
        _verify(authority, leaf, "bank.example.com")


def test_a_leaf_of_another_ca_does_not_verify(authority):
    stranger = ca_create(hostname="someone-else", now=NOW)
    leaf = leaf_issue(authority=stranger, hostnames=["vaultwarden.home.arpa"], now=NOW)
    with pytest.raises(VerificationError):
        _verify(authority, leaf, "vaultwarden.home.arpa")


def test_a_leaf_expires_within_apples_limit(authority):
    leaf = leaf_issue(authority=authority, hostnames=["vaultwarden.home.arpa"], now=NOW)
    certificate = x509.load_pem_x509_certificate(leaf.certificate_pem.encode())
    assert (certificate.not_valid_after_utc - NOW).days <= 397
    with pytest.raises(VerificationError):
        _verify(authority, leaf, "vaultwarden.home.arpa", when=NOW + dt.timedelta(days=400))


@pytest.mark.parametrize(
    "bad", ["*.home.arpa", "a.home.arpa\nb.home.arpa", "a b.home.arpa", "{a}.home.arpa"]
)
def test_it_refuses_to_sign_anything_but_a_plain_name(authority, bad):
    with pytest.raises(ValueError):
        leaf_issue(authority=authority, hostnames=["ok.home.arpa", bad], now=NOW)


def test_openssl_agrees(authority, tmp_path):
    """A second, independent verifier: openssl, on files in a temporary folder."""
    leaf = leaf_issue(authority=authority, hostnames=["vaultwarden.home.arpa"])
    (tmp_path / "ca.pem").write_text(authority.certificate_pem)
    (tmp_path / "leaf.pem").write_text(leaf.certificate_pem)
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            "ca.pem",
            "-verify_hostname",
            "vaultwarden.home.arpa",
            "leaf.pem",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "leaf.pem: OK" in result.stdout


def test_the_summary_shows_no_key(authority):
    summary = certificate_summary(authority.certificate_pem)
    assert summary["name"] == "Homelab CA (control-plane)"
    assert len(summary["sha256"].split(":")) == 32
    assert "PRIVATE" not in repr(summary)


def test_a_key_pair_never_shows_its_private_key_in_a_repr(authority):
    assert "PRIVATE KEY" in authority.private_key_pem
    assert "PRIVATE KEY" not in repr(authority) and "PRIVATE KEY" not in str(authority)

"""SSH keys held in memory: our generated ed25519 pair, pasted private keys, fingerprints.

No file is read or written: keys are text, encrypted at rest by the Device model.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass, field

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

# The comment on the public key we install; it tells our own line in authorized_keys apart.
KEY_COMMENT = "homelab-orchestrator"


class InvalidKey(ValueError):
    """A private key we cannot use; the message says why, never the key itself."""


@dataclass(frozen=True)
class HostKey:
    """An SSH host key as pinned: its type (ssh-ed25519, ...) and base64 blob."""

    key_type: str
    key_base64: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key_base64)

    @classmethod
    def from_pkey(cls, key: paramiko.PKey) -> HostKey:
        return cls(key.get_name(), key.get_base64())


def fingerprint(key_base64: str) -> str:
    """OpenSSH-style SHA256 fingerprint of a base64 public key blob ("" for no key)."""
    if not key_base64:
        return ""
    digest = hashlib.sha256(base64.b64decode(key_base64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class KeyPair:
    private_key: str = field(repr=False)  # OpenSSH private key text
    public_key: str  # authorized_keys line: "type base64 [comment]"


def generate_key_pair(comment: str = KEY_COMMENT) -> KeyPair:
    """A new ed25519 key pair (OpenSSH private format, unencrypted: it is encrypted at rest)."""
    private = ed25519.Ed25519PrivateKey.generate()
    private_text = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public_text = (
        private.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return KeyPair(private_key=private_text, public_key=f"{public_text} {comment}")


def normalize_private_key(text: str) -> KeyPair:
    """Parse a pasted private key (ed25519, ECDSA or RSA; OpenSSH, PEM or PKCS#8).

    Returns it re-serialized in OpenSSH format with its public line (no comment, so it is
    never mistaken for a key we generated). Raises InvalidKey with words for a person.
    """
    data = (text or "").strip().encode()
    if not data:
        raise InvalidKey(
            "The private key is empty. Paste the whole key, including the BEGIN and END lines."
        )
    if b"PUBLIC KEY" in data or data.startswith((b"ssh-", b"ecdsa-")):
        raise InvalidKey("That is a public key. Paste the private key (the file without .pub).")
    loaded = None
    errors: list[str] = []
    for loader in (serialization.load_ssh_private_key, serialization.load_pem_private_key):
        try:
            loaded = loader(data + b"\n", password=None)
            break
        except TypeError:
            raise InvalidKey(
                "The private key is protected by a passphrase. Remove it first "
                "(ssh-keygen -p -f KEYFILE) or log in with a password instead."
            ) from None
        except (ValueError, Exception) as exc:
            errors.append(type(exc).__name__)
    if loaded is None:
        raise InvalidKey(
            "The private key could not be read. Paste the whole key file (ed25519, ECDSA or "
            "RSA), including the BEGIN and END lines."
        )
    if not isinstance(
        loaded, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)
    ):
        raise InvalidKey(
            "Only ed25519, ECDSA and RSA keys are supported. Create one with ssh-keygen -t ed25519."
        )
    if isinstance(loaded, rsa.RSAPrivateKey) and loaded.key_size < 2048:
        raise InvalidKey("This RSA key is too short (under 2048 bits). Use an ed25519 key instead.")
    private_text = loaded.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public_text = (
        loaded.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    load_private_key(private_text)  # paramiko must accept it too
    return KeyPair(private_key=private_text, public_key=public_text)


def load_private_key(text: str) -> paramiko.PKey:
    """A paramiko key from OpenSSH private key text held in memory."""
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise InvalidKey("The stored private key could not be loaded.")

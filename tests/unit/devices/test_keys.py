"""Keys: generated ed25519 pairs, pasted keys, and nothing secret in a repr."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from devices import ssh


def test_a_generated_pair_is_ed25519_and_loads_in_paramiko():
    pair = ssh.generate_key_pair()
    assert pair.public_key.startswith("ssh-ed25519 ")
    assert pair.public_key.endswith(" " + ssh.KEY_COMMENT)
    key = ssh.load_private_key(pair.private_key)
    assert key.get_base64() == pair.public_key.split()[1]
    assert pair.private_key not in repr(pair)


@pytest.mark.parametrize("kind", ["rsa", "ecdsa", "ed25519-pem"])
def test_pasted_keys_of_each_type_are_accepted(kind):
    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        text = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()
    elif kind == "ecdsa":
        key = ec.generate_private_key(ec.SECP256R1())
        text = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    else:
        text = ssh.generate_key_pair().private_key
    pair = ssh.normalize_private_key(text)
    assert ssh.load_private_key(pair.private_key).get_base64() == pair.public_key.split()[1]
    assert not pair.public_key.endswith(ssh.KEY_COMMENT)


def test_a_key_with_a_passphrase_is_refused_with_a_fix():
    key = ssh.generate_key_pair().private_key
    loaded = serialization.load_ssh_private_key(key.encode(), password=None)
    locked = loaded.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.BestAvailableEncryption(b"secret"),
    ).decode()
    with pytest.raises(ssh.InvalidKey, match="passphrase"):
        ssh.normalize_private_key(locked)


def test_a_public_key_is_refused_as_a_private_key():
    with pytest.raises(ssh.InvalidKey, match="public key"):
        ssh.normalize_private_key(ssh.generate_key_pair().public_key)


def test_a_target_never_shows_its_key():
    pair = ssh.generate_key_pair()
    target = ssh.Target("192.0.2.1", 22, "pi", private_key=pair.private_key)
    assert pair.private_key not in repr(target)
    assert pair.private_key not in str(target.cache_key())


def test_fingerprints_match_openssh():
    # ssh-keygen -lf of this key prints SHA256:jswHhplBuZn89ogkcH6SkjgDuZXoOhGffC+c7Mr1gLY
    blob = "AAAAC3NzaC1lZDI1NTE5AAAAIL28gKL7BnSOHR8My/9WBMVgm1T3oc+t0/L+0UE4VPc4"
    assert ssh.fingerprint(blob) == "SHA256:jswHhplBuZn89ogkcH6SkjgDuZXoOhGffC+c7Mr1gLY"

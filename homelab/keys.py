"""The install's own secrets: Django's SECRET_KEY and the field-encryption key.

Both live in the data directory with 0600 permissions. They are generated once, on the
first run (no database and no keys yet). After that they are only ever read: a missing or
wrong key stops start-up with a message, because a new key would orphan every stored
secret (Coolify #914).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

SECRET_KEY_FILE = "secret_key"
FIELD_KEY_FILE = "field_encryption.key"
KEY_CHECK_FILE = "field_encryption.check"
_CHECK_PLAINTEXT = b"homelab-orchestrator key check"


class KeyError_(RuntimeError):
    """Start-up cannot continue because a key is missing or wrong."""


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def load_or_create(data_dir: Path, *, database_exists: bool) -> tuple[str, str]:
    """Return (secret_key, field_encryption_key), creating them only on a first run.

    1. If neither key file exists and there is no database yet, this is a first run:
       generate both keys and a check value, each file 0600.
    2. If a key file is missing while data exists, refuse: say which file and what to do.
    3. Verify the encryption key against its check value; a mismatch means the key file
       was replaced, so refuse rather than write new secrets that the old data cannot use.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    secret_path = data_dir / SECRET_KEY_FILE
    field_path = data_dir / FIELD_KEY_FILE
    check_path = data_dir / KEY_CHECK_FILE

    if not secret_path.exists() and not field_path.exists():
        if database_exists:
            raise KeyError_(
                f"The keys in {data_dir} are missing but a database already exists there. "
                "Without the original keys the saved device logins cannot be read. "
                f"Put back {SECRET_KEY_FILE} and {FIELD_KEY_FILE} from your backup, or "
                "start over with an empty data directory (HOMELAB_DATA_DIR)."
            )
        field_key = Fernet.generate_key()
        _write_private(secret_path, secrets.token_urlsafe(50).encode())
        _write_private(field_path, field_key)
        _write_private(check_path, Fernet(field_key).encrypt(_CHECK_PLAINTEXT))

    for path in (secret_path, field_path):
        if not path.exists():
            raise KeyError_(
                f"The key file {path} is missing. It was created on the first run and is "
                "needed to read saved logins. Restore it from your backup; a new key is "
                "never generated over existing data."
            )
    secret_key = secret_path.read_text().strip()
    field_key = field_path.read_text().strip()
    try:
        fernet = Fernet(field_key.encode())
    except (ValueError, TypeError) as exc:
        raise KeyError_(
            f"The encryption key in {field_path} is not a valid key ({exc}). "
            "Restore the original file from your backup."
        ) from exc
    if check_path.exists():
        try:
            ok = fernet.decrypt(check_path.read_bytes()) == _CHECK_PLAINTEXT
        except InvalidToken:
            ok = False
        if not ok:
            raise KeyError_(
                f"The encryption key in {field_path} is not the one this data directory was "
                "created with, so saved logins cannot be read. Restore the original key "
                "file from your backup."
            )
    else:
        _write_private(check_path, fernet.encrypt(_CHECK_PLAINTEXT))
    return secret_key, field_key

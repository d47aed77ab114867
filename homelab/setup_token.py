"""The one-time setup link: while no account exists, /setup/ needs its token.

Anyone who reaches a fresh install could otherwise make themselves its admin (even a web
page, through DNS rebinding). Like Portainer's admin-creation window, the first account can
only be made by whoever sees the link `serve` prints in its terminal. The token lives in the
data directory (mode 0600) and dies with the first account.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

FILE_NAME = "setup-token"


def _path() -> Path:
    return Path(settings.DATA_DIR) / FILE_NAME


def _read() -> str:
    try:
        return _path().read_text().strip()
    except FileNotFoundError:
        return ""


def discard() -> None:
    """Forget the token (the first account exists)."""
    with contextlib.suppress(FileNotFoundError):
        _path().unlink()


def ensure() -> str:
    """The setup token, made once if none exists yet; "" (and none kept) once an account exists."""
    if get_user_model().objects.exists():
        discard()
        return ""
    existing = _read()
    if existing:
        return existing
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written in full to a private temporary file, then linked into place: a reader never sees
    # a half-written token, and a token another process made first is never replaced.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".setup-token.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return _read()


def is_valid(raw: str | None) -> bool:
    """True when RAW is the current setup token (compared in constant time)."""
    expected = _read()
    if not expected or not raw:
        return False
    return hmac.compare_digest(expected.encode(), str(raw).encode())


def setup_path() -> str:
    """The path a person opens to create the first account, or "" once an account exists."""
    token = ensure()
    return f"/setup/?token={token}" if token else ""

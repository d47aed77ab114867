"""Generated secrets: passwords and keys the platform makes for apps and shared servers."""

from __future__ import annotations

import secrets as _secrets
import string

ALPHABETS: dict[str, str] = {
    # letters and digits only: safe in compose files, URLs, shells and connection strings
    "alnum": string.ascii_letters + string.digits,
    "hex": "0123456789abcdef",
}


def generate_secret(length: int = 32, alphabet: str = "alnum") -> str:
    """A random secret from `secrets`; the alphabets never contain `$`, quotes or spaces."""
    if alphabet not in ALPHABETS:
        raise ValueError(f"unknown alphabet {alphabet!r}; use one of {sorted(ALPHABETS)}")
    if not 8 <= length <= 256:
        raise ValueError("a secret must be 8 to 256 characters long")
    chars = ALPHABETS[alphabet]
    return "".join(_secrets.choice(chars) for _ in range(length))

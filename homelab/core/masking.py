"""Secrets never appear in logs, pages, API answers or job output: `mask` replaces them."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "••••••"


def mask(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value replaced by MASK (longest first, so a secret that
    contains another is masked whole)."""
    if not text:
        return text
    for value in sorted({s for s in secrets if s}, key=len, reverse=True):
        # compose files carry secrets with `$` doubled: mask that (longer) form first
        if "$" in value:
            text = text.replace(value.replace("$", "$$"), MASK)
        text = text.replace(value, MASK)
    return text

"""Secrets never appear in logs, pages, API answers or job output: `mask` replaces them."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "••••••"


def mask_data(data, secrets: Iterable[str]):
    """A copy of nested data (dicts, lists, strings) with each string masked: for text that
    is written out afterwards (YAML quotes or escapes a value, so masking the written text
    could miss a secret)."""
    secrets = list(secrets)
    if isinstance(data, str):
        return mask(data, secrets)
    if isinstance(data, dict):
        return {mask_data(k, secrets): mask_data(v, secrets) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [mask_data(v, secrets) for v in data]
    return data


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

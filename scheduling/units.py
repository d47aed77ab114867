"""Words and units for placement: sizes, percentages, architectures. Pure, no Django."""

from __future__ import annotations

import functools

from homelab.core.formatting import format_bytes

GIB = 1024**3
MIB = 1024**2

# Docker platform names for what `uname -m` says.
_ARCH_ALIASES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "x64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv8": "arm64",
    "armv8l": "arm64",
    "arm64/v8": "arm64",
    "armv7l": "arm/v7",
    "armv7": "arm/v7",
    "armhf": "arm/v7",
    "arm": "arm/v7",
    "arm/v7": "arm/v7",
    "armv6l": "arm/v6",
    "armv6": "arm/v6",
    "arm/v6": "arm/v6",
    "i386": "386",
    "i686": "386",
    "386": "386",
}


@functools.lru_cache(maxsize=256)
def normalize_arch(name: str) -> str:
    """Docker platform name ("amd64", "arm64", "arm/v7") for any common spelling."""
    cleaned = name.strip().lower()
    cleaned = cleaned.removeprefix("linux/")
    return _ARCH_ALIASES.get(cleaned, cleaned)


def format_shortfall(have: float, need: float) -> tuple[str, str]:
    """Both sizes, precise enough to differ: never '2 GB free, app needs 2 GB'."""
    have_text, need_text = format_bytes(have), format_bytes(need)
    if have_text != need_text:
        return have_text, need_text
    have_mb, need_mb = f"{have / MIB:,.0f}", f"{need / MIB:,.0f}"
    if have_mb == need_mb:
        have_mb, need_mb = f"{have / MIB:,.1f}", f"{need / MIB:,.1f}"
    return f"{have_mb} MB", f"{need_mb} MB"


def format_percent(value: float) -> str:
    """'40 %', '99.8 %'."""
    text = f"{value:.1f}"
    text = text.removesuffix(".0")
    return f"{text} %"


def format_score(score: float) -> str:
    return f"{score:.1f}".removesuffix(".0")


def format_cores(cores: float) -> str:
    text = f"{cores:.1f}".removesuffix(".0")
    return f"{text} core" + ("" if text == "1" else "s")

"""Sizes in the words people read on their own machines: one formatter for every page,
message and template filter."""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
TIB = 1024 * GIB

_UNITS = ((TIB, "TB"), (GIB, "GB"), (MIB, "MB"), (KIB, "KB"))


def format_bytes(size_bytes: float | None) -> str:
    """'6.1 GB', '512 MB', '1 GB', '7.1 MB', '0 bytes'; 'unknown' for None.

    Binary units (1 GB = 1024^3 bytes, as operating systems show them). Under 100 of a
    unit one decimal is shown unless it is 0; from 100 up, whole units. Negative sizes
    (a measurement glitch) count as 0.
    """
    if size_bytes is None or size_bytes == "":
        return "unknown"
    size = max(float(size_bytes), 0.0)
    for unit_bytes, unit in _UNITS:
        # from what would print as "1024" of the unit below: 1023.7 MB is "1 GB"
        if size >= unit_bytes * 1023.5 / 1024:
            value = size / unit_bytes
            text = f"{value:.0f}" if value >= 99.95 else f"{value:.1f}".removesuffix(".0")
            return f"{text} {unit}"
    return f"{int(size)} bytes"

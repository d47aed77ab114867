"""Small template helpers for the web UI: sizes in plain units, bars, health colours,
SSH host key fingerprints and a tiny inline SVG sparkline."""

from __future__ import annotations

from collections.abc import Iterable

from django import template
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from devices.ssh import fingerprint as ssh_fingerprint
from homelab.core.formatting import format_bytes

register = template.Library()

# Sizes: "1.9 GB" (homelab.core.formatting, the one formatter); `mebibytes` is its old name.
human_bytes = register.filter("human_bytes", format_bytes)
mebibytes = register.filter("mebibytes", format_bytes)


@register.filter
def percent(used: float | None, total: float | None) -> float | None:
    if used is None or not total:
        return None
    return max(0.0, min(100.0, 100.0 * float(used) / float(total)))


@register.filter
def level(pct: float | None) -> str:
    """green under 70 %, yellow 70-90 %, red over 90 %; grey when unknown."""
    if pct is None or pct == "":
        return "unknown"
    pct = float(pct)
    if pct > 90:
        return "red"
    if pct >= 70:
        return "yellow"
    return "green"


@register.inclusion_tag("partials/bar.html")
def bar(label: str, pct: float | None, text: str = "") -> dict:
    """A labelled usage bar; colour follows `level`."""
    pct = max(0.0, min(100.0, float(pct))) if pct is not None and pct != "" else None
    return {"label": label, "pct": pct, "level": level(pct), "text": text}


@register.filter
def fingerprint(key_b64: str | None) -> str:
    """SHA256:... fingerprint of a base64 SSH public key blob, as `ssh-keygen -l` prints it."""
    return ssh_fingerprint(key_b64 or "")


@register.filter
def duration(seconds: float | None) -> str:
    """Uptime in words: '3 days, 4 hours', '12 minutes'."""
    if seconds is None:
        return "unknown"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if not days and minutes:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return ", ".join(parts[:2]) or "less than a minute"


@register.filter
def cores(value: float | None) -> str:
    if value is None:
        return "unknown"
    value = float(value)
    number = f"{value:.0f}" if value.is_integer() else f"{value:.1f}"
    return f"{number} core" if value == 1 else f"{number} cores"


@register.simple_tag
def path_or_empty(path: str) -> str:
    """PATH when some page answers there, or "" (for links to parts still being built)."""
    try:
        resolve(path)
    except Resolver404:
        return ""
    return path


@register.simple_tag
def sparkline(
    values: Iterable[float | None],
    maximum: float = 100.0,
    width: int = 240,
    height: int = 40,
    css_class: str = "spark",
) -> str:
    """An inline SVG polyline of VALUES (oldest first) scaled to 0..MAXIMUM."""
    points = [v for v in values]
    usable = [(i, v) for i, v in enumerate(points) if v is not None]
    if len(usable) < 2:
        return mark_safe('<span class="muted">Not enough readings yet.</span>')
    step = width / max(len(points) - 1, 1)
    coords = " ".join(
        f"{i * step:.1f},{height - (min(max(v, 0), maximum) / maximum) * (height - 2) - 1:.1f}"
        for i, v in usable
    )
    return format_html(
        '<svg class="{}" viewBox="0 0 {} {}" width="100%" height="{}" preserveAspectRatio="none" '
        'role="img" aria-hidden="true"><polyline fill="none" stroke-width="2" points="{}"/></svg>',
        css_class,
        width,
        height,
        height,
        coords,
    )


@register.inclusion_tag("partials/bar.html")
def bytes_bar(label: str, used: int | None, total: int | None) -> dict:
    """A usage bar for a size: '1.2 GB of 2.0 GB used'."""
    pct = percent(used, total)
    text = f"{human_bytes(used)} of {human_bytes(total)} used" if pct is not None else ""
    return bar(label, pct, text)


@register.inclusion_tag("partials/bar.html")
def cpu_bar(label: str, cores_total: float | None, usage_percent: float | None) -> dict:
    """'4 cores, 35 % busy' (an average when it is the whole homelab)."""
    if usage_percent is None:
        text = f"{cores(cores_total)}, usage not known yet" if cores_total else ""
    else:
        text = (
            f"{cores(cores_total)}, {usage_percent:.0f}% busy"
            if cores_total
            else f"{usage_percent:.0f}% busy"
        )
    return bar(label, usage_percent, text)


@register.filter
def status_level(status: str) -> str:
    """Badge colour of a device status: online green, not checked yet grey, else red."""
    if status == "online":
        return "green"
    if status == "pending":
        return "unknown"
    return "red"


@register.filter
def ago(moment) -> str:
    """'just now' under a minute, otherwise '5 minutes ago'."""
    if not moment:
        return "never"
    if (timezone.now() - moment).total_seconds() < 60:
        return "just now"
    return f"{timesince(moment)} ago"

"""Words and marks for jobs on pages."""

from __future__ import annotations

from django import template

from homelab.core.jobs import job_kind_label

register = template.Library()

STEP_MARKS = {
    "running": "…",
    "ok": "✓",
    "failed": "✗",
    "undone": "↺",
    "undo_failed": "✗",
    "skipped": "↷",
}
STATUS_LEVELS = {
    "succeeded": "green",
    "failed": "red",
    "interrupted": "red",
    "cancelled": "",
    "queued": "yellow",
    "running": "yellow",
}


@register.filter
def job_step_mark(status: str) -> str:
    return STEP_MARKS.get(status, "•")


@register.filter
def job_level(status: str) -> str:
    """Badge colour of a job status."""
    return STATUS_LEVELS.get(status, "")


@register.filter
def kind_label(kind: str) -> str:
    return job_kind_label(kind)


@register.filter
def seconds_words(seconds: float | int | None) -> str:
    """12 s, 3 min 5 s, 1 h 4 min."""
    if seconds is None:
        return ""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"

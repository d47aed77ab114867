"""Plain words for the catalog and deployment pages."""

from __future__ import annotations

from django import template

from homelab.core.formatting import MIB, format_bytes
from marketplace.models import FINAL_STATUSES, UP_STATUSES
from marketplace.watch_selectors import status_sentence

register = template.Library()

# What each pipeline step means to a person (basic mode); "What I did" shows the raw names.
STEP_WORDS = {
    "pre-flight checks": "Checking requirements",
    "render compose file": "Preparing the app's settings",
    "upload compose file": "Copying the settings to the device",
    "start containers": "Starting the app",
    "configure": "Setting up its address",
    "health check": "Waiting until the app answers",
    "start": "Starting the app",
    "stop": "Stopping the app",
    "restart": "Restarting the app",
    "remove containers": "Removing the app",
    "remove containers and data": "Removing the app and its data",
    "undo after the device came back": "Cleaning up on the device once it was back",
}
UNDO_WORDS = {
    "remove the app folder": "Removing the copied settings",
    "remove containers, networks and volumes": "Removing what was started",
}
STEP_MARKS = {"running": "…", "ok": "✓", "failed": "✗", "undone": "↺", "undo_failed": "✗"}

STATUS_WORDS = {
    "validating": "Checking requirements",
    "preparing": "Preparing",
    "deploying": "Starting the app",
    "configuring": "Setting it up",
    "health_check": "Waiting until it answers",
    "running": "Running",
    "stopped": "Stopped",
    "failed": "Failed",
    "rolling_back": "Cleaning up after a problem",
    "rolled_back": "Didn't work, cleaned up",
    "removing": "Removing",
    "removed": "Removed",
    "degraded": "Partly running",
    "stopped_unexpectedly": "Stopped unexpectedly",
    "crash_loop": "Keeps crashing",
    "missing": "Containers missing",
    "not_answering": "Not answering",
}


@register.filter
def step_words(name: str) -> str:
    if name.startswith("undo: "):
        inner = name.removeprefix("undo: ")
        return "Cleaning up: " + UNDO_WORDS.get(inner, inner).lower()
    return STEP_WORDS.get(name, name[:1].upper() + name[1:])


@register.filter
def step_mark(status: str) -> str:
    return STEP_MARKS.get(status, "•")


@register.filter
def status_words(status: str) -> str:
    return STATUS_WORDS.get(status, status)


@register.filter
def deployment_level(status: str) -> str:
    """Badge colour of a deployment status."""
    if status == "running":
        return "green"
    if status in ("failed", "rolled_back", "stopped_unexpectedly", "crash_loop", "missing"):
        return "red"
    if status in ("stopped", "removed"):
        return ""
    return "yellow"


@register.filter
def is_final(status: str) -> bool:
    return status in FINAL_STATUSES


@register.filter
def watch_sentence(deployment) -> str:
    """ "Stopped unexpectedly 3 minutes ago: its container exited with code 137 (...)"."""
    return status_sentence(deployment)


@register.filter
def is_up(status: str) -> bool:
    """Meant to be running (running, or in trouble the watch found): stop/restart apply."""
    return status in UP_STATUSES


@register.filter
def megabytes(mb: float | None) -> str:
    """A size given in MB (as recipes give them): 512 -> "512 MB", 1536 -> "1.5 GB"."""
    return format_bytes(None if mb is None else float(mb) * MIB)


@register.filter
def cores_words(value: float) -> str:
    value = float(value)
    if value == 1:
        return "1 processor core"
    if value < 1:
        return f"{value:g} of a processor core"
    return f"{value:g} processor cores"


@register.filter
def category_label(category: str) -> str:
    return category.replace("-", " ").capitalize()

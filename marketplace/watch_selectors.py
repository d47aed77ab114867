"""Reads about the watch (issue 20): health, uptime, events, for pages and the API."""

from __future__ import annotations

from django.utils import timezone

from marketplace.health_checks import deployment_health, deployment_uptime
from marketplace.models import TROUBLE_STATUSES, Deployment, DeploymentEvent


def watch_fields(deployment: Deployment) -> dict:
    """The API's status_reason, health and uptime of one deployment."""
    return {
        "status_reason": deployment.status_reason if deployment.status in TROUBLE_STATUSES else "",
        "health": deployment_health(deployment),
        "uptime": deployment_uptime(deployment),
    }


def deployment_events(*, deployment: Deployment, limit: int = 200) -> list[DeploymentEvent]:
    limit = max(1, min(int(limit), 1000))
    return list(deployment.events.all()[:limit])


def status_sentence(deployment: Deployment) -> str:
    """ "Stopped unexpectedly 3 minutes ago: its container exited with code 137 (...)"."""
    if deployment.status not in TROUBLE_STATUSES:
        return ""
    from django.utils.timesince import timesince

    words = deployment.get_status_display()
    when = ""
    if deployment.status_since is not None:
        when = f" {timesince(deployment.status_since, timezone.now()).split(',')[0]} ago"
    reason = deployment.status_reason
    return f"{words}{when}" + (f": {reason}" if reason else ".")

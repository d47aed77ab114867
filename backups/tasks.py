"""Scheduled backups: every few minutes the worker starts the backups that are due.

An app is due when its policy (its own, or the default) is enabled, a destination
exists, and no `backup.run` job of it was started since the policy's last daily slot
("daily 03:00" in the server's time zone): a slot is tried once, failed or not, and a
failed one says so on the job (the next slot tries again).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.utils import timezone

from backups import services
from backups.models import Destination, Policy
from homelab.core.errors import HomelabError
from homelab.core.models import Job
from marketplace.models import Deployment

logger = logging.getLogger(__name__)

SCHEDULE_NAME = "backups-due"
EVERY_MINUTES = 5


def last_slot(schedule: str, now: datetime) -> datetime:
    """The latest "daily HH:MM" moment at or before `now` (in now's time zone)."""
    hours, minutes = (int(x) for x in schedule.removeprefix("daily ").split(":"))
    slot = now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
    return slot if slot <= now else slot - timedelta(days=1)


def due_deployments(*, now: datetime) -> list[Deployment]:
    if not Destination.objects.exists():
        return []
    default = services.policy_default()
    overrides = {p.deployment_id: p for p in Policy.objects.filter(deployment__isnull=False)}
    local_now = timezone.localtime(now)
    due = []
    for deployment in Deployment.objects.installed().order_by("pk"):
        policy = overrides.get(deployment.pk, default)
        if not policy.enabled:
            continue
        slot = last_slot(policy.schedule, local_now)
        started = Job.objects.filter(
            kind="backup.run",
            target_type="deployment",
            target_id=str(deployment.pk),
            created__gte=slot,
        ).exists()
        if not started:
            due.append(deployment)
    return due


def backups_run_due() -> int:
    """The scheduled task: start a `backup.run` job for every due app; returns how many."""
    started = 0
    for deployment in due_deployments(now=timezone.now()):
        try:
            services.deployment_backup(deployment=deployment)
            started += 1
        except HomelabError as exc:
            logger.warning("Scheduled backup of %s not started: %s", deployment, exc.message)
    return started


def ensure_backup_schedule() -> None:
    """Create the "backups-due" schedule (every few minutes; idempotent; at start-up)."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "func": "backups.tasks.backups_run_due",
            "schedule_type": Schedule.MINUTES,
            "minutes": EVERY_MINUTES,
            "repeats": -1,
        },
    )

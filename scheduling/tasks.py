"""Background work for placement (django-q2). Tasks are doors: they call one service.

Reservations stop counting when they expire, but their rows stay until
`reservations_purge` deletes them; `ensure_purge_schedule()` (called at start-up) keeps
one hourly Schedule "purge-reservations" that runs it, so old rows do not pile up.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from scheduling import services

logger = logging.getLogger(__name__)

PURGE_SCHEDULE_NAME = "purge-reservations"


def purge_reservations() -> int:
    """Delete reservations that expired more than a day ago; returns how many."""
    return services.reservations_purge()


def ensure_purge_schedule() -> None:
    """Create or update the hourly "purge-reservations" schedule (idempotent)."""
    from django_q.models import Schedule

    defaults = {
        "func": "scheduling.tasks.purge_reservations",
        "schedule_type": Schedule.HOURLY,
        "repeats": -1,
    }
    schedule, created = Schedule.objects.get_or_create(
        name=PURGE_SCHEDULE_NAME, defaults={**defaults, "next_run": timezone.now()}
    )
    if not created:
        changed = [key for key, value in defaults.items() if getattr(schedule, key) != value]
        for key in changed:
            setattr(schedule, key, defaults[key])
        if changed:
            schedule.save(update_fields=changed)
    logger.info("Old reservations purged every hour (schedule %s)", PURGE_SCHEDULE_NAME)

"""Background work for devices (django-q2). Tasks are doors: they take ids and call services.

Polling schedule. django-q2's Schedule has no seconds type (the finest is MINUTES=1), and
the cluster's sentinel runs the scheduler only about every 30 s (hard-coded
`counter >= 30` in django_q/cluster.py, not a setting). So:

1. `ensure_poll_schedule()` keeps one Schedule "poll-devices" (MINUTES, the interval rounded
   up to whole minutes as a safety net) that calls `poll_all` with the intended run time.
2. `poll_all` re-arms the schedule to intended time + POLL_INTERVAL_SECONDS, then queues one
   `poll_device` task per device. With the default 30 s the next scheduler tick (~30 s
   later) finds it due, so sweeps run every ~30 s; intervals are effectively rounded up to
   the scheduler's ~30 s tick (10 s gives ~30 s, 45 s gives ~60 s, 120 s gives 120 s).
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from devices import hooks, services
from devices.models import Device
from homelab.core.services import jobs_recover_interrupted

logger = logging.getLogger(__name__)

POLL_SCHEDULE_NAME = "poll-devices"


def poll_device(device_id: int) -> str:
    """Poll one device; returns its status (django-q2 stores it as the task result)."""
    try:
        device = services.device_poll(device_id=device_id)
    except Device.DoesNotExist:
        return "removed"
    if device.status == "online":
        # The apps' hooks (devices.hooks.after_poll: shared servers' health, deployments'
        # pending undos) get the device as the poll left it instead of reading it again.
        hooks.run_after_poll(device)
    return device.status


def poll_all(scheduled_for: str | None = None) -> int:
    """One sweep: re-arm the schedule, queue a poll per device; returns how many were queued.
    Each sweep also finds jobs whose worker died (one query when none is running)."""
    _rearm(scheduled_for)
    queued = services.devices_poll_all()
    try:
        jobs_recover_interrupted()
    except Exception:  # never fail the sweep; the next one tries again
        logger.exception("Finding interrupted jobs failed")
    return queued


def _rearm(scheduled_for: str | None) -> None:
    from django_q.models import Schedule

    interval = timedelta(seconds=settings.POLL_INTERVAL_SECONDS)
    base = timezone.now()
    if scheduled_for:
        try:
            base = datetime.fromisoformat(scheduled_for)
            if timezone.is_naive(base):
                base = timezone.make_aware(base, timezone.utc)
        except ValueError:
            base = timezone.now()
    next_run = base + interval
    # Never plan further ahead than one interval from now (a clock jump must not stall polling).
    next_run = min(next_run, timezone.now() + interval)
    Schedule.objects.filter(name=POLL_SCHEDULE_NAME).update(next_run=next_run)


def ensure_poll_schedule() -> None:
    """Create or update the "poll-devices" schedule (idempotent; called at start-up)."""
    from django_q.models import Schedule

    minutes = max(1, math.ceil(settings.POLL_INTERVAL_SECONDS / 60))
    defaults = {
        "func": "devices.tasks.poll_all",
        "schedule_type": Schedule.MINUTES,
        "minutes": minutes,
        "repeats": -1,
        "intended_date_kwarg": "scheduled_for",
    }
    schedule, created = Schedule.objects.get_or_create(
        name=POLL_SCHEDULE_NAME, defaults={**defaults, "next_run": timezone.now()}
    )
    if not created:
        changed = [key for key, value in defaults.items() if getattr(schedule, key) != value]
        for key in changed:
            setattr(schedule, key, defaults[key])
        if schedule.next_run is None or schedule.next_run > timezone.now() + timedelta(
            seconds=settings.POLL_INTERVAL_SECONDS
        ):
            schedule.next_run = timezone.now()
            changed.append("next_run")
        if changed:
            schedule.save(update_fields=changed)
    logger.info(
        "Device polling every %s s (schedule %s)",
        settings.POLL_INTERVAL_SECONDS,
        POLL_SCHEDULE_NAME,
    )

"""The device lease: one operation that changes a device (a deployment, a removal, a
shared server's restart) at a time.

`device_lease` is claimed atomically: create the row, or take it over with a conditional
UPDATE when it has expired (its holder died) or is already ours. Never read-then-write.
A device that stays busy longer than `wait_seconds` raises DeviceBusy; each caller turns
that into its own words (marketplace: a 409 DeploymentError).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from devices.models import DeviceLease
from homelab.core.errors import HomelabError

LEASE_TTL = timedelta(minutes=30)
LEASE_WAIT_SECONDS = 600.0

BUSY_MESSAGE = (
    "Another deployment is still working on this device; try again when it has finished."
)


class DeviceBusy(HomelabError):
    """Another holder kept the device's lease for longer than the caller would wait (409)."""

    def __init__(self, message: str = BUSY_MESSAGE, **kwargs):
        kwargs.setdefault("code", 409)
        super().__init__(message, **kwargs)


@contextmanager
def device_lease(
    *, device_id: int, holder: str, wait_seconds: float = LEASE_WAIT_SECONDS
) -> Iterator[None]:
    """Hold the device's lease while the block runs; DeviceBusy when it stays taken."""
    deadline = time.monotonic() + wait_seconds
    while True:
        now = timezone.now()
        try:
            with transaction.atomic():
                DeviceLease.objects.create(
                    device_id=device_id, holder=holder, expires_at=now + LEASE_TTL
                )
            break
        except IntegrityError:
            pass
        taken = (
            DeviceLease.objects.filter(device_id=device_id)
            .filter(Q(expires_at__lt=now) | Q(holder=holder))
            .update(holder=holder, expires_at=now + LEASE_TTL)
        )
        if taken == 1:
            break
        if time.monotonic() >= deadline:
            raise DeviceBusy()
        time.sleep(0.5)
    try:
        yield
    finally:
        DeviceLease.objects.filter(device_id=device_id, holder=holder).delete()

"""Background work for the pool (django-q2): doors that take ids and call services."""

from __future__ import annotations

import logging

from devices.models import Device
from pooling.health import MEASURE_EVERY_SECONDS, container_state_api
from pooling.services import shared_instances_check

logger = logging.getLogger(__name__)


def check_shared_instances(device_id: int, *, device: Device | None = None) -> list[str]:
    """Health check of one device's shared instances (run after each device poll, which
    passes the device it just wrote)."""
    if device is None:
        device = Device.objects.filter(pk=device_id).first()
    if device is None or device.status != "online":
        return []
    return shared_instances_check(
        device=device,
        measure_every=MEASURE_EVERY_SECONDS,
        container_state=lambda instance: container_state_api(device, instance),
    )


def after_device_poll(device: Device) -> None:
    """devices.hooks.after_poll: shared database servers are health-checked on every
    successful poll (restarted if stopped)."""
    try:
        for sentence in check_shared_instances(device.pk, device=device):
            logger.warning("%s", sentence)
    except Exception:  # a failed check must not fail the poll; it is tried again next time
        logger.exception("Checking the shared databases of device %s failed", device.pk)

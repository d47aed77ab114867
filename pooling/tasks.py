"""Background work for the pool (django-q2): doors that take ids and call services."""

from __future__ import annotations

from devices.models import Device
from pooling.instances import MEASURE_EVERY_SECONDS, container_state_api
from pooling.services import shared_instances_check


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

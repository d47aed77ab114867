"""Fixtures shared by the integration tests."""

from __future__ import annotations

import contextlib

import pytest

from devices import services as device_services
from devices import ssh
from devices.models import Device


@pytest.fixture
def lab_devices(lab):
    """The lab's devices added to the product by password, {name: Device}; removed after.

    Deployment rows of the test are deleted first (they hold their device), since the lab
    devices outlive the test; each test removes what it deployed on the devices themselves.
    """
    from marketplace.models import Deployment

    ssh.connections.close_all()
    added: list[Device] = []
    try:
        for dev in lab.devices:
            added.append(
                device_services.device_add(
                    name=dev.name, address=dev.address, port=dev.port,
                    username=dev.username, password=dev.password,
                )
            )
        yield {device.name: device for device in added}
    finally:
        Deployment.objects.filter(device__in=added).delete()
        for device in added:
            with contextlib.suppress(Device.DoesNotExist):
                device_services.device_remove(device=Device.objects.get(pk=device.pk))
        ssh.connections.close_all()

"""The homelab as one system: totals over online devices, and health colours."""

from __future__ import annotations

import itertools

import pytest

from devices.models import Device, DeviceStatus
from devices.selectors import device_health, devices_with_health, resources_summary

GiB = 1024**3
_names = itertools.count()


def _device(status=DeviceStatus.ONLINE, **kw) -> Device:
    values = {
        "name": f"dev-{next(_names)}",
        "address": "192.0.2.10",
        "username": "root",
        "private_key": "x",
        "public_key": "y",
        "status": status,
        "ram_total_bytes": 4 * GiB,
        "ram_used_bytes": 1 * GiB,
        "storage_total_bytes": 100 * GiB,
        "storage_used_bytes": 10 * GiB,
        "cpu_cores": 2.0,
        "cpu_usage_percent": 10.0,
    }
    values.update(kw)
    return Device(**values)


@pytest.mark.parametrize(
    "ram_used, storage_used, cpu, expected",
    [
        (1, 10, 10.0, "green"),
        (2.79, 10, 10.0, "green"),  # 69.75 %
        (2.81, 10, 10.0, "yellow"),  # 70.25 %
        (1, 90, 10.0, "yellow"),
        (1, 10, 90.0, "yellow"),
        (1, 10, 90.5, "red"),
        (3.9, 10, 10.0, "red"),
    ],
)
def test_health_follows_the_fullest_resource(ram_used, storage_used, cpu, expected):
    device = _device(
        ram_used_bytes=int(ram_used * GiB),
        storage_used_bytes=int(storage_used * GiB),
        cpu_usage_percent=cpu,
    )
    assert device_health(device) == expected


@pytest.mark.parametrize("status", [s for s in DeviceStatus.values if s != DeviceStatus.ONLINE])
def test_a_device_that_is_not_online_is_red(status):
    assert device_health(_device(status=status)) == "red"


@pytest.mark.django_db
def test_totals_count_online_devices_only():
    _device(
        ram_total_bytes=2 * GiB, ram_used_bytes=GiB, cpu_cores=1.0, cpu_usage_percent=50.0
    ).save()
    _device(
        ram_total_bytes=8 * GiB, ram_used_bytes=2 * GiB, cpu_cores=2.0, cpu_usage_percent=20.0
    ).save()
    _device(status=DeviceStatus.OFFLINE, ram_total_bytes=64 * GiB).save()
    _device(status=DeviceStatus.AUTH_FAILED).save()
    summary = resources_summary()
    assert summary["ram_total_bytes"] == 10 * GiB
    assert summary["ram_used_bytes"] == 3 * GiB
    assert summary["storage_total_bytes"] == 200 * GiB
    assert summary["storage_used_bytes"] == 20 * GiB
    assert summary["cpu_cores_total"] == 3.0
    assert summary["cpu_usage_avg_percent"] == pytest.approx((50 * 1 + 20 * 2) / 3, abs=0.1)
    assert summary["devices_online"] == 2
    assert summary["devices_offline"] == 2
    assert (
        summary["apps_total"] == summary["apps_running"] == summary["pooling_saved_ram_bytes"] == 0
    )


@pytest.mark.django_db
def test_an_empty_homelab_sums_to_zero():
    summary = resources_summary()
    assert summary["ram_total_bytes"] == 0 and summary["cpu_usage_avg_percent"] == 0.0
    assert summary["devices_online"] == 0


@pytest.mark.django_db
def test_overloaded_devices_come_first():
    _device(name="a-calm").save()
    _device(name="b-busy", cpu_usage_percent=95.0).save()
    assert [d.name for d in devices_with_health()] == ["b-busy", "a-calm"]

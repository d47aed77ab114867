"""Reads about devices: the homelab as one system, and each device's health.

The totals count ONLINE devices only (an offline device's last figures are stale). The
apps above add their figures (apps counts, memory saved by pooling, shared servers down)
through devices.hooks.dashboard_figures; without them those are 0 (or empty).
"""

from __future__ import annotations

from devices import hooks
from devices.models import Device, DeviceStatus

HEALTH_YELLOW_PERCENT = 70.0
HEALTH_RED_PERCENT = 90.0


def resources_summary() -> dict:
    """Totals over online devices.

    cpu_usage_avg_percent is weighted by cores (busy cores / total cores across the pool),
    so a busy 1-core Pi does not count as much as an idle 8-core server.
    """
    online = list(Device.objects.filter(status=DeviceStatus.ONLINE))
    devices_offline = Device.objects.exclude(status=DeviceStatus.ONLINE).count()

    def total(attr: str) -> int:
        return sum(getattr(d, attr) or 0 for d in online)

    cores_total = sum(d.cpu_cores or 0 for d in online)
    with_usage = [d for d in online if d.cpu_usage_percent is not None]
    weight = sum(d.cpu_cores or 0 for d in with_usage)
    if weight:
        cpu_avg = sum(d.cpu_usage_percent * (d.cpu_cores or 0) for d in with_usage) / weight
    elif with_usage:
        cpu_avg = sum(d.cpu_usage_percent for d in with_usage) / len(with_usage)
    else:
        cpu_avg = 0.0
    summary = {
        "ram_total_bytes": total("ram_total_bytes"),
        "ram_used_bytes": total("ram_used_bytes"),
        "storage_total_bytes": total("storage_total_bytes"),
        "storage_used_bytes": total("storage_used_bytes"),
        "cpu_cores_total": round(cores_total, 2),
        "cpu_usage_avg_percent": round(cpu_avg, 1),
        "devices_online": len(online),
        "devices_offline": devices_offline,
        "apps_total": 0,
        "apps_running": 0,
        "pooling_saved_ram_bytes": 0,
        "shared_databases_down": [],
    }
    summary.update(hooks.collect_dashboard_figures())
    return summary


def device_load_percent(device: Device) -> float | None:
    """The fullest of RAM, storage and CPU, in percent (None when nothing is known)."""
    figures = [
        p
        for p in (device.ram_percent, device.storage_percent, device.cpu_usage_percent)
        if p is not None
    ]
    return max(figures) if figures else None


def device_health(device: Device) -> str:
    """green under 70 %, yellow 70-90 %, red over 90 % or when the device is not online."""
    if device.status != DeviceStatus.ONLINE:
        return "red"
    load = device_load_percent(device)
    if load is None or load < HEALTH_YELLOW_PERCENT:
        return "green"
    if load <= HEALTH_RED_PERCENT:
        return "yellow"
    return "red"


def devices_with_health() -> list[Device]:
    """All devices, each with `.health` and `.load_percent` set, the overloaded ones first."""
    devices = list(Device.objects.all())
    order = {"red": 0, "yellow": 1, "green": 2}
    for device in devices:
        device.health = device_health(device)
        device.load_percent = device_load_percent(device)
    devices.sort(key=lambda d: (order[d.health], d.name))
    return devices

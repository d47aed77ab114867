"""Reads about devices: the homelab as one system, and each device's health.

The totals count ONLINE devices only (an offline device's last figures are stale). The
apps above add their figures (apps counts, memory saved by pooling, shared servers down)
through devices.hooks.dashboard_figures; without them those are 0 (or empty).
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from devices import hooks
from devices.models import Device, DeviceMetric, DeviceStatus
from devices.status import status_help

HEALTH_YELLOW_PERCENT = 70.0
HEALTH_RED_PERCENT = 90.0


def resources_summary() -> dict:
    """Totals over online devices.

    cpu_usage_avg_percent is weighted by cores (busy cores / total cores across the pool),
    so a busy 1-core Pi does not count as much as an idle 8-core server.
    """
    summary = pool_totals(list(Device.objects.filter(status=DeviceStatus.ONLINE)))
    summary["devices_offline"] = Device.objects.exclude(status=DeviceStatus.ONLINE).count()
    summary.update(
        {"apps_total": 0, "apps_running": 0, "pooling_saved_ram_bytes": 0, "shared_databases_down": []}
    )
    summary.update(hooks.collect_dashboard_figures())
    return summary


def pool_totals(devices: list[Device]) -> dict:
    """RAM, storage and CPU summed over the ONLINE ones of some devices (a group's pool, or
    the homelab's): the cores-weighted CPU average as in resources_summary."""
    online = [device for device in devices if device.status == DeviceStatus.ONLINE]

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
    return {
        "ram_total_bytes": total("ram_total_bytes"),
        "ram_used_bytes": total("ram_used_bytes"),
        "storage_total_bytes": total("storage_total_bytes"),
        "storage_used_bytes": total("storage_used_bytes"),
        "cpu_cores_total": round(cores_total, 2),
        "cpu_usage_avg_percent": round(cpu_avg, 1),
        "devices_online": len(online),
        "devices_offline": len(devices) - len(online),
    }


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


# ------------------------------------------------------------------ dashboard and history
HEALTH_ORDER = {"red": 0, "yellow": 1, "green": 2}
HISTORY_HOURS = 6


def running_out_of(device: Device) -> list[str]:
    """What an online device has less than 10 % left of, in words."""
    if not device.is_online:
        return []
    return [
        part
        for part, pct in (
            ("memory", device.ram_percent),
            ("storage", device.storage_percent),
            ("processor time", device.cpu_usage_percent),
        )
        if pct is not None and pct > 90
    ]


def dashboard_cards(devices: list[Device]) -> list[Device]:
    """Each device with its health colour, status words and apps; overloaded ones first."""
    apps = hooks.apps_on_devices([device.pk for device in devices])
    for device in devices:
        device.apps = apps.get(device.pk, [])
        device.health = device_health(device)
        device.help = None if device.status == DeviceStatus.ONLINE else status_help(device)
        device.running_out_of = running_out_of(device)
    return sorted(devices, key=lambda d: (HEALTH_ORDER.get(d.health, 3), d.name.lower()))


def _ago(moment) -> str:
    """ "5 min ago", "3 h ago", "2 days ago", "just now"."""
    seconds = max(0, int((timezone.now() - moment).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    days = seconds // 86400
    return f"{days} day{'s' if days != 1 else ''} ago"


def totals_heading(devices: list[Device]) -> str:
    """What the totals count: "Total resources across 2 online devices (lab-pi offline,
    last seen 5 min ago)". The totals leave out devices that are not online, so say so."""
    online = [d for d in devices if d.status == DeviceStatus.ONLINE]
    others = sorted((d for d in devices if d.status != DeviceStatus.ONLINE), key=lambda d: d.name)
    count = len(online)
    heading = f"Total resources across {count} {'online ' if others else ''}device{'' if count == 1 else 's'}"
    if not others:
        return heading
    notes = []
    for device in others:
        note = f"{device.name} {device.get_status_display().lower()}"
        if device.last_seen:
            note += f", last seen {_ago(device.last_seen)}"
        notes.append(note)
    return f"{heading} ({'; '.join(notes)})"


def device_history(device: Device, *, hours: int = HISTORY_HOURS) -> dict:
    """The device's last `hours` of metrics for its page: sparkline series (RAM and CPU
    percent, None while offline), the 12 latest rows, the count and the availability."""
    since = timezone.now() - timedelta(hours=hours)
    rows = list(
        DeviceMetric.objects.filter(device=device, time__gte=since)
        .order_by("time")
        .values("time", "online", "ram_total_bytes", "ram_used_bytes", "cpu_usage_percent")
    )
    # Keep the sparkline light: at most ~120 points, evenly picked.
    stride = max(1, len(rows) // 120)
    sampled = rows[::stride]
    ram = [
        100.0 * r["ram_used_bytes"] / r["ram_total_bytes"]
        if r["online"] and r["ram_total_bytes"] and r["ram_used_bytes"] is not None
        else None
        for r in sampled
    ]
    cpu = [r["cpu_usage_percent"] if r["online"] else None for r in sampled]
    recent = list(reversed(rows[-12:]))
    for row in recent:
        row["ram_percent"] = (
            100.0 * row["ram_used_bytes"] / row["ram_total_bytes"]
            if row["ram_total_bytes"] and row["ram_used_bytes"] is not None
            else None
        )
    online = sum(1 for r in rows if r["online"])
    return {
        "ram_series": ram,
        "cpu_series": cpu,
        "series_times": [r["time"] for r in sampled],
        "recent": recent,
        "count": len(rows),
        "availability_percent": 100.0 * online / len(rows) if rows else None,
        "hours": hours,
    }

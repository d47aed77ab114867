"""Polling: ask each device what it has, over its kept-open connection, every interval.

`device_poll` runs in a django-q2 task per device (devices.tasks); `devices_poll_all` queues
those tasks for the schedule. What the device reports is parsed by devices.metrics.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from devices import metrics as metrics_module
from devices import ssh
from devices.models import Device, DeviceMetric, DeviceStatus

logger = logging.getLogger(__name__)


def docker_status(m: metrics_module.Metrics, username: str) -> tuple[str, str]:
    """(status, detail) the device gets from what the metrics say about Docker."""
    if not m.docker_installed:
        return DeviceStatus.DOCKER_MISSING, "Docker is not installed on the device."
    if not m.docker_running:
        problem = m.docker_problem.lower()
        if "permission denied" in problem:
            return DeviceStatus.DOCKER_MISSING, (
                f"Docker is installed, but {username} is not allowed to use it."
            )
        return DeviceStatus.DOCKER_MISSING, "Docker is installed but not running on the device."
    if not m.compose_ok:
        return DeviceStatus.DOCKER_MISSING, (
            "Docker runs, but Docker Compose is missing (neither the 'docker compose' plugin "
            "nor 'docker-compose' was found)."
        )
    return DeviceStatus.ONLINE, ""


def metric_fields(m: metrics_module.Metrics) -> dict:
    fields = {
        "ram_total_bytes": m.ram_total_bytes,
        "ram_used_bytes": m.ram_used_bytes,
        "storage_total_bytes": m.storage_total_bytes,
        "storage_used_bytes": m.storage_used_bytes,
        "cpu_cores": m.cpu_cores,
        "cpu_usage_percent": m.cpu_usage_percent,
        "load_1m": m.load_1m,
        "load_5m": m.load_5m,
        "load_15m": m.load_15m,
        "uptime_seconds": m.uptime_seconds,
        "docker_version": m.docker_version,
        "compose_version": m.compose_version,
        "compose_command": m.compose_command,
        "docker_root_dir": m.docker_root_dir,
        "containers_running": m.containers_running,
        "arch": m.arch,
        "os_name": m.os_name,
        "kernel": m.kernel,
        "cpu_counters": m.cpu_counters,
    }
    if m.app_containers is not None:
        # Our apps' containers as this poll found them (devices.containers); the apps'
        # after-poll hooks judge them. Unchanged states are not written again.
        fields["app_containers"] = m.app_containers
    return fields


def history_row(
    device_id: int, m: metrics_module.Metrics | None, *, now, seconds: float | None
) -> DeviceMetric:
    if m is None:
        return DeviceMetric(device_id=device_id, time=now, online=False, poll_seconds=seconds)
    return DeviceMetric(
        device_id=device_id,
        time=now,
        online=True,
        ram_total_bytes=m.ram_total_bytes,
        ram_used_bytes=m.ram_used_bytes,
        storage_total_bytes=m.storage_total_bytes,
        storage_used_bytes=m.storage_used_bytes,
        cpu_usage_percent=m.cpu_usage_percent,
        load_1m=m.load_1m,
        containers_running=m.containers_running,
        poll_seconds=seconds,
    )


def device_poll(*, device_id: int) -> Device:
    """Poll one device over its long-lived connection and record what it reports.

    - success: latest metrics on the device + one DeviceMetric row; status online (or
      docker_missing); missed polls reset.
    - unreachable: missed_polls += 1; offline once it reaches OFFLINE_AFTER_MISSED_POLLS
      (the last metrics stay, shown as stale by the status and last_seen).
    - login refused: auth_failed. Changed host key: host_key_changed with the offered key
      stored; nothing ran on the device.
    - a device already in host_key_changed is not touched at all.
    """
    return poll_once(device_id, count_misses=True)


def poll_once(device_id: int, *, count_misses: bool) -> Device:
    try:
        device = Device.objects.get(pk=device_id)
    except Device.DoesNotExist:
        ssh.connections.close(device_id)
        raise
    if device.status == DeviceStatus.HOST_KEY_CHANGED:
        return device
    started = time.monotonic()
    now = timezone.now()
    queryset = Device.objects.filter(pk=device_id)
    try:
        known_docker = None
        if device.status == DeviceStatus.ONLINE:
            known_docker = {
                "docker_root_dir": device.docker_root_dir,
                "compose_command": device.compose_command,
                "compose_version": device.compose_version,
            }
        m = metrics_module.gather(
            device,
            previous=device.cpu_counters,
            docker_info=lambda: ssh.docker_summary(device),
            known_docker=known_docker,
            shell=lambda command, timeout: ssh.shell_call(
                device, prelude=metrics_module.KEPT_PRELUDE, command=command, timeout=timeout
            ),
        )
    except ssh.HostKeyChanged as exc:
        ssh.connections.close(device_id)
        queryset.update(
            status=DeviceStatus.HOST_KEY_CHANGED,
            offered_host_key_type=exc.new.key_type,
            offered_host_key=exc.new.key_base64,
            status_detail=exc.message,
            last_polled=now,
        )
        logger.warning(
            "Device %s presented a changed host key (%s); stopped all work on it",
            device.name,
            exc.new_fingerprint,
        )
    except ssh.AuthFailed as exc:
        ssh.connections.close(device_id)
        queryset.update(
            status=DeviceStatus.AUTH_FAILED,
            status_detail=exc.message,
            last_polled=now,
            missed_polls=0,
        )
        DeviceMetric.objects.create(
            device_id=device_id, time=now, online=False, poll_seconds=time.monotonic() - started
        )
    except ssh.SSHError as exc:
        ssh.connections.close(device_id)
        threshold = settings.OFFLINE_AFTER_MISSED_POLLS if count_misses else 1
        queryset.update(
            missed_polls=F("missed_polls") + 1, last_polled=now, status_detail=exc.message
        )
        (
            queryset.filter(missed_polls__gte=threshold)
            .exclude(status=DeviceStatus.HOST_KEY_CHANGED)
            .update(status=DeviceStatus.OFFLINE)
        )
        DeviceMetric.objects.create(
            device_id=device_id, time=now, online=False, poll_seconds=time.monotonic() - started
        )
    else:
        seconds = time.monotonic() - started
        status, detail = docker_status(m, device.username)
        # Figures that did not change since the row was read (versions, totals, arch...) are
        # not written again: fewer columns, a shorter statement to build and run.
        changed = {
            name: value
            for name, value in metric_fields(m).items()
            if getattr(device, name) != value
        }
        fields = {
            "status": status,
            "status_detail": detail,
            "missed_polls": 0,
            "last_seen": now,
            "last_polled": now,
            **changed,
        }
        # Two short writes rather than one transaction: with SQLite, a transaction holds the
        # database's one write lock while Django builds its statements (~2 ms), and the
        # other devices' polls, finishing at the same moment, sleep until it is free. A
        # history row without the device's update (or the reverse) is harmless.
        row = history_row(device_id, m, now=now, seconds=seconds)
        updated = queryset.exclude(status=DeviceStatus.HOST_KEY_CHANGED).update(**fields)
        row.save()
        if updated:
            # What was just written, without reading the row back.
            for name, value in fields.items():
                setattr(device, name, value)
            return device
    return Device.objects.get(pk=device_id)


def devices_poll_all() -> int:
    """Queue one poll task per device (never for a device whose identity changed)."""
    from django_q.tasks import async_task

    metrics_prune()
    count = 0
    for device_id in Device.objects.exclude(status=DeviceStatus.HOST_KEY_CHANGED).values_list(
        "pk", flat=True
    ):
        async_task(
            "devices.tasks.poll_device",
            device_id,
            group="device-poll",
            task_name=f"poll-device-{device_id}",
        )
        count += 1
    return count


def metrics_prune() -> int:
    """Delete metric rows older than METRIC_RETENTION_DAYS; returns how many went."""
    cutoff = timezone.now() - timedelta(days=settings.METRIC_RETENTION_DAYS)
    deleted, _ = DeviceMetric.objects.filter(time__lt=cutoff).delete()
    return deleted

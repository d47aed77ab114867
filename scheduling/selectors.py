"""Reads for placement: device snapshots, the configured weights and policy."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, Q
from django.utils import timezone

from devices.models import Device, DeviceMetric
from scheduling import hooks
from scheduling.models import PlacementSettings, Reservation
from scheduling.scoring import DEFAULT_WEIGHTS, DeviceSnapshot, InvalidInput, Policy, Weights

AVAILABILITY_WINDOW = timedelta(days=7)


def placement_config() -> tuple[Weights, Policy]:
    """The weights and policy in force: the admin's row if there is one, else settings.

    settings.PLACEMENT_WEIGHTS (a dict with ram, storage, cpu, load, uptime) and
    settings.PLACEMENT_POLICY ("spread" or "pack") are the defaults; a wrong value there
    stops with a message naming the setting.
    """
    row = PlacementSettings.objects.filter(pk=PlacementSettings.SINGLETON_PK).first()
    if row is not None:
        weights = Weights(
            ram=row.weight_ram,
            storage=row.weight_storage,
            cpu=row.weight_cpu,
            load=row.weight_load,
            uptime=row.weight_uptime,
        )
        return weights, Policy.parse(row.policy)
    return settings_weights(), settings_policy()


def settings_weights() -> Weights:
    configured = getattr(settings, "PLACEMENT_WEIGHTS", None)
    if configured is None:
        return DEFAULT_WEIGHTS
    try:
        return Weights.from_mapping(configured)
    except (InvalidInput, TypeError) as exc:
        raise ImproperlyConfigured(f"PLACEMENT_WEIGHTS is not valid: {exc}") from None


def settings_policy() -> Policy:
    try:
        return Policy.parse(getattr(settings, "PLACEMENT_POLICY", None))
    except InvalidInput as exc:
        raise ImproperlyConfigured(f"PLACEMENT_POLICY is not valid: {exc.message}") from None


def active_reservations(*, now: datetime | None = None):
    now = now or timezone.now()
    return Reservation.objects.filter(released_at__isnull=True, expires_at__gt=now)


def device_availability(
    *, device_ids: Iterable[int] | None = None, now: datetime | None = None
) -> dict[int, float]:
    """Share of polls answered per device over the last 7 days, in percent.

    A device without any poll in the window is absent from the result (unknown).
    """
    now = now or timezone.now()
    metrics = DeviceMetric.objects.filter(time__gte=now - AVAILABILITY_WINDOW, time__lte=now)
    if device_ids is not None:
        metrics = metrics.filter(device_id__in=list(device_ids))
    rows = metrics.values("device_id").annotate(
        polls=Count("id"), answered=Count("id", filter=Q(online=True))
    )
    return {
        row["device_id"]: 100.0 * row["answered"] / row["polls"] for row in rows if row["polls"]
    }


def _deployment_ports(device_ids: list[int]) -> dict[int, set[int]]:
    """Host ports that live apps hold (scheduling.hooks.host_ports_in_use, which the apps
    layer fills)."""
    return hooks.ports_in_use(device_ids)


def device_snapshots(
    *, device_ids: Iterable[int] | None = None, now: datetime | None = None
) -> list[DeviceSnapshot]:
    """Every device (or the given ones) as placement sees it, reservations subtracted.

    Three queries whatever the number of devices: devices, availability, reservations.
    Ports in use come from reservations for now; deployments will add theirs.
    """
    now = now or timezone.now()
    devices = Device.objects.all()
    if device_ids is not None:
        devices = devices.filter(pk__in=list(device_ids))
    devices = list(devices)
    ids = [device.pk for device in devices]
    availability = device_availability(device_ids=ids, now=now)

    reserved_ram: dict[int, int] = defaultdict(int)
    reserved_storage: dict[int, int] = defaultdict(int)
    reserved_cpu: dict[int, float] = defaultdict(float)
    reserved_count: dict[int, int] = defaultdict(int)
    used_ports: dict[int, set[int]] = defaultdict(set)
    for reservation in active_reservations(now=now).filter(device_id__in=ids):
        reserved_ram[reservation.device_id] += reservation.ram_bytes
        reserved_storage[reservation.device_id] += reservation.storage_bytes
        reserved_cpu[reservation.device_id] += reservation.cpu_cores
        reserved_count[reservation.device_id] += 1
        used_ports[reservation.device_id].update(int(p) for p in reservation.ports or [])
    for device_id, ports in _deployment_ports(ids).items():
        used_ports[device_id].update(ports)

    return [
        snapshot_from_device(
            device,
            availability_percent=availability.get(device.pk),
            reserved_ram_bytes=reserved_ram[device.pk],
            reserved_storage_bytes=reserved_storage[device.pk],
            reserved_cpu_cores=reserved_cpu[device.pk],
            reservation_count=reserved_count[device.pk],
            used_ports=frozenset(used_ports[device.pk]),
        )
        for device in devices
    ]


def snapshot_from_device(
    device: Device,
    *,
    availability_percent: float | None = None,
    reserved_ram_bytes: int = 0,
    reserved_storage_bytes: int = 0,
    reserved_cpu_cores: float = 0.0,
    reservation_count: int = 0,
    used_ports: frozenset[int] = frozenset(),
) -> DeviceSnapshot:
    ram_free = device.ram_free_bytes
    storage_free = device.storage_free_bytes
    return DeviceSnapshot(
        device_id=device.pk,
        name=device.name,
        status=device.status,
        ram_total_bytes=device.ram_total_bytes,
        ram_free_bytes=None if ram_free is None else max(ram_free - reserved_ram_bytes, 0),
        storage_total_bytes=device.storage_total_bytes,
        storage_free_bytes=(
            None if storage_free is None else max(storage_free - reserved_storage_bytes, 0)
        ),
        cpu_cores=device.cpu_cores,
        cpu_usage_percent=device.cpu_usage_percent,
        load_1m=device.load_1m,
        availability_percent=availability_percent,
        arch=device.arch,
        docker_version=device.docker_version,
        compose_command=device.compose_command,
        always_on=device.always_on,
        used_ports=used_ports,
        workload_count=(device.containers_running or 0) + reservation_count,
        reserved_ram_bytes=reserved_ram_bytes,
        reserved_storage_bytes=reserved_storage_bytes,
        reserved_cpu_cores=reserved_cpu_cores,
    )

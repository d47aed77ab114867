"""One device at a time, with the figures a poll would have stored."""

from __future__ import annotations

from devices.models import Device
from scheduling.scoring import GIB


def make_device(name: str, *, ram_free_gb: float, ram_total_gb: float = 16, **fields) -> Device:
    values = dict(
        address="192.0.2.10",
        username="root",
        private_key="unused",
        public_key="unused",
        status="online",
        ram_total_bytes=int(ram_total_gb * GIB),
        ram_used_bytes=int((ram_total_gb - ram_free_gb) * GIB),
        storage_total_bytes=500 * GIB,
        storage_used_bytes=200 * GIB,
        cpu_cores=4,
        cpu_usage_percent=20,
        load_1m=0.5,
        arch="x86_64",
        docker_version="24.0.7",
        compose_version="2.40.3",
        compose_command="docker compose",
    )
    values.update(fields)
    return Device.objects.create(name=name, **values)

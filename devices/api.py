"""Devices and resources in the JSON API. Thin: parse, call one service, shape the answer."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Field, Router, Schema
from ninja.errors import HttpError

from devices import groups, history, services
from devices.discovery import discovery_scan
from devices.models import Device, DeviceGroup
from devices.selectors import resources_summary
from devices.ssh import fingerprint

router = Router(tags=["devices"])
resources_router = Router(tags=["resources"])
groups_router = Router(tags=["groups"])

DeviceTypeName = Literal["server", "pi", "nas", "router", "other"]


class DeviceOut(Schema):
    """A device as scripts see it. Never carries a credential."""

    id: int
    name: str
    address: str
    port: int
    username: str
    type: str
    location: str
    always_on: bool
    status: str
    status_detail: str
    last_seen: datetime | None
    ram_total_bytes: int | None
    ram_used_bytes: int | None
    storage_total_bytes: int | None
    storage_used_bytes: int | None
    cpu_cores: float | None
    cpu_usage_percent: float | None
    load_1m: float | None
    uptime_seconds: int | None
    docker_version: str
    compose_version: str
    containers_running: int | None
    arch: str
    os_name: str
    host_key_fingerprint: str = ""
    offered_host_key_fingerprint: str = ""


class DeviceIn(Schema):
    name: str = Field(..., min_length=1, max_length=63)
    address: str = Field(..., min_length=1, max_length=253)
    port: int = Field(22, ge=1, le=65535)
    username: str = Field(..., min_length=1, max_length=32)
    password: str | None = Field(None, max_length=1024)
    private_key: str | None = Field(None, max_length=16384)
    type: DeviceTypeName = "server"
    location: str = Field("", max_length=63)
    always_on: bool = True


class DevicePatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=63)
    address: str | None = Field(None, min_length=1, max_length=253)
    port: int | None = Field(None, ge=1, le=65535)
    username: str | None = Field(None, min_length=1, max_length=32)
    password: str | None = Field(None, max_length=1024)
    private_key: str | None = Field(None, max_length=16384)
    type: DeviceTypeName | None = None
    location: str | None = Field(None, max_length=63)
    always_on: bool | None = None


class ErrorOut(Schema):
    detail: str
    status: str = ""
    field: str | None = None
    fixes: list[str] = []


class DiscoverIn(Schema):
    cidr: str = Field(..., min_length=1, max_length=64)
    # Scanning a network outside the home ranges (RFC 1918, fc00::/7, link-local) needs this.
    confirm_public: bool = False


class AcceptHostKeyIn(Schema):
    # The fingerprint of the new identity the person was shown (GET /devices/{id}'s
    # offered_host_key_fingerprint): a key that changed again since is not accepted.
    fingerprint: str = Field(..., min_length=1, max_length=200)


class CandidateOut(Schema):
    address: str
    port: int
    banner: str
    already_added: bool
    device_id: int | None = None
    device_name: str | None = None


class ResourcesOut(Schema):
    ram_total_bytes: int
    ram_used_bytes: int
    storage_total_bytes: int
    storage_used_bytes: int
    cpu_cores_total: float
    cpu_usage_avg_percent: float
    devices_online: int
    devices_offline: int
    apps_total: int
    apps_running: int
    pooling_saved_ram_bytes: int
    shared_databases_down: list[str]


def _device_out(device: Device) -> dict:
    data = {name: getattr(device, name) for name in DeviceOut.model_fields if hasattr(device, name)}
    data["type"] = device.device_type
    data["host_key_fingerprint"] = fingerprint(device.host_key)
    data["offered_host_key_fingerprint"] = fingerprint(device.offered_host_key) if device.offered_host_key else ""
    return data


@router.get("", response=list[DeviceOut])
def list_devices(request):
    return [_device_out(d) for d in Device.objects.all()]


@router.post("", response={201: DeviceOut, 400: ErrorOut, 409: ErrorOut, 422: ErrorOut})
def add_device(request, payload: DeviceIn):
    if not payload.password and not payload.private_key:
        return 422, {
            "detail": "Give the device's login password (used once, then forgotten) or a private key.",
            "status": "invalid",
            "field": "password",
        }
    device = services.device_add(
        name=payload.name,
        address=payload.address,
        port=payload.port,
        username=payload.username,
        password=payload.password or None,
        private_key=payload.private_key or None,
        device_type=payload.type,
        location=payload.location,
        always_on=payload.always_on,
    )
    return 201, _device_out(device)


@router.get("/{int:device_id}", response={200: DeviceOut, 404: ErrorOut})
def get_device(request, device_id: int):
    return 200, _device_out(_get(device_id))


@router.patch("/{int:device_id}", response={200: DeviceOut, 400: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut})
def update_device(request, device_id: int, payload: DevicePatch):
    device = _get(device_id)
    changes = payload.dict(exclude_unset=True)
    if "type" in changes:
        changes["device_type"] = changes.pop("type")
    changes = {key: value for key, value in changes.items() if value is not None}
    device = services.device_update(device=device, **changes)
    return 200, _device_out(device)


@router.delete("/{int:device_id}", response={204: None, 404: ErrorOut, 409: ErrorOut})
def remove_device(request, device_id: int):
    services.device_remove(device=_get(device_id))
    return 204, None


@router.post("/{int:device_id}/poll", response={200: DeviceOut, 404: ErrorOut})
def poll_device(request, device_id: int):
    device = _get(device_id)
    device = services.device_poll(device_id=device.id)
    return 200, _device_out(device)


@router.post(
    "/{int:device_id}/accept-host-key", response={200: DeviceOut, 400: ErrorOut, 404: ErrorOut, 409: ErrorOut}
)
def accept_host_key(request, device_id: int, payload: AcceptHostKeyIn):
    device = _get(device_id)
    if not device.offered_host_key:
        return 400, {"detail": "This device's identity has not changed; there is nothing to accept."}
    device = services.device_accept_host_key(device=device, fingerprint=payload.fingerprint)
    return 200, _device_out(device)


@router.post("/discover", response={200: list[CandidateOut], 422: ErrorOut, 429: ErrorOut})
def discover(request, payload: DiscoverIn):
    candidates = discovery_scan(
        cidr=payload.cidr, confirm_public=payload.confirm_public, who=f"user:{request.user.pk}"
    )
    return 200, [
        {
            "address": c.address,
            "port": c.port,
            "banner": c.banner,
            "already_added": c.already_added,
            "device_id": getattr(c, "device_id", None),
            "device_name": c.device_name,
        }
        for c in candidates
    ]


@resources_router.get("", response=ResourcesOut)
def resources(request):
    return resources_summary()


def _get(device_id: int) -> Device:
    try:
        return Device.objects.get(pk=device_id)
    except Device.DoesNotExist:
        raise HttpError(404, f"There is no device with id {device_id}.") from None


# --- History ---------------------------------------------------------------------------


class HistoryPointOut(Schema):
    time: datetime
    cpu_percent: float | None
    ram_used_bytes: int | None
    storage_used_bytes: int | None
    load_1m: float | None
    temperature_c: float | None


class HistoryOut(Schema):
    range: str
    points: list[HistoryPointOut]


@router.get(
    "/{int:device_id}/history",
    response={200: HistoryOut, 404: ErrorOut, 422: ErrorOut},
    url_name="device_history",
)
def device_history(request, device_id: int, range: Literal["1h", "24h", "7d", "30d"] = "24h"):
    """The device's CPU, memory, storage, load and temperature over the range, oldest first:
    1h and 24h from the raw checks (at most ~300 points), 7d and 30d hourly averages."""
    device = _get(device_id)
    return 200, {"range": range, "points": history.history_points(device, range_name=range)}


# --- Groups ----------------------------------------------------------------------------


class GroupOut(Schema):
    id: int
    name: str
    description: str
    device_ids: list[int]


class GroupIn(Schema):
    name: str = Field(..., min_length=1, max_length=63)
    description: str = Field("", max_length=300)
    device_ids: list[int] = Field(default_factory=list, max_length=1000)


class GroupPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=63)
    description: str | None = Field(None, max_length=300)
    device_ids: list[int] | None = Field(None, max_length=1000)


def _group_out(group: DeviceGroup) -> dict:
    return {
        "id": group.pk,
        "name": group.name,
        "description": group.description,
        "device_ids": sorted(device.pk for device in group.devices.all()),
    }


@groups_router.get("", response=list[GroupOut])
def list_groups(request):
    return [_group_out(group) for group in DeviceGroup.objects.prefetch_related("devices")]


@groups_router.post("", response={201: GroupOut, 409: ErrorOut, 422: ErrorOut})
def create_group(request, payload: GroupIn):
    group = groups.group_create(name=payload.name, description=payload.description, device_ids=payload.device_ids)
    return 201, _group_out(group)


@groups_router.get("/{int:group_id}", response={200: GroupOut, 404: ErrorOut})
def get_group(request, group_id: int):
    return 200, _group_out(groups.group_get(group_id))


@groups_router.patch("/{int:group_id}", response={200: GroupOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut})
def update_group(request, group_id: int, payload: GroupPatch):
    changes = payload.dict(exclude_unset=True)
    group = groups.group_update(
        group=groups.group_get(group_id),
        name=changes.get("name"),
        description=changes.get("description"),
        device_ids=changes.get("device_ids"),
    )
    return 200, _group_out(group)


@groups_router.delete("/{int:group_id}", response={204: None, 404: ErrorOut})
def delete_group(request, group_id: int):
    groups.group_delete(group=groups.group_get(group_id))
    return 204, None

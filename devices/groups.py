"""Device groups: named sets of devices ("Pi Cluster", "Garage"); a device may be in several.

Services change groups (`group_create`, `group_update`, `group_delete`) and raise
GroupError in plain words; selectors read them (`groups_overview`, `group_page`). The
pages, the API and the admin all call these.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from devices.models import Device, DeviceGroup
from devices.selectors import dashboard_cards, pool_totals
from homelab.core.errors import HomelabError

DESCRIPTION_MAX = 300


class GroupError(HomelabError):
    """A group that cannot be saved as asked: 422 for input, 409 for a taken name, 404."""


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    group = DeviceGroup(name=name)
    try:
        group.clean_fields(exclude=["description"])
    except ValidationError as exc:
        message = " ".join(exc.message_dict.get("name", ["Give the group a name."]))
        if not name:
            message = "Give the group a name, like Pi Cluster or Garage."
        raise GroupError(message, field="name") from None
    return name


def _clean_description(description: str) -> str:
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise GroupError(
            f"Keep the description to {DESCRIPTION_MAX} characters (it has {len(description)}).",
            field="description",
        )
    return description


def _devices(device_ids: Iterable[int]) -> list[Device]:
    wanted = set(device_ids)
    found = list(Device.objects.filter(pk__in=wanted))
    missing = sorted(wanted - {device.pk for device in found})
    if missing:
        raise GroupError(
            f"There is no device with id {', '.join(str(pk) for pk in missing)}.",
            field="device_ids",
            fixes=["Pick devices from the list of your devices (GET /api/v1/devices)."],
        )
    return found


def group_name_taken(name: str, *, group_id: int | None = None) -> bool:
    return DeviceGroup.objects.filter(name__iexact=name).exclude(pk=group_id).exists()


def _taken(name: str) -> GroupError:
    return GroupError(
        f"There is already a group called {name}.",
        field="name",
        code=409,
        fixes=["Choose another name, or add the devices to the existing group."],
    )


@transaction.atomic
def group_create(
    *, name: str, description: str = "", device_ids: Iterable[int] = ()
) -> DeviceGroup:
    name = _clean_name(name)
    description = _clean_description(description)
    members = _devices(device_ids)
    if group_name_taken(name):
        raise _taken(name)
    try:
        with transaction.atomic():
            group = DeviceGroup.objects.create(name=name, description=description)
    except IntegrityError:  # created by someone else meanwhile
        raise _taken(name) from None
    group.devices.set(members)
    return group


@transaction.atomic
def group_update(
    *,
    group: DeviceGroup,
    name: str | None = None,
    description: str | None = None,
    device_ids: Iterable[int] | None = None,
) -> DeviceGroup:
    """Rename, describe or choose the members of a group; None leaves a part as it is."""
    changed = []
    if name is not None:
        name = _clean_name(name)
        if group_name_taken(name, group_id=group.pk):
            raise _taken(name)
        group.name = name
        changed.append("name")
    if description is not None:
        group.description = _clean_description(description)
        changed.append("description")
    if changed:
        try:
            with transaction.atomic():
                group.save(update_fields=changed)
        except IntegrityError:
            raise _taken(group.name) from None
    if device_ids is not None:
        group.devices.set(_devices(device_ids))
    return group


def group_delete(*, group: DeviceGroup) -> None:
    """Forget the group; its devices stay as they are."""
    group.delete()


def group_get(group_id: int) -> DeviceGroup:
    try:
        return DeviceGroup.objects.get(pk=group_id)
    except DeviceGroup.DoesNotExist:
        raise GroupError(f"There is no group with id {group_id}.", code=404) from None


# ------------------------------------------------------------------ reads


def groups_overview() -> list[DeviceGroup]:
    """Every group with `.members` (its devices, by name) and `.pool` (its online members' totals)."""
    groups = list(DeviceGroup.objects.prefetch_related("devices"))
    for group in groups:
        group.members = sorted(group.devices.all(), key=lambda device: device.name.lower())
        group.pool = pool_totals(group.members)
    return groups


def group_page(group: DeviceGroup) -> dict:
    """A group's page: its pool (online members), its members side by side as the
    dashboard's cards (health, figures, what needs attention, apps via devices.hooks), and
    the names of all the apps on them."""
    members = sorted(
        dashboard_cards(list(group.devices.all())), key=lambda device: device.name.lower()
    )
    app_names = sorted({app.name for device in members for app in device.apps}, key=str.lower)
    return {
        "group": group,
        "members": members,
        "pool": pool_totals(members),
        "app_names": app_names,
        "apps_running": sum(1 for device in members for app in device.apps if app.running),
    }

"""Placement services: rank the devices for an app, record a choice, hold reservations.

`placement_rank` is the seeds' SelectOptimalDevice: it gathers the device snapshots
(selectors) and hands them to the pure scoring (scoring.rank_devices). Every door (API,
page, command, the future deployment wizard) calls these functions and nothing below them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from devices.models import Device
from homelab.core.errors import HomelabError, problems_answer
from scheduling import selectors
from scheduling.catalog import known_apps, requirements_for_app
from scheduling.models import PlacementChoice, PlacementSettings, Reservation
from scheduling.scoring import AppRequirements, InvalidInput, Policy, Ranking, Weights, rank_devices

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

# A reservation nobody releases stops counting after this long: by then the polls see
# the app's real usage (or the deployment has failed).
RESERVATION_TTL = timedelta(minutes=15)


class PlacementError(HomelabError):
    """Input placement cannot work with. `field` names it; `code` is the HTTP status."""

    def __init__(self, message: str, *, field: str, code: int = 422, fixes=()):
        super().__init__(message, field=field, code=code, fixes=fixes)

    @classmethod
    def from_invalid(cls, exc: InvalidInput) -> PlacementError:
        return cls(f"{exc.field}: {exc.message}", field=exc.field, code=422)

    def as_json(self) -> dict:
        # invalid input answers in the API's validation shape, as it did before
        if self.code != 422:
            return super().as_json()
        return {
            **problems_answer([{"field": self.field, "message": self.message}]),
            "field": self.field,
            "fixes": list(self.fixes),
        }


def app_requirements(*, slug: str) -> AppRequirements:
    """The requirements of a known app, or PlacementError(404) naming `slug`."""
    requirements = requirements_for_app(slug)
    if requirements is None:
        names = ", ".join(app.slug for app in known_apps())
        raise PlacementError(
            f"slug: no app called {slug!r}. Known apps: {names}.", field="slug", code=404
        )
    return requirements


def requirements_build(
    *,
    name: str = "Custom app",
    min_ram_bytes: int = 0,
    recommended_ram_bytes: int | None = None,
    min_storage_bytes: int = 0,
    recommended_storage_bytes: int | None = None,
    min_cpu_cores: float = 0.0,
    recommended_cpu_cores: float | None = None,
    architectures: Iterable[str] = (),
    ports: Iterable[int] = (),
    always_on: bool = False,
) -> AppRequirements:
    """Ad-hoc requirements (until the marketplace exists); PlacementError names a bad field."""
    try:
        return AppRequirements(
            name=name or "Custom app",
            min_ram_bytes=min_ram_bytes,
            recommended_ram_bytes=recommended_ram_bytes,
            min_storage_bytes=min_storage_bytes,
            recommended_storage_bytes=recommended_storage_bytes,
            min_cpu_cores=min_cpu_cores,
            recommended_cpu_cores=recommended_cpu_cores,
            architectures=frozenset(architectures),
            ports=frozenset(ports),
            always_on=always_on,
        )
    except InvalidInput as exc:
        raise PlacementError.from_invalid(exc) from None


def _resolve(policy: str | Policy | None, weights: Mapping[str, float] | Weights | None):
    configured_weights, configured_policy = selectors.placement_config()
    try:
        chosen_policy = Policy.parse(policy, default=configured_policy)
        if weights is None:
            chosen_weights = configured_weights
        elif isinstance(weights, Weights):
            chosen_weights = weights
        else:
            # Criteria left out keep their configured weight.
            merged = configured_weights.as_dict() | dict(weights)
            chosen_weights = Weights.from_mapping(merged)
    except InvalidInput as exc:
        raise PlacementError.from_invalid(exc) from None
    return chosen_weights, chosen_policy


def placement_rank(
    *,
    requirements: AppRequirements,
    policy: str | Policy | None = None,
    weights: Mapping[str, float] | Weights | None = None,
    device_ids: Iterable[int] | None = None,
    now: datetime | None = None,
) -> Ranking:
    """Rank every device (or the given ones) for the app, best first.

    1. Take the weights and policy from the request, else the admin, else settings.
    2. Snapshot the devices: last poll, availability over 7 days, reservations subtracted.
    3. Score and sort them (scoring.rank_devices, pure).
    """
    chosen_weights, chosen_policy = _resolve(policy, weights)
    snapshots = selectors.device_snapshots(device_ids=device_ids, now=now)
    return rank_devices(snapshots, requirements, weights=chosen_weights, policy=chosen_policy)


def placement_rank_app(
    *,
    slug: str,
    policy: str | Policy | None = None,
    weights: Mapping[str, float] | Weights | None = None,
) -> Ranking:
    """`placement_rank` for a known app; PlacementError(404) for an unknown slug."""
    return placement_rank(requirements=app_requirements(slug=slug), policy=policy, weights=weights)


def requirements_as_dict(requirements: AppRequirements) -> dict:
    return {
        "name": requirements.name,
        "slug": requirements.slug,
        "min_ram_bytes": requirements.min_ram_bytes,
        "recommended_ram_bytes": requirements.recommended_ram_bytes,
        "min_storage_bytes": requirements.min_storage_bytes,
        "recommended_storage_bytes": requirements.recommended_storage_bytes,
        "min_cpu_cores": requirements.min_cpu_cores,
        "recommended_cpu_cores": requirements.recommended_cpu_cores,
        "architectures": sorted(requirements.architectures),
        "ports": sorted(requirements.ports),
        "always_on": requirements.always_on,
    }


def placement_choose(
    *,
    requirements: AppRequirements,
    device_id: int,
    policy: str | Policy | None = None,
    user: AbstractBaseUser | AnonymousUser | None = None,
) -> PlacementChoice:
    """Record that a person picked `device_id` for the app (the manual override).

    The ranking is computed again now, so the record says what was recommended at the
    moment of the choice. A disqualified device may be chosen (the person knows best);
    the record keeps that it was not eligible. Unknown device: PlacementError(404).
    """
    device = Device.objects.filter(pk=device_id).first()
    if device is None:
        raise PlacementError(
            f"device_id: there is no device {device_id}.", field="device_id", code=404
        )
    ranking = placement_rank(requirements=requirements, policy=policy)
    chosen = ranking.candidate(device.pk)
    recommended = ranking.recommended
    return PlacementChoice.objects.create(
        app_slug=requirements.slug,
        app_name=requirements.name,
        requirements=requirements_as_dict(requirements),
        policy=ranking.policy.value,
        chosen_device=device,
        chosen_score=chosen.score if chosen else 0.0,
        chosen_eligible=bool(chosen and chosen.eligible),
        recommended_device_id=recommended.device_id if recommended else None,
        recommended_score=recommended.score if recommended else None,
        user=user if getattr(user, "is_authenticated", False) else None,
    )


def placement_settings_update(
    *, weights: Mapping[str, float], policy: str, instance: PlacementSettings | None = None
) -> PlacementSettings:
    """Save the admin's weights and policy after the same checks the API applies."""
    try:
        checked = Weights.from_mapping(weights)
        checked_policy = Policy.parse(policy)
    except InvalidInput as exc:
        raise PlacementError.from_invalid(exc) from None
    row = instance or PlacementSettings.objects.filter(pk=PlacementSettings.SINGLETON_PK).first()
    row = row or PlacementSettings()
    row.weight_ram = checked.ram
    row.weight_storage = checked.storage
    row.weight_cpu = checked.cpu
    row.weight_load = checked.load
    row.weight_uptime = checked.uptime
    row.policy = checked_policy.value
    row.save()
    return row


def placement_settings_reset() -> None:
    """Drop the admin's row so settings.PLACEMENT_WEIGHTS/PLACEMENT_POLICY apply again."""
    PlacementSettings.objects.all().delete()


def reservation_create(
    *,
    device_id: int,
    label: str,
    ram_bytes: int = 0,
    storage_bytes: int = 0,
    cpu_cores: float = 0.0,
    ports: Iterable[int] = (),
    ttl: timedelta = RESERVATION_TTL,
    now: datetime | None = None,
) -> Reservation:
    """Hold resources on a device for a deployment that is starting."""
    checks = {"ram_bytes": ram_bytes, "storage_bytes": storage_bytes, "cpu_cores": cpu_cores}
    for name, value in checks.items():
        if value < 0:
            raise PlacementError(f"{name}: must be 0 or more.", field=name)
    port_list = sorted({int(p) for p in ports})
    if any(not 1 <= p <= 65535 for p in port_list):
        raise PlacementError("ports: a port is a number from 1 to 65535.", field="ports")
    if ttl <= timedelta(0):
        raise PlacementError("ttl: must be longer than 0 seconds.", field="ttl")
    if not Device.objects.filter(pk=device_id).exists():
        raise PlacementError(
            f"device_id: there is no device {device_id}.", field="device_id", code=404
        )
    now = now or timezone.now()
    return Reservation.objects.create(
        device_id=device_id,
        label=label[:100],
        ram_bytes=ram_bytes,
        storage_bytes=storage_bytes,
        cpu_cores=cpu_cores,
        ports=port_list,
        expires_at=now + ttl,
    )


def reservation_release(*, reservation_id: int, now: datetime | None = None) -> bool:
    """Stop counting a reservation. True when it was active; releasing twice is harmless."""
    with transaction.atomic():
        changed = Reservation.objects.filter(pk=reservation_id, released_at__isnull=True).update(
            released_at=now or timezone.now()
        )
    return changed == 1


def reservations_release(*, reservation_ids: Iterable[int], now: datetime | None = None) -> int:
    """Stop counting several reservations at once (the poll has measured their apps);
    returns how many were still active."""
    ids = [int(pk) for pk in reservation_ids]
    if not ids:
        return 0
    return Reservation.objects.filter(pk__in=ids, released_at__isnull=True).update(
        released_at=now or timezone.now()
    )


def reservations_purge(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Delete released or expired reservations older than `older_than`; returns how many."""
    cutoff = timezone.now() - older_than
    deleted, _ = Reservation.objects.filter(expires_at__lt=cutoff).delete()
    return deleted

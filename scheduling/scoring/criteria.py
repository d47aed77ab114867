"""Steps 1 and 2 of the placement (see scheduling.scoring): why a device cannot take an
app, and the five criteria scored 0-100. Pure."""

from __future__ import annotations

from scheduling.scoring.values import (
    AppRequirements,
    CriterionScores,
    DeviceSnapshot,
    Policy,
    _round1,
)
from scheduling.units import GIB, format_bytes, format_shortfall, normalize_arch

# Under `pack`, an idle device's RAM/storage score grows with its size up to 50 (busy
# devices score 50-100): these are the sizes at which an idle device reaches 25.
PACK_IDLE_RAM_SCALE_BYTES = 16 * GIB
PACK_IDLE_STORAGE_SCALE_BYTES = 1024 * GIB
# Under `pack`, load does not matter until it passes this percentage.
PACK_LOAD_TOLERANCE_PERCENT = 70.0
# Score used for a criterion whose figure is not known yet (neither good nor bad).
UNKNOWN_SCORE = 50.0

_STATUS_REASONS = {
    "offline": "the device is offline (it did not answer the last polls)",
    "pending": "the device has not been checked yet",
    "auth_failed": "the device refuses our login",
    "host_key_changed": "the device's identity changed; accept or reject its new key first",
    "docker_missing": "Docker is missing on the device",
}

_PACK = Policy.PACK


# --- step 1: disqualification -------------------------------------------------------------


def disqualifications(device: DeviceSnapshot, app: AppRequirements) -> list[str]:
    """Every reason the device cannot take the app, in plain words; empty when it can."""
    reasons: list[str] = []
    if device.status != "online":
        reasons.append(_STATUS_REASONS.get(device.status, f"the device is {device.status}"))
    if not device.has_figures:
        if device.status == "online":
            reasons.append("no resource figures yet; wait for the next poll")
    else:
        if device.ram_free_bytes < app.min_ram_bytes:
            free, need = format_shortfall(device.ram_free_bytes, app.min_ram_bytes)
            reasons.append(
                f"{free} RAM free, app needs {need}" + _reserved_note(device.reserved_ram_bytes)
            )
        if device.storage_free_bytes < app.min_storage_bytes:
            free, need = format_shortfall(device.storage_free_bytes, app.min_storage_bytes)
            reasons.append(
                f"{free} storage free, app needs {need}"
                + _reserved_note(device.reserved_storage_bytes)
            )
    if app.architectures:
        arch = normalize_arch(device.arch) if device.arch else ""
        built_for = ", ".join(sorted(app.architectures))
        if not arch:
            reasons.append(f"architecture not known yet; app is built for {built_for}")
        elif arch not in app.architectures:
            reasons.append(f"{arch} device, app is built for {built_for} only")
    if device.status == "online":
        if not device.docker_version:
            reasons.append("Docker is not installed or not running")
        elif not device.compose_command:
            reasons.append(
                "Docker Compose is missing (neither 'docker compose' nor 'docker-compose')"
            )
    taken = sorted(app.ports & device.used_ports)
    if taken:
        words = ", ".join(str(p) for p in taken)
        reasons.append(
            f"port {words} is already in use"
            if len(taken) == 1
            else f"ports {words} are already in use"
        )
    return reasons


def _reserved_note(reserved_bytes: int) -> str:
    if reserved_bytes <= 0:
        return ""
    return f" ({format_bytes(reserved_bytes)} reserved for deployments starting now)"


# --- step 2: criteria ---------------------------------------------------------------------


def _fit(free: float, minimum: float, recommended: float) -> float:
    """0.5 at the minimum rising to 1 at the recommended amount."""
    if free >= recommended:
        return 1.0
    if recommended <= minimum:
        return 1.0
    return 0.5 + 0.5 * (free - minimum) / (recommended - minimum)


def spread_space_score(free: float, total: float, minimum: float, recommended: float) -> float:
    """0-100 for free RAM or storage under `spread`; never decreases as `free` grows.

    40 % of it is how well the app fits (0.5 at its minimum, 1 at its recommended amount);
    60 % is the room left once the app has its recommended amount: half as a share of the
    device (so devices fill evenly), half as how small the app is next to the free space
    (so a big device with the same share free is preferred).
    """
    if total <= 0 or free < minimum:
        return 0.0
    left = max(free - recommended, 0.0)
    share_left = min(left / total, 1.0)
    app_small = left / free if free > 0 else 0.0
    return 100.0 * (0.4 * _fit(free, minimum, recommended) + 0.3 * share_left + 0.3 * app_small)


def pack_space_score(
    free: float, total: float, minimum: float, recommended: float, *, busy: bool, idle_scale: float
) -> float:
    """0-100 for free RAM or storage under `pack`: best fit on busy devices (50-100),
    idle devices below 50 and the larger the better (fewer devices get opened)."""
    if total <= 0 or free < minimum:
        return 0.0
    fit = _fit(free, minimum, recommended)
    if busy:
        used_after = total - free + min(free, recommended)
        return 50.0 + 50.0 * fit * min(max(used_after / total, 0.0), 1.0)
    return 50.0 * fit * total / (total + idle_scale)


def cpu_score(cores: float | None, minimum: float, recommended: float) -> float:
    """Cores against what the app wants, capped at 100 (the seeds' ratio was not)."""
    if cores is None or cores <= 0:
        return UNKNOWN_SCORE if cores is None else 0.0
    if recommended <= 0 or cores >= recommended:
        return 100.0
    if cores >= minimum:
        if recommended <= minimum:
            return 100.0
        return 50.0 + 50.0 * (cores - minimum) / (recommended - minimum)
    return 50.0 * cores / minimum if minimum > 0 else 50.0


def load_score(load_percent: float | None, policy: Policy) -> float:
    if load_percent is None:
        return UNKNOWN_SCORE
    if policy is _PACK:
        if load_percent <= PACK_LOAD_TOLERANCE_PERCENT:
            return 100.0
        over = (load_percent - PACK_LOAD_TOLERANCE_PERCENT) / (100.0 - PACK_LOAD_TOLERANCE_PERCENT)
        return max(100.0 * (1.0 - over), 0.0)
    return min(max(100.0 - load_percent, 0.0), 100.0)


def uptime_score(availability_percent: float | None) -> float:
    if availability_percent is None:
        return UNKNOWN_SCORE
    return min(max(availability_percent, 0.0), 100.0)


def criterion_scores(
    device: DeviceSnapshot, app: AppRequirements, policy: Policy, *, load: float | None = None
) -> CriterionScores:
    """The five criteria, each 0-100. `load` may be passed when already computed."""
    ram_total = float(device.ram_total_bytes or 0)
    ram_free = float(device.ram_free_bytes or 0)
    storage_total = float(device.storage_total_bytes or 0)
    storage_free = float(device.storage_free_bytes or 0)
    if policy is _PACK:
        busy = device.workload_count > 0
        ram = pack_space_score(
            ram_free,
            ram_total,
            app.min_ram_bytes,
            app.recommended_ram_bytes,
            busy=busy,
            idle_scale=PACK_IDLE_RAM_SCALE_BYTES,
        )
        storage = pack_space_score(
            storage_free,
            storage_total,
            app.min_storage_bytes,
            app.recommended_storage_bytes,
            busy=busy,
            idle_scale=PACK_IDLE_STORAGE_SCALE_BYTES,
        )
    else:
        ram = spread_space_score(ram_free, ram_total, app.min_ram_bytes, app.recommended_ram_bytes)
        storage = spread_space_score(
            storage_free, storage_total, app.min_storage_bytes, app.recommended_storage_bytes
        )
    if load is None:
        load = device.load_percent
    return CriterionScores(
        ram=_round1(ram),
        storage=_round1(storage),
        cpu=_round1(cpu_score(device.cpu_cores, app.min_cpu_cores, app.recommended_cpu_cores)),
        load=_round1(load_score(load, policy)),
        uptime=_round1(uptime_score(device.availability_percent)),
    )

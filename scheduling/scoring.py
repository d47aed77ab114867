"""Placement scoring: pure functions over snapshots. No database, no network, no clock.

`rank_devices()` is the whole algorithm, top to bottom:

1. For every device, list the reasons it cannot take the app (`disqualifications()`):
   not online, no figures yet, less free RAM or storage than the minimum, wrong
   architecture, Docker or compose missing, a port the app needs already taken.
2. Score five criteria 0-100 for the policy (`criterion_scores()`):
   ram, storage (free space against what the app needs), cpu (cores against what the app
   recommends), load (current CPU load), uptime (observed availability over the last days).
3. Combine them as a weighted mean (`Weights`, default RAM 40 / storage 30 / CPU 15 /
   load 10 / uptime 5, as in the seeds). An always-on app on a device that is not
   always-on loses `ALWAYS_ON_PENALTY` points. A disqualified device scores 0.
4. Sort: eligible first, then score (highest first, at the one decimal shown), then
   device name, then device id, so equal scores always come out in the same order.
5. Label: the first eligible device is "Recommended", the other eligible ones "OK",
   disqualified ones "Not recommended"; each gets a one-sentence summary.

Where the seeds' sketch was crude: its RAM and storage scores were a step (100/50/0) and
its CPU score grew past 100. Here free RAM and storage score smoothly (more room never
lowers the score under `spread`) and the CPU score is capped at 100.

Policies: `spread` (default) prefers the device with the most room left after the app, so
apps spread out; `pack` prefers busy devices the app fills best (best fit), opening an
idle device only when it must (the largest first), so other devices stay idle and can be
switched off. Under `pack` a device with less room left scores higher on purpose.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from scheduling.units import (  # noqa: F401  (re-exported for callers of the scoring)
    GIB,
    MIB,
    format_bytes,
    format_cores,
    format_percent,
    format_score,
    format_shortfall,
    normalize_arch,
)

RECOMMENDED = "Recommended"
OK = "OK"
NOT_RECOMMENDED = "Not recommended"
NO_DEVICE_MESSAGE = "No device can run this app"

# Points taken off when an always-on app would land on a device that is not always on.
ALWAYS_ON_PENALTY = 15.0
# Points given to a device that already runs a shared database server the app would use
# (no new server to start there: the memory of one is saved).
SHARED_SERVER_BONUS = 5.0
# Under `pack`, an idle device's RAM/storage score grows with its size up to 50 (busy
# devices score 50-100): these are the sizes at which an idle device reaches 25.
PACK_IDLE_RAM_SCALE_BYTES = 16 * GIB
PACK_IDLE_STORAGE_SCALE_BYTES = 1024 * GIB
# Under `pack`, load does not matter until it passes this percentage.
PACK_LOAD_TOLERANCE_PERCENT = 70.0
# Caveats worth a reason on an eligible device.
HIGH_LOAD_PERCENT = 80.0
LOW_AVAILABILITY_PERCENT = 95.0
# Score used for a criterion whose figure is not known yet (neither good nor bad).
UNKNOWN_SCORE = 50.0

CRITERIA = ("ram", "storage", "cpu", "load", "uptime")

_STATUS_REASONS = {
    "offline": "the device is offline (it did not answer the last polls)",
    "pending": "the device has not been checked yet",
    "auth_failed": "the device refuses our login",
    "host_key_changed": "the device's identity changed; accept or reject its new key first",
    "docker_missing": "Docker is missing on the device",
}


class InvalidInput(ValueError):
    """Bad placement input; `field` names what to correct, `message` says how."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _round1(value: float) -> float:
    """Round a non-negative score to one decimal (round() with digits is slow)."""
    return int(value * 10.0 + 0.5) / 10.0


class Policy(StrEnum):
    SPREAD = "spread"
    PACK = "pack"

    @classmethod
    def parse(cls, value: str | Policy | None, *, default: Policy | None = None) -> Policy:
        if value is None or value == "":
            return default or cls.SPREAD
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            choices = ", ".join(p.value for p in cls)
            raise InvalidInput("policy", f"Choose one of {choices}, not {value!r}.") from None


@dataclass(frozen=True, slots=True)
class Weights:
    """How much each criterion counts. Any non-negative numbers with a positive sum."""

    ram: float = 40.0
    storage: float = 30.0
    cpu: float = 15.0
    load: float = 10.0
    uptime: float = 5.0

    def __post_init__(self) -> None:
        for name in CRITERIA:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidInput(f"weights.{name}", f"Enter a number, not {value!r}.")
            if not math.isfinite(value) or value < 0:
                raise InvalidInput(f"weights.{name}", "Enter a number of 0 or more.")
        if self.total <= 0:
            raise InvalidInput("weights", "At least one weight must be above 0.")

    @property
    def total(self) -> float:
        return self.ram + self.storage + self.cpu + self.load + self.uptime

    @classmethod
    def from_mapping(cls, values: Mapping[str, float]) -> Weights:
        unknown = sorted(set(values) - set(CRITERIA))
        if unknown:
            raise InvalidInput(
                f"weights.{unknown[0]}", f"Unknown criterion; use {', '.join(CRITERIA)}."
            )
        return cls(**{name: values[name] for name in CRITERIA if name in values})

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in CRITERIA}


DEFAULT_WEIGHTS = Weights()
_PACK = Policy.PACK


@dataclass(frozen=True, slots=True)
class AppRequirements:
    """What an app needs. A recommended figure left out (None) means the minimum."""

    name: str
    min_ram_bytes: int = 0
    recommended_ram_bytes: int | None = None
    min_storage_bytes: int = 0
    recommended_storage_bytes: int | None = None
    min_cpu_cores: float = 0.0
    recommended_cpu_cores: float | None = None
    architectures: frozenset[str] = frozenset()  # empty: any architecture
    ports: frozenset[int] = frozenset()
    always_on: bool = False
    slug: str = ""
    # devices already running a shared database server this app would use (the caller knows)
    shared_server_devices: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        for name in ("min_ram_bytes", "min_storage_bytes", "min_cpu_cores"):
            _check_non_negative(name, getattr(self, name))
        for base in ("ram_bytes", "storage_bytes", "cpu_cores"):
            minimum = getattr(self, f"min_{base}")
            recommended = getattr(self, f"recommended_{base}")
            if recommended is None:
                object.__setattr__(self, f"recommended_{base}", minimum)
                continue
            _check_non_negative(f"recommended_{base}", recommended)
            if recommended < minimum:
                raise InvalidInput(
                    f"recommended_{base}",
                    f"Must be at least the minimum (min_{base} = {minimum}).",
                )
        ports = frozenset(self.ports)
        for port in ports:
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise InvalidInput(
                    "ports", f"A port is a whole number from 1 to 65535, not {port!r}."
                )
        object.__setattr__(self, "ports", ports)
        object.__setattr__(
            self, "architectures", frozenset(normalize_arch(a) for a in self.architectures if a)
        )


def _check_non_negative(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(name, f"Enter a number, not {value!r}.")
    if not math.isfinite(value) or value < 0:
        raise InvalidInput(name, "Must be 0 or more.")


@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    """One device as placement sees it: figures from the last poll, minus reservations.

    Free RAM and storage already have the active reservations subtracted (the service
    does that); `reserved_*` say how much, for the explanation. None means not known yet.
    """

    device_id: int
    name: str
    status: str = "online"
    ram_total_bytes: int | None = None
    ram_free_bytes: int | None = None
    storage_total_bytes: int | None = None
    storage_free_bytes: int | None = None
    cpu_cores: float | None = None
    cpu_usage_percent: float | None = None
    load_1m: float | None = None
    availability_percent: float | None = None  # share of polls answered, last 7 days
    arch: str = ""
    docker_version: str = ""
    compose_command: str = ""
    always_on: bool = True
    used_ports: frozenset[int] = frozenset()
    workload_count: int = 0  # containers running + active reservations
    reserved_ram_bytes: int = 0
    reserved_storage_bytes: int = 0
    reserved_cpu_cores: float = 0.0

    @property
    def has_figures(self) -> bool:
        return (
            bool(self.ram_total_bytes)
            and self.ram_free_bytes is not None
            and bool(self.storage_total_bytes)
            and self.storage_free_bytes is not None
        )

    @property
    def load_percent(self) -> float | None:
        """Current load 0-100: CPU usage (the 1-minute load per core when usage is not
        known), plus the CPU promised to reservations.

        CPU usage comes first because it is the device's own figure; a load average can be
        the host's when the device is a container (as in the lab) and counts I/O waits.
        """
        cores = self.cpu_cores or 0.0
        if self.cpu_usage_percent is not None:
            observed = self.cpu_usage_percent
        elif self.load_1m is not None and cores > 0:
            observed = 100.0 * self.load_1m / cores
        else:
            return None
        if self.reserved_cpu_cores and cores > 0:
            observed += 100.0 * self.reserved_cpu_cores / cores
        return min(max(observed, 0.0), 100.0)


class CriterionScores(NamedTuple):
    ram: float
    storage: float
    cpu: float
    load: float
    uptime: float

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in CRITERIA}


class Candidate(NamedTuple):
    device_id: int
    device_name: str
    score: float
    scores: CriterionScores
    eligible: bool
    label: str
    reasons: tuple[str, ...]
    summary: str

    def as_dict(self) -> dict:
        return {
            "device_id": self.device_id,
            "device_name": self.device_name,
            "score": self.score,
            "scores": self.scores.as_dict(),
            "eligible": self.eligible,
            "label": self.label,
            "reasons": list(self.reasons),
            "summary": self.summary,
        }


@dataclass(frozen=True, slots=True)
class Ranking:
    app: AppRequirements
    policy: Policy
    weights: Weights
    candidates: tuple[Candidate, ...]  # best first
    message: str
    recommended: Candidate | None = field(default=None)

    @property
    def recommended_device_id(self) -> int | None:
        return self.recommended.device_id if self.recommended else None

    def candidate(self, device_id: int) -> Candidate | None:
        for candidate in self.candidates:
            if candidate.device_id == device_id:
                return candidate
        return None

    def as_dict(self) -> dict:
        return {
            "recommended": self.recommended_device_id,
            "policy": self.policy.value,
            "message": self.message,
            "candidates": [c.as_dict() for c in self.candidates],
        }


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


# --- step 3: combination, and the words -----------------------------------------------------


def combine(scores: CriterionScores, weights: Weights) -> float:
    return (
        scores.ram * weights.ram
        + scores.storage * weights.storage
        + scores.cpu * weights.cpu
        + scores.load * weights.load
        + scores.uptime * weights.uptime
    ) / weights.total


def caveats(
    device: DeviceSnapshot, app: AppRequirements, *, load: float | None = None
) -> list[str]:
    """What is not ideal on a device that can take the app."""
    notes: list[str] = []
    if device.ram_free_bytes is not None and device.ram_free_bytes < app.recommended_ram_bytes:
        notes.append(
            f"{format_bytes(device.ram_free_bytes)} RAM free, below the recommended "
            f"{format_bytes(app.recommended_ram_bytes)}: the app may be slow"
        )
    if (
        device.storage_free_bytes is not None
        and device.storage_free_bytes < app.recommended_storage_bytes
    ):
        notes.append(
            f"low storage: {format_bytes(device.storage_free_bytes)} free, "
            f"recommended {format_bytes(app.recommended_storage_bytes)}"
        )
    if device.cpu_cores is not None and device.cpu_cores < app.recommended_cpu_cores:
        notes.append(
            f"{format_cores(device.cpu_cores)}, app recommends {format_cores(app.recommended_cpu_cores)}"
        )
    if load is not None and load >= HIGH_LOAD_PERCENT:
        notes.append(f"busy: {format_percent(load)} load")
    if device.availability_percent is None:
        notes.append("no poll history yet, so reliability is not known")
    elif device.availability_percent < LOW_AVAILABILITY_PERCENT:
        notes.append(
            f"lower reliability: answered {format_percent(device.availability_percent)} of polls"
        )
    if app.always_on and not device.always_on:
        notes.append("not always on, and this app should run all the time")
    return notes


def summary_sentence(
    device: DeviceSnapshot, app: AppRequirements, *, load: float | None = None
) -> str:
    """'server-02: 6.1 GB RAM free (app needs 512 MB), 40 % load, 99.8 % uptime'."""
    load_words = f"{format_percent(load)} load" if load is not None else "load not known yet"
    uptime_words = (
        f"{format_percent(device.availability_percent)} uptime"
        if device.availability_percent is not None
        else "no uptime history yet"
    )
    always_on = ", always on" if app.always_on and device.always_on else ""
    return (
        f"{device.name}: {format_bytes(device.ram_free_bytes or 0)} RAM free "
        f"(app needs {format_bytes(app.min_ram_bytes)}), {load_words}, {uptime_words}{always_on}"
    )


def score_device(
    device: DeviceSnapshot,
    app: AppRequirements,
    *,
    weights: Weights = DEFAULT_WEIGHTS,
    policy: Policy = Policy.SPREAD,
) -> Candidate:
    """One device's candidate entry; `rank_devices` settles which one is Recommended."""
    blockers = disqualifications(device, app)
    load = device.load_percent
    scores = criterion_scores(device, app, policy, load=load)
    if blockers:
        return Candidate(
            device_id=device.device_id,
            device_name=device.name,
            score=0.0,
            scores=scores,
            eligible=False,
            label=NOT_RECOMMENDED,
            reasons=tuple(blockers),
            summary=f"{device.name}: {blockers[0]}",
        )
    total = combine(scores, weights)
    if app.always_on and not device.always_on:
        total -= ALWAYS_ON_PENALTY
    if device.device_id in app.shared_server_devices:
        total += SHARED_SERVER_BONUS
    return Candidate(
        device_id=device.device_id,
        device_name=device.name,
        score=_round1(min(max(total, 0.0), 100.0)),
        scores=scores,
        eligible=True,
        label=OK,
        reasons=tuple(caveats(device, app, load=load)),
        summary=summary_sentence(device, app, load=load),
    )


def _order(candidate: Candidate) -> tuple:
    return (not candidate.eligible, -candidate.score, candidate.device_name, candidate.device_id)


def rank_devices(
    devices: Iterable[DeviceSnapshot],
    app: AppRequirements,
    *,
    weights: Weights = DEFAULT_WEIGHTS,
    policy: Policy = Policy.SPREAD,
) -> Ranking:
    """Every device scored for the app, best first, with the recommendation (or None)."""
    policy = Policy.parse(policy)
    scored = sorted(
        (score_device(d, app, weights=weights, policy=policy) for d in devices), key=_order
    )
    recommended = None
    if scored and scored[0].eligible:
        top = scored[0]
        recommended = Candidate(
            device_id=top.device_id,
            device_name=top.device_name,
            score=top.score,
            scores=top.scores,
            eligible=True,
            label=RECOMMENDED,
            reasons=top.reasons,
            summary=top.summary,
        )
        scored[0] = recommended
        message = f"Recommended: {top.summary} (score {format_score(top.score)}/100)"
    elif scored:
        message = f"{NO_DEVICE_MESSAGE}: " + "; ".join(c.summary for c in scored)
    else:
        message = f"{NO_DEVICE_MESSAGE}: no devices have been added yet."
    return Ranking(
        app=app,
        policy=policy,
        weights=weights,
        candidates=tuple(scored),
        message=message,
        recommended=recommended,
    )

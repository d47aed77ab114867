"""The values placement works on: its inputs (policy, weights, an app's needs, a device's
figures) and its results (criterion scores, candidates, the ranking). Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from scheduling.units import normalize_arch

CRITERIA = ("ram", "storage", "cpu", "load", "uptime")


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

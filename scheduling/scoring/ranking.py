"""Step 3 of the placement (see scheduling.scoring): the criteria combined into one score,
the words for a person, and the devices in order. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from scheduling.scoring.criteria import criterion_scores, disqualifications
from scheduling.scoring.values import (
    DEFAULT_WEIGHTS,
    AppRequirements,
    Candidate,
    CriterionScores,
    DeviceSnapshot,
    Policy,
    Ranking,
    Weights,
    _round1,
)
from scheduling.units import format_bytes, format_cores, format_percent, format_score

RECOMMENDED = "Recommended"
OK = "OK"
NOT_RECOMMENDED = "Not recommended"
NO_DEVICE_MESSAGE = "No device can run this app"

# Points taken off when an always-on app would land on a device that is not always on.
ALWAYS_ON_PENALTY = 15.0
# Points given to a device that already runs a shared database server the app would use
# (no new server to start there: the memory of one is saved).
SHARED_SERVER_BONUS = 5.0
# Caveats worth a reason on an eligible device.
HIGH_LOAD_PERCENT = 80.0
LOW_AVAILABILITY_PERCENT = 95.0


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

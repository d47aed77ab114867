"""Why the recommended device beat the runner-up, in one sentence. Pure, like the scoring.

`deciding_difference()`:

1. Take each part of the two totals that differs: the five weighted criteria
   (score x weight / total weight), the shared-server bonus and the always-on penalty.
2. The deciding difference is the part that favours the recommended device most.
3. Say it with the figures behind it ("lab-server-1 is less busy: 2 % vs 40 % CPU"); when
   the runner-up is better on something else that counts less, say that too, since a
   person sees it and wonders ("although lab-server-2 has more memory free: ...").
"""

from __future__ import annotations

from scheduling.scoring import (
    ALWAYS_ON_PENALTY,
    SHARED_SERVER_BONUS,
    AppRequirements,
    Candidate,
    DeviceSnapshot,
    Weights,
)
from scheduling.units import format_bytes, format_cores, format_percent

# Parts of a total closer than this (in points) do not decide anything.
TIE_POINTS = 0.05

CRITERION_WORDS = {
    "ram": "Memory",
    "storage": "Storage",
    "cpu": "Processor cores",
    "load": "How busy it is",
    "uptime": "Uptime",
}


def _parts(
    candidate: Candidate, device: DeviceSnapshot, app: AppRequirements, weights: Weights
) -> dict[str, float]:
    parts = {
        name: score * getattr(weights, name) / weights.total
        for name, score in candidate.scores.as_dict().items()
    }
    parts["shared"] = SHARED_SERVER_BONUS if device.device_id in app.shared_server_devices else 0
    parts["always_on"] = -ALWAYS_ON_PENALTY if app.always_on and not device.always_on else 0
    return parts


def _figure(part: str, device: DeviceSnapshot) -> str | None:
    """The figure a person can check for a criterion, or None when it is not known."""
    if part == "ram" and device.ram_free_bytes is not None:
        return format_bytes(device.ram_free_bytes)
    if part == "storage" and device.storage_free_bytes is not None:
        return format_bytes(device.storage_free_bytes)
    if part == "cpu" and device.cpu_cores is not None:
        return format_cores(device.cpu_cores)
    if part == "load" and device.load_percent is not None:
        return format_percent(device.load_percent)
    if part == "uptime" and device.availability_percent is not None:
        return format_percent(device.availability_percent)
    return None


def _words(part: str, better: DeviceSnapshot, worse: DeviceSnapshot) -> str:
    """'<better> is less busy: 2 % vs 40 % CPU' (without a full stop)."""
    if part == "shared":
        return f"{better.name} already runs a shared database server this app would use"
    if part == "always_on":
        return f"{better.name} is always on, and this app should run all the time"
    a, b = _figure(part, better), _figure(part, worse)
    if part == "ram":
        more = (better.ram_free_bytes or 0) >= (worse.ram_free_bytes or 0)
        head = "has more memory free" if more else "fits it more snugly in memory"
        return f"{better.name} {head}: {a} vs {b}" + ("" if more else " free")
    if part == "storage":
        more = (better.storage_free_bytes or 0) >= (worse.storage_free_bytes or 0)
        head = "has more storage free" if more else "fits it more snugly in storage"
        return f"{better.name} {head}: {a} vs {b}" + ("" if more else " free")
    if a is None or b is None:
        return f"{better.name} scores better on {CRITERION_WORDS[part].lower()}"
    if part == "cpu":
        return f"{better.name} has more processor cores: {a} vs {b}"
    if part == "load":
        return f"{better.name} is less busy: {a} vs {b} CPU"
    return f"{better.name} has been more reliable: it answered {a} vs {b} of the checks"


def deciding_difference(
    recommended: Candidate,
    runner_up: Candidate | None,
    *,
    devices: dict[int, DeviceSnapshot],
    app: AppRequirements,
    weights: Weights,
) -> str:
    """One sentence on why `recommended` is ahead of `runner_up` (both eligible), or ''."""
    if runner_up is None or not runner_up.eligible:
        return ""
    first, second = devices.get(recommended.device_id), devices.get(runner_up.device_id)
    if first is None or second is None:
        return ""
    ours = _parts(recommended, first, app, weights)
    theirs = _parts(runner_up, second, app, weights)
    gaps = {part: ours[part] - theirs[part] for part in ours}
    # ties between parts go to the order of `gaps` (the criteria by weight, as listed)
    best = max(gaps, key=lambda part: gaps[part])
    if recommended.score - runner_up.score < TIE_POINTS or gaps[best] < TIE_POINTS:
        return (
            f"{first.name} and {second.name} score the same for this app; "
            f"{first.name} comes first by name."
        )
    sentence = _words(best, first, second)
    worst = min(gaps, key=lambda part: gaps[part])
    if gaps[worst] <= -TIE_POINTS and worst in CRITERION_WORDS:
        sentence += f" (although {_words(worst, second, first)}, which counts less here)"
    return sentence + "."

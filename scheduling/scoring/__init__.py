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

from scheduling.scoring.criteria import (
    PACK_IDLE_RAM_SCALE_BYTES,
    PACK_IDLE_STORAGE_SCALE_BYTES,
    PACK_LOAD_TOLERANCE_PERCENT,
    UNKNOWN_SCORE,
    cpu_score,
    criterion_scores,
    disqualifications,
    load_score,
    pack_space_score,
    spread_space_score,
    uptime_score,
)
from scheduling.scoring.ranking import (
    ALWAYS_ON_PENALTY,
    HIGH_LOAD_PERCENT,
    LOW_AVAILABILITY_PERCENT,
    NO_DEVICE_MESSAGE,
    NOT_RECOMMENDED,
    OK,
    RECOMMENDED,
    SHARED_SERVER_BONUS,
    caveats,
    combine,
    rank_devices,
    score_device,
    summary_sentence,
)
from scheduling.scoring.values import (
    CRITERIA,
    DEFAULT_WEIGHTS,
    AppRequirements,
    Candidate,
    CriterionScores,
    DeviceSnapshot,
    InvalidInput,
    Policy,
    Ranking,
    Weights,
)
from scheduling.units import (
    GIB,
    MIB,
    format_bytes,
    format_cores,
    format_percent,
    format_score,
    format_shortfall,
    normalize_arch,
)

__all__ = [
    "ALWAYS_ON_PENALTY",
    "CRITERIA",
    "DEFAULT_WEIGHTS",
    "GIB",
    "HIGH_LOAD_PERCENT",
    "LOW_AVAILABILITY_PERCENT",
    "MIB",
    "NOT_RECOMMENDED",
    "NO_DEVICE_MESSAGE",
    "OK",
    "PACK_IDLE_RAM_SCALE_BYTES",
    "PACK_IDLE_STORAGE_SCALE_BYTES",
    "PACK_LOAD_TOLERANCE_PERCENT",
    "RECOMMENDED",
    "SHARED_SERVER_BONUS",
    "UNKNOWN_SCORE",
    "AppRequirements",
    "Candidate",
    "CriterionScores",
    "DeviceSnapshot",
    "InvalidInput",
    "Policy",
    "Ranking",
    "Weights",
    "caveats",
    "combine",
    "cpu_score",
    "criterion_scores",
    "disqualifications",
    "format_bytes",
    "format_cores",
    "format_percent",
    "format_score",
    "format_shortfall",
    "load_score",
    "normalize_arch",
    "pack_space_score",
    "rank_devices",
    "score_device",
    "spread_space_score",
    "summary_sentence",
    "uptime_score",
]

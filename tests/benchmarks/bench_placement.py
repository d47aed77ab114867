"""Placement benchmark: ranking speed and a placement simulation. Prints figures.

Run: .venv/bin/pytest tests/benchmarks/bench_placement.py -q -s

1. Time to rank 1,000 and 10,000 devices for one app (median of several runs).
   Goal: 1,000 devices in under 50 ms.
2. Simulation: app instances with the stand-in catalog's requirements arrive one by one
   (seeded shuffle) on synthetic heterogeneous fleets; each strategy places them with the
   same eligibility rules (scoring.disqualifications) and the same consumption (an
   instance uses its minimum plus a third of the way to its recommended RAM and storage,
   `steady_use`). Strategies: spread and pack (rank_devices),
   first-fit (fleet order), first-fit-decreasing (largest minimum RAM first, then
   first-fit), random (a seeded random eligible device).
   Reported: apps placed, refused, peak and mean device RAM utilisation, idle devices.
   Goals: spread never refuses an app first-fit could place and keeps peak utilisation
   below first-fit's; pack leaves at least as many devices idle as first-fit-decreasing.
   Scenarios: the apps fit (10 devices with 100 apps, 100 devices with 200 and 1,000)
   and overload (10 devices with 200 apps, 100 devices with 1,500: more RAM used than
   there is), where every strategy ends with full devices and refuses some apps, so the
   peak is 100 % for all and refusals are compared by count.

No timing assertion here (DESIGN.md: benchmarks print, they do not fail on speed).
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import time

import pytest

from scheduling.catalog import known_apps, requirements_for_app
from scheduling.scoring import (
    GIB,
    AppRequirements,
    DeviceSnapshot,
    Policy,
    disqualifications,
    rank_devices,
)

pytestmark = pytest.mark.benchmark

SEED = 20260101

# (kind, RAM GB, storage GB, cores, arch, always on, share of a fleet)
DEVICE_KINDS = [
    ("pi-3", 1, 32, 4, "armv7l", True, 0.08),
    ("pi-4-2g", 2, 64, 4, "aarch64", True, 0.10),
    ("pi-4-4g", 4, 128, 4, "aarch64", True, 0.14),
    ("pi-5-8g", 8, 256, 4, "aarch64", True, 0.12),
    ("nas", 8, 4000, 4, "x86_64", True, 0.12),
    ("old-laptop", 8, 256, 2, "x86_64", False, 0.12),
    ("mini-pc", 16, 512, 8, "x86_64", True, 0.16),
    ("server-32g", 32, 2000, 12, "x86_64", True, 0.10),
    ("server-64g", 64, 4000, 16, "x86_64", True, 0.06),
]

# How often each app shows up among the instances (small apps are the common ones).
APP_POPULARITY = {
    "uptime-kuma": 14,
    "adguard-home": 12,
    "vaultwarden": 14,
    "portainer": 12,
    "nginx-proxy-manager": 10,
    "home-assistant": 10,
    "paperless-ngx": 9,
    "nextcloud": 9,
    "jellyfin": 6,
    "immich": 4,
}


# A homelab built around a few mini PCs and servers (plus the odd Pi).
SERVER_HEAVY_KINDS = [
    ("pi-5-8g", 8, 256, 4, "aarch64", True, 0.10),
    ("mini-pc", 16, 512, 8, "x86_64", True, 0.40),
    ("server-32g", 32, 2000, 12, "x86_64", True, 0.35),
    ("server-64g", 64, 4000, 16, "x86_64", True, 0.15),
]


def synthetic_fleet(size: int, rng: random.Random, kinds_table=None) -> list[DeviceSnapshot]:
    kinds = list(kinds_table or DEVICE_KINDS)
    shares = [k[-1] for k in kinds]
    fleet = []
    for index in range(size):
        kind, ram_gb, storage_gb, cores, arch, always_on, _ = rng.choices(kinds, weights=shares)[0]
        ram_total = ram_gb * GIB
        storage_total = storage_gb * GIB
        fleet.append(
            DeviceSnapshot(
                device_id=index + 1,
                name=f"{kind}-{index + 1:05d}",
                ram_total_bytes=ram_total,
                ram_free_bytes=int(ram_total * (1 - rng.uniform(0.10, 0.25))),  # OS and friends
                storage_total_bytes=storage_total,
                storage_free_bytes=int(storage_total * (1 - rng.uniform(0.05, 0.40))),
                cpu_cores=float(cores),
                cpu_usage_percent=rng.uniform(2, 25),
                load_1m=None,
                availability_percent=rng.choice([100.0, 99.9, 99.5, 98.0, 93.0]),
                arch=arch,
                docker_version="24.0.7",
                compose_command="docker compose",
                always_on=always_on,
            )
        )
    return fleet


def app_instances(count: int, rng: random.Random) -> list[AppRequirements]:
    """`count` instances; each gets its own host port, as the recipe renderer would map."""
    slugs = list(APP_POPULARITY)
    weights = [APP_POPULARITY[s] for s in slugs]
    instances = []
    for index in range(count):
        app = requirements_for_app(rng.choices(slugs, weights=weights)[0])
        instances.append(
            dataclasses.replace(app, name=f"{app.name} #{index}", ports=frozenset({20000 + index}))
        )
    return instances


def steady_use(minimum: int, recommended: int) -> int:
    """What an instance uses once running: its minimum plus a third of the way to the
    recommended figure (homelab apps mostly idle well below their recommendation)."""
    return minimum + (recommended - minimum) // 3


def consume(device: DeviceSnapshot, app: AppRequirements) -> DeviceSnapshot:
    """The device after the app lands on it and runs."""
    ram = min(device.ram_free_bytes, steady_use(app.min_ram_bytes, app.recommended_ram_bytes))
    storage = min(
        device.storage_free_bytes,
        steady_use(app.min_storage_bytes, app.recommended_storage_bytes),
    )
    return dataclasses.replace(
        device,
        ram_free_bytes=device.ram_free_bytes - ram,
        storage_free_bytes=device.storage_free_bytes - storage,
        reserved_ram_bytes=device.reserved_ram_bytes + ram,
        reserved_storage_bytes=device.reserved_storage_bytes + storage,
        reserved_cpu_cores=device.reserved_cpu_cores + app.min_cpu_cores,
        used_ports=device.used_ports | app.ports,
        workload_count=device.workload_count + 1,
    )


def choose_ranked(policy: Policy):
    def choose(fleet, app, rng):
        ranking = rank_devices(fleet, app, policy=policy)
        return None if ranking.recommended is None else ranking.recommended.device_id

    return choose


def choose_first_fit(fleet, app, rng):
    for device in fleet:
        if not disqualifications(device, app):
            return device.device_id
    return None


def choose_random(fleet, app, rng):
    eligible = [d.device_id for d in fleet if not disqualifications(d, app)]
    return rng.choice(eligible) if eligible else None


STRATEGIES = {
    "spread": (choose_ranked(Policy.SPREAD), False),
    "pack": (choose_ranked(Policy.PACK), False),
    "first-fit": (choose_first_fit, False),
    "first-fit-decreasing": (choose_first_fit, True),
    "random": (choose_random, False),
}


@dataclasses.dataclass
class Outcome:
    placed: int
    refused: set[int]
    peak_percent: float
    mean_percent: float
    idle: int
    seconds: float


def simulate(
    strategy: str, fleet: list[DeviceSnapshot], instances: list[AppRequirements]
) -> Outcome:
    choose, decreasing = STRATEGIES[strategy]
    rng = random.Random(SEED)
    order = list(range(len(instances)))
    if decreasing:
        order.sort(
            key=lambda i: (-instances[i].min_ram_bytes, -instances[i].recommended_ram_bytes, i)
        )
    state = list(fleet)
    position = {device.device_id: index for index, device in enumerate(state)}
    refused: set[int] = set()
    started = time.perf_counter()
    for i in order:
        device_id = choose(state, instances[i], rng)
        if device_id is None:
            refused.add(i)
            continue
        at = position[device_id]
        state[at] = consume(state[at], instances[i])
    seconds = time.perf_counter() - started
    utilisation = [
        100.0 * (d.ram_total_bytes - d.ram_free_bytes) / d.ram_total_bytes for d in state
    ]
    return Outcome(
        placed=len(instances) - len(refused),
        refused=refused,
        peak_percent=max(utilisation),
        mean_percent=statistics.fmean(utilisation),
        idle=sum(1 for d in state if d.workload_count == 0),
        seconds=seconds,
    )


def test_ranking_speed(report):
    """Wall time and CPU time: on a shared machine the CPU time shows the code's own cost."""
    rng = random.Random(SEED)
    app = requirements_for_app("nextcloud")
    report("")
    report("Ranking speed (one app, heterogeneous devices, median of runs)")
    for size, runs in ((1_000, 25), (10_000, 7)):
        fleet = synthetic_fleet(size, rng)
        walls, cpus = [], []
        for _ in range(runs):
            wall, cpu = time.perf_counter(), time.process_time()
            ranking = rank_devices(fleet, app)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        assert len(ranking.candidates) == size
        wall_ms, cpu_ms = statistics.median(walls) * 1000, statistics.median(cpus) * 1000
        goal = ""
        if size == 1_000:
            goal = "  (goal < 50 ms: " + ("met" if wall_ms < 50 else "NOT met") + ")"
        report(
            f"  {size:>6,} devices: median {wall_ms:7.1f} ms wall, {cpu_ms:7.1f} ms CPU; "
            f"fastest {min(walls) * 1000:7.1f} ms over {runs} runs{goal}"
        )


@pytest.mark.parametrize(
    ("fleet_size", "instance_count", "profile"),
    [
        (10, 100, "mixed"),
        (10, 200, "mixed"),
        (10, 200, "server-heavy"),
        (100, 200, "mixed"),
        (100, 1000, "mixed"),
        (100, 1500, "mixed"),
    ],
)
def test_placement_simulation(fleet_size, instance_count, profile, report):
    # The same fleet for every instance count, so the scenarios differ only in load.
    kinds = SERVER_HEAVY_KINDS if profile == "server-heavy" else DEVICE_KINDS
    fleet = synthetic_fleet(fleet_size, random.Random(SEED + fleet_size), kinds)
    instances = app_instances(instance_count, random.Random(SEED + instance_count))
    capacity = sum(d.ram_free_bytes for d in fleet)
    demand = sum(steady_use(a.min_ram_bytes, a.recommended_ram_bytes) for a in instances)
    outcomes = {name: simulate(name, fleet, instances) for name in STRATEGIES}

    report("")
    report(
        f"Simulation: {instance_count} app instances of {len(known_apps())} catalog apps "
        f"onto {fleet_size} {profile} devices; free RAM {capacity / GIB:.0f} GB, "
        f"apps use {demand / GIB:.0f} GB ({100 * demand / capacity:.0f} % of it)"
    )
    report(
        f"  {'strategy':<22}{'placed':>7}{'refused':>8}{'peak RAM':>10}{'mean device':>12}{'idle':>6}{'time':>9}"
    )
    for name, o in outcomes.items():
        report(
            f"  {name:<22}{o.placed:>7}{len(o.refused):>8}{o.peak_percent:>9.1f}%"
            f"{o.mean_percent:>11.1f}%{o.idle:>6}{o.seconds:>8.2f}s"
        )
    spread, pack = outcomes["spread"], outcomes["pack"]
    first_fit, ffd = outcomes["first-fit"], outcomes["first-fit-decreasing"]
    only_spread = sorted(spread.refused - first_fit.refused)
    report("  goals:")
    report(
        "    spread refuses nothing first-fit placed: "
        + ("met" if not only_spread else f"NOT met ({len(only_spread)} apps)")
        + f"; spread placed {spread.placed}, first-fit {first_fit.placed}"
    )
    report(
        f"    spread peak {spread.peak_percent:.1f}% < first-fit peak {first_fit.peak_percent:.1f}%: "
        + ("met" if spread.peak_percent < first_fit.peak_percent else "NOT met")
    )
    report(
        f"    pack idle {pack.idle} >= first-fit-decreasing idle {ffd.idle}: "
        + ("met" if pack.idle >= ffd.idle else "NOT met")
    )
    assert spread.placed + len(spread.refused) == instance_count

"""Properties of the scoring that must hold for any homelab and any app (hypothesis)."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduling.scoring import (
    CRITERIA,
    GIB,
    MIB,
    AppRequirements,
    DeviceSnapshot,
    Policy,
    Weights,
    disqualifications,
    rank_devices,
    score_device,
)

ARCHES = ["x86_64", "aarch64", "armv7l", ""]
PORTS = [22, 53, 80, 443, 8080, 8123]

sizes = st.integers(min_value=0, max_value=256 * GIB)
policies = st.sampled_from(list(Policy))


@st.composite
def devices(draw, device_id: int | None = None) -> DeviceSnapshot:
    ram_total = draw(st.one_of(st.none(), st.integers(min_value=64 * MIB, max_value=256 * GIB)))
    storage_total = draw(
        st.one_of(st.none(), st.integers(min_value=1 * GIB, max_value=16384 * GIB))
    )
    return DeviceSnapshot(
        device_id=device_id if device_id is not None else draw(st.integers(1, 10**6)),
        name=draw(st.sampled_from(["nas", "pi-4", "server-01", "server-02", "laptop", "zero"])),
        status=draw(st.sampled_from(["online", "online", "online", "offline", "auth_failed"])),
        ram_total_bytes=ram_total,
        ram_free_bytes=None if ram_total is None else draw(st.integers(0, ram_total)),
        storage_total_bytes=storage_total,
        storage_free_bytes=None if storage_total is None else draw(st.integers(0, storage_total)),
        cpu_cores=draw(st.one_of(st.none(), st.floats(0.25, 64))),
        cpu_usage_percent=draw(st.one_of(st.none(), st.floats(0, 100))),
        load_1m=draw(st.one_of(st.none(), st.floats(0, 50))),
        availability_percent=draw(st.one_of(st.none(), st.floats(0, 100))),
        arch=draw(st.sampled_from(ARCHES)),
        docker_version=draw(st.sampled_from(["24.0.7", "20.10.24", ""])),
        compose_command=draw(st.sampled_from(["docker compose", "docker-compose", ""])),
        always_on=draw(st.booleans()),
        used_ports=frozenset(draw(st.lists(st.sampled_from(PORTS), max_size=3))),
        workload_count=draw(st.integers(0, 20)),
        reserved_ram_bytes=draw(st.integers(0, 4 * GIB)),
        reserved_cpu_cores=draw(st.floats(0, 4)),
    )


@st.composite
def apps(draw) -> AppRequirements:
    min_ram = draw(st.integers(0, 16 * GIB))
    min_storage = draw(st.integers(0, 512 * GIB))
    min_cores = draw(st.floats(0, 8))
    return AppRequirements(
        name="app",
        min_ram_bytes=min_ram,
        recommended_ram_bytes=min_ram + draw(st.integers(0, 16 * GIB)),
        min_storage_bytes=min_storage,
        recommended_storage_bytes=min_storage + draw(st.integers(0, 512 * GIB)),
        min_cpu_cores=min_cores,
        recommended_cpu_cores=min_cores + draw(st.floats(0, 8)),
        architectures=frozenset(
            draw(st.lists(st.sampled_from(["amd64", "arm64", "arm/v7"]), max_size=2))
        ),
        ports=frozenset(draw(st.lists(st.sampled_from(PORTS), max_size=2))),
        always_on=draw(st.booleans()),
    )


@st.composite
def fleets(draw) -> list[DeviceSnapshot]:
    ids = draw(st.lists(st.integers(1, 10**6), min_size=0, max_size=8, unique=True))
    return [draw(devices(device_id=i)) for i in ids]


weights = st.builds(
    Weights,
    ram=st.floats(0, 100),
    storage=st.floats(0, 100),
    cpu=st.floats(0, 100),
    load=st.floats(0, 100),
    uptime=st.floats(0.01, 100),  # keeps the sum positive
)


@settings(max_examples=150, deadline=None)
@given(fleet=fleets(), app=apps(), policy=policies, weights=weights)
def test_a_disqualified_device_is_never_recommended(fleet, app, policy, weights):
    ranking = rank_devices(fleet, app, weights=weights, policy=policy)
    if ranking.recommended is not None:
        chosen = next(d for d in fleet if d.device_id == ranking.recommended.device_id)
        assert disqualifications(chosen, app) == []
        assert ranking.recommended.eligible
    else:
        assert all(not c.eligible for c in ranking.candidates)
    for snapshot in fleet:
        candidate = ranking.candidate(snapshot.device_id)
        assert candidate.eligible == (disqualifications(snapshot, app) == [])


@settings(max_examples=150, deadline=None)
@given(fleet=fleets(), app=apps(), policy=policies, weights=weights)
def test_every_score_is_within_0_and_100(fleet, app, policy, weights):
    for candidate in rank_devices(fleet, app, weights=weights, policy=policy).candidates:
        assert 0 <= candidate.score <= 100
        for name in CRITERIA:
            assert 0 <= getattr(candidate.scores, name) <= 100


@settings(max_examples=150, deadline=None)
@given(fleet=fleets(), app=apps(), policy=policies, data=st.data())
def test_the_result_does_not_depend_on_the_order_of_devices(fleet, app, policy, data):
    shuffled = data.draw(st.permutations(fleet))
    assert rank_devices(fleet, app, policy=policy) == rank_devices(shuffled, app, policy=policy)


@settings(max_examples=400, deadline=None)
@given(
    device=devices(),
    app=apps(),
    weights=weights,
    extra=st.floats(0, 1),
    what=st.sampled_from(["ram", "storage"]),
)
def test_more_free_ram_or_storage_never_lowers_the_score(device, app, weights, extra, what):
    """Under spread (the default). Pack prefers fuller devices on purpose (best fit)."""
    total = getattr(device, f"{what}_total_bytes")
    free = getattr(device, f"{what}_free_bytes")
    if total is None:
        return
    more = free + int((total - free) * extra)
    roomier = dataclasses.replace(device, **{f"{what}_free_bytes": more})
    before = score_device(device, app, weights=weights, policy=Policy.SPREAD)
    after = score_device(roomier, app, weights=weights, policy=Policy.SPREAD)
    assert after.score >= before.score
    assert getattr(after.scores, what) >= getattr(before.scores, what)
    if before.eligible:
        assert after.eligible

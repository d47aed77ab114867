"""A placement the person can follow (issue 14, item 11): the deciding difference between
the recommended device and the runner-up, and a shared database server counted in a
device's favour. Pure: snapshots in, words out."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduling.explain import CRITERION_WORDS, _parts, deciding_difference
from scheduling.scoring import (
    GIB,
    MIB,
    SHARED_SERVER_BONUS,
    AppRequirements,
    DeviceSnapshot,
    Policy,
    rank_devices,
    score_device,
)
from tests.unit.scheduling.test_placement_properties import apps, devices

N8N = AppRequirements(
    name="n8n",
    min_ram_bytes=256 * MIB,
    recommended_ram_bytes=1 * GIB,
    min_storage_bytes=1 * GIB,
    recommended_storage_bytes=5 * GIB,
    min_cpu_cores=0.5,
    recommended_cpu_cores=1,
)


def lab_server(device_id: int, name: str, *, ram_free_gib: float, cpu: float) -> DeviceSnapshot:
    return DeviceSnapshot(
        device_id=device_id,
        name=name,
        ram_total_bytes=8 * GIB,
        ram_free_bytes=int(ram_free_gib * GIB),
        storage_total_bytes=100 * GIB,
        storage_free_bytes=60 * GIB,
        cpu_cores=2,
        cpu_usage_percent=cpu,
        availability_percent=100,
        arch="x86_64",
        docker_version="27.0",
        compose_command="docker compose",
    )


def _explain(snapshots, app):
    ranking = rank_devices(snapshots, app)
    first, second = ranking.candidates[0], ranking.candidates[1]
    sentence = deciding_difference(
        first,
        second,
        devices={s.device_id: s for s in snapshots},
        app=app,
        weights=ranking.weights,
    )
    return ranking, sentence


def test_the_less_busy_device_wins_and_the_sentence_says_so_with_the_figures():
    one = lab_server(1, "lab-server-1", ram_free_gib=3.5, cpu=2)
    two = lab_server(2, "lab-server-2", ram_free_gib=3.5, cpu=40)
    ranking, sentence = _explain([one, two], N8N)
    assert ranking.recommended.device_name == "lab-server-1"
    assert sentence == "lab-server-1 is less busy: 2 % vs 40 % CPU."


def test_what_the_runner_up_does_better_is_said_as_counting_less():
    one = lab_server(1, "lab-server-1", ram_free_gib=3, cpu=2)
    two = lab_server(2, "lab-server-2", ram_free_gib=3.4, cpu=60)
    ranking, sentence = _explain([one, two], N8N)
    assert ranking.recommended.device_name == "lab-server-1"
    assert sentence.startswith("lab-server-1 is less busy: 2 % vs 60 % CPU (although ")
    assert "lab-server-2 has more memory free: 3.4 GB vs 3 GB, which counts less here)." in sentence


def test_a_shared_server_the_app_would_use_counts_in_the_devices_favour():
    # the case: lab-server-2 a little behind on its own, but it runs the shared
    # PostgreSQL n8n would use
    one = lab_server(1, "lab-server-1", ram_free_gib=3.5, cpu=2)
    two = lab_server(2, "lab-server-2", ram_free_gib=3.5, cpu=20)
    assert rank_devices([one, two], N8N).recommended.device_name == "lab-server-1"
    app = dataclasses.replace(N8N, shared_server_devices=frozenset({2}))
    ranking, sentence = _explain([one, two], app)
    assert ranking.recommended.device_name == "lab-server-2"
    assert sentence.startswith(
        "lab-server-2 already runs a shared database server this app would use"
    )
    assert "lab-server-1 is less busy: 2 % vs 20 % CPU, which counts less here" in sentence


def test_only_one_possible_device_needs_no_comparison():
    one = lab_server(1, "lab-server-1", ram_free_gib=3.5, cpu=2)
    down = dataclasses.replace(lab_server(2, "lab-pi", ram_free_gib=3.5, cpu=2), status="offline")
    _, sentence = _explain([one, down], N8N)
    assert sentence == ""


def test_equal_devices_are_said_to_score_the_same():
    one = lab_server(1, "lab-server-1", ram_free_gib=3.5, cpu=10)
    two = lab_server(2, "lab-server-2", ram_free_gib=3.5, cpu=10)
    _, sentence = _explain([one, two], N8N)
    assert sentence == (
        "lab-server-1 and lab-server-2 score the same for this app; lab-server-1 comes first by name."
    )


@settings(max_examples=200, deadline=None)
@given(device=devices(device_id=7), app=apps(), policy=st.sampled_from(list(Policy)))
def test_the_shared_server_bonus_never_lowers_a_score_and_adds_at_most_its_points(
    device, app, policy
):
    without = score_device(device, app, policy=policy)
    with_bonus = score_device(
        device, dataclasses.replace(app, shared_server_devices=frozenset({7})), policy=policy
    )
    assert without.score <= with_bonus.score <= without.score + SHARED_SERVER_BONUS + 0.05
    if not without.eligible:
        assert with_bonus.score == 0.0  # a device that cannot run the app stays out
    # a bonus for another device changes nothing here
    other = dataclasses.replace(app, shared_server_devices=frozenset({8}))
    assert score_device(device, other, policy=policy) == without


@settings(max_examples=200, deadline=None)
@given(
    first=devices(device_id=1),
    second=devices(device_id=2),
    app=apps(),
    shared=st.sets(st.sampled_from([1, 2])),
    policy=st.sampled_from(list(Policy)),
)
def test_the_sentence_names_something_the_recommended_device_really_does_better(
    first, second, app, shared, policy
):
    app = dataclasses.replace(app, shared_server_devices=frozenset(shared))
    ranking = rank_devices([first, second], app, policy=policy)
    top, runner_up = ranking.candidates
    snapshots = {1: first, 2: second}
    sentence = deciding_difference(
        top, runner_up, devices=snapshots, app=app, weights=ranking.weights
    )
    if not (top.eligible and runner_up.eligible):
        assert sentence == ""
        return
    winner, loser = snapshots[top.device_id], snapshots[runner_up.device_id]
    assert sentence.endswith(".")
    if "score the same" in sentence:
        return
    assert sentence.startswith(winner.name + " ")
    ours = _parts(top, winner, app, ranking.weights)
    theirs = _parts(runner_up, loser, app, ranking.weights)
    named = [
        part
        for part, words in (
            ("shared", "shared database server"),
            ("always_on", "is always on"),
            ("ram", "memory"),
            ("storage", "storage"),
            ("cpu", "processor cores"),
            ("load", "less busy"),
            ("uptime", "reliable"),
        )
        if words in sentence.split(" (although ")[0]
        or (part in CRITERION_WORDS and CRITERION_WORDS[part].lower() in sentence.split(" (")[0])
    ]
    assert named, sentence
    assert ours[named[0]] > theirs[named[0]], sentence

"""The pure scoring: the seeds' example, disqualification, labels, words, policies."""

from __future__ import annotations

import dataclasses

import pytest

from scheduling.scoring import (
    GIB,
    MIB,
    NO_DEVICE_MESSAGE,
    NOT_RECOMMENDED,
    OK,
    RECOMMENDED,
    AppRequirements,
    DeviceSnapshot,
    InvalidInput,
    Policy,
    Weights,
    cpu_score,
    format_bytes,
    rank_devices,
    spread_space_score,
)


def device(device_id: int, name: str, **figures) -> DeviceSnapshot:
    values = dict(
        ram_total_bytes=16 * GIB,
        ram_free_bytes=8 * GIB,
        storage_total_bytes=500 * GIB,
        storage_free_bytes=300 * GIB,
        cpu_cores=4.0,
        cpu_usage_percent=20.0,
        availability_percent=99.8,
        arch="x86_64",
        docker_version="24.0.7",
        compose_command="docker compose",
    )
    values.update(figures)
    return DeviceSnapshot(device_id=device_id, name=name, **values)


VAULTWARDEN = AppRequirements(
    name="Vaultwarden",
    min_ram_bytes=512 * MIB,
    recommended_ram_bytes=1 * GIB,
    min_storage_bytes=1 * GIB,
    recommended_storage_bytes=5 * GIB,
    min_cpu_cores=0.5,
    recommended_cpu_cores=1,
)


def seeds_homelab() -> list[DeviceSnapshot]:
    """Seed 000/002: Server-01 4 GB free 85 % loaded, Server-02 8 GB free 40 %, Pi-4 2 GB."""
    return [
        device(1, "Server-01", ram_free_bytes=4 * GIB, cpu_usage_percent=85.0),
        device(2, "Server-02", ram_free_bytes=8 * GIB, cpu_usage_percent=40.0),
        device(
            3,
            "Pi-4",
            ram_total_bytes=4 * GIB,
            ram_free_bytes=2 * GIB,
            storage_total_bytes=64 * GIB,
            storage_free_bytes=20 * GIB,
            cpu_usage_percent=30.0,
            availability_percent=97.0,
            arch="aarch64",
        ),
    ]


def test_the_seeds_example_picks_server_02():
    ranking = rank_devices(seeds_homelab(), VAULTWARDEN)

    assert ranking.recommended.device_name == "Server-02"
    assert ranking.candidates[0].device_name == "Server-02"
    assert [c.label for c in ranking.candidates] == [RECOMMENDED, OK, OK]
    assert all(c.eligible for c in ranking.candidates)
    assert ranking.candidates[0].summary == (
        "Server-02: 8 GB RAM free (app needs 512 MB), 40 % load, 99.8 % uptime"
    )
    assert ranking.message.startswith("Recommended: Server-02: 8 GB RAM free")


def test_the_loaded_server_is_told_apart_by_its_load():
    ranking = rank_devices(seeds_homelab(), VAULTWARDEN)
    server_01 = ranking.candidate(1)
    assert server_01.scores.load == 15.0
    assert "busy: 85 % load" in server_01.reasons
    assert server_01.score < ranking.candidate(2).score


def test_it_disqualifies_a_device_with_too_little_ram_and_says_why():
    pi_zero = device(4, "pi-zero", ram_total_bytes=1 * GIB, ram_free_bytes=400 * MIB)
    ranking = rank_devices([pi_zero], VAULTWARDEN)

    candidate = ranking.candidates[0]
    assert not candidate.eligible
    assert candidate.label == NOT_RECOMMENDED
    assert candidate.score == 0
    assert candidate.reasons == ("400 MB RAM free, app needs 512 MB",)
    assert candidate.summary == "pi-zero: 400 MB RAM free, app needs 512 MB"
    assert ranking.recommended is None
    assert ranking.message.startswith(NO_DEVICE_MESSAGE)
    assert "pi-zero: 400 MB RAM free, app needs 512 MB" in ranking.message


@pytest.mark.parametrize(
    ("figures", "app_changes", "reason"),
    [
        ({"status": "offline"}, {}, "the device is offline (it did not answer the last polls)"),
        ({"status": "auth_failed"}, {}, "the device refuses our login"),
        ({"storage_free_bytes": 512 * MIB}, {}, "512 MB storage free, app needs 1 GB"),
        (
            {"arch": "armv7l"},
            {"architectures": frozenset({"amd64", "arm64"})},
            "arm/v7 device, app is built for amd64, arm64 only",
        ),
        ({"docker_version": ""}, {}, "Docker is not installed or not running"),
        (
            {"compose_command": ""},
            {},
            "Docker Compose is missing (neither 'docker compose' nor 'docker-compose')",
        ),
        (
            {"used_ports": frozenset({8080, 22})},
            {"ports": frozenset({8080})},
            "port 8080 is already in use",
        ),
        (
            {"ram_total_bytes": None, "ram_free_bytes": None},
            {},
            "no resource figures yet; wait for the next poll",
        ),
    ],
)
def test_each_disqualification_has_its_reason(figures, app_changes, reason):
    app = dataclasses.replace(VAULTWARDEN, **app_changes)
    ranking = rank_devices([device(1, "box", **figures)], app)
    assert not ranking.candidates[0].eligible
    assert reason in ranking.candidates[0].reasons


def test_reserved_ram_is_mentioned_when_it_disqualifies():
    box = device(1, "box", ram_free_bytes=256 * MIB, reserved_ram_bytes=2 * GIB)
    reason = rank_devices([box], VAULTWARDEN).candidates[0].reasons[0]
    assert reason == (
        "256 MB RAM free, app needs 512 MB (2 GB reserved for deployments starting now)"
    )


def test_a_disqualified_device_comes_after_every_eligible_one():
    strong_but_offline = device(1, "aaa", ram_free_bytes=15 * GIB, status="offline")
    weak = device(2, "zzz", ram_free_bytes=600 * MIB, cpu_usage_percent=95.0)
    ranking = rank_devices([strong_but_offline, weak], VAULTWARDEN)
    assert [c.device_name for c in ranking.candidates] == ["zzz", "aaa"]
    assert ranking.recommended.device_name == "zzz"


def test_equal_scores_are_ordered_by_name_then_id():
    twins = [device(3, "b"), device(2, "a"), device(1, "b")]
    ranking = rank_devices(twins, VAULTWARDEN)
    assert [(c.device_name, c.device_id) for c in ranking.candidates] == [
        ("a", 2),
        ("b", 1),
        ("b", 3),
    ]


def test_an_empty_homelab_gets_a_message_not_silence():
    ranking = rank_devices([], VAULTWARDEN)
    assert ranking.recommended is None
    assert ranking.message == f"{NO_DEVICE_MESSAGE}: no devices have been added yet."


def test_an_always_on_app_prefers_an_always_on_device():
    app = dataclasses.replace(VAULTWARDEN, always_on=True)
    laptop = device(1, "laptop", ram_free_bytes=12 * GIB, always_on=False)
    nas = device(2, "nas", ram_free_bytes=8 * GIB)
    ranking = rank_devices([laptop, nas], app)
    assert ranking.recommended.device_name == "nas"
    assert ranking.recommended.summary.endswith(", always on")
    assert "not always on, and this app should run all the time" in ranking.candidate(1).reasons


def test_between_minimum_and_recommended_it_is_ok_with_a_caveat():
    box = device(1, "pi-4", ram_total_bytes=2 * GIB, ram_free_bytes=700 * MIB)
    candidate = rank_devices([box], VAULTWARDEN).candidates[0]
    assert candidate.eligible
    assert "700 MB RAM free, below the recommended 1 GB: the app may be slow" in candidate.reasons


def test_unknown_history_is_neutral_and_said():
    box = device(1, "new", availability_percent=None)
    candidate = rank_devices([box], VAULTWARDEN).candidates[0]
    assert candidate.scores.uptime == 50.0
    assert candidate.summary.endswith("no uptime history yet")


def test_the_ram_score_is_smooth_not_a_step():
    scores = [
        spread_space_score(free * MIB, 16 * GIB, 512 * MIB, 1 * GIB)
        for free in (512, 600, 768, 1024, 2048, 4096, 8192, 16384)
    ]
    assert scores == sorted(scores)
    assert len(set(scores)) == len(scores)
    assert 0 < scores[0] < scores[-1] <= 100


def test_the_cpu_score_is_capped_at_100():
    assert cpu_score(64, 0.5, 1) == 100.0
    assert cpu_score(1, 1, 4) == 50.0
    assert cpu_score(0.5, 1, 4) == 25.0


def test_weights_change_the_winner():
    roomy_but_busy = device(1, "roomy", ram_free_bytes=14 * GIB, cpu_usage_percent=90.0)
    quiet = device(2, "quiet", ram_free_bytes=3 * GIB, cpu_usage_percent=5.0)
    devices = [roomy_but_busy, quiet]
    assert rank_devices(devices, VAULTWARDEN).recommended.device_name == "roomy"
    load_only = Weights(ram=0, storage=0, cpu=0, load=1, uptime=0)
    assert rank_devices(devices, VAULTWARDEN, weights=load_only).recommended.device_name == "quiet"


@pytest.mark.parametrize(
    ("weights", "field"),
    [
        ({"ram": -1}, "weights.ram"),
        ({"ram": 0, "storage": 0, "cpu": 0, "load": 0, "uptime": 0}, "weights"),
        ({"disk": 3}, "weights.disk"),
        ({"cpu": float("nan")}, "weights.cpu"),
    ],
)
def test_bad_weights_name_the_field(weights, field):
    with pytest.raises(InvalidInput) as raised:
        Weights.from_mapping(weights)
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"min_ram_bytes": -1}, "min_ram_bytes"),
        ({"min_ram_bytes": 2 * GIB, "recommended_ram_bytes": 1 * GIB}, "recommended_ram_bytes"),
        ({"min_cpu_cores": -0.5}, "min_cpu_cores"),
        ({"ports": frozenset({0})}, "ports"),
        ({"ports": frozenset({70000})}, "ports"),
    ],
)
def test_bad_requirements_name_the_field(changes, field):
    values = dict(name="x", min_ram_bytes=0)
    values.update(changes)
    with pytest.raises(InvalidInput) as raised:
        AppRequirements(**values)
    assert raised.value.field == field


def test_policy_parsing():
    assert Policy.parse(None) is Policy.SPREAD
    assert Policy.parse("PACK") is Policy.PACK
    with pytest.raises(InvalidInput) as raised:
        Policy.parse("balanced")
    assert raised.value.field == "policy"


def test_pack_prefers_a_busy_device_that_the_app_fills_best():
    busy_small = device(1, "busy", ram_free_bytes=2 * GIB, workload_count=3)
    idle_big = device(2, "idle", ram_free_bytes=15 * GIB, workload_count=0)
    devices = [busy_small, idle_big]
    assert rank_devices(devices, VAULTWARDEN).recommended.device_name == "idle"
    assert rank_devices(devices, VAULTWARDEN, policy=Policy.PACK).recommended.device_name == "busy"


def test_pack_opens_the_largest_idle_device_first():
    small = device(1, "small", ram_total_bytes=4 * GIB, ram_free_bytes=4 * GIB)
    large = device(2, "large", ram_total_bytes=64 * GIB, ram_free_bytes=64 * GIB)
    ranking = rank_devices([small, large], VAULTWARDEN, policy="pack")
    assert ranking.recommended.device_name == "large"
    assert ranking.policy is Policy.PACK


@pytest.mark.parametrize(
    ("size", "words"),
    [
        (512 * MIB, "512 MB"),
        (1 * GIB, "1 GB"),
        (int(6.1 * GIB), "6.1 GB"),
        (3 * 1024 * GIB, "3 TB"),
    ],
)
def test_sizes_read_like_people_write_them(size, words):
    assert format_bytes(size) == words


def test_a_shortfall_is_never_written_as_equal_sizes():
    box = device(1, "pi", ram_total_bytes=2 * GIB, ram_free_bytes=2 * GIB - 40 * MIB)
    app = dataclasses.replace(VAULTWARDEN, min_ram_bytes=2 * GIB, recommended_ram_bytes=2 * GIB)
    assert rank_devices([box], app).candidates[0].reasons[0] == (
        "2,008 MB RAM free, app needs 2,048 MB"
    )


def test_load_is_the_cpu_usage_and_the_load_average_only_without_it():
    assert device(1, "a", cpu_usage_percent=30.0, load_1m=8.0).load_percent == 30.0
    assert device(1, "a", cpu_usage_percent=None, load_1m=2.0, cpu_cores=4.0).load_percent == 50.0
    assert device(1, "a", cpu_usage_percent=None, load_1m=None).load_percent is None
    reserved = device(1, "a", cpu_usage_percent=30.0, cpu_cores=4.0, reserved_cpu_cores=1.0)
    assert reserved.load_percent == 55.0

"""The watch (issue 20): container states -> status, exit codes in words, restarts, the
health-check state machine and uptime. Pure functions, plus the after-poll hook on the
database with a device whose poll result is written by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from devices import containers as device_containers
from marketplace import health_checks, watch
from marketplace.models import (
    TROUBLE_STATUSES,
    UP_STATUSES,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
)
from tests.unit.scheduling.factories import make_device

S = DeploymentStatus
STATES = ["running", "exited", "restarting", "created", "paused", "dead"]


def box(state="running", *, code=None, health="", oom=False, restarts=None, service="web"):
    return {
        "name": f"hl-app-default-{service}-1",
        "service": service,
        "state": state,
        "exit_code": code,
        "restart_count": restarts,
        "health": health,
        "oom_killed": oom,
        "started_at": None,
        "finished_at": None,
    }


container = st.builds(
    box,
    st.sampled_from(STATES),
    code=st.one_of(st.none(), st.integers(0, 255)),
    health=st.sampled_from(["", "healthy", "unhealthy", "starting"]),
    oom=st.booleans(),
    service=st.sampled_from(["web", "db", "worker"]),
)
every_status = st.sampled_from(list(S.values))


# ------------------------------------------------------------------ derive_status
@given(
    containers=st.lists(container, max_size=5), current=every_status, restarts=st.integers(0, 20)
)
def test_a_stopped_or_transient_deployment_is_never_touched(containers, current, restarts):
    verdict = watch.derive_status(containers=containers, current=current, restarts_recent=restarts)
    if current not in UP_STATUSES:
        assert verdict is None
    else:
        assert verdict is None or verdict.status in UP_STATUSES


@given(containers=st.lists(container, min_size=1, max_size=5), current=st.sampled_from(UP_STATUSES))
def test_all_containers_up_is_running_and_any_trouble_is_said_in_words(containers, current):
    verdict = watch.derive_status(containers=containers, current=current)
    all_up = all(c["state"] == "running" and c["health"] != "unhealthy" for c in containers)
    if all_up:
        if current == S.NOT_ANSWERING:
            assert verdict is None  # only a health check ends not answering
        else:
            assert verdict.status == S.RUNNING
    elif verdict.status != S.RUNNING:
        assert verdict.status in TROUBLE_STATUSES and verdict.reason
    if not any(c["state"] == "running" and c["health"] != "unhealthy" for c in containers):
        assert verdict.status == S.STOPPED_UNEXPECTEDLY


def test_a_killed_container_is_stopped_unexpectedly_with_its_exit_code_explained():
    verdict = watch.derive_status(containers=[box("exited", code=137)], current=S.RUNNING)
    assert verdict.status == S.STOPPED_UNEXPECTEDLY
    assert verdict.reason == "its container exited with code 137 (killed, often out of memory)"


def test_an_oom_kill_is_named_as_out_of_memory():
    verdict = watch.derive_status(containers=[box("exited", code=137, oom=True)], current=S.RUNNING)
    assert "ran out of memory" in verdict.reason


def test_one_container_down_of_two_is_degraded_and_names_it():
    verdict = watch.derive_status(
        containers=[box(), box("exited", code=1, service="worker")], current=S.RUNNING
    )
    assert verdict.status == S.DEGRADED
    assert verdict.reason.startswith("worker exited with code 1")


def test_an_unhealthy_container_makes_the_app_degraded():
    verdict = watch.derive_status(
        containers=[box(health="unhealthy"), box(service="db")], current=S.RUNNING
    )
    assert verdict.status == S.DEGRADED and "health check fails" in verdict.reason


def test_a_helper_that_finished_cleanly_is_not_trouble():
    verdict = watch.derive_status(
        containers=[box(), box("exited", code=0, service="migrate")], current=S.RUNNING
    )
    assert verdict.status == S.RUNNING


def test_gone_containers_are_missing():
    assert watch.derive_status(containers=[], current=S.RUNNING).status == S.MISSING


def test_more_restarts_than_the_limit_in_the_window_is_a_crash_loop():
    verdict = watch.derive_status(
        containers=[box("restarting", code=1)],
        current=S.RUNNING,
        restarts_recent=watch.CRASH_LOOP_RESTARTS + 1,
    )
    assert verdict.status == S.CRASH_LOOP and "code 1" in verdict.reason


def test_restarts_are_counted_within_the_window_only_and_a_recreated_container_resets():
    now = 10_000.0
    samples = [[now - 3600, 0], [now - 500, 2], [now - 200, 5], [now - 100, 1], [now, 3]]
    # within 10 minutes: 2 -> 5 (+3), 5 -> 1 (recreated), 1 -> 3 (+2)
    assert watch.restarts_in_window(samples, now=now) == 5


@given(code=st.integers(-1, 300), oom=st.booleans())
def test_every_exit_code_has_words(code, oom):
    words = watch.exit_code_words(code, oom_killed=oom)
    assert words.startswith(f"code {code}")
    if oom:
        assert "out of memory" in words


@pytest.mark.parametrize(
    "code,words",
    [
        (0, "finished normally"),
        (1, "reported an error"),
        (125, "Docker could not run it"),
        (126, "could not be run"),
        (127, "not found"),
        (137, "out of memory"),
        (139, "segmentation fault"),
        (143, "SIGTERM"),
    ],
)
def test_common_exit_codes_are_explained(code, words):
    assert words in watch.exit_code_words(code)


# --------------------------------------------------------------- container parsing
LISTED = [
    {
        "Id": "a" * 64,
        "Names": ["/hl-adguard-home-default-adguard-1"],
        "State": "exited",
        "Status": "Exited (137) 3 minutes ago",
        "Labels": {
            "com.docker.compose.project": "hl-adguard-home-default",
            "com.docker.compose.service": "adguard",
        },
    },
    {
        "Id": "b" * 64,
        "Names": ["/other"],
        "State": "running",
        "Status": "Up 2 hours",
        "Labels": {"com.docker.compose.project": "someone-elses"},
    },
    {
        "Id": "c" * 64,
        "Names": ["/hl-x-default-web-1"],
        "State": "running",
        "Status": "Up 2 hours (unhealthy)",
        "Labels": {
            "com.docker.compose.project": "hl-x-default",
            "com.docker.compose.service": "web",
        },
    },
]


def test_only_our_projects_are_read_from_the_container_list_with_exit_code_and_health():
    projects = device_containers.app_containers_from_list(LISTED)
    assert set(projects) == {"hl-adguard-home-default", "hl-x-default"}
    killed = projects["hl-adguard-home-default"][0]
    assert (killed["service"], killed["state"], killed["exit_code"]) == ("adguard", "exited", 137)
    assert projects["hl-x-default"][0]["health"] == "unhealthy"


def test_only_troubled_containers_are_inspected_and_the_inspect_adds_oom_and_restarts():
    projects = device_containers.app_containers_from_list(LISTED)
    asked = []

    def get(path):
        asked.append(path)
        return {}, {
            "RestartCount": 4,
            "State": {
                "ExitCode": 137,
                "OOMKilled": True,
                "StartedAt": "2026-12-05T09:00:00Z",
                "FinishedAt": "0001-01-01T00:00:00Z",
            },
        }

    out = device_containers.stored(device_containers.inspect_troubled(projects, get))
    assert sorted(asked) == [f"/containers/{'a' * 64}/json", f"/containers/{'c' * 64}/json"]
    killed = out["hl-adguard-home-default"][0]
    assert killed["oom_killed"] is True and killed["restart_count"] == 4
    assert killed["finished_at"] is None and "id" not in killed


# ------------------------------------------------------------ health state machine
def test_two_failed_health_checks_in_a_row_make_a_running_app_not_answering():
    assert health_checks.health_verdict(current=S.RUNNING, ok=False, failures_in_row=1) is None
    assert (
        health_checks.health_verdict(current=S.RUNNING, ok=False, failures_in_row=2)
        == S.NOT_ANSWERING
    )
    assert (
        health_checks.health_verdict(current=S.NOT_ANSWERING, ok=True, failures_in_row=0)
        == S.RUNNING
    )
    # a stopped container explains itself better than a failed health check
    assert (
        health_checks.health_verdict(current=S.STOPPED_UNEXPECTEDLY, ok=False, failures_in_row=5)
        is None
    )
    assert health_checks.health_verdict(current=S.STOPPED, ok=True, failures_in_row=0) is None


def test_uptime_is_the_answered_share_of_samples_in_each_window():
    now = timezone.now()
    samples = [
        (now - timedelta(hours=1), True),
        (now - timedelta(hours=2), False),
        (now - timedelta(days=3), True),
        (now - timedelta(days=20), False),
    ]
    assert health_checks.uptime_fractions(samples, now=now) == {
        "24h": 0.5,
        "7d": 0.6667,
        "30d": 0.5,
    }
    assert health_checks.uptime_fractions([], now=now) == {"24h": None, "7d": None, "30d": None}


def test_auto_restart_backs_off_and_gives_up_after_three_in_thirty_minutes():
    now = 100_000.0
    assert watch.auto_restart_plan([], now=now) == "now"
    assert watch.auto_restart_plan([now - 60], now=now) == "wait"  # 2 minutes after the 1st
    assert watch.auto_restart_plan([now - 150], now=now) == "now"
    assert watch.auto_restart_plan([now - 400, now - 200], now=now) == "wait"
    assert watch.auto_restart_plan([now - 900, now - 600, now - 100], now=now) == "give_up"
    assert watch.auto_restart_plan([now - 4000, now - 3000, now - 2000], now=now) == "now"


# ------------------------------------------------------------ the after-poll hook
@pytest.fixture
def deployed(db):
    device = make_device("pi", ram_free_gb=2)
    deployment = Deployment.objects.create(
        slug="adguard-home",
        app_name="AdGuard Home",
        device=device,
        project="hl-adguard-home-default",
        status=S.RUNNING,
        auto_restart=False,
    )
    return device, deployment


def test_a_poll_that_finds_the_container_killed_records_the_change_once(deployed):
    device, deployment = deployed
    device.app_containers = {deployment.project: [box("exited", code=137)]}
    watch.after_device_poll(device)
    watch.after_device_poll(device)
    deployment.refresh_from_db()
    assert deployment.status == S.STOPPED_UNEXPECTEDLY
    assert "code 137" in deployment.status_reason and deployment.status_since is not None
    events = list(DeploymentEvent.objects.filter(deployment=deployment))
    assert len(events) == 1
    assert (events[0].from_status, events[0].to_status) == ("running", "stopped_unexpectedly")
    assert events[0].message.startswith("AdGuard Home stopped unexpectedly: its container exited")


def test_a_person_stopped_app_stays_stopped_whatever_the_containers_say(deployed):
    device, deployment = deployed
    Deployment.objects.filter(pk=deployment.pk).update(status=S.STOPPED)
    device.app_containers = {deployment.project: [box("exited", code=0)]}
    watch.after_device_poll(device)
    deployment.refresh_from_db()
    assert deployment.status == S.STOPPED and not deployment.events.exists()


def test_automatic_restart_is_queued_when_on(
    deployed, monkeypatch, django_capture_on_commit_callbacks
):
    device, deployment = deployed
    Deployment.objects.filter(pk=deployment.pk).update(auto_restart=True)
    queued = []
    monkeypatch.setattr(watch, "_queue_restart", queued.append)
    device.app_containers = {deployment.project: [box("exited", code=137)]}
    with django_capture_on_commit_callbacks(execute=True):
        watch.after_device_poll(device)
    assert queued == [deployment.pk]
    deployment.refresh_from_db()
    assert len(deployment.watch_memory["auto_restarts"]) == 1


def test_nothing_is_judged_while_an_operation_holds_the_device(deployed):
    from devices.lease import device_lease

    device, deployment = deployed
    device.app_containers = {deployment.project: [box("exited", code=0)]}
    with device_lease(device_id=device.pk, holder="stop-1"):
        watch.after_device_poll(device)
    deployment.refresh_from_db()
    assert deployment.status == S.RUNNING
    watch.after_device_poll(device)
    deployment.refresh_from_db()
    assert deployment.status == S.STOPPED_UNEXPECTEDLY


def test_an_oom_kill_says_how_full_the_device_was(deployed):
    device, deployment = deployed
    device.app_containers = {deployment.project: [box("exited", code=137, oom=True)]}
    watch.after_device_poll(device)
    deployment.refresh_from_db()
    assert "ran out of memory" in deployment.status_reason
    assert f"(pi had {device.ram_used_bytes / 1e9:.1f} GB of" in deployment.status_reason

"""The layers below ask the apps above through registries filled in `ready()`; the device
lease and the device shell live in devices and know no deployment."""

from __future__ import annotations

import logging

import pytest

from devices import compose, hooks, ssh
from devices.lease import BUSY_MESSAGE, DeviceBusy, device_lease
from devices.models import DeviceLease
from homelab.core.masking import MASK
from marketplace import recovery, watch
from marketplace import selectors as marketplace_selectors
from marketplace import services as marketplace_services
from pooling import selectors as pooling_selectors
from pooling import tasks as pooling_tasks
from scheduling import hooks as scheduling_hooks
from tests.unit.scheduling.factories import make_device


def test_the_apps_fill_the_registries_in_ready_in_a_fixed_order():
    # shared servers are checked before the deployments' pending undos run
    assert list(hooks.after_poll) == [
        pooling_tasks.after_device_poll,
        recovery.after_device_poll,
        watch.after_device_poll,
    ]
    assert list(hooks.dashboard_figures) == [
        marketplace_selectors.dashboard_figures,
        pooling_selectors.dashboard_figures,
    ]
    assert list(hooks.device_removal_blockers) == [marketplace_selectors.live_app_names]
    assert list(hooks.before_device_removal) == [marketplace_services.deployments_forget_device]
    assert list(scheduling_hooks.catalog_apps) == [marketplace_selectors.catalog_apps_for_placement]
    assert list(scheduling_hooks.host_ports_in_use) == [marketplace_selectors.host_ports_in_use]


def test_a_registry_runs_by_order_and_registers_a_callable_once():
    registry = hooks.Registry("test")
    late, early = (lambda: "late"), (lambda: "early")
    registry.register(late, order=20)
    registry.register(early, order=10)
    registry.register(late, order=5)  # already there: stays where it was
    assert list(registry) == [early, late]


def test_a_failing_after_poll_hook_is_logged_and_the_others_still_run(monkeypatch, caplog):
    registry = hooks.Registry("after_poll")
    seen = []

    def broken(device):
        raise RuntimeError("boom")

    registry.register(broken, order=1)
    registry.register(lambda device: seen.append(device.pk), order=2)
    monkeypatch.setattr(hooks, "after_poll", registry)
    device = type("D", (), {"pk": 7})()
    with caplog.at_level(logging.ERROR, logger="devices.hooks"):
        hooks.run_after_poll(device)
    assert seen == [7]
    assert "After polling device 7" in caplog.text


@pytest.mark.django_db
def test_the_lease_is_one_holder_at_a_time_and_a_busy_device_raises_device_busy():
    device = make_device("pi", ram_free_gb=2)
    with device_lease(device_id=device.pk, holder="first"):
        with (
            pytest.raises(DeviceBusy) as caught,
            device_lease(device_id=device.pk, holder="second", wait_seconds=0),
        ):
            pass
        assert caught.value.message == BUSY_MESSAGE
    assert not DeviceLease.objects.exists()


@pytest.mark.django_db
def test_marketplace_turns_a_busy_device_into_the_same_409():
    device = make_device("pi", ram_free_gb=2)
    with (
        device_lease(device_id=device.pk, holder="pool-check"),
        pytest.raises(marketplace_services.DeploymentError) as caught,
        marketplace_services.device_lease(device_id=device.pk, holder="deploy", wait_seconds=0),
    ):
        pass
    assert caught.value.code == 409 and caught.value.field == "device_id"
    assert caught.value.message == BUSY_MESSAGE


def test_the_device_shell_hands_each_command_masked_to_its_recorder(monkeypatch):
    monkeypatch.setattr(ssh, "run", lambda *a, **k: (0, "token s3cr3t-value ok", ""))
    recorded = []
    shell = compose.DeviceShell(
        None,
        secrets=["s3cr3t-value"],
        recorder=lambda command, exit_code, output, seconds: recorded.append(
            (command, exit_code, output)
        ),
    )
    shell.run(["echo", "s3cr3t-value"])
    assert recorded == [(f"echo {MASK}", 0, f"token {MASK} ok")]


def test_without_a_recorder_nothing_is_recorded(monkeypatch):
    monkeypatch.setattr(ssh, "run", lambda *a, **k: (0, "ok", ""))
    assert compose.DeviceShell(None).run(["true"]) == (0, "ok", "")

"""Savings follow at once when a shared server gains or loses an app (issue 14, item 13):
the pooling step of a deployment and a removal measure the shared server's memory there
and then, instead of leaving it unmeasured (savings 0) until the scheduled measure."""

from __future__ import annotations

import pytest

from devices.compose import StepFailed
from marketplace.models import Deployment
from marketplace.recipes import load_catalog
from pooling import services
from pooling.models import PooledDatabase, SharedInstance
from pooling.selectors import pooling_saved_ram_bytes
from tests.unit.pooling.test_api_and_savings import _database, _device, _instance

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024


class MeasuringShell:
    """Answers the two commands of a measure: the container's id and state, its memory."""

    def __init__(self, memory: str = "150MiB / 1GiB", *, stats_fail: bool = False):
        self.secrets: list[str] = []
        self.memory = memory
        self.stats_fail = stats_fail
        self.ran: list[list[str]] = []

    def check(self, args, **kw):
        self.ran.append(args)
        if args[:2] == ["docker", "ps"]:
            return "c0ffee\trunning\n"
        if args[:2] == ["docker", "stats"]:
            if self.stats_fail:
                raise StepFailed("docker stats failed (exit 1): no such container")
            return self.memory + "\n"
        raise AssertionError(f"unexpected command {args}")

    def run(self, args, **kw):
        self.ran.append(args)
        return 0, "", ""


def _stats(shell) -> int:
    return sum(1 for args in shell.ran if args[:2] == ["docker", "stats"])


def test_the_pooling_step_measures_the_shared_server_the_app_joined(monkeypatch):
    device = _device()
    instance = _instance(device)  # started before, never measured yet
    _database(instance, "monica_a")  # one app there already
    deployment = Deployment.objects.create(
        slug="monica", app_name="Monica", device=device, instance="b",
        project="hl-monica-b", status="deploying",
    )  # fmt: skip

    def provision(*, deployment, engine, shell):
        pooled = _database(instance, "monica_b")
        return pooled, True, False, ""

    monkeypatch.setattr(services, "_provision", provision)
    monkeypatch.setattr(services, "_wire_need", lambda *a, **k: None)
    assert pooling_saved_ram_bytes() == 0  # not measured: nothing to show yet

    shell = MeasuringShell("40MiB / 1GiB")
    services.pooled_databases_attach(
        deployment=deployment,
        recipe=load_catalog([]).get("monica"),
        compose={},
        shell=shell,
        on_undo=lambda *a: None,
    )
    instance.refresh_from_db()
    assert _stats(shell) == 1
    assert instance.measured_memory_bytes == 40 * MIB and instance.measured_at is not None
    assert pooling_saved_ram_bytes() > 0  # two apps on one server: savings at once


def test_a_removal_measures_the_shared_server_its_other_apps_still_use(monkeypatch):
    device = _device()
    instance = _instance(device, measured_memory_bytes=400 * MIB)
    leaving = _database(instance, "paperless_ngx_a")
    _database(instance, "paperless_ngx_b")
    deployment = Deployment.objects.get(pk=leaving.app_id)

    def drop(*, pooled, shell=None):
        pooled.delete()
        return "dropped"

    monkeypatch.setattr(services, "pooled_database_drop", drop)
    monkeypatch.setattr(services, "_delete_dumps", lambda shell, database: "dumps deleted")
    shell = MeasuringShell("120MiB / 1GiB")
    services.pooled_databases_release(deployment=deployment, keep_data=False, shell=shell)
    instance.refresh_from_db()
    assert _stats(shell) == 1
    assert instance.measured_memory_bytes == 120 * MIB


def test_a_server_removed_with_its_last_app_is_not_measured(monkeypatch):
    device = _device()
    instance = _instance(device)
    leaving = _database(instance, "paperless_ngx_a")
    deployment = Deployment.objects.get(pk=leaving.app_id)

    def drop(*, pooled, shell=None):
        pooled.delete()
        return "dropped"

    def remove(*, instance, shell=None):
        SharedInstance.objects.filter(pk=instance.pk).update(status="removed")
        return "removed"

    monkeypatch.setattr(services, "pooled_database_drop", drop)
    monkeypatch.setattr(services, "_delete_dumps", lambda shell, database: "dumps deleted")
    monkeypatch.setattr(services, "shared_instance_remove", remove)
    shell = MeasuringShell()
    services.pooled_databases_release(deployment=deployment, keep_data=False, shell=shell)
    assert _stats(shell) == 0
    assert not PooledDatabase.objects.exists()


def test_a_measure_that_fails_does_not_fail_the_removal(monkeypatch):
    device = _device()
    instance = _instance(device, measured_memory_bytes=400 * MIB)
    leaving = _database(instance, "paperless_ngx_a")
    _database(instance, "paperless_ngx_b")

    def drop(*, pooled, shell=None):
        pooled.delete()
        return "dropped"

    monkeypatch.setattr(services, "pooled_database_drop", drop)
    monkeypatch.setattr(services, "_delete_dumps", lambda shell, database: "dumps deleted")
    said = services.pooled_databases_release(
        deployment=Deployment.objects.get(pk=leaving.app_id),
        keep_data=False,
        shell=MeasuringShell(stats_fail=True),
    )
    assert "dropped" in said
    instance.refresh_from_db()
    assert instance.measured_memory_bytes == 400 * MIB  # unchanged; the schedule measures again

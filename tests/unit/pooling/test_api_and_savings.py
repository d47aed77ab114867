"""Savings from stored measurements and the pooling API's shapes (no device, no secrets)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from devices.models import Device
from marketplace.models import Deployment
from pooling import engines
from pooling.models import PooledDatabase, SharedInstance
from pooling.selectors import pooling_saved_ram_bytes, shared_instance_baseline

pytestmark = pytest.mark.django_db
MIB = 1024 * 1024


def _device(name="server-02") -> Device:
    return Device.objects.create(
        name=name, address="10.0.0.2", port=22, username="root",
        private_key="KEY", public_key="ssh-ed25519 AAAA test", status="online",
    )  # fmt: skip


def _instance(device, engine="postgres", **kw) -> SharedInstance:
    return SharedInstance.objects.create(
        device=device, engine=engine, version="16", project=f"hl-pool-{engine}",
        admin_password="A" * 40, status="running", **kw,
    )  # fmt: skip


def _database(instance, name, password="B" * 40) -> PooledDatabase:
    deployment = Deployment.objects.create(
        slug="paperless-ngx", app_name="Paperless", device=instance.device,
        instance=name.rsplit("_", 1)[-1], project=f"hl-{name}", status="running",
    )  # fmt: skip
    return PooledDatabase.objects.create(
        instance=instance, app_id=deployment.pk, project=deployment.project,
        app_name=deployment.app_name, app_instance=deployment.instance,
        database_name=name, role_name=name, password=password,
    )  # fmt: skip


def test_savings_use_the_measured_baseline_and_the_measured_shared_memory():
    instance = _instance(
        _device(), measured_memory_bytes=50 * MIB, standalone_memory_bytes=40 * MIB
    )
    for x in "abc":
        _database(instance, f"paperless_ngx_{x}")
    assert pooling_saved_ram_bytes() == 3 * 40 * MIB - 50 * MIB


def test_until_measured_the_documented_default_is_used_and_named():
    instance = _instance(_device(), measured_memory_bytes=60 * MIB)
    _database(instance, "paperless_ngx_a")
    _database(instance, "paperless_ngx_b")
    baseline, source = shared_instance_baseline(instance)
    assert baseline == engines.ENGINES["postgres"].default_standalone_bytes
    assert source.startswith("documented default")
    assert pooling_saved_ram_bytes() == max(0, 2 * baseline - 60 * MIB)


def test_savings_are_never_negative_and_zero_when_not_measured():
    device = _device()
    one = _instance(device, measured_memory_bytes=500 * MIB, standalone_memory_bytes=40 * MIB)
    _database(one, "paperless_ngx_a")
    _instance(device, engine="mariadb")  # not measured yet
    assert pooling_saved_ram_bytes() == 0


def test_removed_instances_do_not_count():
    instance = _instance(_device(), measured_memory_bytes=1, standalone_memory_bytes=40 * MIB)
    _database(instance, "paperless_ngx_a")
    SharedInstance.objects.filter(pk=instance.pk).update(status="removed")
    assert pooling_saved_ram_bytes() == 0


@pytest.fixture
def api(client, capsys):
    get_user_model().objects.create_superuser("admin", "admin@example.com", "a-long-test-password")
    call_command("issue_api_token", "admin")
    token = capsys.readouterr().out.strip().splitlines()[-1]

    def call(path: str):
        return client.get(f"/api/v1{path}", HTTP_AUTHORIZATION=f"Bearer {token}")

    return call


def test_the_api_lists_instances_and_their_databases_without_secrets(api, client):
    instance = _instance(
        _device(), measured_memory_bytes=50 * MIB, standalone_memory_bytes=40 * MIB
    )
    _database(instance, "paperless_ngx_a", password="S" * 40)
    _database(instance, "paperless_ngx_b", password="T" * 40)
    assert client.get("/api/v1/pooling/instances").status_code == 401

    listed = api("/pooling/instances")
    assert listed.status_code == 200
    [row] = listed.json()
    assert row["engine"] == "postgres" and row["apps"] == 2
    assert row["saved_ram_bytes"] == 2 * 40 * MIB - 50 * MIB
    assert row["standalone_memory_source"] == "measured on the device"

    detail = api(f"/pooling/instances/{instance.pk}")
    assert detail.status_code == 200
    body = detail.json()
    assert [d["database"] for d in body["databases"]] == ["paperless_ngx_a", "paperless_ngx_b"]
    text = json.dumps(body) + json.dumps(listed.json())
    for secret in ("A" * 40, "S" * 40, "T" * 40):
        assert secret not in text
    assert "password" not in text
    assert api("/pooling/instances/999").status_code == 404


def test_resources_report_the_pooling_savings(api):
    instance = _instance(
        _device(), measured_memory_bytes=50 * MIB, standalone_memory_bytes=40 * MIB
    )
    for x in "ab":
        _database(instance, f"paperless_ngx_{x}")
    assert api("/resources").json()["pooling_saved_ram_bytes"] == 30 * MIB


def test_the_pooling_page_lists_instances_databases_and_savings(client):
    user = get_user_model().objects.create_superuser(
        "admin", "a@example.com", "a-long-test-password"
    )
    instance = _instance(
        _device(), measured_memory_bytes=50 * MIB, standalone_memory_bytes=40 * MIB
    )
    instance.version = "16-alpine"  # the image tag; people know it as "16"
    instance.save()
    _database(instance, "paperless_ngx_a", password="S" * 40)
    _database(instance, "paperless_ngx_b", password="T" * 40)
    assert client.get("/pooling/").status_code in (302, 401, 403)
    client.force_login(user)
    page = client.get("/pooling/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "paperless_ngx_a" in text and "PostgreSQL 16 on server-02" in text
    assert "not measured yet" in text  # database sizes are read with the memory, later
    PooledDatabase.objects.filter(database_name="paperless_ngx_a").update(size_bytes=0)
    PooledDatabase.objects.filter(database_name="paperless_ngx_b").update(size_bytes=7471619)
    text = client.get("/pooling/").content.decode()
    assert "0 bytes" in text and "7.1 MB" in text
    # what the health check last did about the server is on the page
    SharedInstance.objects.filter(pk=instance.pk).update(
        last_incident="The shared PostgreSQL on server-02 had stopped (exited); it was "
        "started again and its apps reconnect.",
        last_incident_at="2026-11-30T14:20:00Z",
    )
    text = client.get("/pooling/").content.decode()
    assert "30 Nov, 14:20: The shared PostgreSQL on server-02 had stopped (exited)" in text
    # open connections: per database, and the instance's total, once measured
    PooledDatabase.objects.filter(database_name="paperless_ngx_a").update(connections=0)
    PooledDatabase.objects.filter(database_name="paperless_ngx_b").update(connections=3)
    text = client.get("/pooling/").content.decode()
    assert "0 open" in text and "3 open" in text and "3 open connections from apps" in text
    assert "S" * 40 not in text and "A" * 40 not in text
    # the dashboard gives the figure and says how it was measured, with a link to the details
    dashboard = client.get("/").content.decode()
    assert "Saved <strong>30 MB</strong> of memory by sharing databases" in dashboard
    assert "Measured on your devices" in dashboard and 'href="/pooling/"' in dashboard


def test_apps_with_their_own_database_are_recommended_for_sharing():
    device = _device()
    for x in "abc":
        Deployment.objects.create(
            slug="paperless-ngx", app_name="Paperless", device=device, instance=x,
            project=f"hl-paperless-ngx-{x}", status="running", config={"bundled_databases": True},
        )  # fmt: skip
    from pooling.selectors import pooling_recommendations

    postgres, redis = pooling_recommendations()
    baseline = engines.ENGINES["postgres"].default_standalone_bytes
    assert postgres["engine"] == "postgres" and postgres["saved_bytes"] == 2 * baseline
    assert postgres["sentence"].startswith("3 apps run their own PostgreSQL on server-02")
    # Paperless can put its Redis keys under a prefix: its own Redis servers count too
    redis_baseline = engines.ENGINES["redis"].default_standalone_bytes
    assert redis["engine"] == "redis" and redis["saved_bytes"] == 2 * redis_baseline
    assert redis["sentence"].startswith("3 apps run their own Redis on server-02")


def test_apps_that_cannot_share_redis_are_not_recommended_and_the_page_says_why(client):
    device = _device()
    for x in "ab":
        Deployment.objects.create(
            slug="immich", app_name="Immich", device=device, instance=x,
            project=f"hl-immich-{x}", status="running", config={"bundled_databases": True},
        )  # fmt: skip
    Deployment.objects.create(
        slug="immich", app_name="Immich", device=device, instance="c",
        project="hl-immich-c", status="running", config={},
    )  # fmt: skip
    from pooling.selectors import pooling_recommendations, pooling_unpooled

    # neither of Immich's databases can be shared: nothing to recommend, and the page says why
    assert pooling_recommendations() == []
    postgres, redis = pooling_unpooled()
    assert postgres == (
        "Immich keeps its own PostgreSQL on server-02: it needs the PostgreSQL add-on vectors, "
        "which the shared PostgreSQL does not include"
    )
    assert redis.startswith("Immich keeps its own Redis on server-02: it cannot put its keys")


def test_the_wizard_preview_says_which_shared_server_the_app_will_use():
    from marketplace.recipes import load_catalog
    from pooling.selectors import pooling_preview

    recipe = load_catalog().get("paperless-ngx")
    device = _device()
    before, redis = pooling_preview(device=device, recipe=recipe)
    assert before.startswith("No PostgreSQL on server-02 yet: will start a shared one")
    assert redis.startswith("No Redis on server-02 yet: will start a shared one")
    _instance(device, standalone_memory_bytes=40 * MIB)
    _instance(device, engine="redis", standalone_memory_bytes=6 * MIB)
    assert pooling_preview(device=device, recipe=recipe) == [
        "Will use the shared PostgreSQL on server-02 (saves about 40 MB)",
        "Will use the shared Redis on server-02 (saves about 6 MB)",
    ]
    assert pooling_preview(device=device, recipe=recipe, config={"bundled_databases": True}) == []
    # Immich cannot put its Redis keys under a prefix: the wizard says it keeps its own
    immich = pooling_preview(device=device, recipe=load_catalog().get("immich"))
    assert immich[0] == (
        "Keeps its own PostgreSQL: it needs the PostgreSQL add-on vectors, which the shared "
        "PostgreSQL does not include"
    )
    assert immich[1].startswith("Keeps its own Redis: it cannot put its keys under a name")


def test_a_device_without_room_for_a_shared_server_is_refused_with_what_to_do():
    from pooling.services import PoolingError, shared_instance_ensure

    device = _device()
    Device.objects.filter(pk=device.pk).update(
        ram_total_bytes=1024 * MIB, ram_used_bytes=1020 * MIB
    )
    device.refresh_from_db()
    with pytest.raises(PoolingError) as caught:
        shared_instance_ensure(device=device, engine="postgres", shell=object())
    assert "has only 4 MB of free memory" in caught.value.message
    assert not SharedInstance.objects.exists()
    with pytest.raises(PoolingError) as caught:
        shared_instance_ensure(device=device, engine="mongodb", shell=object())
    assert "does not offer 'mongodb'" in caught.value.message
    Device.objects.filter(pk=device.pk).update(ram_used_bytes=1022 * MIB)
    device.refresh_from_db()
    with pytest.raises(PoolingError) as caught:
        shared_instance_ensure(device=device, engine="redis", shell=object())
    assert "has only 2 MB of free memory; a shared Redis needs about 4 MB" in caught.value.message


def test_the_poll_measures_memory_and_sizes_only_when_due():
    from datetime import timedelta

    from django.utils import timezone

    from pooling.health import MEASURE_EVERY_SECONDS, measure_due
    from pooling.models import SharedInstance

    now = timezone.now()
    never = SharedInstance(measured_at=None)
    fresh = SharedInstance(measured_at=now - timedelta(seconds=30))
    stale = SharedInstance(measured_at=now - timedelta(seconds=MEASURE_EVERY_SECONDS + 1))
    assert measure_due(never, MEASURE_EVERY_SECONDS, now)
    assert not measure_due(fresh, MEASURE_EVERY_SECONDS, now)
    assert measure_due(stale, MEASURE_EVERY_SECONDS, now)
    assert measure_due(fresh, None, now)  # direct calls always measure


class _NoShell:
    """Records commands; the check must not run any while a deployment holds the device."""

    def __init__(self):
        self.secrets, self.ran = [], []

    def run(self, args, **kw):
        self.ran.append(args)
        return 1, "", "no device here"

    def check(self, args, **kw):
        self.ran.append(args)
        raise AssertionError("no command expected")


def test_a_stopped_shared_server_is_left_alone_while_a_deployment_holds_the_device():
    from devices.lease import device_lease
    from pooling.services import shared_instances_check

    device = _device()
    instance = _instance(device)
    shell = _NoShell()
    with device_lease(device_id=device.pk, holder="someone-deploying"):
        said = shared_instances_check(
            device=device, shell=shell, container_state=lambda i: ("", "exited")
        )
    assert said == [] and shell.ran == []
    assert SharedInstance.objects.get(pk=instance.pk).status == "running"  # untouched


def test_a_shared_server_removed_meanwhile_is_not_started_again():
    from pooling.services import shared_instances_check

    device = _device()
    instance = _instance(device)
    shell = _NoShell()

    def state(found):
        # the removal finished between the look-up and the restart
        SharedInstance.objects.filter(pk=found.pk).update(status="removed")
        return "", "exited"

    assert shared_instances_check(device=device, shell=shell, container_state=state) == []
    assert shell.ran == []
    assert SharedInstance.objects.get(pk=instance.pk).status == "removed"


def test_the_deployment_page_says_which_shared_database_the_app_uses(client):
    user = get_user_model().objects.create_superuser(
        "admin", "a@example.com", "a-long-test-password"
    )
    device = _device()
    pooled = _database(_instance(device), "paperless_ngx_a", password="S" * 40)
    _database(_instance(device, engine="redis"), "paperless_ngx_b", password="T" * 40)
    client.force_login(user)
    text = client.get(f"/deployments/{pooled.app_id}/").content.decode()
    assert (
        "Uses the shared PostgreSQL on server-02: its own database <code>paperless_ngx_a</code> "
        "and login <code>paperless_ngx_a</code>." in text
    )
    assert "S" * 40 not in text and "A" * 40 not in text
    redis = PooledDatabase.objects.get(database_name="paperless_ngx_b").app_id
    text = client.get(f"/deployments/{redis}/").content.decode()
    assert "Uses the shared Redis on server-02: its own user <code>paperless_ngx_b</code>" in text


def test_removing_the_last_app_of_a_shared_server_offers_to_keep_it(client):
    user = get_user_model().objects.create_superuser(
        "admin", "a@example.com", "a-long-test-password"
    )
    instance = _instance(_device())
    first = _database(instance, "paperless_ngx_a")
    client.force_login(user)
    page = client.get(f"/deployments/{first.app_id}/remove/").content.decode()
    assert "Keep the shared PostgreSQL on server-02 running" in page
    assert "Paperless is the last app using it" in page
    # with a second app on it, removing the first leaves it in use: nothing to offer
    _database(instance, "paperless_ngx_b")
    page = client.get(f"/deployments/{first.app_id}/remove/").content.decode()
    assert "Keep the shared" not in page


def test_a_shared_server_in_use_cannot_be_removed_and_an_unused_one_offers_it(client):
    user = get_user_model().objects.create_superuser(
        "admin", "a@example.com", "a-long-test-password"
    )
    busy = _instance(_device())
    _database(busy, "paperless_ngx_a")
    idle = _instance(_device("server-03"), engine="mariadb")
    client.force_login(user)
    page = client.get("/pooling/").content.decode()
    assert page.count("Remove this server") == 1  # the idle one only
    assert f"/pooling/instances/{idle.pk}/remove/" in page
    # the API refuses the busy one with what to do, before touching the device
    answer = client.delete(f"/api/v1/pooling/instances/{busy.pk}")
    assert answer.status_code == 409
    assert answer.json()["detail"] == answer.json()["message"]
    assert answer.json()["message"] == (
        "1 app still uses the shared PostgreSQL on server-02: remove it first (My apps), "
        "then this server."
    )
    # and the page says the same
    response = client.post(f"/pooling/instances/{busy.pk}/remove/", follow=True)
    assert "1 app still uses the shared PostgreSQL on server-02" in response.content.decode()
    busy.refresh_from_db()
    assert busy.status == "running"


def test_a_shared_server_that_did_not_start_again_is_on_the_dashboard(client):
    user = get_user_model().objects.create_superuser(
        "admin", "a@example.com", "a-long-test-password"
    )
    instance = _instance(_device())
    _database(instance, "paperless_ngx_a")
    _database(instance, "paperless_ngx_b")
    client.force_login(user)
    assert "is down" not in client.get("/").content.decode()
    SharedInstance.objects.filter(pk=instance.pk).update(status="failed")
    dashboard = client.get("/").content.decode()
    assert "The shared PostgreSQL on server-02 is down: 2 apps cannot reach their database." in (
        dashboard
    )
    assert 'href="/pooling/">What happened' in dashboard
    resources = client.get("/api/v1/resources").json()
    assert resources["shared_databases_down"] == [
        "The shared PostgreSQL on server-02 is down: 2 apps cannot reach their database."
    ]


def test_a_shared_server_that_did_not_start_is_tried_again_later_not_on_every_poll():
    from datetime import timedelta

    from django.utils import timezone

    from pooling.health import RETRY_FAILED_SECONDS
    from pooling.services import shared_instances_check

    device = _device()
    instance = _instance(device)
    SharedInstance.objects.filter(pk=instance.pk).update(
        status="failed", last_incident_at=timezone.now() - timedelta(seconds=60)
    )
    shell = _NoShell()
    exited = lambda found: ("", "exited")  # noqa: E731
    assert shared_instances_check(device=device, shell=shell, container_state=exited) == []
    assert shell.ran == []  # a minute after the last try: not now
    SharedInstance.objects.filter(pk=instance.pk).update(
        last_incident_at=timezone.now() - timedelta(seconds=RETRY_FAILED_SECONDS + 1)
    )
    from pooling.services import PoolingError

    class Refusing(_NoShell):
        def check(self, args, **kw):
            self.ran.append(args)
            raise PoolingError("Docker said no")

    shell = Refusing()
    said = shared_instances_check(device=device, shell=shell, container_state=exited)
    assert shell.ran, "it is tried again once the wait is over"
    assert said and "did not start again" in said[0], said


def test_one_pool_summary_behind_the_page_and_the_api(client):
    from pooling.selectors import shared_instance_summaries, shared_instance_summary

    user = get_user_model().objects.create_superuser("admin", "a@example.com", "a-long-pw-1")
    client.force_login(user)
    instance = _instance(
        _device(), measured_memory_bytes=50 * MIB, standalone_memory_bytes=40 * MIB
    )
    first = _database(instance, "paperless_ngx_a")
    _database(instance, "paperless_ngx_b")
    PooledDatabase.objects.filter(pk=first.pk).update(connections=3)
    gone = _instance(_device("server-03"), engine="mariadb")
    SharedInstance.objects.filter(pk=gone.pk).update(status="removed")  # not listed

    [summary] = shared_instance_summaries()
    assert summary["instance"].pk == instance.pk
    assert summary["apps"] == 2 and len(summary["databases"]) == 2
    assert summary["connections"] == 3  # only the measured database counts
    assert summary["baseline_bytes"] == 40 * MIB
    assert summary["baseline_source"] == "measured on the device"
    assert summary["saved_bytes"] == 2 * 40 * MIB - 50 * MIB
    # without the annotation (one instance fetched plainly) the figures are the same
    plain = shared_instance_summary(SharedInstance.objects.get(pk=instance.pk))
    assert {k: v for k, v in plain.items() if k not in ("instance", "databases")} == {
        k: v for k, v in summary.items() if k not in ("instance", "databases")
    }

    [answer] = client.get("/api/v1/pooling/instances").json()
    assert (answer["apps"], answer["saved_ram_bytes"], answer["standalone_memory_bytes"]) == (
        2, 30 * MIB, 40 * MIB,
    )  # fmt: skip
    page = client.get("/pooling/")
    assert [row["saved_bytes"] for row in page.context["instances"]] == [30 * MIB]

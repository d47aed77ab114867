"""Database pooling on the lab's real devices: real PostgreSQL, MariaDB and Redis servers.

Each test uses its own pool project prefix and network (HOMELAB_POOL_PREFIX /
HOMELAB_POOL_NETWORK), random instances and random host ports: the lab is shared with
other sessions. What a test leaves behind is removed by project label at teardown.
"""

from __future__ import annotations

import json
import secrets as pysecrets
import time
import urllib.request

import pytest

from homelab.core.masking import MASK
from marketplace import services
from marketplace.models import DeploymentStatus
from marketplace.recipes import load_catalog
from pooling import engines
from pooling.models import PooledDatabase, SharedInstance
from tests.integration import test_deploy_lab as _deploy

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

# the deployment tests' fixtures: standin images pushed once, the lab devices added
standin_images = _deploy.standin_images
lab_devices = _deploy.lab_devices
free_port = _deploy.free_port

DEVICE = "lab-server-2"


@pytest.fixture
def pool(lab, settings):
    tag = pysecrets.token_hex(3)
    settings.HOMELAB_POOL_PREFIX = f"hl-pool-t{tag}"
    settings.HOMELAB_POOL_NETWORK = f"homelab-pool-t{tag}"
    yield settings.HOMELAB_POOL_PREFIX
    for engine in ("postgres", "mariadb", "redis"):
        project = f"{settings.HOMELAB_POOL_PREFIX}-{engine}"
        ids = lab.exec(
            DEVICE,
            ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
        ).stdout.split()
        if ids:
            lab.exec(DEVICE, ["docker", "rm", "-f", "-v", *ids])
        vols = lab.exec(
            DEVICE,
            [
                "docker",
                "volume",
                "ls",
                "-q",
                "--filter",
                f"label=com.docker.compose.project={project}",
            ],
        ).stdout.split()
        if vols:
            lab.exec(DEVICE, ["docker", "volume", "rm", *vols])
        lab.exec(DEVICE, ["rm", "-rf", f"/opt/homelab/apps/{project}"])


def _run_pipeline_again(deployment, recipe):
    """Run a deployed app's pipeline once more (idempotency), as the steps of a job."""
    from homelab.core.jobs import JobRunner
    from homelab.core.models import Job
    from marketplace import pipeline

    job = Job.objects.create(
        kind="app.deploy",
        target_type="deployment",
        target_id=str(deployment.pk),
        params={"deployment_id": deployment.pk},
    )
    return pipeline.DeploymentPipeline(deployment, recipe).run(JobRunner(job))


def status(deployment) -> dict:
    with urllib.request.urlopen(deployment.url + "/standin/status", timeout=20) as response:
        return json.loads(response.read())


def deploy(slug: str, instance: str, device_id: int, **config):
    recipe = load_catalog().get(slug)
    ports = {p.name: free_port() for p in recipe.manifest.ports}
    deployment = services.deployment_create(
        slug=slug,
        device_id=device_id,
        instance=instance,
        config={"ports": ports, **config},
        sync=True,
    )
    steps = "\n".join(f"{s.name}: {s.status} {s.message}" for s in deployment.steps.all())
    assert deployment.status == DeploymentStatus.RUNNING, f"{deployment.error}\n{steps}"
    return deployment


def connections_while_held(
    lab, device, container: str, env: dict[str, str], argv: list[str], pooled: list[PooledDatabase]
) -> dict[int, int | None]:
    """Open connections per pooled database as the health check measures them, while a
    real client (`argv`, run in the shared server's container) holds one open."""
    from pooling.services import shared_instances_check

    options = [x for name, value in env.items() for x in ("-e", f"{name}={value}")]
    lab.exec(DEVICE, ["docker", "exec", "-d", *options, container, *argv], check=True)
    deadline = time.monotonic() + 20
    while True:
        assert shared_instances_check(device=device) == []
        seen = {p.pk: PooledDatabase.objects.get(pk=p.pk).connections for p in pooled}
        if any(seen.values()) or time.monotonic() > deadline:
            return seen
        time.sleep(1)


def deploy_refused(lab, slug: str, instance: str, device_id: int):
    """A deployment expected to fail before its app starts: it ended failed or rolled back,
    and no container of the app is on the device."""
    deployment = services.deployment_create(
        slug=slug,
        device_id=device_id,
        instance=instance,
        config={"ports": {"web": free_port()}},
        sync=True,
    )
    assert deployment.status in (DeploymentStatus.FAILED, DeploymentStatus.ROLLED_BACK)
    assert not deployment.steps.filter(name="start containers").exists()
    started = lab.exec(DEVICE, ["docker", "ps", "-aq", "--filter", f"name=hl-{slug}-{instance}"])
    assert started.stdout.split() == []
    return deployment


def pool_containers(lab, project: str) -> list[str]:
    return lab.exec(
        DEVICE,
        ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={project}"],
    ).stdout.split()


def test_three_postgres_apps_share_one_server_isolated(lab, lab_devices, pool):
    device = lab_devices[DEVICE]
    tag = pysecrets.token_hex(2)
    # the three: Nextcloud, then Paperless-ngx, then n8n, with no database settings
    slugs = ("nextcloud", "paperless-ngx", "n8n")
    apps = [deploy(slug, f"p{tag}{x}", device.pk) for slug, x in zip(slugs, "abc", strict=True)]
    try:
        project = f"{pool}-postgres"
        containers = pool_containers(lab, project)
        assert len(containers) == 1
        assert SharedInstance.objects.filter(engine="postgres").count() == 1
        # Paperless also gets a Redis user in the shared Redis: this test is about PostgreSQL
        in_postgres = PooledDatabase.objects.filter(instance__engine="postgres")
        pooled = {p.app_id: p for p in in_postgres}
        assert len(pooled) == 3
        listed = lab.exec(
            DEVICE,
            ["docker", "exec", containers[0], "psql", "-U", "postgres", "-tAc",
             "select datname from pg_database"],
        ).stdout.split()  # fmt: skip
        for app in apps:
            assert pooled[app.pk].database_name in listed
            # the app has no bundled PostgreSQL any more, and no secret in "What I did"
            assert "postgres:16-alpine" not in app.compose_masked
            assert pooled[app.pk].password not in app.compose_masked
            assert MASK in app.compose_masked
            for command in app.commands.all():
                assert pooled[app.pk].password not in command.command + command.output
            report = status(app)
            postgres = [d for d in report["databases"] if d["engine"] == "postgres"]
            assert postgres and postgres[0]["login"], report
            assert postgres[0]["host"] == project
        # app B's credentials cannot open app A's database
        a, b = pooled[apps[0].pk], pooled[apps[1].pk]
        tried = lab.exec(
            DEVICE,
            ["docker", "exec", "-e", f"PGPASSWORD={b.password}", containers[0],
             "psql", "-h", "127.0.0.1", "-U", b.role_name, "-d", a.database_name, "-c", "select 1"],
        )  # fmt: skip
        assert tried.returncode != 0
        assert "permission denied" in tried.stderr, tried.stderr
        # and its own works
        own = lab.exec(
            DEVICE,
            ["docker", "exec", "-e", f"PGPASSWORD={b.password}", containers[0],
             "psql", "-h", "127.0.0.1", "-U", b.role_name, "-d", b.database_name, "-tAc", "select 1"],
        )  # fmt: skip
        assert own.stdout.strip() == "1", own.stderr

        # redeploying is idempotent: same database, same password, contents kept
        from pooling.services import pooled_database_provision

        def psql_as(db: PooledDatabase, sql: str):
            return lab.exec(
                DEVICE,
                ["docker", "exec", "-e", f"PGPASSWORD={db.password}", containers[0], "psql",
                 "-h", "127.0.0.1", "-U", db.role_name, "-d", db.database_name, "-tAc", sql],
            )  # fmt: skip

        assert (
            psql_as(a, "create table keep(v text); insert into keep values ('kept')").returncode
            == 0
        )
        outcome = _run_pipeline_again(apps[0], load_catalog().get(slugs[0]))
        assert outcome.ok, outcome.error
        again = pooled_database_provision(deployment=apps[0], engine="postgres")
        assert (again.pk, again.password) == (a.pk, a.password)
        assert psql_as(a, "select v from keep").stdout.strip() == "kept"
        assert in_postgres.count() == 3

        # a role left with another password (a half-finished run) is reconciled
        lab.exec(
            DEVICE,
            ["docker", "exec", containers[0], "psql", "-U", "postgres", "-c",
             f"ALTER ROLE \"{a.role_name}\" PASSWORD 'somethingelse'"],
            check=True,
        )  # fmt: skip
        assert psql_as(a, "select 1").returncode != 0
        pooled_database_provision(deployment=apps[0], engine="postgres")
        assert psql_as(a, "select 1").stdout.strip() == "1"

        # a killed shared server is brought back by the health check; apps reconnect
        from pooling.selectors import pooling_saved_ram_bytes, shared_instance_saved_bytes
        from pooling.services import shared_instance_measure_baseline
        from pooling.tasks import check_shared_instances

        lab.exec(DEVICE, ["docker", "kill", containers[0]], check=True)
        # what every poll runs: the server looked up through the Docker API, no CLI
        said = check_shared_instances(device.pk)
        assert said == [
            f"The shared PostgreSQL on {device.name} had stopped (exited); it was started "
            "again and its apps reconnect."
        ], said
        # the Shared databases page and the API say it too
        shared = SharedInstance.objects.get(engine="postgres")
        assert shared.last_incident == said[0] and shared.last_incident_at is not None
        containers = pool_containers(lab, project)
        assert len(containers) == 1
        for app in apps:
            assert [d["login"] for d in status(app)["databases"] if d["engine"] == "postgres"] == [
                True
            ]
        assert psql_as(a, "select v from keep").stdout.strip() == "kept"

        # savings from measured memory: 3 x a measured standalone server - the shared one
        shared = SharedInstance.objects.get(engine="postgres")
        assert shared.measured_memory_bytes and shared.measured_memory_bytes > 0
        baseline = shared_instance_measure_baseline(instance=shared)
        assert baseline and baseline > 0
        saved = shared_instance_saved_bytes(shared)
        print(f"shared {shared.measured_memory_bytes} B, standalone {baseline} B, saved {saved} B")
        assert saved == max(0, 3 * baseline - shared.measured_memory_bytes)
        assert pooling_saved_ram_bytes() >= saved  # plus what the shared Redis saves
        assert any(PooledDatabase.objects.values_list("size_bytes", flat=True))

        # open connections per database: B holds one, A has none (stand-ins connect per check)
        held = connections_while_held(
            lab, device, containers[0], {"PGPASSWORD": b.password},
            ["psql", "-h", "127.0.0.1", "-U", b.role_name, "-d", b.database_name, "-c",
             "select pg_sleep(30)"],
            [a, b],
        )  # fmt: skip
        assert held == {a.pk: 0, b.pk: 1}, held

        # removing app A drops its database and role; B and C keep working
        services.deployment_remove(deployment=apps[0], delete_data=True, sync=True)
        listed = lab.exec(
            DEVICE,
            ["docker", "exec", containers[0], "psql", "-U", "postgres", "-tAc",
             "select datname from pg_database union all select rolname from pg_roles"],
        ).stdout.split()  # fmt: skip
        assert a.database_name not in listed
        assert not PooledDatabase.objects.filter(pk=a.pk).exists()
        for app in apps[1:]:
            assert [d["login"] for d in status(app)["databases"] if d["engine"] == "postgres"] == [
                True
            ]
        assert pool_containers(lab, project) == containers
    finally:
        for app in apps:
            app.refresh_from_db()
            if app.status != DeploymentStatus.REMOVED:
                services.deployment_remove(deployment=app, delete_data=True, sync=True)
    # the shared server went with its last app
    assert pool_containers(lab, f"{pool}-postgres") == []
    assert SharedInstance.objects.get(engine="postgres").status == "removed"


def test_a_mariadb_pair_is_isolated_even_with_underscores(lab, lab_devices, pool):
    """`monica_<t>_1` unescaped in GRANT would also match `monica_<t>11`."""
    device = lab_devices[DEVICE]
    tag = "m" + pysecrets.token_hex(2)
    first = deploy("monica", f"{tag}-1", device.pk)
    second = deploy("monica", f"{tag}11", device.pk)
    try:
        one = PooledDatabase.objects.get(app_id=first.pk)
        two = PooledDatabase.objects.get(app_id=second.pk)
        assert one.database_name == f"monica_{tag}_1"
        assert two.database_name == f"monica_{tag}11"
        containers = pool_containers(lab, f"{pool}-mariadb")
        assert len(containers) == 1
        for app in (first, second):
            report = status(app)
            assert report["databases_ok"], report

        def login(user: PooledDatabase, database: str):
            return lab.exec(
                DEVICE,
                ["docker", "exec", "-e", f"MYSQL_PWD={user.password}", containers[0],
                 "mariadb", "-h", "127.0.0.1", "-u", user.role_name, "-N", "-e", "select 1",
                 database],
            )  # fmt: skip

        assert login(one, one.database_name).stdout.strip() == "1"
        denied = login(one, two.database_name)
        assert denied.returncode != 0 and "Access denied" in denied.stderr, denied.stderr
        denied = login(two, one.database_name)
        assert denied.returncode != 0 and "Access denied" in denied.stderr, denied.stderr

        # the health check reads both databases' sizes (new ones, without tables: 0 bytes)
        from pooling.services import shared_instances_check

        assert shared_instances_check(device=device) == []
        sizes = PooledDatabase.objects.filter(pk__in=(one.pk, two.pk)).values_list(
            "size_bytes", flat=True
        )
        assert all(size is not None and size >= 0 for size in sizes), list(sizes)
        held = connections_while_held(
            lab, device, containers[0], {"MYSQL_PWD": two.password},
            ["mariadb", "-h", "127.0.0.1", "-u", two.role_name, "-e", "select sleep(30)",
             two.database_name],
            [one, two],
        )  # fmt: skip
        assert held == {one.pk: 0, two.pk: 1}, held
    finally:
        for app in (first, second):
            app.refresh_from_db()
            if app.status != DeploymentStatus.REMOVED:
                services.deployment_remove(deployment=app, delete_data=True, sync=True)
    assert pool_containers(lab, f"{pool}-mariadb") == []


def test_the_last_apps_shared_server_can_be_kept_and_removed_later(lab, lab_devices, pool):
    """Removing the last app with keep_shared_servers leaves the server running (empty); the
    next app uses it; once unused again it is removed from the Shared databases page's
    service, refused while an app uses it."""
    from pooling.services import PoolingError, shared_instance_remove_unused

    device = lab_devices[DEVICE]
    tag = "k" + pysecrets.token_hex(2)
    project = f"{pool}-mariadb"
    first = deploy("monica", f"{tag}a", device.pk)
    services.deployment_remove(deployment=first, delete_data=True, keep_shared_servers=True, sync=True)
    [container] = pool_containers(lab, project)
    shared = SharedInstance.objects.get(engine="mariadb")
    assert shared.status == "running" and not PooledDatabase.objects.filter(instance=shared)
    second = deploy("monica", f"{tag}b", device.pk)
    try:
        assert pool_containers(lab, project) == [container]  # the kept server, reused
        assert PooledDatabase.objects.get(app_id=second.pk).instance_id == shared.pk
        with pytest.raises(PoolingError, match="1 app still uses the shared MariaDB"):
            shared_instance_remove_unused(instance=shared)
        assert pool_containers(lab, project) == [container]
    finally:
        services.deployment_remove(deployment=second, delete_data=True, keep_shared_servers=True, sync=True)
    assert pool_containers(lab, project) == [container]
    assert shared_instance_remove_unused(instance=shared) == "shared MariaDB removed"
    assert pool_containers(lab, project) == []
    shared.refresh_from_db()
    assert shared.status == "removed"


def test_the_bundled_form_stays_available(lab, lab_devices, pool):
    device = lab_devices[DEVICE]
    app = deploy("monica", f"b{pysecrets.token_hex(2)}", device.pk, bundled_databases=True)
    try:
        assert "mariadb:11" in app.compose_masked
        assert not PooledDatabase.objects.exists()
        assert status(app)["databases_ok"]
        assert "shared databases" not in [s.name for s in app.steps.all()]
    finally:
        services.deployment_remove(deployment=app, delete_data=True, sync=True)


def test_a_bundled_database_kept_with_its_app_opens_again_with_the_same_password(
    lab, lab_devices, pool
):
    """A bundled MariaDB sets its password at its first start only (as upstream's image):
    the app deployed again over the kept volume must get the same secrets, or it is locked
    out of its own data."""
    device = lab_devices[DEVICE]
    instance = f"w{pysecrets.token_hex(2)}"
    app = deploy("monica", instance, device.pk, bundled_databases=True)
    again = None
    try:
        assert status(app)["databases_ok"]
        services.deployment_remove(deployment=app, delete_data=False, sync=True)
        again = deploy("monica", instance, device.pk, bundled_databases=True)
        report = status(again)
        assert report["databases_ok"], report
        taken_over = again.secret_values() == app.secret_values()  # no secret in a failure
        assert taken_over
    finally:
        if again is not None:
            services.deployment_remove(deployment=again, delete_data=True, sync=True)
        _volumes_rm(lab, app.project)


@pytest.fixture
def sick_paperless(tmp_path, settings):
    """A copy of paperless-ngx whose health check never passes (container port 81)."""
    import shutil

    import yaml

    from marketplace.recipes import BUILTIN_DIR, clear_catalog_cache

    settings.HOMELAB_RECIPE_DIRS = [str(tmp_path)]
    slug = "sick-paper"
    folder = tmp_path / slug
    shutil.copytree(BUILTIN_DIR / "paperless-ngx", folder)
    manifest = yaml.safe_load((folder / "manifest.yaml").read_text())
    manifest["slug"] = slug
    manifest["health_check"] = {"type": "tcp", "port": 81, "timeout_seconds": 5}
    manifest["ports"].append(
        {"name": "silent", "container_port": 81, "default_host_port": 18081, "meaning": "Nothing."}
    )
    compose = (
        (folder / "compose.yaml")
        .read_text()
        .replace('- "8010:8000"', '- "8010:8000"\n      - "18081:81"')
    )
    (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    (folder / "compose.yaml").write_text(compose)
    clear_catalog_cache()
    assert slug in load_catalog().recipes, load_catalog().invalid
    yield slug
    clear_catalog_cache()


def test_a_failed_deployment_drops_its_new_database_and_the_new_shared_server(
    lab, lab_devices, pool, sick_paperless
):
    device = lab_devices[DEVICE]
    deployment = services.deployment_create(
        slug=sick_paperless,
        device_id=device.pk,
        instance=f"s{pysecrets.token_hex(2)}",
        config={"ports": {"web": free_port(), "silent": free_port()}},
        sync=True,
    )
    assert deployment.status == DeploymentStatus.ROLLED_BACK, deployment.error
    undone = [s.name for s in deployment.steps.filter(name__startswith="undo: ")]
    assert "undo: drop the database sick_paper_" + deployment.instance in undone
    assert "undo: remove the new shared PostgreSQL" in undone
    assert all(s.status == "undone" for s in deployment.steps.filter(name__startswith="undo: "))
    assert not PooledDatabase.objects.exists()
    assert pool_containers(lab, f"{pool}-postgres") == []
    # its Redis user went with it, and the shared Redis started for it too
    assert f"undo: remove the Redis user sick_paper_{deployment.instance} and its keys" in undone
    assert "undo: remove the new shared Redis" in undone
    assert pool_containers(lab, f"{pool}-redis") == []


def test_a_shared_server_left_by_another_install_is_not_taken_over_or_deleted(
    lab, lab_devices, pool
):
    """Homelab installed afresh (its database gone) while the device still has the earlier
    install's shared PostgreSQL data: that volume's admin password is not known here, and
    a failed start must never `down -v` it. The deployment fails before the app starts,
    says what to do, and the volume is untouched."""
    device = lab_devices[DEVICE]
    project = f"{pool}-postgres"
    volume = f"{project}_data"
    lab.exec(
        DEVICE,
        ["docker", "volume", "create", "--label", f"com.docker.compose.project={project}",
         volume],
        check=True,
    )  # fmt: skip
    deployment = deploy_refused(lab, "paperless-ngx", f"x{pysecrets.token_hex(2)}", device.pk)
    assert f"already has a data volume of a shared PostgreSQL ({project})" in deployment.error
    assert f"docker compose -p {project} down -v" in deployment.error
    assert "Give this app its own database server" in deployment.error
    listed = lab.exec(DEVICE, ["docker", "volume", "ls", "-q"]).stdout.split()
    assert volume in listed
    assert not SharedInstance.objects.filter(engine="postgres").exists()
    assert pool_containers(lab, project) == []


def test_a_shared_server_that_will_not_start_stops_the_deployment_before_the_app(
    lab, lab_devices, pool, monkeypatch
):
    """The shared PostgreSQL is given a setting it refuses, so it never becomes healthy:
    the deployment fails before the app starts, says what to do, and leaves nothing."""
    from pooling import instances

    device = lab_devices[DEVICE]
    shared_compose = engines.shared_compose

    def refused(engine, **kwargs):
        data = shared_compose(engine, **kwargs)
        if engine == "postgres":
            data["services"]["postgres"]["command"] += ["-c", "shared_buffers=lots"]
        return data

    monkeypatch.setattr(engines, "shared_compose", refused)
    monkeypatch.setattr(instances, "HEALTH_TIMEOUT_SECONDS", 25)
    deployment = deploy_refused(lab, "n8n", f"n{pysecrets.token_hex(2)}", device.pk)
    error = deployment.error
    assert f"The shared PostgreSQL on {device.name} did not become healthy within 25 s" in error
    assert "Give this app its own database server" in error
    assert 'invalid value for parameter "shared_buffers"' in error  # its log, to see why
    assert pool_containers(lab, f"{pool}-postgres") == []
    assert not SharedInstance.objects.exclude(status="removed").exists()
    assert not PooledDatabase.objects.exists()


def _volumes_rm(lab, project: str) -> None:
    vols = lab.exec(
        DEVICE,
        ["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={project}"],
    ).stdout.split()
    if vols:
        lab.exec(DEVICE, ["docker", "volume", "rm", *vols])


def test_keeping_an_apps_data_dumps_its_database_and_deploying_it_again_restores_it(
    lab, lab_devices, pool
):
    """MariaDB (Monica): "Keep my data" dumps the database before dropping it; deploying the
    same app and name again brings the rows back under the same login and the same app
    secrets; "Delete my data" then takes the dumps too."""
    device = lab_devices[DEVICE]
    instance = f"k{pysecrets.token_hex(2)}"
    app = deploy("monica", instance, device.pk)
    pooled = PooledDatabase.objects.get(app_id=app.pk)
    [container] = pool_containers(lab, f"{pool}-mariadb")

    def mariadb_as(db: PooledDatabase, sql: str, container: str):
        return lab.exec(
            DEVICE,
            [
                *("docker", "exec", "-e", f"MYSQL_PWD={db.password}", container, "mariadb"),
                *("-h", "127.0.0.1", "-N", "-u", db.role_name, db.database_name, "-e", sql),
            ],
        )

    made = mariadb_as(
        pooled,
        "create table contacts (name text); insert into contacts values ('Ada Lovelace')",
        container,
    )
    assert made.returncode == 0, made.stderr
    services.deployment_remove(deployment=app, delete_data=False, sync=True)
    step = app.steps.get(name="dump shared databases")
    assert "dumped to /opt/homelab/apps/pool-dumps/" in step.message, step.message
    path = step.message.split("dumped to ", 1)[1].split(";", 1)[0].strip()
    again = None
    try:
        dump = lab.exec(DEVICE, ["cat", path]).stdout
        assert "Ada Lovelace" in dump and "CREATE TABLE `contacts`" in dump
        assert pooled.password not in step.message
        assert not PooledDatabase.objects.exists()
        assert pool_containers(lab, f"{pool}-mariadb") == []  # went with its last app

        # the same app and name again: its data is back, under the same login
        again = deploy("monica", instance, device.pk)
        taken_over = again.secret_values() == app.secret_values()  # no secret in a failure
        assert taken_over
        restored = PooledDatabase.objects.get(app_id=again.pk)
        assert restored.password == pooled.password
        attach = again.steps.get(name="shared databases").message
        assert f"with the data kept at its removal ({path})" in attach, attach
        [container] = pool_containers(lab, f"{pool}-mariadb")
        rows = mariadb_as(restored, "select name from contacts", container)
        assert rows.stdout.strip() == "Ada Lovelace", rows.stderr
        assert status(again)["databases_ok"]

        # "Delete my data": the database, its dumps and what was kept for it are gone
        services.deployment_remove(deployment=again, delete_data=True, sync=True)
        left = lab.exec(
            DEVICE,
            ["sh", "-c", f"ls /opt/homelab/apps/pool-dumps/{restored.database_name}-* 2>/dev/null"],
        )
        assert left.stdout.strip() == ""
        app.refresh_from_db()
        assert not app.data_kept and app.kept_database_passwords() == {}
    finally:
        lab.exec(DEVICE, ["rm", "-f", path])
        if again is not None:
            again.refresh_from_db()
            if again.status != DeploymentStatus.REMOVED:
                services.deployment_remove(deployment=again, delete_data=True, sync=True)
        _volumes_rm(lab, app.project)


def test_a_kept_postgres_database_comes_back_with_the_app(lab, lab_devices, pool):
    device = lab_devices[DEVICE]
    instance = f"q{pysecrets.token_hex(2)}"
    app = deploy("paperless-ngx", instance, device.pk)
    pooled = PooledDatabase.objects.get(app_id=app.pk, instance__engine="postgres")

    def psql_as(db: PooledDatabase, sql: str):
        [container] = pool_containers(lab, f"{pool}-postgres")
        return lab.exec(
            DEVICE,
            ["docker", "exec", "-e", f"PGPASSWORD={db.password}", container, "psql",
             "-h", "127.0.0.1", "-U", db.role_name, "-d", db.database_name, "-tAc", sql],
        )  # fmt: skip

    made = psql_as(pooled, "create table docs(title text); insert into docs values ('tax 2026')")
    assert made.returncode == 0, made.stderr
    services.deployment_remove(deployment=app, delete_data=False, sync=True)
    again = None
    try:
        again = deploy("paperless-ngx", instance, device.pk)
        restored = PooledDatabase.objects.get(app_id=again.pk, instance__engine="postgres")
        assert restored.password == pooled.password
        assert psql_as(restored, "select title from docs").stdout.strip() == "tax 2026"
        # the role still owns what it made: it can write as before
        assert psql_as(restored, "insert into docs values ('tax 2027')").returncode == 0
        report = status(again)
        assert [d["login"] for d in report["databases"] if d["engine"] == "postgres"] == [True]
    finally:
        if again is not None:
            services.deployment_remove(deployment=again, delete_data=True, sync=True)
        lab.exec(
            DEVICE, ["sh", "-c", f"rm -f /opt/homelab/apps/pool-dumps/{pooled.database_name}-*"]
        )
        _volumes_rm(lab, app.project)


# --------------------------------------------------------------------------------- Redis
def redis_cli(lab, container: str, user: str, password: str, *command: str):
    """A real redis-cli inside the shared Redis container, logged in as `user`."""
    return lab.exec(
        DEVICE,
        ["docker", "exec", "-e", f"REDISCLI_AUTH={password}", container,
         "redis-cli", "--user", user, "-h", "127.0.0.1", *command],
    )  # fmt: skip


def redis_report(app) -> dict:
    report = status(app)
    [redis] = [d for d in report["databases"] if d["engine"] == "redis"]
    return redis


def test_two_paperless_share_one_redis_each_in_its_own_prefix(lab, lab_devices, pool):
    device = lab_devices[DEVICE]
    tag = pysecrets.token_hex(2)
    apps = [deploy("paperless-ngx", f"r{tag}{x}", device.pk) for x in "ab"]
    try:
        [redis_container] = pool_containers(lab, f"{pool}-redis")
        assert len(pool_containers(lab, f"{pool}-postgres")) == 1
        shared = SharedInstance.objects.get(engine="redis")
        users = {p.app_id: p for p in PooledDatabase.objects.filter(instance=shared)}
        assert len(users) == 2
        a, b = users[apps[0].pk], users[apps[1].pk]
        assert a.role_name == f"paperless_ngx_r{tag}a"
        for app in apps:
            pooled = users[app.pk]
            # the bundled broker is gone, the password is in no log
            assert "redis:7-alpine" not in app.compose_masked
            assert pooled.password not in app.compose_masked
            for command in app.commands.all():
                assert pooled.password not in command.command + command.output
            redis = redis_report(app)
            assert redis["login"] and redis["prefix_ok"] and redis["outside_refused"], redis
            assert redis["user"] == pooled.role_name and redis["host"] == f"{pool}-redis"
            assert redis["prefix"] == f"{pooled.role_name}:"

        # a real redis-cli: B cannot touch A's keys, can use its own, cannot list or flush
        assert redis_cli(lab, redis_container, a.role_name, a.password,
                         "SET", f"{a.role_name}:kept", "ada").stdout.strip() == "OK"  # fmt: skip
        for command in (
            ("GET", f"{a.role_name}:kept"),
            ("DEL", f"{a.role_name}:standin-check"),
            ("KEYS", "*"),
            ("FLUSHALL",),
            ("CONFIG", "GET", "requirepass"),
            ("SELECT", "1"),
        ):
            answer = redis_cli(lab, redis_container, b.role_name, b.password, *command).stdout
            assert answer.startswith("NOPERM"), (command, answer)
        assert redis_cli(lab, redis_container, b.role_name, b.password,
                         "SET", f"{b.role_name}:own", "1").stdout.strip() == "OK"  # fmt: skip
        queue = f"{b.role_name}:queue"
        assert redis_cli(lab, redis_container, b.role_name, b.password,
                         "LPUSH", queue, "job").stdout.strip() == "1"  # fmt: skip
        popped = redis_cli(lab, redis_container, b.role_name, b.password, "BRPOP", queue, "1")
        assert popped.stdout.split() == [queue, "job"]
        # a client that does not log in can do nothing
        anonymous = lab.exec(DEVICE, ["docker", "exec", redis_container, "redis-cli", "PING"])
        assert anonymous.stdout.startswith("NOAUTH"), anonymous.stdout

        # redeploying keeps the user's password and its keys
        from pooling.services import pooled_database_provision

        outcome = _run_pipeline_again(apps[0], load_catalog().get("paperless-ngx"))
        assert outcome.ok, outcome.error
        again = pooled_database_provision(deployment=apps[0], engine="redis")
        assert (again.pk, again.password) == (a.pk, a.password)
        assert redis_cli(lab, redis_container, a.role_name, a.password,
                         "GET", f"{a.role_name}:kept").stdout.strip() == "ada"  # fmt: skip

        # a killed shared Redis comes back with its users (aclfile) and keys (AOF)
        from pooling.services import shared_instance_measure_baseline, shared_instances_check

        time.sleep(2)  # appendfsync everysec
        lab.exec(DEVICE, ["docker", "kill", redis_container], check=True)
        said = shared_instances_check(device=device)
        assert any("shared Redis" in s and "started again" in s for s in said), said
        [redis_container] = pool_containers(lab, f"{pool}-redis")
        assert redis_cli(lab, redis_container, a.role_name, a.password,
                         "GET", f"{a.role_name}:kept").stdout.strip() == "ada"  # fmt: skip
        for app in apps:
            assert redis_report(app)["login"], redis_report(app)
        shared.refresh_from_db()
        assert shared.measured_memory_bytes and shared.measured_memory_bytes > 0
        assert PooledDatabase.objects.get(pk=a.pk).size_bytes > 0
        held = connections_while_held(
            lab, device, redis_container, {"REDISCLI_AUTH": b.password},
            ["redis-cli", "--user", b.role_name, "-h", "127.0.0.1", "BLPOP",
             f"{b.role_name}:never", "30"],
            [a, b],
        )  # fmt: skip
        assert held == {a.pk: 0, b.pk: 1}, held
        baseline = shared_instance_measure_baseline(instance=shared)
        print(
            f"redis: shared {shared.measured_memory_bytes} B, standalone {baseline} B, "
            f"default {engines.ENGINES['redis'].default_standalone_bytes} B"
        )
        assert baseline and baseline > 0

        # the API lists the shared Redis without secrets
        from pooling.api import instances

        listed = [i for i in instances(None) if i["engine"] == "redis"]
        assert listed and listed[0]["apps"] == 2
        assert a.password not in json.dumps(listed, default=str)
        assert shared.admin_password not in json.dumps(listed, default=str)

        # removing A deletes its user and keys; B keeps working on the same server
        services.deployment_remove(deployment=apps[0], delete_data=True, sync=True)
        admin = shared.admin_password
        users_now = redis_cli(lab, redis_container, "admin", admin, "ACL", "USERS").stdout.split()
        assert a.role_name not in users_now and b.role_name in users_now
        left = redis_cli(lab, redis_container, "admin", admin,
                         "--scan", "--pattern", f"{a.role_name}:*").stdout.split()  # fmt: skip
        assert left == []
        denied = redis_cli(lab, redis_container, a.role_name, a.password, "PING")
        assert "WRONGPASS" in denied.stdout + denied.stderr
        assert redis_report(apps[1])["login"]
        assert pool_containers(lab, f"{pool}-redis") == [redis_container]
    finally:
        for app in apps:
            app.refresh_from_db()
            if app.status != DeploymentStatus.REMOVED:
                services.deployment_remove(deployment=app, delete_data=True, sync=True)
    assert pool_containers(lab, f"{pool}-redis") == []
    assert SharedInstance.objects.get(engine="redis").status == "removed"

"""Backups on the lab: restic (the lab's stand-in, Debian's 0.14, under the pinned official
name) in a container on the app's device, to the lab's S3 server (rclone serve s3).

1. An S3 destination from the lab's endpoint and keys; its Test passes from a device.
2. Vaultwarden (the lab's stand-in app) deployed on lab-server-1; a marker file with its
   own owner and mode written into its data volume.
3. Back up now: a snapshot row with sizes; restic's repository is in the bucket.
4. The marker deleted; restore in place: the app stopped, the volume restored, the app
   started and healthy; the marker back with the same content, owner and mode.
5. A second destination with a wrong secret key: its Test fails in plain words; a backup
   now fails naming that destination and the key, with no snapshot there, while the good
   destination keeps its new snapshot.
Everything the test made (app, buckets) is removed at the end.
"""

from __future__ import annotations

import secrets as pysecrets

import pytest

from backups import services
from backups.models import Snapshot
from homelab.core.models import JobStatus, JobStep
from marketplace import services as app_services
from marketplace.models import DeploymentStatus
from marketplace.recipes import load_catalog

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

DEVICE = "lab-server-1"


@pytest.fixture(scope="module")
def standin_images(lab):
    from tests.lab.images import build_and_push_recipe_images

    return build_and_push_recipe_images(lab, load_catalog([]), verbose=False)


@pytest.fixture
def buckets(lab):
    made: list[str] = []

    def make() -> str:
        name = f"t-{pysecrets.token_hex(4)}"
        lab.s3.make_bucket(name)
        made.append(name)
        return name

    yield make
    for name in made:
        lab.s3.remove_bucket(name)


def _destination(lab, bucket: str, *, name: str, secret: str | None = None):
    return services.destination_create(
        data={
            "name": name,
            "kind": "s3",
            "endpoint": lab.s3.endpoint,
            "bucket": bucket,
            "region": lab.s3.region,
            "access_key": lab.s3.access_key,
            "secret_key": secret or lab.s3.secret_key,
        }
    )


def _steps(job) -> str:
    return "\n".join(
        f"{s.name}: {s.status} {s.message}" for s in JobStep.objects.filter(job_id=job.pk)
    )


def _container(lab, project: str) -> str:
    label = f"label=com.docker.compose.project={project}"
    return lab.exec(DEVICE, ["docker", "ps", "-q", "--filter", label]).stdout.split()[0]


def _sh(lab, container: str, script: str) -> str:
    done = lab.exec(DEVICE, ["docker", "exec", container, "sh", "-c", script])
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_backup_restore_in_place_and_a_wrong_secret(lab, lab_devices, standin_images, buckets):
    good = _destination(lab, buckets(), name="Lab S3")
    tested = services.destination_test(destination=good, device=lab_devices[DEVICE])
    assert tested["ok"], tested
    assert lab.s3.secret_key not in tested["message"]

    port = 20000 + pysecrets.randbelow(20000)
    deployment = app_services.deployment_create(
        slug="vaultwarden",
        instance=f"b{pysecrets.token_hex(3)}",
        device_id=lab_devices[DEVICE].pk,
        config={"ports": {"web": port}},
        sync=True,
    )
    try:
        assert deployment.status == DeploymentStatus.RUNNING, deployment.error
        container = _container(lab, deployment.project)
        _sh(
            lab,
            container,
            "printf 'marker 42\\n' > /data/marker.txt && chown 1234:2345 /data/marker.txt "
            "&& chmod 640 /data/marker.txt",
        )

        # back up now
        job = services.deployment_backup(deployment=deployment, sync=True)
        assert job.status == JobStatus.SUCCEEDED, f"{job.error}\n{_steps(job)}"
        assert job.percent == 100.0 and job.bytes_total  # restic's status, followed live
        snapshot = Snapshot.objects.get(deployment=deployment)
        assert snapshot.kind == "volumes" and len(snapshot.restic_id) >= 8  # 0.14: short id
        assert snapshot.total_bytes > 0 and snapshot.files >= 2
        assert snapshot.volumes == [f"{deployment.project}_data"]
        assert (
            lab.s3.secret_key not in job.output and snapshot.repository.password not in job.output
        )
        # "What I did" shows the restic commands, with the secrets' names only
        done = " ".join(c.command + c.output for c in deployment.commands.all())
        assert "--cache-dir /cache backup --json" in done
        assert "-e RESTIC_PASSWORD" in done and "-e AWS_SECRET_ACCESS_KEY" in done
        assert lab.s3.secret_key not in done and snapshot.repository.password not in done

        # lose the marker, restore in place
        _sh(lab, container, "rm /data/marker.txt")
        job = services.snapshot_restore(snapshot=snapshot, sync=True)
        assert job.status == JobStatus.SUCCEEDED, f"{job.error}\n{_steps(job)}"
        names = [s.name for s in JobStep.objects.filter(job_id=job.pk)]
        assert names == [
            "check the snapshot", "stop the app", "restore the volumes", "start the app",
            "health check",
        ]  # fmt: skip
        container = _container(lab, deployment.project)
        assert _sh(lab, container, "cat /data/marker.txt") == "marker 42"
        assert _sh(lab, container, "stat -c '%u:%g %a' /data/marker.txt") == "1234:2345 640"

        # a destination with a wrong secret: a clear error, no snapshot of that run
        bad = _destination(lab, buckets(), name="Wrong key", secret="not-the-secret-key")
        tested = services.destination_test(destination=bad, device=lab_devices[DEVICE])
        assert not tested["ok"]
        assert "refused the access key or secret key" in tested["message"], tested
        job = services.deployment_backup(deployment=deployment, sync=True)
        assert job.status == JobStatus.FAILED
        assert "refused the access key or secret key" in job.error, f"{job.error}\n{_steps(job)}"
        assert "not-the-secret-key" not in job.error + job.output
        assert "Wrong key" in job.error and "it did succeed on Lab S3" in job.error
        assert not Snapshot.objects.filter(destination=bad).exists()
        # the good destination got its new snapshot (and retention kept one per day)
        assert Snapshot.objects.filter(destination=good, job_id=job.pk).count() == 1
    finally:
        app_services.deployment_remove(deployment=deployment, delete_data=True, sync=True)


def test_a_pooled_postgres_app_dump_restore_and_a_failed_dump(
    lab, lab_devices, standin_images, buckets, settings
):
    """n8n with its database in the device's shared PostgreSQL: the dump is streamed into
    restic beside the volumes; a row deleted after the backup is back after the restore;
    a dump that fails (its database gone) fails the backup and leaves no snapshot."""
    from pooling.models import PooledDatabase
    from tests.integration.test_pooling_lab import DEVICE as POOL_DEVICE
    from tests.integration.test_pooling_lab import deploy

    tag = pysecrets.token_hex(3)
    settings.HOMELAB_POOL_PREFIX = f"hl-pool-b{tag}"
    settings.HOMELAB_POOL_NETWORK = f"homelab-pool-b{tag}"
    good = _destination(lab, buckets(), name="Lab S3")
    deployment = deploy("n8n", f"b{tag}", lab_devices[POOL_DEVICE].pk)
    pooled = PooledDatabase.objects.get(app_id=deployment.pk, instance__engine="postgres")
    project = f"{settings.HOMELAB_POOL_PREFIX}-postgres"
    label = f"label=com.docker.compose.project={project}"
    server = lab.exec(POOL_DEVICE, ["docker", "ps", "-q", "--filter", label]).stdout.split()[0]

    def sql(statement: str) -> str:
        psql = ["psql", "-U", "postgres", "-d", pooled.database_name, "-tA", "-c", statement]
        done = lab.exec(POOL_DEVICE, ["docker", "exec", server, *psql])
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    try:
        sql("create table backup_marker (v text); insert into backup_marker values ('m42')")
        job = services.deployment_backup(deployment=deployment, sync=True)
        assert job.status == JobStatus.SUCCEEDED, f"{job.error}\n{_steps(job)}"
        rows = {s.kind: s for s in Snapshot.objects.filter(job_id=job.pk)}
        assert set(rows) == {"volumes", "db"}
        assert rows["db"].group_id == rows["volumes"].pk
        assert rows["db"].database == pooled.database_name and rows["db"].total_bytes > 0
        assert pooled.password not in job.output

        sql("delete from backup_marker")
        job = services.snapshot_restore(snapshot=rows["volumes"], sync=True)
        assert job.status == JobStatus.SUCCEEDED, f"{job.error}\n{_steps(job)}"
        assert sql("select v from backup_marker") == "m42"

        # a dump that fails: the app's database is not there under its name any more
        PooledDatabase.objects.filter(pk=pooled.pk).update(database_name="gone_db")
        before = Snapshot.objects.filter(destination=good).count()
        job = services.deployment_backup(deployment=deployment, sync=True)
        assert job.status == JobStatus.FAILED
        assert "Dumping gone_db failed" in job.error, f"{job.error}\n{_steps(job)}"
        assert not Snapshot.objects.filter(job_id=job.pk).exists()
        assert Snapshot.objects.filter(destination=good).count() == before
    finally:
        PooledDatabase.objects.filter(pk=pooled.pk).update(database_name=pooled.database_name)
        app_services.deployment_remove(deployment=deployment, delete_data=True, sync=True)
        for engine in ("postgres", "redis"):
            label = f"label=com.docker.compose.project={settings.HOMELAB_POOL_PREFIX}-{engine}"
            ids = lab.exec(POOL_DEVICE, ["docker", "ps", "-aq", "--filter", label]).stdout.split()
            if ids:
                lab.exec(POOL_DEVICE, ["docker", "rm", "-f", "-v", *ids])
            vols = lab.exec(
                POOL_DEVICE, ["docker", "volume", "ls", "-q", "--filter", label]
            ).stdout.split()
            if vols:
                lab.exec(POOL_DEVICE, ["docker", "volume", "rm", *vols])
            folder = f"/opt/homelab/apps/{settings.HOMELAB_POOL_PREFIX}-{engine}"
            lab.exec(POOL_DEVICE, ["rm", "-rf", folder])


def test_cancelling_a_backup_stops_restic_and_keeps_no_snapshot(
    lab, lab_devices, standin_images, buckets
):
    """A backup slowed by the destination's upload limit is cancelled while restic runs:
    the restic container is stopped, the job ends cancelled, no snapshot is recorded, and
    the app keeps running."""
    import threading
    import time

    from django.db import connection

    from homelab.core.models import Job
    from homelab.core.services import job_cancel

    destination = _destination(lab, buckets(), name="Slow S3")
    destination.upload_limit_kib = 256
    destination.save()
    deployment = app_services.deployment_create(
        slug="vaultwarden",
        instance=f"c{pysecrets.token_hex(3)}",
        device_id=lab_devices[DEVICE].pk,
        config={"ports": {"web": 20000 + pysecrets.randbelow(20000)}},
        sync=True,
    )
    try:
        assert deployment.status == DeploymentStatus.RUNNING, deployment.error
        container = _container(lab, deployment.project)
        _sh(lab, container, "head -c 8388608 /dev/urandom > /data/big.bin")

        def backup() -> None:
            try:
                services.deployment_backup(deployment=deployment, sync=True)
            finally:
                connection.close()

        worker = threading.Thread(target=backup)
        worker.start()
        deadline = time.monotonic() + 120
        job = None
        while time.monotonic() < deadline:
            job = Job.objects.filter(kind="backup.run", target_id=str(deployment.pk)).first()
            if (
                job
                and JobStep.objects.filter(
                    job_id=job.pk, name__startswith="back up volumes", status="running"
                ).exists()
            ):
                break
            time.sleep(0.5)
        assert job is not None, "the backup job did not reach restic"
        time.sleep(3)  # restic is uploading now
        job_cancel(job_id=job.pk)
        worker.join(timeout=120)
        job.refresh_from_db()
        assert job.status == JobStatus.CANCELLED, f"{job.error}\n{_steps(job)}"
        assert not Snapshot.objects.filter(job_id=job.pk).exists()
        name = f"homelab-restic-job-{job.pk}"
        left = lab.exec(DEVICE, ["docker", "ps", "-aq", "--filter", f"name={name}"]).stdout
        assert not left.strip()
        assert _container(lab, deployment.project) == container  # the app still runs
    finally:
        app_services.deployment_remove(deployment=deployment, delete_data=True, sync=True)

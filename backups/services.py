"""Backups, top to bottom: destinations, repositories, backup, retention, restore.

destination_create / _update / _delete   S3 (and SFTP, stored) destinations; secrets encrypted
destination_test                         restic on a device opens a test repository there
deployment_backup                        starts a `backup.run` job (202 {"job_id"})
snapshot_restore                         starts a `backup.restore` job
deployment_forget                        starts a `backup.forget` job (retention + prune)

In the jobs (backups.jobs), under the app's device lease:

backup_run    for every destination: open (init) the app's repository, back up its
              volumes (mounted read-only), stream each pooled database's dump into
              `restic backup --stdin`, record the snapshots, then forget + prune by policy.
              A failed dump or a failed backup forgets what this run stored: no snapshot
              that looks good is left. restic exit 3 (files unreadable) is a warning: the
              snapshot is kept, marked incomplete, and the job fails saying so.
restore_run   stop the app, restore its volumes, load its dumps, start it, health check;
              the app is started again whatever fails after it was stopped.
forget_run    forget + prune per repository.

restic runs in a container on the app's device (backups.restic); data goes from the device
to the destination, never through the control plane. Secrets reach the container through
its environment, from the command's stdin.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import shlex
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from backups import restic
from backups.models import Destination, Policy, Repository, Snapshot
from devices.compose import DeviceShell, StepFailed
from devices.models import Device
from devices.ssh import SSHError
from homelab.core.errors import HomelabError
from homelab.core.jobs import JobCancelled, JobFailed, Target
from homelab.core.secrets import generate_secret
from homelab.core.services import job_enqueue
from marketplace.models import Deployment, DeploymentStatus
from pooling.models import PooledDatabase
from pooling.services import databases_of_app

logger = logging.getLogger(__name__)

BACKUP_TIMEOUT = 3300  # one restic command; the job itself has 3600 s (Q_CLUSTER retry: 3700)
COMMAND_TIMEOUT = 300
PASSWORD_LENGTH = 48
TEST_REPOSITORY = ".homelab-test"
DUMPED_ENGINES = ("postgres", "mariadb")


class BackupError(HomelabError):
    """What stopped a backup operation, in words that say what to do."""

    default_code = 409


# ----------------------------------------------------------------------- destinations
S3_FIELDS = ("endpoint", "bucket", "region", "prefix")
SFTP_FIELDS = ("address", "port", "username", "path")
PUBLIC_FIELDS = ("name", "kind", *S3_FIELDS, *SFTP_FIELDS, "upload_limit_kib")
SECRET_FIELDS = {"s3": ("access_key", "secret_key"), "sftp": ("password",)}


def _validate(destination: Destination) -> None:
    try:
        destination.full_clean(exclude=["access_key", "secret_key", "password"])
    except ValidationError as exc:
        first, messages = next(iter(exc.message_dict.items()))
        raise BackupError(f"{first}: {' '.join(messages)}", field=first, code=422) from None
    if destination.kind == Destination.Kind.S3:
        for name in ("endpoint", "bucket", "access_key", "secret_key"):
            if not getattr(destination, name):
                raise BackupError(
                    f"{name}: an S3 destination needs its {name.replace('_', ' ')}.",
                    field=name,
                    code=422,
                )
    elif destination.kind == Destination.Kind.SFTP:
        for name in ("address", "username", "path"):
            if not getattr(destination, name):
                raise BackupError(
                    f"{name}: an SFTP destination needs its {name}.", field=name, code=422
                )


def destination_create(*, data: dict) -> Destination:
    """A destination from the fields of its kind; the secrets are stored encrypted."""
    kind = data.get("kind")
    if kind not in Destination.Kind.values:
        raise BackupError("kind: choose s3 or sftp.", field="kind", code=422)
    destination = Destination(kind=kind)
    for name in PUBLIC_FIELDS:
        if data.get(name) is not None:
            setattr(destination, name, data[name])
    for name in SECRET_FIELDS[kind]:
        setattr(destination, name, data.get(name) or "")
    if Destination.objects.filter(name=destination.name).exists():
        raise BackupError(
            f"name: there is a destination called {destination.name!r} already; choose "
            "another name.",
            field="name",
            code=409,
        )
    _validate(destination)
    destination.save()
    return destination


def destination_update(*, destination: Destination, data: dict) -> Destination:
    """Change fields; a secret left out (or empty) keeps its stored value."""
    for name in PUBLIC_FIELDS:
        if name == "kind":
            continue
        if data.get(name) is not None:
            setattr(destination, name, data[name])
    for name in SECRET_FIELDS.get(destination.kind, ()):
        if data.get(name):
            setattr(destination, name, data[name])
    if Destination.objects.filter(name=destination.name).exclude(pk=destination.pk).exists():
        raise BackupError(
            f"name: there is a destination called {destination.name!r} already.",
            field="name",
            code=409,
        )
    _validate(destination)
    destination.save()
    return destination


def destination_delete(*, destination: Destination, confirm: str = "") -> None:
    """Refused while it holds snapshots, unless `confirm` is the destination's name (the
    snapshots stay in the storage; the product forgets about them)."""
    held = Snapshot.objects.filter(destination=destination).count()
    if held and confirm != destination.name:
        raise BackupError(
            f"{destination.name} holds {held} snapshot(s). To delete it anyway, send "
            f"confirm={destination.name!r}; the data stays in the storage but the product "
            "forgets it.",
            field="confirm",
            code=409,
        )
    with transaction.atomic():
        Snapshot.objects.filter(destination=destination).delete()
        Repository.objects.filter(destination=destination).delete()
        destination.delete()


def _access(destination: Destination, path: str, password: str) -> restic.Access:
    if destination.kind != Destination.Kind.S3:
        raise BackupError(
            f"{destination.name} is an SFTP destination; this version backs up to S3 "
            "destinations only (SFTP comes next).",
            code=422,
        )
    return restic.Access(
        repository=restic.s3_repository(destination.endpoint, destination.bucket, path),
        password=password,
        env=restic.s3_env(destination.access_key, destination.secret_key, destination.region),
    )


def _test_device() -> Device:
    device = (
        Device.objects.filter(status="online").exclude(docker_version="").order_by("pk").first()
    )
    if device is None:
        raise BackupError(
            "No device is online to test from: the test runs restic on a device, as the "
            "backups do. Add or start a device, then press Test again.",
            code=409,
        )
    return device


def destination_test(*, destination: Destination, device: Device | None = None) -> dict:
    """Open (create once) a small test repository on the destination from a device, with
    the same restic container as the backups: it writes, reads and lists there.
    {"ok", "free_bytes", "message"}; the result is kept on the destination."""
    device = device or _test_device()
    password = _test_password(destination)
    access = _access(destination, f"{destination.prefix}/{TEST_REPOSITORY}", password)
    runner = ResticOnDevice(DeviceShell(device, secrets=access.secrets()), access)
    try:
        verdict = runner.ensure_repository()
        if verdict.ok:
            code, _out, err = runner.run(restic.snapshots_args(), timeout=COMMAND_TIMEOUT)
            verdict = restic.classify(code, err, what="Reading the test repository")
    except (HomelabError, SSHError, StepFailed) as exc:
        verdict = restic.Verdict(
            "failed",
            "device",
            f"The test could not run on {device.name}: {exc}. Check that the device is "
            "online, then press Test again.",
        )
    ok = verdict.ok
    message = (
        f"{destination.name} works: restic on {device.name} wrote, read and listed a test "
        "repository there."
        if ok
        else verdict.message
    )
    destination.last_test_at = timezone.now()
    destination.last_test_ok = ok
    destination.last_test_message = message
    destination.free_bytes = None  # S3 storage does not tell its free space
    destination.save(
        update_fields=["last_test_at", "last_test_ok", "last_test_message", "free_bytes"]
    )
    return {"ok": ok, "free_bytes": None, "message": message}


def _test_password(destination: Destination) -> str:
    """The test repository's password: stable per destination and install, never stored
    in clear (a keyed hash of the destination's id under the install's SECRET_KEY)."""
    key = str(settings.SECRET_KEY).encode()
    return hmac.new(key, f"backup-test-{destination.pk}".encode(), hashlib.sha256).hexdigest()


# ------------------------------------------------------------------------ restic on a device
class ResticOnDevice:
    """restic in a container on one device, for one repository."""

    def __init__(
        self,
        shell,
        access: restic.Access,
        *,
        memory: str = restic.DEFAULT_MEMORY,
        upload_limit_kib: int | None = None,
    ):
        self.shell = shell
        self.access = access
        self.memory = memory
        self.upload_limit_kib = upload_limit_kib
        for value in access.secrets():
            if value not in shell.secrets:
                shell.secrets.append(value)

    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**self.access.environment(), **(extra or {})}

    def command(self, args: list[str], **kw) -> str:
        env_names = list(self._env(kw.pop("extra_env", None)).keys())
        return shlex.join(
            restic.docker_run(
                args,
                env_names=env_names,
                memory=self.memory,
                network="host",
                upload_limit_kib=self.upload_limit_kib,
                **kw,
            )
        )

    def run_line(
        self, line: str, *, timeout: float, extra_env: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        stdin = restic.env_stdin(self._env(extra_env))
        return self.shell.run(restic.device_command(line), timeout=timeout, stdin=stdin)

    def run(
        self, args: list[str], *, timeout: float, volumes=(), read_only: bool = True
    ) -> tuple[int, str, str]:
        line = self.command(args, volumes=list(volumes), read_only=read_only)
        return self.run_line(line, timeout=timeout)

    def stream(
        self, args: list[str], *, job, timeout: float, volumes=(), read_only: bool = True
    ) -> tuple[int, str, str]:
        """Run while following restic's --json status lines as the job's progress; a
        cancel stops the container (restic then leaves no snapshot) and cancels the job."""
        from backups.stream import StreamStopped, run_streaming
        from homelab.core.models import Job

        name = f"homelab-restic-job-{job.job.pk}"
        env = {"RESTIC_PROGRESS_FPS": "0.5"}  # one status line every 2 s
        line = self.command(
            args, volumes=list(volumes), read_only=read_only, name=name, extra_env=env
        )

        def on_line(text: str) -> None:
            for msg in restic.json_lines(text):
                if msg.get("message_type") == "status":
                    p = restic.status_progress(msg)
                    job.progress(
                        percent=p["percent"],
                        bytes_done=p["bytes_done"],
                        bytes_total=p["bytes_total"] or None,
                    )

        def should_stop() -> bool:
            return Job.objects.filter(pk=job.job.pk, cancel_requested=True).exists()

        try:
            return run_streaming(
                self.shell,
                restic.device_command(line),
                stdin=restic.env_stdin(self._env(env)),
                timeout=timeout,
                on_line=on_line,
                should_stop=should_stop,
                stop_args=["docker", "stop", name],
            )
        except StreamStopped:
            raise JobCancelled from None

    def version(self) -> str:
        code, out, _ = self.run(restic.version_args(), timeout=COMMAND_TIMEOUT)
        found = restic.parse_version(out)
        return ".".join(map(str, found)) if code == 0 and found else "unknown"

    def ensure_repository(self) -> restic.Verdict:
        """Open the repository; create it when there is none. The verdict says why not."""
        code, _out, err = self.run(restic.cat_config_args(), timeout=COMMAND_TIMEOUT)
        verdict = restic.classify(code, err, what="Opening the repository")
        if verdict.reason != "no_repository":
            return verdict
        code, _out, err = self.run(restic.init_args(), timeout=COMMAND_TIMEOUT)
        return restic.classify(code, err, what="Creating the repository")


# ---------------------------------------------------------------------------- policy
def policy_default() -> Policy:
    policy = Policy.objects.filter(deployment__isnull=True).first()
    return policy or Policy.objects.create()


def policy_for(deployment: Deployment) -> Policy:
    return Policy.objects.filter(deployment=deployment).first() or policy_default()


POLICY_FIELDS = ("schedule", "keep_daily", "keep_weekly", "keep_monthly", "enabled")


def policy_set(*, data: dict, deployment: Deployment | None = None) -> Policy:
    """Change the default policy, or set one app's own (created from the default)."""
    if deployment is None:
        policy = policy_default()
    else:
        policy = Policy.objects.filter(deployment=deployment).first()
        if policy is None:
            base = policy_default()
            policy = Policy(deployment=deployment, **{f: getattr(base, f) for f in POLICY_FIELDS})
    for name in POLICY_FIELDS:
        if data.get(name) is not None:
            setattr(policy, name, data[name])
    try:
        policy.full_clean(exclude=["deployment"])
        restic.Retention(policy.keep_daily, policy.keep_weekly, policy.keep_monthly)
    except ValidationError as exc:
        first, messages = next(iter(exc.message_dict.items()))
        raise BackupError(f"{first}: {' '.join(messages)}", field=first, code=422) from None
    except restic.ResticInputError as exc:
        raise BackupError(f"keep_daily: {exc}", field="keep_daily", code=422) from None
    policy.save()
    return policy


def policy_clear(*, deployment: Deployment) -> Policy:
    """The app follows the default policy again."""
    Policy.objects.filter(deployment=deployment).delete()
    return policy_default()


def retention_of(policy: Policy) -> restic.Retention:
    return restic.Retention(policy.keep_daily, policy.keep_weekly, policy.keep_monthly)


# ------------------------------------------------------------------------ repositories
def repository_for(deployment: Deployment, destination: Destination) -> Repository:
    """The app's repository on the destination, with a generated password (once)."""
    repo = Repository.objects.filter(deployment=deployment, destination=destination).first()
    if repo is not None:
        return repo
    path = f"{destination.prefix}/app-{deployment.pk}-{deployment.slug}"
    repo, _ = Repository.objects.get_or_create(
        deployment=deployment,
        destination=destination,
        defaults={"path": path, "password": generate_secret(PASSWORD_LENGTH)},
    )
    return repo


def access_for(repo: Repository) -> restic.Access:
    return _access(repo.destination, repo.path, repo.password)


def runner_for(shell, repo: Repository) -> ResticOnDevice:
    return ResticOnDevice(
        shell, access_for(repo), upload_limit_kib=repo.destination.upload_limit_kib
    )


def secret_values_for(deployment: Deployment) -> list[str]:
    """Every secret a backup job of this app may handle, for masking."""
    values = []
    for repo in Repository.objects.filter(deployment=deployment).select_related("destination"):
        values += [repo.password, *repo.destination.secret_values()]
    for destination in Destination.objects.all():
        values += destination.secret_values()
    for pooled in databases_of_app(device_id=deployment.device_id, project=deployment.project):
        values += [pooled.password, pooled.instance.admin_password]
    return [v for v in values if v]


# ------------------------------------------------------------------------ starting jobs
BACKUP_ALLOWED = (DeploymentStatus.RUNNING, DeploymentStatus.STOPPED, "unhealthy", "crashed")


def _target(deployment: Deployment) -> Target:
    return Target("deployment", deployment.pk, f"{deployment.app_name} on {deployment.device}")


def _refuse_unless_installed(deployment: Deployment, action: str) -> None:
    from marketplace.models import INSTALLED_STATUSES

    if deployment.status not in INSTALLED_STATUSES:
        raise BackupError(
            f"{deployment.app_name} is {deployment.get_status_display().lower()}; only an "
            f"installed app can be {action}.",
            field="status",
            code=409,
        )


def deployment_backup(*, deployment: Deployment, user=None, sync: bool = False):
    """Back the app up now to every destination: a `backup.run` job."""
    _refuse_unless_installed(deployment, "backed up")
    if not Destination.objects.exists():
        raise BackupError(
            "There is no backup destination yet. Add one (Backups > Add a destination), "
            "then back up again.",
            code=409,
        )
    return job_enqueue(
        kind="backup.run",
        target=_target(deployment),
        user=user,
        params={"deployment_id": deployment.pk},
        sync=sync,
    )


def snapshot_restore(*, snapshot: Snapshot, user=None, sync: bool = False):
    """Put the app back as it was in the snapshot, in place: a `backup.restore` job."""
    if snapshot.kind != Snapshot.Kind.VOLUMES:
        snapshot = snapshot.group or snapshot
    _refuse_unless_installed(snapshot.deployment, "restored in place")
    return job_enqueue(
        kind="backup.restore",
        target=_target(snapshot.deployment),
        user=user,
        params={"deployment_id": snapshot.deployment_id, "snapshot_id": snapshot.pk},
        sync=sync,
    )


def deployment_forget(*, deployment: Deployment, user=None, sync: bool = False):
    return job_enqueue(
        kind="backup.forget",
        target=_target(deployment),
        user=user,
        params={"deployment_id": deployment.pk},
        sync=sync,
    )


# ------------------------------------------------------------------------ in the jobs
def _lease(job, deployment: Deployment):
    from marketplace.services import device_lease, job_lease_holder

    return device_lease(device_id=deployment.device_id, holder=job_lease_holder(job.job.pk))


def _shell(job, deployment: Deployment):
    from marketplace.shell import DeploymentShell

    shell = DeploymentShell(deployment, secrets=job.secrets)
    shell.secrets = job.secrets  # one list: secrets added later are masked too
    return shell


def app_volumes(shell, deployment: Deployment) -> list[str]:
    """The app's data volumes on its device (compose project label), by docker name."""
    from marketplace.recipes import load_catalog

    code, out, err = shell.run(
        [
            *("docker", "volume", "ls", "--filter"),
            f"label=com.docker.compose.project={deployment.project}",
            *("--format", '{{.Name}}\t{{.Label "com.docker.compose.volume"}}'),
        ],
        timeout=60,
    )
    if code != 0:
        raise JobFailed(f"Listing the app's volumes on {deployment.device.name} failed: {err}")
    recipe = load_catalog().recipes.get(deployment.slug)
    wanted = (
        {v.name for v in recipe.manifest.volumes if v.holds_data}
        if recipe is not None and recipe.manifest.volumes
        else None
    )
    found = []
    for line in out.splitlines():
        name, _, compose_name = line.partition("\t")
        name = name.strip()
        if not name or not restic.VOLUME_RE.fullmatch(name):
            continue
        if wanted is None or compose_name.strip() in wanted:
            found.append(name)
    return sorted(found)


def _db_container(shell, pooled: PooledDatabase) -> str:
    from pooling import engines

    spec = engines.ENGINES[pooled.instance.engine]
    code, out, _ = shell.run(
        [
            *("docker", "ps", "--filter"),
            f"label=com.docker.compose.project={pooled.instance.project}",
            "--filter",
            f"label=com.docker.compose.service={spec.service}",
            *("--format", "{{.ID}}"),
        ],
        timeout=60,
    )
    container = out.strip().splitlines()[0].strip() if code == 0 and out.strip() else ""
    if not container:
        raise JobFailed(
            f"The shared {pooled.instance.get_engine_display()} on {pooled.instance.device} "
            f"is not running, so {pooled.database_name} cannot be dumped. Start it (Shared "
            "databases page) and back up again."
        )
    return container


@dataclass
class _Made:
    """What this run stored in one repository (forgotten again when the run fails)."""

    runner: ResticOnDevice
    ids: list[str]


def _check(verdict: restic.Verdict) -> None:
    if verdict.status == "failed":
        raise JobFailed(verdict.message)


def backup_run(*, job, deployment: Deployment) -> dict:
    """The device work of `backup.run` (see the module docstring).

    Each destination stands alone: one that fails (wrong keys, a failed dump) has what
    this run stored there forgotten at once and is named in the job's error, while the
    others keep their new snapshot and get their retention. Retention (forget + prune)
    runs only after a whole, successful backup of that repository."""
    destinations = list(Destination.objects.filter(kind=Destination.Kind.S3))
    if not destinations:
        raise JobFailed("There is no S3 destination to back up to; add one and try again.")
    job.secrets.extend(secret_values_for(deployment))
    policy = policy_for(deployment)
    warnings: list[str] = []
    failures: list[str] = []
    made: list[Snapshot] = []
    with _lease(job, deployment):
        shell = _shell(job, deployment)
        with job.step("find the app's data") as step:
            volumes = app_volumes(shell, deployment)
            databases = [
                p
                for p in databases_of_app(
                    device_id=deployment.device_id, project=deployment.project
                ).select_related("instance", "instance__device")
                if p.instance.engine in DUMPED_ENGINES
            ]
            if not volumes and not databases:
                raise JobFailed(
                    f"{deployment.app_name} has no volume and no database on "
                    f"{deployment.device.name} to back up."
                )
            step.message = (
                f"volumes: {', '.join(volumes) or 'none'}; databases: "
                f"{', '.join(p.database_name for p in databases) or 'none'}"
            )
        host = restic.host_for(deployment.device_id, deployment.project)
        for destination in destinations:
            job.check_cancelled()
            repo = repository_for(deployment, destination)
            stored = _Made(runner_for(shell, repo), [])
            try:
                rows, warning = _backup_to(
                    job, stored, repo, deployment, host, volumes, databases, policy
                )
            except JobCancelled:
                _forget_now(job, stored, destination)
                raise
            except Exception as exc:
                failures.append(f"{destination.name}: {job.describe_error(exc)}")
                _forget_now(job, stored, destination)
                continue
            made += rows
            if warning:
                warnings.append(f"{destination.name}: {warning}")
    if failures:
        kept = sorted({s.destination.name for s in made})
        raise JobFailed(
            "The backup failed on "
            + " ".join(failures)
            + (f" (it did succeed on {', '.join(kept)})" if kept else "")
        )
    if warnings:  # an incomplete snapshot is kept, marked so; the job says it is not whole
        raise JobFailed("The backup was stored, but it is not whole: " + " ".join(warnings))
    return {"snapshots": [s.pk for s in made], "destinations": [d.pk for d in destinations]}


def _backup_to(job, stored, repo, deployment, host, volumes, databases, policy):
    """Volumes, then each database, into one repository; its retention when all went well.
    Returns (Snapshot rows, warning)."""
    destination = repo.destination
    runner = stored.runner
    rows: list[Snapshot] = []
    warning = ""
    with job.step(f"open the repository on {destination.name}") as step:
        version = runner.version()
        _check(runner.ensure_repository())
        if not repo.initialized:
            Repository.objects.filter(pk=repo.pk).update(initialized=True)
        step.message = f"restic {version}; {repo.path}"
    group = None
    if volumes:
        with job.step(f"back up volumes to {destination.name}") as step:
            group, warning = _backup_volumes(job, runner, repo, deployment, host, volumes, stored)
            rows.append(group)
            step.message = (
                f"snapshot {group.restic_id[:8]}: {group.files} files, "
                f"{group.total_bytes} bytes, {group.added_bytes} bytes new"
            )
            if warning:
                step.message += f" (warning: {warning})"
    for pooled in databases:
        job.check_cancelled()
        with job.step(f"dump {pooled.database_name} to {destination.name}") as step:
            row = _backup_database(job, runner, repo, deployment, host, pooled, group, stored)
            rows.append(row)
            group = group or row
            step.message = f"snapshot {row.restic_id[:8]}: {row.total_bytes} bytes"
    if warning:
        job.skip(
            f"forget and prune on {destination.name}",
            "Skipped: this snapshot is not whole, so no older snapshot is given up for it.",
        )
    else:
        with job.step(f"forget and prune on {destination.name}") as step:
            step.message = _forget_and_prune(runner, repo, deployment, host, policy)
    return rows, warning


def _forget_now(job, stored: _Made, destination: Destination) -> None:
    """Forget what this run stored in a repository whose backup failed (a step)."""
    if not stored.ids:
        return
    try:
        with job.step(f"forget this run's snapshots on {destination.name}") as step:
            step.message = _forget_ids(stored)
    except Exception:  # recorded on its step; the rows go anyway: they are not trusted
        Snapshot.objects.filter(
            repository__destination=destination, restic_id__in=stored.ids
        ).delete()


def _backup_volumes(job, runner, repo, deployment, host, volumes, stored):
    args = restic.backup_args(host=host, app=deployment.slug, volumes=volumes)
    code, out, err = runner.stream(args, job=job, timeout=BACKUP_TIMEOUT, volumes=volumes)
    outcome = restic.parse_backup(out, err)
    if outcome.snapshot_id:
        stored.ids.append(outcome.snapshot_id)
    verdict = restic.classify(code, err, what="The backup of the volumes")
    _check(verdict)
    if not outcome.snapshot_id:
        raise JobFailed("restic ended without naming its snapshot; the backup is not trusted.")
    if outcome.last_status:
        job.progress(
            bytes_done=outcome.bytes_total or outcome.last_status["bytes_done"],
            bytes_total=outcome.bytes_total or outcome.last_status["bytes_total"],
        )
    warning = ""
    if verdict.status == "warning":
        unreadable = "; ".join(outcome.errors[:5])
        warning = verdict.message + (f" Unreadable: {unreadable}." if unreadable else "")
    row = Snapshot.objects.create(
        repository=repo,
        deployment=deployment,
        destination=repo.destination,
        device=deployment.device,
        restic_id=outcome.snapshot_id,
        kind=Snapshot.Kind.VOLUMES,
        time=timezone.now(),
        total_bytes=outcome.bytes_total,
        added_bytes=outcome.bytes_added,
        files=outcome.files_total,
        volumes=volumes,
        incomplete=bool(warning),
        job_id=job.job.pk,
    )
    return row, warning


def _backup_database(job, runner, repo, deployment, host, pooled, group, stored):
    instance = pooled.instance
    container = _db_container(runner.shell, pooled)
    extra = {}
    if instance.engine == "mariadb":
        extra["MYSQL_PWD"] = instance.admin_password
    dump = restic.dump_command(instance.engine, container, pooled.database_name)
    args = restic.backup_stdin_args(host=host, app=deployment.slug, database=pooled.database_name)
    env_names = list({**runner.access.environment(), **extra}.keys())
    save = restic.docker_run(
        args,
        env_names=env_names,
        memory=runner.memory,
        network="host",
        stdin=True,
        upload_limit_kib=runner.upload_limit_kib,
    )
    line = restic.piped(dump, save)
    code, out, err = runner.run_line(line, timeout=BACKUP_TIMEOUT, extra_env=extra)
    outcome = restic.parse_backup(out, err)
    if outcome.snapshot_id:
        stored.ids.append(outcome.snapshot_id)
    dump_code = restic.dump_exit(err)
    if dump_code != 0:
        lines = [
            ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("{", "homelab-"))
        ]
        detail = lines[-1][-300:] if lines else "no message"
        raise JobFailed(
            f"Dumping {pooled.database_name} failed (exit {dump_code}: {detail}), so this "
            "backup was not kept. Check the shared database server and back up again."
        )
    _check(restic.classify(code, err, what=f"Storing the dump of {pooled.database_name}"))
    if not outcome.snapshot_id:
        raise JobFailed("restic ended without naming its snapshot; the backup is not trusted.")
    return Snapshot.objects.create(
        repository=repo,
        deployment=deployment,
        destination=repo.destination,
        device=deployment.device,
        restic_id=outcome.snapshot_id,
        kind=Snapshot.Kind.DB,
        database=pooled.database_name,
        engine=instance.engine,
        group=group,
        time=timezone.now(),
        total_bytes=outcome.bytes_total,
        added_bytes=outcome.bytes_added,
        files=1,
        job_id=job.job.pk,
    )


def _forget_ids(stored: _Made) -> str:
    if not stored.ids:
        return "nothing was stored"
    code, _out, err = stored.runner.run(restic.forget_ids_args(stored.ids), timeout=COMMAND_TIMEOUT)
    _check(restic.classify(code, err, what="Forgetting this run's snapshots"))
    Snapshot.objects.filter(restic_id__in=stored.ids).delete()
    return f"{len(stored.ids)} snapshot(s) of this run forgotten"


def _forget_and_prune(runner, repo, deployment, host, policy) -> str:
    keep = retention_of(policy)
    code, out, err = runner.run(
        restic.forget_args(host=host, app=deployment.slug, keep=keep), timeout=COMMAND_TIMEOUT
    )
    _check(restic.classify(code, err, what="Forgetting old snapshots"))
    _kept, removed = restic.parse_forget(out)
    if removed:
        # restic 0.14 names a new snapshot by its short id, forget by the full one
        gone = [
            row.pk
            for row in Snapshot.objects.filter(repository=repo)
            if any(full.startswith(row.restic_id) for full in removed)
        ]
        Snapshot.objects.filter(pk__in=gone).delete()
        code, _out, err = runner.run(restic.prune_args(), timeout=BACKUP_TIMEOUT)
        _check(restic.classify(code, err, what="Pruning the repository"))
    return (
        f"keep {keep.daily} daily, {keep.weekly} weekly, {keep.monthly} monthly: "
        f"{len(removed)} snapshot(s) forgotten" + (", repository pruned" if removed else "")
    )


def forget_run(*, job, deployment: Deployment) -> dict:
    job.secrets.extend(secret_values_for(deployment))
    policy = policy_for(deployment)
    host = restic.host_for(deployment.device_id, deployment.project)
    with _lease(job, deployment):
        shell = _shell(job, deployment)
        for repo in Repository.objects.filter(deployment=deployment, initialized=True):
            runner = runner_for(shell, repo)
            with job.step(f"forget and prune on {repo.destination.name}") as step:
                step.message = _forget_and_prune(runner, repo, deployment, host, policy)
    return {}


# ---------------------------------------------------------------------------- restore
def restore_run(*, job, deployment: Deployment, snapshot: Snapshot) -> dict:
    """Stop, restore the volumes, load the dumps, start, health check."""
    from marketplace import pipeline
    from marketplace.services import recipe_for

    job.secrets.extend(secret_values_for(deployment))
    repo = snapshot.repository
    access_for(repo)  # an SFTP destination is refused before anything is stopped
    parts = [p for p in snapshot.parts.all() if p.kind == Snapshot.Kind.DB]
    with _lease(job, deployment):
        p = pipeline.DeploymentPipeline(deployment, recipe_for(deployment.slug))
        shell = p.shell
        shell.secrets.extend(s for s in job.secrets if s not in shell.secrets)
        runner = runner_for(shell, repo)
        volumes = [v for v in snapshot.volumes if restic.VOLUME_RE.fullmatch(v)]
        with job.step("check the snapshot") as step:
            _check(runner.ensure_repository())
            code, out, err = runner.run(
                restic.snapshots_args(host=None, app=deployment.slug), timeout=COMMAND_TIMEOUT
            )
            _check(restic.classify(code, err, what="Listing the snapshots"))
            ids = {s.id for s in restic.parse_snapshots(out)}
            missing = [
                s.restic_id[:8]
                for s in [snapshot, *parts]
                if not any(full.startswith(s.restic_id) for full in ids)
            ]
            if missing:
                raise JobFailed(
                    f"The snapshot {', '.join(missing)} is no longer in the repository on "
                    f"{repo.destination.name}; pick another one."
                )
            present = set(app_volumes(shell, deployment))
            gone = [v for v in volumes if v not in present]
            if gone:
                raise JobFailed(
                    f"The app's volume(s) {', '.join(gone)} do not exist on "
                    f"{deployment.device.name}; restoring to another device comes with "
                    "app migration."
                )
            step.message = f"snapshot {snapshot.restic_id[:8]} of {snapshot.time:%Y-%m-%d %H:%M}"
        with job.step("stop the app") as step:
            shell.check(p.compose("stop"), timeout=300, what="docker compose stop")
            job.on_undo("start the app again", lambda: _start(shell, p))
            step.message = "containers stopped"
        if volumes:
            with job.step("restore the volumes") as step:
                code, _out, err = runner.stream(
                    restic.restore_args(snapshot.restic_id, volumes),
                    job=job,
                    timeout=BACKUP_TIMEOUT,
                    volumes=volumes,
                    read_only=False,
                )
                _check(restic.classify(code, err, what="The restore of the volumes"))
                step.message = ", ".join(volumes)
        for part in parts:
            with job.step(f"load the dump of {part.database}") as step:
                step.message = _load_dump(runner, deployment, part)
        with job.step("start the app") as step:
            step.message = _start(shell, p)
        with job.step("health check") as step:
            step.message = _wait_healthy(deployment, p.recipe)
    return {"snapshot": snapshot.pk}


def _start(shell, p) -> str:
    shell.check(p.compose("start"), timeout=300, what="docker compose start")
    return "containers started"


def _load_dump(runner: ResticOnDevice, deployment: Deployment, part: Snapshot) -> str:
    pooled = (
        databases_of_app(device_id=deployment.device_id, project=deployment.project)
        .select_related("instance")
        .filter(database_name=part.database)
        .first()
    )
    if pooled is None:
        raise JobFailed(
            f"The app has no pooled database {part.database} on {deployment.device.name} "
            "any more, so its dump cannot be loaded."
        )
    container = _db_container(runner.shell, pooled)
    extra = {"MYSQL_PWD": pooled.instance.admin_password} if part.engine == "mariadb" else {}
    env_names = list({**runner.access.environment(), **extra}.keys())
    read = restic.docker_run(
        restic.dump_args(part.restic_id, part.database),
        env_names=env_names,
        memory=runner.memory,
        network="host",
        upload_limit_kib=runner.upload_limit_kib,
    )
    load = restic.load_command(part.engine, container, part.database)
    code, _out, err = runner.run_line(
        restic.piped(read, load), timeout=BACKUP_TIMEOUT, extra_env=extra
    )
    if restic.dump_exit(err) != 0 or code != 0:
        lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("homelab-")]
        raise JobFailed(
            f"Loading the dump of {part.database} failed: "
            f"{lines[-1][-300:] if lines else 'no message'}"
        )
    return f"{part.database} loaded"


def _wait_healthy(deployment: Deployment, recipe, sleep=time.sleep) -> str:
    from marketplace.health_checks import deployment_probe

    limit = max(30, int(recipe.manifest.health_check.timeout_seconds or 60))
    deadline = time.monotonic() + limit
    last = None
    while True:
        last = deployment_probe(deployment)
        if last.ok:
            return f"answering ({last.answer_ms or 0:.0f} ms)"
        if time.monotonic() > deadline:
            raise JobFailed(
                f"{deployment.app_name} did not answer its health check within {limit} s "
                f"after the restore ({last.message}). Its data is restored; look at its logs."
            )
        sleep(2)


def app_start_after_interruption(deployment: Deployment) -> None:
    """After a worker died mid-restore: `docker compose start` of the app (not recorded)."""
    from marketplace import pipeline
    from marketplace.services import recipe_for

    p = pipeline.DeploymentPipeline(deployment, recipe_for(deployment.slug))
    p.shell.check(p.compose("start"), timeout=300, what="docker compose start")

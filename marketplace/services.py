"""Deployment services: every door (API, pages, tasks, commands) calls these.

deployment_create   validate, choose the device (placement when none is named), reserve,
                    save, start an `app.deploy` job on commit (or run it inline: sync=True)
deployment_run      (in the job) claim the deployment, run the pipeline under the lease
deployment_start / deployment_stop / deployment_restart / deployment_remove
                    check at once, then start an `app.<action>` job (marketplace.jobs);
                    deployment_operate and removal_run are the jobs' device work
deployment_reconfigure
                    check the new settings like a deploy does, then an `app.reconfigure`
                    job (its device work, with the rollback: marketplace/reconfigure.py)
deployment_logs     the last lines of the app's logs (secrets masked)
After a restart or a device that went away: marketplace/recovery.py
(deployments_recover_interrupted, deployments_cleanup_pending, deployments_after_poll).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone

from devices import lease, ssh
from devices.compose import StepFailed
from devices.lease import LEASE_WAIT_SECONDS
from devices.models import Device
from homelab.core.jobs import JobFailed, JobRunner, Target, job_kind_label
from homelab.core.masking import MASK, mask
from homelab.core.models import LIVE_JOB_STATUSES, Job, JobStatus
from homelab.core.services import job_enqueue, job_send
from marketplace import pipeline
from marketplace.compose import (
    INSTANCE_RE,
    RenderConfig,
    RenderError,
    generate_secrets,
    render_compose,
)
from marketplace.errors import DeploymentError
from marketplace.models import (
    INSTALLED_STATUSES,
    TRANSIENT_STATUSES,
    Deployment,
    DeploymentStatus,
)
from marketplace.preflight import host_ports, port_problems, preflight_problems, requirements_of
from marketplace.recipes import Recipe, RecipeNotFound, load_catalog
from marketplace.selectors import kept_deployment
from marketplace.shell import DeploymentShell
from pooling.selectors import pooled_databases_for_deployment, secret_values_for
from pooling.services import PoolingError, pooled_databases_release
from scheduling.services import placement_rank, reservation_create, reservation_release

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------ device lease
@contextmanager
def device_lease(
    *, device_id: int, holder: str, wait_seconds: float = LEASE_WAIT_SECONDS
) -> Iterator[None]:
    """Hold the device's lease (devices.lease): one deployment operation per device at a
    time. A device that stays busy is a 409 DeploymentError."""
    with ExitStack() as stack:
        try:
            stack.enter_context(
                lease.device_lease(device_id=device_id, holder=holder, wait_seconds=wait_seconds)
            )
        except lease.DeviceBusy as exc:
            raise DeploymentError(exc.message, field="device_id", code=409) from None
        yield


# ----------------------------------------------------------------------------- helpers
def recipe_for(slug: str) -> Recipe:
    catalog = load_catalog()
    try:
        return catalog.get(slug)
    except RecipeNotFound:
        problems = catalog.problems_for(slug)
        if problems:
            raise DeploymentError(
                f"slug: the app {slug!r} cannot be deployed because its recipe is invalid: "
                + "; ".join(str(p) for p in problems),
                field="slug",
                code=422,
            ) from None
        raise DeploymentError(
            f"slug: there is no app {slug!r} in the catalog.", field="slug", code=404
        ) from None


def _clean_config(recipe: Recipe, config, instance: str) -> dict:
    """Only ports and env; checked by rendering once with throw-away secrets."""
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise DeploymentError("config: must be an object with ports and env.", field="config")
    unknown = sorted(
        set(config) - {"ports", "env", "bundled_databases", "secret_env", "memory_limit_mb"}
    )
    if unknown:
        raise DeploymentError(
            f"config.{unknown[0]}: not a known setting (use ports, env, secret_env, "
            "memory_limit_mb and bundled_databases).",
            field=f"config.{unknown[0]}",
        )
    marked = config.get("secret_env") or []
    if not isinstance(marked, list) or not all(isinstance(n, str) for n in marked):
        raise DeploymentError(
            "config.secret_env: must be a list of setting names to keep secret.",
            field="config.secret_env",
        )
    memory_limit_mb = config.get("memory_limit_mb")
    bundled = config.get("bundled_databases", False)
    if not isinstance(bundled, bool):
        raise DeploymentError(
            "config.bundled_databases: must be true (run the app's own database containers) "
            "or false (use the device's shared database server).",
            field="config.bundled_databases",
        )
    ports = {} if config.get("ports") is None else config["ports"]
    env = {} if config.get("env") is None else config["env"]
    for name, value in (("ports", ports), ("env", env)):
        if not isinstance(value, dict):
            raise DeploymentError(f"config.{name}: must be an object.", field=f"config.{name}")
    try:
        render_compose(
            recipe,
            project=project_name(recipe.slug, instance),
            config=RenderConfig(
                instance=instance,
                ports=ports,
                env=env,
                secrets=generate_secrets(recipe),
                memory_limit_mb=memory_limit_mb,
            ),
        )
    except RenderError as exc:
        raise DeploymentError(
            f"config.{exc.field}: {exc.message}", field=f"config.{exc.field}"
        ) from None
    clean: dict = {}
    if ports:
        clean["ports"] = {str(k): int(v) for k, v in ports.items()}
    if env:
        clean["env"] = {str(k): str(v) for k, v in env.items()}
    if memory_limit_mb is not None:
        clean["memory_limit_mb"] = memory_limit_mb
    if bundled:
        clean["bundled_databases"] = True
    missing = sorted(set(marked) - set(clean.get("env", {})))
    if missing:
        raise DeploymentError(
            f"config.secret_env: {missing[0]} is not one of the extra settings (env) given.",
            field="config.secret_env",
        )
    if marked:
        clean["secret_env"] = sorted(set(marked))
    return clean


SECRET_SETTING_RE = re.compile(r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|KEY", re.IGNORECASE)


def split_secret_env(clean: dict) -> tuple[dict, dict[str, str]]:
    """(config with MASK in place of each secret setting's value, {name: value} of those).

    A setting is secret when its name says so (PASSWORD, SECRET, TOKEN, KEY...) or the
    person marked it (`secret_env`). Its value is stored encrypted (Deployment.env_secrets)
    and masked wherever output is shown; the config shows that it is set, not what it is."""
    env = clean.get("env") or {}
    marked = set(clean.get("secret_env") or ())
    secret = {k: v for k, v in env.items() if v and (k in marked or SECRET_SETTING_RE.search(k))}
    if not secret:
        return clean, {}
    shown = {**clean, "env": {k: (MASK if k in secret else v) for k, v in env.items()}}
    return shown, secret


def project_name(slug: str, instance: str) -> str:
    return f"hl-{slug}-{instance}"


def _check_instance(instance) -> str:
    if not isinstance(instance, str) or not INSTANCE_RE.match(instance):
        raise DeploymentError(
            "instance: use 1-31 lowercase letters, digits or '-', starting with a letter or "
            "digit (like 'default' or 'family').",
            field="instance",
        )
    return instance


def _choose_device(recipe: Recipe, ports: list[int]) -> Device:
    ranking = placement_rank(requirements=requirements_of(recipe, ports=ports))
    if ranking.recommended_device_id is None:
        raise DeploymentError(f"device_id: {ranking.message}", field="device_id", code=409)
    return Device.objects.get(pk=ranking.recommended_device_id)


# ----------------------------------------------------------------------------- create
def _kept_secrets(recipe: Recipe, deployment: Deployment) -> tuple[dict, dict]:
    """(secrets, shared databases' passwords) for a new deployment.

    The app's data outlives a removal with "Keep my data", and holds what its first start
    wrote from the secrets (a bundled database's password, an encryption key, a config
    file). A new deployment of the same app and name on the same device therefore takes
    over the latest kept one's secrets; secrets the recipe declares since are generated.
    """
    secrets = generate_secrets(recipe)
    kept = kept_deployment(device=deployment.device, project=deployment.project)
    if kept is None:
        return secrets, {}
    old = kept.secret_values()
    secrets.update({name: value for name, value in old.items() if name in secrets})
    return secrets, kept.kept_database_passwords()


def deployment_create(
    *,
    slug: str,
    device_id: int | None = None,
    instance: str = "default",
    config: dict | None = None,
    user: AbstractBaseUser | AnonymousUser | None = None,
    sync: bool = False,
) -> Deployment:
    """Start deploying an app; returns the Deployment (202: it runs in the background).

    1. Check the app, instance name and config (DeploymentError names the field).
    2. The same app+instance already live (on the named device, or anywhere when no device
       is named): return that deployment, never a duplicate.
    3. No device named: placement's recommended device; else the named one.
    4. Fast pre-flight from the last poll and the other deployments (offline, resources,
       ports claimed); the pipeline repeats all of it on the device under its lease.
    5. Save with generated secrets (encrypted), reserve the resources, enqueue on commit.
       Where this app and name were removed from the device with their data kept, their
       secrets (and shared databases' passwords) are taken over instead (`_kept_secrets`),
       so the app finds its data as it left it.
    """
    instance = _check_instance(instance)
    recipe = recipe_for(slug)
    clean = _clean_config(recipe, config, instance)
    ports_wanted = [port for _, port, _ in host_ports(recipe, clean)]

    existing = Deployment.objects.filter(slug=slug, instance=instance).live()
    if device_id is not None:
        existing = existing.filter(device_id=device_id)
    found = existing.select_related("device").first()
    if found is not None:
        return found

    if device_id is None:
        device = _choose_device(recipe, ports_wanted)
    else:
        if isinstance(device_id, bool) or not isinstance(device_id, int):
            raise DeploymentError("device_id: must be a device id (a number).", field="device_id")
        device = Device.objects.filter(pk=device_id).first()
        if device is None:
            raise DeploymentError(
                f"device_id: there is no device {device_id}.", field="device_id", code=404
            )
    shown_config, env_secrets = split_secret_env(clean)
    deployment = Deployment(
        slug=recipe.slug,
        app_name=recipe.name,
        category=recipe.category,
        device=device,
        instance=instance,
        project=project_name(recipe.slug, instance),
        config=shown_config,
        env_secrets=json.dumps(env_secrets),
        user=user if getattr(user, "is_authenticated", False) else None,
    )
    problems = preflight_problems(deployment, recipe, device)
    problems += port_problems(deployment, recipe, device, shell=None)
    if not problems:
        # the ports in use on the device itself: one quick command, so an occupied port is
        # a clear 409 now rather than a failed deployment a moment later
        try:
            problems += port_problems(
                deployment, recipe, device, shell=DeploymentShell(deployment, record=False)
            )
        except (ssh.SSHError, StepFailed) as exc:
            raise DeploymentError(
                f"device_id: {device.name} did not answer ({exc}); check it and try again.",
                field="device_id",
                code=409,
            ) from None
    if problems:
        field = "config.ports" if all("port " in p for p in problems) else "device_id"
        raise DeploymentError("; ".join(problems), field=field, code=409)

    secrets, database_passwords = _kept_secrets(recipe, deployment)
    deployment.secrets = json.dumps(secrets)
    deployment.database_passwords = json.dumps(database_passwords)
    try:
        with transaction.atomic():
            deployment.full_clean(
                exclude=["secrets", "device", "user"],
                validate_unique=False,
                validate_constraints=False,
            )
            deployment.save()
            reservation = _reserve(deployment, recipe, ports_wanted)
            deployment.reservation_id = reservation.pk if reservation else None
            deployment.save(update_fields=["reservation_id"])
            if not sync:
                # the job's row now (the answer names it); its worker task after commit
                enqueue_run(deployment.pk)
    except IntegrityError:
        # another request created the same deployment a moment ago: that one wins
        found = (
            Deployment.objects.filter(slug=slug, instance=instance, device=device).live().first()
        )
        if found is None:
            raise
        return found
    if sync:
        deployment_run(deployment_id=deployment.pk)
        deployment.refresh_from_db()
    return deployment


def _reserve(deployment: Deployment, recipe: Recipe, ports: list[int]):
    r = recipe.manifest.requirements
    return reservation_create(
        device_id=deployment.device_id,
        label=f"{recipe.slug} ({deployment.instance})",
        ram_bytes=r.ram_min_mb * 1024 * 1024,
        storage_bytes=r.storage_min_mb * 1024 * 1024,
        cpu_cores=float(r.cpu_cores_min),
        ports=ports,
    )


def _release(deployment: Deployment) -> None:
    if deployment.reservation_id:
        reservation_release(reservation_id=deployment.reservation_id)


def deployment_target(deployment: Deployment) -> Target:
    """What the deployment's jobs name as their target (Activity links it to its page)."""
    return Target("deployment", deployment.pk, f"{deployment.app_name} on {deployment.device.name}")


def deployment_jobs(deployment_id: int):
    """The deployment's jobs, newest first (deploy, start/stop/restart, removal)."""
    return Job.objects.filter(target_type="deployment", target_id=str(deployment_id))


def enqueue_run(deployment_id: int) -> Job:
    """Have the worker run the deployment as an `app.deploy` job (started by the
    deployment's user). A deploy job of it still waiting (start-up recovery) is queued
    again rather than doubled."""
    waiting = (
        deployment_jobs(deployment_id).filter(kind="app.deploy", status=JobStatus.QUEUED).first()
    )
    if waiting is not None:
        job_send(job=waiting)
        return waiting
    deployment = Deployment.objects.select_related("device").get(pk=deployment_id)
    return job_enqueue(
        kind="app.deploy",
        target=deployment_target(deployment),
        user=deployment.user,
        params={"deployment_id": deployment_id},
    )


# -------------------------------------------------------------------------------- run
def deployment_run(*, deployment_id: int, job: JobRunner | None = None) -> Deployment | None:
    """Claim the deployment (exactly once) and run the pipeline on its device.

    `job` is the running `app.deploy` job (marketplace.jobs.DeployJob); without one (a
    command, a test) an `app.deploy` job is made and run here and now, the same code.
    Claimed with a conditional UPDATE on (validating, not started): a second worker, or a
    task left over after the control plane restarted, finds nothing to do (None).
    """
    if job is None:
        deployment = Deployment.objects.select_related("device").filter(pk=deployment_id).first()
        if deployment is None:
            return None
        done = job_enqueue(
            kind="app.deploy",
            target=deployment_target(deployment),
            params={"deployment_id": deployment_id},
            sync=True,
        )
        if (done.result or {}).get("claimed") is False:
            return None
        return Deployment.objects.select_related("device").get(pk=deployment_id)
    claimed = Deployment.objects.filter(
        pk=deployment_id, status=DeploymentStatus.VALIDATING, started_at__isnull=True
    ).update(started_at=timezone.now())
    if claimed != 1:
        return None
    deployment = Deployment.objects.select_related("device").get(pk=deployment_id)
    try:
        recipe = recipe_for(deployment.slug)
    except DeploymentError as exc:
        return _finish(deployment, DeploymentStatus.FAILED, exc.message)
    # an earlier attempt under the same project name may still wait for its undo
    deployments_cleanup_pending(device=deployment.device, project=deployment.project)
    try:
        with device_lease(device_id=deployment.device_id, holder=job_lease_holder(job.job.pk)):
            run = pipeline.DeploymentPipeline(deployment, recipe)
            outcome = run.run(job)
    except DeploymentError as exc:  # the device stayed busy: nothing was done
        _release(deployment)
        return _finish(deployment, DeploymentStatus.FAILED, exc.message)
    except Exception as exc:
        # not a step's failure (those roll back inside the runner): never leave it stuck
        _release(deployment)
        _finish(
            deployment,
            DeploymentStatus.FAILED,
            f"Unexpected error ({type(exc).__name__}): {exc}. Remove the deployment to clean up.",
        )
        raise
    if outcome.ok:
        return _finish(deployment, DeploymentStatus.RUNNING, "")
    error = f"{outcome.failed_step}: {outcome.error}"
    _release(deployment)
    if outcome.cleanup_pending:
        cleanup_mark_pending(deployment, folder=getattr(run, "folder", ""))
        return _finish(deployment, outcome.status, error + PENDING_NOTE)
    if outcome.undo_errors:
        error += " Undoing it also failed: " + "; ".join(outcome.undo_errors)
    return _finish(deployment, outcome.status, error)


def job_lease_holder(job_id: int) -> str:
    """The device lease's holder while a job works on the device; the job's clean-up after
    an interruption frees the lease by this name."""
    return f"job-{job_id}"


def _finish(deployment: Deployment, status: str, error: str) -> Deployment:
    deployment.status = status
    deployment.error = mask(error, deployment.values_to_mask())
    deployment.finished_at = timezone.now()
    deployment.save(update_fields=["status", "error", "finished_at", "updated"])
    logger.info("Deployment %s of %s: %s %s", deployment.pk, deployment.slug, status, error)
    return deployment


# -------------------------------------------------------------------------- day 2
# The services check what they can at once (status allowed? a job already working on
# the app?) and start a job; the job does the device work under the device's lease
# (marketplace.jobs). `sync=True` (commands, tests) runs the job here and now and raises
# DeploymentError when it did not succeed, as the services did before they were jobs.
DAY2_ALLOWED = {
    # a person may start, stop or restart an app that is installed, whatever the watch found
    "start": INSTALLED_STATUSES,
    "stop": INSTALLED_STATUSES,
    "restart": INSTALLED_STATUSES,
}


def _require(deployment: Deployment, allowed: tuple[str, ...], action: str) -> None:
    if deployment.status not in allowed:
        raise DeploymentError(
            f"status: cannot {action} a deployment that is {deployment.get_status_display().lower()}.",
            field="status",
            code=409,
        )


def _refuse_while_working(deployment: Deployment) -> None:
    """One day-2 job per app at a time: a button pressed twice gets a 409, not a second
    job. (A deploy working shows in the deployment's own status, checked before.)"""
    working = (
        deployment_jobs(deployment.pk)
        .filter(status__in=tuple(LIVE_JOB_STATUSES))
        .exclude(kind="app.deploy")
        .first()
    )
    if working is not None:
        raise DeploymentError(
            f"status: {deployment.app_name} is busy ({job_kind_label(working.kind).lower()}, "
            f"job {working.pk}); wait until it has finished (see Activity).",
            field="status",
            code=409,
        )


def _start_job(
    deployment: Deployment, kind: str, *, params: dict, user=None, sync: bool = False
) -> Job:
    job = job_enqueue(
        kind=kind,
        target=deployment_target(deployment),
        user=user,
        params={"deployment_id": deployment.pk, **params},
        sync=sync,
    )
    if sync and job.status != JobStatus.SUCCEEDED:
        raise DeploymentError(job.error, field="deployment", code=502)
    return job


def _day2(deployment: Deployment, action: str, *, user=None, sync: bool = False) -> Job:
    _require(deployment, DAY2_ALLOWED[action], action)
    _refuse_while_working(deployment)
    return _start_job(deployment, f"app.{action}", params={}, user=user, sync=sync)


def deployment_start(*, deployment: Deployment, user=None, sync: bool = False) -> Job:
    """Start a stopped app: an `app.start` job (202); it ends running."""
    return _day2(deployment, "start", user=user, sync=sync)


def deployment_stop(*, deployment: Deployment, user=None, sync: bool = False) -> Job:
    """Stop a running app: an `app.stop` job (202); it ends stopped."""
    return _day2(deployment, "stop", user=user, sync=sync)


def deployment_restart(*, deployment: Deployment, user=None, sync: bool = False) -> Job:
    """Restart an app: an `app.restart` job (202); it ends running."""
    return _day2(deployment, "restart", user=user, sync=sync)


def deployment_reconfigure(
    *, deployment: Deployment, config, user=None, sync: bool = False
) -> Job:
    """Change an installed app's settings: an `app.reconfigure` job (202).

    1. The app is installed (running, stopped or in trouble) and no other job works on it
       (409 otherwise).
    2. `config` has the deploy call's shape (ports, env, memory_limit_mb) and replaces the
       settings as a whole; it is checked exactly as deploying checks it (422 naming the
       field). Whether the app has its own database server cannot change after deploying:
       `bundled_databases` keeps its value.
    3. The device is online, and a host port another app claims, or that something else
       on the device listens on, is a 409 now, as when deploying.
    4. The job (marketplace.reconfigure) recreates the app with the new settings through
       the pipeline and, when they do not work, puts the previous ones back.
    """
    _require(deployment, INSTALLED_STATUSES, "change the settings of")
    _refuse_while_working(deployment)
    recipe = recipe_for(deployment.slug)
    current = dict(deployment.config or {})
    if (
        isinstance(config, dict)
        and "bundled_databases" in config
        and bool(config["bundled_databases"]) != bool(current.get("bundled_databases"))
    ):
        raise DeploymentError(
            "config.bundled_databases: whether the app has its own database server "
            "cannot change after it is deployed; deploy a second copy with the other "
            "choice instead.",
            field="config.bundled_databases",
        )
    clean = _clean_config(recipe, config, deployment.instance)
    # a secret setting sent back as it is shown (masked) keeps its stored value
    held = deployment.env_secret_values()
    kept_back = {k for k, v in (clean.get("env") or {}).items() if v == MASK and k in held}
    if clean.get("env"):
        clean["env"] = {k: (held[k] if k in kept_back else v) for k, v in clean["env"].items()}
    # what was marked secret stays secret, whether or not the request repeats the marks
    marks = set(current.get("secret_env") or ()) | set(clean.get("secret_env") or ()) | kept_back
    marks &= set(clean.get("env") or {})
    if marks:
        clean["secret_env"] = sorted(marks)
    else:
        clean.pop("secret_env", None)
    if current.get("bundled_databases"):
        clean["bundled_databases"] = True
    else:
        clean.pop("bundled_databases", None)
    # the typed secret settings apart from the rest (the job's parameters never hold them)
    shown, env_secrets = split_secret_env(clean)
    if (
        not deployment.env_secrets_pending  # a change that could not be undone: allow again
        and host_ports(recipe, clean) == host_ports(recipe, current)
        and (shown.get("env") or {}) == (current.get("env") or {})
        and env_secrets == held
        and clean.get("memory_limit_mb") == current.get("memory_limit_mb")
    ):
        raise DeploymentError(
            "config: these are the settings the app has already; change a value first.",
            field="config",
        )
    device = deployment.device
    if device.status != "online":
        raise DeploymentError(
            f"status: {device.name} is {device.get_status_display().lower()}; bring it back "
            "online, then apply the new settings.",
            field="status",
            code=409,
        )
    planned = Deployment(
        pk=deployment.pk,
        device=deployment.device,
        project=deployment.project,
        app_name=deployment.app_name,
        config=clean,
    )
    new_ports = set(host_ports(recipe, clean)) - set(host_ports(recipe, current))
    if new_ports:
        try:
            problems = port_problems(
                planned,
                recipe,
                deployment.device,
                shell=DeploymentShell(deployment, record=False),
            )
        except (ssh.SSHError, StepFailed) as exc:
            raise DeploymentError(
                f"status: {deployment.device.name} did not answer ({exc}); check it and try "
                "again.",
                field="status",
                code=409,
            ) from None
        if problems:
            raise DeploymentError("; ".join(problems), field="config.ports", code=409)
    # the job's parameters never hold a secret value: the typed secret settings are
    # stored encrypted now (the previous compose file, put back on failure, has its own)
    # the new ones wait in env_secrets_pending until the change works (see reconfigure)
    Deployment.objects.filter(pk=deployment.pk).update(
        env_secrets_pending=json.dumps(env_secrets)
    )
    deployment.env_secrets_pending = json.dumps(env_secrets)
    return _start_job(
        deployment, "app.reconfigure", params={"config": shown}, user=user, sync=sync
    )


def deployment_operate(*, job: JobRunner, deployment: Deployment, action: str) -> str:
    """The device work of `app.start|stop|restart` (in the job, under the device's lease):
    one `docker compose <action>`, then the deployment's status."""
    if deployment.status not in DAY2_ALLOWED[action]:
        raise JobFailed(
            f"{deployment.app_name} is {deployment.get_status_display().lower()} now, so "
            f"there was nothing to {action}."
        )
    recipe = recipe_for(deployment.slug)
    with device_lease(device_id=deployment.device_id, holder=job_lease_holder(job.job.pk)):
        p = pipeline.DeploymentPipeline(deployment, recipe)
        job.secrets.extend(p.shell.secrets)
        with job.step(f"{action} containers") as step:
            p.shell.check(p.compose(action), timeout=300, what=f"docker compose {action}")
            step.message = {
                "start": "containers started",
                "stop": "containers stopped",
                "restart": "containers restarted",
            }[action]
    final = DeploymentStatus.STOPPED if action == "stop" else DeploymentStatus.RUNNING
    _set_status(deployment, final)
    return final


def _set_status(deployment: Deployment, status: str) -> Deployment:
    deployment.status = status
    deployment.save(update_fields=["status", "updated"])
    return deployment


def deployment_remove(
    *,
    deployment: Deployment,
    delete_data: bool = False,
    keep_shared_servers: bool = False,
    user=None,
    sync: bool = False,
) -> Job | None:
    """Take the app off its device: an `app.remove` job (202); the deployment ends removed.

    At once: a removed deployment needs nothing (None); one still working, or with a job
    working on it, is a 409. The job (marketplace.jobs.RemoveJob, removal_run) does the
    rest under the device's lease; "Keep my data" dumps the shared databases there, not in
    the request.
    """
    if deployment.status == DeploymentStatus.REMOVED:
        return None
    if deployment.is_transient:
        raise DeploymentError(
            "status: the deployment is still working; remove it when it has finished.",
            field="status",
            code=409,
        )
    _refuse_while_working(deployment)
    return _start_job(
        deployment,
        "app.remove",
        params={
            "delete_data": bool(delete_data),
            "keep_shared_servers": bool(keep_shared_servers),
            "previous_status": deployment.status,
        },
        user=user,
        sync=sync,
    )


def removal_run(
    *, job: JobRunner, deployment: Deployment, delete_data: bool, keep_shared_servers: bool
) -> Deployment:
    """The removal itself (in the `app.remove` job).

    1. Hold the device's lease, then claim the deployment (conditional UPDATE to removing;
       it changed meanwhile: JobFailed, nothing done).
    2. A rolled-back deployment left nothing on the device, and when a newer deployment of
       the same app+instance lives there the project name is its: touch nothing.
    3. Otherwise, each a step: `docker compose down --remove-orphans` (with `-v` when
       delete_data), remove the app folder, and its shared databases dumped (unless
       delete_data) and dropped; a shared server left without apps is removed too unless
       keep_shared_servers.
    A failure leaves it failed with the reason (RemoveJob.finished), so Remove can be
    pressed again.
    """
    with device_lease(device_id=deployment.device_id, holder=job_lease_holder(job.job.pk)):
        previous = deployment.status
        claimed = (
            Deployment.objects.filter(pk=deployment.pk, status=previous)
            .exclude(status__in=(*TRANSIENT_STATUSES, DeploymentStatus.REMOVED))
            .update(status=DeploymentStatus.REMOVING, updated=timezone.now())
        )
        if claimed != 1:
            raise JobFailed(
                f"{deployment.app_name} changed meanwhile (it is "
                f"{deployment.get_status_display().lower()}); reload its page and try again."
            )
        deployment.status = DeploymentStatus.REMOVING
        successor = (
            Deployment.objects.filter(device_id=deployment.device_id, project=deployment.project)
            .live()
            .exclude(pk=deployment.pk)
            .exists()
        )
        if previous == DeploymentStatus.ROLLED_BACK or successor:
            job.skip(
                "remove from the device",
                "a newer deployment of this app uses the project now: nothing removed"
                if successor
                else "the failed attempt was undone already: nothing is left on the device",
            )
        else:
            _remove_from_device(
                job, deployment, delete_data=delete_data, keep_shared_servers=keep_shared_servers
            )
    _release(deployment)
    return _finish(deployment, DeploymentStatus.REMOVED, "")


def _remove_from_device(
    job: JobRunner, deployment: Deployment, *, delete_data: bool, keep_shared_servers: bool
) -> None:
    p = pipeline.DeploymentPipeline(deployment, recipe_for(deployment.slug))
    job.secrets.extend(p.shell.secrets)
    pooled = pooled_databases_for_deployment(deployment)
    total = 3 if pooled else 2
    with job.step("stop containers" + (" and delete their data" if delete_data else "")) as step:
        step.message = p.compose_down(delete_data=delete_data)
    job.progress(percent=100 / total)
    with job.step("remove app folder") as step:
        step.message = p.remove_folder()
    job.progress(percent=200 / total)
    if pooled:
        name = "drop shared databases" if delete_data else "dump shared databases"
        with job.step(name) as step:
            # --- pooling: the app's pooled databases (dumped first when its data is kept)
            try:
                step.message = pooled_databases_release(
                    deployment=deployment,
                    keep_data=not delete_data,
                    keep_instance=keep_shared_servers,
                    shell=p.shell,
                )
            except PoolingError as exc:
                raise StepFailed(exc.message) from None
        job.progress(percent=100)
    if delete_data:
        # what earlier removals kept of this app and name is gone now too
        Deployment.objects.filter(
            device_id=deployment.device_id, project=deployment.project, data_kept=True
        ).update(data_kept=False, database_passwords="{}")
    else:
        deployment.data_kept = True
        deployment.save(update_fields=["data_kept"])


def deployment_logs(*, deployment: Deployment, tail: int = 200) -> str:
    if not isinstance(tail, int) or isinstance(tail, bool) or not 1 <= tail <= 5000:
        raise DeploymentError("tail: must be a whole number from 1 to 5000.", field="tail")
    recipe = recipe_for(deployment.slug)
    p = pipeline.DeploymentPipeline(deployment, recipe)
    args = p.compose("logs", "--no-color", "--tail", str(tail))
    try:
        exit_code, out, err = ssh.run(deployment.device, args, timeout=60)
    except ssh.SSHError as exc:
        raise DeploymentError.unreachable(deployment.device.name, exc, field="deployment") from None
    text = out if exit_code == 0 else (out + err)
    # pooled database passwords too
    return mask(text, [*deployment.values_to_mask(), *secret_values_for(deployment)])


def deployments_forget_device(device: Device) -> None:
    """devices.hooks.before_device_removal: the history of apps already removed from a
    device goes with the device."""
    Deployment.objects.filter(device=device).delete()


# ------------------------------------------------------------------------- recovery
# After a restart, or a device that went away mid-deployment (marketplace/recovery.py,
# which uses this module's functions: imported last).
from marketplace.recovery import (  # noqa: E402
    PENDING_NOTE,
    cleanup_mark_pending,
    deployments_cleanup_pending,
)

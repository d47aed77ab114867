"""Deployment services: every door (API, pages, tasks, commands) calls these.

deployment_create   validate, choose the device (placement when none is named), reserve,
                    save, enqueue `tasks.run_deployment` on commit (or run inline: sync=True)
deployment_run      claim the deployment and run the pipeline under the device's lease
deployment_start / deployment_stop / deployment_restart / deployment_remove
deployment_logs     the last lines of the app's logs (secrets masked)
After a restart or a device that went away: marketplace/recovery.py
(deployments_recover_interrupted, deployments_cleanup_pending, deployments_after_poll).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone

from devices import lease, ssh
from devices.compose import StepFailed
from devices.lease import LEASE_WAIT_SECONDS
from devices.models import Device
from homelab.core.masking import mask
from marketplace import pipeline
from marketplace.compose import (
    INSTANCE_RE,
    RenderConfig,
    RenderError,
    generate_secrets,
    render_compose,
)
from marketplace.models import (
    FINISHED_STATUSES,
    LIVE_STATUSES,
    TRANSIENT_STATUSES,
    Deployment,
    DeploymentStatus,
    DeploymentStep,
)
from marketplace.preflight import host_ports, port_problems, preflight_problems, requirements_of
from marketplace.recipes import Recipe, RecipeNotFound, load_catalog
from marketplace.selectors import kept_deployment
from marketplace.shell import DeploymentShell
from pooling.services import PoolingError, pooled_databases_release
from scheduling.services import placement_rank, reservation_create, reservation_release

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

logger = logging.getLogger(__name__)

TASK_TIMEOUT_SECONDS = 3600


class DeploymentError(Exception):
    """Input or state a deployment cannot work with. `field` names what to change;
    `status` is the HTTP status the API answers with."""

    def __init__(self, message: str, *, field: str = "", status: int = 422):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


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
            raise DeploymentError(exc.message, field="device_id", status=409) from None
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
                status=422,
            ) from None
        raise DeploymentError(
            f"slug: there is no app {slug!r} in the catalog.", field="slug", status=404
        ) from None


def _clean_config(recipe: Recipe, config, instance: str) -> dict:
    """Only ports and env; checked by rendering once with throw-away secrets."""
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise DeploymentError("config: must be an object with ports and env.", field="config")
    unknown = sorted(set(config) - {"ports", "env", "bundled_databases"})
    if unknown:
        raise DeploymentError(
            f"config.{unknown[0]}: not a known setting (use ports, env and bundled_databases).",
            field=f"config.{unknown[0]}",
        )
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
                instance=instance, ports=ports, env=env, secrets=generate_secrets(recipe)
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
    if bundled:
        clean["bundled_databases"] = True
    return clean


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


def _live(queryset):
    return queryset.exclude(status__in=FINISHED_STATUSES)


def _choose_device(recipe: Recipe, ports: list[int]) -> Device:
    ranking = placement_rank(requirements=requirements_of(recipe, ports=ports))
    if ranking.recommended_device_id is None:
        raise DeploymentError(f"device_id: {ranking.message}", field="device_id", status=409)
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

    existing = _live(Deployment.objects.filter(slug=slug, instance=instance))
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
                f"device_id: there is no device {device_id}.", field="device_id", status=404
            )
    deployment = Deployment(
        slug=recipe.slug,
        app_name=recipe.name,
        category=recipe.category,
        device=device,
        instance=instance,
        project=project_name(recipe.slug, instance),
        config=clean,
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
                status=409,
            ) from None
    if problems:
        field = "config.ports" if all("port " in p for p in problems) else "device_id"
        raise DeploymentError("; ".join(problems), field=field, status=409)

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
                deployment_id = deployment.pk
                transaction.on_commit(lambda: enqueue_run(deployment_id))
    except IntegrityError:
        # another request created the same deployment a moment ago: that one wins
        found = _live(
            Deployment.objects.filter(slug=slug, instance=instance, device=device)
        ).first()
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


def enqueue_run(deployment_id: int) -> None:
    from django_q.tasks import async_task

    async_task(
        "marketplace.tasks.run_deployment",
        deployment_id,
        timeout=TASK_TIMEOUT_SECONDS,
        task_name=f"deploy-{deployment_id}",
    )


# -------------------------------------------------------------------------------- run
def deployment_run(*, deployment_id: int) -> Deployment | None:
    """Claim the deployment (exactly once) and run the pipeline on its device.

    Claimed with a conditional UPDATE on (validating, not started): a second worker, or a
    task left over after the control plane restarted, finds nothing to do.
    """
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
    holder = f"deployment-{deployment.pk}-{uuid.uuid4().hex[:8]}"
    try:
        with device_lease(device_id=deployment.device_id, holder=holder):
            run = pipeline.DeploymentPipeline(deployment, recipe)
            outcome = run.run()
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


def _finish(deployment: Deployment, status: str, error: str) -> Deployment:
    deployment.status = status
    deployment.error = mask(error, deployment.secret_values().values())
    deployment.finished_at = timezone.now()
    deployment.save(update_fields=["status", "error", "finished_at", "updated"])
    logger.info("Deployment %s of %s: %s %s", deployment.pk, deployment.slug, status, error)
    return deployment


# -------------------------------------------------------------------------- day 2
def _operate(deployment: Deployment, name: str, args: list[str], *, timeout: float = 300) -> str:
    """Run one compose command for a day-2 operation under the device lease, recorded."""
    recipe = recipe_for(deployment.slug)
    holder = f"{name}-{deployment.pk}-{uuid.uuid4().hex[:8]}"
    with device_lease(device_id=deployment.device_id, holder=holder, wait_seconds=60):
        p = pipeline.DeploymentPipeline(deployment, recipe)
        step = DeploymentStep.objects.create(deployment=deployment, name=name)
        try:
            out = p.shell.check(p.compose(*args), timeout=timeout, what=f"docker compose {args[0]}")
        except (StepFailed, ssh.SSHError) as exc:
            step.status, step.message = DeploymentStep.Status.FAILED, str(exc)
            step.save(update_fields=["status", "message"])
            raise DeploymentError(f"{name} failed: {exc}", field="deployment", status=502) from None
        step.status = DeploymentStep.Status.OK
        step.save(update_fields=["status"])
        return out


def _require(deployment: Deployment, allowed: tuple[str, ...], action: str) -> None:
    if deployment.status not in allowed:
        raise DeploymentError(
            f"status: cannot {action} a deployment that is {deployment.get_status_display().lower()}.",
            field="status",
            status=409,
        )


def deployment_start(*, deployment: Deployment) -> Deployment:
    _require(deployment, LIVE_STATUSES, "start")
    _operate(deployment, "start", ["start"])
    return _set_status(deployment, DeploymentStatus.RUNNING)


def deployment_stop(*, deployment: Deployment) -> Deployment:
    _require(deployment, LIVE_STATUSES, "stop")
    _operate(deployment, "stop", ["stop"])
    return _set_status(deployment, DeploymentStatus.STOPPED)


def deployment_restart(*, deployment: Deployment) -> Deployment:
    _require(deployment, LIVE_STATUSES, "restart")
    _operate(deployment, "restart", ["restart"])
    return _set_status(deployment, DeploymentStatus.RUNNING)


def _set_status(deployment: Deployment, status: str) -> Deployment:
    deployment.status = status
    deployment.save(update_fields=["status", "updated"])
    return deployment


def deployment_remove(
    *, deployment: Deployment, delete_data: bool = False, keep_shared_servers: bool = False
) -> Deployment:
    """Take the app off its device; the deployment ends removed.

    1. Hold the device's lease, then claim the deployment (conditional UPDATE to removing).
    2. A rolled-back deployment left nothing on the device, and when a newer deployment of
       the same app+instance lives there the project name is its: touch nothing.
    3. Otherwise `docker compose down --remove-orphans` (with `-v` when delete_data) and
       remove the app folder; its shared databases are dropped (dumped first unless
       delete_data), and a shared server left without apps is removed too unless
       keep_shared_servers.
    A failure leaves it failed with the reason, so Remove can be pressed again.
    """
    if deployment.status == DeploymentStatus.REMOVED:
        return deployment
    if deployment.is_transient:
        raise DeploymentError(
            "status: the deployment is still working; remove it when it has finished.",
            field="status",
            status=409,
        )
    holder = f"remove-{deployment.pk}-{uuid.uuid4().hex[:8]}"
    with device_lease(device_id=deployment.device_id, holder=holder, wait_seconds=60):
        previous = deployment.status
        claimed = (
            Deployment.objects.filter(pk=deployment.pk, status=previous)
            .exclude(status__in=TRANSIENT_STATUSES)
            .update(status=DeploymentStatus.REMOVING, updated=timezone.now())
        )
        if claimed != 1:
            raise DeploymentError(
                "status: the deployment changed meanwhile; reload and try again.",
                field="status",
                status=409,
            )
        deployment.status = DeploymentStatus.REMOVING
        successor = (
            _live(
                Deployment.objects.filter(
                    device_id=deployment.device_id, project=deployment.project
                )
            )
            .exclude(pk=deployment.pk)
            .exists()
        )
        if previous != DeploymentStatus.ROLLED_BACK and not successor:
            _remove_from_device(
                deployment, delete_data=delete_data, keep_shared_servers=keep_shared_servers
            )
    _release(deployment)
    return _finish(deployment, DeploymentStatus.REMOVED, "")


def _remove_from_device(
    deployment: Deployment, *, delete_data: bool, keep_shared_servers: bool = False
) -> None:
    step = DeploymentStep.objects.create(
        deployment=deployment, name="remove containers" + (" and data" if delete_data else "")
    )
    try:
        p = pipeline.DeploymentPipeline(deployment, recipe_for(deployment.slug))
        message = p.compose_down(delete_data=delete_data) + "; " + p.remove_folder()
        # --- pooling: the app's pooled databases (dumped first when its data is kept)
        try:
            released = pooled_databases_release(
                deployment=deployment,
                keep_data=not delete_data,
                keep_instance=keep_shared_servers,
                shell=p.shell,
            )
        except PoolingError as exc:
            raise StepFailed(exc.message) from None
        message += f"; {released}" if released else ""
    except (DeploymentError, StepFailed, ssh.SSHError) as exc:
        text = mask(getattr(exc, "message", str(exc)), deployment.secret_values().values())
        step.status, step.message = DeploymentStep.Status.FAILED, text
        step.save(update_fields=["status", "message"])
        _finish(deployment, DeploymentStatus.FAILED, f"Removal failed: {text}")
        raise DeploymentError(
            f"Removal failed: {text} Press Remove again when the device is back.",
            field="deployment",
            status=502,
        ) from None
    step.status, step.message = DeploymentStep.Status.OK, message
    step.save(update_fields=["status", "message"])
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
        raise DeploymentError(
            f"The device did not answer: {exc}", field="deployment", status=502
        ) from None
    text = out if exit_code == 0 else (out + err)
    return mask(text, deployment.secret_values().values())


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

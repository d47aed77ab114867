"""Deployments after something went away: the control plane (a restart) or a device.

deployments_recover_interrupted   at start-up: nothing stays stuck in a transient state
deployments_cleanup_pending       undo what a failed attempt left on a device that was
                                  away; after each successful poll and at start-up
deployments_after_poll            the poll's hook (devices.tasks): release the reservations
                                  of apps the poll has now measured, then the pending undos

Every door that needs them imports them from here.
"""

from __future__ import annotations

import logging
import uuid

from django.db.models import Q
from django.utils import timezone

from devices import ssh
from devices.compose import StepFailed, ssh_port_answers
from devices.models import Device
from homelab.core.masking import mask
from marketplace import pipeline
from marketplace.models import (
    INSTALLED_STATUSES,
    TRANSIENT_STATUSES,
    Deployment,
    DeploymentStatus,
    DeploymentStep,
)
from pooling.services import PoolingError, pooled_databases_release
from scheduling.services import reservations_release

logger = logging.getLogger(__name__)

CLEANUP_LEASE_WAIT_SECONDS = 5.0
CLEANUP_MAX_TRIES = 5  # then the person is asked to press Remove
PENDING_NOTE = (
    " What this attempt created on the device will be removed automatically once the "
    "device answers again; nothing needs doing."
)


def cleanup_mark_pending(deployment: Deployment, *, folder: str) -> None:
    """Keep what could not be undone: the compose project (deployment.project) and the
    app folder, for deployments_cleanup_pending."""
    Deployment.objects.filter(pk=deployment.pk).update(cleanup_pending=True, cleanup_folder=folder)
    deployment.cleanup_pending, deployment.cleanup_folder = True, folder


# --------------------------------------------------------------------- start-up recovery
def deployments_recover_interrupted() -> int:
    """After a control-plane restart nothing stays stuck in a transient state.

    1. Queued but never started (validating, not claimed): enqueue it again (resumed).
    2. Claimed and interrupted mid-way: undo by project name (`down -v`, remove the folder),
       then mark it failed with what happened; a device that does not answer keeps the
       undo pending (run after its next successful poll).
    3. Interrupted during removal: mark failed so Remove can be pressed again.
    4. Undos pending from before: run them on each device that answers now.
    Returns how many transient deployments were handled.
    """
    handled = 0
    earlier_devices = set(
        Deployment.objects.filter(cleanup_pending=True).values_list("device_id", flat=True)
    )
    for deployment in Deployment.objects.filter(status__in=TRANSIENT_STATUSES).select_related(
        "device"
    ):
        handled += 1
        if deployment.status == DeploymentStatus.VALIDATING and deployment.started_at is None:
            services.enqueue_run(deployment.pk)
            continue
        if deployment.status == DeploymentStatus.REMOVING:
            services._finish(
                deployment,
                DeploymentStatus.FAILED,
                "The control plane stopped during the removal; press Remove again.",
            )
            continue
        deployment_recover_interrupted(deployment)
    for device in Device.objects.filter(pk__in=earlier_devices):
        if ssh_port_answers(device.address, device.port):
            deployments_cleanup_pending(device=device)
    return handled


def deployment_recover_interrupted(deployment: Deployment) -> str:
    """One deployment the control plane stopped mid-way (claimed, transient): undo by
    project name (`down -v`, remove the folder, its pooled databases), then failed with
    what happened; a device that does not answer keeps the undo pending. A removal cut
    short is failed so Remove can be pressed again. Returns the deployment's error."""
    if deployment.status == DeploymentStatus.REMOVING:
        services._finish(
            deployment,
            DeploymentStatus.FAILED,
            "The control plane stopped during the removal; press Remove again.",
        )
        return deployment.error
    message = "The control plane stopped during this deployment; what it had created was removed."
    p = None
    try:
        p = pipeline.DeploymentPipeline(deployment, _recipe_or_none(deployment.slug))
        _undo_on_device(p, deployment, keep_data=True)
    except ssh.SSHError:
        cleanup_mark_pending(deployment, folder=p.folder if p else "")
        message = "The control plane stopped during this deployment." + PENDING_NOTE
    except Exception as exc:  # say what happened; Remove cleans up
        message = (
            "The control plane stopped during this deployment and cleaning up failed "
            f"({getattr(exc, 'message', exc)}); remove it to clean up."
        )
    services._release(deployment)
    services._finish(deployment, DeploymentStatus.FAILED, message)
    return message


def _recipe_or_none(slug: str):
    try:
        return services.recipe_for(slug)
    except services.DeploymentError:
        return None  # the undo works by project name; the recipe is not needed


def _undo_on_device(p: pipeline.DeploymentPipeline, deployment: Deployment, *, keep_data: bool):
    """`down -v` of the project, the app folder, the app's pooled databases."""
    said = [p.compose_down(), p.remove_folder()]
    # --- pooling: its pooled databases go too

    try:
        released = pooled_databases_release(
            deployment=deployment, keep_data=keep_data, shell=p.shell
        )
    except PoolingError as exc:
        raise StepFailed(exc.message) from None
    if released:
        said.append(released)
    return "; ".join(said)


# ---------------------------------------------------------------------- pending undos
def deployments_cleanup_pending(*, device: Device, project: str | None = None) -> int:
    """Run the undos a device missed while it was away; returns how many were done.

    1. Each deployment of the device with cleanup_pending (only `project`'s when given),
       under the device's lease (busy: left for the next poll).
    2. When a newer live deployment uses the same project name, the project is that one's
       now: nothing is removed, the flag is cleared.
    3. Otherwise `docker compose down -v --remove-orphans` by project name, `rm -rf` of the
       folder, the pooled databases dropped; recorded as a step. Done: rolled_back. A
       failure stays pending, tried after the next poll; after CLEANUP_MAX_TRIES failures
       the error asks the person to press Remove.
    """
    pending = Deployment.objects.filter(device=device, cleanup_pending=True).select_related(
        "device"
    )
    if project is not None:
        pending = pending.filter(project=project)
    done = 0
    for deployment in pending:
        holder = f"cleanup-{deployment.pk}-{uuid.uuid4().hex[:8]}"
        try:
            with services.device_lease(
                device_id=device.pk, holder=holder, wait_seconds=CLEANUP_LEASE_WAIT_SECONDS
            ):
                done += _cleanup_one(deployment)
        except services.DeploymentError:
            logger.info("Device %s is busy; cleaning up %s next time", device.name, deployment)
    return done


def _cleanup_one(deployment: Deployment) -> int:
    successor = (
        Deployment.objects.filter(device_id=deployment.device_id, project=deployment.project)
        .live()
        .exclude(pk=deployment.pk)
        .exists()
    )
    step = DeploymentStep.objects.create(
        deployment=deployment, name="undo after the device came back"
    )
    if successor:
        message = "a newer deployment of this app uses the project now: nothing removed"
    else:
        p = pipeline.DeploymentPipeline(deployment, _recipe_or_none(deployment.slug))
        if deployment.cleanup_folder:
            p.folder = deployment.cleanup_folder
            p.compose_file = f"{p.folder}/compose.yaml"
        try:
            message = _undo_on_device(p, deployment, keep_data=False)
        except (StepFailed, ssh.SSHError) as exc:
            text = mask(str(exc), deployment.values_to_mask())
            step.status, step.message = DeploymentStep.Status.UNDO_FAILED, text
            step.save(update_fields=["status", "message"])
            tries = deployment.steps.filter(name=step.name, status=step.status).count()
            if tries >= CLEANUP_MAX_TRIES:
                Deployment.objects.filter(pk=deployment.pk).update(
                    cleanup_pending=False,
                    error=deployment.error.replace(PENDING_NOTE, "")
                    + f" Removing what it created failed {tries} times ({text}); "
                    "press Remove to try again.",
                )
            logger.info("Cleaning up %s failed (try %d): %s", deployment, tries, text)
            return 0
    step.status, step.message = DeploymentStep.Status.UNDONE, message
    step.save(update_fields=["status", "message"])
    error = deployment.error.replace(PENDING_NOTE, "")
    error += f" Once {deployment.device.name} was back, what this attempt created was removed."
    Deployment.objects.filter(pk=deployment.pk).update(
        cleanup_pending=False,
        status=DeploymentStatus.ROLLED_BACK
        if deployment.status == DeploymentStatus.FAILED
        else deployment.status,
        error=error.strip(),
        updated=timezone.now(),
    )
    logger.info("Cleaned up %s after its device came back", deployment)
    return 1


# ----------------------------------------------------------------------- the poll hook
def deployments_after_poll(*, device_id: int, device: Device | None = None) -> None:
    """Called after each successful poll of a device (devices.tasks.poll_device).

    1. Reservations of apps that reached running before this poll started are released:
       the poll's figures now include the app's memory, so placement must not count it
       twice.
    2. Undos the device missed while away run now.
    """
    if device is None:
        device = Device.objects.filter(pk=device_id).first()
    if device is None or device.last_seen is None:
        return
    # One small query on most polls: nothing reserved and nothing to undo on this device.
    if not Deployment.objects.filter(
        Q(device_id=device_id) & (Q(reservation_id__isnull=False) | Q(cleanup_pending=True))
    ).exists():
        return
    measured = Deployment.objects.filter(
        device_id=device_id,
        reservation_id__isnull=False,
        status__in=INSTALLED_STATUSES,
        finished_at__lt=device.last_seen,
    )
    reservations_release(reservation_ids=list(measured.values_list("reservation_id", flat=True)))
    if Deployment.objects.filter(Q(device_id=device_id) & Q(cleanup_pending=True)).exists():
        deployments_cleanup_pending(device=device)


def after_device_poll(device: Device) -> None:
    """devices.hooks.after_poll: deployments see each successful poll."""
    try:
        deployments_after_poll(device_id=device.pk, device=device)
    except Exception:  # a failed cleanup must not fail the poll; it is tried again next time
        logger.exception("The deployments' after-poll work on device %s failed", device.pk)


# Last: marketplace.services uses this module's functions, and they use its.
from marketplace import services  # noqa: E402

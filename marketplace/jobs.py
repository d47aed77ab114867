"""The deployments' job kinds (homelab.core.jobs): registered in MarketplaceConfig.ready().

app.deploy    DeployJob    the pipeline (marketplace.pipeline) under the device's lease
app.start     StartJob     `docker compose start`, then running
app.stop      StopJob      `docker compose stop`, then stopped
app.restart   RestartJob   `docker compose restart`, then running
app.remove    RemoveJob    containers, app folder, shared databases (dumped when kept)
app.reconfigure  ReconfigureJob  new settings through the pipeline, the previous ones back
                 on failure (marketplace.reconfigure)

Every kind targets ("deployment", pk) and has `deployment_id` in its params; the services
in marketplace.services start them and do their device work. Each job's steps are also
written as DeploymentStep rows (`on_step`), which the deployment's page and "What I did"
follow. A job whose worker died (homelab.core.services.jobs_recover_interrupted) frees the
device's lease it held and leaves the deployment in a stated state (`interrupted`).
"""

from __future__ import annotations

import logging

from django.utils import timezone

from devices.models import DeviceLease
from homelab.core.jobs import JobCancelled, JobFailed, JobRunner
from homelab.core.masking import mask
from homelab.core.models import Job, JobStatus, JobStep
from marketplace import pipeline, reconfigure, services
from marketplace.models import (
    TRANSIENT_STATUSES,
    Deployment,
    DeploymentStatus,
    DeploymentStep,
)

logger = logging.getLogger(__name__)

REMOVAL_INTERRUPTED = "The control plane stopped during the removal; press Remove again."


def _free_lease(job: Job) -> bool:
    """The device lease a dead job held is free at once (not only after it expires)."""
    return DeviceLease.objects.filter(holder=services.job_lease_holder(job.pk)).delete()[0] > 0


def _deployment_of(job: Job) -> Deployment | None:
    deployment_id = (job.params or {}).get("deployment_id")
    return Deployment.objects.select_related("device").filter(pk=deployment_id).first()


class DeploymentJob(JobRunner):
    """What every deployment job shares: its deployment, secrets, words, step mirror."""

    def __init__(self, job: Job):
        super().__init__(job)
        self.deployment = _deployment_of(job)
        if self.deployment is not None:
            self.secrets = self.deployment.values_to_mask()
        self._mirrors: dict[int, DeploymentStep] = {}

    def the_deployment(self) -> Deployment:
        if self.deployment is None:
            raise JobFailed(
                "This app's deployment is gone (its device was removed); nothing to do."
            )
        return self.deployment

    def describe_error(self, exc: BaseException) -> str:
        if isinstance(exc, JobFailed):
            return exc.message
        if isinstance(exc, services.DeploymentError):
            return exc.message
        return pipeline.describe(exc)

    def on_step(self, row: JobStep) -> None:
        """Mirror the job's step as the deployment's step (same name, status, message)."""
        if self.deployment is None:
            return
        status = row.status if row.status in DeploymentStep.Status.values else "ok"
        mirror = self._mirrors.get(row.pk)
        if mirror is None:
            self._mirrors[row.pk] = DeploymentStep.objects.create(
                deployment_id=self.deployment.pk,
                name=row.name[:60],
                status=status,
                message=row.message,
            )
            return
        mirror.status, mirror.message = status, row.message
        mirror.save(update_fields=["status", "message"])

    @classmethod
    def interrupted(cls, job: Job) -> str:
        freed = _free_lease(job)
        return "The device's lease was freed." if freed else "Nothing was left to clean up."


# --------------------------------------------------------------------------- deploy
class DeployJob(DeploymentJob):
    label = "Deploy an app"
    timeout_seconds = 3600

    def undoing(self) -> None:
        if self.deployment is not None:
            Deployment.objects.filter(pk=self.deployment.pk).update(
                status=DeploymentStatus.ROLLING_BACK
            )

    @classmethod
    def cancelled_before_start(cls, job: Job) -> None:
        """The deployment waited for this job: it ends failed (its name free again), its
        reservation released; nothing was done on the device."""
        deployment = _deployment_of(job)
        if deployment is None:
            return
        claimed = Deployment.objects.filter(
            pk=deployment.pk, status=DeploymentStatus.VALIDATING, started_at__isnull=True
        ).update(started_at=timezone.now())
        if claimed == 1:
            services._release(deployment)
            services._finish(
                deployment,
                DeploymentStatus.FAILED,
                "The deployment was cancelled before it started; nothing was done on "
                f"{deployment.device.name}. Deploy it again when you are ready.",
            )

    def run(self) -> dict:
        deployment = self.the_deployment()
        done = services.deployment_run(deployment_id=deployment.pk, job=self)
        if done is None:
            self.skip(
                "claim the deployment", "Another run has it, or it has finished: nothing to do."
            )
            return {"claimed": False}
        self.deployment = done
        if done.status != DeploymentStatus.RUNNING:
            # the pipeline has undone what it did (run_steps); the job says why it ended
            if Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists():
                raise JobCancelled
            raise JobFailed(done.error or f"The deployment ended {done.status}.")
        return {"claimed": True, "status": done.status, "url": done.url}

    @classmethod
    def interrupted(cls, job: Job) -> str:
        """Today's start-up recovery for this one deployment: `down -v` by project name,
        remove the folder, failed with what happened (the device away: undo pending)."""
        said = [super().interrupted(job)]
        deployment = _deployment_of(job)
        if deployment is not None and deployment.status in TRANSIENT_STATUSES:
            said.append(recovery.deployment_recover_interrupted(deployment))
        return " ".join(said)


# ---------------------------------------------------------------------------- day 2
class _Day2Job(DeploymentJob):
    action = ""
    timeout_seconds = 900

    def run(self) -> dict:
        status = services.deployment_operate(
            job=self, deployment=self.the_deployment(), action=self.action
        )
        return {"status": status}

    @classmethod
    def interrupted(cls, job: Job) -> str:
        said = super().interrupted(job)
        return said + f" The app's status was left as it was; press {cls.action.title()} again."


class StartJob(_Day2Job):
    label = "Start an app"
    action = "start"


class StopJob(_Day2Job):
    label = "Stop an app"
    action = "stop"


class RestartJob(_Day2Job):
    label = "Restart an app"
    action = "restart"


# --------------------------------------------------------------------------- remove
class RemoveJob(DeploymentJob):
    label = "Remove an app"
    timeout_seconds = 3600  # dumps of shared databases may take up to 30 minutes each

    def describe_error(self, exc: BaseException) -> str:
        words = super().describe_error(exc)
        if isinstance(exc, JobFailed):
            return words
        return f"Removal failed: {words} Press Remove again when the device is back."

    def run(self) -> dict:
        removed = services.removal_run(
            job=self,
            deployment=self.the_deployment(),
            delete_data=bool(self.params.get("delete_data")),
            keep_shared_servers=bool(self.params.get("keep_shared_servers")),
        )
        return {"status": removed.status, "data_kept": removed.data_kept}

    def finished(self) -> None:
        if self.job.status == JobStatus.SUCCEEDED or self.deployment is None:
            return
        # claimed (removing) and then failed or cancelled: failed with the reason
        if Deployment.objects.filter(
            pk=self.deployment.pk, status=DeploymentStatus.REMOVING
        ).exists():
            services._finish(
                self.deployment,
                DeploymentStatus.FAILED,
                mask(self.job.error, self.secrets) or "The removal stopped; press Remove again.",
            )

    @classmethod
    def interrupted(cls, job: Job) -> str:
        said = [super().interrupted(job)]
        deployment = _deployment_of(job)
        if deployment is not None and deployment.status == DeploymentStatus.REMOVING:
            services._finish(deployment, DeploymentStatus.FAILED, REMOVAL_INTERRUPTED)
            said.append(f"{deployment.app_name} is marked failed: press Remove again.")
        return " ".join(said)


# ---------------------------------------------------------------------- reconfigure
class ReconfigureJob(DeploymentJob):
    label = "Change an app's settings"
    timeout_seconds = 3600  # recreating may pull images

    def run(self) -> dict:
        return reconfigure.reconfigure_run(
            job=self, deployment=self.the_deployment(), config=dict(self.params.get("config") or {})
        )

    @classmethod
    def interrupted(cls, job: Job) -> str:
        said = super().interrupted(job)
        return (
            said + " The settings may be half changed on the device (the previous compose "
            "file is kept beside it as compose.yaml.previous): open the app's page, check "
            "its settings and press Apply again."
        )


KINDS: dict[str, type[DeploymentJob]] = {
    "app.deploy": DeployJob,
    "app.start": StartJob,
    "app.stop": StopJob,
    "app.restart": RestartJob,
    "app.remove": RemoveJob,
    "app.reconfigure": ReconfigureJob,
}

from marketplace import recovery  # noqa: E402  (recovery uses services, which are loaded)

"""The backups' job kinds (homelab.core.jobs), registered in BackupsConfig.ready().

backup.run       BackupJob    back an app up now to every destination, then retention
backup.restore   RestoreJob   restore an app in place from one of its snapshots
backup.forget    ForgetJob    retention (forget + prune) of an app's repositories

Each targets ("deployment", pk) with `deployment_id` in its params (and `snapshot_id` for
a restore); the device work is in backups.services, under the device's lease. A job whose
worker died frees that lease; an interrupted restore starts the app again.
"""

from __future__ import annotations

from backups import services
from backups.models import Snapshot
from devices.models import DeviceLease
from homelab.core.errors import HomelabError
from homelab.core.jobs import JobFailed, JobRunner
from homelab.core.models import Job
from marketplace.models import Deployment


def _deployment_of(job: Job) -> Deployment | None:
    deployment_id = (job.params or {}).get("deployment_id")
    return Deployment.objects.select_related("device").filter(pk=deployment_id).first()


def _free_lease(job: Job) -> bool:
    from marketplace.services import job_lease_holder

    return DeviceLease.objects.filter(holder=job_lease_holder(job.pk)).delete()[0] > 0


class _BackupJob(JobRunner):
    timeout_seconds = 3600  # under Q_CLUSTER's retry (3700 s), like the longest deploy

    def __init__(self, job: Job):
        super().__init__(job)
        self.deployment = _deployment_of(job)

    def the_deployment(self) -> Deployment:
        if self.deployment is None:
            raise JobFailed("This app is gone (removed with its device); nothing to do.")
        return self.deployment

    def describe_error(self, exc: BaseException) -> str:
        if isinstance(exc, JobFailed | HomelabError):
            return exc.message
        from marketplace import pipeline

        return pipeline.describe(exc)

    @classmethod
    def interrupted(cls, job: Job) -> str:
        return "The device's lease was freed." if _free_lease(job) else "Nothing was left."


class BackupJob(_BackupJob):
    label = "Back up an app"

    def run(self) -> dict:
        return services.backup_run(job=self, deployment=self.the_deployment())


class ForgetJob(_BackupJob):
    label = "Apply backup retention"

    def run(self) -> dict:
        return services.forget_run(job=self, deployment=self.the_deployment())


class RestoreJob(_BackupJob):
    label = "Restore an app"

    def run(self) -> dict:
        snapshot = (
            Snapshot.objects.select_related("repository", "destination")
            .filter(pk=self.params.get("snapshot_id"))
            .first()
        )
        if snapshot is None:
            raise JobFailed("This snapshot is no longer known; pick another one.")
        return services.restore_run(job=self, deployment=self.the_deployment(), snapshot=snapshot)

    @classmethod
    def interrupted(cls, job: Job) -> str:
        said = super().interrupted(job)
        deployment = _deployment_of(job)
        if deployment is None:
            return said
        try:
            services.app_start_after_interruption(deployment)
        except Exception as exc:  # say so; the person can press Start
            return f"{said} Starting {deployment.app_name} again failed ({exc}); press Start."
        return f"{said} {deployment.app_name} was started again."


KINDS: dict[str, type[_BackupJob]] = {
    "backup.run": BackupJob,
    "backup.restore": RestoreJob,
    "backup.forget": ForgetJob,
}

"""How changing a deployed app's settings works, top to bottom (the `app.reconfigure` job).

`deployment_reconfigure` (marketplace.services) has checked the new settings as a deploy
does; this is the device work, under the device's lease, as the job's steps
(pipeline.run_steps: each step a row, undos run newest first on a failure):

1. pre-flight (with the new settings): the device is online with Docker Compose, the
   app's minimum resources are there, and every new host port is free (the app's own
   containers holding its present ports are not in the way).
2. keep the previous settings: `cp -p compose.yaml compose.yaml.previous` on the device.
   Undo: put that file back, `docker compose up -d` with it (the previous version runs
   again), the previous settings, URL and compose copy back in the database, and wait
   until the app answers on its previous port.
3. render the compose file with the new settings and the stored secrets; the shared
   databases step wires it to the same pooled databases (it finds them: nothing new).
4. upload it (the app folder exists: nothing to undo beyond step 2's).
5. recreate: `docker compose up -d --remove-orphans`; compose recreates the containers
   whose settings changed. Volumes are never removed here, on success or failure.
6. configure (the app's URL for the new web port) and 7. health check on the new port.
8. The new settings are saved; the kept copy is removed.

The deployment's status stays as it is while this runs (running, or stopped: the app
runs afterwards either way); the page shows the job working. A failure says what went
wrong and that the previous settings are back, or, when even that failed, what to do.
"""

from __future__ import annotations

import json
import logging

from django.utils import timezone

from homelab.core.jobs import JobCancelled, JobFailed, JobRunner
from homelab.core.masking import mask
from homelab.core.models import Job
from marketplace import pipeline, services
from marketplace.models import Deployment, DeploymentStatus
from pooling.services import pooling_applies

logger = logging.getLogger(__name__)


class ReconfigurePipeline(pipeline.DeploymentPipeline):
    """The deployment pipeline's steps for new settings of an app that is installed."""

    def __init__(self, deployment: Deployment, recipe, *, config: dict, **kwargs):
        self.previous_config = dict(deployment.config or {})
        self.previous_url = deployment.url
        self.previous_compose_masked = deployment.compose_masked
        super().__init__(deployment, recipe, **kwargs)
        self.kept_file = f"{self.compose_file}.previous"
        # the steps below read the settings from the deployment: the new ones, in memory
        # until they work
        deployment.config = dict(config)

    def env_secret_values(self) -> dict[str, str]:
        pending = self.deployment.pending_env_secret_values()
        return self.deployment.env_secret_values() if pending is None else pending

    def steps(self) -> list[pipeline.Step]:
        pooled = (
            [pipeline.Step("shared databases", "preparing", self.pool_databases)]
            if pooling_applies(self.recipe, self.deployment.config)
            else []
        )
        return [
            pipeline.Step("pre-flight checks", "validating", self.preflight),
            pipeline.Step("keep the previous settings", "preparing", self.keep_previous),
            pipeline.Step("render compose file", "preparing", self.render),
            *pooled,
            pipeline.Step("upload compose file", "preparing", self.upload),
            pipeline.Step("recreate containers", "deploying", self.recreate),
            pipeline.Step("configure", "configuring", self.configure),
            pipeline.Step("health check", "health_check", self.health_check),
        ]

    # -- 2.
    def keep_previous(self, ctx: pipeline.Context) -> str:
        self.shell.check(
            ["cp", "-p", "--", self.compose_file, self.kept_file],
            what=f"Keeping a copy of {self.compose_file}",
        )
        ctx.on_undo("put the previous settings back", self.restore_previous)
        return f"a copy of the compose file in use is kept at {self.kept_file}"

    def restore_previous(self) -> str:
        self.shell.check(
            ["mv", "-f", "--", self.kept_file, self.compose_file],
            what="Putting the previous compose file back",
        )
        self.deployment.config = self.previous_config
        self.up()
        Deployment.objects.filter(pk=self.deployment.pk).update(
            config=self.previous_config,
            env_secrets_pending="",
            url=self.previous_url,
            compose_masked=self.previous_compose_masked,
            status=DeploymentStatus.RUNNING,
            updated=timezone.now(),
        )
        self.deployment.url = self.previous_url
        self.deployment.compose_masked = self.previous_compose_masked
        self.deployment.status = DeploymentStatus.RUNNING
        answered = self.health_check(pipeline.UndoList())
        return f"the previous settings are back and the app answers ({answered})"

    # -- 4.
    def upload(self, ctx: pipeline.Context) -> str:
        # The folder is the app's (step 2 copied its compose file): a failure must never
        # remove it, whatever pre-flight saw.
        self.folder_existed = True
        return super().upload(ctx)

    # -- 5.
    def recreate(self, ctx: pipeline.Context) -> str:
        self.up()
        return "containers recreated with the new settings"

    # -- 8.
    def finish(self) -> None:
        pending = self.deployment.pending_env_secret_values()
        Deployment.objects.filter(pk=self.deployment.pk).update(
            config=self.deployment.config,
            env_secrets=json.dumps(pending if pending is not None else {}),
            env_secrets_pending="",
            status=DeploymentStatus.RUNNING,
            error="",
            updated=timezone.now(),
        )
        self.deployment.status = DeploymentStatus.RUNNING
        exit_code, _out, err = self.shell.run(["rm", "-f", "--", self.kept_file])
        if exit_code != 0:  # harmless: the next change of settings overwrites it
            logger.info("Could not remove %s: %s", self.kept_file, err.strip()[:200])


def reconfigure_run(*, job: JobRunner, deployment: Deployment, config: dict) -> dict:
    """The `app.reconfigure` job's work (marketplace.jobs.ReconfigureJob); see the module's
    docstring for the steps. JobFailed says what happened when the new settings did not
    work."""
    if deployment.status not in services.INSTALLED_STATUSES:
        raise JobFailed(
            f"{deployment.app_name} is {deployment.get_status_display().lower()} now, so its "
            "settings were not changed."
        )
    recipe = services.recipe_for(deployment.slug)
    with services.device_lease(
        device_id=deployment.device_id, holder=services.job_lease_holder(job.job.pk)
    ):
        p = ReconfigurePipeline(deployment, recipe, config=config)
        job.secrets.extend(p.shell.secrets)
        # the deployment's status is not the steps' (see the module's docstring)
        outcome = pipeline.run_steps(job, p.steps(), set_status=lambda status: None)
        if outcome.ok:
            p.finish()
            return {"status": DeploymentStatus.RUNNING, "url": deployment.url, "config": config}
    words = _failure_words(deployment, outcome)
    if outcome.undo_errors:
        # the previous settings could not be put back (the device went away): the new
        # secret settings may be on the device, so they stay masked; the app's page says so
        Deployment.objects.filter(pk=deployment.pk).update(
            error=mask(words, deployment.values_to_mask()), updated=timezone.now()
        )
    else:
        Deployment.objects.filter(pk=deployment.pk).update(env_secrets_pending="")
    if Job.objects.filter(pk=job.job.pk, cancel_requested=True).exists():
        raise JobCancelled  # pressed Cancel: what was done is undone (run_steps)
    raise JobFailed(words)


def _failure_words(deployment: Deployment, outcome: pipeline.Outcome) -> str:
    said = f"The new settings did not work ({outcome.failed_step}: {outcome.error})"
    if outcome.failed_step in ("pre-flight checks", "keep the previous settings"):
        return f"{said}; nothing was changed: {deployment.app_name} runs as before."
    if not outcome.undo_errors:
        return (
            f"{said}; the previous settings are back and {deployment.app_name} runs with them. "
            "Correct the settings and press Apply again."
        )
    # the job's runner adds what could not be undone, and why
    return (
        f"{said}, and putting the previous settings back failed too. Check "
        f"{deployment.device.name}, then press Apply again or restart the app."
    )

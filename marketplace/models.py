"""Deployments: one app instance on one device, its steps, and every command it sent."""

from __future__ import annotations

import json

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from encrypted_model_fields.fields import EncryptedTextField

from devices.models import Device

INSTANCE_PATTERN = r"\A[a-z0-9][a-z0-9-]{0,30}\Z"
PROJECT_PATTERN = r"\A[a-z0-9][a-z0-9_-]{0,62}\Z"
SLUG_PATTERN = r"\A[a-z0-9][a-z0-9-]{0,40}\Z"

instance_validator = RegexValidator(
    INSTANCE_PATTERN,
    "Use 1-31 lowercase letters, digits or '-', starting with a letter or digit (like 'default' or 'family').",
)
project_validator = RegexValidator(
    PROJECT_PATTERN, "A project name is 1-63 lowercase letters, digits, '-' or '_'."
)
slug_validator = RegexValidator(SLUG_PATTERN, "An app slug is lowercase letters, digits and '-'.")


class DeploymentStatus(models.TextChoices):
    """Where a deployment stands (the seeds' state machine plus the day-2 states).

    Allowed transitions:

    * validating -> preparing -> deploying -> configuring -> health_check -> running
    * any of validating..health_check -> rolling_back -> rolled_back | failed
      (failed: an undo failed, or the control plane stopped mid-way and cleaned up)
    * failed with cleanup_pending (the device went away mid-way, the undo could not
      run) -> rolled_back once the device is back and the undo has run
    * running <-> stopped (stop/start; restart keeps running)
    * the watch (marketplace.watch, after every poll; marketplace.health_checks): running
      <-> degraded | stopped_unexpectedly | crash_loop | missing | not_answering, and
      between those; a person's start/stop/restart/remove works from each of them. It
      never touches stopped (a person's wish) nor a transient state.
    * running | stopped | failed | rolled_back -> removing -> removed
      (a removal that fails leaves the deployment failed with the reason)
    """

    VALIDATING = "validating", "Checking the device"
    PREPARING = "preparing", "Preparing files"
    DEPLOYING = "deploying", "Starting containers"
    CONFIGURING = "configuring", "Configuring"
    HEALTH_CHECK = "health_check", "Waiting until it answers"
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"
    ROLLING_BACK = "rolling_back", "Undoing"
    ROLLED_BACK = "rolled_back", "Undone after a failure"
    REMOVING = "removing", "Removing"
    REMOVED = "removed", "Removed"
    # What the watch finds (issue 20): the app should run, and does not quite.
    DEGRADED = "degraded", "Partly running"
    STOPPED_UNEXPECTEDLY = "stopped_unexpectedly", "Stopped unexpectedly"
    CRASH_LOOP = "crash_loop", "Keeps crashing"
    MISSING = "missing", "Containers missing"
    NOT_ANSWERING = "not_answering", "Not answering"


# Which statuses count, said once; every module imports these (never its own list).
#
# TRANSIENT: working on its device right now (the pipeline, an undo or a removal).
# FINAL: the pipeline stopped moving (everything not transient); the live progress ends.
# FINISHED: no longer holds the app+device+instance identity; a new deployment may take it.
#   Everything else is live: `Deployment.objects.live()`.
# INSTALLED: the app is on its device and was measured there (up or stopped by a person).
# GONE: not on its device any more; the dashboard counts every other deployment as an
#   app (a failed one may still hold containers to remove).
TRANSIENT_STATUSES = (
    DeploymentStatus.VALIDATING,
    DeploymentStatus.PREPARING,
    DeploymentStatus.DEPLOYING,
    DeploymentStatus.CONFIGURING,
    DeploymentStatus.HEALTH_CHECK,
    DeploymentStatus.ROLLING_BACK,
    DeploymentStatus.REMOVING,
)
FINAL_STATUSES = tuple(s for s in DeploymentStatus if s not in TRANSIENT_STATUSES)
# UP: the app should be running: it is, or the watch found it in trouble (TROUBLE). A person
#   may start, stop, restart or remove it from any of these; the watch moves it between them.
TROUBLE_STATUSES = (
    DeploymentStatus.DEGRADED,
    DeploymentStatus.STOPPED_UNEXPECTEDLY,
    DeploymentStatus.CRASH_LOOP,
    DeploymentStatus.MISSING,
    DeploymentStatus.NOT_ANSWERING,
)
UP_STATUSES = (DeploymentStatus.RUNNING, *TROUBLE_STATUSES)
FINISHED_STATUSES = (
    DeploymentStatus.REMOVED,
    DeploymentStatus.ROLLED_BACK,
    DeploymentStatus.FAILED,
)
INSTALLED_STATUSES = (*UP_STATUSES, DeploymentStatus.STOPPED)
GONE_STATUSES = (DeploymentStatus.REMOVED, DeploymentStatus.ROLLED_BACK)


class DeploymentQuerySet(models.QuerySet):
    def live(self) -> DeploymentQuerySet:
        """The deployments that still hold their identity (not removed, rolled back or
        failed): what lives on a device or is on its way there."""
        return self.exclude(status__in=FINISHED_STATUSES)

    def installed(self) -> DeploymentQuerySet:
        """Up (running, or in trouble the watch found) or stopped by a person."""
        return self.filter(status__in=INSTALLED_STATUSES)

    def counted(self) -> DeploymentQuerySet:
        """What the dashboard counts as an app: every deployment not gone."""
        return self.exclude(status__in=GONE_STATUSES)


class Deployment(models.Model):
    """One app (recipe) on one device under an instance name; identity slug+device+instance."""

    slug = models.CharField(max_length=41, validators=[slug_validator])
    app_name = models.CharField(max_length=60)
    category = models.CharField(max_length=40, blank=True)
    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="deployments")
    instance = models.CharField(max_length=31, default="default", validators=[instance_validator])
    project = models.CharField(max_length=63, validators=[project_validator])
    status = models.CharField(
        max_length=24, choices=DeploymentStatus.choices, default=DeploymentStatus.VALIDATING
    )
    # The watch (issue 20): since when the status holds, and why, in a person's words.
    status_since = models.DateTimeField(null=True, blank=True)
    status_reason = models.TextField(blank=True)
    auto_restart = models.BooleanField(
        null=True,
        blank=True,
        help_text="Restart it automatically when it stops unexpectedly. Empty: the app's "
        "default (on for apps meant to be always on).",
    )
    health_check_minutes = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Minutes between health checks; empty: 5."
    )
    # What the watch remembers between polls: restart counts seen, its own restart
    # attempts, health-check failures in a row (marketplace.watch).
    watch_memory = models.JSONField(default=dict, blank=True, editable=False)
    config = models.JSONField(
        default=dict, blank=True, help_text="What was chosen: ports and env (never secrets)."
    )
    secrets = EncryptedTextField(default="{}", editable=False)
    # Extra settings the person typed whose name says they are secret (SMTP_PASSWORD, ...):
    # their values live here, encrypted; `config["env"]` holds MASK in their place.
    env_secrets = EncryptedTextField(default="{}", editable=False)
    # A change of settings under way (marketplace.reconfigure): its typed secret settings,
    # moved to env_secrets when it works, dropped when it is rolled back.
    env_secrets_pending = EncryptedTextField(default="", blank=True, editable=False)
    # "Keep my data": what a new deployment of the same app and name on this device needs
    # to pick the data up again (deployment_create reuses the secrets, pooling these).
    data_kept = models.BooleanField(
        default=False,
        help_text="Removed with its data kept: deploying the same app under the same name on "
        "this device again reuses its passwords and keys and restores its shared databases.",
    )
    database_passwords = EncryptedTextField(
        default="{}",
        editable=False,
        help_text="Passwords of its shared databases by engine, kept with its data.",
    )
    compose_masked = models.TextField(
        blank=True, help_text="The rendered compose file with every secret masked."
    )
    compose_path = models.CharField(max_length=255, blank=True)
    url = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    reservation_id = models.BigIntegerField(null=True, blank=True)
    cleanup_pending = models.BooleanField(
        default=False,
        db_index=True,
        help_text="The device went away before this attempt was undone: its compose project "
        "and cleanup_folder are removed once the device answers a poll again.",
    )
    cleanup_folder = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField(
        null=True, blank=True, help_text="When a worker claimed the deployment."
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    user = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = DeploymentQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["slug", "device", "instance"],
                # FINISHED_STATUSES, spelled out: a migration froze this condition
                condition=~Q(status__in=["removed", "rolled_back", "failed"]),
                name="one_live_deployment_per_app_device_instance",
            )
        ]

    def __str__(self) -> str:
        return f"{self.app_name} ({self.instance}) on {self.device}"

    @property
    def is_transient(self) -> bool:
        return self.status in TRANSIENT_STATUSES

    def secret_values(self) -> dict[str, str]:
        """{secret name: value} of the secrets the recipe declares (generated for it)."""
        return _json_dict(self.secrets)

    def env_secret_values(self) -> dict[str, str]:
        """{setting name: value} of the secret extra settings the person typed."""
        return _json_dict(self.env_secrets)

    def pending_env_secret_values(self) -> dict[str, str] | None:
        """The typed secret settings of a change of settings under way, or None."""
        return _json_dict(self.env_secrets_pending) if self.env_secrets_pending else None

    def values_to_mask(self) -> list[str]:
        """Every secret value of this app (generated and typed), for masking output."""
        return [
            *self.secret_values().values(),
            *self.env_secret_values().values(),
            *(self.pending_env_secret_values() or {}).values(),
        ]

    def kept_database_passwords(self) -> dict[str, str]:
        """{engine: password} of the shared databases whose data was kept (see data_kept)."""
        return _json_dict(self.database_passwords)


def _json_dict(text: str) -> dict[str, str]:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class DeploymentStep(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        OK = "ok", "Done"
        FAILED = "failed", "Failed"
        UNDONE = "undone", "Undone"
        UNDO_FAILED = "undo_failed", "Undo failed"

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="steps")
    time = models.DateTimeField(auto_now_add=True)
    name = models.CharField(max_length=60)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name}: {self.status}"


class DeploymentCommand(models.Model):
    """A command sent to the device for a deployment, secrets masked ("What I did")."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="commands")
    time = models.DateTimeField(auto_now_add=True)
    command = models.TextField()
    exit_code = models.IntegerField(null=True, blank=True)
    output = models.TextField(blank=True, help_text="The last lines of output, secrets masked.")
    seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.command[:80]


class SignInReveal(models.Model):
    """One "Show sign-in details" on an app's page: who asked, when, and whether their
    password was right. Never the secret itself.

    The wrong attempts of the last minutes also limit how often a person may guess
    (services.sign_in_reveal)."""

    deployment = models.ForeignKey(
        Deployment, on_delete=models.CASCADE, related_name="sign_in_reveals"
    )
    user = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150, help_text="Kept if the account is deleted.")
    time = models.DateTimeField(auto_now_add=True, db_index=True)
    shown = models.BooleanField(help_text="False: the password entered was wrong.")

    class Meta:
        ordering = ["-time", "-id"]

    def __str__(self) -> str:
        return f"{self.username} {'saw' if self.shown else 'was refused'} {self.deployment}"


class DeploymentEvent(models.Model):
    """A change of a deployment's state, with why, in its history ("What happened")."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="events")
    time = models.DateTimeField(db_index=True)
    from_status = models.CharField(max_length=24, blank=True)
    to_status = models.CharField(max_length=24)
    message = models.TextField(blank=True)
    notified = models.BooleanField(default=False)

    class Meta:
        ordering = ["-time", "-id"]

    def __str__(self) -> str:
        return f"{self.from_status} -> {self.to_status}"


class HealthSample(models.Model):
    """One scheduled health check of a deployment from the control plane."""

    deployment = models.ForeignKey(
        Deployment, on_delete=models.CASCADE, related_name="health_samples"
    )
    time = models.DateTimeField()
    ok = models.BooleanField()
    answer_ms = models.FloatField(null=True, blank=True)
    message = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-time"]
        indexes = [models.Index(fields=["deployment", "time"], name="health_sample_by_time")]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M} {'ok' if self.ok else 'failed'}"


class NotificationSettings(models.Model):
    """Where notifications go: apprise URLs, one a line (one row; see marketplace.notify)."""

    apprise_urls = EncryptedTextField(
        blank=True,
        default="",
        help_text="One apprise URL a line (for example ntfys://ntfy.sh/my-topic or "
        "mailtos://user:password@example.com). They hold passwords: stored encrypted.",
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "notification settings"

    def urls(self) -> list[str]:
        return [line.strip() for line in self.apprise_urls.splitlines() if line.strip()]

"""The record of long operations: a Job, its ordered steps and, for batch work, its items.

A job is written by exactly one worker (the one that claimed it) and read by pages, the
API and the live consumer; homelab.core.jobs holds the runner and the services that
change these rows.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

OUTPUT_MAX_CHARS = 20_000  # the tail of a job's output that is kept
MESSAGE_MAX_CHARS = 4_000  # a step's or item's message, an error


class JobStatus(models.TextChoices):
    """Where a job is. Allowed transitions (every other one is a bug):

    queued   -> running      a worker claimed it (one conditional UPDATE, see job_run)
    queued   -> cancelled    cancelled before any worker took it
    running  -> succeeded    run() returned
    running  -> failed       run() raised; the undos ran, newest first
    running  -> cancelled    cancel was requested, run() stopped at a check; undos ran
    running  -> interrupted  its worker died (jobs_recover_interrupted); the kind's
                             `interrupted(job)` hook cleaned up from params and target

    succeeded, failed, cancelled and interrupted are final: nothing changes them again.
    """

    QUEUED = "queued", "Waiting"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    INTERRUPTED = "interrupted", "Interrupted"
    CANCELLED = "cancelled", "Cancelled"


FINAL_JOB_STATUSES = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.INTERRUPTED, JobStatus.CANCELLED}
)
LIVE_JOB_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})


class Job(models.Model):
    """One long operation: a deploy, a removal, a backup, a poll sweep.

    `kind` is a name registered with homelab.core.jobs.register_job_kind, never a Python
    path taken from input. `params` and `result` are JSON without secrets; `output` and
    `error` are masked by the runner before they are written.
    """

    kind = models.CharField(max_length=60)
    target_type = models.CharField(max_length=40, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="jobs",
        help_text="Who started it; empty for the system (schedules, start-up).",
    )
    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.QUEUED)

    percent = models.FloatField(null=True, blank=True)
    bytes_done = models.BigIntegerField(null=True, blank=True)
    bytes_total = models.BigIntegerField(null=True, blank=True)
    eta_seconds = models.IntegerField(null=True, blank=True)

    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, help_text="What happened and what to do, in plain words.")
    output = models.TextField(blank=True, help_text="The last lines of output, secrets masked.")

    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    worker_host = models.CharField(max_length=255, blank=True)
    worker_pid = models.IntegerField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["status", "-created"], name="core_job_status_created"),
            models.Index(fields=["kind", "-created"], name="core_job_kind_created"),
            models.Index(fields=["target_type", "target_id"], name="core_job_target"),
        ]

    def __str__(self) -> str:
        what = f" {self.target_label}" if self.target_label else ""
        return f"#{self.pk} {self.kind}{what}: {self.status}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_JOB_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        from django.utils import timezone

        end = self.finished_at or timezone.now()
        return max(0.0, (end - self.started_at).total_seconds())


class JobStepStatus(models.TextChoices):
    RUNNING = "running", "Running"
    OK = "ok", "Done"
    FAILED = "failed", "Failed"
    UNDONE = "undone", "Undone"
    UNDO_FAILED = "undo_failed", "Undo failed"
    SKIPPED = "skipped", "Skipped"


class JobStep(models.Model):
    """One step of a job, in the order it ran; undos are steps too (`undo: <name>`)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveIntegerField()
    name = models.CharField(max_length=120)
    status = models.CharField(
        max_length=12, choices=JobStepStatus.choices, default=JobStepStatus.RUNNING
    )
    message = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job_id", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "order"], name="core_jobstep_unique_order")
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.status}"


class JobItemStatus(models.TextChoices):
    QUEUED = "queued", "Waiting"
    RUNNING = "running", "Running"
    OK = "ok", "Done"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class JobItem(models.Model):
    """One line of a batch job: a device of a poll sweep, an app of a backup run."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="items")
    label = models.CharField(max_length=200)
    target_type = models.CharField(max_length=40, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=12, choices=JobItemStatus.choices, default=JobItemStatus.QUEUED
    )
    message = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["job_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "label"], name="core_jobitem_unique_label")
        ]

    def __str__(self) -> str:
        return f"{self.label}: {self.status}"

"""The services that change jobs: start, run (in the worker), cancel, recover.

job_enqueue               create the row; the worker runs it after the transaction commits
job_send                  queue the worker's task for a waiting job (job_enqueue does it)
job_run                   claim it atomically (queued -> running) and run its kind's runner
job_cancel                queued: cancelled at once; running: asked, the runner stops and undoes
jobs_recover_interrupted  running jobs whose worker is gone: interrupted, the kind cleans up
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from homelab.core.errors import HomelabError
from homelab.core.jobs import (
    STALE_AFTER_SECONDS,
    Target,
    _clip,
    job_kind,
    job_kind_label,
)
from homelab.core.models import Job, JobStatus, JobStep, JobStepStatus

logger = logging.getLogger(__name__)


class JobError(HomelabError):
    """A job cannot do what was asked; `message` says why and what to do, `status` (the
    error's `code`) is the HTTP answer a door gives (404, 409, 422); `reason` a short word
    for programs ("not_found", "finished", "job_kind")."""

    default_code = 409

    def __init__(self, message: str, *, status: int = 409, reason: str = "job"):
        super().__init__(message, code=status)
        self.status = status
        self.reason = reason


def _this_host() -> str:
    return socket.gethostname()[:255]


def job_enqueue(
    *,
    kind: str,
    target: Target | None = None,
    user=None,
    params: dict | None = None,
    sync: bool = False,
) -> Job:
    """Record a job of a registered `kind` and have the worker run it.

    1. The kind must be registered (never a callable path from input).
    2. The row is created queued; `params` is JSON without secrets (the runner reads its
       secrets from the models it works on).
    3. `sync=False`: homelab.core.tasks.run_job(job_id) is queued on django-q2 once the
       surrounding transaction commits, so the worker always finds the row.
       `sync=True` (commands, tests): it runs here and now, the same code.
    """
    if job_kind(kind) is None:
        raise JobError(
            f"There is no job called {kind!r}. This is a bug in the caller.",
            status=422,
            reason="job_kind",
        )
    job = Job.objects.create(
        kind=kind,
        target_type=target.type if target else "",
        target_id="" if target is None or target.id is None else str(target.id),
        target_label=_clip(target.label, 200) if target else "",
        user=user if user is not None and getattr(user, "is_authenticated", False) else None,
        params=params or {},
    )
    if sync:
        return job_run(job_id=job.pk) or job
    job_send(job=job)
    return job


def job_send(*, job: Job) -> None:
    """Queue homelab.core.tasks.run_job(job.pk) on django-q2 once the surrounding
    transaction commits (again, for a waiting job whose task was lost: the claim in
    job_run makes a second task harmless). The kind's `timeout_seconds` becomes the
    task's timeout."""
    job_id, kind = job.pk, job.kind
    runner_class = job_kind(kind)
    options = {"task_name": f"job-{job_id}-{kind}"[:100]}
    if runner_class is not None and runner_class.timeout_seconds:
        options["timeout"] = runner_class.timeout_seconds

    def _enqueue() -> None:
        from django_q.tasks import async_task

        async_task("homelab.core.tasks.run_job", job_id, **options)

    transaction.on_commit(_enqueue)


def job_run(*, job_id: int) -> Job | None:
    """Claim the job and run it; None when another worker has it (or it was cancelled).

    The claim is one conditional UPDATE (queued -> running) that must change exactly one
    row: two workers handed the same task never both run it.
    """
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING,
        started_at=now,
        heartbeat_at=now,
        worker_host=_this_host(),
        worker_pid=os.getpid(),
    )
    if claimed != 1:
        logger.info("Job %s is not waiting (claimed, cancelled or gone); nothing to do.", job_id)
        return None
    job = Job.objects.get(pk=job_id)
    runner_class = job_kind(job.kind)
    if runner_class is None:
        Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
            status=JobStatus.FAILED,
            finished_at=timezone.now(),
            error=(
                f"This version does not know jobs called {job.kind!r}, so it was not run. "
                "Start it again from its page."
            ),
        )
        job.refresh_from_db()
        return job
    return runner_class(job).execute()


def job_cancel(*, job_id: int, user=None) -> Job:
    """Cancel a job: a waiting one at once; a running one is asked to stop (its runner
    stops at its next check and undoes what it did). A finished job: JobError (409)."""
    who = getattr(user, "username", "") or "someone"
    now = timezone.now()
    if Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED,
        cancel_requested=True,
        finished_at=now,
        error=f"Cancelled by {who} before it started; nothing was done.",
    ):
        job = Job.objects.get(pk=job_id)
        runner_class = job_kind(job.kind)
        if runner_class is not None:
            try:
                runner_class.cancelled_before_start(job)
            except Exception:  # the job is cancelled; its target says what is left
                logger.exception("Job %s: its kind's cancelled_before_start failed", job_id)
        return job
    if Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(cancel_requested=True):
        return Job.objects.get(pk=job_id)
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        raise JobError(f"There is no job {job_id}.", status=404, reason="not_found")
    raise JobError(
        f"This job has already finished ({job.get_status_display().lower()}), so there is "
        "nothing to cancel.",
        status=409,
        reason="finished",
    )


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    # a killed worker stays a zombie until its parent (django-q2's sentinel, every guard
    # cycle) reaps it: it runs nothing any more, so it is gone for us
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def jobs_recover_interrupted(*, stale_after_seconds: float = STALE_AFTER_SECONDS) -> list[Job]:
    """Running jobs whose worker is gone become interrupted, and their kind cleans up.

    Called at start-up and after polls. A worker is gone when
    - it ran on this host and its process no longer exists, or
    - its heartbeat is older than `stale_after_seconds` (any host).
    For each such job:
    1. Mark it interrupted with a conditional UPDATE (running -> interrupted), so a job
       that finishes meanwhile, or a second caller, is left alone.
    2. Mark its running step failed ("the worker stopped here").
    3. Call its kind's `interrupted(job)` hook and record what it did (or why it failed)
       as a step of its own.
    Returns the jobs it marked.
    """
    host = _this_host()
    stale_before = timezone.now() - timedelta(seconds=stale_after_seconds)
    recovered: list[Job] = []
    for job in Job.objects.filter(status=JobStatus.RUNNING).order_by("id"):
        dead = job.worker_host == host and not _pid_alive(job.worker_pid)
        stale = job.heartbeat_at is None or job.heartbeat_at < stale_before
        if not (dead or stale):
            continue
        label = job_kind_label(job.kind).lower()
        now = timezone.now()
        if not Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
            status=JobStatus.INTERRUPTED,
            finished_at=now,
            error=(
                f"The worker running this {label} stopped before it finished (a restart or "
                "a crash). What it had started was cleaned up as far as possible (see the "
                "last step); start it again when you are ready."
            ),
        ):
            continue
        running = JobStep.objects.filter(job_id=job.pk, status=JobStepStatus.RUNNING)
        running.update(
            status=JobStepStatus.FAILED,
            message="The worker stopped during this step.",
            finished_at=now,
        )
        _record_cleanup(job)
        job.refresh_from_db()
        recovered.append(job)
        logger.warning("Job %s (%s) was interrupted: its worker is gone.", job.pk, job.kind)
    return recovered


def _record_cleanup(job: Job) -> None:
    order = (
        JobStep.objects.filter(job_id=job.pk)
        .order_by("-order")
        .values_list("order", flat=True)
        .first()
        or 0
    ) + 1
    step = JobStep.objects.create(
        job_id=job.pk, order=order, name="clean up after the interruption"
    )
    runner_class = job_kind(job.kind)
    if runner_class is None:
        status, message = JobStepStatus.SKIPPED, "This version does not know how to clean up."
    else:
        try:
            message = runner_class.interrupted(job) or ""
            status = JobStepStatus.UNDONE
        except Exception as exc:  # say so; the person can still press Remove or retry
            logger.exception("Cleaning up after job %s failed", job.pk)
            status = JobStepStatus.UNDO_FAILED
            message = f"The clean-up failed ({exc}). Check the target's page."
    step.status = status
    step.message = _clip(message)
    step.finished_at = timezone.now()
    step.save(update_fields=["status", "message", "finished_at"])

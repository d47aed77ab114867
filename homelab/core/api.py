"""The jobs API under /api/v1/jobs: list, one job, cancel. Thin: selectors and services.

Answers carry what the runner wrote, and the runner masks every message, error and output
before writing: no secret reaches an answer. `params` is never answered.
"""

from __future__ import annotations

import re
from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from homelab.core import selectors
from homelab.core.models import Job, JobStatus
from homelab.core.services import job_cancel

router = Router(tags=["jobs"])

TARGET_RE = re.compile(r"[a-z][a-z0-9_.-]{0,39}(:[A-Za-z0-9_.-]{1,64})?")


class TargetOut(Schema):
    type: str
    id: str | None
    label: str
    url: str | None


class ProgressOut(Schema):
    percent: float | None
    bytes_done: int | None
    bytes_total: int | None
    eta_seconds: int | None


class StepOut(Schema):
    name: str
    status: str
    message: str
    started_at: datetime | None
    finished_at: datetime | None


class ItemTargetOut(Schema):
    type: str
    id: str | None


class ItemOut(Schema):
    label: str
    target: ItemTargetOut | None
    status: str
    message: str


class JobOut(Schema):
    id: int
    kind: str
    label: str
    target: TargetOut | None
    status: str
    progress: ProgressOut
    user: str | None
    error: str
    created: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobDetailOut(JobOut):
    cancel_requested: bool
    steps: list[StepOut]
    items: list[ItemOut]
    result: dict
    output: str


class JobFilters(Schema):
    status: JobStatus | None = None
    kind: str | None = Field(None, max_length=60)
    target: str | None = Field(
        None, description="A target type (`deployment`) or type and id (`deployment:12`)."
    )
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=1_000_000)


def _job_or_404(job_id: int) -> Job:
    job = Job.objects.select_related("user").filter(pk=job_id).first()
    if job is None:
        raise HttpError(404, f"job: there is no job {job_id}.")
    return job


@router.get("", response=list[JobOut])
def jobs(request: HttpRequest, filters: Query[JobFilters]):
    """Jobs, newest first."""
    target_type = target_id = None
    if filters.target:
        if not TARGET_RE.fullmatch(filters.target):
            raise HttpError(
                422, "target: give a type like `deployment`, or a type and id like `deployment:12`."
            )
        target_type, _, target_id = filters.target.partition(":")
    rows = selectors.jobs_filtered(
        status=filters.status.value if filters.status else None,
        kind=filters.kind,
        target_type=target_type,
        target_id=target_id or None,
    )
    return [selectors.job_summary(j) for j in rows[filters.offset : filters.offset + filters.limit]]


@router.get("/{job_id}", response=JobDetailOut)
def job(request: HttpRequest, job_id: int):
    return selectors.job_detail(_job_or_404(job_id))


@router.post("/{job_id}/cancel", response={202: JobDetailOut})
def cancel(request: HttpRequest, job_id: int):
    """Cancel a waiting job at once, or ask a running one to stop (202: it stops at its
    next check and undoes what it did). 409 when it has finished already."""
    cancelled = job_cancel(job_id=job_id, user=request.user)
    return 202, selectors.job_detail(cancelled)

"""Reading jobs: the lists and the one-job view behind the Activity page, the API and the
live consumer."""

from __future__ import annotations

from django.db.models import QuerySet

from homelab.core.jobs import job_kind_label, target_url
from homelab.core.models import Job, JobItem, JobStep


def jobs_filtered(
    *,
    status: str | None = None,
    kind: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
) -> QuerySet[Job]:
    """Jobs newest first, narrowed by whatever filter is given."""
    jobs = Job.objects.select_related("user").order_by("-created", "-id")
    if status:
        jobs = jobs.filter(status=status)
    if kind:
        jobs = jobs.filter(kind=kind)
    if target_type:
        jobs = jobs.filter(target_type=target_type)
    if target_id:
        jobs = jobs.filter(target_id=target_id)
    return jobs


def job_target(job: Job) -> dict | None:
    """{"type", "id", "label", "url"} of what the job works on, None without one."""
    if not job.target_type:
        return None
    return {
        "type": job.target_type,
        "id": job.target_id or None,
        "label": job.target_label,
        "url": target_url(job.target_type, job.target_id),
    }


def job_progress(job: Job) -> dict:
    return {
        "percent": job.percent,
        "bytes_done": job.bytes_done,
        "bytes_total": job.bytes_total,
        "eta_seconds": job.eta_seconds,
    }


def job_steps(job: Job) -> list[JobStep]:
    return list(JobStep.objects.filter(job_id=job.pk).order_by("order", "id"))


def job_items(job: Job) -> list[JobItem]:
    return list(JobItem.objects.filter(job_id=job.pk).order_by("id"))


def job_summary(job: Job) -> dict:
    """One job for lists (no steps)."""
    return {
        "id": job.pk,
        "kind": job.kind,
        "label": job_kind_label(job.kind),
        "target": job_target(job),
        "status": job.status,
        "progress": job_progress(job),
        "user": job.user.get_username() if job.user_id and job.user else None,
        "error": job.error,
        "created": job.created,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def job_detail(job: Job) -> dict:
    """One job whole: the API's answer. Messages, error and output are masked already."""
    return {
        **job_summary(job),
        "cancel_requested": job.cancel_requested,
        "steps": [
            {
                "name": step.name,
                "status": step.status,
                "message": step.message,
                "started_at": step.started_at,
                "finished_at": step.finished_at,
            }
            for step in job_steps(job)
        ],
        "items": [
            {
                "label": item.label,
                "target": (
                    {"type": item.target_type, "id": item.target_id or None}
                    if item.target_type
                    else None
                ),
                "status": item.status,
                "message": item.message,
            }
            for item in job_items(job)
        ],
        "result": job.result or {},
        "output": job.output,
    }

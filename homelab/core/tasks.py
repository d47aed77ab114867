"""django-q2 tasks of the core: they take ids and call one service."""

from __future__ import annotations

from homelab.core.services import job_run


def run_job(job_id: int) -> None:
    """Run one job in the worker (queued by job_enqueue after its transaction commits)."""
    job_run(job_id=job_id)

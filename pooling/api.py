"""JSON API of the database pool: shared instances and their databases (never secrets)."""

from __future__ import annotations

from datetime import datetime

from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema

from pooling import selectors
from pooling.jobs import shared_instance_remove_start

router = Router(tags=["pooling"])


class PooledDatabaseOut(Schema):
    id: int
    database: str
    role: str
    deployment_id: int | None
    app: str | None
    size_bytes: int | None
    connections: int | None
    created: datetime


class SharedInstanceOut(Schema):
    id: int
    device_id: int
    device: str
    engine: str
    version: str
    project: str
    status: str
    apps: int
    measured_memory_bytes: int | None
    standalone_memory_bytes: int
    standalone_memory_source: str
    saved_ram_bytes: int
    last_incident: str = Field(
        description="What the health check last had to do (restarted it, or could not)."
    )
    last_incident_at: datetime | None
    created: datetime


class SharedInstanceDetailOut(SharedInstanceOut):
    databases: list[PooledDatabaseOut]


def _out(summary: dict) -> dict:
    instance = summary["instance"]
    return {
        "id": instance.pk,
        "device_id": instance.device_id,
        "device": instance.device.name,
        "engine": instance.engine,
        "version": instance.version,
        "project": instance.project,
        "status": instance.status,
        "apps": summary["apps"],
        "measured_memory_bytes": instance.measured_memory_bytes,
        "standalone_memory_bytes": summary["baseline_bytes"],
        "standalone_memory_source": summary["baseline_source"],
        "saved_ram_bytes": summary["saved_bytes"],
        "last_incident": instance.last_incident,
        "last_incident_at": instance.last_incident_at,
        "created": instance.created,
    }


@router.get("/instances", response=list[SharedInstanceOut])
def instances(request):
    return [_out(summary) for summary in selectors.shared_instance_summaries()]


@router.get("/instances/{instance_id}", response=SharedInstanceDetailOut)
def instance_detail(request, instance_id: int):
    summary = selectors.shared_instance_summary(
        get_object_or_404(selectors.shared_instances_live(), pk=instance_id)
    )
    return {
        **_out(summary),
        "databases": [
            {
                "id": d.pk,
                "database": d.database_name,
                "role": d.role_name,
                "deployment_id": d.app_id,
                "app": d.app_name or None,
                "size_bytes": d.size_bytes,
                "connections": d.connections,
                "created": d.created,
            }
            for d in summary["databases"]
        ],
    }


class RemovedOut(Schema):
    message: str
    job_id: int | None = None
    instance_id: int | None = None


@router.delete("/instances/{instance_id}", response={202: RemovedOut, 409: RemovedOut})
def instance_remove(request, instance_id: int):
    """Remove a shared server no app uses: 202 with the `pool.remove` job (409 while apps
    use it)."""
    instance = get_object_or_404(selectors.shared_instances_live(), pk=instance_id)
    job = shared_instance_remove_start(instance=instance, user=request.user)
    return 202, {
        "message": f"Removing the shared {instance.get_engine_display()} on "
        f"{instance.device.name}; follow it at /api/v1/jobs/{job.pk}.",
        "job_id": job.pk,
        "instance_id": instance.pk,
    }

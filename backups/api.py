"""Backups API (mounted at the API root: the paths are absolute under /api/v1).

POST   /backups/destinations                 add one (S3 or SFTP) -> 201 (never a secret back)
GET    /backups/destinations                 list
GET    /backups/destinations/{id}            one
PATCH  /backups/destinations/{id}            change fields (a secret left out stays)
DELETE /backups/destinations/{id}            refused while it holds snapshots, unless confirm
POST   /backups/destinations/{id}/test       {"ok", "free_bytes", "message"}
POST   /deployments/{id}/backup              a `backup.run` job -> 202 {"job_id"}
GET    /deployments/{id}/snapshots           the app's snapshots
GET    /backups/policies                     the default policy; PUT changes it
GET    /deployments/{id}/backup-policy       the app's policy (its own or the default); PUT
                                             sets its own, DELETE goes back to the default
POST   /snapshots/{id}/restore               a `backup.restore` job -> 202 {"job_id"}
"""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema

from backups import services
from backups.models import Destination, Policy, Snapshot
from marketplace.models import Deployment

router = Router(tags=["backups"])


class DestinationIn(Schema):
    name: str
    kind: str
    endpoint: str | None = None
    bucket: str | None = None
    region: str | None = None
    prefix: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    address: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = None
    path: str | None = None
    upload_limit_kib: int | None = None


class DestinationPatch(Schema):
    name: str | None = None
    endpoint: str | None = None
    bucket: str | None = None
    region: str | None = None
    prefix: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    address: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = None
    path: str | None = None
    upload_limit_kib: int | None = None


class DestinationOut(Schema):
    id: int
    name: str
    kind: str
    endpoint: str
    bucket: str
    region: str
    prefix: str
    address: str
    port: int
    username: str
    path: str
    upload_limit_kib: int | None
    has_credentials: bool
    last_test_at: datetime | None
    last_test_ok: bool | None
    last_test_message: str
    free_bytes: int | None


class TestOut(Schema):
    ok: bool
    free_bytes: int | None
    message: str


class JobOut(Schema):
    """202: the work runs as a job; follow it at GET /api/v1/jobs/{job_id}."""

    job_id: int
    job_kind: str
    job_status: str


class SnapshotOut(Schema):
    id: int
    restic_id: str
    time: datetime
    kind: str
    database: str
    destination_id: int
    device_id: int | None
    size_bytes: int
    added_bytes: int
    incomplete: bool
    verified_at: datetime | None


def _out(d: Destination) -> dict:
    return {
        "id": d.pk,
        "name": d.name,
        "kind": d.kind,
        "endpoint": d.endpoint,
        "bucket": d.bucket,
        "region": d.region,
        "prefix": d.prefix,
        "address": d.address,
        "port": d.port,
        "username": d.username,
        "path": d.path,
        "upload_limit_kib": d.upload_limit_kib,
        "has_credentials": bool(d.secret_values()),
        "last_test_at": d.last_test_at,
        "last_test_ok": d.last_test_ok,
        "last_test_message": d.last_test_message,
        "free_bytes": d.free_bytes,
    }


def _job(job) -> dict:
    return {"job_id": job.pk, "job_kind": job.kind, "job_status": job.status}


@router.post("/backups/destinations", response={201: DestinationOut})
def destination_add(request: HttpRequest, payload: DestinationIn):
    """Add a destination; its secrets are stored encrypted and never answered."""
    destination = services.destination_create(data=payload.dict())
    return 201, _out(destination)


@router.get("/backups/destinations", response=list[DestinationOut])
def destination_list(request: HttpRequest):
    return [_out(d) for d in Destination.objects.all()]


@router.get("/backups/destinations/{destination_id}", response=DestinationOut)
def destination_get(request: HttpRequest, destination_id: int):
    return _out(get_object_or_404(Destination, pk=destination_id))


@router.patch("/backups/destinations/{destination_id}", response=DestinationOut)
def destination_change(request: HttpRequest, destination_id: int, payload: DestinationPatch):
    destination = get_object_or_404(Destination, pk=destination_id)
    data = payload.dict(exclude_unset=True)
    return _out(services.destination_update(destination=destination, data=data))


@router.delete("/backups/destinations/{destination_id}", response={204: None})
def destination_remove(request: HttpRequest, destination_id: int, confirm: str = ""):
    """Refused (409) while it holds snapshots, unless `confirm` is its name."""
    destination = get_object_or_404(Destination, pk=destination_id)
    services.destination_delete(destination=destination, confirm=confirm)
    return 204, None


@router.post("/backups/destinations/{destination_id}/test", response=TestOut)
def destination_test(request: HttpRequest, destination_id: int):
    """restic on a device writes, reads and lists a test repository on the destination."""
    destination = get_object_or_404(Destination, pk=destination_id)
    return services.destination_test(destination=destination)


@router.post("/deployments/{deployment_id}/backup", response={202: JobOut})
def backup_now(request: HttpRequest, deployment_id: int):
    """Back the app up now to every destination: 202 with the `backup.run` job."""
    deployment = get_object_or_404(Deployment, pk=deployment_id)
    return 202, _job(services.deployment_backup(deployment=deployment, user=request.user))


@router.get("/deployments/{deployment_id}/snapshots", response=list[SnapshotOut])
def snapshots(request: HttpRequest, deployment_id: int):
    deployment = get_object_or_404(Deployment, pk=deployment_id)
    return [
        {
            "id": s.pk,
            "restic_id": s.restic_id,
            "time": s.time,
            "kind": s.kind,
            "database": s.database,
            "destination_id": s.destination_id,
            "device_id": s.device_id,
            "size_bytes": s.total_bytes,
            "added_bytes": s.added_bytes,
            "incomplete": s.incomplete,
            "verified_at": s.verified_at,
        }
        for s in Snapshot.objects.filter(deployment=deployment)
    ]


@router.post("/snapshots/{snapshot_id}/restore", response={202: JobOut})
def restore(request: HttpRequest, snapshot_id: int):
    """Restore the app in place from this snapshot: 202 with the `backup.restore` job."""
    snapshot = get_object_or_404(Snapshot.objects.select_related("deployment"), pk=snapshot_id)
    return 202, _job(services.snapshot_restore(snapshot=snapshot, user=request.user))


class PolicyIn(Schema):
    schedule: str | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    enabled: bool | None = None


class PolicyOut(Schema):
    schedule: str
    keep_daily: int
    keep_weekly: int
    keep_monthly: int
    enabled: bool
    own: bool = False  # the app's own policy (False: the default applies)


def _policy(policy: Policy) -> dict:
    return {
        "schedule": policy.schedule,
        "keep_daily": policy.keep_daily,
        "keep_weekly": policy.keep_weekly,
        "keep_monthly": policy.keep_monthly,
        "enabled": policy.enabled,
        "own": policy.deployment_id is not None,
    }


@router.get("/backups/policies", response=PolicyOut)
def policy_default(request: HttpRequest):
    """The default policy every app follows unless it has its own."""
    return _policy(services.policy_default())


@router.put("/backups/policies", response=PolicyOut)
def policy_default_set(request: HttpRequest, payload: PolicyIn):
    return _policy(services.policy_set(data=payload.dict(exclude_unset=True)))


@router.get("/deployments/{deployment_id}/backup-policy", response=PolicyOut)
def policy_of_app(request: HttpRequest, deployment_id: int):
    return _policy(services.policy_for(get_object_or_404(Deployment, pk=deployment_id)))


@router.put("/deployments/{deployment_id}/backup-policy", response=PolicyOut)
def policy_of_app_set(request: HttpRequest, deployment_id: int, payload: PolicyIn):
    """Give the app its own schedule, retention or on/off (the rest from the default)."""
    deployment = get_object_or_404(Deployment, pk=deployment_id)
    data = payload.dict(exclude_unset=True)
    return _policy(services.policy_set(data=data, deployment=deployment))


@router.delete("/deployments/{deployment_id}/backup-policy", response=PolicyOut)
def policy_of_app_clear(request: HttpRequest, deployment_id: int):
    """The app follows the default policy again."""
    deployment = get_object_or_404(Deployment, pk=deployment_id)
    return _policy(services.policy_clear(deployment=deployment))

"""Catalog and deployment API (mounted at the API root: the paths are absolute under /api/v1).

GET    /applications                    the catalog (and the invalid recipes with their errors)
GET    /applications/{slug}             one app
POST   /applications/{slug}/deploy      start a deployment (an `app.deploy` job) -> 202
GET    /deployments                     filter by device, status, category
GET    /deployments/{id}                status, steps, url, error
POST   /deployments/{id}/start|stop|restart    start a job -> 202 {"job_id", "deployment_id", ...}
DELETE /deployments/{id}?delete_data=true   start an `app.remove` job -> 202 (removed: 200)
PATCH  /deployments/{id}                {"config": {...}} new settings: an `app.reconfigure`
                                        job -> 202 (422 bad value, 409 busy)
GET    /deployments/{id}/logs
GET    /deployments/{id}/debug          "What I did": compose (masked), commands, rollback log
GET    /deployments/{id}/events         its changes of state (issue 20's watch)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from marketplace import selectors, services
from marketplace.models import Deployment, DeploymentStatus
from marketplace.recipes import Recipe, load_catalog
from marketplace.selectors import deployment_usage
from marketplace.watch_selectors import deployment_events, watch_fields
from pooling.selectors import pooled_databases_for_deployment

router = Router(tags=["marketplace"])


class PortOut(Schema):
    name: str
    container_port: int
    default_host_port: int
    protocol: str
    meaning: str
    web: bool


class RequirementsOut(Schema):
    ram_min_mb: int
    ram_recommended_mb: int
    storage_min_mb: int
    storage_recommended_mb: int
    cpu_cores_min: float
    cpu_cores_recommended: float


class AppOut(Schema):
    slug: str
    name: str
    category: str
    description: str
    icon: str
    version: str
    architectures: list[str]
    requirements: RequirementsOut
    ports: list[PortOut]
    always_on: bool
    source: str


class AppDetailOut(AppOut):
    post_install_notes: str
    health_check: dict
    volumes: list[dict]
    secrets: list[str] = Field(description="Names of the secrets the platform generates.")


class ProblemOut(Schema):
    folder: str
    file: str
    field: str
    problem: str


class CatalogOut(Schema):
    applications: list[AppOut]
    invalid: list[ProblemOut]


class DeployIn(Schema):
    device_id: int | None = Field(None, ge=1, le=2**63 - 1)
    instance: str = "default"
    config: dict[str, Any] | None = None


class ReconfigureIn(Schema):
    config: dict[str, Any] = Field(
        description="The app's settings, in the deploy call's shape (ports, env); they "
        "replace the present ones as a whole."
    )


class DeployOut(Schema):
    job_id: int | None = Field(description="The `app.deploy` job: GET /api/v1/jobs/{job_id}.")
    deployment_id: int
    device_id: int
    status: str


class JobStartedOut(Schema):
    """202: the work runs as a job; follow it at GET /api/v1/jobs/{job_id}."""

    job_id: int | None = Field(description="None: there was nothing to do.")
    job_kind: str
    job_status: str
    deployment_id: int


class StepOut(Schema):
    time: datetime
    name: str
    status: str
    message: str


class CommandOut(Schema):
    time: datetime
    command: str
    exit_code: int | None
    output: str
    seconds: float | None


class HealthOut(Schema):
    state: str = Field(description="answering, not_answering or unknown (not checked yet)")
    checked_at: datetime | None
    answer_ms: float | None
    message: str


class EventOut(Schema):
    time: datetime
    from_status: str
    to_status: str
    message: str


class DeploymentOut(Schema):
    id: int
    slug: str
    app_name: str
    category: str
    device_id: int
    device_name: str
    instance: str
    project: str
    status: str
    status_reason: str = ""
    health: HealthOut | None = None
    uptime: dict[str, float | None] = Field(
        default_factory=dict,
        description='{"24h", "7d", "30d"}: the share of health checks answered (null: none).',
    )
    url: str
    error: str
    config: dict
    created: datetime
    updated: datetime


class PooledDatabaseOut(Schema):
    engine: str
    database: str
    role: str
    host: str
    instance_id: int


class DeploymentDetailOut(DeploymentOut):
    steps: list[StepOut]
    post_install_notes: str
    pooled_databases: list[PooledDatabaseOut] = Field(
        default_factory=list, description="The shared databases this app uses (no passwords)."
    )


class DebugOut(Schema):
    compose: str = Field(description="The rendered compose file, secrets masked.")
    compose_path: str
    commands: list[CommandOut]
    rollback_log: list[StepOut]


class LogsOut(Schema):
    logs: str


def _app(recipe: Recipe) -> dict:
    m = recipe.manifest
    return {
        "slug": recipe.slug,
        "name": m.name,
        "category": m.category,
        "description": m.description,
        "icon": m.icon,
        "version": m.version,
        "architectures": list(m.architectures),
        "requirements": m.requirements.model_dump(),
        "ports": [p.model_dump() for p in m.ports],
        "always_on": m.always_on,
        "source": recipe.source,
    }


def _deployment_or_404(deployment_id: int) -> Deployment:
    deployment = selectors.deployment_get(deployment_id=deployment_id)
    if deployment is None:
        raise HttpError(404, f"deployment: there is no deployment {deployment_id}.")
    return deployment


def _out(deployment: Deployment) -> dict:
    return {
        "id": deployment.pk,
        "slug": deployment.slug,
        "app_name": deployment.app_name,
        "category": deployment.category,
        "device_id": deployment.device_id,
        "device_name": deployment.device.name,
        "instance": deployment.instance,
        "project": deployment.project,
        "status": deployment.status,
        **watch_fields(deployment),
        "url": deployment.url,
        "error": deployment.error,
        "config": deployment.config,
        "created": deployment.created,
        "updated": deployment.updated,
    }


@router.get("/applications", response=CatalogOut)
def applications(request: HttpRequest, category: str | None = None, q: str | None = None):
    catalog = load_catalog()
    apps = selectors.catalog_search(query=q or "", category=category or "", catalog=catalog)
    return {
        "applications": [_app(a) for a in apps],
        "invalid": [
            {"folder": p.folder, "file": p.file, "field": p.field, "problem": p.problem}
            for p in catalog.invalid
        ],
    }


@router.get("/applications/{slug}", response=AppDetailOut)
def application(request: HttpRequest, slug: str):
    recipe = services.recipe_for(slug)
    m = recipe.manifest
    return {
        **_app(recipe),
        "post_install_notes": m.post_install_notes,
        "health_check": m.health_check.model_dump(),
        "volumes": [v.model_dump() for v in m.volumes],
        "secrets": [s.name for s in m.secrets],
    }


@router.post("/applications/{slug}/deploy", response={202: DeployOut})
def deploy(request: HttpRequest, slug: str, payload: DeployIn):
    deployment = services.deployment_create(
        slug=slug,
        device_id=payload.device_id,
        instance=payload.instance,
        config=payload.config,
        user=request.user,
    )
    job = services.deployment_jobs(deployment.pk).filter(kind="app.deploy").first()
    return 202, {
        "job_id": job.pk if job else None,
        "deployment_id": deployment.pk,
        "device_id": deployment.device_id,
        "status": deployment.status,
    }


class DeploymentFilters(Schema):
    device: int | None = Field(None, ge=1, le=2**63 - 1)
    status: DeploymentStatus | None = None
    category: str | None = None


@router.get("/deployments", response=list[DeploymentOut])
def deployments(request: HttpRequest, filters: Query[DeploymentFilters]):
    rows = selectors.deployments_list(
        device_id=filters.device,
        status=filters.status.value if filters.status else None,
        category=filters.category,
    )
    return [_out(d) for d in rows[:1000]]


@router.get("/deployments/{deployment_id}", response=DeploymentDetailOut)
def deployment_detail(request: HttpRequest, deployment_id: int):
    deployment = _deployment_or_404(deployment_id)
    try:
        notes = services.recipe_for(deployment.slug).manifest.post_install_notes
    except services.DeploymentError:
        notes = ""
    return {
        **_out(deployment),
        "steps": list(deployment.steps.values("time", "name", "status", "message")),
        "post_install_notes": notes,
        "pooled_databases": _pooled(deployment),
    }


def _pooled(deployment: Deployment) -> list[dict]:
    return pooled_databases_for_deployment(deployment)


def _day2(request: HttpRequest, deployment_id: int, action) -> tuple[int, dict]:
    """Start the job (202 with its id and the deployment as it is now); a removed
    deployment needs no job (200)."""
    deployment = _deployment_or_404(deployment_id)
    job = action(deployment=deployment, user=request.user)
    deployment.refresh_from_db()
    answer = {
        **_out(deployment),
        "job_id": job.pk if job else None,
        "job_kind": job.kind if job else "",
        "job_status": job.status if job else "",
        "deployment_id": deployment.pk,
    }
    return (202 if job else 200), answer


class Day2Out(DeploymentOut, JobStartedOut):
    pass


@router.post("/deployments/{deployment_id}/start", response={202: Day2Out})
def start(request: HttpRequest, deployment_id: int):
    """Start a stopped app: 202 with the `app.start` job."""
    return _day2(request, deployment_id, services.deployment_start)


@router.post("/deployments/{deployment_id}/stop", response={202: Day2Out})
def stop(request: HttpRequest, deployment_id: int):
    """Stop a running app: 202 with the `app.stop` job."""
    return _day2(request, deployment_id, services.deployment_stop)


@router.post("/deployments/{deployment_id}/restart", response={202: Day2Out})
def restart(request: HttpRequest, deployment_id: int):
    """Restart an app: 202 with the `app.restart` job."""
    return _day2(request, deployment_id, services.deployment_restart)


@router.delete("/deployments/{deployment_id}", response={200: Day2Out, 202: Day2Out})
def remove(
    request: HttpRequest,
    deployment_id: int,
    delete_data: bool = False,
    keep_shared_servers: bool = False,
):
    """Remove an app: 202 with the `app.remove` job (its database dumps run there); 200
    without a job when it was removed already."""
    return _day2(
        request,
        deployment_id,
        lambda deployment, user: services.deployment_remove(
            deployment=deployment,
            delete_data=delete_data,
            keep_shared_servers=keep_shared_servers,
            user=user,
        ),
    )


@router.patch("/deployments/{deployment_id}", response={202: Day2Out})
def reconfigure(request: HttpRequest, deployment_id: int, payload: ReconfigureIn):
    """Change an app's settings: 202 with the `app.reconfigure` job, which recreates the app
    with them and puts the previous ones back when they do not work."""
    return _day2(
        request,
        deployment_id,
        lambda deployment, user: services.deployment_reconfigure(
            deployment=deployment, config=payload.config, user=user
        ),
    )


@router.get("/deployments/{deployment_id}/logs", response=LogsOut)
def logs(request: HttpRequest, deployment_id: int, tail: int = Query(200, ge=1, le=10_000)):
    deployment = _deployment_or_404(deployment_id)
    return {"logs": services.deployment_logs(deployment=deployment, tail=tail)}


@router.get("/deployments/{deployment_id}/debug", response=DebugOut)
def debug(request: HttpRequest, deployment_id: int):
    deployment = _deployment_or_404(deployment_id)
    return {
        "compose": deployment.compose_masked,
        "compose_path": deployment.compose_path,
        "commands": list(
            deployment.commands.values("time", "command", "exit_code", "output", "seconds")
        ),
        "rollback_log": list(
            deployment.steps.filter(name__startswith="undo: ").values(
                "time", "name", "status", "message"
            )
        ),
    }


class ContainerUsageOut(Schema):
    name: str
    state: str
    memory_bytes: int
    cpu_percent: float


class UsageOut(Schema):
    memory_bytes: int
    cpu_percent: float
    containers: list[ContainerUsageOut]


@router.get("/deployments/{deployment_id}/usage", response=UsageOut)
def usage(request: HttpRequest, deployment_id: int):
    """Memory and CPU the app uses now (one sample from the device; takes about a second)."""
    deployment = _deployment_or_404(deployment_id)
    return deployment_usage(deployment=deployment)


@router.get("/deployments/{deployment_id}/events", response=list[EventOut])
def events(request: HttpRequest, deployment_id: int, limit: int = Query(200, ge=1, le=1000)):
    """The deployment's changes of state, newest first (what the watch found, restarts)."""
    return deployment_events(deployment=_deployment_or_404(deployment_id), limit=limit)

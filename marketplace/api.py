"""Catalog and deployment API (mounted at the API root: the paths are absolute under /api/v1).

GET    /applications                    the catalog (and the invalid recipes with their errors)
GET    /applications/{slug}             one app
POST   /applications/{slug}/deploy      start a deployment -> 202
GET    /deployments                     filter by device, status, category
GET    /deployments/{id}                status, steps, url, error
POST   /deployments/{id}/start|stop|restart
DELETE /deployments/{id}?delete_data=true
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

from devices.ssh import SSHError
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
    device_id: int | None = None
    instance: str = "default"
    config: dict[str, Any] | None = None


class DeployOut(Schema):
    deployment_id: int
    device_id: int
    status: str


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


def _error(exc: services.DeploymentError):
    raise HttpError(exc.status, exc.message)


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
    apps = list(catalog.recipes.values())
    if category:
        apps = [a for a in apps if a.category == category]
    if q:
        needle = q.lower()
        apps = [
            a for a in apps if needle in a.name.lower() or needle in a.manifest.description.lower()
        ]
    return {
        "applications": [_app(a) for a in apps],
        "invalid": [
            {"folder": p.folder, "file": p.file, "field": p.field, "problem": p.problem}
            for p in catalog.invalid
        ],
    }


@router.get("/applications/{slug}", response=AppDetailOut)
def application(request: HttpRequest, slug: str):
    try:
        recipe = services.recipe_for(slug)
    except services.DeploymentError as exc:
        _error(exc)
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
    try:
        deployment = services.deployment_create(
            slug=slug,
            device_id=payload.device_id,
            instance=payload.instance,
            config=payload.config,
            user=request.user,
        )
    except services.DeploymentError as exc:
        _error(exc)
    return 202, {
        "deployment_id": deployment.pk,
        "device_id": deployment.device_id,
        "status": deployment.status,
    }


class DeploymentFilters(Schema):
    device: int | None = None
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


def _day2(deployment_id: int, action) -> dict:
    deployment = _deployment_or_404(deployment_id)
    try:
        deployment = action(deployment=deployment)
    except services.DeploymentError as exc:
        _error(exc)
    return _out(deployment)


@router.post("/deployments/{deployment_id}/start", response=DeploymentOut)
def start(request: HttpRequest, deployment_id: int):
    return _day2(deployment_id, services.deployment_start)


@router.post("/deployments/{deployment_id}/stop", response=DeploymentOut)
def stop(request: HttpRequest, deployment_id: int):
    return _day2(deployment_id, services.deployment_stop)


@router.post("/deployments/{deployment_id}/restart", response=DeploymentOut)
def restart(request: HttpRequest, deployment_id: int):
    return _day2(deployment_id, services.deployment_restart)


@router.delete("/deployments/{deployment_id}", response=DeploymentOut)
def remove(
    request: HttpRequest,
    deployment_id: int,
    delete_data: bool = False,
    keep_shared_servers: bool = False,
):
    return _day2(
        deployment_id,
        lambda deployment: services.deployment_remove(
            deployment=deployment,
            delete_data=delete_data,
            keep_shared_servers=keep_shared_servers,
        ),
    )


@router.get("/deployments/{deployment_id}/logs", response=LogsOut)
def logs(request: HttpRequest, deployment_id: int, tail: int = 200):
    deployment = _deployment_or_404(deployment_id)
    try:
        return {"logs": services.deployment_logs(deployment=deployment, tail=tail)}
    except services.DeploymentError as exc:
        _error(exc)


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
    try:
        return deployment_usage(deployment=deployment)
    except SSHError as exc:
        raise HttpError(502, f"The device did not answer: {exc}") from None


@router.get("/deployments/{deployment_id}/events", response=list[EventOut])
def events(request: HttpRequest, deployment_id: int, limit: int = 200):
    """The deployment's changes of state, newest first (what the watch found, restarts)."""
    return deployment_events(deployment=_deployment_or_404(deployment_id), limit=limit)

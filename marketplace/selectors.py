"""Reads about deployments."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from django.urls import reverse
from docker.errors import DockerException
from requests.exceptions import RequestException

from devices import ssh
from devices.hooks import DeviceApp
from marketplace.errors import DeploymentError
from marketplace.models import (
    FINISHED_STATUSES,
    TROUBLE_STATUSES,
    Deployment,
    DeploymentStatus,
)
from marketplace.preflight import host_ports
from marketplace.recipes import Recipe, load_catalog
from pooling.hooks import LiveApp


def apps_counts() -> tuple[int, int]:
    """(apps total, apps running) for the dashboard: every deployment not removed or
    rolled back, and those running."""
    row = Deployment.objects.counted().aggregate(
        total=Count("id"), running=Count("id", filter=Q(status=DeploymentStatus.RUNNING))
    )
    return int(row["total"] or 0), int(row["running"] or 0)


def catalog_search(*, query: str = "", category: str = "", catalog=None) -> list[Recipe]:
    """The catalog's valid apps that match, in catalog order (the page and the API).

    `query` matches, case-insensitively and ignoring surrounding spaces, a part of the
    app's name, description or category; `category` keeps that category only.
    """
    catalog = catalog or load_catalog()
    needle = (query or "").strip().lower()
    return [
        recipe
        for recipe in catalog.recipes.values()
        if (not category or recipe.category == category)
        and (
            not needle
            or needle in recipe.name.lower()
            or needle in recipe.manifest.description.lower()
            or needle in recipe.category.lower()
        )
    ]


def deployments_list(
    *,
    device_id: int | None = None,
    status: str | None = None,
    category: str | None = None,
    include_removed: bool = False,
) -> QuerySet[Deployment]:
    queryset = Deployment.objects.select_related("device")
    if device_id is not None:
        queryset = queryset.filter(device_id=device_id)
    if status:
        queryset = queryset.filter(status=status)
    elif not include_removed:
        queryset = queryset.exclude(status=DeploymentStatus.REMOVED)
    if category:
        queryset = queryset.filter(category=category)
    return queryset.order_by("-created")


def deployment_get(*, deployment_id: int) -> Deployment | None:
    return Deployment.objects.select_related("device").filter(pk=deployment_id).first()


def kept_deployment(*, device, project: str) -> Deployment | None:
    """The latest deployment of this project on the device that was removed with its data
    kept ("Keep my data"): a new one takes over its secrets (services._kept_secrets)."""
    return (
        Deployment.objects.filter(
            device=device, project=project, status=DeploymentStatus.REMOVED, data_kept=True
        )
        .order_by("-pk")
        .first()
    )


def kept_data_sentence(*, device, project: str) -> str:
    """For the wizard: "Picks up the data kept when Monica was removed from server-02 on
    30 Nov 2026", or "" when the device holds no kept data of that project."""
    from django.utils import formats, timezone

    kept = kept_deployment(device=device, project=project)
    if kept is None:
        return ""
    when = formats.date_format(timezone.localtime(kept.updated), "j M Y")
    return f"Picks up the data kept when {kept.app_name} was removed from {device.name} on {when}"


def host_ports_in_use(*, device_ids: list[int] | None = None) -> dict[int, set[int]]:
    """Host ports each device's live deployments publish, for placement's port check."""
    catalog = load_catalog()
    queryset = Deployment.objects.live()
    if device_ids is not None:
        queryset = queryset.filter(device_id__in=device_ids)
    ports: dict[int, set[int]] = {}
    for device_id, slug, config in queryset.values_list("device_id", "slug", "config"):
        recipe = catalog.recipes.get(slug)
        if recipe is not None:
            ports.setdefault(device_id, set()).update(
                port for _, port, _ in host_ports(recipe, config)
            )
    return ports


def deployment_usage(*, deployment: Deployment) -> dict:
    """Memory and CPU the deployment's containers use now, read from the device's Docker.

    1. List the containers of the compose project (label com.docker.compose.project).
    2. One stats sample each: memory = usage minus inactive file cache (as `docker stats`
       shows it); CPU % = container CPU time delta / system CPU time delta x online CPUs.
    Returns {"memory_bytes", "cpu_percent", "containers": [{"name", "memory_bytes",
    "cpu_percent", "state"}]}; raises a 502 DeploymentError when the device or its Docker
    does not answer.
    """
    try:
        return _usage(deployment)
    except (ssh.SSHError, DockerException, RequestException) as exc:
        raise DeploymentError.unreachable(deployment.device.name, exc, field="deployment") from None


def _usage(deployment: Deployment) -> dict:
    client = ssh.docker_client(deployment.device)
    containers = client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={deployment.project}"}
    )
    rows = []
    for container in sorted(containers, key=lambda c: c.name):
        memory, cpu = 0, 0.0
        if container.status == "running":
            stats = container.stats(stream=False)
            memory, cpu = _memory_bytes(stats), _cpu_percent(stats)
        rows.append(
            {
                "name": container.name,
                "memory_bytes": memory,
                "cpu_percent": cpu,
                "state": container.status,
            }
        )
    return {
        "memory_bytes": sum(row["memory_bytes"] for row in rows),
        "cpu_percent": round(sum(row["cpu_percent"] for row in rows), 1),
        "containers": rows,
    }


def _memory_bytes(stats: dict) -> int:
    memory = stats.get("memory_stats") or {}
    usage = int(memory.get("usage") or 0)
    detail = memory.get("stats") or {}
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0)) or 0
    return max(usage - int(cache), 0)


def _cpu_percent(stats: dict) -> float:
    now, before = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    container_delta = (now.get("cpu_usage", {}).get("total_usage", 0) or 0) - (
        before.get("cpu_usage", {}).get("total_usage", 0) or 0
    )
    system_delta = (now.get("system_cpu_usage") or 0) - (before.get("system_cpu_usage") or 0)
    cpus = now.get("online_cpus") or len(now.get("cpu_usage", {}).get("percpu_usage") or []) or 1
    if container_delta <= 0 or system_delta <= 0:
        return 0.0
    return round(100.0 * container_delta / system_delta * cpus, 1)


def live_apps_for_pooling() -> list[LiveApp]:
    """The running and stopped apps with the databases their recipes need, for the pool's
    recommendations and notes (registered as pooling.hooks' live apps provider)."""
    catalog = load_catalog()
    out = []
    deployments = Deployment.objects.installed().select_related("device")
    for deployment in deployments:
        recipe = catalog.recipes.get(deployment.slug)
        if recipe is None:
            continue
        out.append(
            LiveApp(
                app=deployment,
                device=deployment.device,
                project=deployment.project,
                name=recipe.name,
                bundled_databases=bool((deployment.config or {}).get("bundled_databases")),
                database_needs=tuple(recipe.manifest.requires_database),
            )
        )
    return out


def dashboard_figures() -> dict:
    """devices.hooks.dashboard_figures: the apps on the resources summary."""
    total, running = apps_counts()
    trouble = Deployment.objects.filter(status__in=TROUBLE_STATUSES).values_list(
        "app_name", "status"
    )
    return {
        "apps_total": total,
        "apps_running": running,
        "apps_in_trouble": [
            f"{name}: {DeploymentStatus(status).label.lower()}" for name, status in trouble
        ],
    }


def live_app_names(device) -> list[str]:
    """devices.hooks.device_removal_blockers: the apps that still live on the device."""
    queryset = Deployment.objects.filter(device=device).live()
    return [
        f"{name} ({instance})" for name, instance in queryset.values_list("app_name", "instance")
    ]


def catalog_apps_for_placement() -> list:
    """scheduling.hooks.catalog_apps: the valid recipes, the apps placement can place."""
    return list(load_catalog().recipes.values())


def apps_on_devices(device_ids: list[int]) -> dict:
    """devices.hooks.device_apps: the apps that live on these devices, named as people see
    them (a second copy with its own name after it), each linked to its page."""
    found: dict = {}
    queryset = (
        Deployment.objects.filter(device_id__in=device_ids)
        .exclude(status__in=FINISHED_STATUSES)
        .order_by("app_name", "instance")
    )
    for deployment in queryset:
        name = deployment.app_name
        if deployment.instance != "default":
            name += f" ({deployment.instance})"
        found.setdefault(deployment.device_id, []).append(
            DeviceApp(
                name=name,
                url=reverse("deployment_detail", args=[deployment.pk]),
                status_words=deployment.get_status_display().lower(),
                running=deployment.status == DeploymentStatus.RUNNING,
            )
        )
    return found

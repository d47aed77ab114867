"""Reads about deployments."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from marketplace.models import Deployment, DeploymentStatus

NOT_COUNTED = (DeploymentStatus.REMOVED, DeploymentStatus.ROLLED_BACK)


def apps_counts() -> tuple[int, int]:
    """(apps total, apps running) for the dashboard: every deployment not removed or
    rolled back, and those running."""
    row = Deployment.objects.exclude(status__in=NOT_COUNTED).aggregate(
        total=Count("id"), running=Count("id", filter=Q(status=DeploymentStatus.RUNNING))
    )
    return int(row["total"] or 0), int(row["running"] or 0)


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


def host_ports_in_use(*, device_ids: list[int] | None = None) -> dict[int, set[int]]:
    """Host ports each device's live deployments publish, for placement's port check."""
    from marketplace.models import FINISHED_STATUSES
    from marketplace.pipeline import host_ports
    from marketplace.recipes import load_catalog

    catalog = load_catalog()
    queryset = Deployment.objects.exclude(status__in=FINISHED_STATUSES)
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

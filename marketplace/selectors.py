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

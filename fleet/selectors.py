"""Reads for the homelab as a whole: the topology map's graph.

The graph is built from the database only (no device is asked anything), so the map
loads fast and shows what the last polls and health checks saw.
"""

from __future__ import annotations

from django.urls import reverse

from devices.models import Device, DeviceStatus
from fleet.models import AppToDeploy, DeviceToAdd
from marketplace.models import (
    TRANSIENT_STATUSES,
    TROUBLE_STATUSES,
    Deployment,
    DeploymentStatus,
)
from pooling.models import PooledDatabase, SharedInstance

# What a status means at a glance; the map colours nodes by it and its legend names it.
HEALTH_WORDS = {
    "ok": "Working",
    "busy": "Being set up or checked",
    "trouble": "Needs attention",
    "down": "Off or failed",
    "stopped": "Stopped on purpose",
}


def _device_health(status: str) -> str:
    if status == DeviceStatus.ONLINE:
        return "ok"
    if status == DeviceStatus.PENDING:
        return "busy"
    if status == DeviceStatus.OFFLINE:
        return "down"
    return "trouble"  # login refused, identity changed, Docker missing: a person can fix it


def _app_health(status: str) -> str:
    if status == DeploymentStatus.RUNNING:
        return "ok"
    if status in TRANSIENT_STATUSES:
        return "busy"
    if status in TROUBLE_STATUSES:
        return "trouble"
    if status == DeploymentStatus.STOPPED:
        return "stopped"
    return "down"


def _shared_health(status: str) -> str:
    return {
        SharedInstance.Status.RUNNING: "ok",
        SharedInstance.Status.STARTING: "busy",
        SharedInstance.Status.STOPPED: "trouble",
    }.get(status, "down")


def _node(
    node_id: str, kind: str, label: str, status: str, words: str, health: str, url: str
) -> dict:
    return {
        "id": node_id,
        "kind": kind,
        "label": label,
        "status": status,
        "status_words": words,
        "health": health,
        "url": url,
    }


def topology() -> dict:
    """{"nodes": [...], "edges": [...]} of devices, live apps and shared database servers.

    1. Every device is a node ("device:<id>").
    2. Every live deployment is a node ("app:<id>") with an edge app -> device "runs_on".
    3. Every shared database server not removed is a node ("shared_db:<id>") with an edge
       shared_db -> device "runs_on".
    4. Every pooled database gives an edge app -> shared_db "uses", found by the app's id
       or, for rows made before ids were kept, by its compose project on that device.
    Backup destinations are not drawn yet: the backups app has no models for them.
    """
    nodes: list[dict] = []
    edges: list[dict] = []
    devices = list(Device.objects.only("id", "name", "status").order_by("name"))
    for device in devices:
        nodes.append(
            _node(
                f"device:{device.pk}",
                "device",
                device.name,
                device.status,
                device.get_status_display(),
                _device_health(device.status),
                reverse("device_detail", args=[device.pk]),
            )
        )
    deployments = list(
        Deployment.objects.live()
        .only("id", "app_name", "instance", "status", "device_id", "project")
        .order_by("device_id", "app_name", "instance")
    )
    by_project = {(d.device_id, d.project): d.pk for d in deployments}
    app_ids = {d.pk for d in deployments}
    for deployment in deployments:
        label = deployment.app_name
        if deployment.instance != "default":
            label = f"{label} ({deployment.instance})"
        node_id = f"app:{deployment.pk}"
        nodes.append(
            _node(
                node_id,
                "app",
                label,
                deployment.status,
                deployment.get_status_display(),
                _app_health(deployment.status),
                reverse("deployment_detail", args=[deployment.pk]),
            )
        )
        edges.append(
            {"source": node_id, "target": f"device:{deployment.device_id}", "kind": "runs_on"}
        )
    shared = list(
        SharedInstance.objects.exclude(status=SharedInstance.Status.REMOVED).select_related(
            "device"
        )
    )
    pooling_url = reverse("pooling_index")
    for instance in shared:
        node_id = f"shared_db:{instance.pk}"
        nodes.append(
            _node(
                node_id,
                "shared_db",
                f"{instance.get_engine_display()} {instance.version_label}",
                instance.status,
                instance.get_status_display(),
                _shared_health(instance.status),
                pooling_url,
            )
        )
        edges.append(
            {"source": node_id, "target": f"device:{instance.device_id}", "kind": "runs_on"}
        )
    instances = {i.pk: i for i in shared}
    seen: set[tuple[int, int]] = set()
    for row in PooledDatabase.objects.filter(instance_id__in=instances).only(
        "instance_id", "app_id", "project"
    ):
        app_id = row.app_id if row.app_id in app_ids else None
        if app_id is None:
            app_id = by_project.get((instances[row.instance_id].device_id, row.project))
        if app_id is None or (app_id, row.instance_id) in seen:
            continue
        seen.add((app_id, row.instance_id))
        edges.append(
            {"source": f"app:{app_id}", "target": f"shared_db:{row.instance_id}", "kind": "uses"}
        )
    return {"nodes": nodes, "edges": edges}


def waiting_lists() -> tuple[list[DeviceToAdd], list[AppToDeploy]]:
    """The imported devices not added yet and apps not deployed yet. Each app carries
    `device_id`: its device's id once that device is added (None until then)."""
    existing = dict(Device.objects.values_list("name", "id"))
    devices = [d for d in DeviceToAdd.objects.all() if d.name not in existing]
    live = set(Deployment.objects.live().values_list("slug", "instance", "device__name"))
    apps = [a for a in AppToDeploy.objects.all() if (a.slug, a.instance, a.device_name) not in live]
    for app in apps:
        app.device_id = existing.get(app.device_name)
    return devices, apps

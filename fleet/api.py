"""The homelab as a whole, under /api/v1.

GET  /topology   {"nodes": [{"id", "kind", "label", "status", "status_words", "health", "url"}],
                  "edges": [{"source", "target", "kind"}]}
GET  /export     the homelab's definitions as one YAML file (no keys, no secrets)
POST /import     such a file (the request body, or a form field "file"): records the
                 devices to add and the apps to deploy; 422 naming the field, nothing saved
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema

from fleet import selectors, services

router = Router(tags=["fleet"])


class NodeOut(Schema):
    id: str
    kind: str
    label: str
    status: str
    status_words: str
    health: str
    url: str


class EdgeOut(Schema):
    source: str
    target: str
    kind: str


class TopologyOut(Schema):
    nodes: list[NodeOut]
    edges: list[EdgeOut]


class ImportOut(Schema):
    devices_to_add: list[str]
    devices_already_here: list[str]
    apps_to_deploy: list[str]
    apps_already_here: list[str]
    shared_databases: list[str]
    to_do: list[str]


@router.get("/topology", response=TopologyOut, url_name="topology")
def topology(request: HttpRequest):
    """Devices, live apps and shared database servers, and how they connect."""
    return selectors.topology()


@router.get("/export")
def export(request: HttpRequest):
    """The whole homelab as one YAML file: devices without keys, apps without secrets."""
    response = HttpResponse(services.homelab_export_yaml(), content_type="application/yaml")
    response["Content-Disposition"] = 'attachment; filename="homelab.yaml"'
    response["Cache-Control"] = "no-store"
    return response


@router.post("/import", response=ImportOut)
def import_(request: HttpRequest):
    """Import an export file (the body, or a multipart field "file")."""
    upload = request.FILES.get("file")
    text = upload.read(services.MAX_FILE_BYTES + 1) if upload else request.body
    return services.homelab_import(text=text).as_json()

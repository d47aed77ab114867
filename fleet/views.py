"""The topology map and Settings -> Export/Import."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from fleet import selectors, services
from fleet.forms import ImportForm
from fleet.selectors import HEALTH_WORDS
from homelab.core.errors import HomelabError


def topology_page(request: HttpRequest) -> HttpResponse:
    graph = selectors.topology()
    counts = {
        kind: sum(1 for n in graph["nodes"] if n["kind"] == kind)
        for kind in ("device", "app", "shared_db")
    }
    return render(
        request,
        "fleet/topology.html",
        {"graph": graph, "counts": counts, "legend": HEALTH_WORDS, "current": "topology"},
    )


def export_download(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(services.homelab_export_yaml(), content_type="application/yaml")
    response["Content-Disposition"] = 'attachment; filename="homelab.yaml"'
    response["Cache-Control"] = "no-store"
    return response


def export_import(request: HttpRequest) -> HttpResponse:
    form = ImportForm()
    result = None
    error = None
    status = 200
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                result = services.homelab_import(
                    text=form.cleaned_data["file"].read(services.MAX_FILE_BYTES + 1)
                )
            except HomelabError as refused:
                error = refused
                status = refused.code
        else:
            status = 422
    devices, apps = selectors.waiting_lists()
    return render(
        request,
        "fleet/export_import.html",
        {
            "form": form,
            "result": result,
            "error": error,
            "devices_to_add": devices,
            "apps_to_deploy": apps,
            "current": "export_import",
        },
        status=status,
    )

"""The topology map: its graph from the database, the API and the page (issue 17, part 7)."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from fleet.selectors import topology
from tests.integration.fleet_data import make_app, make_device, make_fleet, make_shared

pytestmark = pytest.mark.django_db


def test_the_graph_links_apps_to_their_device_and_to_the_shared_database_they_use():
    pi = make_device("pi-4", status="offline")
    gitea = make_app(pi, "gitea")
    kuma = make_app(pi, "uptime-kuma", status="crash_loop")
    make_app(pi, "jellyfin", status="removed")  # gone: not drawn
    shared = make_shared(pi, gitea)

    graph = topology()

    nodes = {n["id"]: n for n in graph["nodes"]}
    assert set(nodes) == {
        f"device:{pi.pk}",
        f"app:{gitea.pk}",
        f"app:{kuma.pk}",
        f"shared_db:{shared.pk}",
    }
    assert nodes[f"device:{pi.pk}"] == {
        "id": f"device:{pi.pk}",
        "kind": "device",
        "label": "pi-4",
        "status": "offline",
        "status_words": "Offline",
        "health": "down",
        "url": f"/devices/{pi.pk}/",
    }
    assert nodes[f"app:{kuma.pk}"]["health"] == "trouble"
    assert nodes[f"app:{gitea.pk}"]["url"] == f"/deployments/{gitea.pk}/"
    assert nodes[f"shared_db:{shared.pk}"]["url"] == reverse("pooling_index")
    edges = {(e["source"], e["target"], e["kind"]) for e in graph["edges"]}
    assert edges == {
        (f"app:{gitea.pk}", f"device:{pi.pk}", "runs_on"),
        (f"app:{kuma.pk}", f"device:{pi.pk}", "runs_on"),
        (f"shared_db:{shared.pk}", f"device:{pi.pk}", "runs_on"),
        (f"app:{gitea.pk}", f"shared_db:{shared.pk}", "uses"),
    }


def test_a_pooled_database_without_an_app_id_is_matched_by_its_project():
    device = make_device("server-1")
    app = make_app(device, "nextcloud")
    shared = make_shared(device, app)
    shared.databases.update(app_id=None)
    edges = {(e["source"], e["target"]) for e in topology()["edges"] if e["kind"] == "uses"}
    assert edges == {(f"app:{app.pk}", f"shared_db:{shared.pk}")}


def test_the_api_answers_the_graph_with_60_nodes_for_10_devices_and_50_apps(cast_viewer):
    make_fleet(10, 5)
    response = cast_viewer.client().get("/api/v1/topology")
    assert response.status_code == 200
    body = response.json()
    kinds = [n["kind"] for n in body["nodes"]]
    assert (
        kinds.count("device") == 10 and kinds.count("app") == 50 and kinds.count("shared_db") == 5
    )
    assert len(body["nodes"]) >= 60
    assert {"id", "kind", "label", "status"} <= set(body["nodes"][0])
    assert sum(1 for e in body["edges"] if e["kind"] == "runs_on") == 55
    assert sum(1 for e in body["edges"] if e["kind"] == "uses") == 5
    ids = {n["id"] for n in body["nodes"]}
    assert all(e["source"] in ids and e["target"] in ids for e in body["edges"])
    assert all(re.fullmatch(r"(device|app|shared_db):\d+", i) for i in ids)


def test_the_page_draws_10_devices_and_50_apps_with_a_legend_and_no_inline_script(cast_viewer):
    make_fleet(10, 5)
    response = cast_viewer.client().get(reverse("topology"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "10 devices, 50 apps, 5 shared database servers" in html
    for words in ("Working", "Needs attention", "Off or failed", "Stopped on purpose"):
        assert words in html
    assert "vendor/cytoscape-3.35.0.min.js" in html and "fleet/topology.js" in html
    data = re.search(
        r'<script id="topology-data" type="application/json">(.*?)</script>', html, re.S
    )
    assert data and len(json.loads(data.group(1))["nodes"]) == 65
    scripts = re.findall(r"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script>", html, re.S)
    for attrs, body in scripts:
        assert "src=" in attrs or 'type="application/json"' in attrs, f"inline script: {body[:80]}"
    assert "PRIVATE-KEY" not in html and "PASSWORD-NEVER" not in html


def test_an_empty_homelab_says_what_to_do_in_plain_words(cast_admin):
    html = cast_admin.client().get(reverse("topology")).content.decode()
    assert "There is nothing to draw yet. Add a device and deploy an app" in html
    assert 'id="topology-map"' not in html


def test_the_vendored_graph_library_and_the_page_script_are_served(client, cast_viewer):
    from django.contrib.staticfiles import finders

    assert finders.find("vendor/cytoscape-3.35.0.min.js")
    script = finders.find("fleet/topology.js")
    assert script
    text = open(script, encoding="utf-8").read()
    assert 'getElementById("topology-data")' in text and 'data("url")' in text

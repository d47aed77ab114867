"""Every endpoint the README's API section documents answers through HTTP (issue 13, finding 10).

`POST /devices/discover` answered 405 because the `/{device_id}` routes were registered
first. Here a real HTTP server (pytest-django's live server) is called with a bearer token
for every endpoint the README lists; none may answer 405 (or 500). Devices point at a port
on 127.0.0.1 that refuses, so nothing reaches another machine.
"""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
METHODS = "GET|POST|PATCH|DELETE"


def documented_endpoints() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## API", 1)[1].split("\n## ", 1)[0]
    endpoints = []
    for methods, path in re.findall(rf"`((?:{METHODS})(?:\|(?:{METHODS}))*) (/[^`?\s]*)", section):
        alternatives = re.match(r"(.*/)([a-z]+(?:\|[a-z]+)+)$", path)
        paths = (
            [alternatives[1] + word for word in alternatives[2].split("|")]
            if alternatives
            else [path]
        )
        endpoints += [(method, p) for method in methods.split("|") for p in paths]
    return endpoints


def test_the_readme_documents_the_endpoints_we_know():
    endpoints = documented_endpoints()
    assert ("POST", "/devices/discover") in endpoints
    assert ("POST", "/deployments/{id}/restart") in endpoints
    assert len(endpoints) >= 28, endpoints


def _refusing_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


BODIES = {
    ("POST", "/devices"): {
        "name": "x1",
        "address": "127.0.0.1",
        "port": 1,
        "username": "root",
        "password": "pw",
    },
    ("PATCH", "/devices/{id}"): {"location": "attic"},
    ("POST", "/devices/{id}/accept-host-key"): {"fingerprint": "SHA256:shown"},
    ("POST", "/devices/discover"): {"cidr": "127.0.0.1/32"},
    ("POST", "/placement"): {"min_ram_bytes": 1024},
    ("POST", "/applications/{slug}/deploy"): {"instance": "docs"},
}


@pytest.mark.django_db(transaction=True)
def test_every_documented_endpoint_answers_and_none_with_405(live_server, django_user_model):
    from devices.models import Device
    from homelab.services import api_token_issue
    from marketplace.models import Deployment

    django_user_model.objects.create_superuser("docs", password="a-long-test-password")
    _, token = api_token_issue(username="docs")
    port = _refusing_port()
    device = Device.objects.create(
        name="server-02",
        address="127.0.0.1",
        port=port,
        username="root",
        private_key="not-a-real-key",
        public_key="ssh-ed25519 AAAA",
    )
    deployment = Deployment.objects.create(
        slug="vaultwarden",
        app_name="Vaultwarden",
        category="security",
        device=device,
        project="hl-vaultwarden-default",
        instance="default",
        status="running",
    )
    BODIES[("POST", "/devices")]["port"] = port
    ids = {"/devices/": device.pk, "/deployments/": deployment.pk, "/pooling/instances/": 987654}

    # Changes that remove things come last, so every other call has its objects.
    endpoints = sorted(documented_endpoints(), key=lambda e: e[0] == "DELETE")
    answers = {}
    for method, path in endpoints:
        url = path.replace("{slug}", "vaultwarden")
        for prefix, pk in ids.items():
            url = url.replace(prefix + "{id}", f"{prefix}{pk}")
        body = BODIES.get((method, path))
        request = urllib.request.Request(
            f"{live_server.url}/api/v1{url}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answers[(method, path)] = response.status
        except urllib.error.HTTPError as exc:
            answers[(method, path)] = exc.code
    assert not [e for e, code in answers.items() if code == 405], answers
    assert not [e for e, code in answers.items() if code >= 500 and code != 502], answers
    assert answers[("GET", "/system/health")] == 200
    assert answers[("POST", "/devices/discover")] == 200
    assert answers[("GET", "/devices/{id}")] == 200

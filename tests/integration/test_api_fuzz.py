"""No input answers 500 (issue 13, finding 9): a property test over the OpenAPI schema.

For every endpoint with a JSON body or query parameters, random and extreme values (huge
integers, 1e308, NaN, infinity, long strings, newlines, NUL, look-alikes, wrong types) are
sent through Django's test client with a signed-in admin. Nothing here reaches another
machine: ids in paths do not exist, a device's address is always 127.0.0.1 on a port that
refuses, and a network to scan is always this machine or one refused as not a home network.
"""

from __future__ import annotations

import json
import socket
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

pytestmark = pytest.mark.django_db

EXTREME_NUMBERS = [0, -1, 2**31, 2**53 + 1, 2**63, 2**64, 10**20, 99999999999999999999, -(10**30)]
EXTREME_FLOATS = [1e308, -1e308, float("nan"), float("inf"), float("-inf"), 5e-324]
EXTREME_TEXT = [
    "nl\n",
    "a\r",
    "x\x00y",
    "A" * 5000,
    "v\u0430ultwarden",
    "\uff11\uff12",
    "' OR 1=1 --",
    "$(id)",
]

scalar = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from(EXTREME_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(EXTREME_FLOATS),
    st.text(max_size=40),
    st.sampled_from(EXTREME_TEXT),
    st.booleans(),
    st.none(),
)
anything = st.one_of(
    scalar,
    st.lists(scalar, max_size=4),
    st.dictionaries(st.text(max_size=8), scalar, max_size=4),
)


def _refusing_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _schema():
    from homelab.api import api

    return api.get_openapi_schema()


def _component(schema: dict, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


TYPED = {
    "integer": st.one_of(
        st.integers(min_value=-(2**80), max_value=2**80), st.sampled_from(EXTREME_NUMBERS)
    ),
    "number": st.one_of(
        st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(EXTREME_FLOATS)
    ),
    "string": st.one_of(st.text(max_size=40), st.sampled_from(EXTREME_TEXT)),
    "boolean": st.booleans(),
}


def _typed(prop: dict):
    """Mostly values of the property's own type (so that a request gets past the other
    fields and the extreme value reaches the code), sometimes anything at all."""
    kinds = [prop.get("type")] + [p.get("type") for p in prop.get("anyOf", [])]
    if "array" in kinds:
        items = prop.get("items") or next(
            (p.get("items") for p in prop.get("anyOf", []) if p.get("items")), {}
        )
        return st.one_of(st.lists(_typed(items), max_size=4), anything)
    typed = [TYPED[kind] for kind in kinds if kind in TYPED]
    return st.one_of(*typed, *typed, anything) if typed else anything


def _body_strategy(schema: dict, body_schema: dict, depth: int = 0):
    if "$ref" in body_schema:
        body_schema = _component(schema, body_schema["$ref"])
    properties = body_schema.get("properties", {})
    if not properties:
        return anything
    fields = {}
    for name, prop in properties.items():
        refs = [p["$ref"] for p in prop.get("anyOf", []) if "$ref" in p] + (
            [prop["$ref"]] if "$ref" in prop else []
        )
        if refs and depth < 2:
            fields[name] = st.one_of(anything, _body_strategy(schema, {"$ref": refs[0]}, depth + 1))
        else:
            fields[name] = _typed(prop)
    return st.one_of(
        st.fixed_dictionaries({}, optional=fields),
        st.fixed_dictionaries(fields),
        anything if depth == 0 else st.nothing(),
    )


def _safe_body(path: str, body):
    """Keep every request on this machine (see the module docstring)."""
    if not isinstance(body, dict):
        return body
    body = dict(body)
    if path.endswith("/devices") or "/devices/{" in path:
        if "address" in body or path.endswith("/devices"):
            body["address"] = "127.0.0.1"
        if "port" in body or path.endswith("/devices"):
            body["port"] = _refusing_port()
    if path.endswith("/discover"):
        body["confirm_public"] = False
        if not (
            isinstance(body.get("cidr"), str) and body["cidr"] in ("127.0.0.1/32", "8.8.8.0/24")
        ):
            body["cidr"] = "8.8.8.0/24" if isinstance(body.get("cidr"), str) else body.get("cidr")
    return body


def _endpoints():
    schema = _schema()
    out = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            query = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
            body = (
                operation.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema")
            )
            if query or body:
                out.append((method, path, query, body))
    return out


ENDPOINTS = _endpoints()


@pytest.fixture
def admin_session(client, django_user_model, settings):
    from devices import discovery

    settings.DISCOVERY_SCANS_PER_MINUTE = 100_000
    settings.DISCOVERY_TIMEOUT_SECONDS = 0.2
    discovery.scan_limiter = discovery._ScanLimiter()
    admin = django_user_model.objects.create_superuser(
        "fuzz-admin", password="a-long-test-password"
    )
    client.force_login(admin)
    return client


def _send(client, method: str, path: str, query: dict, body):
    url = path.replace("/api/v1", "/api/v1", 1)
    url = url.replace("{slug}", "vaultwarden")
    for name in ("device_id", "deployment_id", "instance_id"):
        url = url.replace("{" + name + "}", "987654")
    if query:
        url += "?" + urlencode(query)
    kwargs = {}
    if body is not _NO_BODY:
        kwargs = {"data": json.dumps(body, allow_nan=True), "content_type": "application/json"}
    return getattr(client, method)(url, **kwargs)


_NO_BODY = object()


@pytest.mark.parametrize(
    ("method", "path", "query", "body"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS]
)
@hsettings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_input_answers_500(admin_session, method, path, query, body, data):
    schema = _schema() if body else None
    query_values = {
        name: data.draw(st.one_of(scalar.map(str), st.sampled_from(EXTREME_TEXT)), label=name)
        for name in query
        if data.draw(st.booleans(), label=f"send {name}")
    }
    payload = _NO_BODY
    if body:
        payload = _safe_body(path, data.draw(_body_strategy(schema, body), label="body"))
    response = _send(admin_session, method, path, query_values, payload)
    assert response.status_code < 500, (method, path, query_values, payload, response.content[:500])
    if response.status_code == 422:
        assert "detail" in response.json()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/deployments/99999999999999999999",
        "/api/v1/devices/99999999999999999999",
        "/api/v1/pooling/instances/99999999999999999999",
        "/api/v1/deployments/99999999999999999999/logs",
    ],
)
def test_huge_ids_in_paths_answer_404_or_422(admin_session, path):
    assert admin_session.get(path).status_code in (404, 422)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"min_ram_bytes": 10**30}, "min_ram_bytes"),
        ({"ports": [10**30]}, "ports"),
        ({"weights": {"ram": 1e308, "storage": 1e308}}, "weights.ram"),
        ({"min_cpu_cores": float("nan")}, "min_cpu_cores"),
    ],
)
def test_placement_refuses_numbers_out_of_range_naming_the_field(admin_session, body, field):
    response = admin_session.post(
        "/api/v1/placement", json.dumps(body, allow_nan=True), content_type="application/json"
    )
    assert response.status_code == 422, response.content
    assert field in response.json()["detail"]


def test_a_device_id_too_large_for_the_database_answers_422(admin_session):
    response = admin_session.get("/api/v1/deployments?device=99999999999999999999")
    assert response.status_code == 422
    assert "device" in response.json()["detail"]


def test_usage_when_the_devices_docker_fails_answers_502_in_plain_words(admin_session, monkeypatch):
    """The device answers over SSH but its Docker API fails: a plain 502, not a 500."""
    import docker.errors

    from devices import ssh
    from devices.models import Device
    from marketplace.models import Deployment

    device = Device.objects.create(
        name="server-02",
        address="127.0.0.1",
        port=_refusing_port(),
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

    def failing_docker(_device):
        raise docker.errors.APIError(
            "500 Server Error: Internal Server Error (Docker engine stopped)"
        )

    monkeypatch.setattr(ssh, "docker_client", failing_docker)
    response = admin_session.get(f"/api/v1/deployments/{deployment.pk}/usage")
    assert response.status_code == 502, response.content
    assert "Docker" in response.json()["detail"]

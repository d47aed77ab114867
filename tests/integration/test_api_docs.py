"""The API docs work on a home network without internet (issue 14, item 2).

The docs page loads Swagger UI from our own static files (no CDN) and runs no inline
script; the OpenAPI schema is open to API-token holders and closed to anyone else."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders

from homelab.services import api_token_issue

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user():
    return get_user_model().objects.create_superuser("admin", "admin@example.com", "a-long-test-pw")


def _docs_html(client, admin_user) -> str:
    client.force_login(admin_user)
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    return response.content.decode()


def test_the_docs_page_references_only_our_own_static_files(client, admin_user):
    html = _docs_html(client, admin_user)
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui-bundle" in url for url in urls)
    for url in urls:
        assert not re.match(r"(https?:)?//", url), f"the docs page loads {url} from elsewhere"
        if url.startswith("/static/"):
            path = url.removeprefix("/static/")
            assert finders.find(path), f"{url} is not one of our static files"


def test_the_docs_page_runs_no_inline_script(client, admin_user):
    """A Content-Security-Policy without 'unsafe-inline' must not stop the page."""
    html = _docs_html(client, admin_user)
    for attributes, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S):
        assert "src=" in attributes or 'type="application/json"' in attributes, attributes
        if "src=" in attributes:
            assert not body.strip()
    assert not re.search(r"\son[a-z]+=", html), "an inline event handler"


def test_the_docs_page_sends_a_stranger_to_sign_in(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_token_holder_reads_the_openapi_schema(client, admin_user):
    _, raw = api_token_issue(username="admin", name="script")
    response = client.get("/api/v1/openapi.json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200
    assert "/api/v1/devices" in response.json()["paths"]


def test_the_openapi_schema_is_closed_to_anonymous_callers(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 401
    assert "Bearer" in response.json()["detail"]


def test_a_wrong_token_does_not_open_the_openapi_schema(client, admin_user):
    response = client.get("/api/v1/openapi.json", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert response.status_code == 401


def test_a_signed_in_person_reads_the_openapi_schema(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/api/v1/openapi.json").status_code == 200

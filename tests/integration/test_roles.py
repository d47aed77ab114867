"""Roles: every page, partial, API operation and WebSocket stream, by role (issue 13, finding 4).

The tables below are the expected answers, written here independently of the rules in
homelab/permissions.py. The URL conf and the OpenAPI schema are walked: a new page or
operation fails these tests until it has a rule there and a row here.

Letters: P anyone (even signed out), V Viewer and up, O Operator and up, A Admin only.
A representative request uses ids that do not exist: a 404 (or 405, 422...) after the
role check is "allowed"; a 403 is "denied"; a visitor is sent to sign in (pages) or gets
401 (API).
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from homelab import permissions
from homelab.roles import Role, role_of
from tests.cast import make_person

pytestmark = pytest.mark.django_db

LEAST = {"P": Role.PUBLIC, "V": Role.VIEWER, "O": Role.OPERATOR, "A": Role.ADMIN}
CAST = ("admin", "operator", "viewer", "visitor")

# URL name -> {method: least role}
PAGE_TABLE: dict[str, dict[str, str]] = {
    "first_run": {"GET": "P", "POST": "P"},
    "login": {"GET": "P", "POST": "P"},
    "logout": {"POST": "P"},
    "api_tokens": {"GET": "V", "POST": "V"},
    "users": {"GET": "A", "POST": "A"},
    "dashboard": {"GET": "V"},
    "device_list": {"GET": "V"},
    "device_detail": {"GET": "V"},
    "device_add": {"GET": "A", "POST": "A"},
    "device_scan": {"POST": "A"},
    "device_ready": {"GET": "A"},
    "device_check": {"POST": "A"},
    "device_trust_host_key": {"POST": "A"},
    "device_edit": {"GET": "A", "POST": "A"},
    "device_remove": {"GET": "A", "POST": "A"},
    "group_list": {"GET": "V", "POST": "A"},
    "group_detail": {"GET": "V"},
    "group_edit": {"GET": "A", "POST": "A"},
    "group_delete": {"GET": "A", "POST": "A"},
    "app_catalog": {"GET": "V"},
    "app_detail": {"GET": "V"},
    "app_deploy": {"GET": "O", "POST": "O"},
    "app_compose_preview": {"GET": "O"},
    "deployment_list": {"GET": "V"},
    "deployment_detail": {"GET": "V"},
    "deployment_usage": {"GET": "V"},
    "deployment_logs": {"GET": "O"},
    "deployment_debug": {"GET": "O"},
    "deployment_action": {"POST": "O"},
    "deployment_remove": {"GET": "O", "POST": "O"},
    "deployment_settings": {"GET": "O", "POST": "O"},
    "deployment_sign_in": {"POST": "A"},
    "deployment_watch_settings": {"POST": "O"},
    "notifications": {"GET": "A", "POST": "A"},
    "pooling_index": {"GET": "V"},
    "shared_instance_remove": {"GET": "A", "POST": "A"},
    "backups_index": {"GET": "V"},
    "backup_now": {"POST": "O"},
    "placement_index": {"GET": "V"},
    "placement_app": {"GET": "V", "POST": "O"},
    "placement_custom": {"GET": "V", "POST": "O"},
    "activity": {"GET": "V"},
    "job_detail": {"GET": "V"},
    "job_cancel": {"POST": "O"},
    "app_addresses": {"GET": "A", "POST": "A"},
    "topology": {"GET": "V"},
    "export_import": {"GET": "V", "POST": "A"},
    "export_download": {"GET": "V"},
}

# URL namespaces not walked here, and why (each has its own test below).
SKIPPED_NAMESPACES = {
    "admin": "Django's admin: one rule for all of it, see test_the_admin_is_for_admins_only",
    "api": "the API's operations: see API_TABLE; its docs pages: see API_PAGES",
}
API_PAGES = {"api:openapi-view": "V", "api:openapi-json": "V"}

# (method, path) -> least role
API_TABLE: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/system/health"): "P",
    ("GET", "/api/v1/system/version"): "V",
    ("GET", "/api/v1/jobs"): "V",
    ("GET", "/api/v1/jobs/{job_id}"): "V",
    ("POST", "/api/v1/jobs/{job_id}/cancel"): "O",
    ("GET", "/api/v1/devices"): "V",
    ("POST", "/api/v1/devices"): "A",
    ("GET", "/api/v1/devices/{device_id}"): "V",
    ("PATCH", "/api/v1/devices/{device_id}"): "A",
    ("DELETE", "/api/v1/devices/{device_id}"): "A",
    ("POST", "/api/v1/devices/{device_id}/poll"): "A",
    ("POST", "/api/v1/devices/{device_id}/accept-host-key"): "A",
    ("POST", "/api/v1/devices/discover"): "A",
    ("GET", "/api/v1/devices/{device_id}/history"): "V",
    ("GET", "/api/v1/groups"): "V",
    ("POST", "/api/v1/groups"): "A",
    ("GET", "/api/v1/groups/{group_id}"): "V",
    ("PATCH", "/api/v1/groups/{group_id}"): "A",
    ("DELETE", "/api/v1/groups/{group_id}"): "A",
    ("GET", "/api/v1/resources"): "V",
    ("GET", "/api/v1/applications"): "V",
    ("GET", "/api/v1/applications/{slug}"): "V",
    ("POST", "/api/v1/applications/{slug}/deploy"): "O",
    ("GET", "/api/v1/applications/{slug}/placement"): "V",
    ("GET", "/api/v1/deployments"): "V",
    ("GET", "/api/v1/deployments/{deployment_id}"): "V",
    ("DELETE", "/api/v1/deployments/{deployment_id}"): "O",
    ("PATCH", "/api/v1/deployments/{deployment_id}"): "O",
    ("POST", "/api/v1/deployments/{deployment_id}/start"): "O",
    ("POST", "/api/v1/deployments/{deployment_id}/stop"): "O",
    ("POST", "/api/v1/deployments/{deployment_id}/restart"): "O",
    ("GET", "/api/v1/deployments/{deployment_id}/logs"): "O",
    ("GET", "/api/v1/deployments/{deployment_id}/debug"): "O",
    ("GET", "/api/v1/deployments/{deployment_id}/events"): "V",
    ("GET", "/api/v1/deployments/{deployment_id}/usage"): "V",
    ("GET", "/api/v1/pooling/instances"): "V",
    ("GET", "/api/v1/pooling/instances/{instance_id}"): "V",
    ("DELETE", "/api/v1/pooling/instances/{instance_id}"): "A",
    ("POST", "/api/v1/placement"): "V",
    ("POST", "/api/v1/placement/choices"): "O",
    ("GET", "/api/v1/proxy"): "V",
    ("PUT", "/api/v1/proxy"): "A",
    ("GET", "/api/v1/proxy/ca.pem"): "V",
    ("GET", "/api/v1/proxy/names"): "V",
    ("PUT", "/api/v1/proxy/names/{deployment_id}"): "A",
    ("GET", "/api/v1/backups/destinations"): "V",
    ("POST", "/api/v1/backups/destinations"): "A",
    ("GET", "/api/v1/backups/destinations/{destination_id}"): "V",
    ("PATCH", "/api/v1/backups/destinations/{destination_id}"): "A",
    ("DELETE", "/api/v1/backups/destinations/{destination_id}"): "A",
    ("POST", "/api/v1/backups/destinations/{destination_id}/test"): "A",
    ("POST", "/api/v1/deployments/{deployment_id}/backup"): "O",
    ("GET", "/api/v1/deployments/{deployment_id}/snapshots"): "V",
    ("POST", "/api/v1/snapshots/{snapshot_id}/restore"): "O",
    ("GET", "/api/v1/backups/policies"): "V",
    ("PUT", "/api/v1/backups/policies"): "A",
    ("GET", "/api/v1/deployments/{deployment_id}/backup-policy"): "V",
    ("PUT", "/api/v1/deployments/{deployment_id}/backup-policy"): "O",
    ("DELETE", "/api/v1/deployments/{deployment_id}/backup-policy"): "O",
    ("GET", "/api/v1/topology"): "V",
    ("GET", "/api/v1/export"): "V",
    ("POST", "/api/v1/import"): "A",
}

# Operations no request reaches today, with the reason: any answer but 403-for-allowed is
# accepted. Issue 13 finding 10: /devices/{device_id} is registered first and answers 405.
SHADOWED = {("POST", "/api/v1/devices/discover")}

SAMPLE_ARGUMENT = {"int": 999999, "slug": "nothing-here", "string": "start", "path": "nothing/here"}


def _allowed(letter: str, who: str) -> bool:
    if who == "visitor":
        return letter == "P"
    return Role[who.upper()] >= LEAST[letter]


# --- The URL conf ----------------------------------------------------------------------


def _walk(patterns, prefix="", namespace=None):
    """(route, view name, converters) of every URL pattern, skipping SKIPPED_NAMESPACES."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if pattern.namespace in SKIPPED_NAMESPACES:
                continue
            space = pattern.namespace or namespace
            yield from _walk(pattern.url_patterns, route, space)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            yield route, name, pattern.pattern.converters


def _url_conf() -> dict[str, str]:
    """{view name: URL with sample arguments}."""
    found = {}
    for route, name, converters in _walk(get_resolver().url_patterns):
        assert name, f"the URL {route!r} has no name, so it can have no role rule; name it"
        kwargs = {}
        for arg, converter in converters.items():
            kind = type(converter).__name__.replace("Converter", "").lower()
            kwargs[arg] = SAMPLE_ARGUMENT[kind]
        found[name] = reverse(name, kwargs=kwargs)
    return found


def test_every_page_has_a_rule_and_a_row_in_the_table():
    urls = _url_conf()
    missing_rows = sorted(set(urls) - set(PAGE_TABLE))
    assert not missing_rows, (
        f"pages without a row in PAGE_TABLE (and a rule in homelab/permissions.py PAGES): {missing_rows}"
    )
    assert not sorted(set(PAGE_TABLE) - set(urls)), "rows for pages that no longer exist"
    for name, methods in PAGE_TABLE.items():
        for method in methods:
            assert permissions.page_rule(name, method) is not None, f"no rule for {method} {name}"


PAGE_CASES = [(name, method) for name, methods in PAGE_TABLE.items() for method in methods]


@pytest.mark.parametrize(("name", "method"), PAGE_CASES, ids=[f"{m} {n}" for n, m in PAGE_CASES])
def test_pages_by_role(cast, name, method):
    url = _url_conf()[name]
    letter = PAGE_TABLE[name][method]
    answers = {}
    for who in CAST:
        client = cast[who].client()
        response = client.get(url) if method == "GET" else client.post(url, {})
        answers[who] = response.status_code
        # an open page (setup, sign out) may itself send to the sign-in page
        login = (
            letter != "P"
            and response.status_code == 302
            and "/accounts/login/" in response.get("Location", "")
        )
        if _allowed(letter, who):
            assert response.status_code != 403 and not login, (who, answers)
        elif who == "visitor":
            assert login, (who, response.status_code)
        else:
            assert response.status_code == 403, (who, answers)
            assert "Ask an Admin" in response.content.decode()


@pytest.mark.parametrize("name", sorted(API_PAGES))
def test_the_api_docs_by_role(cast, name):
    url = reverse(name)
    for who in ("admin", "operator", "viewer"):
        assert cast[who].client().get(url).status_code == 200, who
    assert permissions.page_rule(name, "GET") == LEAST[API_PAGES[name]]


def test_the_admin_is_for_admins_only(cast):
    for url in ("/admin/", "/admin/auth/user/", "/admin/homelab/apitoken/"):
        assert cast["admin"].client().get(url).status_code == 200, url
        assert cast["operator"].client().get(url).status_code == 403, url
        assert cast["viewer"].client().get(url).status_code == 403, url
        assert cast["visitor"].client().get(url).status_code == 302, url


def test_a_viewer_sees_no_logs_and_no_what_i_did_and_is_told_why(cast):
    response = cast["viewer"].client().get(reverse("deployment_logs", args=[1]))
    assert response.status_code == 403
    text = response.content.decode()
    assert "Your role is Viewer; this needs the Operator role. Ask an Admin if you need it." in text


# --- The API ----------------------------------------------------------------------------


def _operations() -> dict[tuple[str, str], dict]:
    from homelab.api import api

    schema = api.get_openapi_schema()
    return {
        (method.upper(), path): operation
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }


def test_every_api_operation_has_a_rule_and_a_row_in_the_table():
    operations = set(_operations())
    assert not sorted(operations - set(API_TABLE)), "operations without a row in API_TABLE"
    assert not sorted(set(API_TABLE) - operations), "rows for operations that no longer exist"
    assert not sorted(operations - set(permissions.API)), (
        "operations without a rule in homelab/permissions.py API"
    )


def _api_url(path: str, operation: dict) -> str:
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            sample = 999999 if parameter["schema"].get("type") == "integer" else "nothing-here"
            path = path.replace("{" + parameter["name"] + "}", str(sample))
    return path


def _call(client, method: str, url: str, **headers):
    if method in ("GET", "DELETE"):
        return getattr(client, method.lower())(url, **headers)
    return getattr(client, method.lower())(url, data={}, content_type="application/json", **headers)


API_CASES = sorted(API_TABLE)


@pytest.mark.parametrize(("method", "path"), API_CASES, ids=[f"{m} {p}" for m, p in API_CASES])
def test_the_api_by_role(cast, method, path):
    from django.test import Client

    url = _api_url(path, _operations()[(method, path)])
    letter = API_TABLE[(method, path)]
    answers = {}
    for who in CAST:
        response = _call(Client(), method, url, **cast[who].api_headers())
        answers[who] = response.status_code
        if (method, path) in SHADOWED and response.status_code == 405:
            continue
        if _allowed(letter, who):
            assert response.status_code not in (401, 403), (who, answers, response.content)
        elif who == "visitor":
            assert response.status_code == 401, (who, answers)
        else:
            assert response.status_code == 403, (who, answers)
            assert "needs the" in response.json()["detail"]


def test_the_api_applies_the_role_to_a_signed_in_session_too(cast):
    url = "/api/v1/deployments/1/logs"
    assert cast["viewer"].client().get(url).status_code == 403
    assert cast["operator"].client().get(url).status_code == 404


def test_a_read_only_token_may_read_but_not_change(db):
    from django.test import Client

    person = make_person(Role.ADMIN, read_only=True)
    headers = person.api_headers()
    assert Client().get("/api/v1/devices", **headers).status_code == 200
    response = Client().post(
        "/api/v1/applications/vaultwarden/deploy",
        data={},
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 403
    assert "read-only" in response.json()["detail"]
    # the same person's session is not limited by the token
    assert person.client().delete("/api/v1/deployments/999999").status_code == 404


def test_the_tokens_page_makes_a_read_only_token(cast):
    from homelab.models import ApiToken

    client = cast["operator"].client()
    response = client.post(
        reverse("api_tokens"), {"action": "create", "name": "graphs", "read_only": "on"}
    )
    assert response.status_code == 200
    token = ApiToken.objects.get(name="graphs")
    assert token.read_only and token.user == cast["operator"].user
    assert "(read only)" in response.content.decode()


# --- WebSockets -------------------------------------------------------------------------


def _connects(user, path: str) -> bool:
    from asgiref.sync import async_to_sync
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from homelab.routing import websocket_urlpatterns

    async def attempt():
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
        communicator.scope["user"] = user
        connected, _ = await communicator.connect()
        await communicator.disconnect()
        return connected

    return async_to_sync(attempt)()


@pytest.mark.django_db(transaction=True)
def test_websocket_streams_ask_the_role_rules(monkeypatch):
    from homelab.core.models import Job, JobStatus

    viewer = make_person(Role.VIEWER).user
    operator = make_person(Role.OPERATOR).user
    job = Job.objects.create(kind="test.greets", status=JobStatus.SUCCEEDED)
    assert set(permissions.STREAMS) == {"dashboard", "jobs", "deployments"}
    assert _connects(viewer, f"/ws/jobs/{job.pk}/")
    # a stream that showed logs would be an Operator's: the consumer refuses the Viewer
    monkeypatch.setitem(permissions.STREAMS, "jobs", permissions.LOGS)
    assert not _connects(viewer, f"/ws/jobs/{job.pk}/")
    assert _connects(operator, f"/ws/jobs/{job.pk}/")
    monkeypatch.setitem(permissions.STREAMS, "deployments", permissions.LOGS)
    assert not _connects(viewer, "/ws/deployments/999999/")
    monkeypatch.setitem(permissions.STREAMS, "dashboard", permissions.ADMIN)
    assert not _connects(operator, "/ws/dashboard/")


def test_a_stream_without_a_rule_is_for_admins_only(cast):
    from homelab.core.access import stream_allowed

    assert stream_allowed(cast["admin"].user, "something-new")
    assert not stream_allowed(cast["operator"].user, "something-new")
    assert not stream_allowed(None, "dashboard")


# --- People and roles -------------------------------------------------------------------


def test_existing_accounts_become_admins_by_the_migration(django_user_model):
    from importlib import import_module

    from django.apps import apps

    before = django_user_model.objects.create_user("old-timer", password="pw-Old-12345")
    assert role_of(before) == Role.VIEWER  # no role group: the least role
    import_module("homelab.migrations.0003_roles").roles_forward(apps, None)
    assert role_of(django_user_model.objects.get(pk=before.pk)) == Role.ADMIN


def test_an_admin_adds_a_person_with_a_role_and_changes_it(cast, django_user_model):
    client = cast["admin"].client()
    page = client.get(reverse("users"))
    assert page.status_code == 200 and "cast-operator" in page.content.decode()
    response = client.post(
        reverse("users"),
        {
            "action": "create",
            "username": "carol",
            "password": "a-long-password-9",
            "role": "operator",
        },
        follow=True,
    )
    assert "carol can now sign in as Operator." in response.content.decode()
    carol = django_user_model.objects.get(username="carol")
    assert role_of(carol) == Role.OPERATOR and carol.check_password("a-long-password-9")
    assert not carol.is_staff

    client.post(reverse("users"), {"action": "role", "user_id": carol.pk, "role": "admin"})
    carol = django_user_model.objects.get(pk=carol.pk)
    assert role_of(carol) == Role.ADMIN and carol.is_staff
    client.post(reverse("users"), {"action": "role", "user_id": carol.pk, "role": "viewer"})
    carol = django_user_model.objects.get(pk=carol.pk)
    assert role_of(carol) == Role.VIEWER and not carol.is_superuser

    client.post(reverse("users"), {"action": "deactivate", "user_id": carol.pk})
    assert not django_user_model.objects.get(pk=carol.pk).is_active


def test_a_weak_password_or_a_taken_name_is_refused_in_plain_words(cast):
    client = cast["admin"].client()
    weak = client.post(
        reverse("users"),
        {"action": "create", "username": "dave", "password": "123", "role": "viewer"},
    )
    assert weak.status_code == 200 and "too short" in weak.content.decode()
    taken = client.post(
        reverse("users"),
        {
            "action": "create",
            "username": "cast-viewer",
            "password": "a-long-password-9",
            "role": "viewer",
        },
    )
    assert "There is already an account named" in taken.content.decode()


def test_the_last_admin_can_be_neither_demoted_nor_deactivated(cast, django_user_model):
    admin = cast["admin"].user
    client = cast["admin"].client()
    demote = client.post(
        reverse("users"), {"action": "role", "user_id": admin.pk, "role": "viewer"}, follow=True
    )
    assert "is the only Admin, so they stay an Admin" in demote.content.decode()
    off = client.post(reverse("users"), {"action": "deactivate", "user_id": admin.pk}, follow=True)
    assert "is the only Admin and cannot be deactivated" in off.content.decode()
    admin = django_user_model.objects.get(pk=admin.pk)
    assert role_of(admin) == Role.ADMIN and admin.is_active


def test_the_users_link_is_shown_to_admins_only(cast):
    assert 'href="/users/"' in cast["admin"].client().get(reverse("dashboard")).content.decode()
    assert (
        'href="/users/"' not in cast["operator"].client().get(reverse("dashboard")).content.decode()
    )

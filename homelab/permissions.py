"""The one table of who may do what, and the checks that enforce it everywhere.

- Pages and partials: keyed by URL name and HTTP method (`PAGES`), enforced by
  `homelab.roles_middleware.RolesMiddleware`. A namespace may have one rule for all its
  URLs (`NAMESPACES`: the admin pages are for Admins only).
- The API: keyed by method and path template as the OpenAPI schema shows it (`API`),
  enforced by `enforce_api_roles`, which wraps every operation's authentication once, when
  homelab/api.py has added its routers.
- WebSockets: keyed by stream name (`STREAMS`); consumers ask `homelab.core.access`.

A URL, operation or stream without a rule is for Admins only, and the role-table test
(tests/integration/test_roles.py) fails until it gets one. HEAD counts as GET.

Roles: Admin (everything), Operator (apps: deploy, start, stop, remove; backups and
restores; logs), Viewer (dashboard, apps, statuses; no logs, no "What I did", no changes).
"""

from __future__ import annotations

import inspect
import re
from typing import TYPE_CHECKING

from ninja.errors import HttpError

from homelab.core import access
from homelab.models import ApiToken, hash_token
from homelab.roles import Role, role_of

if TYPE_CHECKING:
    from django.http import HttpRequest
    from ninja import NinjaAPI

PUBLIC, VIEWER, OPERATOR, ADMIN = Role.PUBLIC, Role.VIEWER, Role.OPERATOR, Role.ADMIN
# Shows logs, secrets or the commands run ("What I did"): never for a Viewer.
LOGS = OPERATOR

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def page(get: Role = ADMIN, post: Role | None = None) -> dict[str, Role]:
    rule = {"GET": get}
    if post is not None:
        rule["POST"] = post
    return rule


# URL name -> {method: least role}. A method not listed is for Admins only.
PAGES: dict[str, dict[str, Role]] = {
    # signing in and out, first run: open (the views themselves decide)
    "first_run": page(PUBLIC, PUBLIC),
    "login": page(PUBLIC, PUBLIC),
    "logout": page(PUBLIC, PUBLIC),
    # every person manages their own API tokens (they act with that person's role)
    "api_tokens": page(VIEWER, VIEWER),
    "users": page(ADMIN, ADMIN),
    # the API's docs and schema (the operations themselves are in API below)
    "api:openapi-view": page(VIEWER),
    "api:openapi-json": page(VIEWER),
    # dashboard and devices: everyone sees; only Admins add, change or remove devices
    "dashboard": page(VIEWER),
    "device_list": page(VIEWER),
    "device_detail": page(VIEWER),
    "device_add": page(ADMIN, ADMIN),
    "device_scan": page(ADMIN, ADMIN),
    "device_ready": page(ADMIN),
    "device_check": page(ADMIN, ADMIN),
    "device_trust_host_key": page(ADMIN, ADMIN),
    "device_edit": page(ADMIN, ADMIN),
    "device_remove": page(ADMIN, ADMIN),
    # device groups: everyone sees them; only Admins make, change or delete them
    "group_list": page(VIEWER, ADMIN),
    "group_detail": page(VIEWER),
    "group_edit": page(ADMIN, ADMIN),
    "group_delete": page(ADMIN, ADMIN),
    # apps: everyone sees; Operators deploy, start, stop and remove
    "app_catalog": page(VIEWER),
    "app_detail": page(VIEWER),
    "app_deploy": page(OPERATOR, OPERATOR),
    "app_compose_preview": page(OPERATOR, OPERATOR),
    "deployment_list": page(VIEWER),
    "deployment_detail": page(VIEWER),
    "deployment_usage": page(VIEWER),
    "deployment_logs": page(LOGS),
    "deployment_debug": page(LOGS),  # "What I did"
    "deployment_action": page(OPERATOR, OPERATOR),
    "deployment_remove": page(OPERATOR, OPERATOR),
    "deployment_settings": page(OPERATOR, OPERATOR),
    # an app's generated login: Admins only (the view asks for their password again)
    "deployment_sign_in": page(ADMIN, ADMIN),
    # how the watch treats an app (auto-restart, minutes between checks): Operators
    "deployment_watch_settings": page(OPERATOR, OPERATOR),
    # where notifications go (the addresses hold passwords): Admins only
    "notifications": page(ADMIN, ADMIN),
    # shared database servers are the house's infrastructure, like devices
    "pooling_index": page(VIEWER),
    "shared_instance_remove": page(ADMIN, ADMIN),
    # where to run apps: everyone compares; recording a choice is an Operator's
    "placement_index": page(VIEWER),
    # backups: everyone sees; Operators back up now
    "backups_index": page(VIEWER),
    "backup_now": {"POST": OPERATOR},
    "placement_app": page(VIEWER, OPERATOR),
    "placement_custom": page(VIEWER, OPERATOR),
    # activity: job statuses and step names; cancelling is an Operator's
    "activity": page(VIEWER),
    "job_detail": page(VIEWER),
    "job_cancel": page(OPERATOR, OPERATOR),
    # the front door's settings (domain, device, names): Admins
    "app_addresses": page(ADMIN, ADMIN),
    # the homelab as a whole: everyone reads the map and the export; Admins import
    "topology": page(VIEWER),
    "export_import": page(VIEWER, ADMIN),
    "export_download": page(VIEWER),
}

# URL namespace -> least role for every URL in it, whatever the method.
NAMESPACES: dict[str, Role] = {
    "admin": ADMIN,
}

API_ROOT = "/api/v1"

# (method, path as in the OpenAPI schema) -> least role.
API: dict[tuple[str, str], Role] = {
    ("GET", "/api/v1/system/health"): PUBLIC,
    ("GET", "/api/v1/system/version"): VIEWER,
    ("GET", "/api/v1/jobs"): VIEWER,
    ("GET", "/api/v1/jobs/{job_id}"): VIEWER,
    ("POST", "/api/v1/jobs/{job_id}/cancel"): OPERATOR,
    ("GET", "/api/v1/devices"): VIEWER,
    ("POST", "/api/v1/devices"): ADMIN,
    ("GET", "/api/v1/devices/{device_id}"): VIEWER,
    ("PATCH", "/api/v1/devices/{device_id}"): ADMIN,
    ("DELETE", "/api/v1/devices/{device_id}"): ADMIN,
    ("POST", "/api/v1/devices/{device_id}/poll"): ADMIN,
    ("POST", "/api/v1/devices/{device_id}/accept-host-key"): ADMIN,
    ("POST", "/api/v1/devices/discover"): ADMIN,
    ("GET", "/api/v1/devices/{device_id}/history"): VIEWER,
    ("GET", "/api/v1/groups"): VIEWER,
    ("POST", "/api/v1/groups"): ADMIN,
    ("GET", "/api/v1/groups/{group_id}"): VIEWER,
    ("PATCH", "/api/v1/groups/{group_id}"): ADMIN,
    ("DELETE", "/api/v1/groups/{group_id}"): ADMIN,
    ("GET", "/api/v1/resources"): VIEWER,
    ("GET", "/api/v1/applications"): VIEWER,
    ("GET", "/api/v1/applications/{slug}"): VIEWER,
    ("POST", "/api/v1/applications/{slug}/deploy"): OPERATOR,
    ("GET", "/api/v1/applications/{slug}/placement"): VIEWER,
    ("GET", "/api/v1/deployments"): VIEWER,
    ("GET", "/api/v1/deployments/{deployment_id}"): VIEWER,
    ("DELETE", "/api/v1/deployments/{deployment_id}"): OPERATOR,
    ("PATCH", "/api/v1/deployments/{deployment_id}"): OPERATOR,  # change its settings
    ("POST", "/api/v1/deployments/{deployment_id}/start"): OPERATOR,
    ("POST", "/api/v1/deployments/{deployment_id}/stop"): OPERATOR,
    ("POST", "/api/v1/deployments/{deployment_id}/restart"): OPERATOR,
    ("GET", "/api/v1/deployments/{deployment_id}/logs"): LOGS,
    ("GET", "/api/v1/deployments/{deployment_id}/debug"): LOGS,
    ("GET", "/api/v1/deployments/{deployment_id}/events"): VIEWER,
    ("GET", "/api/v1/deployments/{deployment_id}/usage"): VIEWER,
    ("GET", "/api/v1/pooling/instances"): VIEWER,
    ("GET", "/api/v1/pooling/instances/{instance_id}"): VIEWER,
    ("DELETE", "/api/v1/pooling/instances/{instance_id}"): ADMIN,
    # computing a ranking changes nothing; recording a choice does
    ("POST", "/api/v1/placement"): VIEWER,
    ("POST", "/api/v1/placement/choices"): OPERATOR,
    # the front door: everyone reads names and the CA's certificate; Admins change them
    ("GET", "/api/v1/proxy"): VIEWER,
    ("PUT", "/api/v1/proxy"): ADMIN,
    ("GET", "/api/v1/proxy/ca.pem"): VIEWER,
    ("GET", "/api/v1/proxy/names"): VIEWER,
    ("PUT", "/api/v1/proxy/names/{deployment_id}"): ADMIN,
    # backups: Admins manage destinations; Operators back up and restore; Viewers read
    ("GET", "/api/v1/backups/destinations"): VIEWER,
    ("POST", "/api/v1/backups/destinations"): ADMIN,
    ("GET", "/api/v1/backups/destinations/{destination_id}"): VIEWER,
    ("PATCH", "/api/v1/backups/destinations/{destination_id}"): ADMIN,
    ("DELETE", "/api/v1/backups/destinations/{destination_id}"): ADMIN,
    ("POST", "/api/v1/backups/destinations/{destination_id}/test"): ADMIN,
    ("POST", "/api/v1/deployments/{deployment_id}/backup"): OPERATOR,
    ("GET", "/api/v1/deployments/{deployment_id}/snapshots"): VIEWER,
    ("POST", "/api/v1/snapshots/{snapshot_id}/restore"): OPERATOR,
    ("GET", "/api/v1/backups/policies"): VIEWER,
    ("PUT", "/api/v1/backups/policies"): ADMIN,
    ("GET", "/api/v1/deployments/{deployment_id}/backup-policy"): VIEWER,
    ("PUT", "/api/v1/deployments/{deployment_id}/backup-policy"): OPERATOR,
    ("DELETE", "/api/v1/deployments/{deployment_id}/backup-policy"): OPERATOR,
    # the homelab as a whole: the map and the export (no keys, no secrets); import: Admins
    ("GET", "/api/v1/topology"): VIEWER,
    ("GET", "/api/v1/export"): VIEWER,
    ("POST", "/api/v1/import"): ADMIN,
}

# WebSocket stream -> least role (the consumers name their stream).
STREAMS: dict[str, Role] = {
    "dashboard": VIEWER,
    "jobs": VIEWER,  # statuses and step names, no output
    "deployments": VIEWER,  # deployment progress: statuses and step names, no logs
}


# --- Looking rules up -----------------------------------------------------------------


def _method(method: str) -> str:
    method = (method or "GET").upper()
    return "GET" if method == "HEAD" else method


def page_rule(view_name: str, method: str) -> Role | None:
    """The least role for METHOD on the URL named VIEW_NAME, or None (no rule)."""
    namespace = view_name.split(":", 1)[0] if ":" in view_name else None
    if view_name not in PAGES and namespace in NAMESPACES:
        return NAMESPACES[namespace]
    return PAGES.get(view_name, {}).get(_method(method))


def api_rule(method: str, path: str) -> Role | None:
    return API.get((_method(method), path))


def allows(role: Role | None, needed: Role | None) -> bool:
    """Whether ROLE (None: signed out) may do what needs NEEDED (None: no rule, Admins only)."""
    if needed is None:
        return role == ADMIN
    if needed == PUBLIC:
        return True
    return role is not None and role >= needed


def denial(role: Role | None, needed: Role | None) -> str:
    """Why it is refused, in plain words, and what to do."""
    who = f"Your role is {role.label}" if role else "You are not signed in"
    if needed is None:
        return f"{who}, and only an Admin may do this. Ask an Admin if you need it."
    return f"{who}; this needs the {needed.label} role. Ask an Admin if you need it."


# --- The API ----------------------------------------------------------------------------


def _template(path: str) -> str:
    """'/deployments/{int:deployment_id}/logs' -> '/api/v1/deployments/{deployment_id}/logs'."""
    full = re.sub(r"/+", "/", f"{API_ROOT}/{path}")
    full = re.sub(r"{[^}:]+:", "{", full)
    return full.rstrip("/") if full != "/" else full


def _token_is_read_only(request: HttpRequest) -> bool:
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return False
    return ApiToken.objects.filter(token_hash=hash_token(raw.strip()), read_only=True).exists()


def api_check(request: HttpRequest, user, path: str) -> str | None:
    """Why USER may not call PATH with the request's method (None: they may).

    A read-only API token may only read (GET, HEAD, OPTIONS), whatever its person's role."""
    role = role_of(user)
    needed = api_rule(request.method, path)
    if not allows(role, needed):
        return denial(role, needed)
    if _method(request.method) not in SAFE_METHODS and _token_is_read_only(request):
        return (
            "This API token is read-only: it may only read (GET). To change things, make a "
            "token without “read only” on the API tokens page."
        )
    return None


def _guard(operation, path: str) -> None:
    """After OPERATION authenticates a request (token or session), apply PATH's role rule."""
    authenticate = operation._run_authentication

    def authenticate_and_check(request: HttpRequest):
        error = authenticate(request)
        if error is not None:
            return error
        reason = api_check(request, request.auth, path)
        if reason is not None:
            return operation.api.on_exception(request, HttpError(403, reason))
        return None

    operation._run_authentication = authenticate_and_check


def enforce_api_roles(api: NinjaAPI) -> list[tuple[str, str]]:
    """Apply the role rules to every operation of API that needs authentication.

    Call once, after the last `add_router`. Operations open to anyone (auth=None, like
    health) are left alone; they need a PUBLIC rule in the table (the role-table test
    checks). Returns the (method, path) pairs guarded.
    """
    guarded = []
    for bound in api._get_bound_routers():  # ninja binds routers once; we guard the result
        for route, path_view in bound.path_operations.items():
            path = _template("/".join(part for part in (bound.prefix, route) if part))
            for operation in path_view.operations:
                if not operation.auth_callbacks:
                    continue
                if inspect.iscoroutinefunction(operation._run_authentication):
                    raise TypeError(f"{path}: async operations need an async role check")
                _guard(operation, path)
                guarded.extend((method, path) for method in operation.methods)
    return guarded


# --- WebSockets ---------------------------------------------------------------------------


def stream_allowed(user, stream: str) -> bool:
    return allows(role_of(user), STREAMS.get(stream))


access.register_stream_check(stream_allowed)

"""The JSON API under /api/v1: one NinjaAPI, a router per app.

Scripts authenticate with `Authorization: Bearer <token>` (see `issue_api_token`); the
browser uses its session (with CSRF). Everything requires authentication except health.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import NinjaAPI, Router, Schema
from ninja.errors import ValidationError
from ninja.security import HttpBearer, SessionAuth

from backups.api import router as backups_router
from devices.api import groups_router, resources_router
from devices.api import router as devices_router
from fleet.api import router as fleet_router
from homelab import __version__
from homelab.api_docs import LocalSwagger, docs_access
from homelab.core.api import router as jobs_router
from homelab.core.errors import HomelabError, problems_answer
from homelab.permissions import enforce_api_roles
from homelab.services import api_token_authenticate
from marketplace.api import router as marketplace_router
from pooling.api import router as pooling_router
from proxy.api import router as proxy_router
from scheduling.api import router as scheduling_router


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        user = api_token_authenticate(raw=token)
        if user is not None:
            request.user = user
        return user


api = NinjaAPI(
    title="Homelab orchestrator API",
    version="1",
    urls_namespace="api",
    auth=[BearerToken(), SessionAuth()],
    docs_url="/docs",
    docs=LocalSwagger(),
    docs_decorator=docs_access,
)


@api.exception_handler(ValidationError)
def validation_error(request, exc: ValidationError):
    """Say which field is wrong and why, in one sentence a person can act on."""
    problems = []
    for error in exc.errors:
        location = [str(part) for part in error.get("loc", []) if part not in ("body", "payload", "query", "path")]
        field = ".".join(location) or "request"
        problems.append({"field": field, "message": error.get("msg", "is not valid")})
    return api.create_response(request, problems_answer(problems), status=422)


@api.exception_handler(HomelabError)
def homelab_error(request, exc: HomelabError):
    """Every service error answers `{"detail", "field", "fixes"}` (some add keys) with its code."""
    return api.create_response(request, exc.as_json(), status=exc.code)


system = Router(tags=["system"])


class HealthOut(Schema):
    status: str


class VersionOut(Schema):
    version: str
    api: str


@system.get("/health", auth=None, response=HealthOut)
def health(request):
    return {"status": "ok"}


@system.get("/version", response=VersionOut)
def version(request):
    return {"version": __version__, "api": "v1"}


api.add_router("/system", system)
api.add_router("/jobs", jobs_router)


api.add_router("/devices", devices_router)
api.add_router("/resources", resources_router)
api.add_router("/groups", groups_router)
api.add_router("", marketplace_router)
api.add_router("/pooling", pooling_router)
api.add_router("", scheduling_router)
api.add_router("/proxy", proxy_router)
api.add_router("", backups_router)
api.add_router("", fleet_router)

# every operation answers to its role rule (homelab/permissions.py); keep this last
enforce_api_roles(api)

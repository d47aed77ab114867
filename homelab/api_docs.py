"""The API's docs page and its OpenAPI schema, served from our own files.

The product runs on a home network that may have no internet: Swagger UI is vendored
under static/vendor (no CDN), and its start-up code is a static file (no inline script,
so the page works under a Content-Security-Policy). Scripts holding an API token read
the schema with `Authorization: Bearer <token>`; the browser uses its session.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from ninja.openapi.docs import Swagger

from homelab.services import api_token_authenticate

SWAGGER_UI_VERSION = "5.35.0"


class LocalSwagger(Swagger):
    """ninja's Swagger docs with our template and the vendored Swagger UI."""

    def render_page(self, request: HttpRequest, api, **kwargs) -> HttpResponse:
        self.settings["url"] = self.get_openapi_url(api, kwargs)
        context = {
            "swagger_settings": dict(self.settings),
            "swagger_version": SWAGGER_UI_VERSION,
            "api": api,
        }
        return render(request, "homelab/api_docs.html", context)


def _bearer_user(request: HttpRequest):
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return api_token_authenticate(raw=token.strip())


def docs_access(view):
    """The docs page and the schema for a signed-in person or an API token holder.

    Nobody else: the schema answers 401 (it is read by scripts), the page sends the
    browser to the sign-in page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            user = _bearer_user(request)
            if user is not None:
                request.user = user
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if request.path.endswith("openapi.json"):
            response = JsonResponse(
                {"detail": "Sign in, or send an API token as 'Authorization: Bearer <token>'."},
                status=401,
            )
            response["WWW-Authenticate"] = "Bearer"
            return response
        return redirect_to_login(request.get_full_path())

    return wrapper

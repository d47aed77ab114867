"""Pages and partials by role: one middleware, the rules in homelab.permissions.

Runs after authentication and the login requirement. A signed-in person whose role does
not allow the page gets a 403 page that says so in plain words; a person not signed in is
left to the login requirement (sent to sign in). The API (under /api/) checks its own
operations (homelab.permissions.enforce_api_roles), except the docs and schema, which are
pages here.
"""

from __future__ import annotations

from django.shortcuts import render

from homelab import permissions
from homelab.roles import role_of


class RolesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        role = role_of(request.user)
        request.role = role
        match = request.resolver_match
        name = match.view_name if match else ""
        if request.path.startswith(permissions.API_ROOT + "/") and name not in permissions.PAGES:
            return None  # an API operation: checked by the API
        needed = permissions.page_rule(name, request.method)
        if role is None and needed is not None:
            return None  # not signed in: the login requirement (or an open page) decides
        if permissions.allows(role, needed):
            return None
        response = render(
            request,
            "homelab/forbidden.html",
            {"reason": permissions.denial(role, needed), "role": role},
            status=403,
        )
        response["Cache-Control"] = "no-store"
        return response

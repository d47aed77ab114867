"""Request middleware: trusted proxies, the first-run redirect and no-store answers."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.shortcuts import redirect


class LoginRequired(LoginRequiredMiddleware):
    """Django's login-required default for pages; the API does its own auth (token or session)
    and answers 401 in JSON instead of redirecting to a login page."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class TrustedProxyMiddleware:
    """Use X-Forwarded-For only when the direct peer is a configured proxy.

    CasaOS trusted the header from anyone (CVE-2023-37265); we replace REMOTE_ADDR only
    for requests whose peer is in HOMELAB_TRUSTED_PROXIES, and take the right-most entry
    that is not itself a trusted proxy.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
        peer = request.META.get("REMOTE_ADDR", "")
        if forwarded and peer in settings.TRUSTED_PROXIES:
            hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
            while hops and hops[-1] in settings.TRUSTED_PROXIES:
                hops.pop()
            if hops:
                request.META["REMOTE_ADDR"] = hops[-1]
        return self.get_response(request)


_FIRST_RUN_EXEMPT = ("/setup/", "/static/", "/api/", "/favicon.ico")


class FirstRunMiddleware:
    """Until an admin account exists, every page leads to the first-run setup."""

    def __init__(self, get_response):
        self.get_response = get_response
        self._has_users = False

    def __call__(self, request):
        if not self._has_users:
            self._has_users = get_user_model().objects.exists()
            if not self._has_users and not request.path.startswith(_FIRST_RUN_EXEMPT):
                return redirect("first_run")
        return self.get_response(request)


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every page and API answer (static files are served
    before this by WhiteNoise, with their own caching).

    Pages and answers show logs, "What I did", API tokens and device details: no browser or
    proxy cache may keep a copy on disk. A view that set its own Cache-Control keeps it
    unless it lets a copy be stored.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "no-store" not in response.get("Cache-Control", ""):
            response["Cache-Control"] = "no-store, private"
        return response

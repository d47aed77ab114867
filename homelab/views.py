"""Pages of the product as a whole: first-run setup, login and API tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from homelab import setup_token
from homelab.forms import ApiTokenForm, FirstRunForm
from homelab.models import ApiToken, FirstRunClaim
from homelab.services import api_token_issue


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def first_run(request: HttpRequest) -> HttpResponse:
    """Create the first (admin) account. Once any account exists this page is closed.

    Until then it needs the one-time token of the link `serve` printed (homelab.setup_token):
    whoever merely reaches the address, or a web page through DNS rebinding, cannot claim
    the install.
    """
    User = get_user_model()
    if User.objects.exists():
        setup_token.discard()
        return redirect("dashboard" if request.user.is_authenticated else "login")

    token = request.POST.get("token") or request.GET.get("token")
    if not setup_token.is_valid(token):
        return render(request, "homelab/setup_link_needed.html", status=403)

    form = FirstRunForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                # The claim row's fixed key is the guard: of two simultaneous posts, the
                # second insert fails, so there is never a second admin made here.
                FirstRunClaim.objects.create()
                if User.objects.exists():
                    raise IntegrityError("an account exists already")
                user = form.save()
        except IntegrityError:
            messages.info(request, "Setup was already finished. Please sign in.")
            return redirect("login")
        setup_token.discard()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(
            request, f"Welcome, {user.get_username()}! Now let's add your first device."
        )
        return redirect("device_add")
    if request.method == "GET":
        # Every account was deleted after an earlier setup: its claim no longer guards anything.
        FirstRunClaim.objects.all().delete()
    return render(request, "homelab/first_run.html", {"form": form, "token": token})


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True


@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """List, create and revoke the signed-in person's tokens for scripts.

    A new token is shown once, in the answer to the POST that made it; only its hash is kept.
    """
    form = ApiTokenForm()
    new_token = None
    raw_token = None
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            token = get_object_or_404(ApiToken, pk=request.POST.get("token_id"), user=request.user)
            label = token.name or f"{token.hint}…"
            token.delete()
            messages.success(
                request, f"Token “{label}” was revoked. Scripts using it can no longer sign in."
            )
            return redirect("api_tokens")
        form = ApiTokenForm(request.POST)
        if form.is_valid():
            new_token, raw_token = api_token_issue(
                username=request.user.get_username(),
                name=form.cleaned_data["name"],
                read_only=form.cleaned_data["read_only"],
            )
            form = ApiTokenForm()
    tokens = ApiToken.objects.filter(user=request.user).order_by("-created")
    response = render(
        request,
        "homelab/api_tokens.html",
        {"form": form, "tokens": tokens, "new_token": new_token, "raw_token": raw_token},
    )
    if raw_token:
        response["Cache-Control"] = "no-store"
    return response

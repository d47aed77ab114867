"""Placement pages: pick an app (or type its needs), compare the devices, choose one.

Thin: each view parses input, calls one service, renders. htmx requests for a policy
switch get the comparison partial only.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from homelab.core.web import show_error
from scheduling import services
from scheduling.catalog import known_apps
from scheduling.forms import PolicyForm, RequirementsForm
from scheduling.models import PlacementChoice
from scheduling.scoring import AppRequirements, Ranking


def placement_index(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "scheduling/index.html",
        {"apps": known_apps(), "form": RequirementsForm(initial={"policy": ""})},
    )


def placement_app(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        requirements = services.app_requirements(slug=slug)
    except services.PlacementError as exc:
        raise Http404(exc.message) from None
    policy = _policy(request)
    if request.method == "POST":
        return _choose(request, requirements, policy)
    ranking = services.placement_rank(requirements=requirements, policy=policy)
    return _render(
        request, ranking, form=None, last_choice=_last_choice(slug=slug), deploy_slug=slug
    )


def placement_custom(request: HttpRequest) -> HttpResponse:
    form = RequirementsForm(request.GET or None)
    if not request.GET or not form.is_valid():
        return render(request, "scheduling/custom.html", {"form": form})
    policy = form.cleaned_data.get("policy") or None
    if request.method == "POST":
        return _choose(request, form.requirements, policy)
    ranking = services.placement_rank(requirements=form.requirements, policy=policy)
    return _render(request, ranking, form=form, last_choice=None)


def _policy(request: HttpRequest) -> str | None:
    form = PolicyForm(request.GET)
    return (form.cleaned_data.get("policy") or None) if form.is_valid() else None


def _choose(request: HttpRequest, requirements: AppRequirements, policy: str | None):
    raw_id = request.POST.get("device_id", "")
    if not raw_id.isdigit():
        messages.error(request, "Choose a device with one of the buttons below.")
        return redirect(request.get_full_path())
    try:
        choice = services.placement_choose(
            requirements=requirements, device_id=int(raw_id), policy=policy, user=request.user
        )
    except services.PlacementError as exc:
        exc.fixes.append("Reload the page to see the devices there are now.")
        show_error(request, exc)
        return redirect(request.get_full_path())
    note = "" if choice.chosen_eligible else " It does not meet the app's needs, so it may fail."
    messages.success(
        request,
        f"{choice.message}. Recorded. To deploy an app there, choose the app under Apps; "
        "its wizard lists this device." + note,
    )
    return redirect(request.get_full_path())


def _last_choice(*, slug: str) -> PlacementChoice | None:
    return (
        PlacementChoice.objects.filter(app_slug=slug)
        .select_related("chosen_device", "recommended_device")
        .first()
    )


def _render(request, ranking: Ranking, *, form, last_choice, deploy_slug="") -> HttpResponse:
    context = {
        "deploy_slug": deploy_slug,
        "ranking": ranking,
        "app": ranking.app,
        "form": form,
        "policy_form": PolicyForm(initial={"policy": ranking.policy.value}),
        "last_choice": last_choice,
    }
    if getattr(request, "htmx", False):
        return render(request, "scheduling/_comparison.html", context)
    return render(request, "scheduling/compare.html", context)

"""Catalog, deploy wizard and deployment pages.

Thin: each view parses input, calls one service or selector, renders. htmx requests get
the part of the page they asked for from the same view (STYLE.md 8); every page works
without JavaScript through plain GET and POST.
"""

from __future__ import annotations

import dataclasses

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from devices.compose import dump_compose
from devices.models import Device
from homelab.core.errors import HomelabError
from homelab.core.masking import MASK
from homelab.core.models import LIVE_JOB_STATUSES
from homelab.core.web import show_error
from marketplace import selectors, services, sign_in
from marketplace.compose import RenderConfig, RenderError, render_compose
from marketplace.forms import (
    CatalogFilterForm,
    DeployForm,
    DeploymentFilterForm,
    RemoveForm,
    SettingsForm,
)
from marketplace.models import INSTALLED_STATUSES, Deployment, DeploymentStatus
from marketplace.preflight import requirements_of
from marketplace.recipes import Recipe, RecipeNotFound, load_catalog
from marketplace.selectors import deployment_usage as read_usage
from pooling.selectors import (
    pooled_databases_for_deployment,
    pooling_preview,
    shared_instances_left_empty,
    shared_server_devices,
)
from pooling.services import compose_pool_preview
from scheduling.explain import CRITERION_WORDS, deciding_difference
from scheduling.scoring import ALWAYS_ON_PENALTY, CRITERIA, SHARED_SERVER_BONUS
from scheduling.selectors import device_snapshots
from scheduling.services import placement_rank

MIB = 1024 * 1024


# ------------------------------------------------------------------------------ catalog
def _recipe_or_404(slug: str) -> Recipe:
    try:
        return load_catalog().get(slug)
    except RecipeNotFound as exc:
        raise Http404(str(exc)) from None


def app_catalog(request: HttpRequest) -> HttpResponse:
    """Every app as a card; search and category filter (htmx swaps only the cards)."""
    catalog = load_catalog()
    form = CatalogFilterForm(request.GET or None, categories=catalog.categories)
    query, category = "", ""
    if form.is_valid():
        query = form.cleaned_data["q"].strip()
        category = form.cleaned_data["category"]
    recipes = selectors.catalog_search(query=query, category=category, catalog=catalog)
    context = {
        "form": form,
        "recipes": recipes,
        "invalid": catalog.invalid,
        "total": len(catalog.recipes),
        "filtered": bool(query or category),
    }
    if request.htmx:
        return render(request, "marketplace/_app_cards.html", context)
    return render(request, "marketplace/catalog.html", context)


def app_detail(request: HttpRequest, slug: str) -> HttpResponse:
    recipe = _recipe_or_404(slug)
    live = selectors.deployments_list().filter(slug=slug).live()
    return render(
        request,
        "marketplace/app_detail.html",
        {"recipe": recipe, "m": recipe.manifest, "deployments": list(live)},
    )


# -------------------------------------------------------------------------- the wizard
def _ranking(recipe: Recipe):
    """The placement for the recipe; a device already running a shared database server the
    app would use counts in its favour."""
    requirements = dataclasses.replace(
        requirements_of(recipe), shared_server_devices=shared_server_devices(recipe=recipe)
    )
    return placement_rank(requirements=requirements)


def _deciding_difference(ranking) -> str:
    """ "lab-server-1 is less busy: 2 % vs 40 % CPU." (recommended vs runner-up), or ''."""
    eligible = [c for c in ranking.candidates if c.eligible]
    if len(eligible) < 2:
        return ""
    snapshots = device_snapshots(device_ids=[c.device_id for c in eligible[:2]])
    return deciding_difference(
        eligible[0],
        eligible[1],
        devices={s.device_id: s for s in snapshots},
        app=ranking.app,
        weights=ranking.weights,
    )


def _score_parts(c, ranking, device: Device | None) -> list[dict]:
    """How a device's score is made, criterion by criterion ("How the score is made")."""
    weights = ranking.weights
    rows = [
        {
            "name": CRITERION_WORDS[name],
            "weight": getattr(weights, name) * 100 / weights.total,
            "score": getattr(c.scores, name),
            "points": getattr(c.scores, name) * getattr(weights, name) / weights.total,
        }
        for name in CRITERIA
    ]
    if c.device_id in ranking.app.shared_server_devices:
        rows.append(
            {
                "name": "Shared database server already there",
                "weight": None,
                "score": None,
                "points": SHARED_SERVER_BONUS,
            }
        )
    if ranking.app.always_on and device is not None and not device.always_on:
        rows.append(
            {"name": "Not always on", "weight": None, "score": None, "points": -ALWAYS_ON_PENALTY}
        )
    return rows


def _candidates(recipe: Recipe, ranking) -> list[dict]:
    """The ranking's devices with what the resource preview says about each."""
    devices = {
        d.pk: d for d in Device.objects.filter(pk__in=[c.device_id for c in ranking.candidates])
    }
    need_ram = recipe.manifest.requirements.ram_min_mb * MIB
    rows = []
    for c in ranking.candidates:
        device = devices.get(c.device_id)
        rows.append(
            {
                "c": c,
                "device": device,
                "recommended": c.device_id == ranking.recommended_device_id,
                "ram_free_bytes": getattr(device, "ram_free_bytes", None),
                "storage_free_bytes": getattr(device, "storage_free_bytes", None),
                "need_ram_bytes": need_ram,
                "need_storage_bytes": recipe.manifest.requirements.storage_min_mb * MIB,
                "pooling": _pooling_preview(device, recipe),
                "score_parts": _score_parts(c, ranking, device),
                "kept": device is not None
                and selectors.kept_data_sentence(
                    device=device, project=services.project_name(recipe.slug, "default")
                ),
            }
        )
    return rows


def _pooling_preview(device: Device | None, recipe: Recipe) -> list[str]:
    """The wizard's sentences on shared databases ("Will use the shared PostgreSQL on
    server-02 (saves about N MB)" and the like)."""
    if device is None or not recipe.manifest.requires_database:
        return []

    return pooling_preview(device=device, recipe=recipe)


def _compose_preview(recipe: Recipe, form: DeployForm | None) -> str:
    """The compose file as it would be deployed, with every secret shown as ••••••.

    Rendered with placeholder secrets: real ones are generated only when deploying and
    never shown."""
    config: dict = {}
    instance = "default"
    if form is not None and form.is_bound and form.is_valid():
        config = form.config()
        instance = form.cleaned_data.get("instance") or "default"
    try:
        data = render_compose(
            recipe,
            project=services.project_name(recipe.slug, instance),
            config=RenderConfig(
                instance=instance,
                ports=config.get("ports") or {},
                env=config.get("env") or {},
                secrets={s.name: MASK for s in recipe.manifest.secrets},
                memory_limit_mb=config.get("memory_limit_mb"),
            ),
        )
    except RenderError as exc:
        return f"# This configuration cannot be used: {exc.field}: {exc.message}"
    if not config.get("bundled_databases"):
        try:
            compose_pool_preview(recipe=recipe, compose=data, instance=instance, password=MASK)
        except ValueError as exc:  # a name the database pool cannot use
            return f"# This configuration cannot be used: instance: {exc}"
    return dump_compose(data)


def _chosen_device(request: HttpRequest) -> int | None:
    """The device a link chose for the wizard (?device=<id>, e.g. from "Where to run apps")."""
    raw = request.GET.get("device", "")
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def _deploy_form(recipe: Recipe, ranking, data=None, *, chosen: int | None = None) -> DeployForm:
    choices = [(c.device_id, c.device_name) for c in ranking.candidates if c.eligible]
    if chosen not in {device_id for device_id, _ in choices}:
        chosen = None  # a device that cannot run the app is not preselected
    initial = {"device_id": chosen or ranking.recommended_device_id or ""}
    return DeployForm(data, recipe=recipe, device_choices=choices, initial=initial)


def _wizard(request: HttpRequest, recipe: Recipe, ranking, form: DeployForm, *, status=200):
    context = {
        "recipe": recipe,
        "m": recipe.manifest,
        "ranking": ranking,
        "candidates": _candidates(recipe, ranking),
        "deciding_difference": _deciding_difference(ranking),
        "form": form,
        "compose_preview": _compose_preview(recipe, form),
        "analyzed": True,
    }
    template = "marketplace/_wizard_analysis.html" if request.htmx else "marketplace/deploy.html"
    return render(request, template, context, status=status)


@require_http_methods(["GET", "POST"])
def app_deploy(request: HttpRequest, slug: str) -> HttpResponse:
    """The deploy wizard.

    1. GET: the page says "Analyzing your homelab…" and loads the analysis with htmx
       (?analyze=1 without JavaScript): the recommended device with its score and
       reasons, the others to override, the resource preview, and the optional settings.
    2. POST: deployment_create (in the background) and on to the deployment's page; a
       DeploymentError is shown next to the field it names, with the fix.
    """
    recipe = _recipe_or_404(slug)
    if request.method == "GET" and not (request.htmx or request.GET.get("analyze")):
        return render(
            request,
            "marketplace/deploy.html",
            {
                "recipe": recipe,
                "m": recipe.manifest,
                "analyzed": False,
                "chosen_device": _chosen_device(request),
            },
        )
    ranking = _ranking(recipe)
    if request.method == "GET":
        form = _deploy_form(recipe, ranking, chosen=_chosen_device(request))
        return _wizard(request, recipe, ranking, form)
    form = _deploy_form(recipe, ranking, request.POST)
    if not form.is_valid():
        return _wizard(request, recipe, ranking, form, status=422)
    device_id = form.cleaned_data.get("device_id") or None
    try:
        deployment = services.deployment_create(
            slug=recipe.slug,
            device_id=device_id,
            instance=form.cleaned_data["instance"],
            config=form.config(),
            user=request.user,
        )
    except services.DeploymentError as exc:
        form.add_service_error(exc.field, exc.message)
        return _wizard(request, recipe, ranking, form, status=422)
    target = reverse("deployment_detail", args=[deployment.pk])
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = target
        return response
    return redirect(target)


def app_compose_preview(request: HttpRequest, slug: str) -> HttpResponse:
    """The compose preview for the settings in the form (htmx, on change)."""
    recipe = _recipe_or_404(slug)
    form = DeployForm(request.GET, recipe=recipe, device_choices=[])
    del form.fields["device_id"]  # the preview does not depend on the device
    return render(
        request,
        "marketplace/_compose_preview.html",
        {"compose_preview": _compose_preview(recipe, form), "recipe": recipe},
    )


# -------------------------------------------------------------------------- deployments
def _deployment_or_404(deployment_id: int) -> Deployment:
    deployment = selectors.deployment_get(deployment_id=deployment_id)
    if deployment is None:
        raise Http404(f"There is no deployment {deployment_id}.")
    return deployment


def _progress_context(deployment: Deployment) -> dict:
    try:
        recipe = load_catalog().get(deployment.slug)
        notes = recipe.manifest.post_install_notes
    except RecipeNotFound:
        notes = ""
    return {
        "deployment": deployment,
        "steps": list(deployment.steps.all()),
        "post_install_notes": notes,
        "working_job": _working_job(deployment),
    }


def deployment_detail(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """One deployment: status in plain words, the steps so far, live while it works.

    htmx polling (the fallback when the WebSocket is not available) gets the progress
    partial only."""
    deployment = _deployment_or_404(deployment_id)
    context = _progress_context(deployment)
    if request.htmx:
        # the progress section, and the page's buttons out of band (Remove appears at the end)
        return render(request, "marketplace/_progress_polled.html", context)
    context["pooled_databases"] = pooled_databases_for_deployment(deployment)
    context["settings_form"] = _settings_form(deployment)
    context.update(_sign_in_context(request, deployment))
    return render(request, "marketplace/deployment_detail.html", context)


def _settings_form(deployment: Deployment, data=None) -> SettingsForm | None:
    """The "Settings" form of an installed app whose recipe is in the catalog."""
    if deployment.status not in INSTALLED_STATUSES:
        return None
    try:
        recipe = load_catalog().get(deployment.slug)
    except RecipeNotFound:
        return None
    return SettingsForm(data, recipe=recipe, config=deployment.config)


@require_http_methods(["GET", "POST"])
def deployment_settings(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """Change an app's settings: the deploy wizard's boxes with what the app has now;
    "Apply" starts an `app.reconfigure` job and the job's page follows it. A bad value
    comes back beside its box, in the box's own words."""
    deployment = _deployment_or_404(deployment_id)
    form = _settings_form(deployment, request.POST if request.method == "POST" else None)
    if form is None:
        messages.error(
            request,
            f"The settings of {deployment.app_name} cannot be changed while it is "
            f"{deployment.get_status_display().lower()}.",
        )
        return redirect("deployment_detail", deployment_id=deployment.pk)
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            try:
                job = services.deployment_reconfigure(
                    deployment=deployment, config=form.config(), user=request.user
                )
            except HomelabError as exc:
                form.add_service_error(getattr(exc, "field", "") or "", exc.message)
                status = exc.code if exc.code == 409 else 422
            else:
                messages.info(
                    request,
                    f"Changing the settings of {deployment.app_name}… Its steps follow here; "
                    "if the new settings do not work, the previous ones are put back.",
                )
                return redirect("job_detail", job_id=job.pk)
    return render(
        request,
        "marketplace/deployment_settings.html",
        {"deployment": deployment, "settings_form": form},
        status=status,
    )


def _working_job(deployment: Deployment):
    """The job working on the deployment now (a stop, a removal), for "Stopping… (see
    Activity)" in place of the buttons; None when it is idle."""
    return (
        services.deployment_jobs(deployment.pk)
        .filter(status__in=tuple(LIVE_JOB_STATUSES))
        .exclude(kind="app.deploy")
        .first()
    )
def _sign_in_context(request: HttpRequest, deployment: Deployment, **extra) -> dict:
    """The "Sign-in details" panel: for admins, on an app whose recipe names a login."""
    if not sign_in.can_reveal(request.user) or not sign_in.has_sign_in(deployment):
        return {"sign_in_panel": False}
    return {
        "sign_in_panel": deployment.status
        in (DeploymentStatus.RUNNING, DeploymentStatus.STOPPED),
        "sign_in_reveals": sign_in.recent_reveals(deployment),
        **extra,
    }


@require_POST
def deployment_sign_in(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """ "Show sign-in details": the app's generated login, after the person's own password.

    Admins only (403 otherwise). Shown in this one answer (never cached) and gone on
    reload; each attempt is recorded in the app's history, without the value."""
    deployment = _deployment_or_404(deployment_id)
    if not sign_in.can_reveal(request.user) or not sign_in.has_sign_in(deployment):
        raise PermissionDenied("Only an administrator may see an app's sign-in details.")
    status, extra = 200, {}
    try:
        extra["sign_in_details"] = sign_in.sign_in_reveal(
            deployment=deployment, user=request.user, password=request.POST.get("password", "")
        )
    except sign_in.SignInRefused as exc:
        status = 429 if exc.limited else 422
        extra["sign_in_error"] = exc.message
    context = {"deployment": deployment, **_sign_in_context(request, deployment, **extra)}
    context["sign_in_panel"] = True
    if request.htmx:
        response = render(request, "marketplace/_sign_in.html", context, status=status)
    else:
        context.update(_progress_context(deployment))
        context["pooled_databases"] = pooled_databases_for_deployment(deployment)
        response = render(request, "marketplace/deployment_detail.html", context, status=status)
    add_never_cache_headers(response)
    return response


def deployment_list(request: HttpRequest) -> HttpResponse:
    devices = list(Device.objects.order_by("name"))
    categories = load_catalog().categories
    form = DeploymentFilterForm(request.GET or None, devices=devices, categories=categories)
    filters = form.cleaned_data if form.is_valid() else {}
    deployments = selectors.deployments_list(
        device_id=filters.get("device"),
        status=filters.get("status") or None,
        category=filters.get("category") or None,
    )
    context = {"form": form, "deployments": list(deployments), "filtered": bool(request.GET)}
    if request.htmx:
        return render(request, "marketplace/_deployment_rows.html", context)
    return render(request, "marketplace/deployment_list.html", context)


ACTIONS = {
    "start": (services.deployment_start, "Starting {app}…"),
    "stop": (services.deployment_stop, "Stopping {app}…"),
    "restart": (services.deployment_restart, "Restarting {app}…"),
}


@require_POST
def deployment_action(request: HttpRequest, deployment_id: int, action: str) -> HttpResponse:
    """Start, stop or restart: the job starts at once and the page follows it live (the
    job's page in Activity; the app's page says it is working and hides its buttons)."""
    deployment = _deployment_or_404(deployment_id)
    if action not in ACTIONS:
        raise Http404("Unknown action.")
    service, doing = ACTIONS[action]
    try:
        job = service(deployment=deployment, user=request.user)
    except HomelabError as exc:
        show_error(request, exc)
        return redirect(_next(request, reverse("deployment_list")))
    messages.info(request, doing.format(app=deployment.app_name) + " Its steps follow here.")
    return redirect("job_detail", job_id=job.pk)


def _next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or ""
    return target if target.startswith("/") and not target.startswith("//") else default


@require_http_methods(["GET", "POST"])
def deployment_remove(request: HttpRequest, deployment_id: int) -> HttpResponse:
    deployment = _deployment_or_404(deployment_id)
    form = RemoveForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        delete_data = form.cleaned_data["data"] == "delete"
        try:
            job = services.deployment_remove(
                deployment=deployment,
                delete_data=delete_data,
                keep_shared_servers=form.cleaned_data["keep_shared_servers"],
                user=request.user,
            )
        except HomelabError as exc:
            show_error(request, exc)
            return redirect("deployment_detail", deployment_id=deployment.pk)
        if job is None:  # removed already
            return redirect("deployment_list")
        messages.info(
            request,
            f"Removing {deployment.app_name} from {deployment.device.name}"
            + (" with its data" if delete_data else "; its data is kept")
            + "… Its steps follow here.",
        )
        return redirect("job_detail", job_id=job.pk)

    return render(
        request,
        "marketplace/deployment_remove.html",
        {
            "deployment": deployment,
            "form": form,
            "last_on": shared_instances_left_empty(deployment),
        },
    )


def deployment_usage(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """Memory and CPU right now (a fragment the deployment page loads lazily)."""
    deployment = _deployment_or_404(deployment_id)
    try:
        context = {"usage": read_usage(deployment=deployment)}
    except HomelabError as exc:
        # 200: htmx swaps only 2xx answers, and this panel refreshes itself every 30 s
        context = {"error": exc.sentence()}
    return render(request, "marketplace/_usage.html", context)


def deployment_logs(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """The app's last log lines; "Follow" refreshes them every 2 s (htmx)."""
    deployment = _deployment_or_404(deployment_id)
    follow = request.GET.get("follow") == "1"
    error = ""
    logs = ""
    try:
        logs = services.deployment_logs(deployment=deployment, tail=200)
    except services.DeploymentError as exc:
        error = exc.message
    context = {"deployment": deployment, "logs": logs, "error": error, "follow": follow}
    if request.htmx:
        return render(request, "marketplace/_logs.html", context)
    return render(request, "marketplace/deployment_logs.html", context)


def deployment_debug(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """ "What I did" (advanced): the compose file, every command, every step and undo."""
    deployment = _deployment_or_404(deployment_id)
    return render(
        request,
        "marketplace/deployment_debug.html",
        {
            "deployment": deployment,
            "steps": list(deployment.steps.all()),
            "commands": list(deployment.commands.all()),
        },
    )

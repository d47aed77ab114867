"""Pages about devices: the dashboard, the add-device wizard, the list and each device.

Views are doors: they read the form, call one service from devices.services (or a
selector), and render. htmx requests get the part of the page they asked for; everything
else gets the whole page, so each page also works as a plain form post.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap

from devices import groups, history, hooks, services
from devices.discovery import discovery_scan, suggest_local_cidr
from devices.forms import DeviceEditForm, DeviceWizardForm, ScanForm
from devices.models import Device, DeviceGroup, DeviceStatus
from devices.selectors import (
    dashboard_cards,
    device_health,
    device_history,
    resources_summary,
    running_out_of,
    totals_heading,
)
from devices.services import DeviceError
from devices.status import status_help
from homelab.core.web import show_error

logger = logging.getLogger(__name__)


UNEXPECTED_FIXES = [
    "Try again in a moment.",
    "If it keeps happening, the server's log has the details for whoever looks after it.",
]


def _unexpected(action: str) -> DeviceError:
    return DeviceError(
        f"Something unexpected went wrong while {action}. Nothing was changed.",
        device_status="error",
        fixes=UNEXPECTED_FIXES,
    )


# --- Dashboard -----------------------------------------------------------------------


def dashboard(request: HttpRequest) -> HttpResponse:
    """ "Your Homelab": the pooled resources and a health card per device.

    The live part re-fetches itself every few seconds with htmx; that request gets only
    the live partial from this same view.
    """
    devices = list(Device.objects.all())
    context = {
        "devices": dashboard_cards(devices),
        "summary": resources_summary() if devices else None,
        "totals_heading": totals_heading(devices),
        "updated": timezone.now(),
    }
    if request.htmx:
        return render(request, "devices/_dashboard_live.html", context)
    # "Looking ahead" reads history: once per page load, not on every live refresh.
    context["forecasts"] = history.homelab_forecasts() if devices else []
    return render(request, "devices/dashboard.html", context)


# --- Add-device wizard ---------------------------------------------------------------


def _wizard_context(request: HttpRequest, **extra) -> dict:
    context = {
        "scan_form": ScanForm(initial={"cidr": _suggested_cidr()}),
        "step": 1,
    }
    context.update(extra)
    return context


def _suggested_cidr() -> str:
    try:
        return suggest_local_cidr()
    except Exception:  # a guess only; the person can type their own
        logger.warning("Could not suggest a network to scan", exc_info=True)
        return ""


def _device_found(check, error: DeviceError | None) -> bool:
    """Whether the device answered at the address given (the wizard's first step done)."""
    if check is not None:
        return any(step.key == "connect" and step.ok for step in check.steps)
    # Only these answers come from the device itself; invalid input, a name in use or a
    # silent address mean nothing was found yet.
    return error is not None and error.device_status in (
        DeviceStatus.AUTH_FAILED,
        DeviceStatus.HOST_KEY_CHANGED,
        DeviceStatus.DOCKER_MISSING,
    )


@require_http_methods(["GET", "POST"])
def device_add(request: HttpRequest) -> HttpResponse:
    """Add a device in steps: find it, test the connection, add it, done.

    1. GET shows the empty form (the address may come from a scan result in ?address=).
    2. POST with action=test checks the form and calls device_test_connection; the
       answer lists each requirement as passed or failed with fixes.
    3. POST with action=save calls device_add; success leads to the "ready" page.
    The password lives only in the POST it arrives in: the form never writes it back,
    and with htmx only the results area is replaced, so the person's own password field
    still holds it for the next step.
    """
    if request.method == "GET":
        initial = {"port": 22}
        if request.GET.get("address"):
            initial["address"] = request.GET["address"]
        if request.GET.get("port", "").isdigit():
            initial["port"] = int(request.GET["port"])
        form = DeviceWizardForm(initial=initial)
        return render(request, "devices/add.html", _wizard_context(request, form=form))

    action = "save" if request.POST.get("action") == "save" else "test"
    form = DeviceWizardForm(request.POST, action=action)
    check = None
    error = None
    if form.is_valid():
        kwargs = form.service_kwargs()
        try:
            if action == "test":
                check = services.device_test_connection(**kwargs)
            else:
                device = services.device_add(**kwargs)
        except DeviceError as exc:
            error = exc
        except Exception:
            logger.exception("Adding a device failed unexpectedly")
            error = _unexpected("talking to the device")
        else:
            if action == "save":
                url = reverse("device_ready", args=[device.pk])
                if request.htmx:
                    return HttpResponseClientRedirect(url)
                return redirect(url)
        if error is not None and error.field in form.fields:
            form.add_error(error.field, error.message)

    had_password = bool(request.POST.get("password"))
    retype_password = had_password and (
        not request.htmx
        or (
            error is not None
            and (error.device_status == DeviceStatus.AUTH_FAILED or error.field == "password")
        )
    )
    if check is not None and check.ok:
        step = 3
    elif _device_found(check, error):
        step = 2
    else:
        step = 1  # "Find your device" is not done until something answered there
    context = _wizard_context(
        request,
        form=form,
        check=check,
        error=error,
        action=action,
        step=step,
        retype_password=retype_password,
    )
    if request.htmx:
        response = render(request, "devices/_wizard_result.html", context)
        # Bring what changed into view: the fields when they need fixing, else the results.
        if check is None and error is None:
            return reswap(response, "innerHTML show:#wizard-form:top")
        return reswap(response, "innerHTML show:#check-results:top")
    return render(request, "devices/add.html", context)


@require_POST
def device_scan(request: HttpRequest) -> HttpResponse:
    """Look for devices that answer a login on a network (step 1's "Scan my network")."""
    scan_form = ScanForm(request.POST)
    candidates = None
    scan_error = None
    if scan_form.is_valid():
        try:
            candidates = discovery_scan(
                cidr=scan_form.cleaned_data["cidr"],
                confirm_public=scan_form.cleaned_data.get("confirm_public", False),
                who=f"user:{request.user.pk}",
            )
        except DeviceError as exc:
            scan_error = exc
        except Exception:
            logger.exception("Network scan failed unexpectedly")
            scan_error = _unexpected("searching the network")
    context = {
        "scan_form": scan_form,
        "candidates": candidates,
        "scan_error": scan_error,
        "scanned": scan_form.is_valid(),
    }
    if request.htmx:
        return render(request, "devices/_scan_results.html", context)
    context.update(form=DeviceWizardForm(initial={"port": 22}), step=1)
    return render(request, "devices/add.html", context)


def device_ready(request: HttpRequest, pk: int) -> HttpResponse:
    """Step 4: the device was added; what it brings and what to do next."""
    device = get_object_or_404(Device, pk=pk)
    return render(request, "devices/ready.html", {"device": device, "step": 4})


# --- List and detail -----------------------------------------------------------------


def device_list(request: HttpRequest) -> HttpResponse:
    devices = list(Device.objects.all())
    for device in devices:
        device.health = device_health(device)
    return render(request, "devices/list.html", {"devices": devices})


def device_detail(request: HttpRequest, pk: int) -> HttpResponse:
    device = get_object_or_404(Device, pk=pk)
    apps = hooks.apps_on_devices([device.pk]).get(device.pk, [])
    context = {
        "device": device,
        "health": device_health(device),
        "help": status_help(device),
        "running_out_of": running_out_of(device),
        "history": device_history(device),
        "identity_changed": device.status == DeviceStatus.HOST_KEY_CHANGED,
        "apps": apps,
        "apps_running": sum(1 for app in apps if app.running),
        "forecasts": history.device_forecasts(device),
        "history_ranges": list(history.RANGES),
        "chart_points": history.history_points(device, range_name="24h"),
    }
    return render(request, "devices/detail.html", context)


@require_POST
def device_check(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Check now": poll the device at once and say what we found."""
    device = get_object_or_404(Device, pk=pk)
    try:
        device = services.device_poll(device_id=device.pk)
    except DeviceError as exc:
        show_error(request, exc)
    except Exception:
        logger.exception("Checking device %s failed unexpectedly", device.pk)
        messages.error(request, _unexpected("checking the device").message)
    else:
        if device.status == DeviceStatus.ONLINE:
            messages.success(request, f"{device.name} answered just now and is working.")
        else:
            help_words = status_help(device)
            messages.warning(
                request, f"{device.name}: {help_words['title']}. See below for what to do."
            )
    return redirect("device_detail", pk=device.pk)


@require_POST
def device_trust_host_key(request: HttpRequest, pk: int) -> HttpResponse:
    """The person says the device was replaced or reinstalled: trust its new identity."""
    device = get_object_or_404(Device, pk=pk)
    try:
        services.device_accept_host_key(device=device, fingerprint=request.POST.get("fingerprint", ""))
    except DeviceError as exc:
        show_error(request, exc)
    except Exception:
        logger.exception("Accepting the new host key of device %s failed", device.pk)
        messages.error(request, _unexpected("trusting the new identity").message)
    else:
        messages.success(
            request,
            f"{device.name}'s new identity is trusted. We'll keep checking that it stays the same.",
        )
    return redirect("device_detail", pk=device.pk)


@require_http_methods(["GET", "POST"])
def device_edit(request: HttpRequest, pk: int) -> HttpResponse:
    device = get_object_or_404(Device, pk=pk)
    form = DeviceEditForm(request.POST or None, instance=Device.objects.get(pk=pk))
    if request.method == "POST" and form.is_valid():
        changes = form.changes()
        if not changes:
            messages.info(request, "Nothing was changed.")
            return redirect("device_detail", pk=device.pk)
        try:
            services.device_update(device=device, **changes)
        except DeviceError as exc:
            show_error(request, exc, form=form, with_fixes=False)
            return render(
                request, "devices/edit.html", {"device": device, "form": form, "error": exc}
            )
        except Exception:
            logger.exception("Editing device %s failed unexpectedly", device.pk)
            form.add_error(None, _unexpected("saving your changes").message)
        else:
            messages.success(
                request, f"Saved your changes to {form.cleaned_data.get('name', device.name)}."
            )
            return redirect("device_detail", pk=device.pk)
    return render(request, "devices/edit.html", {"device": device, "form": form})


@require_http_methods(["GET", "POST"])
def device_remove(request: HttpRequest, pk: int) -> HttpResponse:
    device = get_object_or_404(Device, pk=pk)
    if request.method == "POST":
        name = device.name
        try:
            services.device_remove(device=device)
        except DeviceError as exc:
            show_error(request, exc)
            return redirect("device_detail", pk=pk)
        messages.success(request, f"{name} was removed from your homelab.")
        return redirect("device_list")
    return render(request, "devices/remove.html", {"device": device})


# --- Groups --------------------------------------------------------------------------


def _device_ids(request: HttpRequest) -> list[int]:
    return [int(value) for value in request.POST.getlist("device_ids") if value.isdigit()]


def _group_form_context(**extra) -> dict:
    context = {"all_devices": list(Device.objects.all()), "chosen": set(), "error": None}
    context.update(extra)
    return context


@require_http_methods(["GET", "POST"])
def group_list(request: HttpRequest) -> HttpResponse:
    """The groups, each with its members and pool; a form to make a new one (POST)."""
    context = _group_form_context(form_values={"name": "", "description": ""})
    if request.method == "POST":
        values = {"name": request.POST.get("name", ""), "description": request.POST.get("description", "")}
        chosen = _device_ids(request)
        try:
            group = groups.group_create(
                name=values["name"], description=values["description"], device_ids=chosen
            )
        except groups.GroupError as exc:
            context.update(form_values=values, chosen=set(chosen), error=exc)
        else:
            messages.success(
                request,
                f"Made the group {group.name} with {group.devices.count()} device"
                f"{'' if group.devices.count() == 1 else 's'}.",
            )
            return redirect("group_detail", pk=group.pk)
    context["groups"] = groups.groups_overview()
    return render(request, "devices/groups.html", context)


def group_detail(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(DeviceGroup, pk=pk)
    return render(request, "devices/group_detail.html", groups.group_page(group))


@require_http_methods(["GET", "POST"])
def group_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Rename the group, describe it, choose its members."""
    group = get_object_or_404(DeviceGroup, pk=pk)
    values = {"name": group.name, "description": group.description}
    chosen = set(group.devices.values_list("pk", flat=True))
    error = None
    if request.method == "POST":
        values = {"name": request.POST.get("name", ""), "description": request.POST.get("description", "")}
        chosen = set(_device_ids(request))
        try:
            groups.group_update(
                group=group, name=values["name"], description=values["description"], device_ids=chosen
            )
        except groups.GroupError as exc:
            error = exc
            group.refresh_from_db()
        else:
            messages.success(request, f"Saved the group {group.name}.")
            return redirect("group_detail", pk=group.pk)
    return render(
        request,
        "devices/group_edit.html",
        _group_form_context(group=group, form_values=values, chosen=chosen, error=error),
    )


@require_http_methods(["GET", "POST"])
def group_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks "are you sure?"; POST deletes the group (its devices stay)."""
    group = get_object_or_404(DeviceGroup, pk=pk)
    if request.method == "POST":
        name = group.name
        groups.group_delete(group=group)
        messages.success(request, f"Deleted the group {name}. Its devices are still in your homelab.")
        return redirect("group_list")
    return render(request, "devices/group_delete.html", {"group": group, "members": group.devices.count()})

"""Pages about devices: the dashboard, the add-device wizard, the list and each device.

Views are doors: they read the form, call one service from devices.services (or a
selector), and render. htmx requests get the part of the page they asked for; everything
else gets the whole page, so each page also works as a plain form post.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap

from devices import hooks, services
from devices.discovery import discovery_scan, suggest_local_cidr
from devices.forms import DeviceEditForm, DeviceWizardForm, ScanForm
from devices.models import Device, DeviceMetric, DeviceStatus
from devices.selectors import device_health, resources_summary
from devices.services import DeviceError
from devices.status import status_help

logger = logging.getLogger(__name__)

HEALTH_ORDER = {"red": 0, "yellow": 1, "green": 2}
HISTORY_HOURS = 6

UNEXPECTED_FIXES = [
    "Try again in a moment.",
    "If it keeps happening, the server's log has the details for whoever looks after it.",
]


def _unexpected(action: str) -> DeviceError:
    return DeviceError(
        f"Something unexpected went wrong while {action}. Nothing was changed.",
        status="error",
        fixes=UNEXPECTED_FIXES,
    )


# --- Dashboard -----------------------------------------------------------------------


def _running_out_of(device: Device) -> list[str]:
    """What an online device has less than 10 % left of, in words."""
    if not device.is_online:
        return []
    return [
        part
        for part, pct in (
            ("memory", device.ram_percent),
            ("storage", device.storage_percent),
            ("processor time", device.cpu_usage_percent),
        )
        if pct is not None and pct > 90
    ]


def _device_cards(devices: list[Device]) -> list[Device]:
    """Each device with its health colour, status words and apps; overloaded ones first."""
    apps = hooks.apps_on_devices([device.pk for device in devices])
    for device in devices:
        device.apps = apps.get(device.pk, [])
        device.health = device_health(device)
        device.help = None if device.status == DeviceStatus.ONLINE else status_help(device)
        device.running_out_of = _running_out_of(device)
    return sorted(devices, key=lambda d: (HEALTH_ORDER.get(d.health, 3), d.name.lower()))


def _ago(moment) -> str:
    """ "5 min ago", "3 h ago", "2 days ago", "just now"."""
    seconds = max(0, int((timezone.now() - moment).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    days = seconds // 86400
    return f"{days} day{'s' if days != 1 else ''} ago"


def _totals_heading(devices: list[Device]) -> str:
    """What the totals count: "Total resources across 2 online devices (lab-pi offline,
    last seen 5 min ago)". The totals leave out devices that are not online, so say so."""
    online = [d for d in devices if d.status == DeviceStatus.ONLINE]
    others = sorted((d for d in devices if d.status != DeviceStatus.ONLINE), key=lambda d: d.name)
    count = len(online)
    heading = f"Total resources across {count} {'online ' if others else ''}device{'' if count == 1 else 's'}"
    if not others:
        return heading
    notes = []
    for device in others:
        note = f"{device.name} {device.get_status_display().lower()}"
        if device.last_seen:
            note += f", last seen {_ago(device.last_seen)}"
        notes.append(note)
    return f"{heading} ({'; '.join(notes)})"


def dashboard(request: HttpRequest) -> HttpResponse:
    """ "Your Homelab": the pooled resources and a health card per device.

    The live part re-fetches itself every few seconds with htmx; that request gets only
    the live partial from this same view.
    """
    devices = list(Device.objects.all())
    context = {
        "devices": _device_cards(devices),
        "summary": resources_summary() if devices else None,
        "totals_heading": _totals_heading(devices),
        "updated": timezone.now(),
    }
    if request.htmx:
        return render(request, "devices/_dashboard_live.html", context)
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
            and (error.status == DeviceStatus.AUTH_FAILED or error.field == "password")
        )
    )
    if check is not None and check.ok:
        step = 3
    elif check is not None or error is not None:
        step = 2
    else:
        step = 1
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
            candidates = discovery_scan(cidr=scan_form.cleaned_data["cidr"])
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


def _history(device: Device) -> dict:
    since = timezone.now() - timedelta(hours=HISTORY_HOURS)
    rows = list(
        DeviceMetric.objects.filter(device=device, time__gte=since)
        .order_by("time")
        .values("time", "online", "ram_total_bytes", "ram_used_bytes", "cpu_usage_percent")
    )
    # Keep the sparkline light: at most ~120 points, evenly picked.
    stride = max(1, len(rows) // 120)
    sampled = rows[::stride]
    ram = [
        100.0 * r["ram_used_bytes"] / r["ram_total_bytes"]
        if r["online"] and r["ram_total_bytes"] and r["ram_used_bytes"] is not None
        else None
        for r in sampled
    ]
    cpu = [r["cpu_usage_percent"] if r["online"] else None for r in sampled]
    recent = list(reversed(rows[-12:]))
    for row in recent:
        row["ram_percent"] = (
            100.0 * row["ram_used_bytes"] / row["ram_total_bytes"]
            if row["ram_total_bytes"] and row["ram_used_bytes"] is not None
            else None
        )
    online = sum(1 for r in rows if r["online"])
    return {
        "ram_series": ram,
        "cpu_series": cpu,
        "series_times": [r["time"] for r in sampled],
        "recent": recent,
        "count": len(rows),
        "availability_percent": 100.0 * online / len(rows) if rows else None,
        "hours": HISTORY_HOURS,
    }


def device_detail(request: HttpRequest, pk: int) -> HttpResponse:
    device = get_object_or_404(Device, pk=pk)
    apps = hooks.apps_on_devices([device.pk]).get(device.pk, [])
    context = {
        "device": device,
        "health": device_health(device),
        "help": status_help(device),
        "running_out_of": _running_out_of(device),
        "history": _history(device),
        "identity_changed": device.status == DeviceStatus.HOST_KEY_CHANGED,
        "apps": apps,
        "apps_running": sum(1 for app in apps if app.running),
    }
    return render(request, "devices/detail.html", context)


@require_POST
def device_check(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Check now": poll the device at once and say what we found."""
    device = get_object_or_404(Device, pk=pk)
    try:
        device = services.device_poll(device_id=device.pk)
    except DeviceError as exc:
        messages.error(request, f"{exc.message} {' '.join(exc.fixes)}".strip())
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
        services.device_accept_host_key(device=device)
    except DeviceError as exc:
        messages.error(request, f"{exc.message} {' '.join(exc.fixes)}".strip())
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
            if exc.field in form.fields:
                form.add_error(exc.field, exc.message)
            else:
                form.add_error(None, exc.message)
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
            messages.error(request, f"{exc.message} {' '.join(exc.fixes)}".strip())
            return redirect("device_detail", pk=pk)
        messages.success(request, f"{name} was removed from your homelab.")
        return redirect("device_list")
    return render(request, "devices/remove.html", {"device": device})

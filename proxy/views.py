"""Settings -> App addresses: the home domain, the front-door device, the CA to trust, and
every app's name with the DNS record it needs."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from homelab.core.errors import HomelabError
from homelab.core.web import show_error
from proxy import services
from proxy.ca import certificate_summary
from proxy.forms import AppNameForm, ProxySettingsForm


def app_addresses(request: HttpRequest) -> HttpResponse:
    row = services.proxy_settings()
    devices = services.front_door_device_choices()
    form = ProxySettingsForm(
        initial={"domain": row.domain, "device": row.device_id or "", "mode": row.mode},
        devices=devices,
    )
    rename = None
    status = 200
    if request.method == "POST" and request.POST.get("action") == "rename":
        rename = AppNameForm(request.POST)
        if rename.is_valid():
            try:
                name = services.app_name_set(
                    deployment_id=rename.cleaned_data["deployment_id"],
                    hostname=rename.cleaned_data["hostname"],
                )
            except HomelabError as error:
                status = show_error(request, error, form=rename)
            else:
                messages.success(request, f"{name.deployment.app_name} is now at {name.url}.")
                return redirect("app_addresses")
        else:
            status = 422
    elif request.method == "POST":
        form = ProxySettingsForm(request.POST, devices=devices)
        if form.is_valid():
            try:
                services.proxy_settings_save(
                    domain=form.cleaned_data["domain"],
                    device_id=form.cleaned_data["device"],
                    mode=form.cleaned_data["mode"],
                )
            except HomelabError as error:
                status = show_error(request, error, form=form)
            else:
                messages.success(request, "Saved the app addresses settings.")
                return redirect("app_addresses")
        else:
            status = 422
    row = services.proxy_settings()
    authority = (
        services.certificate_authority()
    )  # made the first time: there is always one to trust
    checks = services.name_checks()
    context = {
        "current": "app_addresses",
        "form": form,
        "rename": rename,
        "settings": row,
        "checks": checks,
        "hosts_line": services.hosts_file_line(),
        "ca": certificate_summary(authority.certificate_pem),
        "always_on_suggestion": next((d for d in devices if d.always_on), None),
    }
    return render(request, "proxy/app_addresses.html", context, status=status)

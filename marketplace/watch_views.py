"""Doors of the watch (issue 20): an app's watch settings, the notifications page."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from marketplace import notify, watch
from marketplace.models import Deployment


class WatchSettingsForm(forms.Form):
    auto_restart = forms.BooleanField(required=False, label="Restart it automatically")
    health_check_minutes = forms.IntegerField(
        min_value=1, max_value=1440, label="Check that it answers every (minutes)"
    )


class NotificationsForm(forms.Form):
    apprise_urls = forms.CharField(
        required=False,
        label="Where to send notifications",
        help_text="One apprise address a line, for example ntfys://ntfy.sh/my-topic, "
        "tgram://bot-token/chat-id or mailtos://user:password@example.com.",
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off"}),
    )


@require_POST
def deployment_watch_settings(request: HttpRequest, deployment_id: int) -> HttpResponse:
    deployment = Deployment.objects.filter(pk=deployment_id).first()
    if deployment is None:
        raise Http404(f"There is no deployment {deployment_id}.")
    form = WatchSettingsForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Please give the minutes between checks as 1 to 1440.")
    else:
        watch.deployment_watch_settings_save(
            deployment=deployment,
            auto_restart=form.cleaned_data["auto_restart"],
            health_check_minutes=form.cleaned_data["health_check_minutes"],
        )
        messages.success(request, "Saved how this app is watched.")
    return redirect("deployment_detail", deployment_id)


def notifications(request: HttpRequest) -> HttpResponse:
    """Apprise addresses (never shown back: they hold passwords) and "Send a test"."""
    row = notify.notification_settings()
    form = NotificationsForm()
    if request.method == "POST" and "test" in request.POST:
        sent, message = notify.send_test()
        (messages.success if sent else messages.error)(request, message)
        return redirect("notifications")
    if request.method == "POST":
        form = NotificationsForm(request.POST)
        if form.is_valid():
            try:
                notify.notification_settings_save(apprise_urls=form.cleaned_data["apprise_urls"])
            except ValueError as exc:
                form.add_error("apprise_urls", str(exc))
            else:
                messages.success(request, "Saved where notifications go.")
                return redirect("notifications")
    response = render(
        request, "marketplace/notifications.html", {"form": form, "count": len(row.urls())}
    )
    response["Cache-Control"] = "no-store"
    return response

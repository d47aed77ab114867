from __future__ import annotations

from django import forms

from proxy.models import ProxyMode
from proxy.names import domain_problem, hostname_problem


class ProxySettingsForm(forms.Form):
    domain = forms.CharField(
        max_length=253,
        strip=False,
        help_text="home.arpa is the name reserved for home networks; or a domain you own.",
    )
    device = forms.TypedChoiceField(
        coerce=int,
        empty_value=None,
        required=False,
        label="Front-door device",
        help_text="The device that answers for every app's name. An always-on one is best.",
    )
    mode = forms.ChoiceField(
        choices=ProxyMode.choices,
        label="Certificates",
        help_text="Publicly trusted certificates for your own domain are still to come.",
    )

    def __init__(self, *args, devices=(), **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "None yet")]
        for device in devices:
            notes = [] if device.always_on else ["not always on"]
            if device.status != "online":
                notes.append(device.get_status_display().lower())
            label = f"{device.name} ({device.address})"
            choices.append((str(device.pk), f"{label}: {', '.join(notes)}" if notes else label))
        self.fields["device"].choices = choices

    def clean_domain(self) -> str:
        value = self.cleaned_data["domain"]
        problem = domain_problem(value)
        if problem:
            raise forms.ValidationError(problem)
        return value


class AppNameForm(forms.Form):
    deployment_id = forms.IntegerField(widget=forms.HiddenInput)
    hostname = forms.CharField(max_length=253, required=False, strip=False, label="Name")

    def clean_hostname(self) -> str:
        value = self.cleaned_data["hostname"]
        problem = hostname_problem(value) if value else ""
        if problem:
            raise forms.ValidationError(problem)
        return value

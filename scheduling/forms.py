"""Forms for the placement pages: ad-hoc requirements and the policy switch."""

from __future__ import annotations

from django import forms

from scheduling import services
from scheduling.models import PlacementPolicy
from scheduling.scoring import GIB, MIB, AppRequirements

ARCH_CHOICES = [
    ("amd64", "amd64 (x86_64)"),
    ("arm64", "arm64 (aarch64)"),
    ("arm/v7", "arm/v7 (32-bit)"),
]

# Service field -> form field, so a service error lands on the right input.
_FIELD_NAMES = {
    "name": "name",
    "min_ram_bytes": "min_ram_mb",
    "recommended_ram_bytes": "recommended_ram_mb",
    "min_storage_bytes": "min_storage_gb",
    "recommended_storage_bytes": "recommended_storage_gb",
    "min_cpu_cores": "min_cpu_cores",
    "recommended_cpu_cores": "recommended_cpu_cores",
    "architectures": "architectures",
    "ports": "ports",
    "policy": "policy",
}


class PolicyForm(forms.Form):
    policy = forms.ChoiceField(choices=PlacementPolicy.choices, required=False)


class RequirementsForm(forms.Form):
    name = forms.CharField(max_length=100, initial="Custom app")
    min_ram_mb = forms.IntegerField(label="Minimum RAM (MB)", min_value=0, initial=512)
    recommended_ram_mb = forms.IntegerField(
        label="Recommended RAM (MB)",
        min_value=0,
        required=False,
        help_text="Leave empty to use the minimum.",
    )
    min_storage_gb = forms.FloatField(label="Minimum storage (GB)", min_value=0, initial=1)
    recommended_storage_gb = forms.FloatField(
        label="Recommended storage (GB)", min_value=0, required=False
    )
    min_cpu_cores = forms.FloatField(label="Minimum CPU cores", min_value=0, initial=0.5)
    recommended_cpu_cores = forms.FloatField(
        label="Recommended CPU cores", min_value=0, required=False
    )
    architectures = forms.MultipleChoiceField(
        choices=ARCH_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave all unticked when the app runs anywhere.",
    )
    ports = forms.CharField(
        required=False,
        max_length=200,
        help_text="Ports the app needs on the device, e.g. 8080, 8443.",
    )
    always_on = forms.BooleanField(required=False, label="Should run all the time")
    policy = forms.ChoiceField(choices=PlacementPolicy.choices, required=False)

    def clean_ports(self) -> list[int]:
        text = self.cleaned_data.get("ports") or ""
        ports = []
        for part in text.replace(";", ",").split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isdigit() or not 1 <= int(part) <= 65535:
                raise forms.ValidationError(
                    f"{part!r} is not a port; use numbers from 1 to 65535 separated by commas."
                )
            ports.append(int(part))
        return ports

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            cleaned["requirements"] = services.requirements_build(
                name=cleaned["name"],
                min_ram_bytes=cleaned["min_ram_mb"] * MIB,
                recommended_ram_bytes=_scaled(cleaned.get("recommended_ram_mb"), MIB),
                min_storage_bytes=int(cleaned["min_storage_gb"] * GIB),
                recommended_storage_bytes=_scaled(cleaned.get("recommended_storage_gb"), GIB),
                min_cpu_cores=cleaned["min_cpu_cores"],
                recommended_cpu_cores=cleaned.get("recommended_cpu_cores"),
                architectures=cleaned.get("architectures") or [],
                ports=cleaned.get("ports") or [],
                always_on=cleaned.get("always_on", False),
            )
        except services.PlacementError as exc:
            field = _FIELD_NAMES.get(exc.field.split(".")[0])
            message = exc.message.split(": ", 1)[-1]
            if field and "bytes" in exc.field and "minimum" in message.lower():
                message = "Must be at least the minimum."
            self.add_error(field, message)
        return cleaned

    @property
    def requirements(self) -> AppRequirements:
        return self.cleaned_data["requirements"]


def _scaled(value: float | None, unit: int) -> int | None:
    return None if value is None else int(value * unit)

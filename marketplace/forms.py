"""Forms for the catalog and the deploy wizard. They parse input only; services decide."""

from __future__ import annotations

import re

from django import forms

from marketplace.compose import ENV_NAME_RE
from marketplace.models import DeploymentStatus
from marketplace.recipes import Recipe
from pooling import engines


class CatalogFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=100)
    category = forms.ChoiceField(required=False, label="Category")

    def __init__(self, *args, categories: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [("", "All categories")] + [
            (c, c.replace("-", " ").capitalize()) for c in categories
        ]


def shared_database_labels(recipe: Recipe) -> list[str]:
    """The shared servers ("PostgreSQL", "Redis") the recipe's app would use on a device."""
    return [
        engines.LABELS[engines.MANIFEST_ENGINES[need.engine]]
        for need in recipe.manifest.requires_database
        if engines.manifest_need_poolable(need)[0]
    ]


DEVICE_LABEL = "Device"
INSTANCE_LABEL = "Name of this copy"
ENV_LABEL = "Extra settings (environment variables)"
MEMORY_LABEL = "Memory limit (MB)"


class DeployForm(forms.Form):
    """Where to deploy and, optionally, host ports and extra environment variables.

    The host ports are plain whole numbers here: the range and conflicts are checked by
    `deployment_create`, whose errors come back to the field they name.
    """

    device_id = forms.TypedChoiceField(coerce=int, required=False, label=DEVICE_LABEL)
    instance = forms.CharField(
        required=False,
        max_length=31,
        label=INSTANCE_LABEL,
        initial="default",
        help_text="Change it only to run a second copy of the app (for example 'family').",
    )
    env = forms.CharField(
        required=False,
        label=ENV_LABEL,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "NAME=value, one a line"}),
        help_text="One NAME=value a line. Leave empty unless the app's documentation asks for one.",
    )

    memory_limit_mb = forms.IntegerField(
        required=False,
        label=MEMORY_LABEL,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "placeholder": "no limit"}),
    )

    def __init__(self, *args, recipe: Recipe, device_choices: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.recipe = recipe
        self.fields["memory_limit_mb"].help_text = (
            "The most memory this copy of the app may use, so it cannot crowd out the other "
            f"apps on its device. Leave empty for no limit; at least "
            f"{recipe.manifest.requirements.ram_min_mb} MB."
        )
        self.fields["device_id"].choices = [("", "Recommended"), *device_choices]
        shared = shared_database_labels(recipe)
        if shared:
            self.fields["bundled_databases"] = forms.BooleanField(
                required=False,
                label="Give this app its own database server",
                help_text=(
                    f"Instead of the shared {' and '.join(shared)} on the device: the app gets "
                    "the database server its makers bundle, which takes more memory. Choose it "
                    "only if the app's documentation asks for a particular database version."
                ),
            )
        for port in recipe.manifest.ports:
            self.fields[self.port_field(port.name)] = forms.IntegerField(
                required=False,
                label=port_label(port.name),
                initial=port.default_host_port,
                help_text=(
                    f"{port.meaning} Inside the app: {port.protocol.upper()} {port.container_port}."
                ),
                widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
            )

    @staticmethod
    def port_field(name: str) -> str:
        return f"port_{name}"

    def port_fields(self):
        return [self[self.port_field(p.name)] for p in self.recipe.manifest.ports]

    def clean_instance(self) -> str:
        # checked by deployment_create, which names the rule
        return (self.cleaned_data.get("instance") or "").strip() or "default"

    def clean_env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data.get("env", "").splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, value = line.partition("=")
            name = name.strip()
            if not sep:
                raise forms.ValidationError(
                    f"Line {number} has no '=': write it as NAME=value (for example TZ=Europe/Berlin)."
                )
            if not ENV_NAME_RE.match(name):
                raise forms.ValidationError(
                    f"Line {number}: {name!r} is not a valid name; use A-Z, 0-9 and '_' "
                    "and don't start with a digit."
                )
            env[name] = value
        return env

    def config(self) -> dict:
        """The config for deployment_create: only the ports that differ from the default."""
        ports = {}
        for port in self.recipe.manifest.ports:
            value = self.cleaned_data.get(self.port_field(port.name))
            if value is not None and value != port.default_host_port:
                ports[port.name] = value
        config: dict = {}
        if ports:
            config["ports"] = ports
        if self.cleaned_data.get("env"):
            config["env"] = self.cleaned_data["env"]
        if self.cleaned_data.get("memory_limit_mb") is not None:
            config["memory_limit_mb"] = self.cleaned_data["memory_limit_mb"]
        if self.cleaned_data.get("bundled_databases"):
            config["bundled_databases"] = True
        return config

    def add_service_error(self, field: str, message: str) -> None:
        """Put a DeploymentError next to the field it names, in the field's own words
        (config.ports.web -> the "Web port" box; instance -> "Name of this copy")."""
        target = wizard_field(self, field, message)
        if target is None:
            words = person_words(self, message)
            self.add_error(None, words[:1].upper() + words[1:])
            return
        name, label = target
        self.add_error(name, f"{label}: {person_words(self, message)}")


class SettingsForm(DeployForm):
    """A deployed app's settings: the deploy wizard's boxes for host ports and extra
    settings, filled in with what the app has now ("Apply": deployment_reconfigure)."""

    def __init__(self, *args, recipe: Recipe, config: dict, **kwargs):
        ports = (config or {}).get("ports") or {}
        env = (config or {}).get("env") or {}
        initial = {
            self.port_field(p.name): ports.get(p.name, p.default_host_port)
            for p in recipe.manifest.ports
        }
        initial["env"] = "\n".join(f"{name}={value}" for name, value in env.items())
        initial["memory_limit_mb"] = (config or {}).get("memory_limit_mb")
        super().__init__(*args, recipe=recipe, device_choices=[], initial=initial, **kwargs)
        # where the app runs, its name and its database server stay as deployed
        for name in ("device_id", "instance", "bundled_databases"):
            self.fields.pop(name, None)

    def add_service_error(self, field: str, message: str) -> None:
        target = wizard_field(self, field, message)
        if target is not None and target[0] not in self.fields:
            field = ""  # not a box of this form: shown above it
        super().add_service_error(field, message)


# The one place that knows which box of the wizard a service error's `field` means.
def wizard_field(form: DeployForm, field: str, message: str = "") -> tuple[str, str] | None:
    """(the form field's name, its label) for a DeploymentError's `field`, or None when
    the error concerns no single box (it is then shown above the form)."""
    if field.startswith("config.ports"):
        name = field.removeprefix("config.ports").lstrip(".")
        if not name:  # several ports: the first one the message names
            name = next(
                (p.name for p in form.recipe.manifest.ports if f"config.ports.{p.name}" in message),
                "",
            )
        if name and form.port_field(name) in form.fields:
            return form.port_field(name), port_label(name)
        return None
    if field.startswith("config.env"):
        return "env", ENV_LABEL
    if field == "config.memory_limit_mb" and "memory_limit_mb" in form.fields:
        return "memory_limit_mb", MEMORY_LABEL
    if field == "config.bundled_databases" and "bundled_databases" in form.fields:
        return "bundled_databases", str(form.fields["bundled_databases"].label)
    if field == "instance":
        return "instance", INSTANCE_LABEL
    if field == "device_id":
        return "device_id", DEVICE_LABEL
    return None


def person_words(form: DeployForm, message: str) -> str:
    """The service's message without its technical names: the leading "field: " goes,
    and config.ports.<name> becomes the box's label."""
    message = re.sub(r"^(config(\.[A-Za-z0-9_]+)*|instance|device_id|slug|status): ", "", message)
    for port in form.recipe.manifest.ports:
        message = message.replace(f"config.ports.{port.name}", f'"{port_label(port.name)}"')
    return message.replace("config.env", f'"{ENV_LABEL}"')


def port_label(name: str) -> str:
    """A port's box in the wizard: web -> "Web port", dns-udp -> "DNS UDP port"."""
    known = {"dns", "http", "https", "ssh", "smtp", "udp", "tcp", "ui", "api"}
    words = [w.upper() if w in known else w for w in re.split(r"[-_ ]+", name.lower()) if w]
    text = " ".join(words) or name
    return f"{text[:1].upper()}{text[1:]} port"


class DeploymentFilterForm(forms.Form):
    device = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    status = forms.ChoiceField(required=False)
    category = forms.ChoiceField(required=False)

    def __init__(self, *args, devices, categories: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["device"].choices = [("", "All devices")] + [(d.pk, d.name) for d in devices]
        self.fields["status"].choices = [("", "Any status"), *DeploymentStatus.choices]
        self.fields["category"].choices = [("", "All categories")] + [
            (c, c.replace("-", " ").capitalize()) for c in categories
        ]


class RemoveForm(forms.Form):
    data = forms.ChoiceField(choices=[("keep", "Keep my data"), ("delete", "Delete my data")])
    # shown when the app is the last one on a shared database server of its device
    keep_shared_servers = forms.BooleanField(required=False)

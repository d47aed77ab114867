"""Forms of the device pages. They check what a person typed and say what to fix;
the services in devices.services do the work."""

from __future__ import annotations

import ipaddress

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from devices.models import (
    Device,
    DeviceType,
    address_validator,
    label_validator,
    name_validator,
    username_validator,
)


class SecretTextarea(forms.Textarea):
    """A textarea that never writes its value back into the page (for private keys)."""

    def format_value(self, value):
        return None


class DeviceFieldsMixin:
    """Labels and help in plain words, shared by the add wizard and the edit form."""

    def _style_fields(self) -> None:
        for field in self.fields.values():
            # Browsers must not offer to fill a device's login with the person's own.
            field.widget.attrs.setdefault("autocomplete", "off")
            if (
                field.error_messages.get("required")
                == forms.Field.default_error_messages["required"]
            ):
                field.error_messages["required"] = f"Please fill in “{field.label}”."


class DeviceWizardForm(DeviceFieldsMixin, forms.Form):
    """Step 1 of adding a device. `action` is "test" (check only) or "save" (add it).

    The password travels only in the POST it arrives in: the widget never renders it back,
    and the wizard keeps it in the person's own input field between "Test" and "Add".
    """

    name = forms.CharField(
        label="Device name",
        max_length=63,
        required=False,  # needed to save, not to test the connection
        validators=[name_validator],
        help_text="A short name you'll recognise, like living-room-pi or nas.",
        widget=forms.TextInput(attrs={"placeholder": "living-room-pi"}),
    )
    address = forms.CharField(
        label="Address",
        max_length=253,
        validators=[address_validator],
        help_text="The device's IP address (like 192.168.1.20) or its name on your network. "
        "Your router's list of connected devices shows it.",
        widget=forms.TextInput(
            attrs={
                "placeholder": "192.168.1.20",
                "inputmode": "url",
                "autocapitalize": "none",
                "spellcheck": "false",
            }
        ),
        error_messages={"required": "Type the device's address so we know where to find it."},
    )
    port = forms.IntegerField(
        label="Port",
        initial=22,
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text="Almost always 22.",
        error_messages={
            "required": "Type the port number; if unsure, use 22.",
            "invalid": "The port is a whole number; if unsure, use 22.",
        },
    )
    username = forms.CharField(
        label="User name on the device",
        max_length=32,
        validators=[username_validator],
        help_text="The name you log in to the device with, like pi or root.",
        widget=forms.TextInput(
            attrs={"placeholder": "pi", "autocapitalize": "none", "spellcheck": "false"}
        ),
        error_messages={"required": "Type the user name you log in to the device with."},
    )
    password = forms.CharField(
        label="Password on the device",
        required=False,
        strip=False,
        help_text="Used once to set up a secure key, then forgotten. We never store it.",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    private_key = forms.CharField(
        label="Private key",
        required=False,
        strip=False,
        help_text="Paste the whole key, including the BEGIN and END lines. It is stored encrypted.",
        widget=SecretTextarea(
            attrs={
                "rows": 6,
                "spellcheck": "false",
                "placeholder": "-----BEGIN OPENSSH PRIVATE KEY-----",
            }
        ),
    )
    device_type = forms.ChoiceField(
        label="What kind of device is it?",
        choices=DeviceType.choices,
        initial=DeviceType.SERVER,
        required=False,
    )
    location = forms.CharField(
        label="Where is it? (optional)",
        max_length=63,
        required=False,
        validators=[label_validator],
        help_text="Helps you tell devices apart, like Office or Under the TV.",
        widget=forms.TextInput(attrs={"placeholder": "Office"}),
    )

    def __init__(self, *args, action: str = "test", **kwargs):
        super().__init__(*args, **kwargs)
        self.action = action
        self._style_fields()

    def clean_name(self) -> str:
        name = self.cleaned_data.get("name", "")
        if self.action == "save" and not name:
            raise forms.ValidationError("Give the device a name so you can recognise it later.")
        # Checked at "Test connection" too, so the person learns it before the slow steps.
        if name and Device.objects.filter(name__iexact=name).exists():
            raise forms.ValidationError(
                f"You already have a device called “{name}”. Choose another name."
            )
        return name

    def clean_device_type(self) -> str:
        return self.cleaned_data.get("device_type") or DeviceType.SERVER

    def clean_private_key(self) -> str:
        key = self.cleaned_data.get("private_key", "")
        if key.strip() and "PRIVATE KEY" not in key:
            raise forms.ValidationError(
                "This doesn't look like a private key. It starts with a line like "
                "-----BEGIN OPENSSH PRIVATE KEY-----. (The .pub file is the public half; we need the other one.)"
            )
        return key.strip() + "\n" if key.strip() else ""

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password")
        key = cleaned.get("private_key")
        if "private_key" in self.errors:
            return cleaned
        if not password and not key:
            self.add_error(
                "password",
                "Type the password you use to log in to this device "
                "(or paste a key under “Advanced: use a key instead”).",
            )
        elif password and key:
            self.add_error(
                "private_key",
                "Use either the password or the key, not both. Empty one of them.",
            )
        return cleaned

    def service_kwargs(self) -> dict:
        """What device_test_connection / device_add take."""
        data = self.cleaned_data
        kwargs = {
            "address": data["address"],
            "port": data["port"],
            "username": data["username"],
            "password": data.get("password") or None,
            "private_key": data.get("private_key") or None,
        }
        if self.action == "save":
            kwargs.update(
                name=data["name"],
                device_type=data["device_type"],
                location=data.get("location", ""),
            )
        return kwargs


EDIT_LABELS = {
    "name": "Device name",
    "username": "User name on the device",
    "device_type": "What kind of device is it?",
    "location": "Where is it? (optional)",
    "always_on": "This device stays switched on",
}
EDIT_HELP_TEXTS = {
    "name": "A short name you'll recognise, like living-room-pi or nas.",
    "address": "The device's IP address or its name on your network.",
    "port": "Almost always 22.",
    "always_on": "Apps that must run all the time prefer devices that stay on.",
}


class DeviceEditForm(DeviceFieldsMixin, forms.ModelForm):
    """Change how a device is named and reached. Login secrets are not shown or changed here."""

    class Meta:
        model = Device
        fields = ("name", "address", "port", "username", "device_type", "location", "always_on")
        labels = EDIT_LABELS
        help_texts = EDIT_HELP_TEXTS

    password = forms.CharField(
        label="New password on the device",
        required=False,
        strip=False,
        help_text="Only if the device's password changed or it was reinstalled. Used once to set "
        "up a new secure key, then forgotten.",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    private_key = forms.CharField(
        label="New private key",
        required=False,
        strip=False,
        help_text="Only if you log in with a key and it changed. Stored encrypted.",
        widget=SecretTextarea(
            attrs={
                "rows": 6,
                "spellcheck": "false",
                "placeholder": "-----BEGIN OPENSSH PRIVATE KEY-----",
            }
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._style_fields()

    clean_private_key = DeviceWizardForm.clean_private_key

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password") and cleaned.get("private_key"):
            self.add_error(
                "private_key", "Use either the password or the key, not both. Empty one of them."
            )
        return cleaned

    def changes(self) -> dict:
        """The changed fields, plus a new password or key when one was given."""
        changes = {
            name: self.cleaned_data[name]
            for name in self.changed_data
            if name not in ("password", "private_key")
        }
        for secret in ("password", "private_key"):
            if self.cleaned_data.get(secret):
                changes[secret] = self.cleaned_data[secret]
        return changes


class ScanForm(forms.Form):
    cidr = forms.CharField(
        label="Network to search",
        max_length=43,
        help_text="We look for devices that accept a login on this network. Usually the suggestion is right.",
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocapitalize": "none"}),
        error_messages={"required": "Type the network to search, like 192.168.1.0/24."},
    )
    confirm_public = forms.BooleanField(
        label="This network is mine although it is not a home network: scan it anyway",
        required=False,
    )

    def clean_cidr(self) -> str:
        value = self.cleaned_data["cidr"].strip()
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise forms.ValidationError(
                "That isn't a network we understand. Write it like 192.168.1.0/24 "
                "(your address with the last number replaced by 0, then /24)."
            ) from None
        if network.version == 4 and network.prefixlen < 16:
            raise forms.ValidationError(
                "That network is too big to search. Use a smaller one, like 192.168.1.0/24."
            )
        return str(network)

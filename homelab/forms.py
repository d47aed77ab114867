"""Forms of the product as a whole: the first admin account and API tokens."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm


class FirstRunForm(UserCreationForm):
    """The first account: it can do everything, including the admin pages."""

    class Meta(UserCreationForm.Meta):
        fields = ("username",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Your user name"
        self.fields["username"].help_text = "The name you will sign in with, like your first name."
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autofocus": True})
        self.fields["password1"].label = "Choose a password"
        self.fields[
            "password1"
        ].help_text = "At least 8 characters, not too common and not all numbers."
        self.fields["password2"].label = "Type the password again"
        self.fields["password2"].help_text = "So we know there is no typing mistake."
        self.fields["username"].error_messages["required"] = "Choose a user name to sign in with."
        self.fields["password1"].error_messages["required"] = "Choose a password."
        self.fields["password2"].error_messages["required"] = "Type the password a second time."

    def save(self, commit: bool = True):
        user = super().save(commit=False)
        user.is_staff = True
        user.is_superuser = True
        if commit:
            user.save()
        return user


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        label="What is this token for?",
        max_length=100,
        required=False,
        help_text="A reminder for you, like “backup script” or “phone widget”.",
        widget=forms.TextInput(attrs={"placeholder": "backup script"}),
    )
    read_only = forms.BooleanField(
        label="Read only",
        required=False,
        help_text="It may only read (GET), even if your role may change things.",
    )

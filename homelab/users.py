"""The Users page (/users/, Admins only): people, their roles, new accounts.

An Admin lists every account with its role, adds an account with a name, a password and
a role, changes a role, and deactivates or reactivates an account. The last Admin can be
neither demoted nor deactivated: the page says so and changes nothing.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model, password_validation
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from homelab.roles import (
    ROLE_DESCRIPTIONS,
    ROLES,
    Role,
    RoleError,
    role_of,
    user_create,
    user_deactivate,
    user_reactivate,
    user_set_role,
)

ROLE_CHOICES = [(role.name.lower(), f"{role.label}: {ROLE_DESCRIPTIONS[role]}") for role in ROLES]


def _role(value: str) -> Role:
    return Role[value.upper()]


class NewUserForm(forms.Form):
    username = forms.RegexField(
        label="User name",
        max_length=150,
        regex=r"\A[\w.@+-]+\Z",
        help_text="The name they sign in with: letters, digits and . @ + - _ only.",
        error_messages={
            "required": "Choose a user name.",
            "invalid": "Use only letters, digits and . @ + - _ in a user name.",
        },
    )
    password = forms.CharField(
        label="Password",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not too common and not all numbers. Tell them in person.",
        error_messages={"required": "Choose a password for them."},
    )
    role = forms.ChoiceField(label="Role", choices=ROLE_CHOICES, initial="viewer")

    def clean(self):
        data = super().clean()
        if data.get("password"):
            user = get_user_model()(username=data.get("username", ""))
            try:
                password_validation.validate_password(data["password"], user)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return data


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)


@require_http_methods(["GET", "POST"])
def users(request: HttpRequest) -> HttpResponse:
    form = NewUserForm()
    if request.method == "POST":
        action = request.POST.get("action", "create")
        if action == "create":
            form = NewUserForm(request.POST)
            if form.is_valid():
                try:
                    person = user_create(
                        username=form.cleaned_data["username"],
                        password=form.cleaned_data["password"],
                        role=_role(form.cleaned_data["role"]),
                    )
                except RoleError as exc:
                    form.add_error("username", exc.message)
                else:
                    messages.success(
                        request,
                        f"{person.get_username()} can now sign in as {role_of(person).label}.",
                    )
                    return redirect("users")
        else:
            _change(request, action)
            return redirect("users")
    people = [
        {"user": person, "role": role_of(person) if person.is_active else _stored_role(person)}
        for person in get_user_model().objects.order_by("username").prefetch_related("groups")
    ]
    return render(
        request,
        "homelab/users.html",
        {"form": form, "people": people, "roles": ROLES, "current": "users"},
    )


def _stored_role(person) -> Role:
    """The role an inactive account would have again if reactivated."""
    person.is_active = True
    try:
        return role_of(person)
    finally:
        person.is_active = False


def _change(request: HttpRequest, action: str) -> None:
    person = get_object_or_404(get_user_model(), pk=request.POST.get("user_id"))
    name = person.get_username()
    try:
        if action == "role":
            form = RoleForm(request.POST)
            if not form.is_valid():
                messages.error(request, "Choose one of the roles in the list.")
                return
            role = _role(form.cleaned_data["role"])
            user_set_role(user=person, role=role)
            messages.success(request, f"{name} is now {role.label}.")
        elif action == "deactivate":
            user_deactivate(user=person)
            messages.success(
                request,
                f"{name} can no longer sign in. Their history stays; reactivate them any time.",
            )
        elif action == "reactivate":
            user_reactivate(user=person)
            messages.success(request, f"{name} can sign in again.")
        else:
            messages.error(
                request, "That change is not one this page knows. Reload the page and try again."
            )
    except RoleError as exc:
        messages.error(request, exc.message)

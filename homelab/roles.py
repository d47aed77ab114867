"""Who may do what: the three roles and the people who hold them.

A role is a Django group ("Admin", "Operator", "Viewer"); a superuser is always an Admin.
A signed-in account in no role group is a Viewer (the least role): nobody gets more than
they were given. The data migration put every account that existed before roles into
"Admin", so nobody was locked out.

An Admin is also staff and superuser (the admin pages and their model permissions); an
Operator or a Viewer is neither. `user_set_role` keeps the two in step.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser


class Role(enum.IntEnum):
    """Ordered: a higher role may do everything a lower one may."""

    PUBLIC = 0  # anyone, signed in or not (health, sign-in)
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.capitalize()

    @property
    def group_name(self) -> str:
        return self.label


ROLES = (Role.ADMIN, Role.OPERATOR, Role.VIEWER)
ROLE_DESCRIPTIONS = {
    Role.ADMIN: "Everything: devices, keys, people, settings, apps and backups.",
    Role.OPERATOR: "Deploys, starts, stops and removes apps; runs backups and restores. "
    "Not devices, keys, people or settings.",
    Role.VIEWER: "Sees the dashboard, apps and their statuses. No logs, no changes.",
}

_CACHE_ATTR = "_homelab_role"


class RoleError(Exception):
    """A change to people or roles that is refused; the message says why and what to do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def role_of(user: AbstractBaseUser | None) -> Role | None:
    """The role of USER, or None when nobody is signed in (or the account is inactive)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    if user.is_superuser:
        role = Role.ADMIN
    else:
        names = set(user.groups.values_list("name", flat=True))
        role = next((r for r in ROLES if r.group_name in names), Role.VIEWER)
    setattr(user, _CACHE_ATTR, role)
    return role


def _groups() -> dict[Role, Group]:
    return {role: Group.objects.get_or_create(name=role.group_name)[0] for role in ROLES}


def _admins():
    User = get_user_model()
    return User.objects.filter(is_active=True).filter(is_superuser=True) | User.objects.filter(
        is_active=True, groups__name=Role.ADMIN.group_name
    )


def _is_last_admin(user) -> bool:
    return role_of(user) == Role.ADMIN and not _admins().exclude(pk=user.pk).exists()


def _apply_role(user, role: Role) -> None:
    groups = _groups()
    user.is_staff = user.is_superuser = role == Role.ADMIN
    user.save(update_fields=["is_staff", "is_superuser"])
    user.groups.remove(*groups.values())
    user.groups.add(groups[role])
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def user_create(*, username: str, password: str, role: Role) -> AbstractBaseUser:
    """A new account with ROLE. The password is checked by the form that asked for it."""
    User = get_user_model()
    with transaction.atomic():
        if User.objects.filter(username__iexact=username).exists():
            raise RoleError(f"There is already an account named “{username}”. Choose another name.")
        user = User.objects.create_user(username=username, password=password)
        _apply_role(user, role)
    return user


def user_set_role(*, user, role: Role) -> None:
    """Give USER the role ROLE. The last Admin keeps the role: someone must manage the rest."""
    with transaction.atomic():
        if role != Role.ADMIN and _is_last_admin(user):
            raise RoleError(
                f"{user.get_username()} is the only Admin, so they stay an Admin. "
                "Make someone else an Admin first."
            )
        _apply_role(user, role)


def user_deactivate(*, user) -> None:
    """Stop USER from signing in (their history stays). Never the last Admin."""
    with transaction.atomic():
        if _is_last_admin(user):
            raise RoleError(
                f"{user.get_username()} is the only Admin and cannot be deactivated. "
                "Make someone else an Admin first."
            )
        user.is_active = False
        user.save(update_fields=["is_active"])


def user_reactivate(*, user) -> None:
    user.is_active = True
    user.save(update_fields=["is_active"])

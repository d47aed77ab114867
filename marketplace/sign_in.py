"""Sign-in details: the generated login of an app, shown to an admin on request.

An app such as Nextcloud or Vaultwarden starts with a login we generated (its recipe's
`sign_in:` names the secrets meant for a person). Secrets never appear unasked; this is
the one place a person can ask:

1. Only staff may ask (`can_reveal`); the view answers 403 to anyone else.
2. They re-enter their own password. A wrong one is recorded and refused; after
   `MAX_WRONG_PASSWORDS` wrong ones within `WRONG_PASSWORD_WINDOW` every attempt is refused
   until the window has passed, even with the right password.
3. A right one is recorded (who, when; never the value) and the values are returned for
   this one answer; the page that shows them is sent with `Cache-Control: no-store`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from marketplace.models import Deployment, SignInReveal
from marketplace.recipes import RecipeNotFound, load_catalog

MAX_WRONG_PASSWORDS = 5
WRONG_PASSWORD_WINDOW = timedelta(minutes=15)
RECENT_REVEALS_SHOWN = 5


class SignInRefused(Exception):
    """The password was wrong, or there were too many wrong ones; `message` says what to do."""

    def __init__(self, message: str, *, limited: bool = False):
        super().__init__(message)
        self.message = message
        self.limited = limited


@dataclass(frozen=True)
class SignInValue:
    label: str  # "Password", "Admin token"
    meaning: str  # the recipe's words: 'The password of the Nextcloud user "admin".'
    value: str


@dataclass(frozen=True)
class SignInDetails:
    user: str | None  # the user name to type, when the app has one
    path: str | None  # where to sign in, under the app's address ("/admin")
    values: tuple[SignInValue, ...]


def can_reveal(user) -> bool:
    return bool(user.is_authenticated and (user.is_staff or user.is_superuser))


def has_sign_in(deployment: Deployment) -> bool:
    """Whether the app's recipe names sign-in secrets this deployment holds."""
    sign_in = _sign_in_of(deployment)
    if sign_in is None:
        return False
    held = deployment.secret_values()
    return any(name in held for name in sign_in.secrets)


def recent_reveals(deployment: Deployment) -> list[SignInReveal]:
    return list(deployment.sign_in_reveals.filter(shown=True)[:RECENT_REVEALS_SHOWN])


def sign_in_reveal(
    *, deployment: Deployment, user: AbstractBaseUser, password: str
) -> SignInDetails:
    """Check the person's own password, record the attempt, return the sign-in details.

    Raises SignInRefused (recorded, when the password was checked) or PermissionError."""
    if not can_reveal(user):
        raise PermissionError("Only an administrator may see sign-in details.")
    since = timezone.now() - WRONG_PASSWORD_WINDOW
    wrong = SignInReveal.objects.filter(user=user, shown=False, time__gte=since).count()
    if wrong >= MAX_WRONG_PASSWORDS:
        minutes = int(WRONG_PASSWORD_WINDOW.total_seconds() // 60)
        raise SignInRefused(
            f"Too many wrong passwords. Wait {minutes} minutes, then try again.", limited=True
        )
    right = bool(password) and user.check_password(password)
    SignInReveal.objects.create(
        deployment=deployment, user=user, username=user.get_username(), shown=right
    )
    if not right:
        raise SignInRefused(
            "That is not your password. Enter the password you use to sign in to Homelab."
        )
    return _details(deployment)


def _sign_in_of(deployment: Deployment):
    try:
        return load_catalog().get(deployment.slug).manifest.sign_in
    except RecipeNotFound:
        return None


def _details(deployment: Deployment) -> SignInDetails:
    recipe = load_catalog().get(deployment.slug)
    sign_in = recipe.manifest.sign_in
    if sign_in is None:
        return SignInDetails(user=None, path=None, values=())
    declared = {s.name: s for s in recipe.manifest.secrets}
    held = deployment.secret_values()
    values = tuple(
        SignInValue(
            label=name.replace("_", " ").capitalize(),
            meaning=declared[name].meaning,
            value=held[name],
        )
        for name in sign_in.secrets
        if name in held and name in declared
    )
    return SignInDetails(user=sign_in.user, path=sign_in.path, values=values)

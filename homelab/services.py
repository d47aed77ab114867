"""Services of the product as a whole: API tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.utils import timezone

from homelab.models import ApiToken, hash_token

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser


def api_token_issue(
    *, username: str, name: str = "", read_only: bool = False
) -> tuple[ApiToken, str]:
    """Create a token for USERNAME and return it with the raw value (shown once, never stored)."""
    user = get_user_model().objects.get(username=username)
    raw = ApiToken.new_raw_token()
    token = ApiToken.objects.create(
        user=user, name=name, token_hash=hash_token(raw), hint=raw[:8], read_only=read_only
    )
    return token, raw


def api_token_authenticate(*, raw: str) -> AbstractBaseUser | None:
    """Return the active user owning RAW, or None."""
    if not raw:
        return None
    token = ApiToken.objects.select_related("user").filter(token_hash=hash_token(raw)).first()
    if token is None or not token.user.is_active:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used=timezone.now())
    return token.user

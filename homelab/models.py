"""Models that belong to the product as a whole: API tokens for scripts."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models

TOKEN_PREFIX = "hlo_"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A bearer token for scripts. Only its SHA-256 is stored; the token is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=12, editable=False, help_text="First characters, to tell tokens apart.")
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)
    read_only = models.BooleanField(
        default=False, help_text="A read-only token may only read (GET), whatever its person's role."
    )

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.hint}… ({self.user})"

    @staticmethod
    def new_raw_token() -> str:
        return TOKEN_PREFIX + secrets.token_urlsafe(32)


class FirstRunClaim(models.Model):
    """One row while the first account is being (or has been) made through /setup/.

    Its fixed primary key is the database-level guard that two simultaneous first-run posts
    make one admin: the second insert fails on the key, on SQLite and PostgreSQL alike.
    """

    key = models.CharField(max_length=16, primary_key=True, default="first-admin")
    created = models.DateTimeField(auto_now_add=True)

"""The cast: one person per role, and a visitor who is not signed in.

Registered as a pytest plugin in tests/conftest.py, so any test may ask for `cast`
(all of them) or one person: `cast_admin`, `cast_operator`, `cast_viewer` (not `admin_user`: pytest-django's admin_client needs that one). Each person has
a signed-in test client and an API token (`person.client`, `person.token`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client

from homelab.roles import Role

PASSWORD = "a-long-cast-password-1"


@dataclass
class Person:
    role: Role | None  # None: the visitor, not signed in
    user: object | None
    token: str | None

    @property
    def name(self) -> str:
        return self.role.label.lower() if self.role else "visitor"

    def client(self) -> Client:
        """A fresh client, signed in as this person (the visitor's is signed out)."""
        client = Client()
        if self.user is not None:
            client.force_login(self.user)
        return client

    def api_headers(self) -> dict:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}


def make_person(role: Role, *, read_only: bool = False) -> Person:
    from homelab.roles import user_create
    from homelab.services import api_token_issue

    user = user_create(username=f"cast-{role.label.lower()}", password=PASSWORD, role=role)
    _, raw = api_token_issue(username=user.get_username(), name="cast", read_only=read_only)
    return Person(role=role, user=user, token=raw)


@pytest.fixture
def cast_admin(db) -> Person:
    return make_person(Role.ADMIN)


@pytest.fixture
def cast_operator(db) -> Person:
    return make_person(Role.OPERATOR)


@pytest.fixture
def cast_viewer(db) -> Person:
    return make_person(Role.VIEWER)


@pytest.fixture
def visitor() -> Person:
    return Person(role=None, user=None, token=None)


@pytest.fixture
def cast(cast_admin, cast_operator, cast_viewer, visitor) -> dict[str, Person]:
    """{"admin": ..., "operator": ..., "viewer": ..., "visitor": ...}."""
    return {p.name: p for p in (cast_admin, cast_operator, cast_viewer, visitor)}

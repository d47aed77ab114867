"""Every name that reaches a shell, SQL or a path is a FULL match (issue 13, finding 7).

Python's `$` also matches before a final newline (`re.match(r"^x$", "x\n")` matches) and
RegexValidator uses `search`: each pattern here must refuse a valid name followed by "\n",
and "\r", NUL and Unicode look-alikes (Cyrillic a (U+0430), fullwidth digits) anywhere.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Annotated

import pytest
from django.core.exceptions import ValidationError
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticError

pytestmark = pytest.mark.django_db


def _variants(good: str) -> list[str]:
    cyrillic_a = good.replace("a", "\u0430", 1) if "a" in good else "\u0430" + good
    fullwidth = good + "\uff11"  # FULLWIDTH DIGIT ONE
    return [
        good + "\n",
        good + "\r",
        good + "\r\n",
        "\n" + good,
        good + "\x00",
        good[:1] + "\x00" + good[1:],
        cyrillic_a,
        fullwidth,
        good + "\u2028",
    ]


def _regex(module: str, name: str) -> Callable[[str], bool]:
    pattern = getattr(importlib.import_module(module), name)
    return lambda value: pattern.match(value) is not None


def _root_re() -> Callable[[str], bool]:
    # HOMELAB_DEPLOY_ROOT's pattern
    return _regex("devices.compose", "ROOT_RE")


def _django(module: str, name: str) -> Callable[[str], bool]:
    validator = getattr(importlib.import_module(module), name)

    def accepts(value: str) -> bool:
        try:
            validator(value)
        except ValidationError:
            return False
        return True

    return accepts


def _pydantic(name: str) -> Callable[[str], bool]:
    manifest = importlib.import_module("marketplace.manifest")
    if name == "Volume.name":
        adapter = TypeAdapter(Annotated[str, *manifest.Volume.model_fields["name"].metadata])
    elif name == "slug":
        adapter = TypeAdapter(Annotated[str, *manifest.Manifest.model_fields["slug"].metadata])
    else:
        adapter = TypeAdapter(getattr(manifest, name))

    def accepts(value: str) -> bool:
        try:
            adapter.validate_python(value)
        except PydanticError:
            return False
        return True

    return accepts


def _pooling(function: str, **fixed) -> Callable[[str], bool]:
    engines = importlib.import_module("pooling.engines")

    def accepts(value: str) -> bool:
        try:
            if function == "database_name_for":
                engines.database_name_for(**fixed, instance=value)
            else:
                getattr(engines, function)(value)
        except engines.NameError_:
            return False
        return True

    return accepts


def _deployment_instance() -> Callable[[str], bool]:
    from marketplace.services import DeploymentError, _check_instance

    def accepts(value: str) -> bool:
        try:
            _check_instance(value)
        except DeploymentError:
            return False
        return True

    return accepts


# (what it guards, a valid name, its check)
CASES = [
    ("device name", "pi-4.local", lambda: _django("devices.models", "name_validator")),
    ("device address", "192.168.1.20", lambda: _django("devices.models", "address_validator")),
    ("device host name", "nas.home", lambda: _django("devices.models", "address_validator")),
    ("device login", "pi", lambda: _django("devices.models", "username_validator")),
    ("device location", "attic", lambda: _django("devices.models", "label_validator")),
    ("deployment instance", "family", lambda: _django("marketplace.models", "instance_validator")),
    (
        "deployment project",
        "hl-vaultwarden-family",
        lambda: _django("marketplace.models", "project_validator"),
    ),
    ("deployment slug", "vaultwarden", lambda: _django("marketplace.models", "slug_validator")),
    ("instance (API/wizard)", "family", _deployment_instance),
    (
        "compose project",
        "hl-vaultwarden-family",
        lambda: _regex("marketplace.compose", "PROJECT_RE"),
    ),
    ("compose instance", "family", lambda: _regex("marketplace.compose", "INSTANCE_RE")),
    ("compose variable", "SMTP_HOST", lambda: _regex("marketplace.compose", "ENV_NAME_RE")),
    ("deploy root", "/opt/homelab/apps", _root_re),
    ("pooled database/role name", "nextcloud_family", lambda: _regex("pooling.engines", "NAME_RE")),
    ("pooled database/role name (check)", "nextcloud_family", lambda: _pooling("check_name")),
    ("pooled slug", "paperless-ngx", lambda: _regex("pooling.engines", "_SLUG_RE")),
    ("pooled instance", "family", lambda: _regex("pooling.engines", "_INSTANCE_RE")),
    ("pooled instance (names)", "family", lambda: _pooling("database_name_for", slug="n8n")),
    ("pooled project", "hl-pool-postgres", lambda: _regex("pooling.engines", "_PROJECT_RE")),
    ("recipe slug", "vaultwarden", lambda: _pydantic("slug")),
    ("recipe volume name", "data", lambda: _pydantic("Volume.name")),
    ("recipe service/database name", "db", lambda: _pydantic("_NAME")),
    ("recipe variable name", "DB_PASSWORD", lambda: _pydantic("_ENV")),
]


@pytest.mark.parametrize(("what", "good", "make"), CASES, ids=[case[0] for case in CASES])
def test_a_valid_name_passes(what, good, make):
    assert make()(good), f"{what}: {good!r} should be accepted"


@pytest.mark.parametrize(
    ("what", "bad"),
    [(what, bad) for what, good, _ in CASES for bad in _variants(good)],
    ids=[f"{what}-{bad!r}" for what, good, _ in CASES for bad in _variants(good)],
)
def test_newlines_nul_and_look_alikes_are_refused(what, bad):
    make = next(case[2] for case in CASES if case[0] == what)
    assert not make()(bad), f"{what}: {bad!r} must be refused"


def test_the_deploy_api_refuses_an_instance_with_a_newline(admin_client):
    from marketplace.models import Deployment

    response = admin_client.post(
        "/api/v1/applications/vaultwarden/deploy",
        {"instance": "nl\n"},
        content_type="application/json",
    )
    assert response.status_code == 422, response.content
    assert b"instance" in response.content
    assert not Deployment.objects.exists()

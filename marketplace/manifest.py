"""The manifest schema of a recipe (`manifest.yaml`) and the checks that span its fields.

`Manifest` is a strict pydantic model: unknown fields, wrong types and values out of range
are refused. `manifest_problems()` adds the rules that involve several fields or the recipe
folder (slug equals the folder name, recommended >= minimum, declared icon file exists...).
`plain_words()` and `field_path()` turn pydantic's errors into words for a person. The
loader and the compose checks live in marketplace.recipes, which re-exports these names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MANIFEST_FILE = "manifest.yaml"
COMPOSE_FILE = "compose.yaml"

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,40}$"
CATEGORIES = (
    "automation",
    "communication",
    "dashboard",
    "development",
    "documents",
    "finance",
    "home-automation",
    "media",
    "monitoring",
    "network",
    "other",
    "photos",
    "productivity",
    "security",
    "storage",
)
ARCHITECTURES = ("amd64", "arm64", "armv7")
DATABASE_ENGINES = ("postgres", "mysql", "redis")
# Host paths a recipe may mount: nothing else of the device is exposed to an app.
ALLOWED_BIND_MOUNTS = ("/etc/localtime", "/var/run/docker.sock")

_NAME = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,30}$")]
_ENV = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]
_TEXT = Annotated[str, Field(min_length=1, max_length=2000)]
_PORT = Annotated[int, Field(ge=1, le=65535)]


# ------------------------------------------------------------------------------- schema
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Requirements(_Strict):
    ram_min_mb: Annotated[int, Field(ge=1)]
    ram_recommended_mb: Annotated[int, Field(ge=1)]
    storage_min_mb: Annotated[int, Field(ge=1)]
    storage_recommended_mb: Annotated[int, Field(ge=1)]
    cpu_cores_min: Annotated[float, Field(gt=0, le=256)]
    cpu_cores_recommended: Annotated[float, Field(gt=0, le=256)]


class Port(_Strict):
    name: _NAME
    container_port: _PORT
    default_host_port: _PORT
    protocol: Literal["tcp", "udp"] = "tcp"
    meaning: _TEXT
    web: bool = False


class Volume(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    container_path: Annotated[str, Field(pattern=r"^/[^\x00]*$")]
    holds_data: bool = True
    meaning: _TEXT


class HealthCheck(_Strict):
    type: Literal["http", "tcp"]
    port: _PORT  # a container port of the main service
    path: Annotated[str, Field(pattern=r"^/\S*$")] | None = None
    timeout_seconds: Annotated[int, Field(ge=1, le=1800)] = 120
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200


class Secret(_Strict):
    name: _NAME
    env: Annotated[list[_ENV], Field(min_length=1)]  # compose variables it fills
    length: Annotated[int, Field(ge=16, le=128)] = 32
    alphabet: Literal["alnum", "hex"] = "alnum"
    meaning: _TEXT


class DatabaseEnv(_Strict):
    """Names of the env vars of the app that receive the database's coordinates."""

    host: _ENV | None = None
    port: _ENV | None = None
    database: _ENV | None = None
    user: _ENV | None = None
    password: _ENV | None = None
    url: _ENV | None = None
    # Redis only: the variable that takes the app's key prefix (`<name>:`). An app whose
    # Redis need maps it can share the pool's Redis; without it, it keeps its own.
    prefix: _ENV | None = None

    def names(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class DatabaseNeed(_Strict):
    engine: Literal["postgres", "mysql", "redis"]
    env: DatabaseEnv
    # the compose service that bundles this database today (pooling may replace it)
    bundled_service: str | None = None
    # the service that reads the env vars (default: main_service)
    service: str | None = None
    # PostgreSQL only: extensions the app creates in its database (`CREATE EXTENSION`). The
    # shared server offers PostgreSQL's own trusted ones (pg_trgm, uuid-ossp, ...); an app
    # needing another (Immich: pgvecto.rs' `vectors`) keeps its bundled server.
    extensions: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]] = []


class SignIn(_Strict):
    """How a person signs in to the app, and which generated secrets they need for it:
    shown on the app's page on request ("Show sign-in details"), never anywhere else."""

    user: Annotated[str, Field(min_length=1, max_length=60)] | None = None
    secrets: Annotated[list[_NAME], Field(min_length=1, max_length=4)]
    path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9/_.-]*$")] | None = None


class Manifest(_Strict):
    slug: Annotated[str, Field(pattern=SLUG_PATTERN)]
    name: Annotated[str, Field(min_length=1, max_length=60)]
    category: Literal[CATEGORIES]  # type: ignore[valid-type]
    description: Annotated[str, Field(min_length=1, max_length=500)]
    icon: Annotated[str, Field(min_length=1, max_length=100)]
    version: Annotated[str, Field(min_length=1, max_length=40)]
    main_service: Annotated[str, Field(min_length=1, max_length=63)]
    requirements: Requirements
    architectures: Annotated[list[Literal[ARCHITECTURES]], Field(min_length=1)]  # type: ignore[valid-type]
    ports: list[Port] = []
    volumes: list[Volume] = []
    health_check: HealthCheck
    always_on: bool = False
    post_install_notes: str = ""
    secrets: list[Secret] = []
    requires_database: list[DatabaseNeed] = []
    website: Annotated[str, Field(pattern=r"^https://\S+$")] | None = None
    sign_in: SignIn | None = None

    @property
    def web_port(self) -> Port | None:
        return next((p for p in self.ports if p.web), None)


# ------------------------------------------------------------------------- error words
def field_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("literal[", "function-")):
            continue  # pydantic's names for union members, not fields
        else:
            out += f".{part}" if out else str(part)
    return out


def plain_words(error: dict) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    words = {
        "missing": "is required",
        "extra_forbidden": "is not a known field (check the spelling, or remove it)",
        "int_type": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_type": "must be a number",
        "bool_type": "must be true or false",
        "string_type": "must be text",
        "list_type": "must be a list",
        "model_type": "must be a mapping of fields",
        "dict_type": "must be a mapping",
        "none_required": "must be empty",
    }
    if kind in words:
        return words[kind]
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "greater_than":
        return f"must be more than {ctx.get('gt')}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}"
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else error["msg"].lower()
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s)"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    if kind == "string_pattern_mismatch":
        return f"has characters or a form that is not allowed (pattern {ctx.get('pattern')})"
    return str(error["msg"]).removeprefix("Value error, ")


# ---------------------------------------------------------------------------- checks
def is_emoji(icon: str) -> bool:
    return len(icon) <= 8 and not any(c.isascii() for c in icon)


def manifest_problems(m: Manifest, folder: Path) -> list[tuple[str, str]]:
    """Rules that involve several fields. Returns (field, problem)."""
    problems: list[tuple[str, str]] = []
    if m.slug != folder.name:
        problems.append(
            ("slug", f"is {m.slug!r} but the folder is named {folder.name!r}; make them equal")
        )
    r = m.requirements
    for what in ("ram", "storage"):
        low, high = getattr(r, f"{what}_min_mb"), getattr(r, f"{what}_recommended_mb")
        if high < low:
            problems.append(
                (f"requirements.{what}_recommended_mb", f"must be at least {what}_min_mb ({low})")
            )
    if r.cpu_cores_recommended < r.cpu_cores_min:
        problems.append(
            (
                "requirements.cpu_cores_recommended",
                f"must be at least cpu_cores_min ({r.cpu_cores_min:g})",
            )
        )
    if len(set(m.architectures)) != len(m.architectures):
        problems.append(("architectures", "lists an architecture twice"))
    if not is_emoji(m.icon):
        if not re.match(r"^[A-Za-z0-9_.-]+\.(svg|png|webp|jpg)\Z", m.icon):
            problems.append(
                (
                    "icon",
                    "must be an emoji or a file name in the recipe folder (svg, png, webp, jpg)",
                )
            )
        elif not (folder / m.icon).is_file():
            problems.append(("icon", f"names {m.icon!r}, which is not in the recipe folder"))
    seen: dict[tuple, str] = {}
    for i, p in enumerate(m.ports):
        for key, what in (
            ((p.name,), "name"),
            ((p.default_host_port, p.protocol), "default_host_port"),
        ):
            if key in seen:
                problems.append((f"ports[{i}].{what}", f"is also used by port {seen[key]!r}"))
            seen[key] = p.name
    if [p.web for p in m.ports].count(True) > 1:
        problems.append(("ports", "only one port may be marked web: true"))
    names = [v.name for v in m.volumes]
    for i, v in enumerate(m.volumes):
        if names.count(v.name) > 1:
            problems.append((f"volumes[{i}].name", f"{v.name!r} is declared twice"))
    hc = m.health_check
    if hc.type == "http" and not hc.path:
        problems.append(
            ("health_check.path", "is required for an http health check (for example /)")
        )
    if hc.type == "tcp" and hc.path:
        problems.append(("health_check.path", "is only for http health checks; remove it"))
    if hc.port not in {p.container_port for p in m.ports}:
        problems.append(
            ("health_check.port", f"{hc.port} is not the container_port of any declared port")
        )
    env_owner: dict[str, str] = {}
    for i, s in enumerate(m.secrets):
        for env in s.env:
            if env in env_owner:
                problems.append(
                    (f"secrets[{i}].env", f"{env} is already filled by secret {env_owner[env]!r}")
                )
            env_owner[env] = s.name
    if len({s.name for s in m.secrets}) != len(m.secrets):
        problems.append(("secrets", "two secrets have the same name"))
    for i, name in enumerate(m.sign_in.secrets if m.sign_in else []):
        if name not in {s.name for s in m.secrets}:
            problems.append((f"sign_in.secrets[{i}]", f"{name!r} is not a declared secret"))
    for i, need in enumerate(m.requires_database):
        if not need.env.names():
            problems.append(
                (
                    f"requires_database[{i}].env",
                    "names no env var; give at least one of host, port, database, user, password, url",
                )
            )
        if need.extensions and need.engine != "postgres":
            problems.append(
                (
                    f"requires_database[{i}].extensions",
                    "is only for PostgreSQL (extensions the app creates); remove it",
                )
            )
        if need.env.prefix and need.engine != "redis":
            problems.append(
                (
                    f"requires_database[{i}].env.prefix",
                    "is only for Redis (a key prefix); remove it",
                )
            )
    return problems

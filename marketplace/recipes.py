"""The recipe catalog: `recipes/<slug>/manifest.yaml` + `compose.yaml`, validated at load.

A recipe is a normal compose file a person could run by hand plus a manifest that says
what the platform needs to know. `load_catalog()` reads the built-in recipes and the
custom folders of HOMELAB_RECIPE_DIRS; a recipe that fails any check is listed in
`Catalog.invalid` with the file, field and problem in plain words, and cannot be
deployed, while the rest of the catalog loads. A custom recipe with a built-in's slug
replaces it (`Recipe.overrides_builtin`).

The catalog is cached per process and reloaded when a recipe file or folder changes
(modification times), so the catalog page costs a few `stat` calls.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from marketplace.compose import (
    ENV_NAME_RE,
    dollar_uses,
    env_as_dict,
    parse_port,
    walk_strings,
)

BUILTIN_DIR = Path(__file__).resolve().parent / "recipes"
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

    def names(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class DatabaseNeed(_Strict):
    engine: Literal["postgres", "mysql", "redis"]
    env: DatabaseEnv
    # the compose service that bundles this database today (pooling may replace it)
    bundled_service: str | None = None
    # the service that reads the env vars (default: main_service)
    service: str | None = None


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

    @property
    def web_port(self) -> Port | None:
        return next((p for p in self.ports if p.web), None)


# ------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class RecipeProblem:
    """Why a recipe is not in the catalog. `folder` is the slug or folder name."""

    folder: str
    file: str  # "manifest.yaml", "compose.yaml" or "" for the folder itself
    field: str  # "requirements.ram_min_mb", "services.db.image", "" when not one field
    problem: str
    directory: str = ""  # the folder's full path

    def __str__(self) -> str:
        where = f"{self.folder}/{self.file}" if self.file else self.folder
        return (
            f"{where}: {self.field}: {self.problem}" if self.field else f"{where}: {self.problem}"
        )


@dataclass(frozen=True)
class Recipe:
    slug: str
    manifest: Manifest
    compose: dict  # the parsed compose.yaml; treat as read-only (the renderer copies it)
    compose_text: str
    folder: Path
    source: Literal["builtin", "custom"] = "builtin"
    overrides_builtin: bool = False

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def category(self) -> str:
        return self.manifest.category

    @property
    def images(self) -> list[str]:
        """Every image the compose file names, sorted."""
        return sorted({s["image"] for s in self.compose["services"].values()})

    @property
    def icon_path(self) -> Path | None:
        return None if _is_emoji(self.manifest.icon) else self.folder / self.manifest.icon


class RecipeNotFound(LookupError):
    def __init__(self, slug: str):
        super().__init__(f"There is no app {slug!r} in the catalog.")
        self.slug = slug


@dataclass
class Catalog:
    recipes: dict[str, Recipe] = field(default_factory=dict)  # by slug, sorted
    invalid: list[RecipeProblem] = field(default_factory=list)
    dirs: tuple[Path, ...] = ()

    def get(self, slug: str) -> Recipe:
        try:
            return self.recipes[slug]
        except KeyError:
            raise RecipeNotFound(slug) from None

    def problems_for(self, folder: str) -> list[RecipeProblem]:
        return [p for p in self.invalid if p.folder == folder]

    @property
    def categories(self) -> list[str]:
        return sorted({r.category for r in self.recipes.values()})


# ------------------------------------------------------------------------- error words
def _field_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("literal[", "function-")):
            continue  # pydantic's names for union members, not fields
        else:
            out += f".{part}" if out else str(part)
    return out


def _plain_words(error: dict) -> str:
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
def _is_emoji(icon: str) -> bool:
    return len(icon) <= 8 and not any(c.isascii() for c in icon)


def _check_manifest(m: Manifest, folder: Path) -> list[tuple[str, str]]:
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
    if not _is_emoji(m.icon):
        if not re.match(r"^[A-Za-z0-9_.-]+\.(svg|png|webp|jpg)$", m.icon):
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
    for i, need in enumerate(m.requires_database):
        if not need.env.names():
            problems.append(
                (
                    f"requires_database[{i}].env",
                    "names no env var; give at least one of host, port, database, user, password, url",
                )
            )
    return problems


_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_RE = re.compile(
    rf"^(?P<name>(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)


def image_problem(image: Any) -> str | None:
    """None when `image` is a valid reference pinned to a tag or digest, else why not."""
    if not isinstance(image, str):
        return "must be an image name such as postgres:16-alpine"
    m = _IMAGE_RE.match(image)
    if not m:
        return f"{image!r} is not a valid image reference"
    if m.group("digest"):
        return None
    if not m.group("tag"):
        return f"{image!r} has no tag; pin a version such as {image}:1.2.3"
    if m.group("tag") == "latest":
        return f"{image!r} uses :latest; pin a version so every install gets the same app"
    return None


def service_mounts(service: dict) -> list[tuple[str, str, str]]:
    """(source, target, kind) of a service's volumes; kind is volume, bind or tmpfs."""
    out = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            out.append(
                (
                    str(entry.get("source", "")),
                    str(entry.get("target", "")),
                    str(entry.get("type", "volume")),
                )
            )
            continue
        parts = str(entry).split(":")
        if len(parts) == 1:
            out.append(("", parts[0], "volume"))
        else:
            source = parts[0]
            kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
            out.append((source, parts[1], kind))
    return out


def _check_compose(m: Manifest, compose: Any) -> list[tuple[str, str, str]]:
    """The compose file against itself and the manifest. Returns (file, field, problem)."""
    if not isinstance(compose, dict):
        return [(COMPOSE_FILE, "", "must be a compose file: a mapping with `services`")]
    services = compose.get("services")
    if not isinstance(services, dict) or not services:
        return [(COMPOSE_FILE, "services", "must name at least one service")]
    problems: list[tuple[str, str, str]] = []
    declared_volumes = compose.get("volumes") or {}
    if not isinstance(declared_volumes, dict):
        problems.append((COMPOSE_FILE, "volumes", "must be a mapping of named volumes"))
        declared_volumes = {}
    published: dict[tuple[int, str], tuple[str, int | None]] = {}
    mounts: dict[str, set[str]] = {}
    for name, service in services.items():
        where = f"services.{name}"
        if not re.match(r"^[a-z0-9][a-z0-9_-]*$", str(name)):
            problems.append(
                (
                    COMPOSE_FILE,
                    where,
                    "a service name may use lowercase letters, digits, '-' and '_'",
                )
            )
        if not isinstance(service, dict):
            problems.append((COMPOSE_FILE, where, "must be a mapping"))
            continue
        if "build" in service:
            problems.append(
                (
                    COMPOSE_FILE,
                    f"{where}.build",
                    "recipes cannot build images; name a published image",
                )
            )
        problem = image_problem(service.get("image"))
        if problem:
            problems.append((COMPOSE_FILE, f"{where}.image", problem))
        for key in ("container_name", "network_mode", "pid", "privileged"):
            if key in service:
                problems.append(
                    (
                        COMPOSE_FILE,
                        f"{where}.{key}",
                        "is not allowed: it breaks running several instances or isolation",
                    )
                )
        for i, entry in enumerate(service.get("ports") or []):
            try:
                port = parse_port(entry)
            except (ValueError, TypeError) as e:
                problems.append((COMPOSE_FILE, f"{where}.ports[{i}]", str(e)))
                continue
            published[(port.container_port, port.protocol)] = (name, port.host_port)
        env = service.get("environment")
        if env is not None and not isinstance(env, dict | list):
            problems.append(
                (COMPOSE_FILE, f"{where}.environment", "must be a mapping or a list of NAME=value")
            )
        else:
            for key in env_as_dict(env):
                if not ENV_NAME_RE.match(key) and not re.match(r"^[A-Za-z_][A-Za-z0-9_.]*$", key):
                    problems.append(
                        (COMPOSE_FILE, f"{where}.environment.{key}", "is not a valid variable name")
                    )
        for source, target, kind in service_mounts(service):
            if kind == "bind" and source not in ALLOWED_BIND_MOUNTS:
                problems.append(
                    (
                        COMPOSE_FILE,
                        f"{where}.volumes",
                        f"bind-mounts {source!r} from the device; use a named volume (allowed host paths: {', '.join(ALLOWED_BIND_MOUNTS)})",
                    )
                )
            elif kind == "volume" and source:
                if source not in declared_volumes:
                    problems.append(
                        (
                            COMPOSE_FILE,
                            f"{where}.volumes",
                            f"uses volume {source!r}, which is not under the top-level volumes",
                        )
                    )
                mounts.setdefault(source, set()).add(target)
    if m.main_service not in services:
        problems.append(
            (
                MANIFEST_FILE,
                "main_service",
                f"{m.main_service!r} is not a service of compose.yaml (services: {', '.join(sorted(map(str, services)))})",
            )
        )
    for i, p in enumerate(m.ports):
        found = published.get((p.container_port, p.protocol))
        if found is None:
            problems.append(
                (
                    MANIFEST_FILE,
                    f"ports[{i}]",
                    f'compose.yaml publishes no {p.container_port}/{p.protocol}; add "{p.default_host_port}:{p.container_port}" to a service\'s ports',
                )
            )
        elif found[1] != p.default_host_port:
            problems.append(
                (
                    MANIFEST_FILE,
                    f"ports[{i}].default_host_port",
                    f"is {p.default_host_port} but compose.yaml publishes {p.container_port} on {found[1]}; make them equal",
                )
            )
    manifest_ports = {(p.container_port, p.protocol) for p in m.ports}
    for (container_port, protocol), (service_name, _) in sorted(published.items()):
        if (container_port, protocol) not in manifest_ports:
            problems.append(
                (
                    COMPOSE_FILE,
                    f"services.{service_name}.ports",
                    f"publishes {container_port}/{protocol}, which the manifest's ports do not declare",
                )
            )
    for i, v in enumerate(m.volumes):
        if v.name not in declared_volumes:
            problems.append(
                (MANIFEST_FILE, f"volumes[{i}].name", f"{v.name!r} is not a volume of compose.yaml")
            )
        elif v.container_path not in mounts.get(v.name, set()):
            problems.append(
                (
                    MANIFEST_FILE,
                    f"volumes[{i}].container_path",
                    f"no service mounts {v.name!r} at {v.container_path}",
                )
            )
    for name in declared_volumes:
        if name not in {v.name for v in m.volumes}:
            problems.append(
                (
                    COMPOSE_FILE,
                    f"volumes.{name}",
                    "is not declared in the manifest's volumes (say whether it holds data)",
                )
            )
    secret_vars = {env for s in m.secrets for env in s.env}
    used: set[str] = set()
    for path, value in walk_strings(compose):
        for use in dollar_uses(value):
            if use.escaped:
                continue
            if use.variable is None:
                problems.append(
                    (COMPOSE_FILE, path, "has a lone '$'; write '$$' for a literal dollar sign")
                )
            elif use.variable not in secret_vars:
                problems.append(
                    (
                        COMPOSE_FILE,
                        path,
                        f"uses ${{{use.variable}}}, which is not the env of a declared secret; write the value itself",
                    )
                )
            else:
                used.add(use.variable)
    for i, s in enumerate(m.secrets):
        for env in s.env:
            if env not in used:
                problems.append(
                    (
                        MANIFEST_FILE,
                        f"secrets[{i}].env",
                        f"{env} is never used as ${{{env}}} in compose.yaml",
                    )
                )
    for i, need in enumerate(m.requires_database):
        target = need.service or m.main_service
        if target not in services:
            problems.append(
                (
                    MANIFEST_FILE,
                    f"requires_database[{i}].service",
                    f"{target!r} is not a service of compose.yaml",
                )
            )
        else:
            env = env_as_dict(services[target].get("environment"))
            for role, var in need.env.names().items():
                if var not in env:
                    problems.append(
                        (
                            MANIFEST_FILE,
                            f"requires_database[{i}].env.{role}",
                            f"{var} is not in the environment of service {target!r}",
                        )
                    )
        if need.bundled_service and need.bundled_service not in services:
            problems.append(
                (
                    MANIFEST_FILE,
                    f"requires_database[{i}].bundled_service",
                    f"{need.bundled_service!r} is not a service of compose.yaml",
                )
            )
    hc_port = m.health_check.port
    if (
        m.main_service in services
        and (hc_port, "tcp") in published
        and published[(hc_port, "tcp")][0] != m.main_service
    ):
        problems.append(
            (
                MANIFEST_FILE,
                "health_check.port",
                f"{hc_port} is published by {published[(hc_port, 'tcp')][0]!r}, not the main service",
            )
        )
    return problems


# ----------------------------------------------------------------------------- loading
# libyaml's safe loader when PyYAML was built with it: about ten times faster
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> tuple[Any, str | None, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, "is missing", ""
    except (OSError, UnicodeDecodeError) as e:
        return None, f"cannot be read: {e}", ""
    try:
        return yaml.load(text, Loader=_YAML_LOADER), None, text
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        return None, f"is not valid YAML{where}: {what}", text


def load_recipe(
    folder: Path, *, source: Literal["builtin", "custom"] = "builtin"
) -> Recipe | list[RecipeProblem]:
    """One recipe folder: the Recipe, or every problem found (never an exception)."""
    label = folder.name

    def problem(file: str, fld: str, text: str) -> RecipeProblem:
        return RecipeProblem(label, file, fld, text, str(folder))

    raw, error, _ = _read_yaml(folder / MANIFEST_FILE)
    if error:
        return [problem(MANIFEST_FILE, "", error)]
    if not isinstance(raw, dict):
        return [problem(MANIFEST_FILE, "", "must be a mapping of fields (name: value)")]
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as e:
        return [
            problem(MANIFEST_FILE, _field_path(err["loc"]), _plain_words(err)) for err in e.errors()
        ]
    problems = [problem(MANIFEST_FILE, f, p) for f, p in _check_manifest(manifest, folder)]
    compose, error, compose_text = _read_yaml(folder / COMPOSE_FILE)
    if error:
        return [*problems, problem(COMPOSE_FILE, "", error)]
    problems += [problem(file, f, p) for file, f, p in _check_compose(manifest, compose)]
    if problems:
        return problems
    return Recipe(manifest.slug, manifest, compose, compose_text, folder, source)


def recipe_dirs() -> list[Path]:
    """The custom recipe folders: settings.HOMELAB_RECIPE_DIRS, else the environment
    variable HOMELAB_RECIPE_DIRS (comma separated)."""
    from django.conf import settings

    configured = getattr(settings, "HOMELAB_RECIPE_DIRS", None) if settings.configured else None
    if configured is None:
        configured = [
            p.strip() for p in os.environ.get("HOMELAB_RECIPE_DIRS", "").split(",") if p.strip()
        ]
    return [Path(p).expanduser() for p in configured]


def _folders(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _build_catalog(dirs: tuple[Path, ...]) -> Catalog:
    catalog = Catalog(dirs=dirs)
    found: dict[str, Recipe] = {}
    for root, source in [(BUILTIN_DIR, "builtin"), *((d, "custom") for d in dirs)]:
        if source == "custom" and not root.is_dir():
            catalog.invalid.append(
                RecipeProblem(
                    str(root),
                    "",
                    "",
                    "the custom recipe folder does not exist or is not a folder (check HOMELAB_RECIPE_DIRS)",
                    str(root),
                )
            )
            continue
        for folder in _folders(root):
            result = load_recipe(folder, source=source)  # type: ignore[arg-type]
            if isinstance(result, list):
                catalog.invalid.extend(result)
                continue
            previous = found.get(result.slug)
            if previous is not None:
                result = Recipe(
                    **{
                        **result.__dict__,
                        "overrides_builtin": previous.source == "builtin"
                        or previous.overrides_builtin,
                    }
                )
            found[result.slug] = result
    catalog.recipes = dict(sorted(found.items()))
    return catalog


def _signature(dirs: tuple[Path, ...]) -> tuple:
    """Modification times of every recipe folder and file: a change reloads the catalog."""
    parts: list = []
    for root in (BUILTIN_DIR, *dirs):
        try:
            parts.append((str(root), root.stat().st_mtime_ns))
        except OSError:
            parts.append((str(root), None))
            continue
        for folder in _folders(root):
            try:
                parts.append((folder.name, folder.stat().st_mtime_ns))
                for entry in os.scandir(folder):
                    parts.append((entry.name, entry.stat().st_mtime_ns, entry.stat().st_size))
            except OSError:
                parts.append((folder.name, None))
    return tuple(parts)


_cache: dict[tuple[Path, ...], tuple[tuple, Catalog]] = {}
_cache_lock = threading.Lock()


def load_catalog(extra_dirs: list[Path] | None = None) -> Catalog:
    """The catalog: built-in recipes plus `extra_dirs` (default: recipe_dirs()).
    Cached per process; reloaded when a recipe file or folder changes."""
    dirs = tuple(Path(d) for d in (recipe_dirs() if extra_dirs is None else extra_dirs))
    signature = _signature(dirs)
    with _cache_lock:
        cached = _cache.get(dirs)
        if cached and cached[0] == signature:
            return cached[1]
    catalog = _build_catalog(dirs)
    with _cache_lock:
        _cache[dirs] = (signature, catalog)
    return catalog


def clear_catalog_cache() -> None:
    with _cache_lock:
        _cache.clear()

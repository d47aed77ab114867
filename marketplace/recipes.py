"""The recipe catalog: `recipes/<slug>/manifest.yaml` + `compose.yaml`, validated at load.

A recipe is a normal compose file a person could run by hand plus a manifest that says
what the platform needs to know. `load_catalog()` reads the built-in recipes and the
custom folders of HOMELAB_RECIPE_DIRS; a recipe that fails any check is listed in
`Catalog.invalid` with the file, field and problem in plain words, and cannot be
deployed, while the rest of the catalog loads. A custom recipe with a built-in's slug
replaces it (`Recipe.overrides_builtin`).

The catalog is cached per process and reloaded when a recipe file or folder changes
(modification times), so the catalog page costs a few `stat` calls.

The manifest's schema and its cross-field rules live in marketplace.manifest; this module
re-exports them, so `from marketplace.recipes import Manifest` keeps working.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from marketplace.compose import (
    ENV_NAME_RE,
    dollar_uses,
    env_as_dict,
    parse_port,
    walk_strings,
)
from marketplace.manifest import (  # re-exported: `from marketplace.recipes import Manifest`
    ALLOWED_BIND_MOUNTS,
    ARCHITECTURES,
    CATEGORIES,
    COMPOSE_FILE,
    DATABASE_ENGINES,
    MANIFEST_FILE,
    SLUG_PATTERN,
    DatabaseEnv,
    DatabaseNeed,
    HealthCheck,
    Manifest,
    Port,
    Requirements,
    Secret,
    Volume,
    field_path,
    is_emoji,
    manifest_problems,
    plain_words,
)

__all__ = [
    "ALLOWED_BIND_MOUNTS",
    "ARCHITECTURES",
    "BUILTIN_DIR",
    "CATEGORIES",
    "COMPOSE_FILE",
    "DATABASE_ENGINES",
    "MANIFEST_FILE",
    "SLUG_PATTERN",
    "Catalog",
    "DatabaseEnv",
    "DatabaseNeed",
    "HealthCheck",
    "Manifest",
    "Port",
    "Recipe",
    "RecipeNotFound",
    "RecipeProblem",
    "Requirements",
    "Secret",
    "Volume",
    "clear_catalog_cache",
    "image_problem",
    "load_catalog",
    "load_recipe",
    "recipe_dirs",
    "service_mounts",
]

BUILTIN_DIR = Path(__file__).resolve().parent / "recipes"


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
        return None if is_emoji(self.manifest.icon) else self.folder / self.manifest.icon


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


# ---------------------------------------------------------------------------- checks
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_RE = re.compile(
    rf"^(?P<name>(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?\Z"
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
        if not re.match(r"^[a-z0-9][a-z0-9_-]*\Z", str(name)):
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
                if not ENV_NAME_RE.match(key) and not re.match(r"^[A-Za-z_][A-Za-z0-9_.]*\Z", key):
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
            problem(MANIFEST_FILE, field_path(err["loc"]), plain_words(err)) for err in e.errors()
        ]
    problems = [problem(MANIFEST_FILE, f, p) for f, p in manifest_problems(manifest, folder)]
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

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
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from marketplace.compose_checks import compose_problems, image_problem
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
    problems += [problem(file, f, p) for file, f, p in compose_problems(manifest, compose)]
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

"""Small builders for recipe folders in a temporary directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from marketplace.recipes import BUILTIN_DIR


def copy_recipe(root: Path, slug: str = "vaultwarden", *, as_slug: str | None = None) -> Path:
    """Copy a built-in recipe into `root/<as_slug or slug>` (slug in the manifest follows)."""
    target = root / (as_slug or slug)
    shutil.copytree(BUILTIN_DIR / slug, target)
    if as_slug:
        edit_manifest(target, lambda m: m.update(slug=as_slug))
    return target


def edit_manifest(folder: Path, change) -> None:
    data = yaml.safe_load((folder / "manifest.yaml").read_text())
    change(data)
    (folder / "manifest.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def edit_compose(folder: Path, change) -> None:
    data = yaml.safe_load((folder / "compose.yaml").read_text())
    change(data)
    (folder / "compose.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
